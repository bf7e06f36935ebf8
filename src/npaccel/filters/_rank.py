"""Rank filters: minimum, maximum, median, rank and percentile, by size or footprint."""

from __future__ import annotations

import numpy as np

from npaccel.filters import _params as P
from npaccel.filters._dispatch import backend_module
from npaccel.filters._docs import fill_doc
from npaccel.filters._passes import MinMaxPass

__all__ = [
    "maximum_filter",
    "maximum_filter1d",
    "median_filter",
    "minimum_filter",
    "minimum_filter1d",
    "percentile_filter",
    "rank_filter",
]


def _no_complex(input: np.ndarray) -> None:
    if input.dtype.kind == "c":
        raise TypeError(f"rank filters need ordered values; `input` dtype {input.dtype} is "
                        "complex")  # fmt: skip


def _minmax1d(input, size, axis, output, mode, cval, origin, backend, minimum):
    input = P.check_input(input)
    _no_complex(input)
    size = P.to_size(size, "size")
    ax = P.check_axis(axis, input.ndim)
    org = P.check_origin(P.to_int(origin, "origin"), size)
    out = P.prepare_output(output, input)
    if input.size:
        backend_module(backend, input).minmax_passes(
            input, (MinMaxPass(ax, size, P.check_mode(mode), org),), P.to_cval(cval), minimum, out
        )
    return out


@fill_doc
def minimum_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *,
                     backend=None):  # fmt: skip
    """Minimum over ``size`` neighbours along one axis (O(1) per element for any size).

    Parameters
    ----------
    %(input)s
    size : int
        Window length, >= 1.
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
    return _minmax1d(input, size, axis, output, mode, cval, origin, backend, True)


@fill_doc
def maximum_filter1d(input, size, axis=-1, output=None, mode="reflect", cval=0.0, origin=0, *,
                     backend=None):  # fmt: skip
    """Maximum over ``size`` neighbours along one axis (O(1) per element for any size).

    Parameters
    ----------
    %(input)s
    size : int
        Window length, >= 1.
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
    return _minmax1d(input, size, axis, output, mode, cval, origin, backend, False)


def _footprint(input, size, footprint, axes) -> tuple[tuple[int, ...], np.ndarray]:
    """The filtered axes and a boolean footprint over them, from `size` or `footprint`."""
    ax = P.normalize_axes(axes, input.ndim)
    if footprint is None:
        if size is None:
            raise ValueError("one of `size` or `footprint` must be given; got neither")
        sizes = P.per_axis(size, len(ax), "size", P.to_size)
        return ax, np.ones(sizes, dtype=bool)
    if size is not None:
        raise ValueError("give `size` or `footprint`, not both")
    return ax, P.check_footprint(footprint, len(ax))


def _full(ax, fp, origin, ndim):
    """Footprint and origins over all input axes (size 1 where not filtered)."""
    origins = P.per_axis(origin, len(ax), "origin", P.to_int)
    for o, s in zip(origins, fp.shape, strict=True):
        P.check_origin(o, s)
    full_fp, full_origins = P.expand_to_input(fp, origins, ax, ndim)
    return full_fp, full_origins, origins


def _minmax(input, size, footprint, output, mode, cval, origin, axes, backend, minimum):
    input = P.check_input(input)
    _no_complex(input)
    ax, fp = _footprint(input, size, footprint, axes)
    full_fp, full_origins, origins = _full(ax, fp, origin, input.ndim)
    out = P.prepare_output(output, input)
    if fp.all():  # separable: one 1-D pass per axis, mode may differ per axis
        modes = P.per_axis(mode, len(ax), "mode", P.to_mode)
        passes = tuple(
            MinMaxPass(a, s, m, o)
            for a, s, m, o in zip(ax, fp.shape, modes, origins, strict=True)
            if s > 1
        )
        if input.size:
            backend_module(backend, input).minmax_passes(input, passes, P.to_cval(cval), minimum,
                                                         out)  # fmt: skip
        return out
    mode = P.per_axis(mode, 1, "mode", P.to_mode, allow_sequence=False)[0]
    if input.size:
        rank = 0 if minimum else int(fp.sum()) - 1
        backend_module(backend, input).rank_nd(input, full_fp, rank, mode, P.to_cval(cval),
                                               full_origins, out)  # fmt: skip
    return out


@fill_doc
def minimum_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0,
                   origin=0, *, axes=None, backend=None):  # fmt: skip
    """Minimum over a box (separable, O(1) per element) or a footprint.

    Parameters
    ----------
    %(input)s
    %(size_footprint)s
    %(output)s
    %(mode)s
    %(cval)s
    %(origin)s
    %(axes)s
    %(backend)s

    %(returns)s
    """
    return _minmax(input, size, footprint, output, mode, cval, origin, axes, backend, True)


@fill_doc
def maximum_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0,
                   origin=0, *, axes=None, backend=None):  # fmt: skip
    """Maximum over a box (separable, O(1) per element) or a footprint.

    Parameters
    ----------
    %(input)s
    %(size_footprint)s
    %(output)s
    %(mode)s
    %(cval)s
    %(origin)s
    %(axes)s
    %(backend)s

    %(returns)s
    """
    return _minmax(input, size, footprint, output, mode, cval, origin, axes, backend, False)


def _rank(input, rank_of, size, footprint, output, mode, cval, origin, axes, backend):
    input = P.check_input(input)
    _no_complex(input)
    ax, fp = _footprint(input, size, footprint, axes)
    full_fp, full_origins, _ = _full(ax, fp, origin, input.ndim)
    mode = P.per_axis(mode, 1, "mode", P.to_mode, allow_sequence=False)[0]
    n = int(fp.sum())
    rank = rank_of(n)
    out = P.prepare_output(output, input)
    if input.size:
        backend_module(backend, input).rank_nd(input, full_fp, rank, mode, P.to_cval(cval),
                                               full_origins, out)  # fmt: skip
    return out


@fill_doc
def rank_filter(input, rank, size=None, footprint=None, output=None, mode="reflect", cval=0.0,
                origin=0, *, axes=None, backend=None):  # fmt: skip
    """The ``rank``-th smallest value (0-based; negative counts from the largest) in each
    neighbourhood.

    Parameters
    ----------
    %(input)s
    rank : int
        Position in the sorted neighbourhood, in [-n, n) for n selected neighbours.
    %(size_footprint)s
    %(output)s
    %(mode_single)s
    %(cval)s
    %(origin)s
    %(axes)s
    %(backend)s

    %(returns)s
    """
    r = P.to_int(rank, "rank")

    def rank_of(n: int) -> int:
        if not -n <= r < n:
            raise ValueError(f"`rank` must be in [{-n}, {n - 1}] for a footprint of {n} "
                             f"elements; got {rank!r}")  # fmt: skip
        return r % n

    return _rank(input, rank_of, size, footprint, output, mode, cval, origin, axes, backend)


@fill_doc
def median_filter(input, size=None, footprint=None, output=None, mode="reflect", cval=0.0,
                  origin=0, *, axes=None, backend=None):  # fmt: skip
    """Median of each neighbourhood (for an even count, the upper of the two middle values,
    as scipy.ndimage).

    Parameters
    ----------
    %(input)s
    %(size_footprint)s
    %(output)s
    %(mode_single)s
    %(cval)s
    %(origin)s
    %(axes)s
    %(backend)s

    %(returns)s
    """
    return _rank(input, lambda n: n // 2, size, footprint, output, mode, cval, origin, axes,
                 backend)  # fmt: skip


@fill_doc
def percentile_filter(input, percentile, size=None, footprint=None, output=None,
                      mode="reflect", cval=0.0, origin=0, *, axes=None, backend=None):  # fmt: skip
    """The ``percentile``-th percentile of each neighbourhood, as scipy.ndimage picks it:
    the element of rank ``int(n * percentile / 100)`` (the largest for 100).

    Parameters
    ----------
    %(input)s
    percentile : float
        In [-100, 100]; negative values count from 100 (-20 is 80).
    %(size_footprint)s
    %(output)s
    %(mode_single)s
    %(cval)s
    %(origin)s
    %(axes)s
    %(backend)s

    %(returns)s
    """
    try:
        pct = float(percentile)
    except (TypeError, ValueError):
        raise TypeError(f"`percentile` must be a real number; got {percentile!r}") from None
    if not -100.0 <= pct <= 100.0:
        raise ValueError(f"`percentile` must be in [-100, 100]; got {percentile!r}")
    if pct < 0:
        pct += 100.0

    def rank_of(n: int) -> int:
        return n - 1 if pct == 100.0 else int(float(n) * pct / 100.0)

    return _rank(input, rank_of, size, footprint, output, mode, cval, origin, axes, backend)
