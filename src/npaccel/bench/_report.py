"""Formatting results: rows of strings (easy to test), rendered by rich in the CLI."""

from __future__ import annotations

from npaccel.bench._compare import Change

__all__ = ["compare_rows", "peak_lines", "result_rows", "scaling_rows"]

RESULT_HEADER = ("case", "backend", "thr", "median", "IQR", "GFLOP/s", "GB/s", "roof",
                 "notes")  # fmt: skip
_DTYPES = {
    "float64": "f64",
    "float32": "f32",
    "float16": "f16",
    "complex128": "c128",
    "complex64": "c64",
    "uint8": "u8",
    "uint16": "u16",
    "int16": "i16",
    "int32": "i32",
}


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _num(x: float | None, fmt: str = ".3g") -> str:
    return "-" if x is None else format(x, fmt)


def _si(x: float) -> str:
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{prefix}"
    return f"{x:.3g}"


def _params(params: dict) -> str:
    """Short form: values only (dtypes abbreviated, big counts in SI), flags as key=value."""
    parts = []
    for key, value in params.items():
        if key == "dtype":
            parts.append(_DTYPES.get(str(value), str(value)))
        elif isinstance(value, bool):
            parts.append(f"{key}={'on' if value else 'off'}")
        elif isinstance(value, int) and key == "bytes":
            parts.append(f"{value / 2**20:.0f}MiB")
        elif isinstance(value, int) and value >= 10_000:
            parts.append(_si(value))
        elif key == "row":
            parts.append(f"row={value}B")
        else:
            parts.append(str(value))
    return " ".join(parts)


def result_rows(
    doc: dict, *, price: bool = False
) -> tuple[tuple[str, ...], list[tuple[str, ...]], list[str]]:
    """(header, rows, notes) of the main table: every case at the main thread count.
    Warnings and errors are numbered notes printed under the table."""
    header = RESULT_HEADER + (("cost",) if price else ())
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    gpu_skipped: dict[str, int] = {}
    for rec in doc["results"]:
        if rec["role"] == "scaling":
            continue
        if rec["status"] == "skipped" and rec.get("device") == "gpu":  # one note, not 20 rows
            gpu_skipped[rec["error"]] = gpu_skipped.get(rec["error"], 0) + 1
            continue
        t = rec["timing"]
        marks = []
        for text in ([rec["error"]] if rec["error"] else []) + list(rec["warnings"]):
            notes.append(f"[{len(notes) + 1}] {rec['id']}: {text}")
            marks.append(f"[{len(notes)}]")
        if rec["status"] == "ok" and rec.get("in_cache"):
            marks.insert(0, "in LLC")
        if rec["status"] == "ok" and rec.get("throughput") and rec["work"]:
            marks.insert(0, f"{_si(rec['throughput'])} {rec['work']['unit']}/s")
        fraction = rec.get("roof_fraction")
        roof = "-" if fraction is None else f"{100 * fraction:.0f}%"
        if fraction is not None and rec.get("bound"):
            roof += " mem" if rec["bound"] == "memory" else f" {rec.get('device', 'cpu')}"
        row = (
            f"{rec['kernel']} {_params(rec['params'])}",
            rec["backend"],
            str(rec["threads"]),
            _time(t["median"]) if t else rec["status"].upper(),
            f"{t['spread']:.0%}" if t and t["spread"] is not None else "-",
            _num(rec.get("gflops")),
            _num(rec.get("gbs")),
            roof,
            " ".join(marks),
        )
        if price:
            row += (_unit_cost(rec.get("cost")),)
        rows.append(row)
    for reason, count in gpu_skipped.items():
        notes.append(f"[{len(notes) + 1}] {count} GPU rows skipped: {reason}")
    return header, rows, notes


def _unit_cost(cost: dict | None) -> str:
    if not cost:
        return "-"
    for key, label in (("usd_per_tflop", "/TFLOP"), ("usd_per_tb", "/TB"),
                       ("usd_per_million_units", "/M units")):  # fmt: skip
        if cost.get(key) is not None:
            return f"${cost[key]:.3g}{label}"
    return f"${cost['usd_per_call']:.3g}/call"


def scaling_rows(doc: dict) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    header = ("case", "threads", "speedup", "efficiency", "stops paying at")
    rows = []
    for s in doc["scaling"]:
        rows.append((
            s["case"],
            " ".join(str(n) for n in s["threads"]),
            " ".join(f"{x:.2f}" for x in s["speedup"]),
            " ".join(f"{x:.0%}" for x in s["efficiency"]),
            "-" if s["stops_paying_at"] is None else f"{s['stops_paying_at']} threads",
        ))  # fmt: skip
    return header, rows


def peak_lines(doc: dict) -> list[str]:
    p = doc["peaks"]
    lines = [f"roof measured in this run at {p['threads']} threads:"]
    if p.get("bandwidth"):
        lines.append(f"  bandwidth {p['bandwidth']['bytes_per_s'] / 1e9:.3g} GB/s "
                     f"({p['bandwidth']['from']})")  # fmt: skip
    else:
        lines.append("  bandwidth: not measured (STREAM triad failed)")
    for dtype, peak in p["flops"].items():
        lines.append(f"  {dtype} {peak['flops_per_s'] / 1e9:.3g} GFLOP/s ({peak['from']})")
    if p.get("gpu"):
        g = p["gpu"]
        if g.get("bandwidth"):
            lines.append(f"  GPU copy bandwidth {g['bandwidth']['bytes_per_s'] / 1e9:.4g} GB/s "
                         f"({g['bandwidth']['from']})")  # fmt: skip
        for dtype, peak in g["flops"].items():
            lines.append(f"  GPU {dtype} {peak['flops_per_s'] / 1e12:.4g} TFLOP/s "
                         f"({peak['from']})")  # fmt: skip
    if doc.get("price"):
        pr = doc["price"]
        lines.append(
            f"price: ${pr['per_hour']:g}/hour" + (f" ({pr['instance']})" if pr["instance"] else "")
        )
    return lines


def compare_rows(
    changes: list[Change], *, all_rows: bool = False
) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    header = ("case", "A", "B", "B/A", "p", "drift", "verdict")
    rows = []
    for c in changes:
        if not all_rows and c.verdict == "same":
            continue
        rows.append((
            c.id,
            _time(c.a),
            _time(c.b),
            "-" if c.ratio is None else f"{c.ratio:.3f}",
            "-" if c.p_value is None else f"{c.p_value:.3g}",
            "-" if c.drift is None else f"{c.drift:.0%}",
            c.verdict,
        ))  # fmt: skip
    return header, rows
