"""Geometry of (..., H, W, C) images: resize, crop, pad, flip, rotate90.

Spatial axes are always -3 (rows) and -2 (columns), channels last; leading axes are pages,
independent images. Results are new C-contiguous arrays of the input's dtype. Arithmetic
follows the numeric policy of :mod:`npaccel.filters._policy` (float32 for 8/16-bit integers
and float32, float64 for int32 and float64; integers rounded half to even and saturated).

The validation helpers here (``check_image``, ``as_int``, ``as_float``, ``check_choice``) are
shared with :mod:`npaccel.image._exposure`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Collection
from typing import Any

import numpy as np

from npaccel.cuda._device import is_cupy
from npaccel.filters._policy import compute_dtype, store

__all__ = ["crop", "flip", "pad", "resize", "rotate90"]

IMAGE_DTYPES = tuple(
    np.dtype(t) for t in ("uint8", "uint16", "int16", "int32", "float32", "float64")
)
RESIZE_METHODS = ("area", "bilinear")
PAD_MODES = ("constant", "edge", "reflect", "symmetric", "wrap")
FLIP_DIRECTIONS = ("horizontal", "vertical", "both")
ROWS, COLS = -3, -2


def _set_text(choices: Collection[Any]) -> str:
    return "{" + ", ".join(repr(c) for c in choices) + "}"


def check_image(img: Any) -> np.ndarray:
    """``img`` as an ndarray (a CuPy array stays one) of a supported dtype and shape
    (..., H, W, C) with C >= 1."""
    arr = img if is_cupy(img) else np.asarray(img)
    if arr.dtype not in IMAGE_DTYPES:
        allowed = ", ".join(d.name for d in IMAGE_DTYPES)
        raise TypeError(f"`img` dtype must be one of {{{allowed}}}; got {arr.dtype}")
    if arr.ndim < 3:
        raise ValueError(
            f"`img` must have shape (..., H, W, C), channels last, with ndim >= 3; got shape "
            f"{arr.shape!r} (add a channel axis with img[..., None])"
        )
    if arr.shape[-1] < 1:
        raise ValueError(f"`img` must have at least one channel (C >= 1); got shape {arr.shape!r}")
    return arr


def as_int(value: Any, name: str, minimum: int | None = None) -> int:
    """``value`` as a Python int, rejecting bools, floats and values below ``minimum``."""
    rule = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}"
    )
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be {rule}; got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"`{name}` must be {rule}; got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"`{name}` must be {rule}; got {value!r}")
    return number


def as_float(value: Any, name: str, *, minimum: float | None = None, strict: bool = False,
             finite: bool = True) -> float:  # fmt: skip
    """``value`` as a Python float that is finite (if ``finite``) and >= (> if ``strict``)
    ``minimum``; NaN is always rejected."""
    rule = "a finite number" if finite else "a number (not NaN)"
    if minimum is not None:
        rule += f" {'>' if strict else '>='} {minimum:g}"
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise ValueError(f"`{name}` must be {rule}; got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be {rule}; got {value!r}") from None
    bad = math.isnan(number) or (finite and math.isinf(number))
    if minimum is not None:
        bad = bad or number < minimum or (strict and number == minimum)
    if bad:
        raise ValueError(f"`{name}` must be {rule}; got {value!r}")
    return number


def _as_cval(value: Any) -> float:
    try:
        if isinstance(value, (bool, np.bool_, str, bytes)):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"`cval` must be a number; got {value!r}") from None


def check_choice(value: Any, name: str, choices: Collection[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"`{name}` must be one of {_set_text(choices)}; got {value!r}")
    return value


# --- resize -------------------------------------------------------------------------------


def _area_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights (n_out, taps) of the exact area-weighted mean.

    In units of 1/(n_in * n_out) of the axis, output pixel ``o`` covers [o*n_in, (o+1)*n_in]
    and input pixel ``i`` covers [i*n_out, (i+1)*n_out]; the weight is their integer overlap
    over the footprint length n_in, so every row of weights sums to 1 exactly in rationals.
    """
    o = np.arange(n_out, dtype=np.int64)[:, None]
    first = o * n_in // n_out
    last = ((o + 1) * n_in - 1) // n_out
    taps = int((last - first).max()) + 1
    idx = first + np.arange(taps, dtype=np.int64)
    overlap = np.minimum((o + 1) * n_in, (idx + 1) * n_out) - np.maximum(o * n_in, idx * n_out)
    weights = np.clip(overlap, 0, None) / n_in
    return np.minimum(idx, n_in - 1), weights


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-tap linear interpolation at ``(o + 0.5) * n_in / n_out - 0.5``, clamped to the
    first and last pixel centres (OpenCV's INTER_LINEAR, replicate border)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1.0)
    first = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    frac = src - first
    idx = np.stack([first, np.minimum(first + 1, n_in - 1)], axis=1)
    return idx, np.stack([1.0 - frac, frac], axis=1)


def _resample(x: np.ndarray, idx: np.ndarray, weights: np.ndarray, axis: int,
              dtype: np.dtype) -> np.ndarray:  # fmt: skip
    """``out[..., o, ...] = sum_t weights[o, t] * x[..., idx[o, t], ...]`` along ``axis``,
    zero weights contributing nothing (not even a NaN or inf times 0)."""
    shape = [1] * x.ndim
    shape[axis] = -1
    w = weights.astype(dtype)
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is overwritten; inf - inf
        acc = np.multiply(np.take(x, idx[:, 0], axis=axis), w[:, 0].reshape(shape), dtype=dtype)
        for t in range(1, idx.shape[1]):
            zero = np.flatnonzero(w[:, t] == 0)
            if zero.size == w.shape[0]:
                continue
            term = np.multiply(np.take(x, idx[:, t], axis=axis), w[:, t].reshape(shape),
                               dtype=dtype)  # fmt: skip
            if zero.size and x.dtype.kind == "f":
                term[(Ellipsis, zero) + (slice(None),) * (-axis - 1)] = 0
            acc += term
    return acc


def resize(img, height: int, width: int, method: str = "area") -> np.ndarray:
    """Resize the spatial axes to ``height`` x ``width``.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
        Image(s); H and W must be at least 1.
    height, width : int
        Output size, >= 1.
    method : {'area', 'bilinear'}, optional
        'area' (default): each output pixel is the area-weighted mean of the input pixels its
        footprint covers, exactly, for any factor. This equals OpenCV's INTER_AREA when both
        axes shrink or both enlarge; when one axis shrinks and the other enlarges OpenCV uses
        two taps on the shrinking axis, this function the true area mean. 'bilinear':
        OpenCV's INTER_LINEAR, sampling at ``(x + 0.5) * in / out - 0.5`` with the coordinate
        clamped to the image (replicate border).

    Returns
    -------
    ndarray, shape (..., height, width, C)
        Same dtype; integers rounded half to even and saturated. Computed separably in the
        policy's float type, the axis that shrinks most first. A NaN or ±inf reaches exactly
        the output pixels that give it a non-zero weight.

    Raises
    ------
    ValueError
        For a bad `height`, `width` or `method`, or an empty image.

    Examples
    --------
    >>> img = np.arange(16, dtype=np.float32).reshape(4, 4, 1)
    >>> resize(img, 2, 2)[..., 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]], dtype=float32)
    """
    x = check_image(img)
    height = as_int(height, "height", minimum=1)
    width = as_int(width, "width", minimum=1)
    check_choice(method, "method", RESIZE_METHODS)
    n_rows, n_cols = x.shape[ROWS], x.shape[COLS]
    if n_rows == 0 or n_cols == 0:
        raise ValueError(
            f"`img` must have at least one row and one column to resize; got shape {x.shape!r}"
        )
    if (height, width) == (n_rows, n_cols):
        return x.copy(order="C")
    taps = _area_taps if method == "area" else _bilinear_taps
    dtype = compute_dtype(x.dtype, x.dtype)
    plan = [(ROWS, n_rows, height), (COLS, n_cols, width)]
    plan.sort(key=lambda p: p[2] / p[1])
    result = x
    for axis, n_in, n_out in plan:
        if n_in != n_out:
            result = _resample(result, *taps(n_in, n_out), axis, dtype)
    if result.dtype == x.dtype:  # the only axis resampled was a float input's own type
        return np.ascontiguousarray(result)
    return store(result, np.empty(result.shape, x.dtype))


# --- crop, pad, flip, rotate ----------------------------------------------------------------


def crop(img, top: int, left: int, height: int, width: int) -> np.ndarray:
    """The window ``img[..., top:top + height, left:left + width, :]`` as a new array.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    top, left : int
        First row and column of the window, >= 0.
    height, width : int
        Window size, >= 1; the window must lie inside the image.

    Returns
    -------
    ndarray, shape (..., height, width, C)

    Raises
    ------
    ValueError
        For negative offsets, non-positive sizes, or a window that leaves the image.

    Examples
    --------
    >>> crop(np.arange(12).reshape(3, 4, 1).astype(np.uint8), 1, 2, 2, 2)[..., 0]
    array([[ 6,  7],
           [10, 11]], dtype=uint8)
    """
    x = check_image(img)
    top = as_int(top, "top", minimum=0)
    left = as_int(left, "left", minimum=0)
    height = as_int(height, "height", minimum=1)
    width = as_int(width, "width", minimum=1)
    n_rows, n_cols = x.shape[ROWS], x.shape[COLS]
    if top + height > n_rows or left + width > n_cols:
        raise ValueError(
            f"the crop window rows {top}..{top + height - 1} and columns {left}.."
            f"{left + width - 1} (`top`={top!r}, `height`={height!r}, `left`={left!r}, "
            f"`width`={width!r}) must lie inside the image of height {n_rows} and width "
            f"{n_cols}"
        )
    return x[..., top : top + height, left : left + width, :].copy(order="C")


def pad(img, top: int, bottom: int, left: int, right: int, mode: str = "constant",
        cval: float = 0.0) -> np.ndarray:  # fmt: skip
    """Pad the spatial axes by the given numbers of rows and columns (``np.pad`` modes).

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    top, bottom, left, right : int
        Rows added above and below, columns added left and right, >= 0.
    mode : {'constant', 'edge', 'reflect', 'symmetric', 'wrap'}, optional
        As ``np.pad``. Default 'constant'. Modes other than 'constant' need a non-empty
        axis to extend.
    cval : float, optional
        Fill value of 'constant' (ignored otherwise), stored by the policy: rounded half to
        even and saturated for integer images (NaN becomes 0). Default 0.

    Returns
    -------
    ndarray, shape (..., top + H + bottom, left + W + right, C)

    Raises
    ------
    ValueError
        For negative amounts, an unknown `mode`, a non-numeric `cval`, or extending an empty
        axis by a mode other than 'constant'.

    Examples
    --------
    >>> pad(np.array([[[1], [2]]], dtype=np.uint8), 0, 0, 1, 2, mode="edge")[..., 0]
    array([[1, 1, 2, 2, 2]], dtype=uint8)
    """
    x = check_image(img)
    amounts = {k: as_int(v, k, minimum=0) for k, v in
               {"top": top, "bottom": bottom, "left": left, "right": right}.items()}  # fmt: skip
    check_choice(mode, "mode", PAD_MODES)
    fill = _as_cval(cval)
    for axis, name, before, after in ((ROWS, "rows", "top", "bottom"),
                                      (COLS, "columns", "left", "right")):  # fmt: skip
        needed = amounts[before] + amounts[after]
        if mode != "constant" and x.shape[axis] == 0 and needed:
            raise ValueError(
                f"`mode` {mode!r} cannot extend an image with no {name} (shape {x.shape!r}); "
                f"use mode='constant'"
            )
    widths = [(0, 0)] * (x.ndim - 3)
    widths += [(amounts["top"], amounts["bottom"]), (amounts["left"], amounts["right"]), (0, 0)]
    if mode == "constant":
        value = store(np.array(fill, dtype=np.float64), np.empty((), x.dtype))
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=mode)


def flip(img, direction: str) -> np.ndarray:
    """Mirror the image left-right ('horizontal'), top-bottom ('vertical') or both.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    direction : {'horizontal', 'vertical', 'both'}
        'horizontal' reverses the columns, 'vertical' the rows, 'both' both (a 180° turn).

    Returns
    -------
    ndarray, same shape and dtype

    Examples
    --------
    >>> flip(np.array([[[1], [2], [3]]], dtype=np.uint8), "horizontal")[..., 0]
    array([[3, 2, 1]], dtype=uint8)
    """
    x = check_image(img)
    check_choice(direction, "direction", FLIP_DIRECTIONS)
    rows = slice(None, None, -1) if direction in ("vertical", "both") else slice(None)
    cols = slice(None, None, -1) if direction in ("horizontal", "both") else slice(None)
    return x[..., rows, cols, :].copy(order="C")


def rotate90(img, k: int = 1) -> np.ndarray:
    """Rotate the spatial axes by ``k`` quarter turns counter-clockwise (``np.rot90``).

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    k : int, optional
        Number of quarter turns, any integer (taken mod 4; negative turns clockwise).
        Default 1.

    Returns
    -------
    ndarray, shape (..., W, H, C) for odd `k`, (..., H, W, C) for even `k`

    Examples
    --------
    >>> rotate90(np.array([[[1], [2]]], dtype=np.uint8))[..., 0]
    array([[2],
           [1]], dtype=uint8)
    """
    x = check_image(img)
    k = as_int(k, "k")
    return np.rot90(x, k % 4, axes=(ROWS, COLS)).copy(order="C")
