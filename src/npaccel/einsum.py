"""numpy.einsum, run where the operands live, with BLAS-backed contraction by default.

Examples
--------
>>> import numpy as np
>>> from npaccel.einsum import einsum
>>> a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
>>> np.array_equal(einsum("ij,jk->ik", a, b), a @ b)
True
>>> einsum("ii", np.eye(3))
np.float64(3.0)
"""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from npaccel._ops import _dispatch
from npaccel._ops._docs import fill_doc

__all__ = ["einsum"]

_dispatch.register_family("einsum")

_LABELS = frozenset(string.ascii_letters)
_OPTIMIZE = (False, True, "greedy", "optimal")
_ORDERS = ("C", "F", "A", "K")
_CASTINGS = ("no", "equiv", "safe", "same_kind", "unsafe")


def _term_labels(term: str, index: int, subscripts: str) -> tuple[str, str, bool]:
    """``(labels before '...', labels after, has ellipsis)`` of one term."""
    before, dots, after = term.partition("...")
    for char in before + after:
        if char not in _LABELS:
            where = "the output" if index < 0 else f"operand {index}'s term {term!r}"
            raise ValueError(f"`subscripts` {subscripts!r}: {char!r} in {where} is not a "
                             "label; labels are letters a-z, A-Z, plus one '...'")  # fmt: skip
    return before, after, bool(dots)


def parse_subscripts(subscripts: Any, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    """Check ``subscripts`` against the operand shapes; the result's shape.

    Raises ValueError naming the term, the operand and the sizes for every mismatch
    numpy.einsum would meet later (with a longer traceback): term count, dimensions per
    term, a label's sizes (equal, or 1 to broadcast), and output labels.
    """
    if not isinstance(subscripts, str):
        raise TypeError(f"`subscripts` must be a str such as 'ij,jk->ik'; got "
                        f"{type(subscripts).__name__} (the interleaved operand/sublist form "
                        "is not supported)")  # fmt: skip
    spec = subscripts.replace(" ", "")
    if spec.count("->") > 1 or spec.replace("->", "").count("-") or spec.count(">") > 1:
        raise ValueError(f"`subscripts` {subscripts!r} must contain at most one '->'")
    inputs, arrow, output = spec.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"`subscripts` {subscripts!r} has {len(terms)} operand term(s) but "
                         f"{len(shapes)} operand(s) were given")  # fmt: skip
    sizes: dict[str, tuple[int, int]] = {}  # label -> (size, operand that set it)
    counts: dict[str, int] = {}
    ellipsis: tuple[int, ...] = ()
    for i, (term, shape) in enumerate(zip(terms, shapes, strict=True)):
        before, after, dots = _term_labels(term, i, subscripts)
        named = len(before) + len(after)
        if (len(shape) != named) if not dots else (len(shape) < named):
            need = f"at least {named}" if dots else f"{named}"
            raise ValueError(f"`subscripts` term {term!r} names {need} dimension(s) but "
                             f"operand {i} has {len(shape)} (shape {shape})")  # fmt: skip
        dims = list(zip(before, shape[: len(before)], strict=True))
        dims += list(zip(after, shape[len(shape) - len(after) :], strict=True))
        if dots:
            middle = shape[len(before) : len(shape) - len(after)]
            try:
                ellipsis = np.broadcast_shapes(ellipsis, middle)
            except ValueError:
                raise ValueError(f"the '...' dimensions of operand {i} {middle} do not "
                                 f"broadcast with the others' {ellipsis}") from None  # fmt: skip
        for label, size in dims:
            counts[label] = counts.get(label, 0) + 1
            prev = sizes.get(label)
            if prev is None or prev[0] == 1:
                sizes[label] = (size, i)
            elif size not in (1, prev[0]):
                raise ValueError(
                    f"`subscripts` {subscripts!r}: label {label!r} has size {size} in operand "
                    f"{i} (shape {shape}) but {prev[0]} in operand {prev[1]} (shape "
                    f"{shapes[prev[1]]}); sizes of one label must match (or be 1)"
                )
    if arrow:
        before, after, _ = _term_labels(output, -1, subscripts)
        out_labels = before + after
        for label in out_labels:
            if label not in sizes:
                raise ValueError(f"`subscripts` {subscripts!r}: output label {label!r} is in "
                                 "no operand's term")  # fmt: skip
            if out_labels.count(label) > 1:
                raise ValueError(f"`subscripts` {subscripts!r}: output label {label!r} "
                                 "appears more than once")  # fmt: skip
        return (*(sizes[c][0] for c in before), *ellipsis, *(sizes[c][0] for c in after))
    implicit = sorted(c for c, n in counts.items() if n == 1)  # NumPy: alphabetical order
    return (*ellipsis, *(sizes[c][0] for c in implicit))


def _check_optimize(optimize: Any, backend: str) -> Any:
    if isinstance(optimize, (list, tuple)) and optimize and optimize[0] == "einsum_path":
        if backend == "cuda":
            raise ValueError("`optimize` as an explicit contraction path runs on backends "
                             "'cpu' and 'numpy' only; cupy.einsum takes "
                             f"{_OPTIMIZE}")  # fmt: skip
        return list(optimize)
    if isinstance(optimize, (bool, np.bool_)):
        return bool(optimize)
    if isinstance(optimize, str) and optimize in _OPTIMIZE:
        return optimize
    raise ValueError(f"`optimize` must be one of {{False, True, 'greedy', 'optimal'}} or an "
                     f"explicit path ['einsum_path', ...]; got {optimize!r}")  # fmt: skip


@fill_doc
def einsum(subscripts, *operands, out=None, dtype=None, order="K", casting="safe",
           optimize=True, backend=None):  # fmt: skip
    """Einstein summation: contract the operands' axes as `subscripts` says.

    The signature is numpy.einsum's, with one default changed: ``optimize=True``. NumPy's
    default (False) never reorders a contraction nor calls BLAS, so a product of three
    matrices loops in Python-free C over every index at once; True ('greedy') contracts
    pairwise through ``tensordot`` and BLAS, typically orders of magnitude faster for
    matrix-like products, at the cost of a path search (tens of microseconds) per call and
    a rounding order that may differ in the last bits. Pass ``optimize=False`` for
    NumPy's exact evaluation order.

    Parameters
    ----------
    subscripts : str
        Labels per operand, comma separated, optionally ``->`` and the output labels;
        letters a-z and A-Z, plus ``...`` for broadcast dimensions (``'...ij,...jk'``).
        Without ``->`` the output is the labels used once, in alphabetical order.
    *operands : array_like
        Arrays of one array type (NumPy or CuPy).
    out : ndarray, optional
        Array of the operands' type and of the result's shape to hold the result.
    dtype : dtype, optional
        Dtype to compute and return in; casting to it follows `casting`.
    order : {'K', 'C', 'F', 'A'}, optional
        Memory layout of the result. Default 'K'. (Unlike numpy.einsum, `dtype` and
        `order` also hold when the result is a pure transposition such as ``'ij->ji'``,
        which NumPy returns as a view of the input.)
    casting : {'safe', 'no', 'equiv', 'same_kind', 'unsafe'}, optional
        Which casts of the operands to `dtype` are allowed. Default 'safe'.
    optimize : {True, False, 'greedy', 'optimal'} or list, optional
        Contraction order: True is 'greedy'; 'optimal' searches all orders (worth it for
        many operands); a list is an explicit path from ``numpy.einsum_path`` (backends
        'cpu' and 'numpy' only). Default True (see above).
    %(backend_einsum)s

    Returns
    -------
    ndarray or scalar
        The contraction, in the operands' array type (`out` when given).

    Raises
    ------
    ValueError
        If `subscripts` names a different number of operands or dimensions than given, a
        label's sizes disagree, an output label is unknown or repeated, or an option is
        not one of its choices.
    TypeError
        If `subscripts` is not a str, or the operands do not cast to `dtype` under
        `casting`.
    %(raises_dispatch)s

    See Also
    --------
    numpy.einsum, numpy.einsum_path, cupy.einsum

    Examples
    --------
    >>> import numpy as np
    >>> from npaccel.einsum import einsum
    >>> x = np.ones((8, 3, 4), np.float32)
    >>> einsum("bij,bkj->bik", x, x).shape
    (8, 3, 3)
    """
    if not operands:
        raise ValueError("einsum needs at least one operand after `subscripts`")
    names = tuple(f"operands[{i}]" for i in range(len(operands)))
    call = _dispatch.resolve("einsum", backend, names, operands)
    shape = parse_subscripts(subscripts, [tuple(a.shape) for a in call.arrays])
    optimize = _check_optimize(optimize, call.backend)
    if order not in _ORDERS:
        raise ValueError(f"`order` must be one of {set(_ORDERS)}; got {order!r}")
    if casting not in _CASTINGS:
        raise ValueError(f"`casting` must be one of {set(_CASTINGS)}; got {casting!r}")
    result_dtype = np.result_type(*(a.dtype for a in call.arrays))
    if dtype is not None:
        dtype = np.dtype(dtype)
        for name, a in zip(names, call.arrays, strict=True):
            if not np.can_cast(a.dtype, dtype, casting):
                raise TypeError(f"`{name}` has dtype {a.dtype}, which does not cast to "
                                f"`dtype` {dtype} under casting={casting!r}")  # fmt: skip
        result_dtype = dtype
    _dispatch.check_out(out, shape, result_dtype, call)
    result = call.module.einsum(subscripts, call.arrays, out=out, dtype=dtype, order=order,
                                casting=casting, optimize=optimize)  # fmt: skip
    if out is not None:
        return result
    # numpy.einsum returns a bare view for a pure transposition ('ij->ji'), ignoring dtype
    # and order; npaccel keeps both promises on every backend.
    return result.astype(result_dtype, order=order, copy=False)
