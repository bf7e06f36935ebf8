"""The cuda backend's rank filters on a GPU, at realistic sizes: CuPy in -> CuPy out and
NumPy in -> NumPy out, equal (exactly) to the oracle (scipy.ndimage, stored by the policy),
to cupyx.scipy.ndimage and to backend 'cpu'; NaN by the key order; 64-bit integers beyond
2**53; `output=` CuPy arrays of another dtype; which kernel runs.
tests/filters/test_cuda_rank_sim.py runs the same kernels under the simulator on tiny
arrays."""

from __future__ import annotations

import numpy as np
import pytest
from gpu_support import filters_oracle, require_device

pytestmark = pytest.mark.gpu
cupy = require_device()

from cupyx.scipy import ndimage as cndi  # noqa: E402

from npaccel import filters  # noqa: E402
from npaccel.filters import _cuda_rank as G  # noqa: E402
from npaccel.filters._policy import store  # noqa: E402

oracle = filters_oracle()
SHAPE = (256, 300)
MODES = oracle.MODES
DTYPES = ("uint8", "int16", "float32", "float64")
SMOKE_DTYPES = ("int8", "uint16", "uint32", "int32", "uint64", "int64", "float16")
HOLES = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 0, 1]], bool)
CALLS = {  # name -> (args, kwargs, kernel the cuda backend launches)
    "median_filter_3x3": ("median_filter", (), {"size": 3}, "_median3x3_kernel"),
    "median_filter_5x5": ("median_filter", (), {"size": 5, "origin": (1, -2)}, "_median5x5_kernel"),
    "median_filter_7x7": ("median_filter", (), {"size": 7}, "_select_kernel"),
    "median_holes": ("median_filter", (), {"footprint": HOLES}, "_select_kernel"),
    "rank_filter": ("rank_filter", (-3,), {"size": (3, 4), "origin": (0, 1)}, "_select_kernel"),
    "percentile_filter": ("percentile_filter", (30,), {"footprint": HOLES}, "_select_kernel"),
    "minimum_filter": ("minimum_filter", (), {"size": (3, 21)}, "_pass_kernel"),
    "maximum_filter_holes": ("maximum_filter", (), {"footprint": HOLES}, "_select_kernel"),
    "maximum_filter1d": ("maximum_filter1d", (40,), {"axis": 0, "origin": 5}, "_pass_kernel"),
}


@pytest.fixture
def launches(monkeypatch):
    names: list[str] = []
    launch = G.launch

    def spy(kernel, *args):
        names.append(kernel.py_func.__qualname__.split(".")[0])
        return launch(kernel, *args)

    monkeypatch.setattr(G, "launch", spy)
    return names


def _cupyx(name, host, args, kwargs, out_dtype):
    """cupyx.scipy.ndimage on the data as float64 (its cval then needs no conversion),
    stored by the policy: equal to the oracle for NaN-free data below 2**53."""
    result = getattr(cndi, name)(cupy.asarray(host.astype(np.float64)), *args, **kwargs)
    return store(cupy.asnumpy(result), np.empty(host.shape, out_dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("call", CALLS)
def test_rank_filters_match_oracle_cupyx_and_cpu(call, dtype, launches):
    """Two modes per case (every kernel compiles per mode), all five across the grid."""
    name, args, kwargs, kernel = CALLS[call]
    host = oracle.make_input(SHAPE, dtype, seed=3)
    j = list(CALLS).index(call) + DTYPES.index(dtype)
    for index, mode in enumerate((MODES[j % 5], MODES[(j + 2) % 5])):
        kw = {**kwargs, "mode": mode}
        if mode == "constant":
            kw["cval"] = oracle.CVAL
        x = cupy.asarray(host)
        actual = getattr(filters, name)(x, *args, **kw)
        assert isinstance(actual, cupy.ndarray), call
        got = cupy.asnumpy(actual)
        _, want = oracle.reference(name, host, *args, **kw)
        oracle.assert_exact(got, want, f"{call} {mode} {dtype}")
        oracle.assert_exact(got, getattr(filters, name)(host, *args, backend="cpu", **kw))
        if index == 0:  # (cupyx compiles a kernel per call too)
            oracle.assert_exact(got, _cupyx(name, host, args, kw, host.dtype), "cupyx")
    assert kernel in launches


@pytest.mark.parametrize("dtype", SMOKE_DTYPES)
def test_other_dtypes_numpy_in_numpy_out(dtype):
    host = oracle.make_input(SHAPE, dtype, seed=4)
    for name, args, kwargs, _ in (CALLS["median_filter_3x3"], CALLS["median_holes"],
                                  CALLS["minimum_filter"]):  # fmt: skip
        kw = {**kwargs, "mode": "constant", "cval": oracle.CVAL}
        got = getattr(filters, name)(host, *args, backend="cuda", **kw)
        assert isinstance(got, np.ndarray)
        _, want = oracle.reference(name, host, *args, **kw)
        oracle.assert_exact(got, want, f"{name} {dtype}")


def test_large_images_and_batches_match_cupyx(launches):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (2048, 2048), dtype=np.uint8)
    x = cupy.asarray(image)
    for size in (3, 5):
        got = filters.median_filter(x, size)
        want = cndi.median_filter(x, size)
        assert bool(cupy.array_equal(got, want)), size
    batch = cupy.asarray(rng.normal(size=(4, 300, 200, 3)).astype(np.float32))
    got = filters.median_filter(batch, 3, axes=(1, 2), mode="nearest")
    want = cndi.median_filter(batch, footprint=np.ones((1, 3, 3, 1), bool), mode="nearest")
    assert bool(cupy.array_equal(got, want))
    assert launches == ["_median3x3_kernel", "_median5x5_kernel", "_median3x3_kernel"]
    big = cupy.asarray(rng.integers(0, 256, (300, 310), dtype=np.uint8))
    fp = np.ones((17, 17), bool)  # 289 elements of 8-bit data: the histogram
    got = filters.rank_filter(big, 100, footprint=fp, mode="wrap")
    assert bool(cupy.array_equal(got, cndi.rank_filter(big, 100, footprint=fp, mode="wrap")))
    assert launches[-1] == "_select_kernel"


def test_outputs_of_another_dtype_and_in_place():
    host = oracle.make_input(SHAPE, "float32", seed=6) * 3
    x = cupy.asarray(host)
    for out_dtype in (np.uint8, np.int16, np.float16, np.float64):
        out = cupy.empty(SHAPE, out_dtype)
        for name, args, kwargs, _ in (CALLS["median_filter_3x3"], CALLS["rank_filter"]):
            assert getattr(filters, name)(x, *args, output=out, **kwargs) is out
            _, want = oracle.reference(name, host, *args, output=np.dtype(out_dtype), **kwargs)
            oracle.assert_exact(cupy.asnumpy(out), want, f"{name} -> {out_dtype}")
    y = x.copy()
    assert filters.median_filter(y, 5, output=y) is y
    oracle.assert_exact(cupy.asnumpy(y), oracle.reference("median_filter", host, 5)[1])
    strided = x[::-2, 3::3]
    oracle.assert_exact(cupy.asnumpy(filters.median_filter(strided, 3)),
                        oracle.reference("median_filter", host[::-2, 3::3], 3)[1])  # fmt: skip


def test_nan_and_wide_integers_are_exact():
    rng = np.random.default_rng(7)
    host = rng.normal(size=SHAPE).astype(np.float32)
    host[rng.random(SHAPE) < 0.1] = np.nan
    host[rng.random(SHAPE) < 0.05] = np.inf
    x = cupy.asarray(host)
    for name, args, kwargs, _ in CALLS.values():
        got = cupy.asnumpy(getattr(filters, name)(x, *args, **kwargs))
        want = getattr(filters, name)(host, *args, backend="cpu", **kwargs)
        oracle.assert_exact(got, want, f"{name} with NaN")
    values = np.array([2**64 - 1, 2**64 - 2, 2**63 + 1, 2**63, 7, 2**53 + 1, 2**53], np.uint64)
    wide = rng.choice(values, size=(64, 80))
    for data in (wide, (wide - np.uint64(2**63)).view(np.int64)):
        for name, args, kwargs, _ in (CALLS["median_filter_3x3"], CALLS["rank_filter"],
                                      CALLS["minimum_filter"]):  # fmt: skip
            got = cupy.asnumpy(getattr(filters, name)(cupy.asarray(data), *args, **kwargs))
            want = getattr(filters, name)(data, *args, backend="cpu", **kwargs)
            oracle.assert_exact(got, want, f"{name} {data.dtype} beyond 2**53")


def test_launches_on_the_current_cupy_stream():
    host = oracle.make_input(SHAPE, "uint8", seed=8)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        x = cupy.asarray(host)
        got = filters.median_filter(x, 3)
        got2 = filters.rank_filter(x, 2, footprint=HOLES)
    stream.synchronize()
    oracle.assert_exact(cupy.asnumpy(got), oracle.reference("median_filter", host, 3)[1])
    oracle.assert_exact(cupy.asnumpy(got2),
                        oracle.reference("rank_filter", host, 2, footprint=HOLES)[1])  # fmt: skip
