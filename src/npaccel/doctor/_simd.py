"""SIMD capability tiers, so a CPU, NumPy's build and a BLAS's kernels can be compared.

The names differ by source — the kernel's /proc/cpuinfo flags (``avx512f``), NumPy's
targets (``AVX512_SKX`` in NumPy 1.x, ``X86_V4`` in 2.4) and OpenBLAS's core names
(``SkylakeX``) — but each maps onto one ladder of vector widths. Names not listed here map
to no tier and never raise a finding.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["TIER_NAMES", "blas_core_tier", "cpu_tier", "numpy_target_tier"]

TIER_NAMES = {
    1: "SSE2/SSE3",
    2: "SSE4.2",
    3: "AVX",
    4: "AVX2+FMA",
    5: "AVX-512",
    11: "Arm NEON/ASIMD",
    12: "Arm SVE",
}

# x86 tiers and Arm tiers are separate ladders: compare only within one (tier // 10).
_CPU_FLAG_TIERS = (
    ({"avx512f", "avx512bw", "avx512dq", "avx512vl"}, 5),
    ({"avx2", "fma"}, 4),
    ({"avx"}, 3),
    ({"sse4_2"}, 2),
    ({"sse2"}, 1),
    ({"sve"}, 12),
    ({"asimd"}, 11),
)

# OpenBLAS core names (gotoblas_corename) by the widest vector unit their kernels use.
_OPENBLAS_CORES = {
    1: "katmai coppermine northwood prescott banias atom core2 penryn dunnington athlon "
       "opteron opteron_sse3 barcelona bobcat nano",
    2: "nehalem",
    3: "sandybridge bulldozer piledriver steamroller excavator",
    4: "haswell zen",
    5: "skylakex cooperlake sapphirerapids",
    11: "armv8 cortexa53 cortexa55 cortexa57 cortexa72 cortexa73 cortexx1 cortexx2 "
        "neoversen1 thunderx thunderx2t99 thunderx3t110 tsv110 falkor emag8180 "
        "ft2000 vortex",
    12: "neoversev1 neoversen2 neoversev2 a64fx armv8sve armv9sve",
}  # fmt: skip
_BLAS_CORE_TIERS = {name: tier for tier, names in _OPENBLAS_CORES.items() for name in names.split()}


def cpu_tier(flags: Iterable[str]) -> int | None:
    """Highest tier whose flags the CPU has (kernel names from /proc/cpuinfo)."""
    have = set(flags)
    x86 = [tier for need, tier in _CPU_FLAG_TIERS if tier < 10 and need <= have]
    arm = [tier for need, tier in _CPU_FLAG_TIERS if tier > 10 and need <= have]
    return max(x86 or arm) if (x86 or arm) else None


def numpy_target_tier(name: str) -> int | None:
    """Tier of a NumPy SIMD target name, matched by pattern across NumPy versions."""
    n = name.upper().replace("_", "")
    if n.startswith("AVX512") or n == "X86V4":
        return 5
    if n in {"AVX2", "FMA3", "X86V3"}:
        return 4
    if n in {"AVX", "F16C"}:
        return 3
    if n in {"SSE42", "SSE41", "POPCNT", "X86V2"}:
        return 2
    if n in {"SSE", "SSE2", "SSE3", "SSSE3"}:
        return 1
    if n.startswith("SVE"):
        return 12
    if n.startswith(("ASIMD", "NEON")):
        return 11
    return None


def blas_core_tier(core: str | None) -> int | None:
    """Tier of an OpenBLAS core name as threadpoolctl reports it (``'Haswell'``)."""
    return _BLAS_CORE_TIERS.get((core or "").lower().replace("-", "").replace(" ", ""))
