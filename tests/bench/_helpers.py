"""Helpers for the npaccel.bench tests: synthetic result records and documents (for
the pure functions: roofline, scaling, compare), tiny cases and a tiny profile (for real
suite runs that take milliseconds), and one real document built from them."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Sequence

import numpy as np

from npaccel import bench
from npaccel.bench import PROFILES, Case, Method, Profile
from npaccel.bench._case import check_close

# doctor's facts, reduced to what the bench reads (no probing of this machine)
FACTS = {
    "cpu": {"model": "Test CPU 9000", "logical_cores": 2, "usable_cpus": 2, "sockets": 1,
            "caches": []},
    "platform": {"python": "3.12.0", "machine": "x86_64"},
    "versions": {"numpy": "2.0.0", "scipy": "1.14.0", "numba": "0.60.0"},
}  # fmt: skip

# timing method of the tiny runs: a few milliseconds per case
TINY_METHOD = Method(warmups=1, samples=3, min_sample=0.001)


def timing_of(samples: Sequence[float]) -> dict:
    """The ``timing`` block of a result record for these per-call samples."""
    samples = [float(s) for s in samples]
    return {"samples": samples, "median": statistics.median(samples), "min": min(samples)}


def jittered_samples(center: float, seed: int, *, n: int = 5, jitter: float = 0.01) -> list:
    """``n`` samples within ``±jitter`` (relative) of ``center``, reproducibly."""
    rng = np.random.default_rng(seed)
    return [float(x) for x in center * (1 + rng.uniform(-jitter, jitter, n))]


def make_record(
    kernel: str = "toy.add",
    backend: str = "numpy",
    *,
    threads: int = 1,
    status: str = "ok",
    samples: Sequence[float] | None = (1.0, 1.0, 1.0),
    params: dict | None = None,
    flops: float = 0.0,
    nbytes: float = 0.0,
    work: tuple[float, str] | None = None,
    roof: str = "memory",
    name: str | None = None,
) -> dict:
    """A result record as the suite writes it (only the keys the readers use, and ``id``
    built the same way: ``kernel[backend,params]@threads``)."""
    params = {"dtype": "float64", "n": 8} if params is None else params
    if name is None:
        inner = ",".join(f"{k}={v}" for k, v in params.items())
        name = f"{kernel}[{backend}{',' if inner else ''}{inner}]"
    ok = status == "ok"
    return {
        "id": f"{name}@{threads}",
        "kernel": kernel,
        "backend": backend,
        "params": params,
        "threads": threads,
        "role": "kernel",
        "flops": flops,
        "bytes": nbytes,
        "work": None if work is None else {"count": work[0], "unit": work[1]},
        "roof": roof,
        "status": status,
        "error": None if ok else f"{status}: synthetic",
        "timing": timing_of(samples) if ok and samples is not None else None,
        "warnings": [],
    }


def make_doc(
    records: Sequence[dict],
    *,
    facts: dict | None = None,
    main: int = 1,
    profile: str = "quick",
) -> dict:
    """A result document with every key `validate` requires."""
    return {
        "schema": bench.SCHEMA,
        "created": "2024-01-01T00:00:00+00:00",
        "command": ["npaccel", "bench"],
        "profile": profile,
        "method": dataclasses.asdict(TINY_METHOD),
        "threads": {"main": main, "scaling": [main], "usable_cpus": main},
        "facts": FACTS if facts is None else facts,
        "versions": {"python": "3.12.0"},
        "peaks": {"threads": main, "bandwidth": None, "flops": {}},
        "price": None,
        "results": list(records),
        "scaling": [],
        "elapsed": 0.0,
    }


def make_case(
    kernel: str = "toy.add",
    backend: str = "numpy",
    *,
    n: int = 1024,
    dtype: str = "float64",
    flops: float | None = None,
    nbytes: float | None = None,
    wrong: bool = False,
    setup_error: Exception | None = None,
    requires: tuple[str, ...] = (),
    roof: str = "memory",
    work: tuple[float, str] | None = None,
    scalable: bool = True,
    on_setup: Callable[[], None] | None = None,
) -> Case:
    """A tiny case: ``out = a + 0`` (or ``a + 1`` when ``wrong``), checked against ``a``."""

    def setup():
        if on_setup is not None:
            on_setup()
        if setup_error is not None:
            raise setup_error
        a = np.arange(n, dtype=dtype)
        out = np.empty_like(a)
        delta = 1 if wrong else 0

        def run():
            return np.add(a, delta, out=out)

        def check(result):
            check_close(result, a, rtol=0, what=f"{kernel} result")

        return run, check

    itemsize = np.dtype(dtype).itemsize
    return Case(kernel, backend, {"dtype": dtype, "n": n},
                float(n) if flops is None else flops,
                2.0 * itemsize * n if nbytes is None else nbytes,
                setup, scalable=scalable, work=work, roof=roof, requires=requires)  # fmt: skip


def peak_cases() -> list[Case]:
    """Tiny stand-ins for the peak kernels, so the run has a roof: STREAM triad on two
    backends and GEMM for both float dtypes."""
    return [
        make_case("stream.triad", "numpy", flops=2.0 * 1024, nbytes=24.0 * 1024),
        make_case("stream.triad", "numba", flops=2.0 * 1024, nbytes=24.0 * 1024),
        make_case("linalg.gemm", "numpy", n=64, dtype="float64", flops=2.0 * 64**3,
                  nbytes=3 * 8 * 64.0 * 64),
        make_case("linalg.gemm", "numpy", n=64, dtype="float32", flops=2.0 * 64**3,
                  nbytes=3 * 4 * 64.0 * 64),
    ]  # fmt: skip


def tiny_profile() -> Profile:
    return dataclasses.replace(PROFILES["quick"], method=TINY_METHOD)


def result(doc: dict, kernel: str) -> dict:
    """The one record of ``kernel`` in a result document."""
    [rec] = [r for r in doc["results"] if r["kernel"] == kernel]
    return rec


def tiny_run(cases: Sequence[Case], **kwargs) -> dict:
    """`npaccel.bench.run` on ``cases`` (peak cases added), one thread, no fact probing."""
    kwargs = {"facts": FACTS, "threads": [1]} | kwargs
    return bench.run(tiny_profile(), cases=[*peak_cases(), *cases], **kwargs)
