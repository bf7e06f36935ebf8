"""Shared parameter text for the filters' docstrings, kept once (scipy's docdict habit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

DOCS = {
    "input": """input : ndarray
        The data, 1-D or more; any strides (views, negative steps) and dtypes uint8, int8,
        uint16, int16, uint32, int32, uint64, int64, float16, float32, float64 (complex via
        the reference path).""",
    "output": """output : ndarray or dtype, optional
        Array to fill (same shape as `input`), or the dtype of the result; default the
        input's dtype. Integer outputs are rounded half to even and saturated.""",
    "mode": """mode : {'reflect', 'mirror', 'nearest', 'constant', 'wrap'} or sequence, optional
        How the input extends past its edges (scipy.ndimage's modes; 'grid-mirror',
        'grid-wrap' and 'grid-constant' are aliases). A sequence gives one per filtered axis.
        Default 'reflect'.""",
    "mode_single": """mode : {'reflect', 'mirror', 'nearest', 'constant', 'wrap'}, optional
        How the input extends past its edges. Default 'reflect'.""",
    "cval": """cval : scalar, optional
        Value outside the edges for mode 'constant'. Default 0.0.""",
    "origin": """origin : int or sequence, optional
        Shift of the filter from centred, per filtered axis: must satisfy
        -(size // 2) <= origin <= (size - 1) // 2. Default 0.""",
    "axes": """axes : int or tuple of int, optional
        Axes to filter (default all), e.g. ``axes=(1, 2)`` for H and W of an (N, H, W, C)
        batch. Per-axis arguments follow this order.""",
    "backend": """backend : {'cpu', 'numpy'} or None, optional
        Engine: 'cpu' (Numba, multithreaded; default for NumPy input) or 'numpy'
        (scipy.ndimage computed in float64, the reference).""",
    "size_footprint": """size : int or sequence of int, optional
        Window length per filtered axis (a box footprint). Give `size` or `footprint`.
    footprint : array_like of bool, optional
        Which neighbours take part, one dimension per filtered axis.""",
    "returns": """Returns
    -------
    ndarray
        The filtered array (`output` itself when an array was given).""",
}


def fill_doc(fn: F) -> F:
    if fn.__doc__:
        fn.__doc__ = fn.__doc__ % DOCS
    return fn
