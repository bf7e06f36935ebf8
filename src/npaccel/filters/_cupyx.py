"""The GPU reference: cupyx.scipy.ndimage, computed in float64 (complex128 for complex
data), stored by npaccel's policy.

Backend "cuda" sends complex data here (`npaccel.filters._dispatch`), as backend "cpu"
sends it to SciPy. NumPy inputs are uploaded and the result copied into the NumPy output.
Under numba-cuda's simulator, where device arrays are NumPy arrays, scipy.ndimage stands in
for cupyx.scipy.ndimage (the same functions, the same arguments). Rank filters never get
here: they refuse complex input.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from npaccel.cuda._device import array_module, is_cupy, to_device
from npaccel.filters._policy import store

__all__ = ["combine_passes", "correlate_nd", "correlate_passes"]


def _ndimage(xp: ModuleType) -> ModuleType:
    if xp is np:
        from scipy import ndimage

        return ndimage
    from cupyx.scipy import ndimage

    return ndimage


def _work_dtype(input: Any) -> np.dtype:
    return np.dtype(np.complex128 if input.dtype.kind == "c" else np.float64)


def _work(input: Any, xp: ModuleType) -> Any:
    data = input if is_cupy(input) or xp is np else to_device(input, xp)
    return data.astype(_work_dtype(input))


def _store(values: Any, out: Any) -> Any:
    """`npaccel.filters._policy.store` on the device (or on the host for a NumPy output)."""
    if not is_cupy(out):
        return store(values if isinstance(values, np.ndarray) else values.get(), out)
    if values.dtype.kind == "c" and out.dtype.kind != "c":
        raise TypeError(f"`output` dtype {out.dtype} cannot hold complex results")
    if out.dtype.kind in "iu":
        import cupy

        info = np.iinfo(out.dtype)
        hi = float(info.max) if info.bits < 64 else float(np.nextafter(float(info.max), 0))
        rounded = cupy.rint(values)
        rounded[cupy.isnan(rounded)] = 0
        cupy.clip(rounded, float(info.min), hi, out=rounded)
        out[...] = rounded.astype(out.dtype)
    else:
        out[...] = values
    return out


def _weights(weights: np.ndarray, xp: ModuleType) -> Any:
    return weights if xp is np else xp.asarray(weights)


def _apply(ndimage: ModuleType, xp: ModuleType, work: Any, passes, cval: float) -> Any:
    for p in passes:
        work = ndimage.correlate1d(work, _weights(p.weights, xp), p.axis, mode=p.mode,
                                   cval=cval, origin=p.origin)  # fmt: skip
    return work


def correlate_passes(input, passes, cval, out):
    xp = array_module(input, out)
    work = _apply(_ndimage(xp), xp, _work(input, xp), passes, cval)
    return _store(work, out)


def correlate_nd(input, weights, mode, cval, origins, out):
    xp = array_module(input, out)
    work = _ndimage(xp).correlate(_work(input, xp), _weights(weights, xp), mode=mode, cval=cval,
                                  origin=list(origins))  # fmt: skip
    return _store(work, out)


def combine_passes(input, pass_lists, cval, out, combine):
    xp = array_module(input, out)
    ndimage = _ndimage(xp)
    total = None
    for passes in pass_lists:
        part = _apply(ndimage, xp, _work(input, xp), passes, cval)
        if combine == "hypot":
            part = part * part
        total = part if total is None else total + part
    if total is None:
        total = xp.zeros(input.shape, dtype=_work_dtype(input))
    if combine == "hypot":
        total = xp.sqrt(total)
    return _store(total, out)
