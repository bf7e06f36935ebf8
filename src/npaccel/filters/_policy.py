"""The one numeric policy of npaccel.filters (written out in docs/filters.md).

* Linear filters compute in float32 for float32, float16 and 8/16-bit integer data, and in
  float64 for float64 and 32/64-bit integer data (float32 cannot hold every int32), or
  whenever the output is float64.
* Results are stored to the output dtype once, at the end: floats are cast; integers are
  rounded to nearest, ties to even (like ``np.rint`` and OpenCV), saturated to the type's
  range (±inf saturate, NaN becomes 0). scipy.ndimage instead truncates toward zero and
  wraps around on overflow, and rounds to the output type after every separable pass.
* Rank filters (minimum, maximum, median, rank, percentile) select input values: exact.
* Complex data is computed by the reference (SciPy) path.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SUPPORTED_DTYPES",
    "check_dtype",
    "compute_dtype",
    "store",
]

SUPPORTED_DTYPES = tuple(
    np.dtype(t)
    for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
              "float16", "float32", "float64", "complex64", "complex128")
)  # fmt: skip
_WIDE = {np.dtype(t) for t in ("int32", "uint32", "int64", "uint64", "float64", "complex128")}


def check_dtype(dtype: np.dtype, name: str = "input") -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in SUPPORTED_DTYPES:
        allowed = ", ".join(str(d) for d in SUPPORTED_DTYPES)
        raise TypeError(f"`{name}` dtype must be one of {{{allowed}}}; got {dtype}")
    return dtype


def compute_dtype(input_dtype: np.dtype, output_dtype: np.dtype) -> np.dtype:
    """The floating type a linear filter accumulates in, for these input and output types."""
    if input_dtype.kind == "c" or output_dtype.kind == "c":
        return np.dtype(np.complex128)
    if input_dtype in _WIDE or output_dtype in _WIDE:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def store(values: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Write floating ``values`` into ``out`` by the policy (NumPy reference of the kernels)."""
    if values.dtype.kind == "c" and out.dtype.kind != "c":
        raise TypeError(f"`output` dtype {out.dtype} cannot hold complex results")
    if out.dtype.kind in "iu":
        info = np.iinfo(out.dtype)
        rounded = np.rint(values)
        rounded = np.where(np.isnan(rounded), 0, rounded)
        # float64 bounds of (u)int64 round up past the range; clip below them, then cast.
        hi = float(info.max) if info.bits < 64 else np.nextafter(float(info.max), 0)
        np.clip(rounded, float(info.min), hi, out=rounded)
        out[...] = rounded.astype(out.dtype)
    else:
        out[...] = values
    return out
