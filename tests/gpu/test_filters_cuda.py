"""The cuda backend's linear filters on a GPU, at realistic sizes: CuPy in -> CuPy out and
NumPy in -> NumPy out, against the float64 oracle (scipy.ndimage, stored by the policy) and
against cupyx.scipy.ndimage computed in float64, within the per-dtype tolerances of
tests/filters/conftest.py; `output=` CuPy arrays; a non-blocking CuPy stream.
tests/filters/test_cuda_sim.py runs the same kernels under the simulator on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_support import filters_oracle, require_device

pytestmark = pytest.mark.gpu
cupy = require_device()

from cupyx.scipy import ndimage as cndi  # noqa: E402

from npaccel import filters  # noqa: E402
from npaccel.filters import _cuda  # noqa: E402
from npaccel.filters._policy import store  # noqa: E402

oracle = filters_oracle()
SHAPE = (256, 300)
GRID_DTYPES = ("uint8", "int16", "float32", "float64")
SMOKE_DTYPES = ("int8", "uint16", "uint32", "int32", "uint64", "int64", "float16")
WEIGHTS_2D = np.round(np.random.default_rng(3).normal(size=(3, 4)), 3)
CALLS = {  # name -> (args, kwargs); scalar modes only, so that cupyx takes them as they are
    "correlate1d": (([0.3, -1.2, 2.1, 0.7],), {"axis": 0, "origin": 1}),
    "convolve1d": (([0.5, 1.0, -0.25],), {}),
    "correlate": ((WEIGHTS_2D,), {"origin": (1, -1)}),
    "convolve": ((WEIGHTS_2D,), {}),
    "uniform_filter1d": ((5,), {"axis": 0}),
    "uniform_filter": ((3,), {}),
    "gaussian_filter1d": ((2.0,), {"order": 1}),
    "gaussian_filter": ((2.0,), {}),
    "gaussian_laplace": ((1.5,), {}),
    "gaussian_gradient_magnitude": ((2.0,), {}),
    "sobel": ((), {"axis": 0}),
    "prewitt": ((), {}),
    "laplace": ((), {}),
    "gradient_magnitude": (("sobel",), {}),
}


def _mode(mode):
    return {"mode": mode, "cval": oracle.CVAL} if mode == "constant" else {"mode": mode}


def _scale(name, host, args, kwargs):
    finite = host[np.isfinite(host)]
    magnitude = max(float(np.abs(finite).max(initial=0.0)), abs(float(kwargs.get("cval", 0))))
    return max(magnitude, 1.0) * max(oracle.kernel_l1(name, host.ndim, *args, **kwargs), 1.0)


def check_device(name, host, *args, output=None, **kwargs):
    """``filters.<name>`` on a CuPy copy of ``host``: a CuPy result that matches the oracle.
    Returns it (on the device)."""
    x = cupy.asarray(host)
    actual = getattr(filters, name)(x, *args, output=output, **kwargs)
    assert isinstance(actual, cupy.ndarray), name
    oracle_output = cupy.asnumpy(output) if isinstance(output, cupy.ndarray) else output
    raw, expected = oracle.reference(name, host, *args, output=oracle_output, **kwargs)
    oracle.assert_close(cupy.asnumpy(actual), raw, expected, scale=_scale(name, host, args, kwargs),
                   compute=oracle.compute_dtype(host.dtype, expected.dtype),
                   context=f"{name}{args} {kwargs} dtype={host.dtype}")  # fmt: skip
    return actual


def cupyx_reference(name, x, *args, **kwargs):
    """cupyx.scipy.ndimage on ``x`` in float64 (as scipy computes), on the host afterwards."""
    work = x.astype(cupy.float64)
    if name == "gradient_magnitude":
        operator = getattr(cndi, args[0] if args else "sobel")
        result = cndi.generic_gradient_magnitude(work, operator, **kwargs)
    else:
        result = getattr(cndi, name)(work, *args, **kwargs)
    return cupy.asnumpy(result)


@pytest.mark.parametrize("mode", oracle.MODES)
@pytest.mark.parametrize("name", CALLS)
def test_float32_every_mode_matches_oracle_and_cupyx(name, mode):
    host = oracle.make_input(SHAPE, np.float32, seed=1)
    args, kwargs = CALLS[name]
    actual = check_device(name, host, *args, **kwargs, **_mode(mode))
    raw = cupyx_reference(name, cupy.asarray(host), *args, **kwargs, **_mode(mode))
    expected = store(raw, np.empty(SHAPE, np.float32))
    oracle.assert_close(cupy.asnumpy(actual), raw, expected, scale=_scale(name, host, args, kwargs),
                   compute=np.float32, context=f"{name} vs cupyx, mode={mode}")  # fmt: skip


@pytest.mark.parametrize("dtype", GRID_DTYPES)
@pytest.mark.parametrize("name", CALLS)
def test_dtypes_match_oracle(name, dtype):
    host = oracle.make_input(SHAPE, dtype, seed=2)
    args, kwargs = CALLS[name]
    for mode in ("reflect", "constant"):
        check_device(name, host, *args, **kwargs, **_mode(mode))


@pytest.mark.parametrize("dtype", SMOKE_DTYPES)
def test_other_dtypes_match_oracle(dtype):
    host = oracle.make_input(SHAPE, dtype, seed=3)
    for name in ("uniform_filter", "correlate1d", "correlate", "gradient_magnitude"):
        args, kwargs = CALLS[name]
        check_device(name, host, *args, **kwargs, mode="nearest")


@pytest.mark.parametrize(("in_dtype", "out_dtype"),
                         [("uint8", "float32"), ("float32", "uint8"), ("int16", "uint8"),
                          ("float64", "int8"), ("uint8", "float16")])  # fmt: skip
def test_output_dtypes_and_cupy_output_arrays(in_dtype, out_dtype):
    host = oracle.make_input(SHAPE, in_dtype, seed=4)
    for name in ("sobel", "gaussian_filter", "laplace", "correlate"):
        args, kwargs = CALLS[name]
        got = check_device(name, host, *args, output=np.dtype(out_dtype), **kwargs)
        assert got.dtype == np.dtype(out_dtype)
        out = cupy.zeros(SHAPE, out_dtype)
        assert check_device(name, host, *args, output=out, **kwargs) is out
    view = cupy.zeros((SHAPE[0], 2 * SHAPE[1]), out_dtype)[:, ::2]  # non-contiguous output
    assert check_device("uniform_filter", host, 3, output=view) is view


def test_numpy_input_on_backend_cuda_gives_numpy():
    host = oracle.make_input(SHAPE, np.uint8, seed=5)
    for name, (args, kwargs) in CALLS.items():
        got = getattr(filters, name)(host, *args, backend="cuda", **kwargs)
        assert isinstance(got, np.ndarray), name
        raw, expected = oracle.reference(name, host, *args, **kwargs)
        oracle.assert_close(got, raw, expected, scale=_scale(name, host, args, kwargs),
                       compute=np.float32, context=name)  # fmt: skip
    out = np.zeros(SHAPE, np.float32)[:, ::-1]
    assert filters.sobel(host, output=out, backend="cuda") is out


def test_in_place_and_views():
    host = oracle.make_input((300, 512), np.float32, seed=6)
    x = cupy.asarray(host)
    expected = filters.gaussian_filter(host, 2.0, backend="numpy")
    assert filters.gaussian_filter(x, 2.0, output=x) is x
    np.testing.assert_allclose(cupy.asnumpy(x), expected, rtol=1e-5, atol=1e-3)
    check_device("uniform_filter", host[::-1, ::3], 5, mode="wrap")
    check_device("sobel", np.ascontiguousarray(host.T), axis=1)


def test_shapes_axes_and_fallbacks():
    check_device("gaussian_filter", oracle.make_input((40, 64, 70), np.float32, seed=7), 1.5)
    check_device("laplace", oracle.make_input((40, 64, 70), np.int16, seed=8))  # 3 lists: unfused
    batch = oracle.make_input((4, 96, 128, 3), np.uint8, seed=9)  # N, H, W, C
    check_device("uniform_filter", batch, 5, axes=(1, 2))
    check_device("gradient_magnitude", batch, axes=(1, 2), mode="nearest")
    check_device("gaussian_filter", batch, (1.0, 2.0), axes=(1, 2), mode="constant", cval=9.0)
    image = oracle.make_input(SHAPE, np.float32, seed=10)
    check_device("gaussian_filter", image, 6.0)  # radius 24: 1-D passes
    check_device("gaussian_filter", image.astype(np.float64), 4.0)  # float64: shorter tiles
    check_device("uniform_filter", oracle.make_input((3000,), np.float32, seed=11), 7)
    check_device("correlate", oracle.make_input((20, 30, 40), np.float32, seed=12),
                 np.ones((3, 1, 2)) / 6)  # fmt: skip


def test_large_image_spans_many_tiles_and_grid_limits(monkeypatch):
    host = oracle.make_input((2048, 2050), np.float32, seed=13)
    check_device("uniform_filter", host, 3)
    check_device("sobel", host)
    monkeypatch.setattr(_cuda, "GRID_YZ_LIMIT", 3)
    check_device("gradient_magnitude", oracle.make_input((5, 200, 210), np.uint8, seed=14),
                 axes=(1, 2))  # fmt: skip


def test_complex_runs_on_cupyx():
    host = oracle.make_input(SHAPE, np.complex64, seed=15)
    check_device("gaussian_filter", host, 1.5)
    check_device("correlate", host, WEIGHTS_2D, mode="constant", cval=2.0)
    got = filters.uniform_filter(host, 3, backend="cuda")
    assert isinstance(got, np.ndarray)
    assert got.dtype == np.complex64


def test_non_blocking_stream_orders_the_kernels():
    host = oracle.make_input((1024, 1100), np.float32, seed=16)
    base = cupy.asarray(host)
    cupy.cuda.Device().synchronize()
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        x = base * 2  # queued on the stream, read by the kernels queued after it
        smooth = filters.gaussian_filter(x, 2.0)
        edges = filters.gradient_magnitude(x)
        out = cupy.empty(x.shape, np.uint8)
        filters.uniform_filter(x, 3, output=out)
    stream.synchronize()
    doubled = host * 2
    calls = (("gaussian_filter", (2.0,), {}, smooth), ("gradient_magnitude", (), {}, edges),
             ("uniform_filter", (3,), {"output": np.uint8}, out))  # fmt: skip
    for name, args, kwargs, got in calls:
        raw, expected = oracle.reference(name, doubled, *args, **kwargs)
        oracle.assert_close(cupy.asnumpy(got), raw, expected, scale=_scale(name, doubled, args, {}),
                       compute=np.float32, context=name)  # fmt: skip


@pytest.mark.parametrize("mode", ["reflect", "wrap"])
def test_cupy_backed_dask_arrays_run_the_cuda_kernels_chunk_by_chunk(mode):
    da = pytest.importorskip("dask.array")
    import dask

    host = np.random.default_rng(9).random((300, 260)).astype(np.float32)
    device = cupy.asarray(host)
    lazy = da.from_array(device, chunks=(70, 90), asarray=False)
    with dask.config.set(scheduler="threads"):
        for name, args in (("gaussian_filter", (1.5,)), ("median_filter", (5,)),
                           ("sobel", ())):  # fmt: skip
            fn = getattr(filters, name)
            result = fn(lazy, *args, mode=mode)
            assert isinstance(result._meta, cupy.ndarray)
            got = result.compute()
            assert isinstance(got, cupy.ndarray)
            cupy.testing.assert_array_equal(got, fn(device, *args, mode=mode), err_msg=name)
