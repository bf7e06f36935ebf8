"""The cuda backend: cupy.linalg (cuBLAS, cuSOLVER), cupy.fft (cuFFT, plans cached by
CuPy) and cupy.einsum (cuTENSOR when CuPy's accelerators include it).

CuPy operands stay on their device and results are CuPy arrays; NumPy operands (a call
with ``backend='cuda'``) are uploaded, computed on and the results downloaded. Under
numba-cuda's simulator (machines without a GPU, in tests) device arrays are NumPy arrays
(:func:`npaccel.cuda._device.array_module`), so this same code runs on NumPy there.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from npaccel._ops import _xp
from npaccel.cuda._device import array_module, is_cupy

__all__ = [
    "cholesky", "einsum", "fftn", "ifftn", "inv", "irfftn", "lstsq", "matmul", "rfftn", "solve",
]  # fmt: skip


def _download(result: Any) -> Any:
    if isinstance(result, tuple):
        return tuple(_download(r) for r in result)
    return result.get() if is_cupy(result) else result


def _device(arrays: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...], bool]:
    """``(xp, arrays on the device, uploaded)``; raises BackendError without a usable GPU."""
    xp = array_module(*arrays)
    upload = xp is not np and not any(is_cupy(a) for a in arrays)
    if upload:
        arrays = tuple(xp.asarray(np.ascontiguousarray(a)) for a in arrays)
    return xp, arrays, upload


def _on_device(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(xp, *arrays, **params)`` run on the device, results in the operands' type."""

    @functools.wraps(fn)
    def run(*arrays: Any, **params: Any) -> Any:
        xp, arrays, upload = _device(arrays)
        result = fn(xp, *arrays, **params)
        return _download(result) if upload else result

    return run


def matmul(x1, x2, out=None):
    xp, (x1, x2), upload = _device((x1, x2))
    if upload:
        return _xp.write_out(xp.matmul(x1, x2).get(), out)
    return _xp.matmul(xp, x1, x2, out=out)


solve = _on_device(_xp.solve)
inv = _on_device(_xp.inv)
cholesky = _on_device(_xp.cholesky)
lstsq = _on_device(_xp.lstsq)


def einsum(subscripts, operands, *, out, dtype, order, casting, optimize):
    # cupy.einsum takes no out, order or casting: npaccel.einsum checked casting and sets
    # the layout; the copy into out is done here.
    xp, operands, upload = _device(tuple(operands))
    result = xp.einsum(subscripts, *operands, dtype=dtype, optimize=optimize)
    return _xp.write_out(_download(result) if upload else result, out)


def _fft(name: str) -> Callable[..., Any]:
    def run(xp, a, s, axes, norm):
        return getattr(xp.fft, name)(a, s, axes, norm)

    run.__name__ = run.__qualname__ = name
    return _on_device(run)


fftn = _fft("fftn")
ifftn = _fft("ifftn")
rfftn = _fft("rfftn")
irfftn = _fft("irfftn")
