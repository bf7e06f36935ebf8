"""Linear filters against the oracle: every function x mode x dtype x origin x axes, on both
backends, within the per-dtype tolerances of conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from conftest import (
    BACKENDS,
    CVAL,
    GRID_DTYPES,
    MODES,
    SMOKE_DTYPES,
    check_against_reference,
    make_input,
)

SHAPE = (5, 4, 7)  # odd and even lengths; a Gaussian's window is larger than axis 1
SIZES = (3, 2, 4)  # window length per filtered axis, in `axes` order
AXES = (None, (1, 2), (2, 0), (-1,), 0)
AXIS = (0, 1, -1)
WEIGHTS_1D = (0.3, -1.2, 2.1, 0.7)  # even length: origins -2 ... 1

Variant = tuple[tuple[Any, ...], dict[str, Any]]


def _n_axes(axes: Any) -> int:
    return len(SHAPE) if axes is None else (1 if np.ndim(axes) == 0 else len(axes))


def _origins(sizes: tuple[int, ...]) -> Iterator[Any]:
    """Both limits of scipy's origin rule on every axis, and 0."""
    yield 0
    yield tuple(-(s // 2) for s in sizes)
    yield tuple((s - 1) // 2 for s in sizes)


def _origins_1d(size: int) -> tuple[int, ...]:
    return (-(size // 2), 0, (size - 1) // 2)


def correlate1d_variants() -> Iterator[Variant]:
    for axis in AXIS:
        for origin in _origins_1d(len(WEIGHTS_1D)):
            yield (WEIGHTS_1D,), {"axis": axis, "origin": origin}


def nd_weight_variants() -> Iterator[Variant]:
    rng = np.random.default_rng(7)
    for axes in AXES:
        sizes = SIZES[: _n_axes(axes)]
        weights = np.round(rng.normal(size=sizes), 3)
        for origin in _origins(sizes):
            yield (weights,), {"origin": origin, "axes": axes}


def uniform1d_variants() -> Iterator[Variant]:
    for axis in AXIS:
        for origin in _origins_1d(4):
            yield (4,), {"axis": axis, "origin": origin}


def uniform_variants() -> Iterator[Variant]:
    yield (), {}  # default size 3
    for axes in AXES:
        sizes = SIZES[: _n_axes(axes)]
        for origin in _origins(sizes):
            yield (sizes,), {"origin": origin, "axes": axes}


def gaussian1d_variants() -> Iterator[Variant]:
    for axis in AXIS:
        for order in (0, 1, 2):
            yield (1.2,), {"axis": axis, "order": order}
    yield (0.8,), {"axis": 1, "radius": 2}
    yield (1.5,), {"axis": 0, "truncate": 2.0}


def gaussian_variants() -> Iterator[Variant]:
    for axes in AXES:
        n = _n_axes(axes)
        yield ((1.2, 0.7, 0.0)[:n],), {"axes": axes}
        yield ((0.9, 1.3, 0.6)[:n],), {"order": (1, 0, 2)[:n], "axes": axes}
    yield (1.0,), {"radius": (1, 2, 3), "order": 1}
    yield (0.7,), {"truncate": 2.5}


def derivative_of_gaussian_variants() -> Iterator[Variant]:
    for axes in AXES:
        yield ((0.8, 1.1, 0.6)[: _n_axes(axes)],), {"axes": axes}
    yield (0.9,), {"truncate": 2.0}


def laplace_variants() -> Iterator[Variant]:
    for axes in AXES:
        yield (), {"axes": axes}


def edge_variants() -> Iterator[Variant]:
    for axis, axes in ((-1, None), (0, None), (1, (1, 2)), (2, (2, 0)), (0, (2, 0)), (-1, (-1,))):
        yield (), {"axis": axis, "axes": axes}


def gradient_magnitude_variants() -> Iterator[Variant]:
    for axes in (None, (1, 2), (2, 0), (-1,), ()):
        yield ("sobel",), {"axes": axes}
    yield ("prewitt",), {}


LINEAR: dict[str, Callable[[], Iterator[Variant]]] = {
    "correlate1d": correlate1d_variants,
    "convolve1d": correlate1d_variants,
    "correlate": nd_weight_variants,
    "convolve": nd_weight_variants,
    "uniform_filter1d": uniform1d_variants,
    "uniform_filter": uniform_variants,
    "gaussian_filter1d": gaussian1d_variants,
    "gaussian_filter": gaussian_variants,
    "gaussian_laplace": derivative_of_gaussian_variants,
    "gaussian_gradient_magnitude": derivative_of_gaussian_variants,
    "laplace": laplace_variants,
    "sobel": edge_variants,
    "prewitt": edge_variants,
    "gradient_magnitude": gradient_magnitude_variants,
}


def _run_grid(name: str, x: np.ndarray, mode: str, backend: str) -> None:
    mode_kwargs = {"mode": mode, "cval": CVAL} if mode == "constant" else {}
    for args, kwargs in LINEAR[name]():
        check_against_reference(name, x, *args, backend=backend, **mode_kwargs, **kwargs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", GRID_DTYPES)
@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_reference(backend, name, dtype, mode):
    _run_grid(name, make_input(SHAPE, dtype, seed=1), mode, backend)


# float16 on backend "cpu" fails to compile: pinned once, in test_policy.py (a failing
# Numba compilation is not cached and costs seconds on every call)
SMOKE = [(b, d) for b in BACKENDS for d in SMOKE_DTYPES if (b, d.name) != ("cpu", "float16")]


@pytest.mark.parametrize("name", ["correlate1d", "correlate", "uniform_filter1d", "laplace"])
@pytest.mark.parametrize(("backend", "dtype"), SMOKE, ids=[f"{b}-{d}" for b, d in SMOKE])
def test_smoke_dtypes_match_reference(backend, name, dtype):
    x = make_input((4, 6), dtype, seed=2)
    args, kwargs = {
        "correlate1d": ((WEIGHTS_1D,), {"origin": 1}),
        "correlate": ((np.ones((3, 2)) / 6,), {"origin": (-1, 0)}),
        "uniform_filter1d": ((3,), {"axis": 0}),
        "laplace": ((), {}),
    }[name]
    for mode in ("nearest", "constant"):
        check_against_reference(name, x, *args, backend=backend, mode=mode, **kwargs)


@pytest.mark.parametrize("name", LINEAR)
@pytest.mark.parametrize("backend", BACKENDS)
def test_complex128_takes_the_reference_path(backend, name):
    x = make_input(SHAPE, np.complex128, seed=3)
    for mode in ("reflect", "constant"):
        mode_kwargs = {"mode": mode, "cval": 1.5} if mode == "constant" else {}
        for args, kwargs in LINEAR[name]():
            check_against_reference(name, x, *args, backend=backend, **mode_kwargs, **kwargs)


# Output dtypes other than the input's: the compute type follows the wider of the two.
OUTPUT_PAIRS = [
    ("uint8", "float32"),
    ("uint8", "int16"),
    ("int16", "uint8"),
    ("float32", "float64"),
    ("float64", "uint8"),
]
OUTPUT_CALLS = {  # 1-D: one kernel specialisation per call (they compile on first use)
    "correlate1d": ((WEIGHTS_1D,), {}),
    "correlate": ((np.array([1.0, -2.0, 0.5]),), {"origin": 1}),
    "gaussian_laplace": ((0.8,), {}),
    "sobel": ((), {}),
}


@pytest.mark.parametrize(("in_dtype", "out_dtype"), OUTPUT_PAIRS,
                         ids=[f"{a}->{b}" for a, b in OUTPUT_PAIRS])  # fmt: skip
@pytest.mark.parametrize("name", OUTPUT_CALLS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_output_dtype_matches_reference(backend, name, in_dtype, out_dtype):
    x = make_input((23,), in_dtype, seed=4)
    args, kwargs = OUTPUT_CALLS[name]
    for output in (np.dtype(out_dtype), np.zeros(x.shape, out_dtype)):
        for mode in ("reflect", "constant"):
            result = check_against_reference(name, x, *args, backend=backend, output=output,
                                             mode=mode, **kwargs)  # fmt: skip
            assert result.dtype == np.dtype(out_dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.float32])
@pytest.mark.parametrize("cval", [9, 300, -4, 2.5, 70000])
def test_nd_correlate_constant_cval_in_and_out_of_the_input_range(dtype, cval):
    # the cpu backend pads in the input's own dtype when cval fits it exactly, else in the
    # compute dtype: either way the border reads cval itself, as the float64 reference does
    from npaccel import filters

    rng = np.random.default_rng(5)
    x = (rng.random((9, 11)) * 200).astype(dtype)
    weights = np.array([[0.5, -1.0, 0.25], [2.0, 0.0, -0.75], [1.0, 0.125, -0.5]])
    out = np.float64
    got = filters.correlate(x, weights, mode="constant", cval=cval, output=out, backend="cpu")
    want = filters.correlate(x, weights, mode="constant", cval=cval, output=out, backend="numpy")
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
