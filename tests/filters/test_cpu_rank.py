"""The CPU rank kernels (npaccel.filters._cpu_rank) against the reference backend.

Rank filters select input values, so every comparison is exact (bit for bit up to the sign of
a zero). Numba compiles each kernel once per key width (8, 16, 32, 64 bits); the tests reuse
a few dtypes per kernel to keep first-run compile time down, and run every dtype through the
min/max kernel, which shares the key conversions with all the others.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from conftest import check_minmax_of, check_rank_of, exact_rank
from npaccel import threads
from npaccel.filters import _cpu_rank as cpu
from npaccel.filters import _scipy as ref
from npaccel.filters._passes import MinMaxPass
from npaccel.filters._policy import SUPPORTED_DTYPES, store

DTYPES = [d for d in SUPPORTED_DTYPES if d.kind != "c"]
MODES = ("reflect", "mirror", "nearest", "constant", "wrap")


@pytest.fixture(autouse=True)
def one_thread():
    """Thousands of tiny calls: one thread spares a wake-up of the pool per call (tasks are
    still split as for many threads); test_threads_do_not_change_results runs with all."""
    with threads.set_threads(1):
        yield


def random_array(rng, shape, dtype, *, levels=None):
    """Values over the dtype's range (within 2**53, where the float64 reference is exact),
    its extremes included, with many repeats; ``levels`` draws from that many values only."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        pool = rng.normal(0.0, 1e3, 64)
        pool[:6] = [0.0, -0.0, np.inf, -np.inf, np.finfo(dtype).max, np.finfo(dtype).tiny]
    else:
        info = np.iinfo(dtype)
        lo, hi = max(info.min, -(2**53)), min(info.max, 2**53)
        pool = rng.integers(lo, hi, 64, dtype=np.int64 if lo < 0 else np.uint64)
        pool = pool.astype(np.float64)
        pool[:3] = [lo, hi, 0]
    pool = pool[: levels or len(pool)]
    return rng.choice(pool, size=shape).astype(dtype)


def random_footprint(rng, shape, density=0.6):
    fp = rng.random(shape) < density
    fp.flat[rng.integers(fp.size)] = True
    return fp


def origin_limits(size):
    return (-(size // 2), 0, (size - 1) // 2)


def limit_origins(rng, shape):
    return tuple(int(rng.choice(origin_limits(s))) for s in shape)


def check_minmax(*args, **kwargs):
    check_minmax_of(cpu, *args, **kwargs)


def check_rank(*args, **kwargs):
    check_rank_of(cpu, *args, **kwargs)


# ----------------------------------------------------------------------------------------------
# minimum / maximum passes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_minmax_every_dtype_mode_size_and_origin(dtype):
    rng = np.random.default_rng(0)
    x = random_array(rng, (5, 7), dtype)
    for minimum, mode in itertools.product((True, False), MODES):
        for size in (1, 2, 3, 4, 5, 7, 13):  # 5 and up: van Herk rows, doubling columns
            for origin in sorted(set(origin_limits(size))):
                for axis in (0, 1):
                    check_minmax(x, (MinMaxPass(axis, size, mode, origin),), -2.5, minimum)
        check_minmax(x, (MinMaxPass(0, 6, mode, -3), MinMaxPass(1, 3, mode, 1)), 3.0, minimum)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_minmax_shapes_views_and_outputs(dtype):
    rng = np.random.default_rng(1)
    for shape in ((1,), (1, 1), (9,), (3, 1, 4), (2, 3, 4, 5), (40, 1), (1, 40)):
        x = random_array(rng, shape, dtype)
        for _ in range(6):
            axes = rng.permutation(len(shape))[: rng.integers(1, len(shape) + 1)]
            sizes = [int(rng.integers(1, 2 * shape[a] + 4)) for a in axes]
            passes = tuple(
                MinMaxPass(int(a), s, str(rng.choice(MODES)), int(rng.choice(origin_limits(s))))
                for a, s in zip(axes, sizes, strict=True)
            )
            check_minmax(x, passes, float(rng.normal() * 50), bool(rng.integers(2)))
    x = random_array(rng, (12, 30), dtype)
    passes = (MinMaxPass(0, 3, "reflect", 0), MinMaxPass(1, 9, "wrap", 2))
    check_minmax(x[::-2, 3:-1:3], passes, 0.0, True)  # strided, negative steps
    check_minmax(x.T, passes, 0.0, False)
    check_minmax(x, passes, 0.0, True, out_dtype=np.float64)
    check_minmax(x, passes, 0.0, True, out_dtype=np.int8)  # saturating store
    inplace = x.copy()
    want = ref.minmax_passes(x, passes, 0.0, True, np.empty_like(x))
    assert cpu.minmax_passes(inplace, passes, 0.0, True, inplace) is inplace
    np.testing.assert_array_equal(inplace, want)
    check_minmax(x, (), 0.0, True, out_dtype=np.float64)  # no passes: stored as is
    same_axis = (MinMaxPass(1, 3, "reflect", 0), MinMaxPass(1, 4, "wrap", 1))  # in order
    check_minmax(x, (*same_axis, MinMaxPass(0, 2, "nearest", 0)), 0.0, True)


def test_minmax_large_windows_and_parallel_chunks():
    rng = np.random.default_rng(2)
    x = random_array(rng, (3, 700), np.float32)  # few rows: columns split between tasks
    for mode, size in itertools.product(MODES, (31, 64, 257, 1500)):
        check_minmax(x, (MinMaxPass(1, size, mode, -(size // 2)),), 7.0, True)
        check_minmax(x, (MinMaxPass(0, 5, mode, 2), MinMaxPass(1, size, mode, 0)), 7.0, False)
    y = random_array(rng, (300, 4), np.float32)
    for mode in MODES:
        check_minmax(y, (MinMaxPass(0, 61, mode, 30), MinMaxPass(1, 3, mode, 0)), -1.0, True)


# ----------------------------------------------------------------------------------------------
# rank by footprint
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_rank_networks_random_footprints(dtype):
    rng = np.random.default_rng(3)
    cases = [((7, 9), (3, 4)), ((1, 11), (1, 5)), ((9,), (6,)), ((4, 5, 6), (2, 3, 2))]
    cases += [((3, 4, 3, 5), (2, 1, 3, 2)), ((6, 5), (7, 9)), ((2, 40), (2, 1))]
    for shape, fshape in cases:
        x = random_array(rng, shape, dtype, levels=5)
        for mode in MODES:
            fp = random_footprint(rng, fshape)
            n = int(fp.sum())
            for rank in sorted({0, int(rng.integers(n)), n // 2, n - 1}):
                check_rank(x, fp, rank, mode, 2.0, limit_origins(rng, fshape))


@pytest.mark.parametrize(("dtype", "size"), [("uint8", 3), ("float32", 5)])
def test_box_medians(dtype, size):
    rng = np.random.default_rng(4)
    fp = np.ones((size, size), bool)
    for shape in ((1, 1), (1, 6), (2, 2), (7, 1), (13, 17), (5, 300)):
        x = random_array(rng, shape, dtype, levels=7)
        for mode in MODES:
            for origins in itertools.product(origin_limits(size), repeat=2):
                check_rank(x, fp, size * size // 2, mode, 1.0, origins)
    frozen = random_array(rng, (9, 11), dtype)
    frozen.flags.writeable = False  # read through a writeable alias: no new compilation
    check_rank(frozen, fp, size * size // 2, "wrap", 0.0, (0, 0))
    x = random_array(rng, (6, 8, 3), dtype, levels=7)  # an RGB-like stack: x steps of 3
    check_rank(x, fp[:, :, None], size * size // 2, "reflect", 0.0, (0, 1, 0))
    y = random_array(rng, (3, 10, 12), dtype)  # rows come from two axes
    check_rank(y, fp[:, None, :], size * size // 2, "mirror", 0.0, (0, 0, 0))


def test_median3x3_network_is_exact_on_all_zero_one_inputs():
    """0-1 principle: the 3x3 kernel (two outputs sharing two rows) is a comparator network,
    so it is exact for all data if it is exact for every 0-1 input (2**12 of them)."""
    bits = (np.arange(2**12)[:, None] >> np.arange(12)) & 1  # config x row*3 + col
    u = 2**12
    rows = [np.concatenate([bits[:, 3 * r + c] for c in range(3)]) for r in range(4)]
    rows = [r.astype(np.uint8) for r in rows]
    res0, res1 = np.empty(u, np.uint8), np.empty(u, np.uint8)
    cpu._median3x3(res0, res1, *rows, u)
    np.testing.assert_array_equal(res0, bits[:, :9].sum(axis=1) >= 5)
    np.testing.assert_array_equal(res1, bits[:, 3:].sum(axis=1) >= 5)


def test_median5x5_network_is_exact_on_all_sorted_zero_one_columns():
    """0-1 principle for the 5x5 kernel: columns sort exactly (all 2**5 inputs) and the
    network then takes the median of every 0-1 input with sorted columns (6**5 of them)."""
    bits = ((np.arange(32)[:, None] >> np.arange(5)) & 1).astype(np.uint8)
    out = [np.empty(32, np.uint8) for _ in range(5)]
    cpu._sort5_columns(*out, *bits.T.copy())
    np.testing.assert_array_equal(np.stack(out, axis=1), np.sort(bits, axis=1))
    ones = np.array(list(itertools.product(range(6), repeat=5)))  # ones in each column
    u = len(ones)
    planes = [np.concatenate([(ones[:, c] > 4 - k) for c in range(5)]).astype(np.uint8)
              for k in range(5)]  # fmt: skip
    res = np.empty(u, np.uint8)
    cpu._median5x5(res, *planes, u)
    np.testing.assert_array_equal(res, ones.sum(axis=1) >= 13)


@pytest.mark.parametrize("nfr", [1, 2, 3])
def test_network_programs_are_exact_on_zero_one_inputs(nfr):
    """Run ``_network`` programs in NumPy on every 0-1 assignment of the footprint rows."""
    rng = np.random.default_rng(nfr)
    for _ in range(12):
        w = int(rng.integers(1, 5))
        fp = random_footprint(rng, (nfr, w))
        n, span = int(fp.sum()), w - 1
        rank = int(rng.integers(n))
        prog, nwork, res_row, res_shift = cpu._network(fp.tobytes(), nfr, w, rank)
        nbits = nfr * (w + span)  # every extended-row position free
        if nbits > 16:
            continue
        configs = (np.arange(2**nbits)[:, None] >> np.arange(nbits)) & 1
        m = 1 + span  # outputs per row: enough for every column shift
        rows = configs.reshape(-1, nfr, w + span).transpose(1, 2, 0)
        buf = np.zeros((nfr + nwork, w + span + m, len(configs)), np.uint8)
        buf[:nfr, : w + span] = rows
        for a, sa, b, sb, lo, hi, wide in prog:
            length = w + span if wide else m
            va, vb = buf[a, sa : sa + length], buf[b, sb : sb + length]
            low, high = np.minimum(va, vb), np.maximum(va, vb)
            if lo >= 0:
                buf[lo, :length] = low
            if hi >= 0:
                buf[hi, :length] = high
        got = buf[res_row, res_shift : res_shift + m]
        for x in range(m):
            window = np.concatenate([rows[q, x : x + w][fp[q]] for q in range(nfr)])
            np.testing.assert_array_equal(got[x], np.sort(window, axis=0)[rank])


@pytest.mark.parametrize("dtype", ["uint8", "int8"])
def test_large_footprints_use_the_histogram(dtype):
    rng = np.random.default_rng(5)
    x = random_array(rng, (20, 23), dtype)
    for fshape, mode in ((7, 7), "reflect"), ((9, 8), "constant"), ((3, 25), "wrap"):
        fp = random_footprint(rng, fshape, 0.8)
        n = int(fp.sum())
        for rank in (0, n // 3, n - 1):
            check_rank(x, fp, rank, mode, -1.5, limit_origins(rng, fshape))
    y = random_array(rng, (5, 9, 3), dtype)  # x steps of 3
    fp = np.ones((7, 9, 1), bool)
    check_rank(y, fp, 31, "mirror", 0.0, (0, -4, 0))


def test_very_large_footprints_use_quickselect_exactly_in_int64():
    rng = np.random.default_rng(6)
    x = rng.integers(-(2**62), 2**62, (13, 40), dtype=np.int64)  # beyond float64's 2**53
    x[::3] = x[0, 0]  # repeats
    fp = random_footprint(rng, (25, 30), 0.9)
    n = int(fp.sum())
    assert n > cpu._NETWORK_MAX
    for rank, mode in ((0, "reflect"), (n // 2, "constant"), (n - 1, "wrap")):
        got = cpu.rank_nd(x, fp, rank, mode, 7.0, (0, 0), np.empty_like(x))
        np.testing.assert_array_equal(got, exact_rank(x, fp, rank, mode, 7, (0, 0)))
    y = random_array(rng, (11, 37), np.float64)
    check_rank(y, fp, n // 2, "nearest", 0.0, (12, -15))


def test_64_bit_integers_are_exact():
    """The reference (and scipy.ndimage itself for int64) rounds through float64; these
    kernels select in the input's dtype."""
    x = np.array([[2**63 - 1, 2**62 + 1, 2**62, -(2**63), 5]], dtype=np.int64)
    passes = (MinMaxPass(1, 3, "nearest", 0),)
    got = cpu.minmax_passes(x, passes, 0.0, False, np.empty_like(x))
    np.testing.assert_array_equal(
        got, exact_rank(x, np.ones((1, 3), bool), 2, "nearest", 0, (0, 0))
    )
    u = np.array([2**64 - 1, 2**64 - 2, 3, 2**63 + 1] * 200, dtype=np.uint64)
    fp = np.ones(cpu._NETWORK_MAX + 1, bool)  # quickselect
    for mode in MODES:
        got = cpu.rank_nd(u, fp, 300, mode, 5.0, (0,), np.empty_like(u))
        np.testing.assert_array_equal(got, exact_rank(u, fp, 300, mode, 5, (0,)))


def test_nan_counts_as_the_largest_value():
    rng = np.random.default_rng(8)
    x = random_array(rng, (11, 12), np.float32)
    x[rng.random(x.shape) < 0.25] = np.nan
    x[0, 0] = -np.nan  # a NaN with the sign bit set, as inf - inf gives on x86
    cases = [(np.ones((3, 3), bool), r) for r in (0, 8)]  # min/max; the 5x5 median below
    # covers the median kernels' NaN fallback (the same for 3x3)
    cases += [(np.ones((5, 5), bool), 12), (np.array([[1, 0, 1], [0, 1, 1]], bool), 2)]
    ends = [("reflect", 0.0), ("constant", np.nan)]
    for (fp, rank), (mode, cval) in itertools.product(cases, ends):
        got = cpu.rank_nd(x, fp, rank, mode, cval, (0, 0), np.empty_like(x))
        want = exact_rank(x, fp, rank, mode, cval, (0, 0))
        np.testing.assert_array_equal(got, want)
    for minimum in (True, False):
        got = cpu.minmax_passes(x, (MinMaxPass(1, 7, "wrap", 0),), 0.0, minimum, np.empty_like(x))
        fp = np.ones((1, 7), bool)
        want = exact_rank(x, fp, 0 if minimum else 6, "wrap", 0.0, (0, 0))
        np.testing.assert_array_equal(got, want.astype(np.float32))


def test_nan_cval_counts_as_the_largest_value_for_integer_input_too():
    rng = np.random.default_rng(9)
    x = random_array(rng, (6, 7), np.uint8)
    fp = np.ones((3, 3), bool)  # runs in float64: ranks 0 and 8 take the min/max kernel
    for rank, out_dtype in itertools.product((0, 8), (np.uint8, np.float32)):
        got = cpu.rank_nd(x, fp, rank, "constant", np.nan, (0, 0), np.empty(x.shape, out_dtype))
        want = exact_rank(x.astype(np.float64), fp, rank, "constant", np.nan, (0, 0))
        np.testing.assert_array_equal(got, store(want, np.empty(x.shape, out_dtype)))


def test_signed_zeros_select_as_equal_values():
    x = np.array([1.0, -0.0, 0.0, 0.0, -0.0], np.float32)
    got = cpu.minmax_passes(x, (MinMaxPass(0, 2, "reflect", 0),), 0.0, True, np.empty_like(x))
    np.testing.assert_array_equal(got, ndimage.minimum_filter1d(x, 2))  # -0.0 == 0.0
    np.testing.assert_array_equal(np.signbit(got), [False, True, True, False, True])


# ----------------------------------------------------------------------------------------------
# random shapes, strides, footprints
# ----------------------------------------------------------------------------------------------


@st.composite
def rank_cases(draw):
    ndim = draw(st.integers(1, 4))
    shape = tuple(draw(st.lists(st.integers(1, 7), min_size=ndim, max_size=ndim)))
    fshape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    size = int(np.prod(fshape))
    fp = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), dtype=bool)
    fp = fp.reshape(fshape)
    if not fp.any():
        fp.flat[0] = True
    rank = draw(st.integers(0, int(fp.sum()) - 1))
    dtype = draw(st.sampled_from(["uint8", "float32"]))
    if dtype == "float32" and fp.all() and rank == fp.size // 2:
        dtype = "uint8"  # (a float32 box median would compile one more kernel)
    origins = tuple(draw(st.integers(-(s // 2), (s - 1) // 2)) for s in fshape)
    mode = draw(st.sampled_from(MODES))
    steps = tuple(draw(st.sampled_from([1, -1, 2])) for _ in shape)
    seed = draw(st.integers(0, 2**16))
    return shape, fp, rank, origins, mode, dtype, steps, seed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rank_cases())
def test_random_cases_match_the_reference(case):
    shape, fp, rank, origins, mode, dtype, steps, seed = case
    rng = np.random.default_rng(seed)
    base = random_array(rng, tuple(s * abs(k) for s, k in zip(shape, steps, strict=True)), dtype,
                        levels=4)  # fmt: skip
    x = base[tuple(slice(None, None, k) for k in steps)]
    check_rank(x, fp, rank, mode, 1.0, origins)
    sizes_origins = enumerate(zip(fp.shape, origins, strict=True))
    passes = tuple(MinMaxPass(a, s, mode, o) for a, (s, o) in sizes_origins)
    check_minmax(x, passes, 1.0, rank % 2 == 0)


def test_threads_do_not_change_results():
    rng = np.random.default_rng(10)
    x = random_array(rng, (37, 301), np.uint8)
    y = random_array(rng, (5, 3, 260), np.float32)
    passes = (MinMaxPass(0, 9, "reflect", 1), MinMaxPass(1, 33, "wrap", 0))
    fp = random_footprint(rng, (1, 3, 4))
    fp5 = np.ones((1, 5, 5), bool)
    cases = [
        lambda: cpu.minmax_passes(x, passes, 0.0, True, np.empty_like(x)),
        lambda: cpu.rank_nd(x, np.ones((3, 3), bool), 4, "mirror", 0.0, (0, 0), np.empty_like(x)),
        lambda: cpu.rank_nd(y, fp5, 12, "nearest", 0.0, (0, 0, 0), np.empty_like(y)),
        lambda: cpu.rank_nd(y, fp, 3, "constant", 1.0, (0, 0, 0), np.empty_like(y)),
    ]
    for case in cases:
        outs = []
        for n in (1, max(2, threads.usable_cpus())):
            with threads.set_threads(n):
                outs.append(case())
        np.testing.assert_array_equal(*outs)
