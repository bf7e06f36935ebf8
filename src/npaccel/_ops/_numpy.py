"""The reference backend: numpy.linalg (LAPACK), numpy.fft (pocketfft), numpy.einsum.

The obviously-correct path every other backend is tested against. numpy.fft runs on one
thread; numpy.linalg on the threads of NumPy's BLAS.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from npaccel._ops import _xp

__all__ = [
    "cholesky", "einsum", "fftn", "ifftn", "inv", "irfftn", "lstsq", "matmul", "rfftn", "solve",
]  # fmt: skip

matmul = partial(_xp.matmul, np)
solve = partial(_xp.solve, np)
inv = partial(_xp.inv, np)
cholesky = partial(_xp.cholesky, np)
lstsq = partial(_xp.lstsq, np)


def einsum(subscripts, operands, *, out, dtype, order, casting, optimize):
    return np.einsum(subscripts, *operands, out=out, dtype=dtype, order=order, casting=casting,
                     optimize=optimize)  # fmt: skip


# Inputs arrive in the result's precision (npaccel.fft's dtype policy); NumPy < 2 computes
# single precision in double, so results are cast back to that policy.
def _keep(result, a, real):
    single = a.dtype in (np.float32, np.complex64)
    want = (np.float32 if real else np.complex64) if single else result.dtype
    return result.astype(want, copy=False)


def fftn(a, s, axes, norm):
    return _keep(np.fft.fftn(a, s, axes, norm), a, real=False)


def ifftn(a, s, axes, norm):
    return _keep(np.fft.ifftn(a, s, axes, norm), a, real=False)


def rfftn(a, s, axes, norm):
    return _keep(np.fft.rfftn(a, s, axes, norm), a, real=False)


def irfftn(a, s, axes, norm):
    return _keep(np.fft.irfftn(a, s, axes, norm), a, real=True)
