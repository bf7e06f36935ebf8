"""Every registered op, run through a Pipeline, equals the function it stands for called
directly (npaccel.filters with axes=(1, 2) on the 4-D stack, or the _geometry/_exposure
function), for gray (H, W), RGB (H, W, 3) and (P, H, W, C) stacks of uint8 and float32."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import ndimage

from npaccel import backends
from npaccel import filters as F
from npaccel.filters._policy import store
from npaccel.image._ops import OPS, astype, resize_shape
from npaccel.image._pipeline import Pipeline, StepError

AXES = (1, 2)
LAYOUTS = {"gray": (9, 11), "rgb": (9, 11, 3), "stack": (2, 9, 11, 3)}
DTYPES = ("uint8", "float32")  # few dtypes: each compiles its own Numba kernels


def make_image(layout: str, dtype: str, seed: int = 0) -> np.ndarray:
    """Random data: uint8 over its full range, float32 in [0, 1)."""
    rng = np.random.default_rng(seed)
    shape = LAYOUTS[layout]
    if dtype == "uint8":
        return rng.integers(0, 255, size=shape, endpoint=True, dtype=np.uint8)
    return rng.random(shape, dtype=np.float32)


def as_stack(image: np.ndarray) -> np.ndarray:
    return {2: lambda a: a[None, :, :, None], 3: lambda a: a[None], 4: lambda a: a}[image.ndim](
        image
    )


def from_stack(stack: np.ndarray, ndim: int) -> np.ndarray:
    if ndim == 4:
        return stack
    out = stack[0]
    return out[..., 0] if out.shape[-1] == 1 else out


def _module(name: str):
    return importlib.import_module(f"npaccel.image.{name}")


def ex(name: str, *args, **kwargs) -> Callable[[np.ndarray], np.ndarray]:
    """Expected result: ``npaccel.image._exposure.<name>(stack, *args, **kwargs)``."""
    return lambda x: getattr(_module("_exposure"), name)(x, *args, **kwargs)


def geo(name: str, *args, **kwargs) -> Callable[[np.ndarray], np.ndarray]:
    """Expected result: ``npaccel.image._geometry.<name>(stack, *args, **kwargs)``."""
    return lambda x: getattr(_module("_geometry"), name)(x, *args, **kwargs)


def filt(name: str, *args, **kwargs) -> Callable[[np.ndarray], np.ndarray]:
    """Expected result: ``npaccel.filters.<name>(stack, *args, axes=(1, 2), **kwargs)``."""
    return lambda x: getattr(F, name)(x, *args, axes=AXES, **kwargs)


def magnitude(name: str, **kwargs) -> Callable[[np.ndarray], np.ndarray]:
    """Expected result: npaccel.filters.gradient_magnitude over rows and columns (its own
    tests hold it to scipy.ndimage.generic_gradient_magnitude; here, against scipy in
    float64 below)."""
    return lambda x: F.gradient_magnitude(x, name, axes=AXES, **kwargs)


def stored(dtype: str) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: store(x.astype(np.float64), np.empty(x.shape, dtype))


@dataclass(frozen=True)
class Case:
    text: str
    expect: Callable[[np.ndarray], np.ndarray]
    layouts: tuple[str, ...] = tuple(LAYOUTS)
    dtypes: tuple[str, ...] = DTYPES
    needs: str | None = None  # the module the op calls, if not npaccel.filters

    @property
    def op(self) -> str:
        return Pipeline.parse(self.text)[0].op


LAPLACE_3x3 = [[0, 1, 0], [1, -4, 1], [0, 1, 0]]
RGB = ("rgb", "stack")
EX, GEO = "_exposure", "_geometry"

CASES = [
    Case("gaussian 1.5 mode=nearest", filt("gaussian_filter", 1.5, mode="nearest")),
    Case("gaussian sigma=1 order=1 mode=constant cval=7 truncate=3",
         filt("gaussian_filter", 1.0, order=1, mode="constant", cval=7.0, truncate=3.0)),
    Case("gaussian 2 radius=2 mode=grid-wrap", filt("gaussian_filter", 2.0, radius=2,
                                                    mode="grid-wrap")),
    Case("uniform 5 mode=wrap", filt("uniform_filter", 5, mode="wrap")),
    Case("median", filt("median_filter", 3)),
    Case("minimum 2", filt("minimum_filter", 2)),
    Case("maximum size=3 mode=constant cval=9", filt("maximum_filter", 3, mode="constant",
                                                     cval=9.0)),
    Case("percentile 25 size=3 mode=mirror", filt("percentile_filter", 25.0, 3,
                                                  mode="mirror")),
    Case("rank -2", filt("rank_filter", -2, 3)),
    Case("sobel", magnitude("sobel")),
    Case("sobel mode=constant cval=3", magnitude("sobel", mode="constant", cval=3.0)),
    Case("sobel axis=x", filt("sobel", axis=2)),
    Case("sobel axis=y mode=nearest", filt("sobel", axis=1, mode="nearest")),
    Case("prewitt", magnitude("prewitt")),
    Case("prewitt axis=y", filt("prewitt", axis=1)),
    Case("laplace mode=mirror", filt("laplace", mode="mirror")),
    Case("gaussian_laplace 1", filt("gaussian_laplace", 1.0)),
    Case("gaussian_gradient_magnitude 1 truncate=3",
         filt("gaussian_gradient_magnitude", 1.0, truncate=3.0)),
    Case("correlate " + str(LAPLACE_3x3).replace(" ", ""),
         filt("correlate", np.array(LAPLACE_3x3, float))),
    Case("convolve [[1,2],[3,4],[5,6]] mode=constant cval=1",
         filt("convolve", np.array([[1.0, 2], [3, 4], [5, 6]]), mode="constant", cval=1.0)),
    Case("astype uint8", stored("uint8")),
    Case("astype float32", lambda x: x.astype(np.float32)),
    Case("astype int16", lambda x: np.clip(np.rint(x.astype(np.float64)), -32768,
                                          32767).astype(np.int16)),
    Case("grayscale", ex("grayscale", weights="bt601"), layouts=RGB, needs=EX),
    Case("grayscale bt709", ex("grayscale", weights="bt709"), layouts=RGB, needs=EX),
    Case("to_float", ex("to_float", dtype="float32", max_value=None), dtypes=("uint8",),
         needs=EX),
    Case("to_float float64 max_value=100", ex("to_float", dtype="float64", max_value=100.0),
         dtypes=("uint8",), needs=EX),
    Case("from_float uint16", ex("from_float", dtype="uint16", max_value=None),
         dtypes=("float32",), needs=EX),
    Case("rescale 0 255", ex("rescale", out_min=0.0, out_max=255.0, in_min=None, in_max=None),
         needs=EX),
    Case("rescale out_min=-1 in_min=0 in_max=2", ex("rescale", out_min=-1.0, out_max=1.0,
                                                    in_min=0.0, in_max=2.0), needs=EX),
    Case("normalize", ex("normalize", mean=None, std=None), needs=EX),
    Case("normalize 0.5 2", ex("normalize", mean=0.5, std=2.0), needs=EX),
    Case("normalize mean=0.4,0.5,0.6 std=[2,3,4]",
         ex("normalize", mean=(0.4, 0.5, 0.6), std=(2.0, 3.0, 4.0)), layouts=RGB, needs=EX),
    Case("clip 10 200", ex("clip", lo=10.0, hi=200.0), dtypes=("uint8",), needs=EX),
    Case("clip lo=0.25", ex("clip", lo=0.25, hi=None), dtypes=("float32",), needs=EX),
    Case("threshold 0.5", ex("threshold", value=0.5, method=None, high=None),
         dtypes=("float32",), needs=EX),
    Case("threshold 128 high=255", ex("threshold", value=128.0, method=None, high=255.0),
         dtypes=("uint8",), needs=EX),
    Case("threshold method=otsu", ex("threshold", value=None, method="otsu", high=None),
         needs=EX),
    Case("invert", ex("invert"), needs=EX),
    Case("equalize", ex("equalize", bins=None), needs=EX),
    Case("equalize bins=64", ex("equalize", bins=64), dtypes=("float32",), needs=EX),
    Case("gamma 2.2 gain=0.5", ex("gamma", 2.2, gain=0.5), needs=EX),
    Case("unsharp sigma=1.5 amount=0.5 threshold=0.01",
         ex("unsharp_mask", sigma=1.5, amount=0.5, threshold=0.01), needs=EX),
    Case("channels 2,1,0", ex("select_channels", (2, 1, 0)), layouts=RGB, needs=EX),
    Case("channels [0]", ex("select_channels", (0,)), needs=EX),
    Case("channels -1,0", ex("select_channels", (-1, 0)), needs=EX),
    Case("stack 3", ex("stack_channels", 3), layouts=("gray",), needs=EX),
    Case("resize width=22", geo("resize", 18, 22, method="area"), needs=GEO),
    Case("resize factor=0.5 method=bilinear", geo("resize", 4, 6, method="bilinear"),
         needs=GEO),
    Case("resize fx=2", geo("resize", 9, 22, method="area"), needs=GEO),
    Case("resize 5 4", geo("resize", 4, 5, method="area"), needs=GEO),
    Case("crop 1 2 5 6", geo("crop", 1, 2, 5, 6), needs=GEO),
    Case("pad all=2 top=1 mode=reflect", geo("pad", 1, 2, 2, 2, mode="reflect", cval=0.0),
         needs=GEO),
    Case("pad left=3 cval=7", geo("pad", 0, 0, 3, 0, mode="constant", cval=7.0), needs=GEO),
    Case("flip horizontal", geo("flip", "horizontal"), needs=GEO),
    Case("flip both", geo("flip", "both"), needs=GEO),
    Case("rotate90", geo("rotate90", k=1), needs=GEO),
    Case("rotate90 -1", geo("rotate90", k=-1), needs=GEO),
]  # fmt: skip

GRID = [
    pytest.param(case, layout, dtype, id=f"{case.text}-{layout}-{dtype}")
    for case in CASES
    for layout in case.layouts
    for dtype in case.dtypes
]


def _skip_unless(case: Case) -> None:
    if case.needs is not None:
        pytest.importorskip(f"npaccel.image.{case.needs}")


def test_every_registered_op_has_a_case():
    covered = {case.op for case in CASES}
    assert covered == set(OPS), f"ops without a test case: {sorted(set(OPS) - covered)}"


@pytest.mark.parametrize(("case", "layout", "dtype"), GRID)
def test_op_equals_the_function_called_directly(case, layout, dtype):
    _skip_unless(case)
    image = make_image(layout, dtype)
    pipeline = Pipeline.parse(case.text)
    want = case.expect(as_stack(image))
    frozen = image.copy()
    frozen.flags.writeable = False  # ops never write into their input (the runner relies on it)
    got = pipeline(frozen)
    np.testing.assert_array_equal(got, from_stack(want, image.ndim))
    assert got.flags.writeable
    assert got.dtype == want.dtype
    assert got.shape == from_stack(want, image.ndim).shape
    np.testing.assert_array_equal(pipeline.apply(as_stack(image)), want)


# --------------------------------------------------------------------------- filters


def test_filters_run_over_rows_and_columns_only():
    gray, rgb = make_image("gray", "float32"), make_image("rgb", "float32")
    p = Pipeline.parse("gaussian 1.5 mode=nearest")
    np.testing.assert_array_equal(p(gray), F.gaussian_filter(gray, 1.5, mode="nearest"))
    np.testing.assert_array_equal(p(rgb), F.gaussian_filter(rgb, 1.5, mode="nearest",
                                                            axes=(0, 1)))  # fmt: skip
    np.testing.assert_array_equal(Pipeline.parse("median")(rgb),
                                  ndimage.median_filter(rgb, size=(3, 3, 1)))  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sobel", "prewitt"])
def test_edge_magnitude_against_scipy_float64(name, dtype):
    rgb = make_image("rgb", dtype, seed=1)
    x64 = rgb.astype(np.float64)
    edge = getattr(ndimage, name)
    mag = np.stack([np.hypot(edge(x64[..., c], axis=0), edge(x64[..., c], axis=1))
                    for c in range(3)], axis=-1)  # fmt: skip
    want = store(mag, np.empty(rgb.shape, rgb.dtype))
    got = Pipeline.parse(name)(rgb)
    assert got.dtype == rgb.dtype
    if dtype == "uint8":  # float32 arithmetic may round the other way at a near-.5 value
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
        assert (got == want).mean() > 0.95
    else:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    signed = store(np.stack([edge(x64[..., c], axis=1) for c in range(3)], axis=-1),
                   np.empty(rgb.shape, rgb.dtype))  # fmt: skip
    got_x = Pipeline.parse(f"{name} axis=x")(rgb)
    assert np.abs(got_x.astype(float) - signed.astype(float)).max() <= (
        1 if dtype == "uint8" else 1e-5)  # fmt: skip


def test_sobel_of_float64_is_computed_in_float64():
    gray = np.random.default_rng(2).random((9, 11))
    want = np.hypot(ndimage.sobel(gray, axis=0), ndimage.sobel(gray, axis=1))
    np.testing.assert_allclose(Pipeline.parse("sobel")(gray), want, rtol=1e-12, atol=1e-13)


FILTER_CASES = [case for case in CASES if case.needs is None and case.op != "astype"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", FILTER_CASES, ids=[c.text for c in FILTER_CASES])
def test_numpy_backend_agrees_with_cpu(case, dtype):
    stack = make_image("stack", dtype, seed=3)
    p = Pipeline.parse(case.text)
    cpu, ref = p.apply(stack, backend="cpu"), p.apply(stack, backend="numpy")
    assert cpu.dtype == ref.dtype == stack.dtype
    if dtype == "uint8":  # integers: rounded the other way only at near-.5 values
        assert np.abs(cpu.astype(int) - ref.astype(int)).max() <= 1
    else:
        scale = 1 + np.abs(ref).max()
        np.testing.assert_allclose(cpu, ref, rtol=1e-5, atol=1e-6 * scale)


def test_unknown_backend_fails_before_any_step():
    with pytest.raises(backends.BackendError, match=r"`backend` must be one of \['cpu', "
                       r"'cuda', 'dask', 'numpy'\] for filters; got 'opencl'"):  # fmt: skip
        Pipeline.parse("gaussian 1").apply(np.zeros((1, 4, 4, 1), np.float32), backend="opencl")


# --------------------------------------------------------------------------- astype


@pytest.mark.parametrize(
    ("values", "dtype", "want"),
    [
        (np.array([np.nan, np.inf, -np.inf, -3.5, 2.5, 3.5, 255.5, 300], np.float32), "uint8",
         [0, 255, 0, 0, 2, 4, 255, 255]),
        (np.array([-40000.0, 1.5, -0.5, 40000.0]), "int16", [-32768, 2, 0, 32767]),
        (np.array([-5, 7, 300], np.int16), "uint8", [0, 7, 255]),
        (np.array([0, 40000], np.uint16), "int16", [0, 32767]),
        (np.array([-1, 70000], np.int32), "uint16", [0, 65535]),
        (np.array([0, 255], np.uint8), "int32", [0, 255]),
        (np.array([True, False]), "uint8", [1, 0]),
        (np.array([1.5, -2], np.float32), "float64", [1.5, -2.0]),
        (np.array([3, 4], np.uint16), "float32", [3.0, 4.0]),
    ],
)  # fmt: skip
def test_astype_rounds_half_to_even_and_saturates(values, dtype, want):
    got = astype(values, dtype)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, np.array(want, dtype))


def test_astype_overflow_to_inf_without_warning_and_copies():
    np.testing.assert_array_equal(astype(np.array([1e39, -1e39]), "float32"), [np.inf, -np.inf])
    x = np.ones(3, np.float32)
    y = astype(x, "float32")
    assert y is not x
    np.testing.assert_array_equal(y, x)


# --------------------------------------------------------------------------- resize sizes


@pytest.mark.parametrize(
    ("params", "want"),
    [
        ({"width": 22}, (18, 22)),
        ({"height": 3}, (3, 4)),
        ({"width": 5, "height": 4}, (4, 5)),
        ({"factor": 0.5}, (4, 6)),
        ({"fx": 2.0}, (9, 22)),
        ({"fy": 0.01}, (1, 11)),
        ({"fx": 0.5, "fy": 3.0}, (27, 6)),
    ],
)
def test_resize_shape(params, want):
    assert resize_shape(9, 11, params) == want


# --------------------------------------------------------------------------- layouts, errors


@pytest.mark.parametrize(
    ("shape", "want"),
    [((9, 11), (9, 11)), ((9, 11, 1), (9, 11)), ((9, 11, 3), (9, 11, 3)),
     ((2, 9, 11, 1), (2, 9, 11, 1)), ((2, 9, 11, 3), (2, 9, 11, 3))],
)  # fmt: skip
def test_call_layout_rules(shape, want):
    image = np.zeros(shape, np.float32)
    assert Pipeline.parse("gaussian 1")(image).shape == want


def test_call_layout_rules_with_channel_changes():
    pytest.importorskip("npaccel.image._exposure")
    assert Pipeline.parse("grayscale")(make_image("rgb", "uint8")).shape == (9, 11)
    assert Pipeline.parse("stack 3")(make_image("gray", "uint8")).shape == (9, 11, 3)
    assert Pipeline.parse("grayscale")(make_image("stack", "uint8")).shape == (2, 9, 11, 1)


def test_layout_errors():
    p = Pipeline.parse("gaussian 1")
    with pytest.raises(ValueError, match=r"`image` must be 2-D \(H, W\), 3-D \(H, W, C\) or "
                       r"4-D \(P, H, W, C\); got shape \(5,\)"):  # fmt: skip
        p(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"`stack` must be 4-D \(pages, rows, columns, "
                       r"channels\) with at least one channel; got shape \(4, 4, 1\)"):  # fmt: skip
        p.apply(np.zeros((4, 4, 1), np.float32))
    with pytest.raises(ValueError, match="with at least one channel; got shape"):
        p.apply(np.zeros((1, 4, 4, 0), np.float32))


def test_step_errors_name_the_step_and_wrap_the_cause():
    with pytest.raises(StepError, match=r"^step 1 \(gaussian\): `input` dtype must be") as info:
        Pipeline.parse("gaussian 1")(np.zeros((4, 4), bool))
    assert isinstance(info.value.__cause__, TypeError)
    assert (info.value.step, info.value.op) == (1, "gaussian")
    with pytest.raises(StepError, match=r"^step 2 \(astype\): cannot convert complex data"):
        Pipeline.parse("sobel axis=x | astype uint8")(np.zeros((4, 4), np.complex128))


def test_step_errors_from_geometry_and_exposure():
    pytest.importorskip("npaccel.image._geometry")
    pytest.importorskip("npaccel.image._exposure")
    rgb = make_image("rgb", "uint8")
    with pytest.raises(StepError, match=r"^step 2 \(crop\): ") as info:
        Pipeline.parse("invert | crop 0 0 20 20")(rgb)
    assert isinstance(info.value.__cause__, ValueError)
    with pytest.raises(StepError, match=r"^step 1 \(channels\): "):
        Pipeline.parse("channels 5")(rgb)
