"""Every case the bench knows, by family. New rows (GPU, Dask, the loader) add a module
here with a ``cases(...)`` generator."""

from __future__ import annotations

from npaccel.bench._case import Case
from npaccel.bench._kernels import compute, filters, gpu, memory, scaleout, storage
from npaccel.bench._profile import Profile

__all__ = ["all_cases", "llc_bytes"]


def llc_bytes(facts: dict) -> int:
    """Total last-level cache of the machine (size x instances), from doctor's facts;
    32 MiB when unknown (STREAM arrays then are at least 128 MiB)."""
    caches = [c for c in facts.get("cpu", {}).get("caches", []) if c.get("type") != "Instruction"]
    if not caches:
        return 32 << 20
    top = max(c["level"] for c in caches)
    return sum(c["size_bytes"] * c.get("instances", 1) for c in caches if c["level"] == top)


def all_cases(profile: Profile, facts: dict, scratch: str | None = None) -> list[Case]:
    return [
        *memory.cases(profile, llc_bytes(facts)),
        *compute.cases(profile),
        *filters.cases(profile),
        *storage.cases(profile, scratch),
        *scaleout.cases(profile, scratch),
        *gpu.cases(profile),
    ]
