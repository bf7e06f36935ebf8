"""Exposure and pixel-value ops of (..., H, W, C) images.

Thresholds, histogram equalization, gamma, inversion, float/integer scaling, rescale,
normalize, clip, grayscale, unsharp masking and channel selection. Spatial axes are -3 and
-2, channels last, leading axes are pages (independent images). Results are new
C-contiguous arrays. Arithmetic follows :mod:`npaccel.filters._policy`: float32 for 8/16-bit
integers and float32, float64 for int32 and float64; integer results rounded half to even
and saturated (NaN becomes 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from npaccel.cuda._device import array_module, is_cupy
from npaccel.filters import gaussian_filter
from npaccel.filters._policy import compute_dtype, store
from npaccel.image._geometry import as_float, as_int, check_choice, check_image

__all__ = [
    "clip",
    "equalize",
    "from_float",
    "gamma",
    "grayscale",
    "invert",
    "normalize",
    "otsu_threshold",
    "rescale",
    "select_channels",
    "stack_channels",
    "threshold",
    "to_float",
    "unsharp_mask",
]

FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("uint8", "uint16", "int16", "int32")
PIXEL_BACKENDS = ("cpu", "cuda", "numpy")  # of the pixel ops that have a Numba kernel
LUMA_WEIGHTS = {"bt601": (0.299, 0.587, 0.114), "bt709": (0.2126, 0.7152, 0.0722)}
_SPATIAL = (-3, -2)
_PAGE = (-3, -2, -1)
_EXACT_BINS_MAX = 1 << 16  # integer data spanning at most this many values: a bin per value
_HIST_CHUNK = 1 << 22  # bins counted at once by equalize's grouped bincount


def _float_out(dtype: np.dtype) -> np.dtype:
    """Float results: float64 for float64 input, float32 otherwise."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def _check_dtype_name(dtype: Any, name: str, allowed: Sequence[str]) -> np.dtype:
    try:
        result = None if dtype is None else np.dtype(dtype)
    except TypeError:
        result = None
    if result is None or result.name not in allowed:
        raise ValueError(f"`{name}` must be one of {{{', '.join(allowed)}}}; got {dtype!r}")
    return result


def _optional_float(value: Any, name: str, **rule: Any) -> float | None:
    return None if value is None else as_float(value, name, **rule)


# --- thresholds ---------------------------------------------------------------------------


def otsu_threshold(img, bins: int = 256) -> float:
    """Otsu's threshold of all pixels and channels given, as scikit-image computes it.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
        Image(s); NaN and ±inf are left out of the histogram.
    bins : int, optional
        Histogram bins over [min, max] of the data, >= 2. Default 256. Integer data that
        spans at most 65536 values gets one bin per value instead (as
        ``skimage.filters.threshold_otsu``, which ignores `bins` for integers).

    Returns
    -------
    float
        The bin centre maximising the between-class variance; pixels ``> t`` are the
        foreground. A constant image returns its value.

    Raises
    ------
    ValueError
        For a bad `bins`, or an image with no finite pixel (empty, or all NaN/inf).

    Examples
    --------
    >>> otsu_threshold(np.array([[[10], [10], [200], [210]]], dtype=np.uint8))
    10.0
    """
    x = check_image(img)
    bins = as_int(bins, "bins", minimum=2)
    values = x.reshape(-1)
    if x.dtype.kind == "f":
        values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError(
            f"`img` must have at least one finite pixel for Otsu's threshold; got shape "
            f"{x.shape!r} with none"
        )
    lo, hi = values.min(), values.max()
    if lo == hi:
        return float(lo)
    if x.dtype.kind in "iu" and int(hi) - int(lo) < _EXACT_BINS_MAX:
        counts = np.bincount((values.astype(np.int64) - int(lo)).ravel())
        centers = np.arange(int(lo), int(hi) + 1, dtype=np.float64)
    else:
        if x.dtype.kind in "iu":
            values, lo, hi = values.astype(np.float64), float(lo), float(hi)
        counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
        centers = ((edges[:-1] + edges[1:]) / 2.0).astype(np.float64)
    counts = counts.astype(np.float64)
    weight1 = np.cumsum(counts)  # > 0: the first bin holds the minimum
    weight2 = np.cumsum(counts[::-1])[::-1]  # > 0: the last bin holds the maximum
    mean1 = np.cumsum(counts * centers) / weight1
    mean2 = (np.cumsum((counts * centers)[::-1]) / weight2[::-1])[::-1]
    between = weight1[:-1] * weight2[1:] * (mean1[:-1] - mean2[1:]) ** 2
    return float(centers[np.argmax(between)])


def threshold(img, value: float | None = None, method: str | None = None, *,
              high: float | None = None) -> np.ndarray:  # fmt: skip
    """Binarise: pixels ``> t`` become `high`, all others (NaN included) 0.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    value : float, optional
        The threshold `t` (not NaN; compared in float64, exactly).
    method : {'otsu'}, optional
        Compute `t` by :func:`otsu_threshold` for each page (image) of a (..., H, W, C)
        stack, over its pixels and channels. Give exactly one of `value` and `method`.
    high : float, optional
        Value of the foreground: the dtype's maximum for integers (default), 1.0 for floats.
        For integers it must be an integer within the dtype's range.

    Returns
    -------
    ndarray
        Same shape and dtype.

    Examples
    --------
    >>> threshold(np.array([[[1], [5], [9]]], dtype=np.uint8), 5)[..., 0]
    array([[  0,   0, 255]], dtype=uint8)
    """
    x = check_image(img)
    if (value is None) == (method is None):
        raise ValueError(
            f"give exactly one of `value` (a number) or `method` ('otsu'); got "
            f"value={value!r}, method={method!r}"
        )
    t = None if value is None else as_float(value, "value", finite=False)
    if method is not None:
        check_choice(method, "method", ("otsu",))
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        fg = info.max if high is None else high
        number = as_float(fg, "high")
        if number != int(number) or not info.min <= number <= info.max:
            raise ValueError(
                f"`high` must be an integer in [{info.min}, {info.max}] for {x.dtype} images; "
                f"got {high!r}"
            )
        fg = int(number)
    else:
        fg = 1.0 if high is None else as_float(high, "high", finite=False)
    out = np.zeros(x.shape, x.dtype)
    if t is not None:
        out[np.greater(x, np.float64(t))] = fg
        return out
    for page in np.ndindex(x.shape[:-3]):  # one threshold per image of a stack
        out[page][np.greater(x[page], np.float64(otsu_threshold(x[page])))] = fg
    return out


# --- equalize -----------------------------------------------------------------------------


def _groups(x: np.ndarray) -> np.ndarray:
    """(pages, H*W, C) view or copy of ``x``: one histogram per (page, channel)."""
    return x.reshape(-1, x.shape[-3] * x.shape[-2], x.shape[-1])


def _equalize_lut(hist: np.ndarray, levels: int, dtype: np.dtype) -> np.ndarray:
    """OpenCV's ``equalizeHist`` look-up tables, one per row of ``hist`` (groups, levels):
    ``lut[v] = rint((cdf[v] - cdf[v_min]) * ((levels - 1) / (n - hist[v_min])))`` computed in
    ``dtype`` (float32 reproduces OpenCV's arithmetic); a constant group maps to itself."""
    total = hist.sum(axis=1, keepdims=True)
    first = np.argmax(hist > 0, axis=1)[:, None]
    lowest = np.take_along_axis(hist, first, axis=1)
    span = total - lowest
    constant = span == 0
    scale = dtype.type(levels - 1) / np.where(constant, 1, span).astype(dtype)
    above = np.maximum(np.cumsum(hist, axis=1) - lowest, 0).astype(dtype)
    lut = np.rint(above * scale)
    identity = np.arange(levels, dtype=dtype)
    return np.clip(np.where(constant, identity, lut), 0, levels - 1)


def _equalize_binned(x: np.ndarray, out: np.ndarray) -> None:
    """8/16-bit integers: a histogram of every value per (page, channel), bincount'ed for
    many groups at once."""
    levels = 1 << (8 * x.dtype.itemsize)
    offset = -int(np.iinfo(x.dtype).min)
    g = _groups(x)
    pages, _, channels = g.shape
    flat_out = out.reshape(g.shape)
    per_chunk = max(1, _HIST_CHUNK // (levels * channels))
    for start in range(0, pages, per_chunk):
        part = g[start : start + per_chunk].astype(np.int64) + offset
        n = part.shape[0] * channels
        group = np.arange(n, dtype=np.int64).reshape(part.shape[0], 1, channels) * levels
        keys = (part + group).ravel()
        hist = np.bincount(keys, minlength=n * levels).reshape(n, levels)
        lut = _equalize_lut(hist, levels, np.dtype(np.float32)) - offset
        flat_out[start : start + per_chunk] = lut.astype(x.dtype).reshape(-1)[part + group]


def _equalize_ranked(x: np.ndarray, out: np.ndarray) -> None:
    """int32: the same tables over the distinct values of each (page, channel), in float64."""
    g = _groups(x)
    flat_out = out.reshape(g.shape)
    info = np.iinfo(x.dtype)
    levels = int(info.max) - int(info.min) + 1
    for p in range(g.shape[0]):
        for c in range(g.shape[2]):
            _, inverse, counts = np.unique(g[p, :, c], return_inverse=True,
                                           return_counts=True)  # fmt: skip
            span = counts.sum() - counts[0]
            if span == 0:
                flat_out[p, :, c] = g[p, :, c]
                continue
            above = np.cumsum(counts) - counts[0]
            lut = np.rint(above * ((levels - 1) / span)) + info.min
            flat_out[p, :, c] = lut.astype(x.dtype)[inverse.ravel()]


def _equalize_float(x: np.ndarray, out: np.ndarray, bins: int) -> None:
    """Floats: ``skimage.exposure.equalize_hist`` per (page, channel) over the finite values."""
    g = _groups(x)
    flat_out = out.reshape(g.shape)
    for p in range(g.shape[0]):
        for c in range(g.shape[2]):
            v = g[p, :, c]
            finite = v[np.isfinite(v)]
            if finite.size == 0:
                flat_out[p, :, c] = v
                continue
            counts, edges = np.histogram(finite, bins=bins, range=(finite.min(), finite.max()))
            centers = (edges[:-1] + edges[1:]) / 2.0
            cdf = (np.cumsum(counts) / float(counts.sum())).astype(x.dtype)
            flat_out[p, :, c] = np.interp(v, centers, cdf)


def equalize(img, bins: int | None = None) -> np.ndarray:
    """Histogram equalization of every channel of every page.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    bins : int, optional
        Floats only: histogram bins over the channel's [min, max], >= 2; default 256.
        Integer images always use one bin per value (giving `bins` raises).

    Returns
    -------
    ndarray
        Same shape and dtype.

    Notes
    -----
    Integers follow OpenCV's ``equalizeHist`` (bit-exact for uint8): with ``cdf`` the
    cumulative histogram and ``v0`` the smallest value present, ``v -> rint((cdf[v] -
    cdf[v0]) * (L - 1) / (n - hist[v0]))`` in float32 (float64 for int32), for L the
    number of values of the dtype; the result is offset to the dtype's minimum (so int16
    spans [-32768, 32767]). A constant channel is returned unchanged.

    Floats follow ``skimage.exposure.equalize_hist``: ``np.interp(x, bin_centers, cdf)``
    with the histogram over the channel's finite [min, max], so the data need not lie in
    [0, 1]; the output lies in (0, 1] and a constant channel becomes 0.5 (NumPy widens an
    empty range by ±0.5). NaN stays NaN; -inf and +inf map to the ends ``cdf[0]`` and 1.

    Examples
    --------
    >>> equalize(np.array([[[0], [0], [1], [3]]], dtype=np.uint8))[..., 0]
    array([[  0,   0, 128, 255]], dtype=uint8)
    """
    x = check_image(img)
    is_float = x.dtype.kind == "f"
    if bins is not None and not is_float:
        raise ValueError(
            f"`bins` applies to float images only (integer images use one bin per value); "
            f"got bins={bins!r} for a {x.dtype} image: leave it unset"
        )
    bins = as_int(256 if bins is None else bins, "bins", minimum=2)
    out = np.empty(x.shape, x.dtype)
    if x.size == 0:
        return out
    if is_float:
        _equalize_float(x, out, bins)
    elif x.dtype.itemsize <= 2:
        _equalize_binned(x, out)
    else:
        _equalize_ranked(x, out)
    return out


# --- point operations ---------------------------------------------------------------------


def gamma(img, gamma: float, gain: float = 1.0) -> np.ndarray:
    """Gamma correction ``gain * x ** gamma`` of full scale.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    gamma : float
        Exponent, finite and > 0.
    gain : float, optional
        Multiplier, finite. Default 1.

    Returns
    -------
    ndarray
        Same shape and dtype.

    Notes
    -----
    Integers: ``rint(max * gain * (x / max) ** gamma)`` computed in float64 and saturated,
    ``max`` the dtype's maximum; 8/16-bit types through a table of every value. Negative
    values of signed types become 0. Floats: ``gain * x ** gamma`` in the input's type,
    NumPy's real power: NaN propagates, a negative base gives NaN unless `gamma` is an
    integer (without NumPy's warning), overflow gives inf.

    Examples
    --------
    >>> gamma(np.array([[[0], [64], [255]]], dtype=np.uint8), 0.5)[..., 0]
    array([[  0, 128, 255]], dtype=uint8)
    """
    x = check_image(img)
    exponent = as_float(gamma, "gamma", minimum=0, strict=True)
    gain = as_float(gain, "gain")
    out = np.empty(x.shape, x.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        if x.dtype.kind == "f":
            np.power(x, x.dtype.type(exponent), out=out)
            out *= x.dtype.type(gain)
            return out
        info = np.iinfo(x.dtype)
        full = float(info.max)
        if x.dtype.itemsize <= 2:
            values = np.arange(int(info.min), int(info.max) + 1, dtype=np.float64)
            base = np.maximum(values, 0.0) / full
            lut = store(full * gain * base**exponent, np.empty(values.shape, x.dtype))
            out[...] = lut[x] if info.min == 0 else lut[x.astype(np.int64) - int(info.min)]
            return out
        return store(full * gain * (np.maximum(x, 0) / full) ** exponent, out)


def invert(img) -> np.ndarray:
    """The negative: ``max - x`` for unsigned, ``-1 - x`` for signed integers (both are the
    bitwise not, which maps the type's range onto itself), ``1 - x`` for floats.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)

    Returns
    -------
    ndarray
        Same shape and dtype; NaN stays NaN, ±inf becomes ∓inf.

    Examples
    --------
    >>> invert(np.array([[[0], [200]]], dtype=np.uint8))[..., 0]
    array([[255,  55]], dtype=uint8)
    """
    x = check_image(img)
    out = np.empty(x.shape, x.dtype)
    if x.dtype.kind == "f":
        return np.subtract(x.dtype.type(1), x, out=out)
    return np.invert(x, out=out)


def to_float(img, dtype: str = "float32", max_value: float | None = None) -> np.ndarray:
    """Integers to floats of full scale 1: ``x / max_value``.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    dtype : {'float32', 'float64'}, optional
        Output type. Default 'float32'.
    max_value : float, optional
        The value that becomes 1, finite and > 0. Default: the integer dtype's maximum (so
        signed types map to about [-1, 1]); float input is only cast unless it is given.

    Returns
    -------
    ndarray
        Same shape, `dtype`. Computed in float32 for 8/16-bit integers to float32 (exactly
        rounded), in float64 otherwise.

    Examples
    --------
    >>> to_float(np.array([[[0], [51], [255]]], dtype=np.uint8))[..., 0]
    array([[0. , 0.2, 1. ]], dtype=float32)
    """
    x = check_image(img)
    out_dtype = _check_dtype_name(dtype, "dtype", FLOAT_DTYPES)
    scale = _optional_float(max_value, "max_value", minimum=0, strict=True)
    if scale is None and x.dtype.kind in "iu":
        scale = float(np.iinfo(x.dtype).max)
    if scale is None:
        return x.astype(out_dtype, order="C")
    work = compute_dtype(x.dtype, out_dtype)
    out = np.empty(x.shape, out_dtype)
    with np.errstate(over="ignore"):
        out[...] = np.divide(x, work.type(scale), dtype=work)
    return out


def from_float(img, dtype: str = "uint8", max_value: float | None = None) -> np.ndarray:
    """Floats of full scale 1 to integers: ``rint(x * max_value)``, saturated.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
        float32 or float64.
    dtype : {'uint8', 'uint16', 'int16', 'int32'}, optional
        Output type. Default 'uint8'.
    max_value : float, optional
        What 1.0 becomes, finite and > 0. Default: the dtype's maximum.

    Returns
    -------
    ndarray
        Same shape, `dtype`; rounded half to even, saturated, NaN becomes 0. Computed in
        the policy's type (float32 for float32 input to 8/16-bit integers).

    Raises
    ------
    TypeError
        For integer input.

    Examples
    --------
    >>> from_float(np.array([[[0.0], [0.5], [1.2]]]))[..., 0]
    array([[  0, 128, 255]], dtype=uint8)
    """
    x = check_image(img)
    if x.dtype.kind != "f":
        raise TypeError(
            f"`img` must be float32 or float64 for from_float; got {x.dtype} (use to_float or "
            f"astype for integer images)"
        )
    out_dtype = _check_dtype_name(dtype, "dtype", INT_DTYPES)
    scale = _optional_float(max_value, "max_value", minimum=0, strict=True)
    if scale is None:
        scale = float(np.iinfo(out_dtype).max)
    work = compute_dtype(x.dtype, out_dtype)
    with np.errstate(over="ignore"):
        values = np.multiply(x, work.type(scale), dtype=work)
    return store(values, np.empty(x.shape, out_dtype))


def _finite_range(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-page min and max of the finite values, keepdims (+inf, -inf where none)."""
    if x.dtype.kind in "iu":
        return x.min(axis=_PAGE, keepdims=True), x.max(axis=_PAGE, keepdims=True)
    finite = np.isfinite(x)
    lo = np.min(x, axis=_PAGE, keepdims=True, where=finite, initial=np.inf)
    hi = np.max(x, axis=_PAGE, keepdims=True, where=finite, initial=-np.inf)
    return lo, hi


def rescale(img, out_min: float = 0.0, out_max: float = 1.0, in_min: float | None = None,
            in_max: float | None = None) -> np.ndarray:  # fmt: skip
    """Linear map of [in_min, in_max] onto [out_min, out_max] (not clipped).

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    out_min, out_max : float, optional
        Finite; ``out_min > out_max`` reverses. Defaults 0 and 1.
    in_min, in_max : float, optional
        Finite, ``in_min < in_max`` when both are given. Default: each page's minimum and
        maximum over all its channels, ignoring NaN and ±inf.

    Returns
    -------
    ndarray
        Same shape; float64 for float64 input, float32 otherwise. Where the range is empty
        (a constant page, or no finite values) every pixel that is not NaN becomes
        `out_min`. NaN stays NaN, ±inf maps to ±inf.

    Examples
    --------
    >>> rescale(np.array([[[2], [4], [6]]], dtype=np.uint8))[..., 0]
    array([[0. , 0.5, 1. ]], dtype=float32)
    """
    x = check_image(img)
    out_min = as_float(out_min, "out_min")
    out_max = as_float(out_max, "out_max")
    given_lo = _optional_float(in_min, "in_min")
    given_hi = _optional_float(in_max, "in_max")
    if given_lo is not None and given_hi is not None and not given_lo < given_hi:
        raise ValueError(f"`in_min` must be less than `in_max`; got {in_min!r} and {in_max!r}")
    out_dtype = _float_out(x.dtype)
    if x.size == 0:
        return np.empty(x.shape, out_dtype)
    work = compute_dtype(x.dtype, out_dtype)
    if given_lo is None or given_hi is None:
        lo, hi = _finite_range(x)
        lo = lo.astype(np.float64) if given_lo is None else np.full(lo.shape, given_lo)
        hi = hi.astype(np.float64) if given_hi is None else np.full(hi.shape, given_hi)
    else:
        lo, hi = np.float64(given_lo), np.float64(given_hi)
    empty = ~(lo < hi)
    width = np.where(empty, 1.0, hi - lo)
    scale = np.where(empty, 0.0, (out_max - out_min) / width).astype(work)
    start = np.where(empty, 0.0, lo).astype(work)
    with np.errstate(invalid="ignore", over="ignore"):
        values = (x.astype(work) - start) * scale + work.type(out_min)
    if np.any(empty):
        values = np.where(empty & ~np.isnan(values), work.type(out_min), values)
    out = np.empty(x.shape, out_dtype)
    out[...] = values
    return out


def _channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 mean and std (ddof 0) per page and channel over the finite values, keepdims
    (0 and 0 for a channel with none). Floats are shifted by the channel's minimum first, so
    a constant channel has a std of exactly 0 (integer sums are exact in float64)."""
    if x.dtype.kind in "iu":
        mean = x.mean(axis=_SPATIAL, dtype=np.float64, keepdims=True)
        return mean, x.std(axis=_SPATIAL, dtype=np.float64, keepdims=True)
    finite = np.isfinite(x)
    if finite.all():
        shift = x.min(axis=_SPATIAL, keepdims=True).astype(np.float64)
        data = x - shift
        mean = shift + data.mean(axis=_SPATIAL, keepdims=True)
        return mean, data.std(axis=_SPATIAL, keepdims=True)
    shift = np.min(x, axis=_SPATIAL, keepdims=True, where=finite, initial=np.inf)
    shift = np.where(np.isinf(shift), 0.0, shift)
    data = np.where(finite, x - shift, 0.0)
    count = np.maximum(finite.sum(axis=_SPATIAL, keepdims=True), 1)
    mean = data.sum(axis=_SPATIAL, keepdims=True) / count
    dev = np.where(finite, data - mean, 0.0)
    return shift + mean, np.sqrt((dev * dev).sum(axis=_SPATIAL, keepdims=True) / count)


def _per_channel(value: Any, name: str, channels: int, **rule: Any) -> np.ndarray | None:
    """A float, or a sequence of one float per channel, as a float64 array (or None)."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or np.ndim(value) > 1:
        raise ValueError(f"`{name}` must be a number or one number per channel; got {value!r}")
    if np.ndim(value) == 0:
        return np.array(as_float(value, name, **rule))
    items = list(value)
    if len(items) != channels:
        raise ValueError(
            f"`{name}` must be a number or one number per channel ({channels}); got {value!r}"
        )
    return np.array([as_float(v, name, **rule) for v in items])


def normalize(img, mean: float | Sequence[float] | None = None,
              std: float | Sequence[float] | None = None) -> np.ndarray:  # fmt: skip
    """Standardise: ``(x - mean) / std``.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    mean : float or sequence of float, optional
        Finite; one value, or one per channel. Default: each page's channel means.
    std : float or sequence of float, optional
        Finite and > 0; one value, or one per channel. Default: each page's channel
        standard deviations (ddof 0); a zero one is replaced by 1, so a constant channel
        becomes 0.

    Returns
    -------
    ndarray
        Same shape; float64 for float64 input, float32 otherwise.

    Notes
    -----
    The default statistics ignore NaN and ±inf (and are 0 for a channel without a finite
    value); the default `std` is about the channel's own mean even when `mean` is given.
    NaN stays NaN, ±inf stays ±inf.

    Examples
    --------
    >>> normalize(np.array([[[1.0], [3.0]]]))[..., 0]
    array([[-1.,  1.]])
    """
    x = check_image(img)
    channels = x.shape[-1]
    given_mean = _per_channel(mean, "mean", channels)
    given_std = _per_channel(std, "std", channels, minimum=0, strict=True)
    out_dtype = _float_out(x.dtype)
    if x.size == 0:
        return np.empty(x.shape, out_dtype)
    work = compute_dtype(x.dtype, out_dtype)
    if given_mean is None or given_std is None:
        own_mean, own_std = _channel_stats(x)
    center = own_mean if given_mean is None else given_mean
    spread = np.where(own_std == 0, 1.0, own_std) if given_std is None else given_std
    out = np.empty(x.shape, out_dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        out[...] = (x.astype(work) - np.asarray(center, work)) / np.asarray(spread, work)
    return out


def clip(img, lo: float | None = None, hi: float | None = None) -> np.ndarray:
    """Limit values to [lo, hi].

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    lo, hi : float, optional
        Bounds, not NaN (±inf allowed), ``lo <= hi``; None leaves that side open. For
        integer images `lo` is rounded up and `hi` down to integers (an interval with no
        integer raises).

    Returns
    -------
    ndarray
        Same shape and dtype; NaN stays NaN.

    Examples
    --------
    >>> clip(np.array([[[1], [5], [9]]], dtype=np.uint8), 2, 6)[..., 0]
    array([[2, 5, 6]], dtype=uint8)
    """
    x = check_image(img)
    low = _optional_float(lo, "lo", finite=False)
    high = _optional_float(hi, "hi", finite=False)
    if low is not None and high is not None and low > high:
        raise ValueError(f"`lo` must be <= `hi`; got lo={lo!r}, hi={hi!r}")
    if low is None and high is None:
        return x.copy(order="C")
    low = -math.inf if low is None else low
    high = math.inf if high is None else high
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        int_low = math.ceil(min(max(low, info.min), info.max))
        int_high = math.floor(min(max(high, info.min), info.max))
        if int_low > int_high:
            raise ValueError(
                f"[`lo`, `hi`] must contain an integer for {x.dtype} images; got "
                f"lo={lo!r}, hi={hi!r}"
            )
        bounds = (x.dtype.type(int_low), x.dtype.type(int_high))
    else:
        bounds = (x.dtype.type(low), x.dtype.type(high))
    out = np.empty(x.shape, x.dtype)
    return np.clip(x, *bounds, out=out)


# --- channels -----------------------------------------------------------------------------


def grayscale(img, weights: str = "bt601", *, backend: str | None = None) -> np.ndarray:
    """One luma channel: (..., H, W, C) -> (..., H, W, 1).

    Parameters
    ----------
    img : array_like, shape (..., H, W, C), C <= 4
        C == 1 is copied; C == 2 (luminance, alpha) gives its first channel; C == 3 or 4
        (RGB, RGBA) gives ``wr*R + wg*G + wb*B``, alpha ignored.
    weights : {'bt601', 'bt709'}, optional
        ITU-R BT.601 (0.299, 0.587, 0.114), as OpenCV and Pillow (default), or BT.709
        (0.2126, 0.7152, 0.0722).
    backend : {'cpu', 'cuda', 'numpy'}, optional
        'cpu' (default): one parallel Numba pass; 'numpy': three NumPy multiply-adds, the
        reference (bit-identical results); 'cuda': the same multiply-adds on the GPU (CuPy
        input stays on the device).

    Returns
    -------
    ndarray, shape (..., H, W, 1)
        Same dtype; integers rounded half to even (OpenCV's fixed point may differ by 1).

    Examples
    --------
    >>> grayscale(np.array([[[255, 0, 0]]], dtype=np.uint8))[..., 0]
    array([[76]], dtype=uint8)
    """
    x = check_image(img)
    check_choice(weights, "weights", tuple(LUMA_WEIGHTS))
    if backend is not None:
        check_choice(backend, "backend", PIXEL_BACKENDS)
    channels = x.shape[-1]
    if channels > 4:
        raise ValueError(
            f"`img` must have 1 (gray), 2 (gray, alpha), 3 (RGB) or 4 (RGBA) channels for "
            f"grayscale; got {channels} (pick channels first with select_channels)"
        )
    if channels <= 2:
        return x[..., :1].copy(order="C")
    work = compute_dtype(x.dtype, x.dtype)
    xp = array_module(x) if is_cupy(x) else np
    out = xp.empty((*x.shape[:-1], 1), x.dtype)
    if backend in (None, "cpu") and xp is np and x.size:
        from npaccel.image._kernels import luma

        return luma(x, np.array(LUMA_WEIGHTS[weights], dtype=work), out)
    wr, wg, wb = (work.type(w) for w in LUMA_WEIGHTS[weights])
    luma = np.multiply(x[..., 0], wr, dtype=work)
    luma += np.multiply(x[..., 1], wg, dtype=work)
    luma += np.multiply(x[..., 2], wb, dtype=work)
    return store(luma[..., None], out)


def unsharp_mask(img, sigma: float = 1.0, amount: float = 1.0,
                 threshold: float = 0.0) -> np.ndarray:  # fmt: skip
    """Unsharp masking: ``x + amount * (x - blur)`` where ``|x - blur| > threshold``.

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    sigma : float, optional
        Standard deviation of the Gaussian blur over rows and columns, in pixels, >= 0
        (``npaccel.filters.gaussian_filter`` with mode 'reflect'). Default 1.
    amount : float, optional
        Strength, finite (negative blurs). Default 1.
    threshold : float, optional
        Smallest ``|x - blur|`` sharpened, in the image's units, >= 0. Default 0.

    Returns
    -------
    ndarray
        Same shape and dtype; computed in the policy's float type, integers rounded half to
        even and saturated. A NaN spreads over the blur's support, as in the blur.

    Examples
    --------
    >>> unsharp_mask(np.full((3, 3, 1), 7, dtype=np.uint8))[..., 0]
    array([[7, 7, 7],
           [7, 7, 7],
           [7, 7, 7]], dtype=uint8)
    """
    x = check_image(img)
    sigma = as_float(sigma, "sigma", minimum=0)
    amount = as_float(amount, "amount")
    limit = as_float(threshold, "threshold", minimum=0)
    work = compute_dtype(x.dtype, x.dtype)
    out = np.empty(x.shape, x.dtype)
    if x.size == 0:
        return out
    blur = gaussian_filter(x, sigma, output=work, axes=_SPATIAL)
    detail = np.subtract(x, blur, dtype=work)
    with np.errstate(invalid="ignore"):
        detail[np.abs(detail) <= work.type(limit)] = 0
    detail *= work.type(amount)
    detail += x
    return store(detail, out)


def select_channels(img, channels: Sequence[int]) -> np.ndarray:
    """The given channels, in the given order (repeats allowed): (..., H, W, C').

    Parameters
    ----------
    img : array_like, shape (..., H, W, C)
    channels : sequence of int
        At least one index, each in [-C, C) (negative counts from the end).

    Returns
    -------
    ndarray, shape (..., H, W, len(channels))

    Examples
    --------
    >>> select_channels(np.array([[[1, 2, 3]]], dtype=np.uint8), [2, 1, 0])
    array([[[3, 2, 1]]], dtype=uint8)
    """
    x = check_image(img)
    count = x.shape[-1]
    if isinstance(channels, (str, bytes)) or np.ndim(channels) != 1 or len(channels) == 0:
        raise ValueError(
            f"`channels` must be a non-empty sequence of channel indices; got {channels!r}"
        )
    index = []
    for c in channels:
        i = as_int(c, "channels")
        if not -count <= i < count:
            raise ValueError(
                f"`channels` must be indices in [{-count}, {count}) for an image of {count} "
                f"channel(s); got {channels!r}"
            )
        index.append(i % count)
    return np.ascontiguousarray(np.take(x, index, axis=-1))


def stack_channels(img, count: int) -> np.ndarray:
    """Repeat a one-channel image `count` times along the channels (gray -> RGB: 3).

    Parameters
    ----------
    img : array_like, shape (..., H, W, 1)
    count : int
        Channels out, >= 1.

    Returns
    -------
    ndarray, shape (..., H, W, count)

    Examples
    --------
    >>> stack_channels(np.array([[[5]]], dtype=np.uint8), 3)
    array([[[5, 5, 5]]], dtype=uint8)
    """
    x = check_image(img)
    count = as_int(count, "count", minimum=1)
    if x.shape[-1] != 1:
        raise ValueError(
            f"`img` must have exactly one channel to stack; got {x.shape[-1]} (shape "
            f"{x.shape!r}; use grayscale or select_channels first)"
        )
    return np.repeat(x, count, axis=-1)
