"""The numeric policy (npaccel.filters._policy), for every dtype, with hand-written values:
integer results rounded half to even and saturated, NaN -> 0; float32 computed in float32,
float64 in float64; NaN and inf propagate in linear filters; complex via the reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from conftest import check_against_reference
from npaccel import filters
from npaccel.filters import _policy

INTEGERS = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64")


# --------------------------------------------------------------------------- store()

# float64 values and what each integer type stores: rint (ties to even), then saturate
VALUES = [-0.5, 0.5, 1.5, 2.5, -1.5, -2.5, 126.5, 127.5, 254.5, 255.5, 1e6, -1e6, np.nan,
          np.inf, -np.inf]  # fmt: skip
STORED = {
    "uint8": [0, 0, 2, 2, 0, 0, 126, 128, 254, 255, 255, 0, 0, 255, 0],
    "int8": [0, 0, 2, 2, -2, -2, 126, 127, 127, 127, 127, -128, 0, 127, -128],
    "uint16": [0, 0, 2, 2, 0, 0, 126, 128, 254, 256, 65535, 0, 0, 65535, 0],
    "int16": [0, 0, 2, 2, -2, -2, 126, 128, 254, 256, 32767, -32768, 0, 32767, -32768],
    "uint32": [0, 0, 2, 2, 0, 0, 126, 128, 254, 256, 10**6, 0, 0, 2**32 - 1, 0],
    "int32": [0, 0, 2, 2, -2, -2, 126, 128, 254, 256, 10**6, -(10**6), 0, 2**31 - 1, -(2**31)],
    # float64 cannot hold 2**64 - 1 or 2**63 - 1: the largest float64 below them
    "uint64": [0, 0, 2, 2, 0, 0, 126, 128, 254, 256, 10**6, 0, 0, 2**64 - 2048, 0],
    "int64": [0, 0, 2, 2, -2, -2, 126, 128, 254, 256, 10**6, -(10**6), 0, 2**63 - 1024,
              -(2**63)],
}  # fmt: skip


@pytest.mark.parametrize("dtype", INTEGERS)
def test_store_rounds_half_to_even_and_saturates(dtype):
    out = np.empty(len(VALUES), dtype=dtype)
    assert _policy.store(np.array(VALUES), out) is out
    np.testing.assert_array_equal(out, np.array(STORED[dtype], dtype=dtype))


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_store_casts_floats(dtype):
    values = np.array([v for v in VALUES if abs(v) != 1e6])  # 1e6 overflows float16
    out = np.empty(len(values), dtype=dtype)
    _policy.store(values, out)
    np.testing.assert_array_equal(out, values.astype(dtype))


def test_store_refuses_complex_into_float():
    with pytest.raises(TypeError, match=r"`output` dtype float64 cannot hold complex"):
        _policy.store(np.array([1 + 1j]), np.empty(1))


def test_store_refuses_complex_into_integer():
    with pytest.raises(TypeError, match=r"`output` dtype uint8 cannot hold complex"):
        _policy.store(np.array([1 + 1j]), np.empty(1, np.uint8))


COMPUTE = {  # input dtype -> accumulation type, output of the same dtype
    "uint8": "float32", "int8": "float32", "uint16": "float32", "int16": "float32",
    "float16": "float32", "float32": "float32",
    "uint32": "float64", "int32": "float64", "uint64": "float64", "int64": "float64",
    "float64": "float64", "complex64": "complex128", "complex128": "complex128",
}  # fmt: skip


@pytest.mark.parametrize("dtype", COMPUTE)
def test_compute_dtype_table(dtype):
    dtype = np.dtype(dtype)
    assert _policy.compute_dtype(dtype, dtype) == np.dtype(COMPUTE[dtype.name])
    # a float64 output always computes in float64 (or complex128)
    wide = _policy.compute_dtype(dtype, np.dtype(np.float64))
    assert wide == np.dtype("complex128" if dtype.kind == "c" else "float64")


# --------------------------------------------------------------------------- through the filters

SIGNED_AND_UNSIGNED = ("uint8", "uint16", "int16", "int32", "int8", "int64")


def test_saturates_instead_of_wrapping(backend):
    x = np.array([200, 200, 200], dtype=np.uint8)
    result = filters.correlate1d(x, [1, 1, 0], backend=backend)
    np.testing.assert_array_equal(result, [255, 255, 255])  # scipy.ndimage wraps to 144
    assert result.dtype == np.uint8


@pytest.mark.parametrize("dtype", SIGNED_AND_UNSIGNED)
def test_negative_results_saturate_for_unsigned(backend, dtype):
    x = np.array([10, 20, 30], dtype=dtype)
    result = filters.correlate1d(x, [0, -1, 0], backend=backend)
    expected = [0, 0, 0] if dtype.startswith("u") else [-10, -20, -30]
    np.testing.assert_array_equal(result, np.array(expected, dtype=dtype))


@pytest.mark.parametrize("dtype", SIGNED_AND_UNSIGNED)
def test_halves_round_to_even(backend, dtype):
    # (x[i-1] + x[i]) / 2 is an exact .5 in float32 and float64 alike
    x = np.array([1, 2, 3, 4, 7, 8], dtype=dtype)
    result = filters.correlate1d(x, [0.5, 0.5, 0.0], backend=backend)
    np.testing.assert_array_equal(result, np.array([1, 2, 2, 4, 6, 8], dtype=dtype))
    if not dtype.startswith("u"):
        result = filters.correlate1d(-x, [0.5, 0.5, 0.0], backend=backend)
        np.testing.assert_array_equal(result, np.array([-1, -2, -2, -4, -6, -8], dtype=dtype))


@pytest.mark.parametrize("dtype", SIGNED_AND_UNSIGNED)
def test_saturates_at_both_ends_of_the_type(backend, dtype):
    info = np.iinfo(dtype)
    x = np.array([info.max, info.max, info.min, info.min], dtype=dtype)
    result = filters.correlate1d(x, [0.0, 3.0, 0.0], backend=backend)
    # 3 * max saturates to max, 3 * min to min (int64: to the largest float64 below 2**63)
    top = 2**63 - 1024 if dtype == "int64" else info.max
    np.testing.assert_array_equal(result, np.array([top, top, info.min, info.min], dtype=dtype))


def test_float_to_integer_output_nan_and_inf(backend):
    x = np.array([np.nan, 1.4, np.inf, -np.inf, 300.0, -5.0, 2.5])
    result = filters.correlate1d(x, [1.0], output=np.uint8, backend=backend)
    np.testing.assert_array_equal(result, np.array([0, 1, 255, 0, 255, 0, 2], dtype=np.uint8))


@pytest.mark.parametrize(
    ("dtype", "output", "float64_sum"),
    [
        ("uint16", None, False),
        ("float32", None, False),
        ("int32", None, True),  # 32-bit integers compute in float64
        ("float64", None, True),
        ("float32", np.float64, True),  # a float64 output computes in float64
    ],
)
def test_accumulation_type_on_cpu(dtype, output, float64_sum):
    # 1e4 * 65535 + 3 - 1e4 * 65535: exactly 3 in float64 whatever the order of the terms;
    # in float32 (spacing 64 at 6.5e8) taken term by term the 3 is lost
    x = np.array([65535, 3, 65535], dtype=dtype)
    result = filters.correlate1d(x, [1e4, 1.0, -1e4], output=output, mode="constant")
    assert result.dtype == np.dtype(output or dtype)
    assert bool(result[1] == 3) is float64_sum, result


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_reference_backend_computes_in_float64(dtype):
    x = np.array([65535, 3, 65535], dtype=dtype)
    result = filters.correlate1d(x, [1e4, 1.0, -1e4], mode="constant", backend="numpy")
    assert result[1] == 3


@pytest.mark.parametrize(
    "dtype",
    [*INTEGERS, "float32", "float64", "complex64", "complex128", "float16"],
)
def test_result_has_the_input_dtype(backend, dtype):
    x = np.arange(7).astype(dtype)
    result = filters.correlate1d(x, [0.5, 0.25, 0.25], backend=backend)
    assert result.dtype == np.dtype(dtype)
    expected = np.array([0.25, 0.75, 1.75, 2.75, 3.75, 4.75, 5.5])
    if result.dtype.kind in "iu":
        expected = np.array([0, 1, 2, 3, 4, 5, 6])  # 5.5 rounds to even
    np.testing.assert_array_equal(result, expected.astype(dtype))
    if dtype not in {"float16", "complex64", "complex128"}:
        assert filters.median_filter(x[None], (1, 3), backend=backend).dtype == np.dtype(dtype)


@pytest.mark.parametrize(
    ("name", "args"),
    [("gaussian_filter", (1.0,)), ("sobel", ()), ("gaussian_gradient_magnitude", (1.0,)),
     ("correlate", (np.arange(9.0).reshape(3, 3) - 4,)), ("uniform_filter1d", (3,))],
)  # fmt: skip
@pytest.mark.parametrize("output", [None, np.float16, np.float32, np.uint8])
def test_float16_linear_filters(backend, name, args, output):
    # float16 in (computed in float32), and float16 out (cast once at the end)
    x = np.linspace(-3, 3, 20, dtype=np.float16).reshape(4, 5)[:, ::-1]
    check_against_reference(name, x, *args, output=output, backend=backend)


@pytest.mark.parametrize("name", ["uniform_filter1d", "laplace", "correlate"])
def test_float16_output(backend, name):
    x = np.arange(10, dtype=np.uint8).reshape(2, 5)
    args = {"uniform_filter1d": (3,), "laplace": (), "correlate": (np.ones((2, 3)),)}[name]
    check_against_reference(name, x, *args, output=np.float16, backend=backend)


@pytest.mark.parametrize("dtype", ["float16", "uint8", "int16"])
def test_rank_filters_on_float16_and_into_other_types(backend, dtype):
    x = np.linspace(-3, 3, 20).astype(dtype).reshape(4, 5)
    check_against_reference("median_filter", x, size=3, backend=backend)
    check_against_reference("maximum_filter", x, size=(2, 3), output=np.float32, backend=backend)
    check_against_reference("rank_filter", x, 1, footprint=[[1, 0], [1, 1]], output=np.int8,
                            mode="constant", cval=-200, backend=backend)  # fmt: skip


# --------------------------------------------------------------------------- NaN and inf

NAN_INF_CASES = [
    ("correlate1d", ([0.5, -1.0, 0.0, 2.0],), {}),
    ("correlate1d", ([1.0, 2.0, 1.0],), {"axis": 0, "mode": "constant"}),
    ("convolve1d", ([1.0, 0.0, -1.0],), {}),
    ("correlate", (np.array([[0.0, 1.0], [-2.0, 0.5]]),), {"mode": "wrap"}),
    ("gaussian_filter", (1.0,), {}),
    ("gaussian_filter1d", (0.7,), {"order": 1, "mode": "mirror"}),
    ("sobel", (), {}),
    ("laplace", (), {"mode": "nearest"}),
    ("gaussian_laplace", (0.8,), {}),
    ("gaussian_gradient_magnitude", (0.8,), {}),
]


def _nan_inf_image(dtype):
    x = np.arange(48, dtype=dtype).reshape(6, 8)
    x[1, 2] = np.nan
    x[4, 6] = np.inf
    x[4, 1] = -np.inf
    return x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "args", "kwargs"), NAN_INF_CASES, ids=lambda v: str(v)[:20])
def test_nan_and_inf_propagate_as_scipy(backend, name, args, kwargs, dtype):
    x = _nan_inf_image(dtype)
    result = check_against_reference(name, x, *args, backend=backend, **kwargs)
    assert np.isnan(result).any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_and_inf_stay_in_the_window_of_uniform_filter(backend, dtype):
    # scipy.ndimage.uniform_filter sums with a running total, so after an inf has passed
    # (inf - inf) the rest of the line is NaN there; npaccel follows the definition (a
    # correlation with the box), like scipy.ndimage.correlate1d
    x = _nan_inf_image(dtype)
    result = filters.uniform_filter(x, 3, backend=backend)
    box = np.ones(3) / 3
    expected = ndimage.correlate1d(ndimage.correlate1d(x.astype(np.float64), box, axis=0), box,
                                   axis=1)  # fmt: skip
    np.testing.assert_array_equal(np.isnan(result), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(result), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(result), np.isneginf(expected))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(result[finite], expected[finite], rtol=1e-5)
    assert np.isfinite(result[0, 5:]).all()  # windows free of NaN and inf stay finite


# --------------------------------------------------------------------------- complex


@pytest.mark.parametrize("name", ["correlate1d", "uniform_filter", "gaussian_filter", "sobel"])
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_linear_filters(backend, name, dtype):
    x = (np.arange(20) + 1j * np.arange(20)[::-1]).reshape(4, 5).astype(dtype)
    args = {"correlate1d": ([1.0, -2.0, 0.5],), "uniform_filter": (3,),
            "gaussian_filter": (0.8,), "sobel": ()}[name]  # fmt: skip
    check_against_reference(name, x, *args, backend=backend)
    # complex results into a float output are refused
    with pytest.raises(TypeError, match=r"`output` dtype float64 cannot hold complex results"):
        getattr(filters, name)(x, *args, output=np.float64, backend=backend)


@pytest.mark.parametrize(
    "backend_name",
    [
        "cpu",
        "numpy",
    ],
)
def test_real_input_into_complex_output(backend_name):
    x = np.arange(10, dtype=np.float64)
    result = filters.uniform_filter1d(x, 3, output=np.complex128, backend=backend_name)
    assert result.dtype == np.complex128
    np.testing.assert_allclose(result.real, filters.uniform_filter1d(x, 3, backend="numpy"))
    assert not result.imag.any()


def test_non_native_byte_order_input(backend):
    x = np.arange(8, dtype=">f8")
    expected = filters.uniform_filter1d(x.astype(np.float64), 3, backend=backend)
    result = filters.uniform_filter1d(x, 3, backend=backend)
    np.testing.assert_array_equal(result, expected)
