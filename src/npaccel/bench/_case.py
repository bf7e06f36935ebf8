"""What a benchmark kernel declares: the `Case`.

A case is one kernel on one backend, dtype and size. It declares the floating-point
operations and the bytes one call must move (so every time is also GFLOP/s, GB/s and a
fraction of the machine's roof), and it builds its data only when it is about to run, so
the suite holds one case's arrays at a time. ``setup()`` returns ``(run, check)``:
``run()`` does one call and returns its result; ``check(result)`` raises `CheckFailed`
unless the result matches a reference (NumPy/SciPy, or a float64 computation). The suite
checks once, before timing: a wrong answer gets no figure.

Later issues (GPU, Dask, the loader) add rows by adding case factories; the suite, the
roofline, the report and compare take any case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Case", "CheckFailed", "check_close"]

Run = Callable[[], object]
Check = Callable[[object], None]


class CheckFailed(AssertionError):
    """A kernel's result differs from its reference."""


@dataclass(frozen=True)
class Case:
    kernel: str  # family, e.g. "stream.triad", "filters.gaussian"
    backend: str  # who computes it, e.g. "numpy", "numba", "npaccel", "scipy", "cv2"
    params: Mapping[str, object]  # JSON-ready: dtype, shape, ...
    flops: float  # floating-point operations per call (0: not a FLOP kernel)
    bytes: float  # bytes one call must move between memory and the cores
    setup: Callable[[], tuple[Run, Check]]
    scalable: bool = True  # does the thread count change its speed?
    work: tuple[float, str] | None = None  # units per call for throughput and cost
    roof: str = "memory"  # "memory": held against the roofline; "none": not comparable
    requires: tuple[str, ...] = field(default=())  # modules it needs (skipped without);
    # "gpu" means a usable CUDA device through CuPy
    device: str = "cpu"  # where it computes: "cpu", or "gpu" (held against the GPU's roof)
    timer: str = "host"  # "host": time.perf_counter; "cuda-events": CUDA events on the
    # current stream, so a sample times the device's work on ``loops`` queued calls

    @property
    def name(self) -> str:
        inner = ",".join(f"{k}={v}" for k, v in self.params.items())
        return f"{self.kernel}[{self.backend}{',' if inner else ''}{inner}]"


def check_close(result: object, expected: np.ndarray, *, rtol: float, atol: float = 0.0,
                what: str = "result") -> None:  # fmt: skip
    """Raise `CheckFailed` unless ``result`` matches ``expected`` within tolerances."""
    actual = np.asarray(result)
    if actual.shape != expected.shape:
        raise CheckFailed(f"{what} has shape {actual.shape}; the reference {expected.shape}")
    bad = ~np.isclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        where = np.unravel_index(int(np.argmax(bad)), bad.shape) if bad.ndim else ()
        raise CheckFailed(
            f"{what} differs from the reference at {int(bad.sum())} of {bad.size} elements "
            f"(first at {tuple(int(i) for i in where)}: {actual[where]!r} vs "
            f"{expected[where]!r}; rtol={rtol:g}, atol={atol:g})"
        )
