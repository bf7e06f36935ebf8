"""The cpu backend's integer box path (uniform filters of 8/16-bit integer data into integer
outputs: exact integer window sums, one rounding). Its reference is exact integer
arithmetic, not floats: the window sum from scipy.ndimage.correlate in int64 (exact at these
magnitudes) and round-half-to-even of sum / N by integer division, then saturation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from conftest import MODES, check_against_reference, make_input
from npaccel import filters
from npaccel.filters import _cpu


def exact_box(x, sizes, mode, cval, origins, out_dtype):
    """round-half-even(window sum / N), saturated to ``out_dtype``, in integers only."""
    weights = np.ones(sizes, dtype=np.int64)
    sums = ndimage.correlate(x.astype(np.int64), weights, mode=mode, cval=cval, origin=origins)
    n = int(weights.size)
    q, r = np.divmod(2 * sums + n, 2 * n)  # round half up ...
    q -= (r == 0) & (q % 2 == 1)  # ... then ties to even
    info = np.iinfo(out_dtype)
    return np.clip(q, info.min, info.max).astype(out_dtype)


def box(x, sizes, mode, cval, origins, out_dtype):
    return filters.uniform_filter(x, sizes, mode=mode, cval=cval, origin=origins,
                                  output=out_dtype, backend="cpu")  # fmt: skip


def assert_fast_path(x, sizes, cval, out_dtype, taken=True):
    """Whether `_cpu` plans the integer path for this call (so a test of it tests it)."""
    from npaccel.filters._linear import _uniform_pass

    passes = tuple(_uniform_pass(a, s, "reflect", 0) for a, s in enumerate(sizes) if s > 1)
    plan = _cpu._box_plan(x, _cpu._schedule(passes, cval), cval, np.empty(0, out_dtype))
    assert (plan is not None) is taken


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16"])
@pytest.mark.parametrize(("sizes", "origins"), [((3, 3), 0), ((2, 4), (0, -2)), ((4, 1), (1, 0)),
                                                ((5, 5), (-2, 2))])  # fmt: skip
def test_matches_exact_integer_rounding(dtype, mode, sizes, origins):
    x = make_input((9, 11), dtype, seed=3)
    cval = 7 if mode == "constant" else 0.0
    assert_fast_path(x, sizes, cval, x.dtype)
    got = box(x, sizes, mode, cval, origins, x.dtype)
    np.testing.assert_array_equal(got, exact_box(x, sizes, mode, cval, origins, x.dtype))


@pytest.mark.parametrize("sizes", [(2, 2), (4, 4), (2, 6)])
def test_ties_round_to_even(sizes):
    """Even windows of small integers hit exact halves; each must go to the even neighbour."""
    x = np.random.default_rng(0).integers(0, 4, (12, 12)).astype(np.uint8)
    got = box(x, sizes, "reflect", 0.0, 0, np.uint8)
    expected = exact_box(x, sizes, "reflect", 0.0, 0, np.uint8)
    sums = ndimage.correlate(x.astype(np.int64), np.ones(sizes, np.int64), mode="reflect")
    assert np.any((2 * sums) % np.prod(sizes) == 0), "the data should contain ties"
    np.testing.assert_array_equal(got, expected)


def test_large_window_uses_wide_accumulator():
    """17 x 17 = 289 uint8 values exceed a uint16 sum: the plan widens to 32 bits."""
    x = make_input((40, 37), "uint8", seed=5)
    acc, _ = _cpu._box_plan(x, _cpu._schedule(tuple(_passes((17, 17))), 0.0), 0.0,
                            np.empty(0, np.uint8))  # fmt: skip
    assert acc == np.int32
    got = box(x, (17, 17), "wrap", 0.0, 0, np.uint8)
    np.testing.assert_array_equal(got, exact_box(x, (17, 17), "wrap", 0.0, 0, np.uint8))


def _passes(sizes, mode="reflect"):
    from npaccel.filters._linear import _uniform_pass

    return [_uniform_pass(a, s, mode, 0) for a, s in enumerate(sizes)]


SATURATING = [("int16", "uint8"), ("uint16", "int8"), ("int8", "uint16"), ("uint8", "int32")]


@pytest.mark.parametrize(("dtype", "out_dtype"), SATURATING)
def test_saturates_into_narrower_or_other_signed_outputs(dtype, out_dtype):
    x = make_input((8, 9), dtype, seed=1)
    got = box(x, (3, 3), "nearest", 0.0, 0, np.dtype(out_dtype))
    np.testing.assert_array_equal(got, exact_box(x, (3, 3), "nearest", 0.0, 0, out_dtype))


@pytest.mark.parametrize("shape", [(1,), (13,), (1, 1), (6, 1), (1, 7), (3, 4, 5)])
def test_one_axis_and_degenerate_shapes(shape):
    x = make_input(shape, "uint8", seed=2)
    sizes = (3,) * len(shape)
    got = box(x, sizes, "mirror", 0.0, 0, np.uint8)
    np.testing.assert_array_equal(got, exact_box(x, sizes, "mirror", 0.0, 0, np.uint8))
    got1 = filters.uniform_filter1d(x, 3, axis=-1, output=np.uint8, backend="cpu")
    expected1 = exact_box(x, (1,) * (len(shape) - 1) + (3,), "reflect", 0.0, 0, np.uint8)
    np.testing.assert_array_equal(got1, expected1)


def test_batch_axes_and_views():
    """H and W of an (N, H, W, C) batch, from a negative-stride, non-contiguous view."""
    base = make_input((3, 10, 12, 6), "uint8", seed=4)
    x = base[::-1, :, ::-2, 1:4]
    got = filters.uniform_filter(x, 3, axes=(1, 2), backend="cpu")
    expected = exact_box(x, (1, 3, 3, 1), "reflect", 0.0, 0, np.uint8)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("cval", [2.5, 300.0, -1.0])
def test_cval_the_input_type_cannot_hold_takes_the_float_path(cval):
    """A fractional or out-of-range cval is not an integer sum of uint8 values: the float path
    runs, and the result still agrees with the float64 reference."""
    x = make_input((7, 8), "uint8", seed=6)
    passes = _cpu._schedule(tuple(_passes((3, 3), "constant")), cval)
    assert _cpu._box_plan(x, passes, cval, np.empty(0, np.uint8)) is None
    check_against_reference("uniform_filter", x, 3, backend="cpu", mode="constant", cval=cval)


def test_float_output_and_non_uniform_weights_keep_the_float_path():
    x = make_input((6, 6), "uint8", seed=7)
    assert_fast_path(x, (3, 3), 0.0, np.float32, taken=False)
    passes = _cpu._schedule((_cpu.Pass(0, np.array([0.25, 0.5, 0.25]), "reflect", 0),), 0.0)
    assert _cpu._box_plan(x, passes, 0.0, np.empty(0, np.uint8)) is None


@pytest.mark.parametrize("cval", [float("nan"), 1e300, -2.5])
def test_cval_is_ignored_outside_constant_mode(cval):
    """scipy ignores cval unless mode is 'constant'; so must the integer path."""
    x = make_input((6, 7), "uint8", seed=8)
    got = box(x, (3, 3), "reflect", cval, 0, np.uint8)
    np.testing.assert_array_equal(got, exact_box(x, (3, 3), "reflect", 0.0, 0, np.uint8))
