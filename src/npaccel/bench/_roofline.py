"""The roofline: each figure as a fraction of what this machine can attain, measured in the
same run.

Peaks: bandwidth β is the best STREAM triad (McCalpin bytes per second); compute π is the
best GEMM per dtype (float32, float64; complex kernels use float64's). GPU figures are held
against the GPU's own peaks measured in the same run: β its device-to-device copy, π its
cuBLAS GEMM. A kernel doing F
FLOPs and moving B bytes in t seconds has intensity I = F/B and attainable performance
min(π, I·β). Its fraction of the roof is

    (F/t) / min(π, I·β)  =  max((F/t) / π, (B/t) / β)

— the larger of its compute and bandwidth fractions — which also covers kernels with no
FLOPs (F = 0: held against bandwidth alone) and integer kernels (no π: bandwidth alone).
"""

from __future__ import annotations

import math

__all__ = ["attainable", "fraction", "peaks_of", "place"]

_PEAK_DTYPE = {"float32": "float32", "float64": "float64", "complex64": "float32",
               "complex128": "float64", "float16": "float32"}  # fmt: skip


def attainable(intensity: float, peak_flops: float, bandwidth: float) -> float:
    """FLOP/s the roofline allows at ``intensity`` FLOPs per byte."""
    return min(peak_flops, intensity * bandwidth)


def fraction(flops: float, nbytes: float, seconds: float, peak_flops: float | None,
             bandwidth: float | None) -> float | None:  # fmt: skip
    """Fraction of the roof reached; None when there is nothing to hold it against."""
    parts = []
    if peak_flops and flops:
        parts.append(flops / seconds / peak_flops)
    if bandwidth and nbytes:
        parts.append(nbytes / seconds / bandwidth)
    return max(parts) if parts else None


def _best(records: list[dict], kernel: str, threads: int, rate: str, **params) -> dict | None:
    best = None
    for rec in records:
        if rec["kernel"] != kernel or rec["status"] != "ok" or rec["threads"] != threads:
            continue
        if any(rec["params"].get(k) != v for k, v in params.items()):
            continue
        value = rec[rate] / rec["timing"]["median"]
        if best is None or value > best["value"]:
            best = {"value": value, "from": rec["id"]}
    return best


def _peaks(records: list[dict], threads: int, gemm: str, copy: str) -> dict:
    flops = {}
    for dtype in ("float32", "float64"):
        best = _best(records, gemm, threads, "flops", dtype=dtype)
        if best:
            flops[dtype] = {"flops_per_s": best["value"], "from": best["from"]}
    best = _best(records, copy, threads, "bytes")
    bandwidth = {"bytes_per_s": best["value"], "from": best["from"]} if best else None
    return {"bandwidth": bandwidth, "flops": flops}


def peaks_of(records: list[dict], threads: int) -> dict:
    """Peaks from the run's own STREAM triad and GEMM results at ``threads``; with GPU
    results, the GPU's own under "gpu" (device copy bandwidth, cuBLAS GEMM)."""
    peaks = {"threads": threads, **_peaks(records, threads, "linalg.gemm", "stream.triad")}
    if any(r.get("device") == "gpu" for r in records):
        peaks["gpu"] = _peaks(records, threads, "gpu.gemm", "gpu.copy")
    return peaks


def place(rec: dict, peaks: dict) -> dict:
    """Rates and roofline position of one result record (empty rates if it has no time)."""
    out = {"gflops": None, "gbs": None, "intensity": None, "roof_fraction": None,
           "bound": None, "throughput": None}  # fmt: skip
    if rec["status"] != "ok" or rec["timing"] is None:
        return out
    t = rec["timing"]["median"]
    if rec["flops"]:
        out["gflops"] = rec["flops"] / t / 1e9
    if rec["bytes"]:
        out["gbs"] = rec["bytes"] / t / 1e9
    if rec["work"]:
        out["throughput"] = rec["work"]["count"] / t
    if rec["roof"] != "memory":
        return out
    if rec.get("device") == "gpu":  # held against the GPU's own roof
        peaks = peaks.get("gpu") or {"bandwidth": None, "flops": {}}
    bw = peaks["bandwidth"]["bytes_per_s"] if peaks.get("bandwidth") else None
    peak = peaks["flops"].get(_PEAK_DTYPE.get(str(rec["params"].get("dtype")), ""), {})
    pi = peak.get("flops_per_s")
    out["roof_fraction"] = fraction(rec["flops"], rec["bytes"], t, pi, bw)
    if rec["flops"] and rec["bytes"]:
        out["intensity"] = rec["flops"] / rec["bytes"]
        if pi and bw:
            out["bound"] = "memory" if out["intensity"] * bw < pi else "compute"
    elif rec["bytes"]:
        out["bound"] = "memory"
    if out["roof_fraction"] is not None and not math.isfinite(out["roof_fraction"]):
        out["roof_fraction"] = None
    return out
