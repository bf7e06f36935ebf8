"""The cuda backend's rank filters (npaccel.filters._cuda_rank) against the oracle, run by
numba-cuda's simulator.

Rank filters select input values, so every comparison is exact. Every simulated CUDA thread
is a Python thread: arrays are tiny and blocks, tiles and grids are shrunk (`small_launches`)
until a 7 x 9 image spans several tiles and grid-stride loops wrap, so halos, partial tiles
and edge maps all run. Which kernel a call launches is pinned by spying on the launcher.
tests/gpu/test_rank_cuda.py runs the same kernels on a GPU at realistic sizes.
"""

from __future__ import annotations

import inspect
import itertools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import (
    CVAL,
    MODES,
    check_against_reference,
    check_minmax_of,
    check_rank_of,
    exact_rank,
    make_input,
)
from npaccel.cuda._device import simulated

if not simulated():
    pytest.skip("runs the cuda kernels under numba-cuda's simulator (NUMBA_ENABLE_CUDASIM=1); "
                "with a GPU, tests/gpu/test_rank_cuda.py runs them",
                allow_module_level=True)  # fmt: skip

from numba import cuda

from npaccel import filters
from npaccel.filters import _cpu_rank as cpu
from npaccel.filters import _cuda_common as C
from npaccel.filters import _cuda_rank as G
from npaccel.filters import _scipy as ref
from npaccel.filters._passes import MinMaxPass
from npaccel.filters._policy import store

IMAGE = (7, 9)
NON_COMPLEX = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64",
               "float16", "float32", "float64")  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def quick_thread_switches(fast_thread_switches):
    return fast_thread_switches


@pytest.fixture(autouse=True)
def small_launches(monkeypatch):
    """Tiles of 4 x 4 (3x3) and 2 x 4 (5x5) outputs, at most 2 blocks per grid dimension."""
    monkeypatch.setattr(G, "PASS_BLOCK", 16)
    monkeypatch.setattr(G, "MEDIAN_THREADS", (4, 2))
    monkeypatch.setattr(G, "MEDIAN3_ROWS", 2)
    monkeypatch.setattr(G, "MEDIAN5_ROWS", 1)
    monkeypatch.setattr(G, "SELECT_BLOCK", 16)
    monkeypatch.setattr(G, "GRID_LIMIT", 2)
    monkeypatch.setattr(C, "THREADS", 32)


@pytest.fixture
def launches(monkeypatch):
    """The factory name of every kernel launched ("_median3x3_kernel", "_pass_kernel", ...)."""
    names: list[str] = []
    launch = G.launch

    def spy(kernel, *args):
        names.append(getattr(kernel, "py_func", kernel).__qualname__.split(".")[0])
        return launch(kernel, *args)

    monkeypatch.setattr(G, "launch", spy)
    return names


def random_array(rng, shape, dtype, levels=None):
    """Values over the dtype's range with repeats (``levels``: drawn from that many)."""
    x = make_input(shape, dtype, seed=int(rng.integers(2**16)))
    if levels:
        pool = np.unique(x)[:levels] if x.size else x
        x = rng.choice(pool if pool.size else np.zeros(1, x.dtype), size=shape).astype(x.dtype)
    return x


def random_footprint(rng, shape, density=0.6):
    fp = rng.random(shape) < density
    fp.flat[rng.integers(fp.size)] = True
    return fp


def check(name, x, *args, **kwargs):
    """The public function on backend 'cuda' against the oracle (exact)."""
    return check_against_reference(name, x, *args, backend="cuda", **kwargs)


def check_minmax(*args, **kwargs):
    check_minmax_of(G, *args, **kwargs)


def check_rank(*args, **kwargs):
    check_rank_of(G, *args, **kwargs)


FP_HOLES = np.array([[1, 0, 1], [0, 1, 1]], bool)


def limits(size):
    return (-(size // 2), (size - 1) // 2)


# ----------------------------------------------------------------------------------------------
# minimum / maximum passes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_minmax_passes_every_mode_size_and_origin(dtype, monkeypatch, launches):
    """Direct windows (2, 3, 4) and van Herk segments (5 and 7, shorter and longer than the
    axis; `VAN_HERK_MIN` lowered so several segments and a partial one run)."""
    monkeypatch.setattr(G, "VAN_HERK_MIN", 5)
    rng = np.random.default_rng(0)
    x = random_array(rng, (5, 7), dtype)
    cases = itertools.product(MODES, (2, 3, 4, 5, 7, 11), (0, 1))
    for index, (mode, size, axis) in enumerate(cases):
        origin = limits(size)[index % 2]
        check_minmax(x, (MinMaxPass(axis, size, mode, origin),), -3.0, index % 3 != 0)
    assert {"_pass_kernel"} == set(launches)


def test_minmax_passes_chain_views_outputs_and_in_place(launches):
    rng = np.random.default_rng(1)
    x = random_array(rng, (6, 11), "float32")
    passes = (MinMaxPass(0, 3, "reflect", 0), MinMaxPass(1, 20, "wrap", 2))  # direct, van Herk
    check_minmax(x, passes, 0.0, True)
    check_minmax(x[::-2, 3:-1:2], passes, 0.0, False)  # negative steps
    check_minmax(x.T, passes, 0.0, False)
    check_minmax(x, passes, 0.0, True, out_dtype=np.float64)
    check_minmax(x, passes, 0.0, True, out_dtype=np.int8)  # saturating store
    same_axis = (MinMaxPass(1, 3, "reflect", 0), MinMaxPass(1, 4, "wrap", 1))  # in order
    check_minmax(x, (*same_axis, MinMaxPass(0, 2, "nearest", 0)), 0.0, True)
    check_minmax(x, (), 0.0, True, out_dtype=np.float64)  # no passes: stored as is
    want = ref.minmax_passes(x, passes, 0.0, True, np.empty_like(x))
    inplace = x.copy()
    assert G.minmax_passes(inplace, passes, 0.0, True, inplace) is inplace
    np.testing.assert_array_equal(inplace, want)
    assert "_store_kernel" in launches
    assert "_pass_kernel" in launches


@pytest.mark.parametrize("dtype", NON_COMPLEX)
def test_minmax_every_dtype(dtype):
    rng = np.random.default_rng(2)
    x = random_array(rng, (3, 4, 5), dtype)
    passes = (MinMaxPass(0, 2, "constant", 0), MinMaxPass(2, 17, "mirror", -8))
    check_minmax(x, passes, CVAL, True)
    check_minmax(x, (MinMaxPass(1, 3, "constant", 1),), -1e6, False)  # saturated cval


def test_minimum_and_maximum_filters_through_the_public_api():
    rng = np.random.default_rng(3)
    x = random_array(rng, IMAGE, "uint8")
    fp = np.array([[1, 0, 1], [0, 1, 0]], bool)
    for mode in MODES:
        kw = {"mode": mode, "cval": CVAL}
        check("minimum_filter", x, size=(3, 2), origin=(1, 0), **kw)
        check("maximum_filter", x, footprint=fp, origin=(0, -1), **kw)
        check("maximum_filter1d", x, 4, axis=0, origin=-2, **kw)
        check("minimum_filter1d", x[0], 25, **kw)  # window beyond the axis


# ----------------------------------------------------------------------------------------------
# medians of 3x3 and 5x5 boxes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("dtype", "size"), [("uint8", 3), ("float32", 3), ("int16", 5),
                                             ("float64", 5)])  # fmt: skip
def test_box_medians_every_mode_and_origin(dtype, size, launches):
    rng = np.random.default_rng(4)
    fp = np.ones((size, size), bool)
    x = random_array(rng, IMAGE, dtype, levels=9)
    for mode, origins in zip(MODES, itertools.cycle(itertools.product(limits(size), repeat=2)),
                             strict=False):  # fmt: skip
        check_rank(x, fp, size * size // 2, mode, CVAL, origins)
    for shape in ((1, 1), (2, 3), (1, 6), (6, 1)):  # smaller than the window
        check_rank(random_array(rng, shape, dtype), fp, size * size // 2, "reflect", 0.0, (0, 0))
    assert set(launches) == {f"_median{size}x{size}_kernel"}


def test_box_medians_on_image_batches_and_stacks(launches):
    rng = np.random.default_rng(5)
    batch = random_array(rng, (2, 5, 6, 3), "uint8")  # (N, H, W, C): W neighbours 3 apart
    for size, mode in ((3, "mirror"), (5, "constant")):
        check("median_filter", batch, size=size, axes=(1, 2), mode=mode,
                                cval=CVAL)  # fmt: skip
    check("rank_filter", batch, 2, footprint=FP_HOLES, axes=(2, 1), mode="wrap")
    volume = random_array(rng, (3, 4, 6), "float32")  # filtered axes 0, 1 of a 3-D array
    check_rank(volume, np.ones((3, 3, 1), bool), 4, "wrap", 0.0, (1, 0, 0))
    assert launches == ["_median3x3_kernel", "_median5x5_kernel", "_select_kernel",
                        "_median3x3_kernel"]  # fmt: skip


def test_specialised_median_plans():
    """The median tiles take boxes on two adjacent axes with a small inner step only."""
    box3, box5 = np.ones((3, 3), bool), np.ones((5, 5), bool)

    def method(shape, fp, rank, itemsize=4):
        return G.plan_rank(shape, fp, rank, (0,) * len(shape), itemsize).method

    assert method((8, 9), box3, 4) == "median3x3"
    assert method((8, 9), box5, 12) == "median5x5"
    assert method((2, 8, 9, 3), box3[None, :, :, None], 4) == "median3x3"
    plan = G.plan_rank((2, 8, 9, 3), box3[None, :, :, None], 4, (0, 1, -1, 0), 1)
    assert (plan.planes, plan.height, plan.w, plan.step, plan.offy, plan.offx) == (2, 8, 9, 3,
                                                                                2, 0)  # fmt: skip
    assert method((8, 9, G.MEDIAN_STEP_MAX + 1), box3[:, :, None], 4) == "select"
    assert method((8, 2, 9), box3[:, None, :], 4) == "select"  # not adjacent
    assert method((8, 9), box3, 3) == "select"
    assert method((8, 9), np.ones((3, 5), bool), 7) == "select"
    holes = box3.copy()
    holes[1, 1] = False
    assert method((8, 9), holes, 4) == "select"
    assert method((8, 9), holes, 0) == "extreme"
    assert method((30, 30), np.ones((16, 16), bool), 128, itemsize=1) == "radix"
    assert method((30, 30), np.ones((16, 16), bool), 128, itemsize=2) == "select"
    big = np.ones((33, 33), bool)
    assert method((40, 40), big, 500, itemsize=8) == "radix"  # beyond LOCAL_MAX


def _comparators(fn) -> list[str]:
    source = inspect.getsource(getattr(fn, "py_func", fn))
    return re.findall(r"^\s*(t\d+(?:, t\d+)? = _\w+\(\w+, \w+\))", source, flags=re.M)


def test_median5x5_network_is_the_cpu_backends():
    """The 5x5 network is the cpu backend's (`_cpu_rank._median5x5`, proved there on every
    0-1 input with sorted columns), comparator for comparator."""
    ops = _comparators(G._median25)
    assert len(ops) == 74
    assert ops == _comparators(cpu._median5x5)


def test_median5x5_comparators_on_zero_one_and_permuted_inputs():
    """`_sort5` sorts all 2**5 0-1 columns and all 120 orders of 5 values; `_median25` takes
    the median of random 0-1 inputs with sorted columns (simulated device calls are slow)."""
    bits = ((np.arange(32)[:, None] >> np.arange(5)) & 1).astype(np.uint8)
    perms = np.array(list(itertools.permutations(range(5))), np.uint8)
    columns = np.concatenate([bits, perms])
    ones = np.random.default_rng(6).integers(0, 6, (600, 5))  # ones per sorted column
    sorted_cols = (ones[:, :, None] > 4 - np.arange(5)).astype(np.uint8).reshape(-1, 25)

    @cuda.jit
    def kernel(cols, res, v, med):
        for i in range(cuda.grid(1), cols.shape[0], cuda.gridsize(1)):
            res[i, 0], res[i, 1], res[i, 2], res[i, 3], res[i, 4] = G._sort5(
                cols[i, 0], cols[i, 1], cols[i, 2], cols[i, 3], cols[i, 4]
            )
        for i in range(cuda.grid(1), v.shape[0], cuda.gridsize(1)):
            med[i] = G._median25(*v[i])

    res = np.empty_like(columns)
    med = np.empty(len(sorted_cols), np.uint8)
    G.launch(kernel, 1, 32, 0, columns, res, sorted_cols, med)
    np.testing.assert_array_equal(res, np.sort(columns, axis=1))
    np.testing.assert_array_equal(med, ones.sum(axis=1) >= 13)


# ----------------------------------------------------------------------------------------------
# any footprint
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_footprints_with_holes_every_mode(dtype, launches):
    rng = np.random.default_rng(7)
    cases = [(IMAGE, (3, 4)), ((9,), (6,)), ((3, 4, 5), (2, 3, 2)), ((4, 3), (7, 6))]
    for (shape, fshape), mode in itertools.product(cases, MODES):
        x = random_array(rng, shape, dtype, levels=6)
        fp = random_footprint(rng, fshape)
        n = int(fp.sum())
        origins = tuple(int(rng.choice(limits(s))) for s in fshape)
        for rank in sorted({0, int(rng.integers(n)), n - 1}):
            check_rank(x, fp, rank, mode, CVAL, origins)
    assert set(launches) == {"_select_kernel"}


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float64"])
def test_radix_select_beyond_the_local_array(dtype, monkeypatch):
    monkeypatch.setattr(G, "LOCAL_MAX", 5)
    rng = np.random.default_rng(8)
    x = random_array(rng, IMAGE, dtype, levels=12)
    for mode in ("reflect", "constant", "wrap"):
        fp = random_footprint(rng, (3, 4), 0.8)
        n = int(fp.sum())
        assert G.plan_rank(x.shape, fp, 1, (0, 0), x.itemsize).method == "radix"
        for rank in (1, n // 2, n - 2):
            check_rank(x, fp, rank, mode, -CVAL, (0, 1))


def test_rank_and_percentile_filters_through_the_public_api():
    rng = np.random.default_rng(9)
    x = random_array(rng, IMAGE, "float32")
    fp = np.array([[0, 1, 1], [1, 0, 1]], bool)
    check("rank_filter", x, -2, footprint=fp, mode="constant", cval=CVAL)
    check("rank_filter", x, -1, size=(2, 3), origin=(-1, 1))
    check("rank_filter", x, 1, size=3, mode="mirror")
    check("percentile_filter", x, 30, size=(3, 2), mode="wrap")
    check("percentile_filter", x, -20, footprint=fp, mode="nearest")
    check("median_filter", x[0], footprint=[1, 0, 1, 1])  # 1-D with a hole
    check("median_filter", x[:, :4], size=(4, 2), mode="reflect")


# ----------------------------------------------------------------------------------------------
# dtypes, numbers, layouts
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", NON_COMPLEX)
def test_every_dtype_median_and_footprint(dtype):
    rng = np.random.default_rng(10)
    x = random_array(rng, (5, 6), dtype)
    check_rank(x, np.ones((3, 3), bool), 4, "constant", CVAL, (0, 0))
    check_rank(x, np.array([[1, 1, 0], [0, 1, 1]], bool), 2, "constant", -CVAL, (0, 1))


def test_64_bit_integers_beyond_float64_are_exact():
    big = np.array([2**64 - 1, 2**64 - 2, 2**63 + 1, 2**63, 3, 2**53 + 1, 2**53], np.uint64)
    u = np.random.default_rng(11).choice(big, size=(5, 6))
    s = (u - np.uint64(2**63)).view(np.int64)  # the same order, signed
    for x in (u, s):
        for fp, rank in ((np.ones((3, 3), bool), 4), (np.array([[1, 0, 1], [1, 1, 0]], bool), 2),
                         (np.ones((3, 1), bool), 2)):  # fmt: skip
            for mode in ("reflect", "wrap"):
                got = G.rank_nd(x, fp, rank, mode, 0.0, (0, 0), np.empty_like(x))
                np.testing.assert_array_equal(got, exact_rank(x, fp, rank, mode, 0, (0, 0)))
        check_minmax(x, (MinMaxPass(1, 20, "nearest", 3),), 0.0, False)  # van Herk


def test_nan_inf_and_signed_zeros_follow_the_key_order():
    """NaN (either sign) is the largest value, as on the cpu backend; checked against
    ``np.sort`` of every window and against backend 'cpu'."""
    rng = np.random.default_rng(12)
    for dtype in ("float32", "float64"):
        x = random_array(rng, IMAGE, dtype, levels=5)
        x[rng.random(x.shape) < 0.2] = np.nan
        x[rng.random(x.shape) < 0.1] = np.inf
        x[rng.random(x.shape) < 0.1] = -np.inf
        x[0, 0] = -np.nan
        x[1, 1:3] = (0.0, -0.0)
        box3, box5, row = np.ones((3, 3), bool), np.ones((5, 5), bool), np.ones((1, 20), bool)
        cases = [(box3, 4), (box5, 12), (box3, 0), (row, 19), (FP_HOLES, 2)]
        ends = [("reflect", 0.0), ("constant", np.nan)]
        for (fp, rank), (mode, cval) in itertools.product(cases, ends):
            got = G.rank_nd(x, fp, rank, mode, cval, (0, 0), np.empty_like(x))
            want = exact_rank(x, fp, rank, mode, cval, (0, 0))
            np.testing.assert_array_equal(got, want, err_msg=f"{fp.shape} {rank} {mode}")
            if dtype == "float32":
                np.testing.assert_array_equal(got, cpu.rank_nd(x, fp, rank, mode, cval, (0, 0),
                                                               np.empty_like(x)))  # fmt: skip


def test_nan_cval_for_integer_input_runs_in_float64():
    rng = np.random.default_rng(13)
    x = random_array(rng, (6, 7), "uint8")
    for fp, rank, out_dtype in ((np.ones((3, 3), bool), 8, np.uint8),
                                (np.ones((3, 3), bool), 4, np.float32),
                                (np.array([[1, 1], [0, 1]], bool), 1, np.int16)):  # fmt: skip
        got = G.rank_nd(x, fp, rank, "constant", np.nan, (0, 0), np.empty(x.shape, out_dtype))
        want = exact_rank(x.astype(np.float64), fp, rank, "constant", np.nan, (0, 0))
        np.testing.assert_array_equal(got, store(want, np.empty(x.shape, out_dtype)))


def test_outputs_of_another_dtype_are_stored_by_the_policy(launches):
    rng = np.random.default_rng(14)
    fp = np.array([[1, 0, 1], [1, 1, 0]], bool)
    cases = [("float32", np.uint8), ("float32", np.float16), ("int16", np.float32),
             ("int64", np.int8), ("uint16", np.int64), ("float16", np.float64)]  # fmt: skip
    for dtype, out_dtype in cases:
        x = random_array(rng, (5, 6), dtype)
        check_rank(x, np.ones((3, 3), bool), 4, "constant", CVAL, (0, 0), out_dtype)
        check_rank(x, fp, 3, "reflect", 0.0, (0, 0), out_dtype)
    assert "_store_kernel" in launches


def test_float16_output_from_float64_rounds_once():
    """1 + 2**-11 + 2**-40 rounds to float16 upwards; through float32 (1 + 2**-11, a tie)
    it would round to even, 1.0: the store rounds the float32 to odd first."""
    x = np.full((3, 4), 1 + 2.0**-11 + 2.0**-40)
    x[0, 0] = 7.0
    out = G.rank_nd(x, np.ones((1, 3), bool), 1, "nearest", 0.0, (0, 0),
                    np.empty(x.shape, np.float16))  # fmt: skip
    assert out[2, 2] == np.float16(1 + 2.0**-10) == np.float16(x[2, 2])
    check_rank(x * np.arange(1, 13).reshape(3, 4) * 3.3, np.ones((2, 2), bool), 1, "wrap", 0.0,
               (0, 0), np.float16)  # fmt: skip


def test_in_place_views_and_degenerate_shapes():
    rng = np.random.default_rng(15)
    x = random_array(rng, (8, 10), "float32")
    fp = np.array([[1, 1, 0], [0, 1, 1]], bool)
    for view in (x[::-1, ::-2], x.T, x[1:-1:3]):
        check_rank(view, np.ones((3, 3), bool), 4, "reflect", 0.0, (0, 0))
        check_rank(view, fp, 2, "nearest", 0.0, (0, 1))
    for shape in ((0, 5), (1,), (1, 1)):
        y = random_array(rng, shape, "float32")
        for f in (np.ones((1,) * len(shape), bool), np.ones((3,) * len(shape), bool)):
            check_rank(y, f, f.size // 2, "reflect", 0.0, (0,) * len(shape))
        check_minmax(y, tuple(MinMaxPass(a, 3, "wrap", 0) for a in range(len(shape))), 0.0, True)
    scalar = np.array(2.5, np.float32)  # 0-d: the input itself
    assert G.rank_nd(scalar, np.ones((), bool), 0, "reflect", 0.0, (), np.empty((), np.int8)) == 2
    assert G.minmax_passes(scalar, (), 0.0, True, np.empty((), np.float64)) == 2.5
    inplace = x.copy()
    want = filters.median_filter(x, footprint=fp, backend="numpy")
    assert filters.median_filter(inplace, footprint=fp, output=inplace, backend="cuda") is inplace
    np.testing.assert_array_equal(inplace, want)
    inplace = x.copy()
    want = filters.median_filter(x, 3, backend="numpy")
    assert filters.median_filter(inplace, 3, output=inplace, backend="cuda") is inplace
    np.testing.assert_array_equal(inplace, want)


@st.composite
def rank_cases(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 6), min_size=ndim, max_size=ndim)))
    fshape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    size = int(np.prod(fshape))
    fp = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), dtype=bool)
    fp = fp.reshape(fshape)
    if not fp.any():
        fp.flat[0] = True
    rank = draw(st.integers(0, int(fp.sum()) - 1))
    origins = tuple(draw(st.integers(*limits(s))) for s in fshape)
    mode = draw(st.sampled_from(MODES))
    steps = tuple(draw(st.sampled_from([1, -1, 2])) for _ in shape)
    dtype = draw(st.sampled_from(["uint8", "float32"]))
    return shape, fp, rank, origins, mode, steps, dtype, draw(st.integers(0, 2**16))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rank_cases())
def test_random_shapes_strides_and_footprints(case):
    shape, fp, rank, origins, mode, steps, dtype, seed = case
    rng = np.random.default_rng(seed)
    base = random_array(rng, tuple(s * abs(k) for s, k in zip(shape, steps, strict=True)), dtype,
                        levels=4)  # fmt: skip
    x = base[tuple(slice(None, None, k) for k in steps)]
    check_rank(x, fp, rank, mode, CVAL, origins)
    sizes_origins = enumerate(zip(fp.shape, origins, strict=True))
    passes = tuple(MinMaxPass(a, s, mode, o) for a, (s, o) in sizes_origins)
    check_minmax(x, passes, CVAL, rank % 2 == 0)
