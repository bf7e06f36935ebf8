"""Comparing two runs: ratios, and only the changes that are both large and real.

A result is matched by its id (kernel, backend, parameters, threads). Its change is the
ratio of median times B/A (above 1: B is slower). It is flagged only when

* it is beyond the threshold (default 10%) in either direction, and
* it is statistically significant: a two-sided Mann-Whitney U test on the two sets of
  per-sample times gives p < alpha (default 0.05). The test is rank-based, so one outlier
  sample cannot make or break it; with 5 samples a side, its smallest p is 0.008.

Both conditions guard against a different failure: the threshold against tiny real changes
nobody should chase, the test against noise that moved a median by chance.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Change", "compare", "fact_differences"]

# facts whose difference makes two runs measure different machines or stacks
_FACTS = (
    ("cpu", "model"), ("cpu", "logical_cores"), ("cpu", "usable_cpus"), ("cpu", "sockets"),
    ("platform", "python"), ("platform", "machine"), ("versions", "numpy"),
    ("versions", "scipy"), ("versions", "numba"),
)  # fmt: skip


@dataclass(frozen=True)
class Change:
    id: str
    a: float | None  # median seconds in A
    b: float | None
    ratio: float | None  # b / a
    p_value: float | None
    verdict: str  # "regression", "improvement", "same", "only in A", "only in B", "not timed"


def _p_value(a: list[float], b: list[float]) -> float:
    from scipy.stats import mannwhitneyu

    if a == b:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def compare(a: dict, b: dict, *, threshold: float = 0.10, alpha: float = 0.05) -> list[Change]:
    """Changes from result document ``a`` to ``b`` (see the module docstring)."""
    if not threshold > 0:
        raise ValueError(f"`threshold` must be > 0 (a fraction: 0.1 is 10%); got {threshold!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be in (0, 1); got {alpha!r}")
    ra = {r["id"]: r for r in a["results"]}
    rb = {r["id"]: r for r in b["results"]}
    changes = []
    for key in [*ra, *(k for k in rb if k not in ra)]:
        x, y = ra.get(key), rb.get(key)
        if x is None or y is None:
            changes.append(Change(key, None, None, None, None,
                                  "only in B" if x is None else "only in A"))  # fmt: skip
            continue
        if x["status"] != "ok" or y["status"] != "ok":
            changes.append(Change(key, None, None, None, None, "not timed"))
            continue
        ma, mb = x["timing"]["median"], y["timing"]["median"]
        ratio = mb / ma
        p = _p_value(x["timing"]["samples"], y["timing"]["samples"])
        verdict = "same"
        if p < alpha and ratio >= 1 + threshold:
            verdict = "regression"
        elif p < alpha and ratio <= 1 / (1 + threshold):
            verdict = "improvement"
        changes.append(Change(key, ma, mb, ratio, p, verdict))
    return changes


def fact_differences(a: dict, b: dict) -> list[str]:
    """Human lines for each machine/stack fact that differs between the runs."""
    lines = []
    for section, key in _FACTS:
        va = a.get("facts", {}).get(section, {}).get(key)
        vb = b.get("facts", {}).get(section, {}).get(key)
        if va != vb:
            lines.append(f"{section}.{key}: {va!r} in A, {vb!r} in B")
    if a.get("threads", {}).get("main") != b.get("threads", {}).get("main"):
        lines.append(f"threads: {a['threads'].get('main')} in A, {b['threads'].get('main')} in B")
    if a.get("profile") != b.get("profile"):
        lines.append(f"profile: {a.get('profile')!r} in A, {b.get('profile')!r} in B")
    return lines
