"""Properties every backend must have, whatever the reference says: constant in -> constant
out, delta in -> kernel out, `output=` filled and returned, thread count and `axes` batching
do not change results, and Hypothesis-drawn shapes, views and parameters match the oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import (
    MODES,
    RANK_FILTERS,
    check_against_reference,
    make_input,
)
from npaccel import filters
from npaccel.threads import set_threads

# name -> (args, kwargs) of one representative call on 2-D data
CALLS = {
    "correlate1d": (([0.25, 0.5, 0.25],), {}),
    "convolve1d": (([1.0, 2.0, -1.0, 0.5],), {"axis": 0}),
    "correlate": ((np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 3.0]]),), {}),
    "convolve": ((np.array([[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]]),), {"origin": (0, 1)}),
    "uniform_filter1d": ((4,), {"origin": -1}),
    "uniform_filter": (((3, 2),), {}),
    "gaussian_filter1d": ((1.0,), {"axis": 0}),
    "gaussian_filter": ((0.8,), {}),
    "gaussian_laplace": ((0.8,), {}),
    "gaussian_gradient_magnitude": ((0.8,), {}),
    "laplace": ((), {}),
    "sobel": ((), {"axis": 0}),
    "prewitt": ((), {}),
    "minimum_filter1d": ((3,), {}),
    "maximum_filter1d": ((4,), {"axis": 0, "origin": 1}),
    "minimum_filter": ((), {"size": (2, 3)}),
    "maximum_filter": ((), {"footprint": [[1, 0, 1], [0, 1, 1]]}),
    "median_filter": ((), {"size": 3}),
    "rank_filter": ((-2,), {"footprint": [[1, 1, 0], [0, 1, 1]]}),
    "percentile_filter": ((30,), {"size": (3, 2)}),
}
SMOOTHING = ("correlate1d", "uniform_filter1d", "uniform_filter", "gaussian_filter1d",
             "gaussian_filter")  # fmt: skip
DERIVATIVES = ("gaussian_laplace", "gaussian_gradient_magnitude", "laplace", "sobel", "prewitt")


def call(name, x, backend, **extra):
    args, kwargs = CALLS[name]
    return getattr(filters, name)(x, *args, backend=backend, **(kwargs | extra))


# --------------------------------------------------------------------------- constant images


@pytest.mark.parametrize("mode", [m for m in MODES if m != "constant"])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_constant_image_stays_constant(backend, dtype, mode):
    x = np.full((5, 6), 77, dtype=dtype)
    for name in (*SMOOTHING, *RANK_FILTERS):
        result = call(name, x, backend, mode=mode)
        np.testing.assert_allclose(result, x, rtol=1e-6, err_msg=name)
        if dtype == "uint8" or name in RANK_FILTERS:
            np.testing.assert_array_equal(result, x, err_msg=name)
    for name in DERIVATIVES:
        result = call(name, x, backend, mode=mode)
        # constant, and zero where the kernel sums to zero exactly (the sampled Gaussian
        # second derivative sums to a little below zero, as in scipy)
        np.testing.assert_allclose(result, result.flat[0], atol=1e-4, err_msg=name)
        if name in {"laplace", "sobel", "prewitt"}:
            np.testing.assert_array_equal(result, 0, err_msg=name)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_constant_image_with_constant_mode_stays_constant_inside(backend, dtype):
    x = np.full((13, 15), 77, dtype=dtype)
    inside = (slice(4, -4), slice(4, -4))  # no window of these calls reaches the edge
    for name in (*SMOOTHING, *DERIVATIVES, *RANK_FILTERS):
        result = call(name, x, backend, mode="constant", cval=200)
        reflected = call(name, x, backend, mode="reflect")
        np.testing.assert_array_equal(result[inside], reflected[inside], err_msg=name)
    # ... while the edges see cval
    assert (filters.uniform_filter(x, 3, mode="constant", cval=200, backend=backend) > 77).any()


# --------------------------------------------------------------------------- delta images


def _delta(shape, dtype=np.float64):
    x = np.zeros(shape, dtype=dtype)
    x[tuple(s // 2 for s in shape)] = 1
    return x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(3, 3), (2, 4), (3, 4), (1, 5)])
def test_delta_gives_flipped_kernel_for_correlate_and_kernel_for_convolve(backend, shape, dtype):
    w = (np.arange(np.prod(shape)) + 1.0).reshape(shape)
    x = _delta((11, 12), dtype)
    c = np.array(x.shape) // 2
    corr = filters.correlate(x, w, mode="constant", backend=backend)
    conv = filters.convolve(x, w, mode="constant", backend=backend)
    half = np.array(shape) // 2
    # correlate: out[c + half - j] = w[j]; convolve: out[c - half + j] = w[j]
    lo = c + half - np.array(shape) + 1
    window = tuple(slice(a, a + s) for a, s in zip(lo, shape, strict=True))
    np.testing.assert_array_equal(corr[window], w[::-1, ::-1])
    window = tuple(slice(a, a + s) for a, s in zip(c - half, shape, strict=True))
    np.testing.assert_array_equal(conv[window], w)
    assert corr.sum() == conv.sum() == w.sum()  # nothing else is non-zero


@pytest.mark.parametrize("length", [1, 2, 3, 4, 5])
def test_delta_in_1d(backend, length):
    w = np.arange(1.0, length + 1)
    x = _delta((9,))
    corr = filters.correlate1d(x, w, mode="constant", backend=backend)
    conv = filters.convolve1d(x, w, mode="constant", backend=backend)
    half = length // 2
    np.testing.assert_array_equal(corr[4 + half - length + 1 : 4 + half + 1], w[::-1])
    np.testing.assert_array_equal(conv[4 - half : 4 - half + length], w)


@pytest.mark.parametrize("origin", [-1, 0, 1])
def test_origin_shifts_the_response(backend, origin):
    w = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    x = _delta((9, 9))
    centred = filters.correlate(x, w, mode="constant", backend=backend)
    shifted = filters.correlate(x, w, mode="constant", origin=origin, backend=backend)
    np.testing.assert_array_equal(shifted, np.roll(centred, (origin, origin), axis=(0, 1)))
    shifted = filters.convolve(x, w, mode="constant", origin=(origin, 0), backend=backend)
    np.testing.assert_array_equal(
        shifted, np.roll(filters.convolve(x, w, mode="constant", backend=backend), -origin, 0)
    )


def test_separable_filters_respond_with_outer_products(backend):
    x = _delta((13, 15))
    gy = filters.gaussian_filter1d(_delta((13,)), 1.1, mode="constant", backend=backend)
    gx = filters.gaussian_filter1d(_delta((15,)), 0.7, mode="constant", backend=backend)
    result = filters.gaussian_filter(x, (1.1, 0.7), mode="constant", backend=backend)
    np.testing.assert_allclose(result, np.outer(gy, gx), rtol=1e-12, atol=1e-15)
    # sobel correlates with [-1, 0, 1]: the response is the flipped kernel
    result = filters.sobel(x, axis=1, mode="constant", backend=backend)
    expected = np.zeros_like(x)
    expected[5:8, 6:9] = np.outer([1, 2, 1], [1, 0, -1])
    np.testing.assert_array_equal(result, expected)


# --------------------------------------------------------------------------- output=


def _outputs(shape, dtype):
    big = np.zeros((2 * shape[0], shape[1] + 3), dtype=dtype)
    return {
        "C": np.zeros(shape, dtype=dtype),
        "F": np.zeros(shape, dtype=dtype, order="F"),
        "strided view": big[::2, 3:][:, ::-1],
        "transposed": np.zeros(shape[::-1], dtype=dtype).T,
    }


@pytest.mark.parametrize("name", CALLS)
def test_output_array_is_filled_and_returned(backend, name):
    for in_dtype, out_dtype in (("float32", "float32"), ("uint8", "float32"), ("int16", "int16")):
        x = make_input((5, 6), in_dtype, seed=21)
        expected = call(name, x, backend, output=np.dtype(out_dtype))
        assert expected.dtype == np.dtype(out_dtype)
        for label, out in _outputs(x.shape, out_dtype).items():
            result = call(name, x, backend, output=out)
            assert result is out, label
            np.testing.assert_array_equal(out, expected, err_msg=f"{label} {in_dtype}")


@pytest.mark.parametrize("name", CALLS)
def test_in_place(backend, name):
    x = make_input((6, 7), np.float32, seed=22)
    expected = call(name, x, backend)
    result = call(name, x, backend, output=x)
    assert result is x
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("name", ["correlate1d", "correlate", "median_filter"])
def test_read_only_input(backend, name):
    # read-only arrays are other Numba types: a few calls, as each compiles its own kernel
    x = make_input((5, 6), np.float64, seed=23)
    expected = call(name, x, backend)
    x.flags.writeable = False
    np.testing.assert_array_equal(call(name, x, backend), expected)


# --------------------------------------------------------------------------- empty arrays


def _empty_call(name, ndim):
    if name in {"correlate1d", "convolve1d"}:
        return ([1.0, 2.0],), {"axis": 0}
    if name in {"uniform_filter1d", "minimum_filter1d", "maximum_filter1d"}:
        return (3,), {"axis": 0}
    if name in {"gaussian_filter1d", "gaussian_filter", "gaussian_laplace",
                "gaussian_gradient_magnitude"}:  # fmt: skip
        return (1.0,), {}
    if name in {"correlate", "convolve"}:
        return (np.ones((2,) * ndim),), {}
    if name in {"sobel", "prewitt"}:
        return (), {"axis": 0}
    if name == "rank_filter":
        return (1,), {"size": 2}
    if name == "percentile_filter":
        return (50,), {"size": 2}
    if name == "maximum_filter":
        footprint = np.ones((2,) * ndim, dtype=bool)
        footprint.flat[0] = False
        return (), {"footprint": footprint}
    if name in {"minimum_filter", "median_filter"}:
        return (), {"size": 2}
    return (), {}


@pytest.mark.parametrize("shape", [(0,), (0, 4), (3, 0), (2, 0, 3)])
@pytest.mark.parametrize("name", CALLS)
def test_empty_input_gives_empty_output_of_the_same_shape(backend, name, shape):
    args, kwargs = _empty_call(name, len(shape))
    x = np.zeros(shape, dtype=np.uint8)
    result = getattr(filters, name)(x, *args, backend=backend, **kwargs)
    assert result.shape == shape
    assert result.dtype == np.uint8
    out = np.zeros(shape, dtype=np.float32)
    assert getattr(filters, name)(x, *args, output=out, backend=backend, **kwargs) is out


# --------------------------------------------------------------------------- threads, axes


@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
def test_one_and_two_threads_give_identical_results(dtype):
    x = make_input((67, 45), dtype, seed=24)
    for name in CALLS:
        for mode in ("reflect", "constant"):
            with set_threads(1):
                one = call(name, x, "cpu", mode=mode, cval=3)
            with set_threads(2):
                two = call(name, x, "cpu", mode=mode, cval=3)
            np.testing.assert_array_equal(one, two, err_msg=f"{name} {mode}")


BATCHED = {  # calls over two axes, as the (H, W) filter of each image of a batch
    "correlate": (np.array([[1.0, -2.0, 0.5], [0.25, 3.0, 1.0]]),),
    "convolve": (np.array([[1.0, -2.0], [0.5, 0.25], [3.0, 1.0]]),),
    "uniform_filter": ((3, 2),),
    "gaussian_filter": ((0.8, 1.3),),
    "gaussian_laplace": (0.9,),
    "gaussian_gradient_magnitude": (0.9,),
    "laplace": (),
    "sobel": (),  # axis: see the test
    "prewitt": (),
    "minimum_filter": ((2, 3),),
    "maximum_filter": ((3, 3),),
    "median_filter": ((3, 2),),
    "rank_filter": (1, (2, 3)),
    "percentile_filter": (75, (3, 3)),
}


@pytest.mark.parametrize("mode", ["reflect", "constant"])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize("name", BATCHED)
def test_axes_filter_each_image_of_a_batch(backend, name, dtype, mode):
    x = make_input((3, 6, 7, 2), dtype, seed=25)
    fn = getattr(filters, name)
    kwargs = {"mode": mode, "cval": 2.0, "backend": backend}
    if name in {"sobel", "prewitt"}:  # the derivative axis: H or W of the batch, 0 or 1 of one
        calls = [((), {"axis": 1}, (), {"axis": 0}), ((), {"axis": -2}, (), {"axis": -1})]
    else:
        calls = [(BATCHED[name], {}, BATCHED[name], {})]
    for batch_args, batch_kwargs, image_args, image_kwargs in calls:
        batched = fn(x, *batch_args, axes=(1, 2), **batch_kwargs, **kwargs)
        for n in range(x.shape[0]):
            for c in range(x.shape[3]):
                image = fn(x[n, :, :, c], *image_args, **image_kwargs, **kwargs)
                np.testing.assert_array_equal(batched[n, :, :, c], image)


def test_per_axis_arguments_follow_axes(backend):
    x = make_input((5, 6), np.float64, seed=26)
    w = np.array([[1.0, -2.0, 0.5], [0.25, 3.0, 1.0]])
    np.testing.assert_allclose(  # the same taps, summed in another order
        filters.correlate(x, w, axes=(1, 0), origin=(0, 1), backend=backend),
        filters.correlate(x, w.T, origin=(1, 0), backend=backend),
        rtol=1e-13,
    )
    np.testing.assert_array_equal(
        filters.median_filter(x, footprint=w > 0, axes=(1, 0), backend=backend),
        filters.median_filter(x, footprint=(w > 0).T, backend=backend),
    )
    np.testing.assert_allclose(  # the passes may run in another order
        filters.uniform_filter(x, (2, 3), axes=(1, 0), mode=("wrap", "nearest"), backend=backend),
        filters.uniform_filter(x, (3, 2), mode=("nearest", "wrap"), backend=backend),
        rtol=1e-13,
    )
    np.testing.assert_array_equal(
        filters.minimum_filter(x, (2, 3), axes=(-1, 0), origin=(-1, 1), backend=backend),
        filters.minimum_filter(x, (3, 2), origin=(1, -1), backend=backend),
    )


# --------------------------------------------------------------------------- Hypothesis

HYPOTHESIS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
H_DTYPES = ("uint8", "int16", "float32", "float64")


@st.composite
def arrays(draw, min_dims=1, max_dims=4):
    """A small array of a supported dtype, possibly a strided, reversed or transposed view."""
    ndim = draw(st.integers(min_dims, max_dims))
    shape = draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim))
    if draw(st.booleans()):  # mostly non-empty: empty arrays have their own test
        shape = [max(s, 1) for s in shape]
    dtype = draw(st.sampled_from(H_DTYPES))
    seed = draw(st.integers(0, 2**16))
    steps = draw(st.lists(st.sampled_from([1, 2, -1, -2]), min_size=ndim, max_size=ndim))
    base = make_input([max(1, abs(k)) * s for s, k in zip(shape, steps, strict=True)], dtype,
                      seed)  # fmt: skip
    view = base[tuple(slice(None, None, k) for k in steps)]
    if ndim > 1 and draw(st.booleans()):
        view = view.transpose(draw(st.permutations(range(ndim))))
    return view


@st.composite
def axes_for(draw, ndim):
    if draw(st.booleans()):
        return None
    k = draw(st.integers(1, ndim))
    axes = draw(st.permutations(range(ndim)))[:k]
    return tuple(a - ndim if draw(st.booleans()) else a for a in axes)


def _modes(draw, n):
    if draw(st.booleans()):
        return draw(st.sampled_from(MODES))
    return tuple(draw(st.lists(st.sampled_from(MODES), min_size=n, max_size=n)))


def _origin(draw, size):
    return draw(st.sampled_from([-(size // 2), 0, (size - 1) // 2]))


LINEAR_NAMES = ("correlate1d", "convolve1d", "correlate", "convolve", "uniform_filter",
                "uniform_filter1d", "gaussian_filter", "gaussian_filter1d", "sobel", "laplace",
                "gaussian_laplace")  # fmt: skip


@st.composite
def linear_calls(draw, ndim):
    name = draw(st.sampled_from(LINEAR_NAMES))
    cval = draw(st.sampled_from([0.0, 2.5, -7.0]))
    if name.endswith("1d"):
        axis = draw(st.integers(-ndim, ndim - 1))
        kwargs = {"axis": axis, "mode": draw(st.sampled_from(MODES)), "cval": cval}
        if name == "gaussian_filter1d":
            return (
                name,
                (draw(st.sampled_from([0.5, 1.0, 2.5])),),
                kwargs | {"order": draw(st.integers(0, 2))},
            )
        size = draw(st.integers(1, 6))
        kwargs["origin"] = _origin(draw, size)
        if name == "uniform_filter1d":
            return name, (size,), kwargs
        weights = draw(st.lists(st.sampled_from([-1.5, -0.5, 0.0, 0.25, 1.0, 2.0]),
                                min_size=size, max_size=size))  # fmt: skip
        return name, (weights,), kwargs
    axes = draw(axes_for(ndim))
    n = ndim if axes is None else len(axes)
    kwargs = {"axes": axes, "cval": cval}
    if name in {"correlate", "convolve"}:
        shape = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
        weights = np.round(np.random.default_rng(draw(st.integers(0, 99))).normal(size=shape), 2)
        origin = tuple(_origin(draw, s) for s in shape)
        return name, (weights,), kwargs | {"origin": origin,
                                           "mode": draw(st.sampled_from(MODES))}  # fmt: skip
    kwargs["mode"] = _modes(draw, n)
    if name == "uniform_filter":
        sizes = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
        origin = tuple(_origin(draw, s) for s in sizes)
        return name, (sizes,), kwargs | {"origin": origin}
    if name == "gaussian_filter":
        sigmas = draw(st.lists(st.sampled_from([0.0, 0.6, 1.5]), min_size=n, max_size=n))
        orders = draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
        return name, (sigmas,), kwargs | {"order": orders}
    if name == "sobel":
        filtered = list(range(ndim)) if axes is None else [a % ndim for a in axes]
        return name, (), kwargs | {"axis": draw(st.sampled_from(filtered))}
    if name == "gaussian_laplace":
        return name, (draw(st.sampled_from([0.7, 1.2])),), kwargs
    return name, (), kwargs


@st.composite
def rank_calls(draw, ndim):
    name = draw(st.sampled_from(["minimum_filter", "maximum_filter", "median_filter",
                                 "rank_filter", "percentile_filter", "minimum_filter1d",
                                 "maximum_filter1d"]))  # fmt: skip
    mode = draw(st.sampled_from(MODES))
    cval = draw(st.sampled_from([0.0, 3.0, -1.0]))
    if name.endswith("1d"):
        size = draw(st.integers(1, 8))
        return name, (size,), {"axis": draw(st.integers(-ndim, ndim - 1)), "mode": mode,
                               "cval": cval, "origin": _origin(draw, size)}  # fmt: skip
    axes = draw(axes_for(ndim))
    n = ndim if axes is None else len(axes)
    shape = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    kwargs = {"axes": axes, "mode": mode, "cval": cval,
              "origin": tuple(_origin(draw, s) for s in shape)}  # fmt: skip
    if draw(st.booleans()):
        kwargs["size"] = shape
        if name in {"minimum_filter", "maximum_filter"}:
            kwargs["mode"] = _modes(draw, n)
        count = int(np.prod(shape))
    else:
        footprint = np.random.default_rng(draw(st.integers(0, 99))).random(shape) < 0.5
        footprint.flat[draw(st.integers(0, footprint.size - 1))] = True
        kwargs["footprint"] = footprint
        count = int(footprint.sum())
    if name == "rank_filter":
        return name, (draw(st.integers(-count, count - 1)),), kwargs
    if name == "percentile_filter":
        return name, (draw(st.sampled_from([0, 20, 50, -25, 100])),), kwargs
    return name, (), kwargs


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@HYPOTHESIS
@given(data=st.data())
def test_hypothesis_linear_calls_match_reference(backend, data):
    x = data.draw(arrays())
    name, args, kwargs = data.draw(linear_calls(x.ndim))
    check_against_reference(name, x, *args, backend=backend, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@HYPOTHESIS
@given(data=st.data())
def test_hypothesis_rank_calls_match_reference(backend, data):
    x = data.draw(arrays())
    name, args, kwargs = data.draw(rank_calls(x.ndim))
    check_against_reference(name, x, *args, backend=backend, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@HYPOTHESIS
@given(data=st.data())
def test_hypothesis_output_views(backend, data):
    x = data.draw(arrays(min_dims=2, max_dims=3))
    name, args, kwargs = data.draw(linear_calls(x.ndim) | rank_calls(x.ndim))
    big = np.zeros([2 * s + 1 for s in x.shape], dtype=x.dtype)
    inside = tuple(slice(None, 2 * s, 2) for s in x.shape)
    out = big[inside]
    if data.draw(st.booleans()):
        out = out[(slice(None, None, -1),) * x.ndim]
    if data.draw(st.booleans()):
        out = out.T
        x = x.T
    result = getattr(filters, name)(x, *args, output=out, backend=backend, **kwargs)
    assert result is out
    np.testing.assert_array_equal(out, getattr(filters, name)(x, *args, backend=backend, **kwargs))
    outside = np.ones(big.shape, dtype=bool)
    outside[inside] = False
    assert not big[outside].any()
