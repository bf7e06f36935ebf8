"""numpy.fft's multidimensional transforms — same names, signatures and defaults — run
where the data lives.

NumPy arrays run on scipy.fft's pocketfft with as many threads as :mod:`npaccel.threads`
allows (``backend='cpu'``; numpy.fft uses one), CuPy arrays on cuFFT (``backend='cuda'``);
``backend='numpy'`` is numpy.fft, the reference.

Dtype policy (NumPy 2's, for every backend): float16, float32 and complex64 are transformed
in single precision (complex64 out, float32 for the inverse real transforms), longdouble in
long double (not on 'cuda'), bool, integers and the rest in double precision.

Examples
--------
>>> import numpy as np
>>> from npaccel import fft
>>> x = np.zeros((4, 4), np.float32)
>>> x[0, 0] = 1
>>> spectrum = fft.rfft2(x)
>>> spectrum.dtype, spectrum.shape
(dtype('complex64'), (4, 3))
>>> np.allclose(fft.irfft2(spectrum, s=x.shape), x)
True
"""

from __future__ import annotations

import operator
from typing import Any, Literal

import numpy as np

from npaccel._ops import _dispatch
from npaccel._ops._docs import fill_doc
from npaccel._ops._xp import write_out

__all__ = ["fft2", "fftn", "ifft2", "ifftn", "irfft2", "irfftn", "rfft2", "rfftn"]

_dispatch.register_family("fft")

Kind = Literal["fftn", "ifftn", "rfftn", "irfftn"]
NORMS = ("backward", "ortho", "forward")

_SINGLE = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.complex64))
_LONG = (np.dtype(np.longdouble), np.dtype(np.clongdouble))


def work_dtype(dtype: np.dtype, kind: Kind, backend: str) -> tuple[np.dtype, np.dtype]:
    """``(dtype the input is transformed in, dtype of the result)`` for a ``kind``
    transform of ``dtype`` data: the one dtype policy of npaccel.fft (NumPy 2's)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "biufc":
        raise TypeError(f"`a` has dtype {dtype}; FFTs take bool, integer, float and complex "
                        "arrays")  # fmt: skip
    if kind == "rfftn" and dtype.kind == "c":
        raise TypeError(f"`a` must be real for rfftn/rfft2; got dtype {dtype} (use fftn/fft2 "
                        "for complex input)")  # fmt: skip
    if dtype in _LONG and np.dtype(np.longdouble) != np.dtype(np.float64):
        if backend == "cuda":
            raise TypeError(f"`a` has dtype {dtype}; cuFFT has no long double: cast to "
                            "float64/complex128 or use backend 'cpu'")  # fmt: skip
        real, complex_ = np.dtype(np.longdouble), np.dtype(np.clongdouble)
    elif dtype in _SINGLE:
        real, complex_ = np.dtype(np.float32), np.dtype(np.complex64)
    else:
        real, complex_ = np.dtype(np.float64), np.dtype(np.complex128)
    if kind == "rfftn":
        return real, complex_
    return complex_, real if kind == "irfftn" else complex_


def _norm(norm: Any) -> str:
    if norm is None:
        return "backward"
    if not isinstance(norm, str) or norm not in NORMS:
        raise ValueError(f"`norm` must be one of {{None, 'backward', 'ortho', 'forward'}}; "
                         f"got {norm!r}")  # fmt: skip
    return norm


def _index(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` entries must be integers; got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"`{name}` entries must be integers; got {value!r}") from None


def _sequence(name: str, value: Any) -> list[Any]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise TypeError(f"`{name}` must be a sequence of integers or None; got {value!r}") from None


def _axes(axes: Any, s: Any, shape: tuple[int, ...]) -> tuple[int, ...]:
    ndim = len(shape)
    if axes is None:
        count = ndim if s is None else len(_sequence("s", s))
        if count > ndim:
            raise ValueError(f"`s` has {count} entries but `a` has only {ndim} dimensions "
                             f"(shape {shape})")  # fmt: skip
        return tuple(range(ndim - count, ndim))
    out = []
    for axis in _sequence("axes", axes):
        axis = _index("axes", axis)
        if not -ndim <= axis < ndim:
            raise ValueError(f"`axes` entry {axis!r} is out of range for a {ndim}-D input "
                             f"(shape {shape}); use -{ndim} <= axis < {ndim}")  # fmt: skip
        out.append(axis % ndim)
    if not out:
        raise ValueError(f"`axes` must name at least one axis; got {axes!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"`axes` must not repeat an axis; got {axes!r} (axes {out} of a "
                         f"{ndim}-D input)")  # fmt: skip
    return tuple(out)


def _sizes(s: Any, axes: tuple[int, ...], shape: tuple[int, ...], kind: Kind) -> tuple[int, ...]:
    """Points per transformed axis: `s`, its -1 entries (NumPy 2) and None filled from the
    input (for irfftn the last axis's default is 2 * (m - 1))."""
    default = [shape[ax] for ax in axes]
    if kind == "irfftn":
        default[-1] = 2 * (default[-1] - 1)
    if s is None:
        sizes = default
    else:
        given = _sequence("s", s)
        if len(given) != len(axes):
            raise ValueError(f"`s` has {len(given)} entries but `axes` {axes} has {len(axes)}; "
                             "give one size per transformed axis")  # fmt: skip
        sizes = [_index("s", n) for n in given]
        sizes = [d if n == -1 else n for n, d in zip(sizes, default, strict=True)]
        for n in sizes:
            if n < 1:
                raise ValueError(f"`s` entries must be >= 1 (or -1 for the input's size); "
                                 f"got s={s!r}")  # fmt: skip
    for ax, n in zip(axes, sizes, strict=True):
        if n < 1:
            if kind == "irfftn" and ax == axes[-1]:
                raise ValueError(
                    f"`a` has {shape[ax]} point(s) along axis {ax} (shape {shape}): the "
                    f"default output length 2 * ({shape[ax]} - 1) = {n} is invalid; give `s`"
                )
            raise ValueError(f"`a` has no points along axis {ax} (shape {shape}); an FFT "
                             "needs at least 1")  # fmt: skip
    return tuple(sizes)


def _transform(kind: Kind, a, s, axes, norm, out, backend):
    norm = _norm(norm)
    call = _dispatch.resolve("fft", backend, ("a",), (a,))
    (a,) = call.arrays
    shape = tuple(a.shape)
    if not shape:
        raise ValueError("`a` must have at least 1 dimension; got a 0-d array")
    work, result_dtype = work_dtype(a.dtype, kind, call.backend)
    axes = _axes(axes, s, shape)
    sizes = _sizes(s, axes, shape, kind)
    result_shape = list(shape)
    for ax, n in zip(axes, sizes, strict=True):
        result_shape[ax] = n
    if kind == "rfftn":
        result_shape[axes[-1]] = sizes[-1] // 2 + 1
    _dispatch.check_out(out, tuple(result_shape), result_dtype, call)
    result = getattr(call.module, kind)(a.astype(work, copy=False), sizes, axes, norm)
    return write_out(result, out)


_DOC = """%(summary)s

    Parameters
    ----------
    a : array_like
        Input%(input_note)s.
    s : sequence of int, optional
        %(s_text)s An entry -1 takes the input's size (NumPy 2).
    axes : sequence of int, optional
        Axes to transform; default %(axes_default)s. Axes must be in range and not repeat.
    norm : {None, 'backward', 'ortho', 'forward'}, optional
        Normalisation, as in numpy.fft; None is 'backward'.
    out : ndarray, optional
        Array of the input's type, of the result's shape, to hold the result (filled after
        the transform: it saves no memory).
    %%(backend_fft)s

    Returns
    -------
    ndarray
        %(returns)s, in the input's array type; dtype by the policy in :mod:`npaccel.fft`.

    Raises
    ------
    ValueError
        If an axis is out of range or repeated, `s` and `axes` differ in length, a size is
        below 1, or `norm` is not one of the choices.
    TypeError
        If the dtype cannot be transformed%(type_note)s.
    %%(raises_dispatch)s

    See Also
    --------
    numpy.fft.%(name)s, scipy.fft.%(name)s, cupy.fft.%(name)s
    """

_N_AXES = "all axes, or the last ``len(s)`` when `s` is given"
_S_C2C = "Points per transformed axis: the input is cropped or zero-padded to them."
_S_R2C = ("Points per transformed axis (the real input is cropped or zero-padded); the last "
          "axis gives ``s[-1] // 2 + 1`` complex outputs.")  # fmt: skip
_S_C2R = ("Output points per transformed axis; default the input's sizes except the last, "
          "``2 * (m - 1)`` for m input points: give it for an odd original length.")  # fmt: skip


def _doc(name: str, summary: str, axes_default: str, s_text: str, returns: str,
         input_note: str = "", type_note: str = "") -> str:  # fmt: skip
    return _DOC % {
        "name": name, "summary": summary, "axes_default": axes_default, "s_text": s_text,
        "returns": returns, "input_note": input_note, "type_note": type_note,
    }  # fmt: skip


def fftn(a, s=None, axes=None, norm=None, out=None, *, backend=None):
    return _transform("fftn", a, s, axes, norm, out, backend)


def ifftn(a, s=None, axes=None, norm=None, out=None, *, backend=None):
    return _transform("ifftn", a, s, axes, norm, out, backend)


def rfftn(a, s=None, axes=None, norm=None, out=None, *, backend=None):
    return _transform("rfftn", a, s, axes, norm, out, backend)


def irfftn(a, s=None, axes=None, norm=None, out=None, *, backend=None):
    return _transform("irfftn", a, s, axes, norm, out, backend)


def fft2(a, s=None, axes=(-2, -1), norm=None, out=None, *, backend=None):
    return _transform("fftn", a, s, axes, norm, out, backend)


def ifft2(a, s=None, axes=(-2, -1), norm=None, out=None, *, backend=None):
    return _transform("ifftn", a, s, axes, norm, out, backend)


def rfft2(a, s=None, axes=(-2, -1), norm=None, out=None, *, backend=None):
    return _transform("rfftn", a, s, axes, norm, out, backend)


def irfft2(a, s=None, axes=(-2, -1), norm=None, out=None, *, backend=None):
    return _transform("irfftn", a, s, axes, norm, out, backend)


_LAST2 = "the last two, (-2, -1)"
_REAL_ONLY = " (complex input to the real transforms is refused, not truncated)"
for _fn, _summary, _axes_default, _s_text, _returns, _input_note in (
    (fftn, "N-D discrete Fourier transform.", _N_AXES, _S_C2C, "The complex spectrum", ""),
    (ifftn, "N-D inverse discrete Fourier transform.", _N_AXES, _S_C2C, "The complex signal",
     ""),
    (rfftn, "N-D discrete Fourier transform of real input (the last axis halved).", _N_AXES,
     _S_R2C, "The complex half-spectrum", ", real"),
    (irfftn, "Inverse of :func:`rfftn`: real output from a half-spectrum.", _N_AXES, _S_C2R,
     "The real signal", ", a half-spectrum as rfftn returns it"),
    (fft2, "2-D discrete Fourier transform (over the last two axes by default).", _LAST2,
     _S_C2C, "The complex spectrum", ""),
    (ifft2, "2-D inverse discrete Fourier transform.", _LAST2, _S_C2C, "The complex signal",
     ""),
    (rfft2, "2-D discrete Fourier transform of real input.", _LAST2, _S_R2C,
     "The complex half-spectrum", ", real"),
    (irfft2, "Inverse of :func:`rfft2`.", _LAST2, _S_C2R, "The real signal",
     ", a half-spectrum as rfft2 returns it"),
):  # fmt: skip
    _fn.__doc__ = _doc(_fn.__name__, _summary, _axes_default, _s_text, _returns, _input_note,
                       _REAL_ONLY if _fn in (rfftn, rfft2) else "")  # fmt: skip
    fill_doc(_fn)
del _fn, _summary, _axes_default, _s_text, _returns, _input_note
