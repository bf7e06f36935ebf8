"""Run a profile: select cases, time each at the requested thread counts, and assemble the
result document (schema ``npaccel.bench/1``) with roofline, scaling and cost.

A case is set up once, run once and checked against its reference before any timing (a
wrong answer gets status ``wrong`` and no figure), then timed at the main thread count and,
when it takes part in the scaling study, at every other count. Timing goes in rounds over
the whole suite (see `_time_in_rounds`), so every figure's samples span the whole run: all
cases' data stay alive until the last round (the quick profile peaks near 1 GB). The peak
cases (STREAM triad, GEMM per dtype) always run: every other figure is a fraction of them.
"""

from __future__ import annotations

import datetime as _dt
import fnmatch
import importlib.util
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict

from npaccel.bench._case import Case, CheckFailed
from npaccel.bench._cost import cost_of, resolve_price
from npaccel.bench._kernels import all_cases, llc_bytes
from npaccel.bench._profile import PROFILES, Profile
from npaccel.bench._roofline import peaks_of, place
from npaccel.bench._runner import Timing, calibrate, finish, sample
from npaccel.bench._scaling import scaling_of
from npaccel.bench._schema import SCHEMA

__all__ = ["SCHEMA", "run"]

PEAK_KERNELS = ("stream.triad", "linalg.gemm")
GPU_PEAK_KERNELS = ("gpu.copy", "gpu.gemm")  # the GPU's roof: device copy bandwidth, GEMM
# representative cases for the quick profile's thread-scaling study
QUICK_SCALING = {("stream.triad", "numba"), ("linalg.gemm", "numpy"), ("fft.fft2", "scipy"),
                 ("filters.gaussian2", "npaccel"), ("montecarlo.pi", "numba")}  # fmt: skip

Progress = Callable[[str, int, int], None]


def thread_counts(usable: int) -> list[int]:
    """1 … usable: every count up to 8, then powers of two and ``usable`` itself."""
    counts = {n for n in range(1, min(usable, 8) + 1)}
    counts |= {1 << k for k in range(usable.bit_length()) if (1 << k) <= usable}
    counts.add(usable)
    return sorted(counts)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a submodule of a missing package
        return False


def _matches(case: Case, patterns: Sequence[str]) -> bool:
    names = (case.kernel, case.name, case.kernel.split(".")[0])
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def select(cases: list[Case], only: Sequence[str] = (), skip: Sequence[str] = (),
           backends: Sequence[str] = ()) -> list[Case]:  # fmt: skip
    """Cases matching ``only`` (all if empty), minus ``skip``, on ``backends`` (all if
    empty); patterns are shell-style, on the family ("stream"), the kernel
    ("stream.triad") or the full name. Peak cases (the roof) are kept unless skipped."""
    chosen = []
    for case in cases:
        wanted = (not only or _matches(case, only)) and not _matches(case, skip)
        chosen.append(wanted and (not backends or case.backend in backends))
    gpu_wanted = any(w and c.device == "gpu" for c, w in zip(cases, chosen, strict=True))
    for i, case in enumerate(cases):
        cpu_peak = case.kernel in PEAK_KERNELS and case.backend in {"numpy", "numba"}
        gpu_peak = case.kernel in GPU_PEAK_KERNELS and gpu_wanted
        if (cpu_peak or gpu_peak) and not _matches(case, skip):
            chosen[i] = True
    chosen = [c for c, w in zip(cases, chosen, strict=True) if w]
    return chosen


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("npaccel", "numpy", "scipy", "numba", "llvmlite", "threadpoolctl",
                 "opencv-python-headless", "opencv-python"):  # fmt: skip
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return out


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _timing_record(t: Timing) -> dict:
    q1, q3 = t.quartiles
    return {"samples": list(t.samples), "loops": t.loops, "warmup": _finite(t.warmup),
            "median": t.median, "q1": q1, "q3": q3, "iqr": t.iqr, "min": t.min,
            "spread": _finite(t.spread)}  # fmt: skip


def _record(case: Case, threads: int, role: str) -> dict:
    return {
        "id": f"{case.name}@{threads}",
        "kernel": case.kernel,
        "backend": case.backend,
        "params": dict(case.params),
        "threads": threads,
        "role": role,
        "flops": case.flops,
        "bytes": case.bytes,
        "work": None if case.work is None else {"count": case.work[0], "unit": case.work[1]},
        "roof": case.roof,
        "device": case.device,
        "timer": case.timer,
        "status": "ok",
        "error": None,
        "timing": None,
        "warnings": [],
        "setup_s": None,  # building the data and the reference
        "first_call_s": None,  # the checked first call, compilation included
    }


def _prepare(case: Case, threads: int, rec: dict):
    """Set ``case`` up, run it once and check the result; the run callable, or None with
    ``rec`` marked skipped, wrong or error."""
    from npaccel.threads import set_threads

    missing = [m for m in case.requires if m != "gpu" and not _importable(m)]
    if missing:
        rec.update(status="skipped", error=f"needs {', '.join(missing)} (not installed)")
        return None
    if "gpu" in case.requires:
        from npaccel.cuda import available

        if not available():
            rec.update(status="skipped", error="needs an NVIDIA GPU usable through CuPy "
                                               "(none here: see npaccel doctor)")  # fmt: skip
            return None
    try:
        t0 = time.perf_counter()
        run_once, check = case.setup()
        t1 = time.perf_counter()
        with set_threads(threads):
            result = run_once()  # the first call: compiles what it needs to
            t2 = time.perf_counter()
            check(result)
    except CheckFailed as exc:
        rec.update(status="wrong", error=str(exc))
        return None
    except Exception as exc:
        rec.update(status="error", error=f"{type(exc).__name__}: {exc}")
        return None
    rec["setup_s"], rec["first_call_s"] = t1 - t0, t2 - t1
    return run_once


def _timer(case: Case) -> Callable[[], float]:
    if case.timer == "cuda-events":
        from npaccel.bench._kernels.gpu import event_timer

        return event_timer()
    return time.perf_counter


def _time_in_rounds(
    slots: list, prof: Profile, set_threads, progress: Progress | None = None
) -> None:
    """Time every slot (a case at a thread count) in ``prof.rounds`` rounds over all slots:
    calibrate each once, then per round one untimed call (for calls shorter than a sample)
    and its share of the samples.
    A figure's samples thus span the whole run, not one short stretch of it: a machine that
    slows down for a few seconds shows in the spread between rounds (which
    `npaccel bench compare` reads) instead of shifting a whole figure unseen."""
    method = prof.method
    per_round = -(-method.samples // prof.rounds)
    state = {}
    for r in range(prof.rounds):
        for index, (rec, run_once, n, timer) in enumerate(slots):
            if rec["status"] != "ok":
                continue
            if progress:
                progress(f"round {r + 1}/{prof.rounds}: {rec['id']}",
                         r * len(slots) + index, prof.rounds * len(slots))  # fmt: skip
            try:
                with set_threads(n):
                    if r == 0:
                        loops, warmup = calibrate(run_once, method, timer)
                        state[index] = (loops, warmup, [])
                    elif state[index][0] > 1:
                        # re-warm what the other cases evicted; a call long enough to
                        # be a sample by itself (loops == 1) is not worth repeating
                        run_once()
                    loops, warmup, samples = state[index]
                    samples += sample(run_once, loops, per_round, timer)
            except Exception as exc:  # it passed its check, then failed while being timed
                rec.update(status="error", error=f"{type(exc).__name__}: {exc}")
    for index, (rec, *_) in enumerate(slots):
        if rec["status"] == "ok":
            loops, warmup, samples = state[index]
            timing = finish(samples, loops, warmup)
            rec["timing"] = _timing_record(timing) | {"per_round": per_round}
            rec["warnings"] = list(timing.warnings)


def run(
    profile: str | Profile = "quick",
    *,
    only: Sequence[str] = (),
    skip: Sequence[str] = (),
    backends: Sequence[str] = (),
    sizes: Sequence[int] = (),
    threads: Sequence[int] = (),
    scratch: str | None = None,
    price_per_hour: float | None = None,
    instance: str | None = None,
    prices: str | None = None,
    progress: Progress | None = None,
    facts: dict | None = None,
    cases: list[Case] | None = None,
) -> dict:
    """Run the benchmark suite and return the result document (JSON-ready)."""
    from npaccel.doctor import collect_facts
    from npaccel.threads import set_threads, usable_cpus

    prof = PROFILES[profile] if isinstance(profile, str) else profile
    price = None  # resolved first: a bad price is an error before minutes of timing
    if price_per_hour is not None or instance is not None:
        price = resolve_price(price_per_hour, instance, prices)
    if sizes:
        prof = prof.with_sizes(tuple(sizes))
    started = time.perf_counter()
    facts = collect_facts() if facts is None else facts
    usable = usable_cpus()
    main = max(threads) if threads else usable
    scaling = sorted(set(threads)) if threads else thread_counts(usable)
    chosen = select(all_cases(prof, facts, scratch) if cases is None else cases, only, skip,
                    backends)  # fmt: skip

    records: list[dict] = []
    slots = []  # (record, run, threads) of the cases that passed their check
    for done, case in enumerate(chosen):
        if progress:
            progress(f"checking {case.name}", done, len(chosen))
        role = "peak" if case.kernel in PEAK_KERNELS + GPU_PEAK_KERNELS else "kernel"
        scale = case.scalable and (prof.scaling == "all" or threads
                                   or (case.kernel, case.backend) in QUICK_SCALING)  # fmt: skip
        counts = [main] + ([n for n in scaling if n != main] if scale else [])
        first = _record(case, main, role)
        records.append(first)
        prepared = _prepare(case, main, first)
        if prepared is None:
            continue
        timer = _timer(case)
        slots.append((first, prepared, main, timer))
        for n in counts[1:]:
            rec = _record(case, n, "scaling")
            records.append(rec)
            slots.append((rec, prepared, n, timer))
    _time_in_rounds(slots, prof, set_threads, progress)
    del slots  # frees the cases' data

    peaks = peaks_of(records, main)
    llc = llc_bytes(facts)
    for rec in records:
        rec.update(place(rec, peaks))
        # a working set the last-level cache holds is not limited by DRAM bandwidth
        rec["in_cache"] = rec["roof"] == "memory" and 0 < rec["bytes"] <= llc
    if price:
        for rec in records:
            rec["cost"] = cost_of(rec, price["per_hour"])
    if progress:
        progress("done", len(chosen), len(chosen))
    return {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": list(sys.argv),
        "profile": prof.name,
        "method": asdict(prof.method) | {"timer": "time.perf_counter (cuda-events for cases "
                                                  "whose record says so)", "statistic": "median"},
        "threads": {"main": main, "scaling": scaling, "usable_cpus": usable},
        "facts": facts,
        "versions": _versions(),
        "peaks": peaks,
        "price": price,
        "results": records,
        "scaling": scaling_of(records),
        "elapsed": time.perf_counter() - started,
    }
