"""Numba kernels of the pixel ops (the 'cpu' backend); the NumPy forms in _exposure are the
reference they are tested against, bit for bit. Imported on first use: it loads Numba."""

from __future__ import annotations

import numba
import numpy as np

from npaccel.filters._cpu import _conversion, _emit

_CHUNK = 1 << 14  # pixels one parallel task converts
_pjit = numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)


@_pjit
def _luma_kernel(src, dst, w, conv, bounds):
    """dst[i] = store(w[0]*src[i, 0] + w[1]*src[i, 1] + w[2]*src[i, 2]) in w's type, summed
    left to right as the NumPy reference does (no FMA: fastmath off)."""
    n = src.shape[0]
    for task in numba.prange((n + _CHUNK - 1) // _CHUNK):
        start = task * _CHUNK
        stop = min(n, start + _CHUNK)
        acc = np.empty(stop - start, dtype=w.dtype)
        lims = bounds.astype(w.dtype)
        wr, wg, wb = w[0], w[1], w[2]
        for i in range(start, stop):
            r = w.dtype.type(src[i, 0]) * wr
            g = w.dtype.type(src[i, 1]) * wg
            b = w.dtype.type(src[i, 2]) * wb
            acc[i - start] = (r + g) + b
        _emit(acc, dst[start:stop], conv, lims)


def luma(x: np.ndarray, weights: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[..., 0]`` = luma of the first three channels of ``x`` (..., C >= 3) with
    ``weights`` (3,) in the compute type, stored into ``out.dtype`` by the numeric policy."""
    src = np.ascontiguousarray(x).reshape(-1, x.shape[-1])
    target = out if out.flags.c_contiguous else np.empty(out.shape, out.dtype)
    conv, bounds = _conversion(target.dtype)
    _luma_kernel(src, target.reshape(-1), weights, conv, bounds)
    if target is not out:
        out[...] = target
    return out
