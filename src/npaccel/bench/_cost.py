"""Cost per unit of work: what a figure costs at an hourly instance price.

The whole instance is paid for by the second while a kernel runs, whatever number of
threads it uses, so a call costs ``price_per_hour / 3600 * seconds``. From it: dollars per
TFLOP done, per TB moved, and per million work units (pixels, samples; images later).
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

__all__ = ["cost_of", "instance_prices", "resolve_price"]


def instance_prices(path: str | Path | None = None) -> dict[str, float]:
    """The instance price table: the packaged one, or a JSON file ``{"name": usd_per_hour}``."""
    if path is None:
        text = resources.files("npaccel.bench").joinpath("instances.json").read_text()
        where = "the packaged instance table"
    else:
        text = Path(path).read_text()
        where = str(path)
    table = {k: v for k, v in json.loads(text).items() if not k.startswith("_")}
    for name, price in table.items():
        if not isinstance(price, (int, float)) or not price > 0:
            raise ValueError(f"price of {name!r} in {where} must be a number > 0; got {price!r}")
    return {k: float(v) for k, v in table.items()}


def resolve_price(per_hour: float | None, instance: str | None,
                  table: str | Path | None = None) -> dict:  # fmt: skip
    """``{"per_hour": usd, "instance": name or None, "source": ...}`` from the options."""
    if per_hour is not None:
        if not (isinstance(per_hour, (int, float)) and math.isfinite(per_hour) and per_hour > 0):
            raise ValueError(f"`price_per_hour` must be a finite number > 0; got {per_hour!r}")
        return {"per_hour": float(per_hour), "instance": instance, "source": "given"}
    prices = instance_prices(table)
    if instance not in prices:
        raise ValueError(
            f"`instance` must be one of {{{', '.join(sorted(prices))}}}; got {instance!r} "
            "(or give --price-per-hour)"
        )
    return {"per_hour": prices[instance], "instance": instance,
            "source": str(table) if table else "packaged table"}  # fmt: skip


def cost_of(rec: dict, per_hour: float) -> dict | None:
    """Dollar figures of one result record; None when it has no time."""
    if rec["status"] != "ok" or rec["timing"] is None:
        return None
    per_call = per_hour / 3600.0 * rec["timing"]["median"]
    out = {"usd_per_call": per_call, "usd_per_tflop": None, "usd_per_tb": None,
           "usd_per_million_units": None}  # fmt: skip
    if rec["flops"]:
        out["usd_per_tflop"] = per_call / (rec["flops"] / 1e12)
    if rec["bytes"]:
        out["usd_per_tb"] = per_call / (rec["bytes"] / 1e12)
    if rec["work"]:
        out["usd_per_million_units"] = per_call / (rec["work"]["count"] / 1e6)
    return out
