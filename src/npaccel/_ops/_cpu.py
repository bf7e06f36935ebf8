"""The cpu backend (default for NumPy input): multithreaded host libraries.

FFTs run on scipy.fft's pocketfft with ``workers`` = the threads npaccel.threads allows
(numpy.fft has one thread). Linear algebra and einsum are NumPy's: LAPACK and BLAS are
already multithreaded, on the pools :func:`npaccel.threads.set_threads` sets.
"""

from __future__ import annotations

import sys

import scipy.fft

from npaccel._ops._numpy import cholesky, einsum, inv, lstsq, matmul, solve
from npaccel.threads import usable_cpus

__all__ = [
    "cholesky", "einsum", "fftn", "ifftn", "inv", "irfftn", "lstsq", "matmul", "rfftn", "solve",
    "workers",
]  # fmt: skip


def workers() -> int:
    """Threads for one FFT: the usable CPUs, or fewer when npaccel.threads.set_threads (or
    numba.set_num_threads) lowered Numba's count on this thread.

    Numba's count is read only once its thread pool has started (what set_threads does), so
    an FFT never starts Numba's pool itself.
    """
    n = usable_cpus()
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is not None and getattr(parallel, "_is_initialized", False):
        n = min(n, sys.modules["numba"].get_num_threads())
    return max(1, n)


def fftn(a, s, axes, norm):
    return scipy.fft.fftn(a, s, axes, norm, workers=workers())


def ifftn(a, s, axes, norm):
    return scipy.fft.ifftn(a, s, axes, norm, workers=workers())


def rfftn(a, s, axes, norm):
    return scipy.fft.rfftn(a, s, axes, norm, workers=workers())


def irfftn(a, s, axes, norm):
    return scipy.fft.irfftn(a, s, axes, norm, workers=workers())
