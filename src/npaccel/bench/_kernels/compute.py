"""Compute-bound kernels: GEMM, 2-D FFT, solve, inv, einsum, Monte Carlo pi.

FLOPs are the textbook counts of the algorithm each library runs: GEMM 2n^3, LU solve
2n^3/3 + 2n^2 (one right-hand side), inverse 2n^3 (LU, then inverting the factors), a
complex FFT of N points 5 N log2 N. Bytes are the operands read and the result written
once — the least any implementation must move.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from npaccel.bench._case import Case, CheckFailed, check_close
from npaccel.bench._profile import Profile


def _random(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _gemm(n: int, dtype: str) -> Case:
    def setup():
        a, b = _random((n, n), dtype, 1), _random((n, n), dtype, 2)
        out = np.empty((n, n), dtype)
        rows = np.random.default_rng(3).choice(n, size=min(n, 16), replace=False)
        expected = a[rows].astype(np.float64) @ b.astype(np.float64)
        atol = 32 * np.finfo(dtype).eps * n  # entries ~ sqrt(n), error ~ eps * n

        def check(result):
            result = np.asarray(result)
            if result.shape != (n, n):
                raise CheckFailed(f"a @ b has shape {result.shape}; expected {(n, n)}")
            check_close(result[rows], expected, rtol=0, atol=atol, what="a @ b")

        return (lambda: np.matmul(a, b, out=out)), check

    itemsize = np.dtype(dtype).itemsize
    return Case("linalg.gemm", "numpy", {"dtype": dtype, "n": n}, 2.0 * n**3,
                3 * n * n * itemsize, setup)  # fmt: skip


def _fft2(n: int, backend: str) -> Case:
    def setup():
        x = _random((n, n), np.float64, 4) + 1j * _random((n, n), np.float64, 5)
        if backend == "scipy":
            import numba
            import scipy.fft

            def run():  # workers: the count npaccel.threads set (Numba's and BLAS's)
                return scipy.fft.fft2(x, workers=numba.get_num_threads())
        else:

            def run():
                return np.fft.fft2(x)

        def check(result):
            result = np.asarray(result)
            scale = float(np.abs(x).max())
            check_close(np.fft.ifft2(result), x, rtol=0, atol=1e-9 * scale, what="ifft2(fft2(x))")
            if not np.isclose(result[0, 0], x.sum(), rtol=1e-9):
                raise CheckFailed(f"fft2 DC term {result[0, 0]!r} is not sum(x) {x.sum()!r}")

        return run, check

    points = n * n
    return Case("fft.fft2", backend, {"dtype": "complex128", "n": n},
                5.0 * points * math.log2(points), 2 * 16 * points, setup,
                scalable=backend == "scipy")  # fmt: skip


def _solve(n: int) -> Case:
    def setup():
        a = _random((n, n), np.float64, 6) + n * np.eye(n)  # well conditioned
        b = _random((n,), np.float64, 7)

        def check(x):
            residual = np.linalg.norm(a @ x - b) / (np.linalg.norm(a) * np.linalg.norm(x))
            if not residual < 1e3 * np.finfo(np.float64).eps:
                raise CheckFailed(f"solve: relative residual {residual:.3g} (want < 2.2e-13)")

        return (lambda: np.linalg.solve(a, b)), check

    return Case("linalg.solve", "numpy", {"dtype": "float64", "n": n},
                2 * n**3 / 3 + 2 * n * n, 8 * (n * n + 2 * n), setup)  # fmt: skip


def _inv(n: int) -> Case:
    def setup():
        a = _random((n, n), np.float64, 8) + n * np.eye(n)

        def check(ainv):
            error = np.linalg.norm(a @ ainv - np.eye(n)) / np.sqrt(n)
            if not error < 1e3 * np.finfo(np.float64).eps:
                raise CheckFailed(f"inv: |a @ inv(a) - I| / sqrt(n) = {error:.3g} (want < 2.2e-13)")

        return (lambda: np.linalg.inv(a)), check

    return Case("linalg.inv", "numpy", {"dtype": "float64", "n": n}, 2.0 * n**3,
                2 * 8 * n * n, setup)  # fmt: skip


def _einsum(n: int, optimize: bool) -> Case:
    """A chain of three matrices: without optimisation einsum sums the n^4 terms in one
    nested loop; with it, it contracts pairwise (two GEMMs, through BLAS)."""

    def setup():
        a, b, c = (_random((n, n), np.float64, s) for s in (9, 10, 11))
        expected = a @ b @ c

        def check(result):
            check_close(result, expected, rtol=1e-10, atol=1e-10 * n, what="einsum chain")

        return (lambda: np.einsum("ij,jk,kl->il", a, b, c, optimize=optimize)), check

    flops = 4.0 * n**3 if optimize else 3.0 * n**4
    return Case("einsum.chain3", "numpy", {"dtype": "float64", "n": n,
                "optimize": optimize}, flops, 4 * 8 * n * n, setup,
                scalable=optimize)  # fmt: skip


def _monte_carlo(samples: int) -> Case:
    chunks = 256

    def setup():
        from npaccel.bench._kernels import _numba as nb

        def check(estimate):
            p = math.pi / 4
            sigma = 4 * math.sqrt(p * (1 - p) / (samples // chunks * chunks))
            if not abs(float(estimate) - math.pi) < 6 * sigma:
                raise CheckFailed(f"pi estimate {float(estimate)!r} is more than 6 sigma "
                                  f"({6 * sigma:.2g}) from pi")  # fmt: skip

        return (lambda: nb.monte_carlo_pi(samples, chunks)), check

    # no FLOP figure: the random number generator's integer work dominates
    return Case("montecarlo.pi", "numba", {"samples": samples}, 0, 0, setup,
                work=(float(samples), "samples"), roof="none")  # fmt: skip


def cases(profile: Profile) -> Iterator[Case]:
    for n in profile.matrix_n:
        yield _gemm(n, "float32")
        yield _gemm(n, "float64")
    for n in profile.fft_n:
        yield _fft2(n, "numpy")
        yield _fft2(n, "scipy")
    for n in profile.matrix_n:
        yield _solve(n)
        yield _inv(n)
    for n in profile.einsum_n:
        yield _einsum(n, False)
        yield _einsum(n, True)
    yield _monte_carlo(profile.mc_samples)
