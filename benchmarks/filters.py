"""npaccel.filters against OpenCV, scipy.ndimage and the memory roof, in one run.

    python benchmarks/filters.py                 # 4096x4096, float32 and uint8
    python benchmarks/filters.py --size 2048 --repeats 7 --only box3,median3
    python benchmarks/filters.py --json results.json

For each operation and dtype it times, after a warm-up call, the median of ``--repeats``
runs of: npaccel (backend "cpu", threads from npaccel.threads), cv2 (its default threads,
preallocated ``dst``), scipy.ndimage (fewer repeats: it is slow), and an image-sized copy
(``np.copyto``: the bandwidth roof). Ratios are same-run medians: this machine's speed
swings between runs, the ratios much less. Correctness is the test suite's job
(tests/filters compare every function with scipy.ndimage); cv2 calls use the border mode
that matches scipy's 'reflect' (BORDER_REFLECT), so all three compute the same filter
(cv2's uint8 and Gaussian kernels use fixed-point arithmetic, so not bit-identical).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import ndimage

import npaccel
from npaccel import filters, threads

try:
    import cv2
except ImportError:  # the benchmark still runs, without the OpenCV column
    cv2 = None


@dataclass
class Row:
    op: str
    dtype: str
    npaccel_ms: float
    cv2_ms: float | None
    scipy_ms: float | None
    copy_ms: float
    samples: dict[str, list[float]] = field(default_factory=dict)

    @property
    def vs_cv2(self) -> float | None:
        return self.npaccel_ms / self.cv2_ms if self.cv2_ms else None

    @property
    def vs_scipy(self) -> float | None:
        return self.scipy_ms / self.npaccel_ms if self.scipy_ms else None


def timeit(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up: compilation, page faults, caches
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return samples


def operations(img: np.ndarray, out: np.ndarray):
    """(name, npaccel call, cv2 call or None, scipy call) for one image."""
    f32 = img.dtype == np.float32
    reflect = cv2.BORDER_REFLECT if cv2 else None  # scipy's 'reflect': fedcba|abcdef|fedcba
    ddepth = (cv2.CV_32F if f32 else cv2.CV_8U) if cv2 else None
    rng = np.random.default_rng(1)
    k5 = rng.standard_normal((5, 5)).astype(np.float32)
    rect3 = np.ones((3, 3), np.uint8)
    rect31 = np.ones((31, 31), np.uint8)

    def cv(fn):
        return fn if cv2 is not None else None

    yield (
        "box3",
        lambda: filters.uniform_filter(img, 3, output=out),
        cv(lambda: cv2.blur(img, (3, 3), dst=out, borderType=reflect)),
        lambda: ndimage.uniform_filter(img, 3),
    )
    yield (
        "sobel",
        lambda: filters.sobel(img, axis=1, output=out),
        cv(lambda: cv2.Sobel(img, ddepth, 1, 0, ksize=3, dst=out, borderType=reflect)),
        lambda: ndimage.sobel(img, axis=1),
    )
    yield (
        "gaussian2",
        lambda: filters.gaussian_filter(img, 2.0, output=out),
        cv(lambda: cv2.GaussianBlur(img, (17, 17), 2.0, dst=out, borderType=reflect)),
        lambda: ndimage.gaussian_filter(img, 2.0),
    )
    yield (
        "laplace",
        lambda: filters.laplace(img, output=out),
        cv(lambda: cv2.Laplacian(img, ddepth, ksize=1, dst=out, borderType=reflect)),
        lambda: ndimage.laplace(img),
    )
    yield (
        "correlate5x5",
        lambda: filters.correlate(img, k5, output=out),
        cv(lambda: cv2.filter2D(img, ddepth, k5, dst=out, borderType=reflect)),
        lambda: ndimage.correlate(img, k5),
    )
    yield (
        "median3",
        lambda: filters.median_filter(img, 3, output=out),
        cv(lambda: cv2.medianBlur(img, 3, dst=out)),
        lambda: ndimage.median_filter(img, 3),
    )
    yield (
        "median5",
        lambda: filters.median_filter(img, 5, output=out),
        cv(lambda: cv2.medianBlur(img, 5, dst=out)),
        lambda: ndimage.median_filter(img, 5),
    )
    yield (
        "min3",
        lambda: filters.minimum_filter(img, 3, output=out),
        cv(lambda: cv2.erode(img, rect3, dst=out, borderType=reflect)),
        lambda: ndimage.minimum_filter(img, 3),
    )
    yield (
        "max31",
        lambda: filters.maximum_filter(img, 31, output=out),
        cv(lambda: cv2.dilate(img, rect31, dst=out, borderType=reflect)),
        lambda: ndimage.maximum_filter(img, 31),
    )


def run(size: int, dtypes: list[str], repeats: int, scipy_repeats: int, only: set[str] | None):
    rng = np.random.default_rng(0)
    rows = []
    for dtype in dtypes:
        img = (rng.random((size, size)) * 255).astype(dtype)
        out = np.empty_like(img)
        copy = timeit(lambda img=img, out=out: np.copyto(out, img), repeats)
        for name, ours, theirs, ref in operations(img, out):
            if only and name not in only:
                continue
            ours_t = timeit(ours, repeats)
            cv_t = timeit(theirs, repeats) if theirs is not None else None
            sp_t = timeit(ref, scipy_repeats) if scipy_repeats else None
            rows.append(
                Row(
                    name,
                    dtype,
                    statistics.median(ours_t),
                    statistics.median(cv_t) if cv_t else None,
                    statistics.median(sp_t) if sp_t else None,
                    statistics.median(copy),
                    {"npaccel": ours_t, "cv2": cv_t or [], "scipy": sp_t or [], "copy": copy},
                )
            )
            print(format_row(rows[-1]), flush=True)
    return rows


def format_row(r: Row) -> str:
    def ms(x: float | None) -> str:
        return f"{x:9.2f}" if x is not None else "        -"

    vs_cv = f"{r.vs_cv2:6.2f}x" if r.vs_cv2 is not None else "      -"
    vs_sp = f"{r.vs_scipy:7.0f}x" if r.vs_scipy is not None else "       -"
    return (
        f"{r.op:<13}{r.dtype:<8}{ms(r.npaccel_ms)}{ms(r.cv2_ms)}{ms(r.scipy_ms)}"
        f"{ms(r.copy_ms)}  {vs_cv}  {vs_sp}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--dtypes", default="float32,uint8")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--scipy-repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated op names")
    parser.add_argument("--json", default="", help="write results here")
    args = parser.parse_args()
    threads.set_threads()
    cv_threads = cv2.getNumThreads() if cv2 else None
    print(
        f"# npaccel {npaccel.__version__}, numpy {np.__version__}, "
        f"cv2 {cv2.__version__ if cv2 else 'absent'} ({cv_threads} threads), "
        f"{platform.processor() or platform.machine()}, usable CPUs {threads.usable_cpus()}, "
        f"{args.size}x{args.size}, median of {args.repeats} (scipy {args.scipy_repeats})"
    )
    print(
        f"{'op':<13}{'dtype':<8}{'npaccel':>9}{'cv2':>9}{'scipy':>9}{'copy':>9}"
        f"  {'/cv2':>7}  {'scipy/':>8}   (ms; /cv2 = npaccel time ÷ cv2 time)"
    )
    only = {s for s in args.only.split(",") if s} or None
    rows = run(args.size, args.dtypes.split(","), args.repeats, args.scipy_repeats, only)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in rows], f, indent=1)


if __name__ == "__main__":
    main()
