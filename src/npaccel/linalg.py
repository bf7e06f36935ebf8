"""numpy.linalg's names and signatures, run where the operands live.

NumPy arrays run on NumPy's LAPACK/BLAS (``backend='cpu'``, multithreaded on the pools
:mod:`npaccel.threads` sets), CuPy arrays on cuBLAS/cuSOLVER (``backend='cuda'``); results
come back in the operands' array type. Shapes are checked before any work, with messages
that name the argument and its shape.

Examples
--------
>>> import numpy as np
>>> from npaccel import linalg
>>> a = np.array([[3.0, 1.0], [1.0, 2.0]])
>>> linalg.solve(a, np.array([9.0, 8.0]))
array([2., 3.])
>>> linalg.matmul(a, linalg.inv(a)).round(12)
array([[1., 0.],
       [0., 1.]])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from npaccel._ops import _dispatch
from npaccel._ops._docs import fill_doc

__all__ = ["cholesky", "inv", "lstsq", "matmul", "solve"]

_dispatch.register_family("linalg")

# What LAPACK computes in; bool and integers are computed in float64 (NumPy's rule).
_LAPACK_DTYPES = tuple(np.dtype(t) for t in ("float32", "float64", "complex64", "complex128"))


def _check_lapack_dtype(name: str, a: Any) -> None:
    if a.dtype.kind in "biu" or a.dtype in _LAPACK_DTYPES:
        return
    raise TypeError(f"`{name}` has dtype {a.dtype}; LAPACK takes float32, float64, complex64 "
                    "and complex128 (bool and integers are computed in float64)")  # fmt: skip


def _check_stacked_square(name: str, a: Any) -> int:
    if a.ndim < 2:
        raise ValueError(f"`{name}` must be a square matrix or a stack of them, shape "
                         f"(..., M, M); got shape {tuple(a.shape)}")  # fmt: skip
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"`{name}` must be square in its last two axes, shape (..., M, M); "
                         f"got shape {tuple(a.shape)}")  # fmt: skip
    _check_lapack_dtype(name, a)
    return int(a.shape[-1])


def _batch(names: tuple[str, str], shapes: tuple[tuple[int, ...], tuple[int, ...]],
           batches: tuple[tuple[int, ...], tuple[int, ...]]) -> tuple[int, ...]:  # fmt: skip
    try:
        return np.broadcast_shapes(*batches)
    except ValueError:
        raise ValueError(
            f"the stack dimensions of `{names[0]}` {batches[0]} and `{names[1]}` {batches[1]} "
            f"do not broadcast (shapes {shapes[0]} and {shapes[1]})"
        ) from None


@fill_doc
def matmul(x1, x2, /, *, out=None, backend=None):
    """Matrix product of two arrays, with NumPy's stacking and 1-D rules.

    Parameters
    ----------
    x1, x2 : array_like
        Operands, at least 1-D. Stacks of matrices broadcast over their leading axes; a 1-D
        operand is a vector (a row for `x1`, a column for `x2`).
    out : ndarray, optional
        Array of the operands' type to hold the result.
    %(backend_linalg)s

    Returns
    -------
    ndarray
        ``x1 @ x2`` in the operands' array type (`out` when given); the dtype is NumPy's
        (float32 @ float32 stays float32).

    Raises
    ------
    ValueError
        If an operand is 0-d, ``x1.shape[-1]`` differs from the rows of `x2`, or the stack
        dimensions do not broadcast.
    %(raises_dispatch)s

    See Also
    --------
    numpy.linalg.matmul, cupy.matmul

    Examples
    --------
    >>> import numpy as np
    >>> from npaccel.linalg import matmul
    >>> matmul(np.ones((5, 2, 3), np.float32), np.ones((3, 4), np.float32)).shape
    (5, 2, 4)
    """
    call = _dispatch.resolve("linalg", backend, ("x1", "x2"), (x1, x2))
    x1, x2 = call.arrays
    for name, x in (("x1", x1), ("x2", x2)):
        if x.ndim == 0:
            raise ValueError(f"`{name}` must have at least 1 dimension; got a 0-d array (use * "
                             "to multiply by a scalar)")  # fmt: skip
    rows_axis = 0 if x2.ndim == 1 else -2
    if x1.shape[-1] != x2.shape[rows_axis]:
        raise ValueError(
            f"`x1` has {x1.shape[-1]} columns (shape {tuple(x1.shape)}) but `x2` has "
            f"{x2.shape[rows_axis]} rows (shape {tuple(x2.shape)}); matmul needs "
            f"x1.shape[-1] == x2.shape[{rows_axis}]"
        )
    batch = _batch(("x1", "x2"), (tuple(x1.shape), tuple(x2.shape)),
                   (tuple(x1.shape[:-2]), tuple(x2.shape[:-2])))  # fmt: skip
    shape = batch + tuple(x1.shape[-2:-1]) + tuple(x2.shape[-1:] if x2.ndim > 1 else ())
    _dispatch.check_out(out, shape, np.result_type(x1.dtype, x2.dtype), call)
    return call.module.matmul(x1, x2, out=out)


@fill_doc
def solve(a, b, *, backend=None):
    """Solve ``a @ x = b`` for ``x``, for one square system or a stack of them.

    Parameters
    ----------
    a : array_like, shape (..., M, M)
        Coefficient matrices.
    b : array_like, shape (M,) or (..., M, K)
        Right-hand sides. As in NumPy 2, `b` is a vector only when it is 1-D; otherwise it
        is a stack of (M, K) matrices whose stack dimensions broadcast with `a`'s.
    %(backend_linalg)s

    Returns
    -------
    ndarray, shape (..., M) or (..., M, K)
        The solutions, in the operands' array type.

    Raises
    ------
    ValueError
        If `a` is not square in its last two axes, the rows of `b` differ from M, or the
        stack dimensions do not broadcast.
    TypeError
        If a dtype is one LAPACK cannot take (float16, longdouble).
    %(raises_singular)s
    %(raises_dispatch)s

    See Also
    --------
    numpy.linalg.solve, cupy.linalg.solve

    Examples
    --------
    >>> import numpy as np
    >>> from npaccel.linalg import solve
    >>> solve(np.eye(3) * 2, np.ones((4, 3, 2))).shape
    (4, 3, 2)
    """
    call = _dispatch.resolve("linalg", backend, ("a", "b"), (a, b))
    a, b = call.arrays
    m = _check_stacked_square("a", a)
    if b.ndim == 0:
        raise ValueError("`b` must have at least 1 dimension, shape (M,) or (..., M, K); got a "
                         "0-d array")  # fmt: skip
    _check_lapack_dtype("b", b)
    vector = b.ndim == 1
    rows_axis = 0 if vector else -2
    if b.shape[rows_axis] != m:
        raise ValueError(
            f"`b` has {b.shape[rows_axis]} rows (shape {tuple(b.shape)}) but `a` is {m}x{m} "
            f"(shape {tuple(a.shape)}); solve needs b.shape[{rows_axis}] == a.shape[-1]"
        )
    _batch(("a", "b"), (tuple(a.shape), tuple(b.shape)),
           (tuple(a.shape[:-2]), () if vector else tuple(b.shape[:-2])))  # fmt: skip
    return call.module.solve(a, b, vector)


@fill_doc
def inv(a, *, backend=None):
    """Inverse of a square matrix, or of each matrix in a stack.

    Parameters
    ----------
    a : array_like, shape (..., M, M)
        Matrices to invert.
    %(backend_linalg)s

    Returns
    -------
    ndarray, shape (..., M, M)
        The inverses, in the operands' array type (float32 stays float32; bool and
        integers give float64).

    Raises
    ------
    ValueError
        If `a` is not square in its last two axes.
    TypeError
        If its dtype is one LAPACK cannot take (float16, longdouble).
    %(raises_singular)s
    %(raises_dispatch)s

    See Also
    --------
    numpy.linalg.inv, cupy.linalg.inv

    Examples
    --------
    >>> import numpy as np
    >>> from npaccel.linalg import inv
    >>> inv(np.array([[2.0, 0.0], [0.0, 4.0]]))
    array([[0.5 , 0.  ],
           [0.  , 0.25]])
    """
    call = _dispatch.resolve("linalg", backend, ("a",), (a,))
    (a,) = call.arrays
    _check_stacked_square("a", a)
    return call.module.inv(a)


@fill_doc
def cholesky(a, /, *, upper=False, backend=None):
    """Cholesky factor of a Hermitian positive-definite matrix, or of each in a stack.

    Parameters
    ----------
    a : array_like, shape (..., M, M)
        Hermitian (symmetric if real) positive-definite matrices; only the lower triangle
        is read.
    upper : bool, optional
        Return the upper factor ``U`` with ``a = U^H @ U`` instead of the lower ``L`` with
        ``a = L @ L^H``. Default False.
    %(backend_linalg)s

    Returns
    -------
    ndarray, shape (..., M, M)
        The triangular factors, in the operands' array type.

    Raises
    ------
    ValueError
        If `a` is not square in its last two axes.
    TypeError
        If `upper` is not a bool, or the dtype is one LAPACK cannot take.
    numpy.linalg.LinAlgError
        On the NumPy backends, if a matrix is not positive definite (cuSOLVER returns
        non-finite values instead unless ``cupyx.errstate(linalg='raise')``).
    %(raises_dispatch)s

    See Also
    --------
    numpy.linalg.cholesky, cupy.linalg.cholesky

    Examples
    --------
    >>> import numpy as np
    >>> from npaccel.linalg import cholesky
    >>> cholesky(np.array([[4.0, 2.0], [2.0, 5.0]]))
    array([[2., 0.],
           [1., 2.]])
    """
    if not isinstance(upper, (bool, np.bool_)):
        raise TypeError(f"`upper` must be True or False; got {upper!r}")
    call = _dispatch.resolve("linalg", backend, ("a",), (a,))
    (a,) = call.arrays
    _check_stacked_square("a", a)
    return call.module.cholesky(a, bool(upper))


@fill_doc
def lstsq(a, b, rcond=None, *, backend=None):
    """Least-squares solution of ``a @ x = b`` (minimises ``||b - a @ x||_2``).

    Parameters
    ----------
    a : array_like, shape (M, N)
        Coefficient matrix.
    b : array_like, shape (M,) or (M, K)
        Right-hand sides.
    rcond : float, optional
        Singular values at most ``rcond`` times the largest are treated as zero. Default
        (None, NumPy 2's): machine precision of the computation times ``max(M, N)``.
    %(backend_linalg)s

    Returns
    -------
    x : ndarray, shape (N,) or (N, K)
        The solution.
    residuals : ndarray, shape (0,), (1,) or (K,)
        Squared residual norms; empty when the rank is below N or M <= N.
    rank : int
        Rank of `a` (on CuPy operands, a 0-d CuPy array: reading it would synchronise).
    s : ndarray, shape (min(M, N),)
        Singular values of `a`.

    Raises
    ------
    ValueError
        If `a` is not 2-D, `b` is not 1-D or 2-D, or their rows differ.
    TypeError
        If `rcond` is not a real number, or a dtype is one LAPACK cannot take.
    %(raises_dispatch)s

    See Also
    --------
    numpy.linalg.lstsq, cupy.linalg.lstsq

    Examples
    --------
    >>> import numpy as np
    >>> from npaccel.linalg import lstsq
    >>> x, residuals, rank, s = lstsq(np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 2.0]]),
    ...                               np.array([1.0, 2.0, 3.0]))
    >>> x.round(12), rank
    (array([1., 1.]), 2)
    """
    call = _dispatch.resolve("linalg", backend, ("a", "b"), (a, b))
    a, b = call.arrays
    if a.ndim != 2:
        raise ValueError(f"`a` must be 2-D, shape (M, N); got shape {tuple(a.shape)}")
    if b.ndim not in (1, 2):
        raise ValueError(f"`b` must be 1-D or 2-D, shape (M,) or (M, K); got shape "
                         f"{tuple(b.shape)}")  # fmt: skip
    if b.shape[0] != a.shape[0]:
        raise ValueError(
            f"`b` has {b.shape[0]} rows (shape {tuple(b.shape)}) but `a` has {a.shape[0]} "
            f"(shape {tuple(a.shape)}); lstsq needs b.shape[0] == a.shape[0]"
        )
    _check_lapack_dtype("a", a)
    _check_lapack_dtype("b", b)
    if rcond is None:
        single = np.result_type(a.dtype, b.dtype) in (np.float32, np.complex64)
        rcond = float(np.finfo(np.float32 if single else np.float64).eps * max(a.shape))
    elif isinstance(rcond, (bool, np.bool_)) or not isinstance(rcond, (int, float, np.number)):
        raise TypeError(f"`rcond` must be a real number or None; got {rcond!r}")
    x, residuals, rank, s = call.module.lstsq(a, b, float(rcond))
    return x, residuals, int(rank) if call.host else rank, s
