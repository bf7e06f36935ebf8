"""Linear algebra written once for any NumPy-compatible array module ``xp`` (NumPy, CuPy).

Parameters arrive validated and normalised (:mod:`npaccel.linalg`); what is here only
bridges the libraries' remaining differences, so every backend answers the same question:
``solve`` always gets ``b`` as a stack of matrices with the batch broadcast explicitly
(CuPy does not broadcast batches; NumPy 1.x reads ``b.ndim == a.ndim - 1`` as vectors), and
``cholesky(upper=True)`` is the conjugate transpose of the lower factor (NumPy < 2 and
CuPy have no ``upper``).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["cholesky", "inv", "lstsq", "matmul", "solve", "write_out"]


def write_out(result: Any, out: Any) -> Any:
    """``result``, or ``out`` filled with it when given."""
    if out is None or result is out:
        return result if out is None else out
    out[...] = result
    return out


def matmul(xp: ModuleType, x1: Any, x2: Any, out: Any = None) -> Any:
    return xp.matmul(x1, x2, out=out)


def solve(xp: ModuleType, a: Any, b: Any, vector: bool) -> Any:
    if vector:
        b = b[:, None]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    a = xp.broadcast_to(a, batch + a.shape[-2:])
    b = xp.broadcast_to(b, batch + b.shape[-2:])
    x = xp.linalg.solve(a, b)
    return x[..., 0] if vector else x


def inv(xp: ModuleType, a: Any) -> Any:
    return xp.linalg.inv(a)


def cholesky(xp: ModuleType, a: Any, upper: bool) -> Any:
    lower = xp.linalg.cholesky(a)
    return xp.conj(xp.swapaxes(lower, -1, -2)) if upper else lower


def lstsq(xp: ModuleType, a: Any, b: Any, rcond: float) -> tuple[Any, Any, Any, Any]:
    x, residuals, rank, s = xp.linalg.lstsq(a, b, rcond=rcond)
    return x, residuals, rank, s
