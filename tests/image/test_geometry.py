"""npaccel.image._geometry against OpenCV, NumPy and a dense float64 reference.

Tolerances, once per dtype:

* against cv2.resize: uint8 within 1 (OpenCV's fixed point), float32 within 1e-4 relative;
* against the float64 reference (dense per-axis weight matrices built from interval
  overlaps / interpolation coordinates in floating point): floats by ``FLOAT_TOL``; integers
  equal to the reference rounded half to even and saturated, except within ``TIE_WINDOW`` of
  a half-integer, where the float32 computation may round either way (off by at most 1).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npaccel.image._geometry import crop, flip, pad, resize, rotate90

DTYPES = ("uint8", "uint16", "int16", "int32", "float32", "float64")
FLOAT_TOL = {"float32": {"rtol": 1e-5, "atol": 1e-6}, "float64": {"rtol": 1e-12, "atol": 1e-13}}
TIE_WINDOW = {"uint8": 1e-3, "uint16": 0.05, "int16": 0.05, "int32": 1e-6}
BAD_DTYPES = ("int8", "int64", "uint32", "float16", "bool", "complex64")
LAYOUTS = ("contiguous", "strided", "negative", "transposed")


def random_image(shape, dtype, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.random(shape).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = max(int(info.min), -40000), min(int(info.max), 40000)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


def layout(x: np.ndarray, kind: str) -> np.ndarray:
    """A view with the values of ``x``: contiguous, strided, negative strides, or transposed
    memory order."""
    if kind == "contiguous":
        return x.copy()
    if kind == "strided":
        big = np.zeros((*x.shape[:-3], 2 * x.shape[-3], 3 * x.shape[-2], 2 * x.shape[-1]), x.dtype)
        big[..., ::2, ::3, ::2] = x
        return big[..., ::2, ::3, ::2]
    if kind == "negative":
        return x[..., ::-1, ::-1, ::-1].copy()[..., ::-1, ::-1, ::-1]
    return np.asfortranarray(x)


def assert_new_c_array(result: np.ndarray, source: np.ndarray) -> None:
    assert result.flags.c_contiguous
    assert not np.shares_memory(result, source)


def assert_stored(actual: np.ndarray, reference: np.ndarray, dtype) -> None:
    """``actual`` equals float64 ``reference`` stored by the policy, up to the tie window."""
    dtype = np.dtype(dtype)
    assert actual.dtype == dtype
    assert actual.shape == reference.shape
    if dtype.kind == "f":
        np.testing.assert_allclose(actual, reference, **FLOAT_TOL[dtype.name])
        return
    info = np.iinfo(dtype)
    expected = np.clip(np.rint(reference), info.min, info.max)
    near_tie = np.abs(np.abs(reference - np.floor(reference)) - 0.5) <= TIE_WINDOW[dtype.name]
    diff = np.abs(actual.astype(np.float64) - expected)
    assert np.all(diff[~near_tie] == 0), np.max(diff[~near_tie])
    assert np.all(diff <= 1)


# --- the float64 reference of resize ------------------------------------------------------


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Rows: the fraction of output pixel o's footprint [o*s, (o+1)*s) (s = n_in/n_out)
    covered by each input pixel [i, i+1)."""
    s = n_in / n_out
    lo = np.arange(n_out)[:, None] * s
    hi = lo + s
    i = np.arange(n_in)[None, :]
    return np.clip(np.minimum(hi, i + 1) - np.maximum(lo, i), 0, None) / s


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        src = min(max((o + 0.5) * n_in / n_out - 0.5, 0.0), n_in - 1.0)
        i0 = int(np.floor(src))
        f = src - i0
        m[o, i0] += 1 - f
        if f:
            m[o, i0 + 1] += f
    return m


def reference_resize(x: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    matrix = area_matrix if method == "area" else bilinear_matrix
    rows, cols = matrix(x.shape[-3], height), matrix(x.shape[-2], width)
    return np.einsum("oh,...hwc,pw->...opc", rows, x.astype(np.float64), cols)


def test_reference_matrices_rows_sum_to_one_and_match_a_hand_example():
    np.testing.assert_allclose(area_matrix(3, 2), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]])
    np.testing.assert_allclose(bilinear_matrix(2, 4), [[1, 0], [0.75, 0.25], [0.25, 0.75],
                                                       [0, 1]])  # fmt: skip
    for n_in, n_out in [(37, 16), (5, 13), (1, 4), (9, 1)]:
        np.testing.assert_allclose(area_matrix(n_in, n_out).sum(axis=1), 1)
        np.testing.assert_allclose(bilinear_matrix(n_in, n_out).sum(axis=1), 1)


# --- resize ---------------------------------------------------------------------------------

CV2_SIZES = [
    ((8, 8), (4, 4)),  # shrink by 2
    ((9, 12), (3, 4)),  # shrink by 3
    ((37, 37), (16, 16)),  # non-integer shrink (1024 -> 300-like)
    ((37, 23), (16, 10)),
    ((12, 10), (5, 7)),
    ((5, 7), (13, 17)),  # enlarge, non-integer
    ((4, 4), (8, 8)),  # enlarge by 2
    ((1, 1), (4, 3)),  # 1-pixel input
    ((9, 7), (1, 1)),  # 1-pixel output
    ((1, 9), (1, 4)),
    ((6, 1), (2, 1)),
]
CV2_METHODS = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR}


def cv2_resize(x: np.ndarray, height: int, width: int, method: str) -> np.ndarray:
    out = cv2.resize(np.ascontiguousarray(x), (width, height), interpolation=CV2_METHODS[method])
    return out.reshape(height, width, x.shape[-1])


@pytest.mark.parametrize("method", ["area", "bilinear"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize(("size_in", "size_out"), CV2_SIZES, ids=str)
def test_resize_matches_cv2(size_in, size_out, dtype, channels, method):
    x = random_image((*size_in, channels), dtype, seed=sum(size_in))
    if dtype == "uint8":
        x[: size_in[0] // 2] //= 4  # some structure, not only noise
    expected = cv2_resize(x, *size_out, method)
    got = resize(x, *size_out, method=method)
    assert got.dtype == x.dtype
    if dtype == "uint8":
        np.testing.assert_allclose(got, expected, rtol=0, atol=1)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("size_in", "size_out"), [((4, 9), (11, 3)), ((20, 5), (6, 12))])
def test_area_with_one_axis_shrinking_and_one_enlarging_is_the_true_area_mean(size_in, size_out):
    # OpenCV takes two taps on the shrinking axis here; one axis at a time it is exact.
    x = random_image((*size_in, 2), "float32", seed=3)
    one_axis = cv2_resize(x, size_in[0], size_out[1], "area")
    expected = cv2_resize(one_axis, *size_out, "area")
    np.testing.assert_allclose(resize(x, *size_out), expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(resize(x, *size_out), reference_resize(x, *size_out, "area"),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("method", ["area", "bilinear"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("size_in", "size_out"), [((9, 12), (4, 5)), ((5, 4), (7, 9)),
                                                   ((6, 6), (3, 6))])  # fmt: skip
def test_resize_matches_the_float64_reference_for_every_dtype_with_pages(
    size_in, size_out, dtype, method
):
    x = random_image((2, 3, *size_in, 2), dtype, seed=5)
    assert_stored(resize(x, *size_out, method=method),
                  reference_resize(x, *size_out, method), dtype)  # fmt: skip


def test_resize_hand_example():
    x = np.arange(16, dtype=np.float64).reshape(4, 4, 1)
    np.testing.assert_array_equal(resize(x, 2, 2)[..., 0], [[2.5, 4.5], [10.5, 12.5]])
    np.testing.assert_array_equal(resize(x[:2, :2], 1, 1)[..., 0], [[2.5]])
    np.testing.assert_array_equal(
        resize(np.array([[[0.0], [4.0]]]), 1, 4, method="bilinear")[0, :, 0], [0, 1, 3, 4]
    )
    # uint8 ties round half to even: (1 + 2) / 2 = 1.5 -> 2, (3 + 4) / 2 = 3.5 -> 4, 2.5 -> 2
    y = np.array([[[1], [2], [3], [4], [2], [3]]], dtype=np.uint8)
    np.testing.assert_array_equal(resize(y, 1, 3)[0, :, 0], [2, 4, 2])


@pytest.mark.parametrize("layout_kind", LAYOUTS)
@pytest.mark.parametrize("dtype", ["uint8", "float64"])
def test_resize_views(layout_kind, dtype):
    x = random_image((2, 7, 9, 3), dtype, seed=7)
    view = layout(x, layout_kind)
    got = resize(view, 4, 5)
    assert_new_c_array(got, view)
    assert_stored(got, reference_resize(x, 4, 5, "area"), dtype)


@pytest.mark.parametrize("method", ["area", "bilinear"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_identity_resize_is_an_equal_copy(dtype, method):
    x = layout(random_image((2, 5, 6, 3), dtype), "negative")
    got = resize(x, 5, 6, method=method)
    np.testing.assert_array_equal(got, x)
    assert got.dtype == x.dtype
    assert_new_c_array(got, x)


@pytest.mark.parametrize("method", ["area", "bilinear"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_resize_keeps_a_constant_image_constant(dtype, method):
    value = {"uint8": 200, "uint16": 65535, "int16": -32768, "int32": 2**31 - 1}.get(dtype, 0.3)
    x = np.full((11, 7, 2), value, dtype=dtype)
    got = resize(x, 4, 13, method=method)
    if got.dtype.kind == "f":
        np.testing.assert_allclose(got, value, rtol=1e-6)
    else:
        np.testing.assert_array_equal(got, value)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("method", ["area", "bilinear"])
@pytest.mark.parametrize(("size_in", "size_out"), [((9, 8), (4, 3)), ((4, 5), (9, 11)),
                                                   ((6, 6), (6, 4))])  # fmt: skip
def test_resize_non_finite_reaches_only_the_pixels_that_weigh_it(size_in, size_out, method,
                                                                   bad):  # fmt: skip
    x = random_image((*size_in, 1), "float64", seed=9)
    x[2, 3, 0] = bad
    matrix = area_matrix if method == "area" else bilinear_matrix
    reached = np.outer(matrix(size_in[0], size_out[0])[:, 2] > 0,
                       matrix(size_in[1], size_out[1])[:, 3] > 0)  # fmt: skip
    clean = x.copy()
    clean[2, 3, 0] = 0
    expected = reference_resize(clean, *size_out, method)
    expected[reached] = bad
    got = resize(x, *size_out, method=method)
    np.testing.assert_allclose(got, expected, **FLOAT_TOL["float64"])
    assert 0 < reached.sum() < reached.size


@settings(max_examples=25, deadline=None)
@given(
    h=st.integers(1, 12), w=st.integers(1, 12), oh=st.integers(1, 12), ow=st.integers(1, 12),
    c=st.integers(1, 3), pages=st.sampled_from([(), (2,)]),
    method=st.sampled_from(["area", "bilinear"]),
)  # fmt: skip
def test_resize_random_shapes(h, w, oh, ow, c, pages, method):
    x = random_image((*pages, h, w, c), "float64", seed=h * 100 + w)
    got = resize(x, oh, ow, method=method)
    assert got.shape == (*pages, oh, ow, c)
    np.testing.assert_allclose(got, reference_resize(x, oh, ow, method), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"height": 0, "width": 3}, r"`height` must be a positive integer; got 0"),
        ({"height": 3, "width": -1}, r"`width` must be a positive integer; got -1"),
        ({"height": 2.5, "width": 3}, r"`height` must be a positive integer; got 2\.5"),
        ({"height": True, "width": 3}, r"`height` must be a positive integer; got True"),
        ({"height": 2, "width": 3, "method": "cubic"},
         r"`method` must be one of \{'area', 'bilinear'\}; got 'cubic'"),
    ],
)  # fmt: skip
def test_resize_parameter_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        resize(np.zeros((4, 4, 1), np.uint8), **kwargs)


@pytest.mark.parametrize("shape", [(0, 4, 1), (3, 0, 2), (2, 0, 0, 1)])
def test_resize_of_an_empty_image_raises(shape):
    with pytest.raises(ValueError, match=r"at least one row and one column to resize"):
        resize(np.zeros(shape, np.float32), 2, 2)


def test_resize_of_zero_pages_gives_zero_pages():
    assert resize(np.zeros((0, 4, 4, 1), np.uint8), 2, 3).shape == (0, 2, 3, 1)


# --- image checks, shared by every function --------------------------------------------------

ALL = {
    "resize": lambda x: resize(x, 2, 2),
    "crop": lambda x: crop(x, 0, 0, 1, 1),
    "pad": lambda x: pad(x, 1, 1, 1, 1),
    "flip": lambda x: flip(x, "both"),
    "rotate90": lambda x: rotate90(x),
}


@pytest.mark.parametrize("dtype", BAD_DTYPES)
@pytest.mark.parametrize("name", ALL)
def test_unsupported_dtypes_raise_type_error(name, dtype):
    with pytest.raises(TypeError, match=rf"`img` dtype must be one of \{{uint8, uint16, int16, "
                       rf"int32, float32, float64\}}; got {dtype}"):  # fmt: skip
        ALL[name](np.zeros((3, 3, 1), dtype))


@pytest.mark.parametrize("name", ALL)
def test_bad_shapes_raise(name):
    with pytest.raises(ValueError, match=r"shape \(\.\.\., H, W, C\).*got shape \(3, 3\)"):
        ALL[name](np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match=r"at least one channel \(C >= 1\); got shape"):
        ALL[name](np.zeros((3, 3, 0), np.uint8))


# --- crop ---------------------------------------------------------------------------------


@pytest.mark.parametrize("layout_kind", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_crop_is_the_window(dtype, layout_kind):
    x = random_image((2, 6, 7, 3), dtype)
    view = layout(x, layout_kind)
    got = crop(view, 1, 2, 4, 5)
    np.testing.assert_array_equal(got, x[:, 1:5, 2:7, :])
    assert got.dtype == x.dtype
    assert_new_c_array(got, view)
    np.testing.assert_array_equal(crop(view, 0, 0, 6, 7), x)


def test_crop_hand_example():
    x = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    np.testing.assert_array_equal(crop(x, 1, 2, 2, 2)[..., 0], [[6, 7], [10, 11]])


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((-1, 0, 1, 1), r"`top` must be a non-negative integer; got -1"),
        ((0, -2, 1, 1), r"`left` must be a non-negative integer; got -2"),
        ((0, 0, 0, 1), r"`height` must be a positive integer; got 0"),
        ((0, 0, 1, 1.0), r"`width` must be a positive integer; got 1\.0"),
        ((3, 0, 4, 2), r"rows 3\.\.6 .*`top`=3, `height`=4.* inside the image of height 6 and "
                       r"width 5"),
        ((0, 4, 1, 2), r"columns 4\.\.5 .*`left`=4, `width`=2.* height 6 and width 5"),
    ],
)  # fmt: skip
def test_crop_errors(args, match):
    with pytest.raises(ValueError, match=match):
        crop(np.zeros((6, 5, 1), np.uint8), *args)


# --- pad ----------------------------------------------------------------------------------


@pytest.mark.parametrize("layout_kind", ["contiguous", "negative", "strided"])
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric", "wrap"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pad_matches_np_pad(dtype, mode, layout_kind):
    x = random_image((2, 4, 3, 2), dtype)
    view = layout(x, layout_kind)
    got = pad(view, 1, 5, 0, 4, mode=mode)  # wider than the image: repeated reflection
    widths = ((0, 0), (1, 5), (0, 4), (0, 0))
    np.testing.assert_array_equal(got, np.pad(x, widths, mode=mode))
    assert got.dtype == x.dtype
    assert_new_c_array(got, view)


def test_pad_hand_examples():
    x = np.array([[[1], [2], [3]]], dtype=np.uint8)
    np.testing.assert_array_equal(pad(x, 0, 0, 2, 2, mode="reflect")[0, :, 0],
                                  [3, 2, 1, 2, 3, 2, 1])  # fmt: skip
    np.testing.assert_array_equal(pad(x, 0, 0, 2, 2, mode="symmetric")[0, :, 0],
                                  [2, 1, 1, 2, 3, 3, 2])  # fmt: skip
    np.testing.assert_array_equal(pad(x, 0, 0, 1, 1, mode="wrap")[0, :, 0], [3, 1, 2, 3, 1])
    np.testing.assert_array_equal(pad(x, 1, 0, 0, 0, cval=9)[:, :, 0], [[9, 9, 9], [1, 2, 3]])


@pytest.mark.parametrize(
    ("dtype", "cval", "stored"),
    [("uint8", 3.5, 4), ("uint8", 2.5, 2), ("uint8", 300, 255), ("uint8", -1, 0),
     ("int16", -40000, -32768), ("uint8", float("nan"), 0), ("float32", float("nan"), np.nan),
     ("float64", -0.25, -0.25)],
)  # fmt: skip
def test_pad_cval_is_stored_by_the_policy(dtype, cval, stored):
    got = pad(np.ones((1, 1, 1), dtype), 0, 0, 0, 1, cval=cval)
    np.testing.assert_array_equal(got[0, :, 0], np.array([1, stored], dtype=dtype))


def test_pad_of_empty_images():
    got = pad(np.zeros((0, 3, 1), np.float32), 1, 1, 0, 0, cval=2)
    np.testing.assert_array_equal(got, np.full((2, 3, 1), 2, np.float32))
    assert pad(np.zeros((0, 3, 1), np.uint8), 0, 0, 1, 1, mode="edge").shape == (0, 5, 1)
    with pytest.raises(ValueError, match=r"`mode` 'edge' cannot extend an image with no rows"):
        pad(np.zeros((0, 3, 1), np.uint8), 1, 0, 0, 0, mode="edge")
    with pytest.raises(ValueError, match=r"`mode` 'wrap' cannot extend an image with no columns"):
        pad(np.zeros((2, 0, 1), np.uint8), 0, 0, 0, 1, mode="wrap")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"top": -1}, r"`top` must be a non-negative integer; got -1"),
        ({"bottom": 1.5}, r"`bottom` must be a non-negative integer; got 1\.5"),
        ({"left": -3}, r"`left` must be a non-negative integer; got -3"),
        ({"right": None}, r"`right` must be a non-negative integer; got None"),
        ({"mode": "mirror"}, r"`mode` must be one of \{'constant', 'edge', 'reflect', "
                             r"'symmetric', 'wrap'\}; got 'mirror'"),
        ({"cval": "zero"}, r"`cval` must be a number; got 'zero'"),
    ],
)  # fmt: skip
def test_pad_errors(kwargs, match):
    args = {"top": 1, "bottom": 1, "left": 1, "right": 1} | kwargs
    with pytest.raises(ValueError, match=match):
        pad(np.zeros((2, 2, 1), np.uint8), **args)


# --- flip and rotate90 ---------------------------------------------------------------------

FLIP_CV2 = {"horizontal": 1, "vertical": 0, "both": -1}


@pytest.mark.parametrize("layout_kind", LAYOUTS)
@pytest.mark.parametrize("direction", ["horizontal", "vertical", "both"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_flip_matches_np_flip_and_cv2(dtype, direction, layout_kind):
    x = random_image((2, 4, 5, 3), dtype)
    view = layout(x, layout_kind)
    got = flip(view, direction)
    axes = {"horizontal": (-2,), "vertical": (-3,), "both": (-3, -2)}[direction]
    np.testing.assert_array_equal(got, np.flip(x, axis=axes))
    assert_new_c_array(got, view)
    if dtype in ("uint8", "float32"):
        np.testing.assert_array_equal(got[0], cv2.flip(x[0], FLIP_CV2[direction]))


def test_flip_of_a_single_row_is_still_a_copy():
    x = np.arange(3, dtype=np.uint8).reshape(1, 3, 1)
    got = flip(x, "vertical")
    np.testing.assert_array_equal(got, x)
    assert not np.shares_memory(got, x)


CV2_ROTATIONS = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


@pytest.mark.parametrize("layout_kind", LAYOUTS)
@pytest.mark.parametrize("k", [-5, -1, 0, 1, 2, 3, 4, 7])
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float64"])
def test_rotate90_matches_cv2_page_by_page(dtype, k, layout_kind):
    x = random_image((2, 4, 5, 3), dtype)
    view = layout(x, layout_kind)
    got = rotate90(view, k)
    assert_new_c_array(got, view)
    turns = k % 4
    for page in range(2):
        want = x[page] if turns == 0 else cv2.rotate(x[page], CV2_ROTATIONS[turns])
        np.testing.assert_array_equal(got[page], want)


def test_rotate90_hand_example_is_counter_clockwise():
    x = np.array([[1, 2], [3, 4]], dtype=np.uint8)[..., None]
    np.testing.assert_array_equal(rotate90(x)[..., 0], [[2, 4], [1, 3]])
    np.testing.assert_array_equal(rotate90(x, -1)[..., 0], [[3, 1], [4, 2]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_flip_and_rotate_of_empty_images(dtype):
    x = np.zeros((0, 3, 2), dtype)
    assert flip(x, "both").shape == (0, 3, 2)
    assert rotate90(x).shape == (3, 0, 2)


def test_flip_and_rotate_errors():
    x = np.zeros((2, 2, 1), np.uint8)
    with pytest.raises(ValueError, match=r"`direction` must be one of \{'horizontal', "
                       r"'vertical', 'both'\}; got 'left'"):  # fmt: skip
        flip(x, "left")
    with pytest.raises(ValueError, match=r"`k` must be an integer; got 1\.5"):
        rotate90(x, 1.5)
    with pytest.raises(ValueError, match=r"`k` must be an integer; got True"):
        rotate90(x, True)
