"""Linear filters: correlations, and the smoothing and derivative filters built from them."""

from __future__ import annotations

from typing import Any

import numpy as np

from npaccel.filters import _params as P
from npaccel.filters._dispatch import backend_module
from npaccel.filters._docs import fill_doc
from npaccel.filters._passes import Pass, gaussian_kernel1d

__all__ = [
    "convolve",
    "convolve1d",
    "correlate",
    "correlate1d",
    "gaussian_filter",
    "gaussian_filter1d",
    "gaussian_gradient_magnitude",
    "gaussian_laplace",
    "gradient_magnitude",
    "laplace",
    "prewitt",
    "sobel",
    "uniform_filter",
    "uniform_filter1d",
]


def _run_passes(input, passes, output, cval, backend):
    input = P.check_input(input)
    out = P.prepare_output(output, input)
    if input.size == 0:
        return out
    backend_module(backend, input, out).correlate_passes(input, tuple(passes), P.to_cval(cval), out)
    return out


def _weights1d(weights: Any) -> np.ndarray:
    return P.as_float_array(weights, "weights", ndim=1)


def _convolution_origin(origin: int, size: int) -> int:
    """The correlation origin equivalent to convolving with origin ``origin``."""
    return -origin - (0 if size & 1 else 1)


@fill_doc
def correlate1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *,
                backend=None):  # fmt: skip
    """Correlate along one axis: ``out[i] = sum_j weights[j] * input[i + j - len(weights)//2 -
    origin]``.

    Parameters
    ----------
    %(input)s
    weights : array_like
        1-D filter weights.
    axis : int, optional
        Axis to filter. Default -1.
    %(output)s
    %(mode_single)s
    %(cval)s
    origin : int, optional
        Shift of the filter: -(len(weights) // 2) <= origin <= (len(weights) - 1) // 2.
    %(backend)s

    %(returns)s

    Examples
    --------
    >>> import numpy as np
    >>> from npaccel.filters import correlate1d
    >>> correlate1d(np.array([2, 8, 0, 4, 1, 9, 9, 0]), [1, 3])
    array([ 8, 26,  8, 12,  7, 28, 36,  9])
    """
    input = P.check_input(input)
    w = _weights1d(weights)
    ax = P.check_axis(axis, input.ndim)
    org = P.check_origin(P.to_int(origin, "origin"), len(w))
    return _run_passes(input, [Pass(ax, w, P.check_mode(mode), org)], output, cval, backend)


@fill_doc
def convolve1d(input, weights, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *,
               backend=None):  # fmt: skip
    """Convolve along one axis (correlation with the reversed weights).

    Parameters
    ----------
    %(input)s
    weights : array_like
        1-D filter weights.
    axis : int, optional
        Axis to filter. Default -1.
    %(output)s
    %(mode_single)s
    %(cval)s
    origin : int, optional
        Shift of the filter: -(len(weights) // 2) <= origin <= (len(weights) - 1) // 2.
    %(backend)s

    %(returns)s
    """
    input = P.check_input(input)
    w = _weights1d(weights)
    ax = P.check_axis(axis, input.ndim)
    org = P.check_origin(P.to_int(origin, "origin"), len(w))
    passes = [Pass(ax, w[::-1].copy(), P.check_mode(mode), _convolution_origin(org, len(w)))]
    return _run_passes(input, passes, output, cval, backend)


def _nd(input, weights, origin, axes, convolution: bool):
    """Weights and origins over all input axes (size 1 on the axes not filtered)."""
    ax = P.normalize_axes(axes, input.ndim)
    w = P.as_float_array(weights, "weights")
    if w.ndim != len(ax):
        raise ValueError(
            f"`weights` must have one dimension per filtered axis ({len(ax)}); got shape {w.shape}"
        )
    origins = P.per_axis(origin, len(ax), "origin", P.to_int)
    for o, size in zip(origins, w.shape, strict=True):
        P.check_origin(o, size)
    if convolution:
        w = w[(slice(None, None, -1),) * w.ndim]
        origins = tuple(_convolution_origin(o, s) for o, s in zip(origins, w.shape, strict=True))
    return P.expand_to_input(w, origins, ax, input.ndim)


def _correlate_nd(input, weights, output, mode, cval, origin, axes, backend, convolution):
    input = P.check_input(input)
    w, origins = _nd(input, weights, origin, axes, convolution)
    mode = P.check_mode(mode)
    out = P.prepare_output(output, input)
    if input.size == 0:
        return out
    backend_module(backend, input, out).correlate_nd(input, w, mode, P.to_cval(cval), origins, out)
    return out


@fill_doc
def correlate(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None,
              backend=None):  # fmt: skip
    """Multidimensional correlation with arbitrary weights.

    Parameters
    ----------
    %(input)s
    weights : array_like
        Weights with one dimension per filtered axis.
    %(output)s
    %(mode_single)s
    %(cval)s
    %(origin)s
    %(axes)s
    %(backend)s

    %(returns)s

    See Also
    --------
    correlate1d, uniform_filter, gaussian_filter : faster when the filter separates.
    """
    return _correlate_nd(input, weights, output, mode, cval, origin, axes, backend, False)


@fill_doc
def convolve(input, weights, output=None, mode="reflect", cval=0.0, origin=0, *, axes=None,
             backend=None):  # fmt: skip
    """Multidimensional convolution (correlation with the weights flipped on every axis).

    Parameters
    ----------
    %(input)s
    weights : array_like
        Weights with one dimension per filtered axis.
    %(output)s
    %(mode_single)s
    %(cval)s
    %(origin)s
    %(axes)s
    %(backend)s

    %(returns)s
    """
    return _correlate_nd(input, weights, output, mode, cval, origin, axes, backend, True)


def _uniform_pass(axis, size, mode, origin):
    P.check_origin(origin, size)
    return Pass(axis, np.full(size, 1.0 / size), mode, origin)


@fill_doc
def uniform_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *,
                     backend=None):  # fmt: skip
    """Mean over ``size`` neighbours along one axis (box filter).

    Parameters
    ----------
    %(input)s
    size : int
        Length of the window, >= 1.
    axis : int, optional
        Axis to filter. Default -1.
    %(output)s
    %(mode_single)s
    %(cval)s
    origin : int, optional
        Shift of the window: -(size // 2) <= origin <= (size - 1) // 2.
    %(backend)s

    %(returns)s
    """
    input = P.check_input(input)
    size = P.to_size(size, "size")
    ax = P.check_axis(axis, input.ndim)
    org = P.to_int(origin, "origin")
    return _run_passes(input, [_uniform_pass(ax, size, P.check_mode(mode), org)], output, cval,
                       backend)  # fmt: skip


@fill_doc
def uniform_filter(input, size=3, output=None, mode="reflect", cval=0.0, origin=0, *,
                   axes=None, backend=None):  # fmt: skip
    """Mean over a box of ``size`` per axis, as separable 1-D passes.

    Parameters
    ----------
    %(input)s
    size : int or sequence of int, optional
        Box length per filtered axis, >= 1. Default 3.
    %(output)s
    %(mode)s
    %(cval)s
    %(origin)s
    %(axes)s
    %(backend)s

    %(returns)s

    Examples
    --------
    >>> import numpy as np
    >>> from npaccel.filters import uniform_filter
    >>> uniform_filter(np.arange(9, dtype=np.float32).reshape(3, 3))
    array([[1.3333334, 2.       , 2.6666667],
           [3.3333333, 4.       , 4.6666665],
           [5.3333335, 6.       , 6.6666665]], dtype=float32)
    """
    input = P.check_input(input)
    ax = P.normalize_axes(axes, input.ndim)
    sizes = P.per_axis(size, len(ax), "size", P.to_size)
    modes = P.per_axis(mode, len(ax), "mode", P.to_mode)
    origins = P.per_axis(origin, len(ax), "origin", P.to_int)
    passes = [
        _uniform_pass(a, s, m, o)
        for a, s, m, o in zip(ax, sizes, modes, origins, strict=True)
        if s > 1
    ]
    return _run_passes(input, passes, output, cval, backend)


def _gaussian_radius(sigma: float, truncate: Any, radius: Any) -> int:
    if radius is not None:
        r = P.to_int(radius, "radius")
        if r < 0:
            raise ValueError(f"`radius` must be >= 0; got {radius!r}")
        return r
    t = P.to_sigma(truncate, "truncate")
    return int(t * sigma + 0.5)


def _gaussian_pass(axis, sigma, order, mode, truncate, radius):
    r = _gaussian_radius(sigma, truncate, radius)
    return Pass(axis, gaussian_kernel1d(sigma, order, r)[::-1].copy(), mode, 0)


@fill_doc
def gaussian_filter1d(input, sigma, axis=-1, order=0, output=None, mode="reflect", cval=0.0,
                      truncate=4.0, *, radius=None, backend=None):  # fmt: skip
    """Gaussian filter (or its derivative of ``order``) along one axis.

    Parameters
    ----------
    %(input)s
    sigma : float
        Standard deviation, > 0.
    axis : int, optional
        Axis to filter. Default -1.
    order : int, optional
        0 smooths; 1, 2, … convolve with that derivative of the Gaussian. Default 0.
    %(output)s
    %(mode_single)s
    %(cval)s
    truncate : float, optional
        Radius in sigmas, used when `radius` is None: ``int(truncate * sigma + 0.5)``.
    radius : int, optional
        Radius of the kernel in samples, overriding `truncate`.
    %(backend)s

    %(returns)s
    """
    input = P.check_input(input)
    s = P.to_sigma(sigma, "sigma")
    if s == 0:
        raise ValueError("`sigma` must be > 0 for gaussian_filter1d; got 0")
    ax = P.check_axis(axis, input.ndim)
    passes = [_gaussian_pass(ax, s, P.to_order(order, "order"), P.check_mode(mode), truncate,
                             radius)]  # fmt: skip
    return _run_passes(input, passes, output, cval, backend)


def _gaussian_passes(input, sigma, order, mode, truncate, radius, axes):
    ax = P.normalize_axes(axes, input.ndim)
    n = len(ax)
    sigmas = P.per_axis(sigma, n, "sigma", P.to_sigma)
    orders = P.per_axis(order, n, "order", P.to_order)
    modes = P.per_axis(mode, n, "mode", P.to_mode)
    radii = P.per_axis(radius, n, "radius", lambda v, _: v)
    return [
        _gaussian_pass(a, s, o, m, truncate, r)
        for a, s, o, m, r in zip(ax, sigmas, orders, modes, radii, strict=True)
        if s > 1e-15
    ]


@fill_doc
def gaussian_filter(input, sigma, order=0, output=None, mode="reflect", cval=0.0, truncate=4.0,
                    *, radius=None, axes=None, backend=None):  # fmt: skip
    """Gaussian filter as separable 1-D passes; axes with sigma 0 are left alone.

    Parameters
    ----------
    %(input)s
    sigma : float or sequence of float
        Standard deviation per filtered axis, >= 0.
    order : int or sequence of int, optional
        Derivative order per axis (0 smooths). Default 0.
    %(output)s
    %(mode)s
    %(cval)s
    truncate : float, optional
        Radius in sigmas when `radius` is None. Default 4.0.
    radius : int or sequence of int, optional
        Kernel radius per axis in samples, overriding `truncate`.
    %(axes)s
    %(backend)s

    %(returns)s
    """
    input = P.check_input(input)
    passes = _gaussian_passes(input, sigma, order, mode, truncate, radius, axes)
    return _run_passes(input, passes, output, cval, backend)


_SOBEL = (np.array([-1.0, 0.0, 1.0]), np.array([1.0, 2.0, 1.0]))
_PREWITT = (np.array([-1.0, 0.0, 1.0]), np.array([1.0, 1.0, 1.0]))


def _edge(input, kernels, axis, output, mode, cval, axes, backend):
    input = P.check_input(input)
    filtered = P.normalize_axes(axes, input.ndim)
    ax = P.check_axis(axis, input.ndim)
    if ax not in filtered:
        raise ValueError(f"`axis` {axis!r} must be one of `axes` {filtered}")
    modes = P.per_axis(mode, len(filtered), "mode", P.to_mode)
    by_axis = dict(zip(filtered, modes, strict=True))
    derivative, smooth = kernels
    passes = [Pass(ax, derivative, by_axis[ax], 0)]
    passes += [Pass(a, smooth, by_axis[a], 0) for a in filtered if a != ax]
    return _run_passes(input, passes, output, cval, backend)


@fill_doc
def sobel(input, axis=-1, output=None, mode="reflect", cval=0.0, *, axes=None, backend=None):
    """Sobel derivative along `axis`, smoothed with [1, 2, 1] along the other filtered axes.

    Parameters
    ----------
    %(input)s
    axis : int, optional
        Axis of the derivative. Default -1.
    %(output)s
    %(mode)s
    %(cval)s
    axes : tuple of int, optional
        npaccel extension: the axes the filter spans (default all, as scipy), e.g.
        ``axes=(1, 2)`` on an (N, H, W, C) batch; `axis` must be one of them.
    %(backend)s

    %(returns)s
    """
    return _edge(input, _SOBEL, axis, output, mode, cval, axes, backend)


@fill_doc
def prewitt(input, axis=-1, output=None, mode="reflect", cval=0.0, *, axes=None, backend=None):
    """Prewitt derivative along `axis`, smoothed with [1, 1, 1] along the other filtered axes.

    Parameters
    ----------
    %(input)s
    axis : int, optional
        Axis of the derivative. Default -1.
    %(output)s
    %(mode)s
    %(cval)s
    axes : tuple of int, optional
        npaccel extension: the axes the filter spans (default all, as scipy).
    %(backend)s

    %(returns)s
    """
    return _edge(input, _PREWITT, axis, output, mode, cval, axes, backend)


_EDGE_OPERATORS = {"sobel": _SOBEL, "prewitt": _PREWITT}


@fill_doc
def gradient_magnitude(input, operator="sobel", output=None, mode="reflect", cval=0.0, *,
                       axes=None, backend=None):  # fmt: skip
    """Edge strength: sqrt of the summed squares of `operator`'s derivative along each
    filtered axis (each smoothed along the other filtered axes), in one fused pass.

    npaccel extension, equal to ``scipy.ndimage.generic_gradient_magnitude(input,
    scipy.ndimage.sobel)`` (or ``prewitt``) when `axes` spans every axis; with `axes`, the
    derivatives are those of ``sobel(..., axes=axes)``, so e.g. ``axes=(1, 2)`` gives one
    magnitude image per page and channel of an (N, H, W, C) batch. Like scipy, the squares
    are summed in the compute dtype (no hypot rescaling: float32 data beyond ~1e19
    overflows to inf).

    Parameters
    ----------
    %(input)s
    operator : {'sobel', 'prewitt'}, optional
        Derivative [-1, 0, 1] smoothed with [1, 2, 1] (Sobel) or [1, 1, 1] (Prewitt).
    %(output)s
    %(mode)s
    %(cval)s
    %(axes)s
    %(backend)s

    %(returns)s
    """
    input = P.check_input(input)
    if not isinstance(operator, str) or operator not in _EDGE_OPERATORS:
        raise ValueError(f"`operator` must be one of {sorted(_EDGE_OPERATORS)}; "
                         f"got {operator!r}")  # fmt: skip
    derivative, smooth = _EDGE_OPERATORS[operator]
    ax = P.normalize_axes(axes, input.ndim)
    modes = dict(zip(ax, P.per_axis(mode, len(ax), "mode", P.to_mode), strict=True))
    if not ax:  # as scipy: nothing to differentiate, the input itself
        return _run_passes(input, (), output, cval, backend)
    lists = [[Pass(d, derivative, modes[d], 0)]  # scipy's order: matters for cval != 0
             + [Pass(a, smooth, modes[a], 0) for a in ax if a != d] for d in ax]
    return _sum_of_derivatives(input, lists, output, cval, backend, "hypot")


def _sum_of_derivatives(input, pass_lists, output, cval, backend, combine):
    out = P.prepare_output(output, input)
    if input.size == 0:
        return out
    backend_module(backend, input, out).combine_passes(
        input, tuple(tuple(p) for p in pass_lists), P.to_cval(cval), out, combine
    )
    return out


@fill_doc
def laplace(input, output=None, mode="reflect", cval=0.0, *, axes=None, backend=None):
    """Sum over the filtered axes of the second difference [1, -2, 1].

    Parameters
    ----------
    %(input)s
    %(output)s
    %(mode)s
    %(cval)s
    %(axes)s
    %(backend)s

    %(returns)s
    """
    input = P.check_input(input)
    ax = P.normalize_axes(axes, input.ndim)
    modes = P.per_axis(mode, len(ax), "mode", P.to_mode)
    lists = [[Pass(a, np.array([1.0, -2.0, 1.0]), m, 0)] for a, m in zip(ax, modes, strict=True)]
    return _sum_of_derivatives(input, lists, output, cval, backend, "sum")


def _gaussian_derivative_lists(input, sigma, mode, axes, order_on_axis, kwargs):
    unknown = set(kwargs) - {"truncate", "radius"}
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {sorted(unknown)}; "
                        "allowed: truncate, radius")  # fmt: skip
    ax = P.normalize_axes(axes, input.ndim)
    n = len(ax)
    sigmas = P.per_axis(sigma, n, "sigma", P.to_sigma)
    modes = P.per_axis(mode, n, "mode", P.to_mode)
    truncate = kwargs.get("truncate", 4.0)
    radii = P.per_axis(kwargs.get("radius"), n, "radius", lambda v, _: v)
    lists = []
    for i in range(n):
        orders = [order_on_axis if j == i else 0 for j in range(n)]
        lists.append([
            _gaussian_pass(a, s, o, m, truncate, r)
            for a, s, o, m, r in zip(ax, sigmas, orders, modes, radii, strict=True)
            if s > 1e-15
        ])  # fmt: skip
    return lists


@fill_doc
def gaussian_laplace(input, sigma, output=None, mode="reflect", cval=0.0, *, axes=None,
                     backend=None, **kwargs):  # fmt: skip
    """Laplacian of Gaussian: sum over the filtered axes of second Gaussian derivatives.

    Parameters
    ----------
    %(input)s
    sigma : float or sequence of float
        Standard deviation per filtered axis.
    %(output)s
    %(mode)s
    %(cval)s
    %(axes)s
    %(backend)s
    **kwargs
        ``truncate``, ``radius`` as for gaussian_filter.

    %(returns)s
    """
    input = P.check_input(input)
    lists = _gaussian_derivative_lists(input, sigma, mode, axes, 2, kwargs)
    return _sum_of_derivatives(input, lists, output, cval, backend, "sum")


@fill_doc
def gaussian_gradient_magnitude(input, sigma, output=None, mode="reflect", cval=0.0, *,
                                axes=None, backend=None, **kwargs):  # fmt: skip
    """Gradient magnitude: sqrt of the summed squares of first Gaussian derivatives.

    Parameters
    ----------
    %(input)s
    sigma : float or sequence of float
        Standard deviation per filtered axis.
    %(output)s
    %(mode)s
    %(cval)s
    %(axes)s
    %(backend)s
    **kwargs
        ``truncate``, ``radius`` as for gaussian_filter.

    %(returns)s
    """
    input = P.check_input(input)
    lists = _gaussian_derivative_lists(input, sigma, mode, axes, 1, kwargs)
    return _sum_of_derivatives(input, lists, output, cval, backend, "hypot")
