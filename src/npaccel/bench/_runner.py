"""How one figure is timed: pyperf's method, in-process.

1. Warm up: call the kernel ``warmups`` times untimed (compiles, faults pages in, fills
   caches and BLAS/Numba thread pools).
2. Calibrate: find ``loops``, the number of back-to-back calls one sample times, so that a
   sample lasts at least ``min_sample`` seconds — far above the timer's resolution and the
   cost of reading it.
3. Sample: time ``samples`` samples of ``loops`` calls; each sample gives one per-call time.
   The suite takes them in rounds (see `npaccel.bench._suite`): a few samples of every
   case of a family in turn, again and again, so that each figure's samples span the
   family's whole run rather than one short stretch of the machine's weather.

A figure is the median of the per-call times, reported with its IQR and minimum. The
spread (IQR / median) and short samples are flagged, never hidden: a spread of 10% or more
means the machine was busy or the kernel's time varies, and comparisons with it are weak.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Method", "Timing", "calibrate", "finish", "measure", "sample"]

SPREAD_WARN = 0.10  # IQR / median at or above which a figure is flagged
SHORT_SAMPLE = 1e-3  # seconds: a sample shorter than this is dominated by timer noise


@dataclass(frozen=True)
class Method:
    """Parameters of the timing method (recorded in every result)."""

    warmups: int = 1
    samples: int = 5
    min_sample: float = 0.05  # seconds one sample must last at least
    max_loops: int = 1 << 20

    def __post_init__(self) -> None:
        for name in ("warmups", "samples", "max_loops"):
            value = getattr(self, name)
            low = 0 if name == "warmups" else 1
            if not isinstance(value, int) or value < low:
                raise ValueError(f"`{name}` must be an integer >= {low}; got {value!r}")
        if self.samples < 3:
            raise ValueError(
                f"`samples` must be >= 3 to give a median and IQR; got {self.samples!r}"
            )
        if not self.min_sample > 0:
            raise ValueError(f"`min_sample` must be > 0 seconds; got {self.min_sample!r}")


@dataclass(frozen=True)
class Timing:
    """Per-call times (seconds), one per sample, and how they were taken."""

    samples: tuple[float, ...]
    loops: int
    warmup: float  # seconds of the first warm-up call (includes any compile)
    warnings: tuple[str, ...] = field(default=())

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def quartiles(self) -> tuple[float, float]:
        q1, _, q3 = statistics.quantiles(self.samples, n=4, method="inclusive")
        return q1, q3

    @property
    def iqr(self) -> float:
        q1, q3 = self.quartiles
        return q3 - q1

    @property
    def spread(self) -> float:
        """IQR relative to the median."""
        return self.iqr / self.median if self.median > 0 else math.inf


def _time_loops(fn: Callable[[], object], loops: int, timer: Callable[[], float]) -> float:
    start = timer()
    for _ in range(loops):
        fn()
    return timer() - start


def calibrate(
    fn: Callable[[], object], method: Method, timer: Callable[[], float] = time.perf_counter
) -> tuple[int, float]:
    """Warm up, then find ``loops``: returns ``(loops, seconds of the first warm-up)``."""
    warmup = math.nan
    for i in range(method.warmups):
        elapsed = _time_loops(fn, 1, timer)
        if i == 0:
            warmup = elapsed
    loops = 1
    elapsed = _time_loops(fn, loops, timer)
    while elapsed < method.min_sample and loops < method.max_loops:
        # aim 20% past the target from the rate seen so far, at least doubling
        per_call = max(elapsed, 1e-9) / loops
        want = math.ceil(1.2 * method.min_sample / per_call)
        loops = min(method.max_loops, max(2 * loops, want))
        elapsed = _time_loops(fn, loops, timer)
    return loops, warmup


def sample(
    fn: Callable[[], object], loops: int, count: int,
    timer: Callable[[], float] = time.perf_counter,
) -> list[float]:  # fmt: skip
    """``count`` samples of ``loops`` calls each, as per-call seconds."""
    return [_time_loops(fn, loops, timer) / loops for _ in range(count)]


def finish(samples: list[float], loops: int, warmup: float) -> Timing:
    """The `Timing` of these per-call samples, with its warnings."""
    timing = Timing(tuple(samples), loops, warmup)
    warnings = []
    shortest = min(samples) * loops
    if shortest < SHORT_SAMPLE:
        warnings.append(
            f"samples as short as {shortest * 1e3:.3g} ms (< {SHORT_SAMPLE * 1e3:g} ms): "
            "timer noise dominates; raise min_sample or max_loops"
        )
    if timing.spread >= SPREAD_WARN:
        warnings.append(
            f"spread (IQR/median) {timing.spread:.0%} >= {SPREAD_WARN:.0%}: the machine was "
            "busy or the kernel's time varies; rerun on a quiet machine before comparing"
        )
    return Timing(timing.samples, loops, warmup, tuple(warnings))


def measure(
    fn: Callable[[], object],
    method: Method = Method(),
    *,
    timer: Callable[[], float] = time.perf_counter,
) -> Timing:
    """Time ``fn()`` by ``method`` in one go; ``timer`` is replaceable for tests."""
    loops, warmup = calibrate(fn, method, timer)
    return finish(sample(fn, loops, method.samples, timer), loops, warmup)
