"""The reference backend: scipy.ndimage, computed in float64, stored by npaccel's policy.

Everything here is the obviously-correct path the fast backends are tested against."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from npaccel.filters._policy import store


def _work(input: np.ndarray) -> np.ndarray:
    return input.astype(np.complex128 if input.dtype.kind == "c" else np.float64)


def _apply(work, passes, cval):
    for p in passes:
        ndimage.correlate1d(work, p.weights, p.axis, output=work, mode=p.mode, cval=cval,
                            origin=p.origin)  # fmt: skip
    return work


def correlate_passes(input, passes, cval, out):
    return store(_apply(_work(input), passes, cval), out)


def correlate_nd(input, weights, mode, cval, origins, out):
    work = ndimage.correlate(_work(input), weights, mode=mode, cval=cval, origin=list(origins))
    return store(work, out)


def combine_passes(input, pass_lists, cval, out, combine):
    total = None
    for passes in pass_lists:
        part = _apply(_work(input), passes, cval)
        if combine == "hypot":
            part = part * part
        total = part if total is None else total + part
    if combine == "hypot":
        total = np.sqrt(total)
    return store(total, out)


def _selectable(input, cval, out):
    """``(work, cval, values)``: what scipy.ndimage selects on, exactly.

    scipy.ndimage selects in float64, which rounds int64/uint64 beyond 2**53. Selection
    commutes with non-decreasing maps, so such data is replaced by its rank among the
    distinct values (cval included, converted to the input dtype by the policy as the cpu
    backend does), selected, and mapped back through ``values``. Elsewhere ``values`` is None
    and ``work`` is the float64 data."""
    wide = input.dtype.kind in "iu" and input.dtype.itemsize == 8
    if not wide or out.dtype != input.dtype or np.isnan(cval):
        return input.astype(np.float64), cval, None
    fill = store(np.array([cval], dtype=np.float64), np.empty(1, input.dtype))
    values, ranks = np.unique(np.concatenate([input.ravel(), fill]), return_inverse=True)
    ranks = ranks.reshape(-1)
    work = ranks[:-1].reshape(input.shape).astype(np.float64)
    return work, float(ranks[-1]), values


def _selected(work, values, out):
    if values is None:
        return store(work, out)
    out[...] = values[work.astype(np.intp)]
    return out


def minmax_passes(input, passes, cval, minimum, out):
    work, cval, values = _selectable(input, cval, out)
    f = ndimage.minimum_filter1d if minimum else ndimage.maximum_filter1d
    for p in passes:
        work = f(work, p.size, p.axis, mode=p.mode, cval=cval, origin=p.origin)
    return _selected(work, values, out)


def rank_nd(input, footprint, rank, mode, cval, origins, out):
    work, cval, values = _selectable(input, cval, out)
    if work.ndim == 1:  # scipy 1.17's 1-D rank path ignores holes in the footprint
        work, footprint, origins = work[None], footprint[None], (0, *origins)
    work = ndimage.rank_filter(work, rank, footprint=footprint, mode=mode, cval=cval,
                               origin=list(origins))  # fmt: skip
    return _selected(work.reshape(input.shape), values, out)
