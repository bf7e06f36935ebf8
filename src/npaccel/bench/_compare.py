"""Comparing two runs: ratios, and only the changes that are both large and real.

A result is matched by its id (kernel, backend, parameters, threads). Its change is the
ratio of median times B/A (above 1: B is slower). It is flagged only when

* it is beyond the threshold (default 10%) in either direction,
* it is statistically significant: a two-sided Mann-Whitney U test on the two sets of
  per-sample times gives p < alpha (default 0.05). The test is rank-based, so one outlier
  sample cannot make or break it; with 5 samples a side, its smallest p is 0.008; and
* it holds round by round, beyond the drift each run saw of itself: a run takes its
  samples in rounds spread over the whole run, and every round's median in B must be
  beyond the threshold of every round's median in A, on the same side. Samples within a
  round are taken back to back and share whatever the machine was doing in those seconds,
  so on a VM whose speed drifts they agree with each other more than with the next run:
  the U test alone would call such drift significant. Rounds are what a run knows of the
  machine's drift (runs without round structure skip this condition).

The threshold guards against tiny real changes nobody should chase, the test against noise
that moved a median by chance, the rounds against a machine that drifted during a run.
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
    # the larger of the two runs' drift: slowest round median / fastest one - 1 (None
    # without rounds); a change smaller than this cannot be told from the machine
    drift: float | None = None


def _p_value(a: list[float], b: list[float]) -> float:
    from scipy.stats import mannwhitneyu

    if a == b:
        return 1.0
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def _round_medians(timing: dict) -> list[float] | None:
    import statistics

    k = timing.get("per_round")
    samples = timing["samples"]
    if not k or len(samples) <= k:
        return None
    return [statistics.median(samples[i : i + k]) for i in range(0, len(samples), k)]


def _drift(x: dict, y: dict) -> float | None:
    spans = [max(r) / min(r) - 1 for r in (_round_medians(x), _round_medians(y)) if r]
    return max(spans) if spans else None


def _beyond_drift(x: dict, y: dict, slower: bool, threshold: float) -> bool:
    """Every round median of ``y`` beyond ``threshold`` of every round median of ``x`` (on
    the slower side when ``slower``); True when either run has no rounds."""
    rx, ry = _round_medians(x), _round_medians(y)
    if rx is None or ry is None:
        return True
    if slower:
        return min(ry) >= max(rx) * (1 + threshold)
    return max(ry) * (1 + threshold) <= min(rx)


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
        tx, ty = x["timing"], y["timing"]
        if p < alpha and ratio >= 1 + threshold and _beyond_drift(tx, ty, True, threshold):
            verdict = "regression"
        elif (p < alpha and ratio <= 1 / (1 + threshold)
              and _beyond_drift(tx, ty, False, threshold)):  # fmt: skip
            verdict = "improvement"
        changes.append(Change(key, ma, mb, ratio, p, verdict, _drift(tx, ty)))
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
