"""Shared helpers for the npaccel.filters tests: the reference (oracle), test data, and the
per-dtype tolerances, written once.

The oracle is scipy.ndimage itself, called here directly (not through npaccel's "numpy"
backend, which it also checks): the filter computed in float64 (complex128 for complex data)
on ``input.astype(float64)``, then written to the output dtype by the numeric policy
(``npaccel.filters._policy.store``: integers rounded half to even and saturated).
"""

from __future__ import annotations

import inspect
import operator
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from scipy import ndimage

from npaccel.filters._policy import store

BACKENDS = ("cpu", "numpy")
DTYPES = tuple(np.dtype(t) for t in ("uint8", "uint16", "int16", "int32", "float32", "float64"))
SMOKE_DTYPES = tuple(np.dtype(t) for t in ("int8", "int64", "float16"))
# The grids over DTYPES. Every dtype compiles its own Numba kernels on backend "cpu" (seconds
# each, once per cache): uint8, float32 and float64 are the quick set, the others are marked
# slow (they still run; `-m "not slow"` leaves them out for a quick cold run).
GRID_DTYPES = [
    pytest.param(d, id=d.name, marks=[] if d.name in {"uint8", "float32", "float64"} else
                 [pytest.mark.slow])
    for d in DTYPES
]  # fmt: skip
MODES = ("reflect", "mirror", "nearest", "constant", "wrap")
RANK_FILTERS = frozenset(
    {
        "minimum_filter",
        "maximum_filter",
        "minimum_filter1d",
        "maximum_filter1d",
        "median_filter",
        "rank_filter",
        "percentile_filter",
    }
)


@dataclass(frozen=True)
class Tol:
    """Allowed |actual - reference|: ``rtol * |reference| + atol * scale``, where ``scale``
    is the data magnitude times the kernel's L1 norm (the size of the terms summed)."""

    rtol: float
    atol: float


# The tolerance table: float results by the dtype they are stored in; integer results by the
# dtype they are computed in (the window around .5 in which rounding may go either way).
# Observed on the grids: float32 within 0.7 eps32 of scale, integers rounded the other way
# only within 0.2 eps32 of scale from a half; float16 results within one float16 ulp.
TOLERANCE = {
    np.dtype("float16"): Tol(rtol=2e-3, atol=1e-3),
    np.dtype("float32"): Tol(rtol=1e-6, atol=5e-7),
    np.dtype("float64"): Tol(rtol=1e-12, atol=1e-13),
    np.dtype("complex64"): Tol(rtol=1e-6, atol=5e-7),
    np.dtype("complex128"): Tol(rtol=1e-12, atol=1e-13),
}
INTEGER_MAX_DIFF = 1  # and only where the exact value is within the compute tolerance of x.5

# Integer comparisons over the session: how often rounding went the other way near a half.
ROUNDING = {"compared": 0, "off_by_one": 0}


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ROUNDING["compared"]:
        terminalreporter.write_line(
            f"npaccel.filters: {ROUNDING['off_by_one']} of {ROUNDING['compared']} integer "
            "results rounded the other way at a near-.5 value (allowed: |diff| <= 1 there only)"
        )


# --------------------------------------------------------------------------- test data


def make_input(shape: Sequence[int], dtype: Any, seed: int = 0) -> np.ndarray:
    """Random data spanning the dtype (integers: the full range up to 16 bits, +-2**20
    beyond, so saturation happens; floats: normal, scale 100)."""
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        lo, hi = (info.min, info.max) if info.bits <= 16 else (max(info.min, -(2**20)), 2**20)
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)
    if dtype.kind == "c":
        values = rng.normal(size=shape) + 1j * rng.normal(size=shape)
        return (100 * values).astype(dtype)
    scale = 10 if dtype == np.float16 else 100
    return (scale * rng.normal(size=shape)).astype(dtype)


CVAL = 2.5  # for mode 'constant' in the grids: for integer outputs of rank filters, a tie

# --------------------------------------------------------------------------- the oracle

_PER_AXIS = ("size", "sigma", "order", "mode", "origin", "radius")


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str)


# scipy maps the dimensions of weights and footprints to the filtered axes in increasing
# order whatever the order of `axes`; npaccel (documented) maps every per-axis argument,
# arrays included, in `axes` order. For these filters the oracle sorts `axes` first; the
# separable ones keep `axes` as given, as scipy runs their passes in that order.
_FOOTPRINT_FILTERS = RANK_FILTERS | {"correlate", "convolve"}


def _canonical_axes(kwargs: dict[str, Any], ndim: int) -> None:
    """Rewrite ``axes`` in increasing order, permuting every per-axis argument with it."""
    axes = kwargs.get("axes")
    if axes is None:
        return
    axes = [operator.index(axes)] if np.ndim(axes) == 0 else [operator.index(a) for a in axes]
    axes = [a % ndim for a in axes]
    order = np.argsort(axes)
    kwargs["axes"] = tuple(sorted(axes))
    for key in _PER_AXIS:
        if _is_sequence(kwargs.get(key)):
            kwargs[key] = [kwargs[key][i] for i in order]
    for key in ("weights", "footprint"):
        if kwargs.get(key) is not None:
            kwargs[key] = np.transpose(np.asarray(kwargs[key]), order)


def _rank_1d_as_2d(fn: Any, work: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    """scipy 1.17's 1-D rank path ignores holes in a 1-D footprint; its N-D path does not:
    filter ``work`` as one row of a 2-D array."""
    kwargs.pop("axes", None)
    kwargs["footprint"] = np.asarray(kwargs["footprint"])[None]
    neutral = {"origin": 0, "mode": "reflect"}
    for key, value in neutral.items():
        if _is_sequence(kwargs.get(key)):
            kwargs[key] = [value, *kwargs[key]]
        elif key == "origin":
            kwargs[key] = [value, kwargs.get(key, 0)]
    return fn(work[None], **kwargs)[0]


def _edge_filter(name: str, work: np.ndarray, axis: int, kwargs: dict[str, Any]) -> np.ndarray:
    """sobel/prewitt over `axes` only (scipy has no `axes` here): filter each slice."""
    fn = getattr(ndimage, name)
    axes = kwargs.pop("axes", None)
    if axes is None:
        return fn(work, axis=axis, **kwargs)
    axes = [a % work.ndim for a in ((axes,) if np.ndim(axes) == 0 else axes)]
    inner_axis = axes.index(axis % work.ndim)  # the others are smoothed in `axes` order
    last = range(work.ndim - len(axes), work.ndim)
    moved = np.moveaxis(work, axes, last)
    result = np.empty_like(moved)
    for index in np.ndindex(moved.shape[: work.ndim - len(axes)]):
        result[index] = fn(moved[index], axis=inner_axis, **kwargs)
    return np.moveaxis(result, last, axes)


def _sum_of_gaussian_derivatives(name: str, work: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    """gaussian_laplace / gaussian_gradient_magnitude composed from gaussian_filter, so that
    a mode sequence means one mode per axis in every term (scipy's own functions use the
    mode of axis i along all axes of term i)."""
    axes = kwargs.get("axes")
    n = work.ndim if axes is None else (1 if np.ndim(axes) == 0 else len(axes))
    derivative = 2 if name == "gaussian_laplace" else 1
    total = np.zeros_like(work)
    for i in range(n):
        order = [derivative if j == i else 0 for j in range(n)]
        part = ndimage.gaussian_filter(work, order=order, **kwargs)
        total += part if derivative == 2 else part * part
    return total if derivative == 2 else np.sqrt(total)


def _gradient_magnitude(work: np.ndarray, kwargs: dict[str, Any]) -> np.ndarray:
    """npaccel's gradient_magnitude: scipy's generic_gradient_magnitude of sobel/prewitt,
    with each derivative restricted to `axes` as _edge_filter does."""
    operator = kwargs.pop("operator", "sobel")
    axes = kwargs.get("axes")
    axes = range(work.ndim) if axes is None else ((axes,) if np.ndim(axes) == 0 else axes)
    if len(axes) == 0:  # as scipy.ndimage.generic_gradient_magnitude: the input
        return work.copy()
    total = np.zeros_like(work)
    for axis in axes:
        part = _edge_filter(operator, work, axis, dict(kwargs))
        total += part * part
    return np.sqrt(total)


def reference_raw(name: str, input: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
    """scipy.ndimage.<name> in float64 (complex128) on ``input.astype(...)``, not stored."""
    if name == "gradient_magnitude":
        kwargs = dict(zip(["operator"], args, strict=False)) | kwargs
        kwargs.pop("backend", None)
        kwargs.pop("output", None)
        work = input.astype(np.complex128 if input.dtype.kind == "c" else np.float64)
        return _gradient_magnitude(work, kwargs)
    fn = getattr(ndimage, name)
    positional = list(inspect.signature(fn).parameters)[1:]
    kwargs = dict(zip(positional, args, strict=False)) | kwargs
    kwargs.pop("backend", None)
    kwargs.pop("output", None)
    work = input.astype(np.complex128 if input.dtype.kind == "c" else np.float64)
    if name in _FOOTPRINT_FILTERS:
        _canonical_axes(kwargs, input.ndim)
    if name in RANK_FILTERS and input.ndim == 1 and np.ndim(kwargs.get("footprint")) == 1:
        return _rank_1d_as_2d(fn, work, kwargs)
    if name in {"sobel", "prewitt"}:
        return _edge_filter(name, work, kwargs.pop("axis", -1), kwargs)
    if name in {"gaussian_laplace", "gaussian_gradient_magnitude"}:
        return _sum_of_gaussian_derivatives(name, work, kwargs)
    return fn(work, **kwargs)


def reference(
    name: str, input: np.ndarray, *args: Any, output: Any = None, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    """(raw float64 result, that result stored into the output dtype by the policy)."""
    raw = reference_raw(name, input, *args, **kwargs)
    if output is None:
        out_dtype = input.dtype
    elif isinstance(output, np.ndarray):
        out_dtype = output.dtype
    else:
        out_dtype = np.dtype(output)
    return raw, store(raw, np.empty(input.shape, dtype=out_dtype))


def kernel_l1(name: str, ndim: int, *args: Any, **kwargs: Any) -> float:
    """Sum of |kernel| of a linear filter: its response to a delta, zero-padded."""
    kwargs = {k: v for k, v in kwargs.items() if k not in {"mode", "cval", "output", "backend"}}
    size = 17 if ndim < 4 else 13
    delta = np.zeros((size,) * ndim)
    delta[(size // 2,) * ndim] = 1.0
    response = reference_raw(name, delta, *args, mode="constant", **kwargs)
    return float(np.abs(response).sum())


def compute_dtype(input_dtype: Any, output_dtype: Any) -> np.dtype:
    """The policy's accumulation type (docstring of npaccel.filters._policy), restated."""
    input_dtype, output_dtype = np.dtype(input_dtype), np.dtype(output_dtype)
    if "c" in (input_dtype.kind, output_dtype.kind):
        return np.dtype(np.complex128)
    wide = {"int32", "uint32", "int64", "uint64", "float64"}
    if input_dtype.name in wide or output_dtype.name in wide:
        return np.dtype(np.float64)
    return np.dtype(np.float32)


# --------------------------------------------------------------------------- comparisons


def assert_close(
    actual: np.ndarray,
    raw: np.ndarray,
    expected: np.ndarray,
    *,
    scale: float,
    compute: Any,
    context: str = "",
) -> None:
    """``actual`` equals the stored reference ``expected`` within the dtype's tolerance.

    Integers: |diff| <= 1, and only at elements whose exact (float64) value ``raw`` lies
    within the compute type's tolerance of a half (where float32 and float64 may round
    differently). Floats: ``Tol`` of the stored dtype, NaN and inf where the reference has
    them.
    """
    assert actual.dtype == expected.dtype, context
    assert actual.shape == expected.shape, context
    if expected.dtype.kind in "iu":
        big = np.maximum(actual, expected)
        small = np.minimum(actual, expected)
        diff = big - small  # no overflow: big >= small in the array's own type
        off = diff != 0
        ROUNDING["compared"] += expected.size
        ROUNDING["off_by_one"] += int(off.sum())
        assert int(diff.max(initial=0)) <= INTEGER_MAX_DIFF, (
            f"{context}: integer results differ by up to {int(diff.max())}\n"
            f"actual={actual[off]}\nexpected={expected[off]}\nraw={raw[off]}"
        )
        if off.any():
            slack = TOLERANCE[np.dtype(compute)].atol * scale
            near_half = np.abs(np.abs(raw - np.floor(raw)) - 0.5) <= slack
            bad = off & ~near_half
            assert not bad.any(), (
                f"{context}: off by one away from a half (slack {slack:g})\n"
                f"actual={actual[bad]}\nexpected={expected[bad]}\nraw={raw[bad]}"
            )
        return
    tol = TOLERANCE[expected.dtype]
    np.testing.assert_allclose(
        actual, expected, rtol=tol.rtol, atol=tol.atol * scale, equal_nan=True, err_msg=context
    )


def assert_exact(actual: np.ndarray, expected: np.ndarray, context: str = "") -> None:
    """Same dtype, shape and values (NaN where the reference has NaN)."""
    assert actual.dtype == expected.dtype, context
    assert actual.shape == expected.shape, context
    assert np.array_equal(actual, expected, equal_nan=expected.dtype.kind in "fc"), (
        f"{context}\nactual=\n{actual}\nexpected=\n{expected}"
    )


def check_against_reference(
    name: str, input: np.ndarray, *args: Any, backend: str, output: Any = None, **kwargs: Any
) -> np.ndarray:
    """Call npaccel.filters.<name> on ``backend`` and compare with the oracle: exactly for
    rank filters, within the tolerance table for linear ones. Returns the result."""
    from npaccel import filters

    context = f"{name}{args} {kwargs} backend={backend} output={output} dtype={input.dtype}"
    call_output = output.copy() if isinstance(output, np.ndarray) else output
    actual = getattr(filters, name)(input, *args, output=call_output, backend=backend, **kwargs)
    raw, expected = reference(name, input, *args, output=output, **kwargs)
    if name in RANK_FILTERS:
        assert_exact(actual, expected, context)
        return actual
    magnitude = float(np.abs(input[np.isfinite(input)]).max(initial=0.0))
    if kwargs.get("mode") == "constant" or (
        _is_sequence(kwargs.get("mode")) and "constant" in kwargs["mode"]
    ):
        magnitude = max(magnitude, abs(float(kwargs.get("cval", 0.0))))
    l1 = kernel_l1(name, input.ndim, *args, **kwargs) if input.ndim else 1.0
    scale = max(magnitude, 1.0) * max(l1, 1.0)
    assert_close(
        actual,
        raw,
        expected,
        scale=scale,
        compute=compute_dtype(input.dtype, expected.dtype),
        context=context,
    )
    return actual


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


# ------------------------------------------------------------- rank backends (cpu, cuda)


@pytest.fixture(scope="module")
def fast_thread_switches():
    """numba-cuda's simulator runs a block's threads as Python threads that meet at every
    syncthreads: switching between them often keeps simulated kernels quick."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(interval)


def check_minmax_of(backend, x, passes, cval, minimum, out_dtype=None):
    """``backend.minmax_passes`` against the reference backend, exactly."""
    from npaccel.filters import _scipy as ref

    out = np.empty(x.shape, out_dtype or x.dtype)
    got = backend.minmax_passes(x, passes, cval, minimum, out)
    assert got is out
    want = ref.minmax_passes(x, passes, cval, minimum, np.empty_like(out))
    np.testing.assert_array_equal(got, want, err_msg=f"{passes} {cval=} {minimum=} {x.dtype}")


def check_rank_of(backend, x, footprint, rank, mode, cval, origins, out_dtype=None):
    """``backend.rank_nd`` against the reference backend, exactly."""
    from npaccel.filters import _scipy as ref

    out = np.empty(x.shape, out_dtype or x.dtype)
    got = backend.rank_nd(x, footprint, rank, mode, cval, origins, out)
    assert got is out
    want = ref.rank_nd(x, footprint, rank, mode, cval, origins, np.empty(x.shape, out.dtype))
    np.testing.assert_array_equal(
        got, want, err_msg=f"{footprint.astype(int).tolist()} {rank=} {mode=} {origins=}"
    )


NUMPY_PAD_MODES = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge",
                   "wrap": "wrap", "constant": "constant"}  # fmt: skip


def exact_rank(x, footprint, rank, mode, cval, origins):
    """The ``rank``-th of each window in ``x``'s own dtype (``np.sort`` order: NaN last)."""
    pads = [(s // 2 + o, s - 1 - s // 2 - o) for s, o in zip(footprint.shape, origins, strict=True)]
    extra = {"constant_values": cval} if mode == "constant" else {}
    padded = np.pad(x, pads, mode=NUMPY_PAD_MODES[mode], **extra)
    windows = np.lib.stride_tricks.sliding_window_view(padded, footprint.shape)
    return np.sort(windows[..., footprint], axis=-1)[..., rank]
