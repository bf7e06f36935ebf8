"""``--plot PATH.png``: a roofline chart (every kernel a point under the measured roofs)
and a thread-scaling chart, side by side. matplotlib is imported only here (extra
``plot``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["plot"]


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise ImportError('--plot needs matplotlib: pip install "npaccel[plot]"') from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _roofline(ax, doc: dict) -> None:
    peaks = doc["peaks"]
    bw = peaks["bandwidth"]["bytes_per_s"] / 1e9 if peaks.get("bandwidth") else None
    points = [r for r in doc["results"]
              if r["role"] != "scaling" and r.get("intensity") and r.get("gflops")]  # fmt: skip
    intensities = [r["intensity"] for r in points] or [1.0]
    x = np.logspace(np.log10(min(intensities) / 4), np.log10(max(intensities) * 4), 200)
    for dtype, style in (("float64", "-"), ("float32", "--")):
        peak = peaks["flops"].get(dtype)
        if bw and peak:
            pi = peak["flops_per_s"] / 1e9
            ax.plot(x, np.minimum(pi, x * bw), style, color="0.3",
                    label=f"roof {dtype}: {pi:.0f} GFLOP/s, {bw:.0f} GB/s")  # fmt: skip
    markers = {"numpy": "o", "numba": "s", "npaccel": "D", "scipy": "^", "cv2": "v"}
    for r in points:
        ax.scatter(r["intensity"], r["gflops"], marker=markers.get(r["backend"], "x"), zorder=3)
        label = f"{r['kernel'].split('.', 1)[-1]} {r['backend']}"
        ax.annotate(label, (r["intensity"], r["gflops"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("GFLOP/s")
    ax.set_title("roofline (peaks measured in this run)")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(True, which="both", alpha=0.3)


def _scaling(ax, doc: dict) -> None:
    top = 1
    for s in doc["scaling"]:
        ax.plot(s["threads"], s["speedup"], marker="o", label=s["case"])
        top = max(top, max(s["threads"]))
    ax.plot([1, top], [1, top], ":", color="0.5", label="ideal")
    ax.set_xlabel("threads")
    ax.set_ylabel("speedup over 1 thread")
    ax.set_title("thread scaling")
    ax.legend(fontsize=6)
    ax.grid(True, alpha=0.3)


def plot(doc: dict, path: str | Path) -> Path:
    """Write the two charts of result document ``doc`` to ``path`` (PNG, SVG, PDF …)."""
    plt = _matplotlib()
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 6))
    try:
        _roofline(left, doc)
        _scaling(right, doc)
        cpu = doc["facts"].get("cpu", {})
        title = (f"npaccel bench ({doc['profile']}) · {cpu.get('model', '?')} · "
                 f"{doc['threads']['main']} threads · {doc['created']}")  # fmt: skip
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path
