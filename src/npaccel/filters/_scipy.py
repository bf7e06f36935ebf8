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


def minmax_passes(input, passes, cval, minimum, out):
    work = input.astype(np.float64)
    f = ndimage.minimum_filter1d if minimum else ndimage.maximum_filter1d
    for p in passes:
        work = f(work, p.size, p.axis, mode=p.mode, cval=cval, origin=p.origin)
    return store(work, out)


def rank_nd(input, footprint, rank, mode, cval, origins, out):
    work = ndimage.rank_filter(input.astype(np.float64), rank, footprint=footprint, mode=mode,
                               cval=cval, origin=list(origins))  # fmt: skip
    return store(work, out)
