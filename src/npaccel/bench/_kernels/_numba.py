"""Numba kernels the bench times against NumPy: fused, parallel, compiled once (cache=True).

Each loop is written so LLVM vectorises it: unit stride, no branches in the body.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

_pjit = numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)


@_pjit
def stream_copy(a, c):
    for i in prange(a.shape[0]):
        c[i] = a[i]


@_pjit
def stream_scale(b, c, s):
    for i in prange(c.shape[0]):
        b[i] = s * c[i]


@_pjit
def stream_add(a, b, c):
    for i in prange(a.shape[0]):
        c[i] = a[i] + b[i]


@_pjit
def stream_triad(a, b, c, s):
    for i in prange(b.shape[0]):
        a[i] = b[i] + s * c[i]


@_pjit
def total(a):
    acc = 0.0
    for i in prange(a.shape[0]):
        acc += a[i]
    return acc


@_pjit
def largest(a):
    m = -np.inf
    for i in prange(a.shape[0]):
        m = max(m, a[i])
    return m


@_pjit
def hypot_scale(a, b, c, out):
    """out = sqrt(a*a + b*b) * c, one pass over memory."""
    for i in prange(a.shape[0]):
        out[i] = np.sqrt(a[i] * a[i] + b[i] * b[i]) * c[i]


@_pjit
def monte_carlo_pi(n_samples, n_chunks):
    """Estimate pi from n_samples uniform points; each chunk draws from its thread's own
    random stream (Numba gives every thread an independent generator)."""
    per_chunk = n_samples // n_chunks
    hits = 0
    for chunk in prange(n_chunks):  # noqa: B007 - the chunk index only spreads the work
        inside = 0
        for _draw in range(per_chunk):
            x = np.random.random()  # noqa: NPY002 - Numba's per-thread generator
            y = np.random.random()  # noqa: NPY002
            inside += 1 if x * x + y * y <= 1.0 else 0
        hits += inside
    return 4.0 * hits / (per_chunk * n_chunks)
