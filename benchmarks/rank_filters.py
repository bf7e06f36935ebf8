"""Rank filters of npaccel (backend "cpu") against OpenCV, scipy.ndimage and the memory roof.

    python benchmarks/rank_filters.py                      # 4096x4096, uint8 and float32
    python benchmarks/rank_filters.py --size 2048 --repeats 21 --only median3,min31
    python benchmarks/rank_filters.py --threads 1 --json rank.json

Per operation and dtype, after one warm-up call of each: ``--repeats`` rounds, each timing
npaccel then cv2 back to back (cv2 with its default threads and a preallocated ``dst``), so
the ratio of each round compares the two under the same machine load; the table gives the
median times and the median of the per-round ratios. scipy.ndimage is timed on a centred
crop (``--scipy-crop``, fewer repeats: it is slow) and scaled to the full image by pixel
count (its cost is linear in pixels), as the header says. ``copy`` is ``np.copyto`` of the
image, the memory-bandwidth roof. Each npaccel result is checked against cv2's (identical
for these filters: medians use 'nearest' = cv2's replicated border for medianBlur, min/max
use 'reflect' = BORDER_REFLECT).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from scipy import ndimage

import npaccel
from npaccel import filters, threads

try:
    import cv2
except ImportError:  # still runs, without the OpenCV columns
    cv2 = None

OPS = ("median3", "median5", "min3", "max3", "min31", "max31")


def operation(name: str, img: np.ndarray, out: np.ndarray):
    """(npaccel call, cv2 call or None, scipy call on any image) for one operation."""
    size = int("".join(c for c in name if c.isdigit()))
    if name.startswith("median"):
        ours = lambda: filters.median_filter(img, size, output=out, mode="nearest")  # noqa: E731
        theirs = (lambda: cv2.medianBlur(img, size, dst=out)) if cv2 else None
        ref = lambda a: ndimage.median_filter(a, size, mode="nearest")  # noqa: E731
        return ours, theirs, ref
    minimum = name.startswith("min")
    ours_fn = filters.minimum_filter if minimum else filters.maximum_filter
    ref_fn = ndimage.minimum_filter if minimum else ndimage.maximum_filter
    ours = lambda: ours_fn(img, size, output=out, mode="reflect")  # noqa: E731
    theirs = None
    if cv2:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
        cv_fn = cv2.erode if minimum else cv2.dilate
        theirs = lambda: cv_fn(img, kernel, dst=out, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    return ours, theirs, lambda a: ref_fn(a, size, mode="reflect")


def clock(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def measure(img, name, repeats, crop, scipy_repeats):
    out_ours, out_cv = np.empty_like(img), np.empty_like(img)
    ours, _, ref = operation(name, img, out_ours)
    _, theirs, _ = operation(name, img, out_cv)
    ours()
    same = None
    if theirs is not None:
        theirs()
        same = bool(np.array_equal(out_ours, out_cv))
    t_ours, t_cv = [], []
    for _ in range(repeats):  # interleaved: each round sees the same machine load
        t_ours.append(clock(ours))
        if theirs is not None:
            t_cv.append(clock(theirs))
    row = {
        "op": name,
        "dtype": str(img.dtype),
        "npaccel_ms": statistics.median(t_ours),
        "cv2_ms": statistics.median(t_cv) if t_cv else None,
        "vs_cv2": statistics.median(a / b for a, b in zip(t_ours, t_cv, strict=True))
        if t_cv
        else None,
        "same_as_cv2": same,
        "samples": {"npaccel": t_ours, "cv2": t_cv},
    }
    if scipy_repeats:
        h, w = img.shape
        part = img[(h - crop) // 2 : (h + crop) // 2, (w - crop) // 2 : (w + crop) // 2]
        ref(part)
        t_sp = [clock(lambda: ref(part)) for _ in range(scipy_repeats)]
        row["scipy_ms"] = statistics.median(t_sp) * img.size / part.size
        row["scipy_vs"] = row["scipy_ms"] / row["npaccel_ms"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--dtypes", default="uint8,float32")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--scipy-crop", type=int, default=1024)
    parser.add_argument("--scipy-repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=None, help="npaccel threads (default: all usable)"
    )
    parser.add_argument(
        "--cv2-threads", type=int, default=None, help="cv2 threads (default: its own)"
    )
    parser.add_argument("--only", default="", help="comma-separated subset of " + ",".join(OPS))
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args()
    threads.set_threads(args.threads)
    if cv2 and args.cv2_threads:
        cv2.setNumThreads(args.cv2_threads)
    ops = [o for o in args.only.split(",") if o] or list(OPS)
    crop = min(args.scipy_crop, args.size)
    meta = {
        "npaccel": npaccel.__version__,
        "numpy": np.__version__,
        "cv2": cv2.__version__ if cv2 else None,
        "cv2_threads": cv2.getNumThreads() if cv2 else None,
        "npaccel_threads": threads.get_threads()["numba"],
        "machine": platform.processor() or platform.machine(),
        "usable_cpus": threads.usable_cpus(),
        "size": args.size,
        "repeats": args.repeats,
        "statistic": "median; ratio = median of per-round ratios (npaccel then cv2 each round)",
        "scipy": f"{crop}x{crop} centre crop, median of {args.scipy_repeats}, scaled by pixels",
    }
    print(
        f"# npaccel {meta['npaccel']} ({meta['npaccel_threads']} threads), numpy {np.__version__}, "
        f"cv2 {meta['cv2']} ({meta['cv2_threads']} threads), {meta['machine']}, "
        f"{meta['usable_cpus']} usable CPUs, {args.size}x{args.size}, {meta['statistic']}; "
        f"scipy: {meta['scipy']}"
    )
    print(
        f"{'op':<9}{'dtype':<9}{'npaccel':>9}{'cv2':>9}{'scipy*':>10}{'copy':>8}"
        f"{'/cv2':>8}{'scipy*/':>9}{'/copy':>7}  same   (ms)"
    )
    rng = np.random.default_rng(0)
    rows = []
    for dtype in args.dtypes.split(","):
        img = (rng.random((args.size, args.size)) * 255).astype(dtype)
        copy = statistics.median(copy_times(img, args.repeats))
        for name in ops:
            row = measure(img, name, args.repeats, crop, args.scipy_repeats)
            row["copy_ms"] = copy
            rows.append(row)
            print(format_row(row), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


def copy_times(img: np.ndarray, repeats: int) -> list[float]:
    dst = np.empty_like(img)
    return [clock(lambda: np.copyto(dst, img)) for _ in range(repeats)]


def format_row(r: dict) -> str:
    def num(x, fmt):
        return format(x, fmt) if x is not None else "-"

    same = {True: "yes", False: "NO", None: "-"}[r["same_as_cv2"]]
    return (
        f"{r['op']:<9}{r['dtype']:<9}{r['npaccel_ms']:9.2f}{num(r['cv2_ms'], '9.2f'):>9}"
        f"{num(r.get('scipy_ms'), '10.0f'):>10}{r['copy_ms']:8.2f}{num(r['vs_cv2'], '7.2f'):>7}x"
        f"{num(r.get('scipy_vs'), '8.0f'):>8}x{r['npaccel_ms'] / r['copy_ms']:6.1f}x  {same}"
    )


if __name__ == "__main__":
    main()
