"""npaccel.image._exposure against OpenCV, scikit-image, Pillow, SciPy and float64 NumPy.

Tolerances, once per dtype (as in test_geometry):

* float results against a float64 formula: ``FLOAT_TOL`` (float32 computed in float32);
* integer results against a float64 formula: equal to it rounded half to even and saturated,
  except within ``TIE_WINDOW`` of a half-integer (float32 arithmetic may round either way);
* against OpenCV's or Pillow's fixed-point uint8 luma: within 1; cv2.equalizeHist: exact.
"""

from __future__ import annotations

import math
import statistics

import cv2
import numpy as np
import pytest
import skimage.exposure
import skimage.filters
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy import ndimage

from npaccel.image._exposure import (
    clip,
    equalize,
    from_float,
    gamma,
    grayscale,
    invert,
    normalize,
    otsu_threshold,
    rescale,
    select_channels,
    stack_channels,
    threshold,
    to_float,
    unsharp_mask,
)

DTYPES = ("uint8", "uint16", "int16", "int32", "float32", "float64")
INTS = ("uint8", "uint16", "int16", "int32")
FLOAT_TOL = {"float32": {"rtol": 1e-5, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}
TIE_WINDOW = {"uint8": 1e-3, "uint16": 0.05, "int16": 0.05, "int32": 1e-6}
BAD_DTYPES = ("int8", "int64", "float16", "bool")
LAYOUTS = ("strided", "negative", "transposed")


def random_image(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.random(shape).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = max(int(info.min), -40000), min(int(info.max), 40000)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


def layout(x: np.ndarray, kind: str) -> np.ndarray:
    """A non-contiguous view with the values of ``x``."""
    if kind == "strided":
        big = np.zeros((*x.shape[:-3], 2 * x.shape[-3], 3 * x.shape[-2], 2 * x.shape[-1]), x.dtype)
        big[..., ::2, ::3, ::2] = x
        return big[..., ::2, ::3, ::2]
    if kind == "negative":
        return x[..., ::-1, ::-1, ::-1].copy()[..., ::-1, ::-1, ::-1]
    return np.asfortranarray(x)


def assert_stored(actual: np.ndarray, reference: np.ndarray, dtype) -> None:
    """``actual`` equals float64 ``reference`` stored by the policy, up to the tie window."""
    dtype = np.dtype(dtype)
    assert actual.dtype == dtype
    assert actual.shape == reference.shape
    if dtype.kind == "f":
        np.testing.assert_allclose(actual, reference, **FLOAT_TOL[dtype.name])
        return
    info = np.iinfo(dtype)
    with np.errstate(invalid="ignore"):
        expected = np.clip(np.rint(np.nan_to_num(reference, nan=0.0)), info.min, info.max)
        near_tie = np.abs(np.abs(reference - np.floor(reference)) - 0.5) <= TIE_WINDOW[dtype.name]
    diff = np.abs(actual.astype(np.float64) - expected)
    assert np.all(diff[~near_tie] == 0), np.max(diff[~near_tie])
    assert np.all(diff <= 1)


def full_scale(dtype) -> float:
    return float(np.iinfo(dtype).max)


# --- every function: dtypes, shapes, views, empty images -----------------------------------

CALLS = {
    "otsu_threshold": lambda x: np.float64(otsu_threshold(x)),
    "threshold": lambda x: threshold(x, method="otsu"),
    "equalize": equalize,
    "gamma": lambda x: gamma(x, 0.7, 1.1),
    "invert": invert,
    "to_float": to_float,
    "from_float": lambda x: from_float(x) if x.dtype.kind == "f" else to_float(x),
    "rescale": rescale,
    "normalize": normalize,
    "clip": lambda x: clip(x, 10 if x.dtype.kind != "f" else 0.2, 30000),
    "grayscale": grayscale,
    "unsharp_mask": lambda x: unsharp_mask(x, 1.0, 1.5),
    "select_channels": lambda x: select_channels(x, [2, 0, -1]),
    "stack_channels": lambda x: stack_channels(select_channels(x, [0]), 3),
}


@pytest.mark.parametrize("dtype", BAD_DTYPES)
@pytest.mark.parametrize("name", CALLS)
def test_unsupported_dtypes_raise_type_error(name, dtype):
    with pytest.raises(TypeError, match=rf"`img` dtype must be one of \{{uint8, uint16, int16, "
                       rf"int32, float32, float64\}}; got {dtype}"):  # fmt: skip
        CALLS[name](np.zeros((3, 3, 3), dtype))


@pytest.mark.parametrize("name", CALLS)
def test_images_must_be_channels_last(name):
    with pytest.raises(ValueError, match=r"shape \(\.\.\., H, W, C\).*got shape \(3, 3\)"):
        CALLS[name](np.zeros((3, 3), np.uint8))


@pytest.mark.parametrize("layout_kind", LAYOUTS)
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64"])
@pytest.mark.parametrize("name", CALLS)
def test_views_give_the_contiguous_result_as_a_new_c_array(name, dtype, layout_kind):
    x = random_image((2, 5, 6, 3), dtype, seed=11)
    view = layout(x, layout_kind)
    got = CALLS[name](view)
    # float sums may associate differently by memory order: equal up to rounding
    np.testing.assert_allclose(got, CALLS[name](x), rtol=1e-6, atol=1e-12)
    if got.ndim:
        assert got.flags.c_contiguous
        assert not np.shares_memory(got, view)


EMPTY_OK = [n for n in CALLS if n not in ("otsu_threshold", "threshold")]


@pytest.mark.parametrize("shape", [(0, 4, 3), (2, 3, 0, 3), (0, 2, 2, 3)])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("name", EMPTY_OK)
def test_empty_images_work(name, dtype, shape):
    got = CALLS[name](np.zeros(shape, dtype))
    assert got.size == 0
    assert got.shape[:-1] == shape[:-1]


@pytest.mark.parametrize("shape", [(0, 4, 1), (2, 0, 3)])
def test_otsu_of_an_empty_image_raises(shape):
    with pytest.raises(ValueError, match=r"at least one finite pixel for Otsu's threshold"):
        otsu_threshold(np.zeros(shape, np.uint8))
    with pytest.raises(ValueError, match=r"at least one finite pixel"):
        threshold(np.zeros(shape, np.uint8), method="otsu")
    assert threshold(np.zeros(shape, np.uint8), 3).shape == shape


# --- otsu_threshold and threshold ---------------------------------------------------------


def bimodal(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    scale = 1.0 if dtype.kind == "f" else {"uint8": 255, "int32": 1000}.get(dtype.name, 30000)
    centres = rng.choice([0.25, 0.7], size=shape, p=[0.6, 0.4])
    values = (centres + rng.normal(0, 0.06, size=shape)) * scale
    if dtype.kind in "iu":
        values = np.clip(np.rint(values), np.iinfo(dtype).min, np.iinfo(dtype).max)
    return values.astype(dtype)


@pytest.mark.parametrize("kind", ["random", "bimodal"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(20, 20, 1), (2, 9, 11, 3)])
def test_otsu_matches_skimage(shape, dtype, kind):
    x = random_image(shape, dtype, seed=2) if kind == "random" else bimodal(shape, dtype, 2)
    if dtype == "int32":
        x //= 2  # spans at most 65536 values: one bin per value, like skimage
    expected = skimage.filters.threshold_otsu(x.ravel())
    assert otsu_threshold(x) == float(expected)


def test_otsu_separates_a_bimodal_image():
    x = bimodal((30, 30, 1), "uint8", seed=4)
    t = otsu_threshold(x)
    assert 0.35 * 255 < t < 0.6 * 255


@pytest.mark.parametrize("bins", [2, 16, 256, 1000])
def test_otsu_bins_for_floats_and_wide_integers(bins):
    y = random_image((12, 13, 2), "float64", seed=5)
    assert otsu_threshold(y, bins) == skimage.filters.threshold_otsu(y.ravel(), nbins=bins)
    # int32 data spanning more than 65536 values: `bins` bins over [min, max], as for floats
    rng = np.random.default_rng(1)
    z = rng.integers(-(2**31), 2**31 - 1, size=(10, 10, 1)).astype(np.int32)
    expected = skimage.filters.threshold_otsu(z.ravel().astype(np.float64), nbins=bins)
    assert otsu_threshold(z, bins) == expected


def test_otsu_ignores_non_finite_values_and_returns_the_value_of_a_constant_image():
    x = bimodal((10, 10, 1), "float32", seed=6)
    finite = x.ravel().copy()
    x[0, :4, 0] = [np.nan, np.inf, -np.inf, np.nan]
    assert otsu_threshold(x) == skimage.filters.threshold_otsu(finite[4:])
    assert otsu_threshold(np.full((3, 4, 2), 7, np.uint16)) == 7.0
    assert otsu_threshold(np.array([[[np.nan], [0.25]]])) == 0.25
    with pytest.raises(ValueError, match=r"at least one finite pixel"):
        otsu_threshold(np.full((2, 2, 1), np.nan))


@pytest.mark.parametrize("dtype", DTYPES)
def test_threshold_by_value(dtype):
    x = random_image((2, 6, 7, 3), dtype, seed=8)
    t = 0.4 if dtype.startswith("float") else 100.5
    high = 1.0 if dtype.startswith("float") else full_scale(dtype)
    expected = np.where(x.astype(np.float64) > t, high, 0).astype(dtype)
    got = threshold(x, t)
    assert got.dtype == x.dtype
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(threshold(x, t, high=7), np.where(expected > 0, 7, 0))


def test_threshold_hand_examples():
    x = np.array([[[1], [5], [9]]], dtype=np.int16)
    np.testing.assert_array_equal(threshold(x, 5)[..., 0], [[0, 0, 32767]])
    np.testing.assert_array_equal(threshold(x, 4.5, high=-2)[..., 0], [[0, -2, -2]])
    # compared in float64: float32(0.1) is above 0.1, NaN is never above
    y = np.array([[[np.float32(0.1)], [np.nan], [np.inf]]], dtype=np.float32)
    np.testing.assert_array_equal(threshold(y, 0.1)[..., 0], [[1, 0, 1]])
    np.testing.assert_array_equal(threshold(y, -np.inf, high=0.5)[..., 0], [[0.5, 0, 0.5]])


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_threshold_otsu_uses_otsu_threshold_of_each_page(dtype):
    x = bimodal((2, 8, 9, 3), dtype, seed=9)
    x[1] = x[1] // 2 if dtype != "float32" else x[1] / 2  # another page, another threshold
    high = 1.0 if dtype == "float32" else full_scale(dtype)
    pages = [skimage.filters.threshold_otsu(x[p].ravel()) for p in range(2)]
    assert pages[0] != pages[1]
    expected = np.stack([np.where(x[p] > pages[p], high, 0) for p in range(2)]).astype(dtype)
    np.testing.assert_array_equal(threshold(x, method="otsu"), expected)
    np.testing.assert_array_equal(threshold(x[1], method="otsu"), expected[1])  # one image
    deep = np.stack([x, x[::-1]])  # (2, 2, H, W, C): every leading index is a page
    np.testing.assert_array_equal(threshold(deep, method="otsu"),
                                  np.stack([expected, expected[::-1]]))  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, r"exactly one of `value` \(a number\) or `method` \('otsu'\); got value=None, "
             r"method=None"),
        ({"value": 3, "method": "otsu"}, r"exactly one of .*got value=3, method='otsu'"),
        ({"method": "mean"}, r"`method` must be one of \{'otsu'\}; got 'mean'"),
        ({"value": float("nan")}, r"`value` must be a number \(not NaN\); got nan"),
        ({"value": 3, "high": 256}, r"`high` must be an integer in \[0, 255\] for uint8 images; "
                                    r"got 256"),
        ({"value": 3, "high": 1.5}, r"`high` must be an integer in \[0, 255\].*got 1\.5"),
        ({"value": 3, "high": "x"}, r"`high` must be a finite number; got 'x'"),
    ],
)  # fmt: skip
def test_threshold_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        threshold(np.zeros((2, 2, 1), np.uint8), **kwargs)


def test_otsu_bins_error():
    with pytest.raises(ValueError, match=r"`bins` must be an integer >= 2; got 1"):
        otsu_threshold(np.zeros((2, 2, 1), np.float32), bins=1)


# --- equalize -----------------------------------------------------------------------------


def opencv_equalize(values: np.ndarray, levels: int, minimum: int) -> np.ndarray:
    """OpenCV's equalizeHist loop, transliterated (float32 scale and products)."""
    v = values.astype(np.int64) - minimum
    hist = np.bincount(v.ravel(), minlength=levels)
    first = int(np.flatnonzero(hist)[0])
    if hist[first] == v.size:
        return values.copy()
    scale = np.float32(levels - 1) / np.float32(v.size - hist[first])
    lut = np.zeros(levels, np.int64)
    total = 0
    for j in range(first + 1, levels):
        total += int(hist[j])
        lut[j] = min(int(np.rint(np.float32(total) * scale)), levels - 1)
    return (lut[v] + minimum).astype(values.dtype)


def ranked_equalize(values: np.ndarray) -> np.ndarray:
    """int32: the same map over distinct values, in float64, via searchsorted."""
    info = np.iinfo(values.dtype)
    ordered = np.sort(values.ravel())
    below = np.searchsorted(ordered, values, side="right")
    lowest = np.searchsorted(ordered, ordered[0], side="right")
    if lowest == values.size:
        return values.copy()
    mapped = np.rint((below - lowest) * ((2.0**32 - 1) / (values.size - lowest))) + info.min
    return mapped.astype(values.dtype)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shape", [(16, 16), (7, 31), (1, 1), (3, 5)])
def test_equalize_uint8_is_cv2_equalize_hist(shape, seed):
    rng = np.random.default_rng(seed)
    if seed == 0:
        x = np.full(shape, 77, np.uint8)  # constant: cv2 leaves it as is
    elif seed == 1:
        x = rng.choice(np.array([3, 200], np.uint8), size=shape)
    else:
        x = rng.integers(0, 256 // seed, size=shape, dtype=np.uint8) * (seed - 1)
    np.testing.assert_array_equal(equalize(x[..., None])[..., 0], cv2.equalizeHist(x))


@pytest.mark.parametrize("dtype", INTS)
def test_equalize_integers_per_page_and_channel(dtype):
    x = random_image((2, 6, 7, 3), dtype, seed=12)
    x[1, ..., 1] = x[1, 0, 0, 1]  # one constant channel
    got = equalize(x)
    assert got.dtype == x.dtype
    info = np.iinfo(dtype)
    for p in range(2):
        for c in range(3):
            if dtype == "int32":
                expected = ranked_equalize(x[p, ..., c])
            else:
                expected = opencv_equalize(x[p, ..., c], 1 << info.bits, int(info.min))
            if dtype == "uint8":
                np.testing.assert_array_equal(expected, cv2.equalizeHist(x[p, ..., c]))
            np.testing.assert_array_equal(got[p, ..., c], expected)


def test_equalize_hand_example_and_full_range_of_signed_types():
    x = np.array([[[0], [0], [1], [3]]], dtype=np.uint8)
    np.testing.assert_array_equal(equalize(x)[..., 0], [[0, 0, 128, 255]])  # 127.5 -> 128
    y = np.array([[[-5], [10], [10], [99]]], dtype=np.int16)
    np.testing.assert_array_equal(equalize(y)[..., 0], [[-32768, 10922, 10922, 32767]])
    z = np.array([[[-5], [10]]], dtype=np.int32)
    np.testing.assert_array_equal(equalize(z)[..., 0], [[-(2**31), 2**31 - 1]])


@pytest.mark.parametrize("bins", [None, 16, 300])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_equalize_floats_matches_skimage_per_channel(dtype, bins):
    x = random_image((2, 9, 8, 3), dtype, seed=13) ** 2 * 3 - 1  # not in [0, 1]
    x[0, ..., 2] = 0.25  # constant: skimage gives 0.5
    got = equalize(x, bins)
    assert got.dtype == x.dtype
    for p in range(2):
        for c in range(3):
            expected = skimage.exposure.equalize_hist(x[p, ..., c], nbins=bins or 256)
            np.testing.assert_allclose(got[p, ..., c], expected, **FLOAT_TOL[dtype])
    np.testing.assert_allclose(got[0, ..., 2], 0.5, rtol=1e-12)


def test_equalize_floats_non_finite():
    x = random_image((6, 5, 1), "float64", seed=14)
    finite = x[..., 0].copy()
    x[0, :3, 0] = [np.nan, np.inf, -np.inf]
    got = equalize(x)[..., 0]
    expected = skimage.exposure.equalize_hist(finite, mask=np.isfinite(x[..., 0]))
    np.testing.assert_allclose(got[1:], expected[1:], **FLOAT_TOL["float64"])
    cdf0 = skimage.exposure.cumulative_distribution(finite.ravel()[3:])[0][0]
    np.testing.assert_allclose(got[0, :3], [np.nan, 1.0, cdf0])
    np.testing.assert_array_equal(equalize(np.full((2, 2, 1), np.nan)), np.nan)


def test_equalize_errors():
    with pytest.raises(ValueError, match=r"`bins` applies to float images only .* got bins=64 "
                       r"for a uint8 image"):  # fmt: skip
        equalize(np.zeros((2, 2, 1), np.uint8), bins=64)
    with pytest.raises(ValueError, match=r"`bins` must be an integer >= 2; got 1"):
        equalize(np.zeros((2, 2, 1), np.float32), bins=1)


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 20), top=st.integers(1, 256),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_equalize_uint8_random_shapes_and_ranges(h, w, top, seed):
    x = np.random.default_rng(seed).integers(0, top, size=(h, w), dtype=np.uint8)
    np.testing.assert_array_equal(equalize(x[..., None])[..., 0], cv2.equalizeHist(x))


# --- gamma, invert ------------------------------------------------------------------------


@pytest.mark.parametrize(("g", "gain"), [(0.5, 1.0), (2.2, 1.0), (0.8, 1.3), (1.0, 0.5)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gamma_matches_the_float64_formula(dtype, g, gain):
    x = random_image((2, 5, 6, 2), dtype, seed=15)
    got = gamma(x, g, gain)
    assert got.dtype == x.dtype
    if dtype.startswith("float"):
        np.testing.assert_allclose(got, gain * x.astype(np.float64) ** g, **FLOAT_TOL[dtype])
        return
    m = full_scale(dtype)
    base = x.astype(np.float64) / m
    reference = np.where(base < 0, 0.0, m * gain * np.abs(base) ** g)  # negatives become 0
    info = np.iinfo(dtype)
    expected = np.clip(np.rint(reference), info.min, info.max)
    np.testing.assert_array_equal(got, expected)  # exact: the table is computed in float64


def test_gamma_every_uint8_and_uint16_value():
    for dtype in ("uint8", "uint16"):
        x = np.arange(int(full_scale(dtype)) + 1).astype(dtype).reshape(1, -1, 1)
        m = full_scale(dtype)
        expected = np.clip(np.rint(m * 1.2 * (x / m) ** 0.45), 0, m)
        np.testing.assert_array_equal(gamma(x, 0.45, 1.2), expected)


def test_gamma_of_floats_nan_negative_and_overflow():
    x = np.array([[[np.nan], [-0.25], [0.25], [np.inf], [3e38]]], dtype=np.float32)
    got = gamma(x, 2.0, 10.0)[0, :, 0]
    np.testing.assert_array_equal(got, [np.nan, 0.625, 0.625, np.inf, np.inf])
    half = gamma(x, 0.5)[0, :, 0]
    np.testing.assert_array_equal(half[:2], [np.nan, np.nan])  # negative base: NaN, no warning
    np.testing.assert_allclose(half[2], 0.5)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0,), r"`gamma` must be a finite number > 0; got 0"),
        ((-1.0,), r"`gamma` must be a finite number > 0; got -1\.0"),
        ((float("inf"),), r"`gamma` must be a finite number > 0; got inf"),
        ((1.0, float("nan")), r"`gain` must be a finite number; got nan"),
        (("2",), r"`gamma` must be a finite number > 0; got '2'"),
    ],
)
def test_gamma_errors(args, match):
    with pytest.raises(ValueError, match=match):
        gamma(np.zeros((2, 2, 1), np.uint8), *args)


@pytest.mark.parametrize("dtype", DTYPES)
def test_invert(dtype):
    x = random_image((2, 4, 5, 3), dtype, seed=16)
    got = invert(x)
    assert got.dtype == x.dtype
    if dtype.startswith("float"):
        expected = 1.0 - x.astype(np.float64)
    elif dtype.startswith("u"):
        expected = full_scale(dtype) - x.astype(np.int64)
    else:
        expected = -1 - x.astype(np.int64)
    np.testing.assert_allclose(got, expected, **FLOAT_TOL.get(dtype, {"rtol": 0}))
    if dtype in INTS:
        np.testing.assert_array_equal(invert(got), x)


def test_invert_hand_examples():
    np.testing.assert_array_equal(invert(np.array([[[0, 200]]], np.uint8)), [[[255, 55]]])
    np.testing.assert_array_equal(invert(np.array([[[-32768, 0, 32767]]], np.int16)),
                                  [[[32767, -1, -32768]]])  # fmt: skip
    np.testing.assert_array_equal(invert(np.array([[[0.25, np.nan, np.inf]]])),
                                  [[[0.75, np.nan, -np.inf]]])  # fmt: skip
    np.testing.assert_array_equal(invert(np.array([[[0, 1]]], np.uint8)),
                                  cv2.bitwise_not(np.array([[[0, 1]]], np.uint8)))  # fmt: skip


# --- to_float, from_float -----------------------------------------------------------------


@pytest.mark.parametrize("max_value", [None, 4095.0])
@pytest.mark.parametrize("out", ["float32", "float64"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_to_float(dtype, out, max_value):
    x = random_image((2, 4, 5, 2), dtype, seed=17)
    got = to_float(x, out, max_value)
    assert got.dtype == np.dtype(out)
    if max_value is None and dtype.startswith("float"):
        np.testing.assert_array_equal(got, x.astype(out))
        return
    scale = max_value or full_scale(dtype)
    expected = x.astype(np.float64) / scale
    tol = {"rtol": 1.2e-7, "atol": 0} if out == "float32" else FLOAT_TOL["float64"]
    np.testing.assert_allclose(got, expected, **tol)


def test_to_float_hand_examples():
    np.testing.assert_array_equal(to_float(np.array([[[0, 51, 255]]], np.uint8))[0, 0],
                                  np.array([0, 0.2, 1], np.float32))  # fmt: skip
    np.testing.assert_allclose(to_float(np.array([[[-32767, 32767]]], np.int16), "float64"),
                               [[[-1.0, 1.0]]])  # fmt: skip


@pytest.mark.parametrize("max_value", [None, 1000.0])
@pytest.mark.parametrize("out", INTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_from_float(dtype, out, max_value):
    x = (random_image((2, 4, 5, 2), dtype, seed=18) * 1.4 - 0.2).astype(dtype)
    got = from_float(x, out, max_value)
    scale = max_value or full_scale(out)
    reference = x.astype(np.float64) * scale
    if dtype == "float32" and out != "int32":  # computed in float32: ties may go either way
        assert_stored(got, reference, out)
    else:  # computed in float64: exact
        info = np.iinfo(out)
        np.testing.assert_array_equal(got, np.clip(np.rint(reference), info.min, info.max))
    assert got.dtype == np.dtype(out)


def test_from_float_hand_example_and_non_finite():
    x = np.array([[[0.0], [0.5], [1.2], [-0.1], [np.nan], [np.inf], [2.5 / 255]]])
    np.testing.assert_array_equal(from_float(x)[0, :, 0], [0, 128, 255, 0, 0, 255, 2])
    np.testing.assert_array_equal(from_float(x[..., :3, :], "int16")[0, :, 0],
                                  [0, 16384, 32767])  # fmt: skip


def test_float_conversion_errors():
    with pytest.raises(TypeError, match=r"`img` must be float32 or float64 for from_float; "
                       r"got uint8"):  # fmt: skip
        from_float(np.zeros((2, 2, 1), np.uint8))
    with pytest.raises(ValueError, match=r"`dtype` must be one of \{uint8, uint16, int16, "
                       r"int32\}; got 'float32'"):  # fmt: skip
        from_float(np.zeros((2, 2, 1), np.float32), "float32")
    with pytest.raises(ValueError, match=r"`dtype` must be one of \{float32, float64\}; "
                       r"got 'uint8'"):  # fmt: skip
        to_float(np.zeros((2, 2, 1), np.uint8), "uint8")
    with pytest.raises(ValueError, match=r"`dtype` must be one of .*; got 'nonsense'"):
        to_float(np.zeros((2, 2, 1), np.uint8), "nonsense")
    with pytest.raises(ValueError, match=r"`dtype` must be one of .*; got None"):
        to_float(np.zeros((2, 2, 1), np.uint8), None)
    for bad in (0, -1.0, float("inf")):
        with pytest.raises(ValueError, match=r"`max_value` must be a finite number > 0; got"):
            to_float(np.zeros((2, 2, 1), np.uint8), max_value=bad)
        with pytest.raises(ValueError, match=r"`max_value` must be a finite number > 0; got"):
            from_float(np.zeros((2, 2, 1), np.float32), max_value=bad)


# --- rescale, normalize, clip -------------------------------------------------------------


def finite_nan(x: np.ndarray) -> np.ndarray:
    y = x.astype(np.float64)
    y[~np.isfinite(y)] = np.nan
    return y


def rescale_reference(x, out_min=0.0, out_max=1.0, in_min=None, in_max=None):
    y = finite_nan(x)
    pages = y.reshape(-1, *x.shape[-3:])
    result = np.empty(pages.shape)
    for p, page in enumerate(pages):
        lo = np.nanmin(page) if in_min is None else in_min
        hi = np.nanmax(page) if in_max is None else in_max
        raw = x.reshape(pages.shape)[p].astype(np.float64)
        if hi > lo:
            result[p] = (raw - lo) * (out_max - out_min) / (hi - lo) + out_min
        else:
            result[p] = np.where(np.isnan(raw), np.nan, out_min)
    return result.reshape(x.shape)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"out_min": -1.0, "out_max": 1.0}, {"out_min": 255, "out_max": 0},
     {"in_min": 100.0, "in_max": 300.5}, {"in_min": 0.0}, {"in_max": 30000.0}],
)  # fmt: skip
@pytest.mark.parametrize("dtype", DTYPES)
def test_rescale_matches_the_float64_formula_per_page(dtype, kwargs):
    x = random_image((3, 4, 5, 2), dtype, seed=19)
    x[2] = x[2, 0, 0, 0]  # a constant page
    got = rescale(x, **kwargs)
    assert got.dtype == (np.float64 if dtype == "float64" else np.float32)
    reference = rescale_reference(x, **kwargs)
    tol = FLOAT_TOL[got.dtype.name]
    span = abs(kwargs.get("out_max", 1.0) - kwargs.get("out_min", 0.0))
    np.testing.assert_allclose(got, reference, rtol=tol["rtol"] * 10, atol=tol["atol"] * span * 10)


def test_rescale_non_finite_and_hand_examples():
    x = np.array([[[np.nan], [2.0], [np.inf], [4.0], [-np.inf], [6.0]]], dtype=np.float32)
    got = rescale(x)[0, :, 0]
    np.testing.assert_array_equal(got, [np.nan, 0.0, np.inf, 0.5, -np.inf, 1.0])
    assert got.dtype == np.float32
    np.testing.assert_array_equal(rescale(np.full((2, 2, 1), 9, np.uint8), 3, 5), 3.0)
    np.testing.assert_array_equal(rescale(np.full((1, 2, 1), np.nan))[0, :, 0], [np.nan] * 2)
    np.testing.assert_array_equal(
        rescale(np.array([[[0], [10]]], np.uint8), in_min=0, in_max=5)[0, :, 0], [0, 2]
    )  # not clipped


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"in_min": 5, "in_max": 5}, r"`in_min` must be less than `in_max`; got 5 and 5"),
        ({"in_min": 6.0, "in_max": 5}, r"`in_min` must be less than `in_max`; got 6\.0 and 5"),
        ({"out_min": float("nan")}, r"`out_min` must be a finite number; got nan"),
        ({"out_max": float("inf")}, r"`out_max` must be a finite number; got inf"),
        ({"in_min": "a"}, r"`in_min` must be a finite number; got 'a'"),
    ],
)
def test_rescale_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        rescale(np.zeros((2, 2, 1), np.uint8), **kwargs)


def normalize_reference(x, mean=None, std=None):
    """Per page and channel, statistics of the finite values by the exact ``statistics``
    module (a constant channel has std exactly 0)."""
    y = x.astype(np.float64)
    stats_shape = (*x.shape[:-3], 1, 1, x.shape[-1])
    own_mean, own_std = np.zeros(stats_shape), np.zeros(stats_shape)
    for index in np.ndindex(*x.shape[:-3], x.shape[-1]):
        where = (*index[:-1], slice(None), slice(None), index[-1])
        values = [float(v) for v in y[where].ravel() if np.isfinite(v)]
        if values:
            at = (*index[:-1], 0, 0, index[-1])
            own_mean[at] = statistics.mean(values)
            own_std[at] = statistics.pstdev(values)
    m = own_mean if mean is None else np.asarray(mean, float)
    s = np.where(own_std == 0, 1.0, own_std) if std is None else np.asarray(std, float)
    return (y - m) / s


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"mean": 0.5}, {"std": 2.0}, {"mean": 0.1, "std": 0.3},
     {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}],
)  # fmt: skip
@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_matches_the_float64_formula_per_page_and_channel(dtype, kwargs):
    x = random_image((2, 4, 5, 3), dtype, seed=20)
    x[1, ..., 2] = x[1, 0, 0, 2]  # constant channel: std 0
    got = normalize(x, **kwargs)
    assert got.dtype == (np.float64 if dtype == "float64" else np.float32)
    reference = normalize_reference(x, **kwargs)
    tol = FLOAT_TOL[got.dtype.name]
    scale = np.max(np.abs(reference))
    np.testing.assert_allclose(got, reference, rtol=tol["rtol"] * 10, atol=tol["atol"] * scale)
    if not kwargs:
        np.testing.assert_array_equal(got[1, ..., 2], 0)
        np.testing.assert_allclose(got[0].mean(axis=(0, 1)), 0, atol=1e-5)
        np.testing.assert_allclose(got[0].std(axis=(0, 1)), 1, rtol=1e-5)


def test_normalize_non_finite():
    x = np.array([[[np.nan], [1.0], [np.inf], [3.0]]])
    np.testing.assert_array_equal(normalize(x)[0, :, 0], [np.nan, -1.0, np.inf, 1.0])
    np.testing.assert_array_equal(normalize(np.full((1, 2, 1), np.nan))[0, :, 0], [np.nan] * 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"std": 0}, r"`std` must be a finite number > 0; got 0"),
        ({"std": [1.0, -1.0]}, r"`std` must be a finite number > 0; got -1\.0"),
        ({"mean": float("nan")}, r"`mean` must be a finite number; got nan"),
        ({"mean": [1.0, 2.0, 3.0]}, r"`mean` must be a number or one number per channel \(2\); "
                                    r"got \[1\.0, 2\.0, 3\.0\]"),
        ({"mean": "0.5"}, r"`mean` must be a number or one number per channel; got '0\.5'"),
    ],
)  # fmt: skip
def test_normalize_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        normalize(np.zeros((2, 2, 2), np.uint8), **kwargs)


@pytest.mark.parametrize(("lo", "hi"), [(None, None), (0.3, None), (None, 0.6), (0.2, 0.7)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_clip(dtype, lo, hi):
    x = random_image((2, 4, 5, 2), dtype, seed=21)
    if not dtype.startswith("float"):
        scale = 30000 if dtype != "uint8" else 250
        lo, hi = (None if v is None else v * scale + 0.5 for v in (lo, hi))
    got = clip(x, lo, hi)
    assert got.dtype == x.dtype
    low = -np.inf if lo is None else lo
    high = np.inf if hi is None else hi
    if dtype.startswith("float"):
        expected = np.clip(x, x.dtype.type(low), x.dtype.type(high))
    else:  # integer images: lo rounded up, hi down
        expected = np.clip(x.astype(np.float64), math.ceil(low) if lo else low,
                           math.floor(high) if hi else high).astype(dtype)  # fmt: skip
    np.testing.assert_array_equal(got, expected)


def test_clip_hand_examples():
    x = np.array([[[1], [5], [9]]], dtype=np.uint8)
    np.testing.assert_array_equal(clip(x, 2, 6)[0, :, 0], [2, 5, 6])
    np.testing.assert_array_equal(clip(x, 1.5, 8.5)[0, :, 0], [2, 5, 8])
    np.testing.assert_array_equal(clip(x, -100, 1000)[0, :, 0], [1, 5, 9])
    np.testing.assert_array_equal(clip(x, 300, None)[0, :, 0], [255] * 3)
    np.testing.assert_array_equal(clip(x, -np.inf, -np.inf)[0, :, 0], [0] * 3)
    y = np.array([[[np.nan], [-np.inf], [0.5], [np.inf]]])
    np.testing.assert_array_equal(clip(y, 0, 1)[0, :, 0], [np.nan, 0, 0.5, 1])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((5, 2), r"`lo` must be <= `hi`; got lo=5, hi=2"),
        ((float("nan"), None), r"`lo` must be a number \(not NaN\); got nan"),
        ((None, "x"), r"`hi` must be a number \(not NaN\); got 'x'"),
        ((3.2, 3.8), r"\[`lo`, `hi`\] must contain an integer for uint8 images; got lo=3\.2, "
                     r"hi=3\.8"),
    ],
)  # fmt: skip
def test_clip_errors(args, match):
    with pytest.raises(ValueError, match=match):
        clip(np.zeros((2, 2, 1), np.uint8), *args)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.integers(1, 4)),
    dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16),
)  # fmt: skip
def test_rescale_and_normalize_random_shapes(shape, dtype, seed):
    x = random_image(shape, dtype, seed=seed)
    got = rescale(x, -2.0, 3.0)
    np.testing.assert_allclose(got, rescale_reference(x, -2.0, 3.0), rtol=1e-5, atol=1e-5)
    reference = normalize_reference(x)
    np.testing.assert_allclose(normalize(x), reference, rtol=1e-4,
                               atol=1e-5 * max(1.0, np.max(np.abs(reference))))  # fmt: skip


# --- grayscale, unsharp_mask --------------------------------------------------------------

WEIGHTS = {"bt601": (0.299, 0.587, 0.114), "bt709": (0.2126, 0.7152, 0.0722)}


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("weights", ["bt601", "bt709"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_grayscale_matches_the_float64_formula(dtype, weights, channels):
    x = random_image((2, 5, 6, channels), dtype, seed=22)
    got = grayscale(x, weights)
    assert got.shape == (2, 5, 6, 1)
    reference = (x[..., :3].astype(np.float64) * WEIGHTS[weights]).sum(axis=-1, keepdims=True)
    assert_stored(got, reference, dtype)


@pytest.mark.parametrize("kind", ["contiguous", "strided", "negative", "fortran"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_grayscale_kernel_equals_the_numpy_reference_bit_for_bit(dtype, kind):
    x = random_image((2, 7, 40000 // 7 // 14 + 3, 4), dtype, seed=25)  # > one kernel chunk
    if dtype in ("float32", "float64"):
        x[0, 0, :5, :3] = [[np.nan, 0, 0], [np.inf, 0, 0], [-np.inf, 1, 1], [0, np.nan, 0],
                           [1e300 if dtype == "float64" else 3e38, 1e300 if dtype == "float64"
                            else 3e38, 0]]  # fmt: skip
    else:
        info = np.iinfo(x.dtype)
        x[0, 0, :2, :3] = [[info.max] * 3, [info.min] * 3]
    x = layout(x, kind) if kind != "contiguous" else x
    fast = grayscale(x, "bt709", backend="cpu")
    reference = grayscale(x, "bt709", backend="numpy")
    assert fast.dtype == reference.dtype == x.dtype
    np.testing.assert_array_equal(fast, reference)
    assert fast.flags.c_contiguous


@pytest.mark.parametrize("shape", [(0, 4, 3), (4, 0, 3), (1, 1, 3), (1, 1, 4)])
def test_grayscale_of_empty_and_one_pixel_images(shape):
    x = random_image(shape, "uint8", seed=26)
    for backend in ("cpu", "numpy"):
        got = grayscale(x, backend=backend)
        assert got.shape == (*shape[:-1], 1)
        reference = (x[..., :3].astype(np.float64) * WEIGHTS["bt601"]).sum(-1, keepdims=True)
        np.testing.assert_array_equal(got, np.rint(reference).astype(np.uint8))


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_grayscale_matches_cv2_and_pillow(dtype):
    x = random_image((9, 11, 3), dtype, seed=23)
    expected = cv2.cvtColor(x, cv2.COLOR_RGB2GRAY)[..., None]
    got = grayscale(x)
    if dtype == "uint8":
        np.testing.assert_allclose(got, expected, rtol=0, atol=1)
        pillow = np.asarray(Image.fromarray(x, "RGB").convert("L"))[..., None]
        np.testing.assert_allclose(got, pillow, rtol=0, atol=1)
        rgba = np.concatenate([x, x[..., :1]], axis=-1)
        np.testing.assert_array_equal(grayscale(rgba), got)  # alpha ignored
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_grayscale_of_one_and_two_channels_and_errors():
    x = random_image((2, 3, 4, 2), "uint16", seed=24)
    np.testing.assert_array_equal(grayscale(x), x[..., :1])
    one = x[..., :1]
    got = grayscale(one)
    np.testing.assert_array_equal(got, one)
    assert not np.shares_memory(got, one)
    with pytest.raises(ValueError, match=r"1 \(gray\), 2 \(gray, alpha\), 3 \(RGB\) or 4 "
                       r"\(RGBA\) channels for grayscale; got 5"):  # fmt: skip
        grayscale(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ValueError, match=r"`weights` must be one of \{'bt601', 'bt709'\}; "
                       r"got 'srgb'"):  # fmt: skip
        grayscale(np.zeros((2, 2, 3), np.uint8), "srgb")
    with pytest.raises(ValueError, match=r"`backend` must be one of \{'cpu', 'cuda', 'numpy'\}; "
                       r"got 'opencl'"):  # fmt: skip
        grayscale(np.zeros((2, 2, 3), np.uint8), backend="opencl")
    np.testing.assert_array_equal(grayscale(np.array([[[255, 0, 0]]], np.uint8)), [[[76]]])


def unsharp_reference(x, sigma, amount, limit):
    y = x.astype(np.float64)
    blur = ndimage.gaussian_filter(y, sigma, axes=(-3, -2), mode="reflect")
    detail = y - blur
    return y + amount * np.where(np.abs(detail) > limit, detail, 0.0)


@pytest.mark.parametrize(("sigma", "amount"), [(1.0, 1.0), (0.7, 2.5), (2.0, -0.5), (0.0, 3.0)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_unsharp_mask_matches_scipy(dtype, sigma, amount):
    x = random_image((2, 7, 8, 2), dtype, seed=25)
    assert_stored(unsharp_mask(x, sigma, amount), unsharp_reference(x, sigma, amount, 0.0),
                  dtype)  # fmt: skip


def test_unsharp_mask_threshold_and_constant_images():
    x = np.zeros((9, 9, 1), np.float64)
    x[:, 4:] = 100.0
    x[2, 1] = 3.0  # a small bump: below the threshold
    got = unsharp_mask(x, 1.0, 1.0, threshold=5.0)
    np.testing.assert_allclose(got, unsharp_reference(x, 1.0, 1.0, 5.0), **FLOAT_TOL["float64"])
    assert got[2, 1, 0] == 3.0
    assert got[0, 3, 0] < 0
    assert got[0, 4, 0] > 100
    np.testing.assert_array_equal(unsharp_mask(np.full((5, 6, 3), 200, np.uint8)), 200)
    step = np.zeros((4, 6, 1), np.uint8)
    step[:, 3:] = 250
    assert unsharp_mask(step, 1.0, 5.0).max() == 255  # saturated
    nan = np.zeros((9, 9, 1))
    nan[4, 4] = np.nan
    got = unsharp_mask(nan, 0.5)  # kernel radius 2
    assert np.isnan(got[4:7, 4:7]).all()
    assert got[0, 0, 0] == 0
    assert got[4, 7, 0] == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"sigma": -1}, r"`sigma` must be a finite number >= 0; got -1"),
        ({"amount": float("inf")}, r"`amount` must be a finite number; got inf"),
        ({"threshold": -0.1}, r"`threshold` must be a finite number >= 0; got -0\.1"),
    ],
)
def test_unsharp_mask_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        unsharp_mask(np.zeros((3, 3, 1), np.uint8), **kwargs)


# --- channels -----------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [[0], [2, 1, 0], [-1, 0], [1, 1, 1, 1], (3,)])
def test_select_channels(channels):
    x = random_image((2, 3, 4, 4), "int16", seed=26)
    got = select_channels(x, channels)
    np.testing.assert_array_equal(got, np.stack([x[..., c] for c in channels], axis=-1))
    assert got.flags.c_contiguous


@pytest.mark.parametrize(
    ("channels", "match"),
    [
        ([], r"`channels` must be a non-empty sequence of channel indices; got \[\]"),
        (2, r"`channels` must be a non-empty sequence of channel indices; got 2"),
        ("01", r"`channels` must be a non-empty sequence of channel indices; got '01'"),
        ([0, 3], r"`channels` must be indices in \[-3, 3\) for an image of 3 channel\(s\); "
                 r"got \[0, 3\]"),
        ([-4], r"indices in \[-3, 3\).*got \[-4\]"),
        ([0.5], r"`channels` must be an integer; got 0\.5"),
    ],
)  # fmt: skip
def test_select_channels_errors(channels, match):
    with pytest.raises(ValueError, match=match):
        select_channels(np.zeros((2, 2, 3), np.uint8), channels)


@pytest.mark.parametrize("count", [1, 3, 4])
def test_stack_channels(count):
    x = random_image((2, 3, 4, 1), "float32", seed=27)
    got = stack_channels(x, count)
    np.testing.assert_array_equal(got, np.concatenate([x] * count, axis=-1))
    assert not np.shares_memory(got, x)


def test_stack_channels_errors():
    with pytest.raises(ValueError, match=r"`count` must be a positive integer; got 0"):
        stack_channels(np.zeros((2, 2, 1), np.uint8), 0)
    with pytest.raises(ValueError, match=r"exactly one channel to stack; got 3"):
        stack_channels(np.zeros((2, 2, 3), np.uint8), 3)


@settings(max_examples=25, deadline=None)
@given(c=st.integers(1, 5), picks=st.lists(st.integers(-5, 4), min_size=1, max_size=6))
def test_select_channels_random(c, picks):
    x = np.arange(2 * 3 * c, dtype=np.uint16).reshape(1, 2, 3, c)
    if all(-c <= p < c for p in picks):
        np.testing.assert_array_equal(select_channels(x, picks), x[..., picks])
    else:
        with pytest.raises(ValueError, match=r"`channels` must be indices in"):
            select_channels(x, picks)
