"""Validation and normalisation of filter arguments, done once in the public layer.

Every check names the argument, states the rule and echoes the value, so a bad call fails
here with a clear message and kernels never re-validate.
"""

from __future__ import annotations

import math
import numbers
import operator
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from npaccel.cuda._device import is_cupy
from npaccel.filters._policy import check_dtype

__all__ = [
    "MODES",
    "check_input",
    "check_mode",
    "check_origin",
    "normalize_axes",
    "per_axis",
    "prepare_output",
]

MODES = ("reflect", "mirror", "nearest", "constant", "wrap")
_ALIASES = {"grid-mirror": "reflect", "grid-wrap": "wrap", "grid-constant": "constant"}
_ALL_MODES = MODES + tuple(_ALIASES)

T = TypeVar("T")


def check_input(input: Any) -> np.ndarray:
    if is_cupy(input):  # device data stays on the device: the cuda backend takes it as is
        check_dtype(input.dtype)
        return input
    if not isinstance(input, np.ndarray):
        if isinstance(input, np.generic):  # a NumPy scalar: 0-d data
            input = np.asarray(input)
        elif hasattr(input, "__array_namespace__") or hasattr(input, "__cuda_array_interface__"):
            raise TypeError(
                f"`input` of type {type(input).__name__} needs a backend for it; "
                "pass backend= or install the matching extra"
            )
        input = np.asarray(input)
    if input.dtype == object or input.dtype.kind not in "biufc":
        raise TypeError(f"`input` must be a numeric array; got dtype {input.dtype}")
    if not input.dtype.isnative:  # big-endian data (FITS, network buffers): kernels want native
        input = input.astype(input.dtype.newbyteorder("="))
    check_dtype(input.dtype)
    return input


def check_mode(mode: Any, name: str = "mode") -> str:
    if not isinstance(mode, str) or mode not in _ALL_MODES:
        raise ValueError(f"`{name}` must be one of {set(_ALL_MODES)}; got {mode!r}")
    return _ALIASES.get(mode, mode)


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral | np.integer):
        try:
            return operator.index(value)
        except TypeError:
            raise TypeError(f"`{name}` must be an integer; got {value!r}") from None
    return int(value)


def normalize_axes(axes: Any, ndim: int) -> tuple[int, ...]:
    """Axes as non-negative ints in the given order; None means all axes."""
    if axes is None:
        return tuple(range(ndim))
    items = (axes,) if isinstance(axes, numbers.Integral | np.integer) else tuple(axes)
    out = []
    for ax in items:
        ax = _as_int(ax, "axes")
        if not -ndim <= ax < ndim:
            raise ValueError(
                f"`axes` entries must be in [{-ndim}, {ndim - 1}] for a {ndim}-D input; "
                f"got {axes!r}"
            )
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"`axes` must not repeat an axis; got {axes!r}")
    return tuple(out)


def check_axis(axis: Any, ndim: int) -> int:
    ax = _as_int(axis, "axis")
    if not -ndim <= ax < ndim:
        raise ValueError(f"`axis` must be in [{-ndim}, {ndim - 1}] for a {ndim}-D input; "
                         f"got {axis!r}")  # fmt: skip
    return ax % ndim


def per_axis(
    value: Any, n: int, name: str, convert: Callable[[Any, str], T], *, allow_sequence: bool = True
) -> tuple[T, ...]:
    """``value`` for each of ``n`` axes: a scalar repeats; a sequence must have length n."""
    if isinstance(value, str) or not isinstance(value, Sequence | np.ndarray):
        return (convert(value, name),) * n
    if not allow_sequence:
        raise ValueError(f"`{name}` must be a single value here; got {value!r}")
    values = list(value)
    if len(values) != n:
        raise ValueError(
            f"`{name}` must be a scalar or have one entry per filtered axis ({n}); got {value!r}"
        )
    return tuple(convert(v, name) for v in values)


def to_mode(value: Any, name: str) -> str:
    return check_mode(value, name)


def to_int(value: Any, name: str) -> int:
    return _as_int(value, name)


def to_size(value: Any, name: str) -> int:
    size = _as_int(value, name)
    if size < 1:
        raise ValueError(f"`{name}` must be >= 1; got {value!r}")
    return size


def to_sigma(value: Any, name: str) -> float:
    try:
        sigma = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be a real number; got {value!r}") from None
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"`{name}` must be finite and >= 0; got {value!r}")
    return sigma


def to_order(value: Any, name: str) -> int:
    order = _as_int(value, name)
    if order < 0:
        raise ValueError(f"`{name}` must be >= 0; got {value!r}")
    return order


def to_cval(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`cval` must be a real number; got {value!r}") from None


def check_origin(origin: int, size: int, name: str = "origin") -> int:
    """scipy's rule: -(size // 2) <= origin <= (size - 1) // 2."""
    if not -(size // 2) <= origin <= (size - 1) // 2:
        raise ValueError(
            f"`{name}` must satisfy -(size // 2) <= origin <= (size - 1) // 2, i.e. "
            f"[{-(size // 2)}, {(size - 1) // 2}] for size {size}; got {origin!r}"
        )
    return origin


def prepare_output(output: Any, input: np.ndarray) -> np.ndarray:
    """An array to write results into: ``output`` itself, or a new one of its dtype, of the
    input's array type (a CuPy input gets a CuPy output)."""
    device = is_cupy(input)
    xp = sys.modules["cupy"] if device else np
    if output is None:
        return xp.empty(input.shape, dtype=input.dtype)
    if isinstance(output, np.ndarray) or is_cupy(output):
        if is_cupy(output) != device:
            where = ("a CuPy array but `input` is a NumPy array" if not device else
                     "a NumPy array but `input` is a CuPy array")  # fmt: skip
            raise TypeError(f"`output` is {where}; pass both on the same device (or "
                            "output=None)")  # fmt: skip
        if output.shape != input.shape:
            raise ValueError(
                f"`output` must have the input's shape {input.shape}; got {output.shape}"
            )
        check_dtype(output.dtype, "output")
        if not device and not output.flags.writeable:
            raise ValueError("`output` must be writeable; got a read-only array")
        overlaps = xp.may_share_memory if device else np.shares_memory
        if output is not input and overlaps(output, input):
            raise ValueError("`output` must not overlap `input` (unless it is the same array)")
        return output
    try:
        dtype = np.dtype(output)
    except TypeError:
        raise TypeError(f"`output` must be None, an ndarray or a dtype; got {output!r}") from None
    check_dtype(dtype, "output")
    return xp.empty(input.shape, dtype=dtype)


def expand_to_input(
    kernel: np.ndarray, origins: Sequence[int], axes: Sequence[int], ndim: int
) -> tuple[np.ndarray, tuple[int, ...]]:
    """A kernel (weights or footprint) and origins given per filtered axis, in the order of
    `axes`, spread over all ``ndim`` input axes: size 1 and origin 0 where not filtered."""
    order = np.argsort(axes)
    kernel = np.transpose(kernel, order)
    shape, full_origins = [1] * ndim, [0] * ndim
    for i, a in enumerate(sorted(axes)):
        shape[a] = kernel.shape[i]
        full_origins[a] = origins[order[i]]
    # .copy keeps a 0-d kernel 0-d (np.ascontiguousarray would make it 1-d)
    return kernel.reshape(shape).copy(order="C"), tuple(full_origins)


def as_float_array(value: Any, name: str, ndim: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"`{name}` must be an array of real numbers; got {value!r}") from None
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"`{name}` must be {ndim}-D; got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"`{name}` must not be empty; got shape {arr.shape}")
    return arr


def check_footprint(footprint: Any, ndim: int) -> np.ndarray:
    fp = np.asarray(footprint)
    if fp.ndim != ndim:
        raise ValueError(
            f"`footprint` must have one dimension per filtered axis ({ndim}); got shape {fp.shape}"
        )
    fp = fp.astype(bool)
    if not fp.any():
        raise ValueError("`footprint` must select at least one element; got all False")
    return fp


def sequence_of(value: Any) -> Sequence[Any]:
    return value if isinstance(value, Sequence | np.ndarray) and not isinstance(value, str) else ()
