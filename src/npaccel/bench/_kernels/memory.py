"""Memory-bound kernels: STREAM, reductions, an elementwise expression.

STREAM follows McCalpin's rules: float64 arrays each at least 4x the last-level cache (so
no pass is served from cache), bytes counted as the arrays a kernel names — copy and scale
16 B per element, add and triad 24 B — without the write-allocate traffic a cache adds.
NumPy runs each as the user would write it with ``out=`` (scale and triad take two passes,
NumPy having no fused multiply-add ufunc); Numba runs one fused parallel loop.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

import numpy as np

from npaccel.bench._case import Case, CheckFailed, check_close
from npaccel.bench._profile import Profile

SCALAR = 3.0


def stream_elements(profile: Profile, llc_bytes: int) -> int:
    """Elements of each STREAM array: at least 4x the last-level cache, and the profile's
    minimum, rounded up to a multiple of 2**20."""
    want = max(4 * llc_bytes, profile.stream_bytes) // 8
    return -(-want // (1 << 20)) * (1 << 20)


_SHARED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _arrays(n: int, count: int) -> list[np.ndarray]:
    """``count`` float64 arrays of length ``n``, shared by every memory case alive at the
    same time (the suite keeps a whole family alive: one set of arrays, not one per case;
    freed when the last case holding them goes)."""
    out = []
    for i in range(count):
        a = _SHARED.get((n, i))
        if a is None:
            a = np.random.default_rng(i).random(n)
            _SHARED[(n, i)] = a
        out.append(a)
    return out


def _stream(op: str, backend: str, n: int) -> Case:
    def setup():
        a, b, c = _arrays(n, 3)
        if backend == "numba":
            from npaccel.bench._kernels import _numba as nb

            run = {
                "copy": lambda: nb.stream_copy(a, c) or c,
                "scale": lambda: nb.stream_scale(b, c, SCALAR) or b,
                "add": lambda: nb.stream_add(a, b, c) or c,
                "triad": lambda: nb.stream_triad(a, b, c, SCALAR) or a,
            }[op]
        else:

            def scale():
                return np.multiply(c, SCALAR, out=b)

            def triad():
                np.multiply(c, SCALAR, out=a)
                return np.add(a, b, out=a)

            run = {
                "copy": lambda: np.copyto(c, a) or c,
                "scale": scale,
                "add": lambda: np.add(a, b, out=c),
                "triad": triad,
            }[op]
        # references from copies taken before any run (runs overwrite their output only)
        a0, b0, c0 = a[:4096].copy(), b[:4096].copy(), c[:4096].copy()
        expected = {"copy": a0, "scale": SCALAR * c0, "add": a0 + b0, "triad": b0 + SCALAR * c0}

        def check(result):
            check_close(np.asarray(result)[:4096], expected[op], rtol=1e-15, what=f"{op} output")

        return run, check

    words = {"copy": 2, "scale": 2, "add": 3, "triad": 3}[op]
    flops = {"copy": 0, "scale": 1, "add": 1, "triad": 2}[op] * n
    return Case(f"stream.{op}", backend, {"dtype": "float64", "n": n}, flops, words * 8 * n, setup)


def _reduction(op: str, backend: str, n: int) -> Case:
    def setup():
        (a,) = _arrays(n, 1)
        if backend == "numba":
            from npaccel.bench._kernels import _numba as nb

            run = nb.total if op == "sum" else nb.largest
        else:
            run = np.sum if op == "sum" else np.max
        exact = float(np.sum(a, dtype=np.longdouble)) if op == "sum" else float(a.max())

        def check(result):
            ok = (
                np.isclose(float(result), exact, rtol=1e-12, atol=0.0)
                if op == "sum"
                else (float(result) == exact)
            )
            if not ok:
                raise CheckFailed(f"{op} gave {float(result)!r}; the reference {exact!r}")

        return (lambda: run(a)), check

    return Case(f"reduce.{op}", backend, {"dtype": "float64", "n": n},
                n - 1 if op == "sum" else 0, 8 * n, setup)  # fmt: skip


def _elementwise(backend: str, n: int) -> Case:
    def setup():
        a, b, c = _arrays(n, 3)
        out = np.empty(n)
        if backend == "numba":
            from npaccel.bench._kernels import _numba as nb

            def run():
                nb.hypot_scale(a, b, c, out)
                return out
        else:

            def run():
                return np.sqrt(a * a + b * b) * c  # as users write it: temporaries included

        head = slice(0, 4096)
        expected = np.sqrt(a[head] ** 2 + b[head] ** 2) * c[head]

        def check(result):
            check_close(np.asarray(result)[head], expected, rtol=1e-14, what="sqrt(a*a+b*b)*c")

        return run, check

    # 3 multiplies, 1 add, 1 sqrt per element; 3 arrays read, 1 written
    return Case("elementwise.hypot_scale", backend, {"dtype": "float64", "n": n}, 5 * n,
                32 * n, setup)  # fmt: skip


def cases(profile: Profile, llc_bytes: int) -> Iterator[Case]:
    n = stream_elements(profile, llc_bytes)
    for op in ("copy", "scale", "add", "triad"):
        for backend in ("numpy", "numba"):
            yield _stream(op, backend, n)
    for op in ("sum", "max"):
        for backend in ("numpy", "numba"):
            yield _reduction(op, backend, n)
    for backend in ("numpy", "numba"):
        yield _elementwise(backend, n)
