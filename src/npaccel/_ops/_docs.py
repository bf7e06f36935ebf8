"""Shared parameter text for the dispatching ops' docstrings, kept once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

DOCS = {
    "backend_linalg": """backend : {'cpu', 'numpy', 'cuda'}, optional
        Engine; by default the operands' array type chooses: NumPy arrays run on 'cpu'
        (NumPy's LAPACK/BLAS, on the threads :mod:`npaccel.threads` sets; 'numpy' is the
        same reference path), CuPy arrays on 'cuda' (cuBLAS/cuSOLVER). 'cuda' with NumPy
        operands uploads them, computes on the GPU and returns NumPy arrays.""",
    "backend_fft": """backend : {'cpu', 'numpy', 'cuda'}, optional
        Engine; by default the input's array type chooses: NumPy arrays run on 'cpu'
        (scipy.fft, multithreaded: ``workers`` = the threads :mod:`npaccel.threads`
        allows), CuPy arrays on 'cuda' (cuFFT). 'numpy' is numpy.fft (one thread), the
        reference. 'cuda' with a NumPy input uploads it, transforms on the GPU and returns
        a NumPy array.""",
    "backend_einsum": """backend : {'cpu', 'numpy', 'cuda'}, optional
        Engine; by default the operands' array type chooses: NumPy arrays run on 'cpu'
        (numpy.einsum, whose optimized contractions call BLAS; 'numpy' is the same
        reference path), CuPy arrays on 'cuda' (cupy.einsum: cuTENSOR when CuPy's
        accelerators include it, ``CUPY_ACCELERATORS=cub,cutensor``, else cuBLAS). 'cuda'
        with NumPy operands uploads them and returns a NumPy array.""",
    "raises_singular": """numpy.linalg.LinAlgError
        On the NumPy backends, if a matrix is singular (cuSOLVER returns non-finite values
        instead unless ``cupyx.errstate(linalg='raise')``).""",
    "raises_dispatch": """TypeError
        If the operands mix array types (NumPy and CuPy), or are of a type no backend
        takes.
    BackendError
        If `backend` is unknown or cannot run here (CuPy or a GPU missing: the message
        names ``pip install "npaccel[gpu]"``).""",
}


def fill_doc(fn: F) -> F:
    if fn.__doc__:
        fn.__doc__ = fn.__doc__ % DOCS
    return fn
