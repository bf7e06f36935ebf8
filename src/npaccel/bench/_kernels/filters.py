"""Image filters: npaccel.filters (cpu backend, and its dask backend on 2 × 2 chunks with
the threaded scheduler — the cost of chunking and halos on one machine) against
scipy.ndimage and OpenCV.

Every backend filters the same square image with scipy's 'reflect' boundary (OpenCV's
BORDER_REFLECT) into a preallocated output. The reference is npaccel's numpy backend —
scipy.ndimage in float64, stored by npaccel's policy — so scipy's own float32/uint8 results
(truncated) and OpenCV's (fixed-point for uint8) are allowed their documented differences:
one unit for integers (two for scipy's Gaussian, which truncates after each of its two
passes; npaccel's own float32 arithmetic may round a near-.5 value the other way), a
float32 rounding for floats. OpenCV's median has only a
replicate border, the same as 'reflect' for a 3x3 window; larger windows are checked
away from the edges.

FLOPs count the separable algorithm (2 taps-1 operations per tap pass per pixel) for box
and Gaussian; the median compares rather than computes and is held against bandwidth.
Bytes are the image read once and written once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from npaccel.bench._case import Case, check_close
from npaccel.bench._profile import Profile

# (kernel, window or sigma); npaccel/scipy call and OpenCV call built in _calls
FILTERS = {"box3": 3, "gaussian2": 2.0, "median3": 3, "median5": 5}


def _image(n: int, dtype: str) -> np.ndarray:
    rng = np.random.default_rng(12)
    if dtype == "uint8":
        return rng.integers(0, 256, (n, n), dtype=np.uint8)
    return rng.random((n, n), dtype=np.float32)


def _calls(name: str, backend: str, x: np.ndarray, out: np.ndarray):
    p = FILTERS[name]
    if backend in {"npaccel", "reference"}:
        from npaccel import filters as f

        b = "cpu" if backend == "npaccel" else "numpy"
        return {
            "box3": lambda: f.uniform_filter(x, p, output=out, backend=b),
            "gaussian2": lambda: f.gaussian_filter(x, p, output=out, backend=b),
            "median3": lambda: f.median_filter(x, p, output=out, backend=b),
            "median5": lambda: f.median_filter(x, p, output=out, backend=b),
        }[name]
    if backend == "dask":  # npaccel's dask backend, 2 × 2 chunks, threaded scheduler
        import dask
        import dask.array as da

        from npaccel import filters as f

        lazy = da.from_array(x, chunks=max(1, x.shape[0] // 2))
        call = {"box3": lambda: f.uniform_filter(lazy, p),
                "gaussian2": lambda: f.gaussian_filter(lazy, p),
                "median3": lambda: f.median_filter(lazy, p),
                "median5": lambda: f.median_filter(lazy, p)}[name]  # fmt: skip

        def run():
            with dask.config.set(scheduler="threads"):
                da.store(call(), out, lock=False)
            return out

        return run
    if backend == "scipy":
        from scipy import ndimage

        return {
            "box3": lambda: ndimage.uniform_filter(x, p, output=out),
            "gaussian2": lambda: ndimage.gaussian_filter(x, p, output=out),
            "median3": lambda: ndimage.median_filter(x, p, output=out),
            "median5": lambda: ndimage.median_filter(x, p, output=out),
        }[name]
    import cv2

    k = 2 * int(4.0 * p + 0.5) + 1 if name == "gaussian2" else p  # scipy's truncate=4
    return {
        "box3": lambda: cv2.blur(x, (p, p), dst=out, borderType=cv2.BORDER_REFLECT),
        "gaussian2": lambda: cv2.GaussianBlur(
            x, (k, k), p, dst=out, sigmaY=p, borderType=cv2.BORDER_REFLECT
        ),
        "median3": lambda: cv2.medianBlur(x, p, dst=out),
        "median5": lambda: cv2.medianBlur(x, p, dst=out),
    }[name]


def _case(name: str, backend: str, n: int, dtype: str) -> Case:
    def setup():
        x = _image(n, dtype)
        out = np.empty_like(x)
        run = _calls(name, backend, x, out)
        expected = _calls(name, "reference", x, np.empty_like(x))()
        edge = FILTERS[name] // 2 if backend == "cv2" and name == "median5" else 0
        inner = (slice(edge, n - edge),) * 2
        if dtype == "float32":
            atol = 16 * np.finfo(np.float32).eps  # values in [0, 1)
        elif backend == "scipy" and name == "gaussian2":
            atol = 2.0  # scipy truncates after each of the two separable passes
        else:
            atol = 1.0  # float32 compute (npaccel) and fixed point (OpenCV) round near .5

        def check(result):
            got = np.asarray(result)[inner].astype(np.float64)
            check_close(got, expected[inner].astype(np.float64), rtol=0, atol=atol,
                        what=f"{name} ({backend})")  # fmt: skip

        return run, check

    pixels = n * n
    itemsize = np.dtype(dtype).itemsize
    taps = {"box3": 3, "gaussian2": 2 * int(4.0 * 2.0 + 0.5) + 1}.get(name)
    flops = 2 * (2 * taps - 1) * pixels if taps and dtype == "float32" else 0
    requires = {"cv2": ("cv2",), "dask": ("dask.array",)}.get(backend, ())
    return Case(f"filters.{name}", backend, {"dtype": dtype, "n": n}, flops, 2 * itemsize * pixels,
                setup, scalable=backend == "npaccel", work=(float(pixels), "pixels"),
                requires=requires)  # fmt: skip


def cases(profile: Profile) -> Iterator[Case]:
    names = ("box3", "gaussian2", "median3") if profile.name == "quick" else tuple(FILTERS)
    for n in profile.image_n:
        for dtype in ("float32", "uint8"):
            for name in names:
                for backend in ("npaccel", "dask", "scipy", "cv2"):
                    yield _case(name, backend, n, dtype)
