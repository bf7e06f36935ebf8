"""Thread scaling: speedup and parallel efficiency of each case timed at several counts,
and where more threads stop paying."""

from __future__ import annotations

from collections import defaultdict

__all__ = ["PAYING_GAIN", "scaling_of"]

PAYING_GAIN = 1.10  # a step up in threads must cut the time by 10% to count as paying


def scaling_of(records: list[dict]) -> list[dict]:
    """One entry per case timed at two or more thread counts.

    ``stops_paying_at`` is the first count whose speedup over the previous count is below
    ``PAYING_GAIN`` (None: every step paid)."""
    by_case: dict[str, list[dict]] = defaultdict(list)
    for rec in records:
        if rec["status"] == "ok" and rec["timing"]:
            by_case[rec["id"].rsplit("@", 1)[0]].append(rec)
    out = []
    for name, recs in by_case.items():
        recs.sort(key=lambda r: r["threads"])
        if len(recs) < 2 or recs[0]["threads"] != 1:
            continue
        base = recs[0]["timing"]["median"]
        counts = [r["threads"] for r in recs]
        medians = [r["timing"]["median"] for r in recs]
        speedup = [base / m for m in medians]
        stops = next(
            (counts[i] for i in range(1, len(recs)) if medians[i - 1] / medians[i] < PAYING_GAIN),
            None,
        )
        out.append({
            "case": name,
            "threads": counts,
            "median": medians,
            "speedup": speedup,
            "efficiency": [s / n for s, n in zip(speedup, counts, strict=True)],
            "stops_paying_at": stops,
        })  # fmt: skip
    return out
