"""Rank filters (minimum, maximum, median, rank, percentile) against the oracle, exactly:
every function x mode x dtype x origin x axes, by size and by footprint, on both backends."""

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
from npaccel import filters

SHAPE = (5, 4, 7)
SIZES = (3, 2, 4)
BIG_SIZES = (6, 5, 9)  # larger than the axes; long windows take other algorithms
AXES = (None, (1, 2), (2, 0), (-1,), 0)
AXIS = (0, 1, -1)

Variant = tuple[tuple[Any, ...], dict[str, Any]]


def _n_axes(axes: Any) -> int:
    return len(SHAPE) if axes is None else (1 if np.ndim(axes) == 0 else len(axes))


def _origins(shape: tuple[int, ...]) -> Iterator[Any]:
    yield 0
    yield tuple(-(s // 2) for s in shape)
    yield tuple((s - 1) // 2 for s in shape)


FOOTPRINTS = {  # irregular (not boxes: the rank path), over 1, 2 and 3 axes
    1: np.array([1, 0, 1, 1], dtype=bool),
    2: np.array([[1, 0], [1, 1], [0, 1]], dtype=bool),
    3: np.arange(24).reshape(3, 2, 4) % 3 != 1,
}


def _footprint(n: int) -> np.ndarray:
    return FOOTPRINTS[n]


def minmax1d_variants() -> Iterator[Variant]:
    for axis in AXIS:
        for size in (4, 7):
            for origin in (-(size // 2), 0, (size - 1) // 2):
                yield (size,), {"axis": axis, "origin": origin}


def box_variants() -> Iterator[Variant]:
    for axes in AXES:
        sizes = SIZES[: _n_axes(axes)]
        for origin in _origins(sizes):
            yield (), {"size": sizes, "origin": origin, "axes": axes}
    yield (), {"size": BIG_SIZES, "origin": (-3, 2, 4)}
    yield (), {"size": 5, "axes": (1, 2)}


def footprint_variants() -> Iterator[Variant]:
    for axes in AXES:
        fp = _footprint(_n_axes(axes))
        for origin in _origins(fp.shape):
            yield (), {"footprint": fp, "origin": origin, "axes": axes}


def minmax_variants() -> Iterator[Variant]:
    yield from box_variants()
    yield from footprint_variants()


def rank_variants() -> Iterator[Variant]:
    for rank in (0, 1, -1, -2):
        yield (rank,), {"footprint": _footprint(3)}
        yield (rank,), {"size": (3, 2), "axes": (2, 0), "origin": (1, -1)}
    yield (3,), {"size": BIG_SIZES}
    yield (-4,), {"footprint": _footprint(2), "axes": (1, 2), "origin": (1, -1)}


def percentile_variants() -> Iterator[Variant]:
    for percentile in (0, 37.5, -20, 100):
        yield (percentile,), {"footprint": _footprint(3)}
        yield (percentile,), {"size": (2, 3), "axes": (0, 1), "origin": (0, -1)}
    yield (50,), {"size": BIG_SIZES, "origin": 1}


RANK: dict[str, Callable[[], Iterator[Variant]]] = {
    "minimum_filter1d": minmax1d_variants,
    "maximum_filter1d": minmax1d_variants,
    "minimum_filter": minmax_variants,
    "maximum_filter": minmax_variants,
    "median_filter": minmax_variants,
    "rank_filter": rank_variants,
    "percentile_filter": percentile_variants,
}


def _run_grid(name: str, x: np.ndarray, mode: str, backend: str) -> None:
    mode_kwargs = {"mode": mode, "cval": CVAL} if mode == "constant" else {}
    for args, kwargs in RANK[name]():
        check_against_reference(name, x, *args, backend=backend, **mode_kwargs, **kwargs)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", GRID_DTYPES)
@pytest.mark.parametrize("name", RANK)
@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_reference_exactly(backend, name, dtype, mode):
    _run_grid(name, make_input(SHAPE, dtype, seed=11), mode, backend)


@pytest.mark.parametrize("dtype", GRID_DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_many_ties_and_extremes(backend, dtype):
    x = make_input((6, 9), dtype, seed=12)
    values = np.array([x.min(), x.max(), 0, 1], dtype=dtype)
    x = values[np.random.default_rng(13).integers(0, 4, size=x.shape)]
    for name in RANK:
        for args, kwargs in RANK[name]():
            kwargs = dict(kwargs)
            if kwargs.pop("axes", None) is not None or name.endswith("1d"):
                continue  # 2-D here: keep the variants over all axes
            if "size" in kwargs and np.ndim(kwargs["size"]) == 1:
                kwargs["size"] = kwargs["size"][:2]
            if "footprint" in kwargs:
                kwargs["footprint"] = _footprint(2)
            if np.ndim(kwargs.get("origin", 0)) == 1:
                kwargs["origin"] = 0
            check_against_reference(name, x, *args, backend=backend, mode="mirror", **kwargs)


@pytest.mark.parametrize("dtype", SMOKE_DTYPES, ids=str)
@pytest.mark.parametrize("backend", BACKENDS)
def test_smoke_dtypes_match_reference(backend, dtype):
    x = make_input((5, 6), dtype, seed=14)
    for mode in ("reflect", "constant"):
        check_against_reference("median_filter", x, size=3, backend=backend, mode=mode)
        check_against_reference("minimum_filter", x, size=(2, 3), backend=backend, mode=mode)
        check_against_reference("maximum_filter1d", x, 4, axis=0, backend=backend, mode=mode)
        check_against_reference("rank_filter", x, -2, footprint=_footprint(2), backend=backend,
                                mode=mode)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_large_footprints(backend, dtype):
    # 8-bit data switch to a sliding histogram from 48 elements; other types select per
    # output beyond a few hundred
    x = make_input((9, 31), dtype, seed=15)
    for size in ((7, 7), (9, 13), (25, 27)):
        for mode in ("reflect", "constant", "wrap"):
            check_against_reference("median_filter", x, size=size, mode=mode, backend=backend)
            check_against_reference("percentile_filter", x, 90, size=size, origin=(1, -2),
                                    mode=mode, backend=backend)  # fmt: skip
    disk = np.hypot(*np.mgrid[-6:7, -6:7]) <= 6
    check_against_reference("rank_filter", x, 17, footprint=disk, backend=backend)


# Exactness beyond float64: rank filters select input values, never round them.
BIG = 2**53 + 1  # not a float64


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("dtype", ["int64", "uint64"])
def test_wide_integers_are_selected_exactly(backend, dtype):
    x = np.array([[BIG, 3, BIG + 2, 5, BIG + 4]], dtype=dtype)
    np.testing.assert_array_equal(
        filters.maximum_filter1d(x, 2, backend=backend), [[BIG, BIG, BIG + 2, BIG + 2, BIG + 4]]
    )
    np.testing.assert_array_equal(
        filters.median_filter(x, (1, 3), backend=backend), [[BIG, BIG, 5, BIG + 2, BIG + 4]]
    )
    np.testing.assert_array_equal(filters.minimum_filter(x, footprint=[[1]], backend=backend), x)


@pytest.mark.parametrize("name", ["minimum_filter", "maximum_filter", "median_filter"])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32"])
def test_nan_free_float_and_integer_results_are_input_values(backend, name, dtype):
    x = make_input((6, 7), dtype, seed=16)
    result = getattr(filters, name)(x, footprint=_footprint(2), backend=backend)
    assert np.isin(result, x).all()


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_1d_footprint_holes_are_honoured(backend):
    # scipy 1.17's 1-D median path ignores the holes of a 1-D footprint: the reference
    # must not inherit that. Windows (reflect) at 0..6 of x over offsets -2, 0, +2.
    x = np.array([5.0, 1, 9, 3, 7, 2, 8])
    fp = np.array([1, 0, 1, 0, 1], bool)
    expected = [5, 3, 7, 2, 8, 3, 7]
    np.testing.assert_array_equal(filters.median_filter(x, footprint=fp, backend=backend),
                                  expected)  # fmt: skip
    np.testing.assert_array_equal(
        filters.rank_filter(x.astype(np.int16), 1, footprint=fp, backend=backend), expected
    )
