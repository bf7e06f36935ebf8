"""The cuda backend's linear filters against the oracle, run by numba-cuda's simulator.

Every simulated CUDA thread is a Python thread, so the arrays are tiny and the tiles and
blocks are shrunk (`SMALL_TILE`, 32-thread element-wise blocks) until a 7 x 10 image spans
several tiles: the halo, tile-edge and partial-tile code all run. Which kernels a call
launches (2-D tile, fused combine, 1-D passes, N-D, store) is pinned by spying on the
launcher. tests/gpu/test_filters_cuda.py runs the same kernels on a GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import CVAL, MODES, check_against_reference, make_input
from npaccel.cuda._device import simulated

if not simulated():
    pytest.skip("runs the cuda kernels under numba-cuda's simulator (NUMBA_ENABLE_CUDASIM=1); "
                "with a GPU, tests/gpu/test_filters_cuda.py runs them",
                allow_module_level=True)  # fmt: skip

from npaccel import filters
from npaccel.filters import _cuda, _scipy
from npaccel.filters import _cuda_common as C
from npaccel.filters import _cuda_linear as K
from npaccel.filters._passes import Pass

SMALL_TILE = K.Tiling(rows=4, cols=8, threads_x=8, threads_y=2)
IMAGE = (7, 10)  # 2 x 2 tiles of 4 x 8: the second row and column of tiles are partial
NON_COMPLEX = [t for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64",
                           "int64", "float16", "float32", "float64")]  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def quick_thread_switches(fast_thread_switches):
    return fast_thread_switches


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    monkeypatch.setattr(K, "TILING", SMALL_TILE)
    monkeypatch.setattr(C, "THREADS", 32)


@pytest.fixture
def launches(monkeypatch):
    """The factory name of every kernel launched ("tile_kernel", "pass_kernel", ...)."""
    names: list[str] = []
    launch = _cuda.launch

    def spy(kernel, *args):
        names.append(kernel.py_func.__qualname__.split(".")[0])
        return launch(kernel, *args)

    monkeypatch.setattr(_cuda, "launch", spy)
    return names


def check(name, x, *args, **kwargs):
    return check_against_reference(name, x, *args, backend="cuda", **kwargs)


def mode_kwargs(mode):
    return {"mode": mode, "cval": CVAL} if mode == "constant" else {"mode": mode}


# --------------------------------------------------------------------------- every function

RNG_WEIGHTS = np.round(np.random.default_rng(3).normal(size=(3, 2)), 3)
WEIGHTS_1D = (0.3, -1.2, 2.1, 0.7)  # even length
MAIN = {  # name -> (args, kwargs): one call per mode, on a 7 x 10 float32 image
    "correlate1d": ((WEIGHTS_1D,), {"axis": 0, "origin": 1}),
    "convolve1d": ((WEIGHTS_1D,), {"origin": -2}),
    "correlate": ((RNG_WEIGHTS,), {"origin": (1, -1)}),
    "convolve": ((RNG_WEIGHTS,), {}),
    "uniform_filter1d": ((4,), {"axis": 0}),
    "uniform_filter": ((3,), {}),
    "gaussian_filter1d": ((1.2,), {"order": 1}),
    "gaussian_filter": ((1.0,), {}),
    "gaussian_laplace": ((0.8,), {}),
    "gaussian_gradient_magnitude": ((0.8,), {}),
    "sobel": ((), {"axis": 0}),
    "prewitt": ((), {}),
    "laplace": ((), {}),
    "gradient_magnitude": (("sobel",), {}),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", MAIN)
def test_every_linear_filter_in_every_mode(name, mode):
    args, kwargs = MAIN[name]
    check(name, make_input(IMAGE, np.float32, seed=1), *args, **kwargs, **mode_kwargs(mode))


EXTRA = [  # options the main grid leaves out, in one mode each
    ("gaussian_filter1d", (0.9,), {"axis": 0, "order": 0, "mode": "wrap"}),
    ("gaussian_filter1d", (1.1,), {"order": 2, "mode": "mirror"}),
    ("gaussian_filter", (0.9,), {"order": (2, 1), "mode": "nearest"}),
    ("gaussian_filter", ((1.3, 0.6),), {"order": (0, 2), "radius": (2, 3)}),
    ("gaussian_filter", (1.5,), {"truncate": 2.0, "mode": ("constant", "wrap"), "cval": -3.0}),
    ("uniform_filter", ((3, 4),), {"origin": (-1, 1), "mode": "mirror"}),
    ("uniform_filter", ((2, 5),), {"origin": (0, -2), "mode": ("wrap", "reflect")}),
    ("uniform_filter1d", (3,), {"origin": 1, "mode": "constant", "cval": 9.0}),
    ("correlate1d", (WEIGHTS_1D,), {"origin": -2, "mode": "nearest"}),
    ("correlate", (np.ones(3),), {"axes": (1,), "mode": "constant", "cval": 1.0}),
    ("sobel", (), {"axis": 1, "mode": ("constant", "nearest"), "cval": 4.0}),
    ("prewitt", (), {"axis": 0, "mode": "wrap"}),
    ("gradient_magnitude", ("prewitt",), {"mode": "mirror"}),
    ("gaussian_gradient_magnitude", ((0.7, 1.1),), {"mode": ("nearest", "constant"), "cval": 1}),
    ("gaussian_laplace", ((1.0, 0.6),), {"mode": "wrap", "truncate": 3.0}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), EXTRA, ids=lambda v: str(v)[:24])
def test_options_match_reference(name, args, kwargs):
    check(name, make_input(IMAGE, np.float32, seed=2), *args, **kwargs)


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", NON_COMPLEX)
def test_every_dtype(dtype):
    x = make_input((6, 9), dtype, seed=4)
    check("uniform_filter", x, 3, mode="nearest")  # tile
    check("correlate1d", x, [0.5, -1.0, 2.0], axis=0, mode="constant", cval=CVAL)  # 1-D pass
    check("correlate", x, RNG_WEIGHTS, mode="wrap")  # N-D
    check("gradient_magnitude", x, mode="reflect")  # fused combine


OUTPUT_PAIRS = [("uint8", "float32"), ("float32", "uint8"), ("int16", "uint8"),
                ("float64", "int8"), ("float32", "float64"), ("uint8", "float16")]  # fmt: skip


@pytest.mark.parametrize(("in_dtype", "out_dtype"), OUTPUT_PAIRS, ids=lambda v: str(v))
def test_output_dtype_and_array(in_dtype, out_dtype):
    x = make_input(IMAGE, in_dtype, seed=5)
    for output in (np.dtype(out_dtype), np.zeros(x.shape, out_dtype)):
        got = check("sobel", x, axis=0, output=output)
        assert got.dtype == np.dtype(out_dtype)
    check("laplace", x, output=np.zeros(x.shape, out_dtype), mode="constant", cval=-2.0)


def test_output_array_is_filled_and_returned():
    x = make_input(IMAGE, np.float32, seed=6)
    out = np.zeros(IMAGE, np.float32)
    assert filters.gaussian_filter(x, 1.0, output=out, backend="cuda") is out
    np.testing.assert_allclose(out, filters.gaussian_filter(x, 1.0, backend="numpy"), rtol=1e-5,
                               atol=1e-4)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "args"),
    [("uniform_filter", (3,)), ("correlate1d", ([1.0, -1.0, 2.0],)), ("laplace", ()),
     ("correlate", (RNG_WEIGHTS,)), ("gaussian_filter", (0.0,))],
)  # fmt: skip
def test_in_place(name, args):
    x = make_input(IMAGE, np.float32, seed=7)
    expected = getattr(filters, name)(x, *args, backend="numpy")
    result = getattr(filters, name)(x, *args, output=x, backend="cuda")
    assert result is x
    np.testing.assert_allclose(x, expected, rtol=1e-5, atol=1e-3)


# --------------------------------------------------------------------------- integer stores


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int64"])
def test_halves_round_to_even(dtype):
    x = np.array([1, 2, 3, 4, 7, 8], dtype=dtype)
    result = filters.correlate1d(x, [0.5, 0.5, 0.0], backend="cuda")
    np.testing.assert_array_equal(result, np.array([1, 2, 2, 4, 6, 8], dtype=dtype))
    # in the tile: means of 2 x 2 windows are exact quarters and halves
    image = make_input(IMAGE, np.uint8, seed=8)
    tile = filters.uniform_filter(image.astype(dtype), 2, backend="cuda")
    exact = filters.uniform_filter(image.astype(dtype), 2, backend="numpy")
    np.testing.assert_array_equal(tile, exact)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint32", "int64", "uint64"])
def test_saturates_at_both_ends_of_the_type(dtype):
    info = np.iinfo(dtype)
    x = np.array([info.max, info.max, info.min, info.min], dtype=dtype)
    result = filters.correlate1d(x, [0.0, 3.0, 0.0], backend="cuda")
    big = float(np.nextafter(float(info.max), 0))
    top = int(big) if info.bits == 64 else info.max  # the largest float64 below the range
    np.testing.assert_array_equal(result, np.array([top, top, info.min, info.min], dtype=dtype))


def test_float_to_integer_output_nan_and_inf():
    x = np.array([np.nan, 1.4, np.inf, -np.inf, 300.0, -5.0, 2.5])
    result = filters.correlate1d(x, [1.0], output=np.uint8, backend="cuda")
    np.testing.assert_array_equal(result, np.array([0, 1, 255, 0, 255, 0, 2], dtype=np.uint8))
    image = np.tile(x, (3, 1))
    stored = filters.uniform_filter(image, (1, 1), output=np.int8, backend="cuda")  # no pass
    np.testing.assert_array_equal(stored[1], np.array([0, 1, 127, -128, 127, -5, 2], np.int8))


NAN_INF_CASES = [
    ("correlate1d", ([0.5, -1.0, 0.0, 2.0],), {}),
    ("convolve1d", ([1.0, 0.0, -1.0],), {"axis": 0, "mode": "constant"}),
    ("correlate", (np.array([[0.0, 1.0], [-2.0, 0.5]]),), {"mode": "wrap"}),
    ("gaussian_filter", (1.0,), {}),
    ("sobel", (), {}),
    ("laplace", (), {"mode": "nearest"}),
    ("gaussian_gradient_magnitude", (0.8,), {}),
]


@pytest.mark.parametrize(("name", "args", "kwargs"), NAN_INF_CASES, ids=lambda v: str(v)[:20])
def test_nan_and_inf_propagate_as_scipy(name, args, kwargs):
    x = np.arange(48, dtype=np.float32).reshape(6, 8)
    x[1, 2], x[4, 6], x[4, 1] = np.nan, np.inf, -np.inf
    result = check(name, x, *args, **kwargs)
    assert np.isnan(result).any()


# --------------------------------------------------------------------------- shapes and layouts


def test_views_with_negative_and_non_unit_strides():
    base = make_input((9, 21), np.float32, seed=9)
    for x in (base[::-1, ::2], base[1:8, 3:13].T, np.asfortranarray(base[:7, :10])):
        check("uniform_filter", x, 3, mode="mirror")
        check("sobel", x, axis=-1)
        check("correlate", x, RNG_WEIGHTS)
    out = np.zeros((7, 20), np.float32)[:, ::2]  # a non-contiguous output view
    filters.gaussian_filter(base[:7, :10], 0.8, output=out, backend="cuda")
    np.testing.assert_allclose(out, filters.gaussian_filter(base[:7, :10], 0.8, backend="numpy"),
                               rtol=1e-5, atol=1e-3)  # fmt: skip


@pytest.mark.parametrize("shape", [(0, 5), (3, 0), (0,)])
def test_empty_input(shape, launches):
    x = np.zeros(shape, np.float32)
    weights = np.ones((2,) * len(shape))
    for name, args in (("uniform_filter", (3,)), ("laplace", ()), ("correlate", (weights,))):
        assert getattr(filters, name)(x, *args, backend="cuda").shape == shape
    out = np.zeros(shape, np.uint8)
    assert _cuda.correlate_passes(x, (Pass(0, np.ones(3), "reflect", 0),), 0.0, out) is out
    assert launches == []


@pytest.mark.parametrize("mode", MODES)
def test_one_element(mode):
    for shape in ((1,), (1, 1)):
        x = np.full(shape, 5.0, np.float32)
        check("uniform_filter", x, 3, **mode_kwargs(mode))
        check("gaussian_gradient_magnitude", x, 1.0, **mode_kwargs(mode))
        check("correlate", x, np.ones((3,) * len(shape)) / 3, **mode_kwargs(mode))


def test_zero_dimensional_input():
    x = np.array(3.0, dtype=np.float32)
    assert filters.correlate(x, np.array(2.0), backend="cuda") == 6.0
    assert filters.gaussian_filter(x, 1.0, output=np.uint8, backend="cuda") == 3


def test_one_dimensional_input():
    x = make_input((11,), np.float32, seed=10)
    check("uniform_filter", x, 4, mode="wrap")
    check("gaussian_filter", x, 1.0, order=1)
    check("sobel", x, mode="constant", cval=CVAL)
    check("laplace", x)
    check("gaussian_gradient_magnitude", x, 0.9)
    check("correlate", x, [1.0, 0.0, -2.0, 0.5], origin=1)


def test_three_and_four_dimensional_input():
    x = make_input((3, 5, 6), np.float32, seed=11)
    check("gaussian_filter", x, 0.8, mode="nearest")
    check("uniform_filter", x, (2, 3, 3), mode="constant", cval=CVAL)
    check("laplace", x)
    check("sobel", x, axis=0)
    check("gaussian_gradient_magnitude", x, 0.7)
    check("correlate", x, np.arange(8.0).reshape(2, 2, 2) - 3.5)
    check("uniform_filter", make_input((2, 3, 4, 5), np.float32, seed=12), 3, mode="wrap")


def test_axes_of_a_batch():
    batch = make_input((2, 5, 6, 3), np.uint8, seed=13)  # N, H, W, C
    check("uniform_filter", batch, 3, axes=(1, 2), mode="reflect")
    check("gaussian_filter", batch, (1.0, 0.7), axes=(1, 2), mode="constant", cval=CVAL)
    check("sobel", batch, axis=2, axes=(1, 2), output=np.float32)
    check("gradient_magnitude", batch, axes=(1, 2), mode="wrap")
    check("laplace", batch, axes=(2, 1))
    check("gaussian_laplace", batch, 0.8, axes=(1, 2), output=np.float32)


def test_blocks_stride_over_capped_grids(monkeypatch):
    monkeypatch.setattr(_cuda, "GRID_YZ_LIMIT", 1)  # one block row does every row tile
    x = make_input((2, 9, 10), np.float32, seed=14)
    check("uniform_filter", x, 3, axes=(1, 2))
    check("gradient_magnitude", x, axes=(1, 2), mode="nearest")


# --------------------------------------------------------------------------- which kernels run


def test_adjacent_passes_run_as_one_tile(launches):
    x = make_input(IMAGE, np.float32, seed=15)
    for name, args in (("uniform_filter", (3,)), ("gaussian_filter", (1.0,)), ("sobel", ())):
        launches.clear()
        getattr(filters, name)(x, *args, backend="cuda")
        assert launches == ["tile_kernel"], name


@pytest.mark.parametrize("name", ["laplace", "gradient_magnitude", "gaussian_laplace",
                                  "gaussian_gradient_magnitude"])  # fmt: skip
def test_two_derivatives_on_adjacent_axes_fuse(name, launches):
    x = make_input(IMAGE, np.float32, seed=16)
    getattr(filters, name)(x, *((0.8,) if name.startswith("gaussian") else ()), backend="cuda")
    assert launches == ["tile_kernel"]


def test_halo_beyond_the_tile_limit_runs_1d_passes(launches):
    x = make_input(IMAGE, np.float32, seed=17)
    check("gaussian_filter", x, 5.0)  # radius 20 > MAX_HALO
    assert launches == ["pass_kernel", "pass_kernel"]


def test_tile_that_does_not_fit_shared_memory_runs_1d_passes(monkeypatch, launches):
    monkeypatch.setattr(K, "SHARED_BYTES", 200)
    check("uniform_filter", make_input(IMAGE, np.float32, seed=18), 3)
    assert launches == ["pass_kernel", "pass_kernel"]


def test_three_axes_pair_the_last_two(launches):
    check("gaussian_filter", make_input((3, 5, 6), np.float32, seed=19), 0.8)
    assert launches == ["pass_kernel", "tile_kernel"]


def test_order_is_kept_when_a_nonzero_cval_pads(launches):
    # along axis 1 then axis 0, each padding with cval: the order matters, nothing fuses
    x = make_input(IMAGE, np.float32, seed=20)
    check("gaussian_filter", x, (0.8, 1.1), axes=(1, 0), mode="constant", cval=7.0)
    assert launches == ["pass_kernel", "pass_kernel"]


def test_unfusable_combines_accumulate(launches):
    check("laplace", make_input((3, 5, 6), np.float32, seed=21))
    assert launches == ["pass_kernel", "accumulate_kernel"] * 3 + ["store_kernel"]


def test_general_correlate_and_plain_store(launches):
    x = make_input(IMAGE, np.float32, seed=22)
    check("correlate", x, RNG_WEIGHTS)
    check("gaussian_filter", x, 0.0, output=np.int16)
    assert launches == ["nd_kernel", "store_kernel"]


def test_combine_with_different_modes_on_one_axis_is_not_fused(launches):
    x = make_input(IMAGE, np.float32, seed=23)
    w = np.array([1.0, -2.0, 1.0])
    lists = ((Pass(0, w, "reflect", 0), Pass(1, w, "wrap", 0)),
             (Pass(0, w, "nearest", 0), Pass(1, w, "wrap", 0)))  # fmt: skip
    for combine in ("sum", "hypot"):
        got = _cuda.combine_passes(x, lists, 0.0, np.empty(IMAGE, np.float32), combine)
        want = _scipy.combine_passes(x, lists, 0.0, np.empty(IMAGE, np.float32), combine)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    assert "tile_kernel" in launches  # each list's pair of passes
    assert "accumulate_kernel" in launches


def test_complex_data_takes_the_gpu_reference(launches):
    x = make_input(IMAGE, np.complex64, seed=24)
    check("uniform_filter", x, 3)
    check("correlate", x, RNG_WEIGHTS, mode="constant", cval=1.5)
    check("gaussian_gradient_magnitude", x, 0.8)
    real = make_input(IMAGE, np.float64, seed=25)
    assert check("sobel", real, output=np.complex128).dtype == np.complex128
    with pytest.raises(TypeError, match=r"`output` dtype float64 cannot hold complex results"):
        filters.uniform_filter(x, 3, output=np.float64, backend="cuda")
    assert launches == []


# --------------------------------------------------------------------------- the real compiler

_COMPILE = textwrap.dedent("""
    import numpy as np
    from numba import cuda, typeof
    from numba.cuda.cudadrv import nvvm
    if not nvvm.is_available():
        raise SystemExit("no NVVM")
    import numba.cuda.dispatcher as dispatcher

    class Device:  # device functions compile for the current device's capability
        compute_capability = (9, 0)

    dispatcher.get_current_device = lambda: Device()
    from npaccel import filters
    from npaccel.filters import _cuda
    from npaccel.filters._cuda_common import DeviceCall, kernel_dtype

    def device_call(input, out):
        src = np.ascontiguousarray(input.astype(np.float32) if input.dtype == np.float16
                                   else input)
        dst = np.empty(out.shape, kernel_dtype(out.dtype))
        return DeviceCall(np, src, dst, out, None)

    def launch(kernel, blocks, threads, stream, *args):
        cuda.compile_ptx(kernel.py_func, tuple(typeof(a) for a in args), cc=(9, 0))
        print(kernel.py_func.__qualname__.split(".")[0])

    _cuda.device_call, _cuda.launch = device_call, launch
    image = np.zeros((9, 10, 3), np.uint8)
    filters.gradient_magnitude(image, axes=(0, 1), mode="constant", backend="cuda")
    filters.gaussian_filter(image.astype(np.float16), 0.8, output=np.int16, backend="cuda")
    filters.laplace(image.astype(np.float64), backend="cuda")
    filters.correlate(image, np.ones((2, 2, 2)), output=np.float32, backend="cuda")
""")


@pytest.mark.slow
def test_kernels_compile_for_the_gpu():
    # the simulator runs Python; this types and compiles a few kernels as numba-cuda does for
    # an sm_90 GPU (without one: only PTX), so a kernel the simulator accepts compiles too
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    run = subprocess.run([sys.executable, "-c", _COMPILE], capture_output=True, text=True,
                         env=env)  # fmt: skip
    if run.returncode and "no NVVM" in run.stderr:
        pytest.skip("numba-cuda finds no NVVM (CUDA toolkit) to compile with")
    assert run.returncode == 0, run.stderr[-3000:]
    kinds = set(run.stdout.split())
    assert kinds == {"tile_kernel", "pass_kernel", "accumulate_kernel", "store_kernel",
                     "nd_kernel"}, run.stdout  # fmt: skip
