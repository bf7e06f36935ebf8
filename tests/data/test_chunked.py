"""npaccel.data.map_blocks / map_overlap / reduce against in-memory NumPy and npaccel.filters.

Every chunked result is compared with the same computation on the whole array in memory:
bit for bit for map_blocks, map_overlap and min/max; within stated tolerances for float
sums and means. Chunk sizes are chosen not to divide the shapes, and smaller than the halo.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import npaccel.data._chunked as chunked
from npaccel import filters
from npaccel.data import map_blocks, map_overlap, reduce
from npaccel.data._npy import NpyError

MODES = ("reflect", "mirror", "nearest", "constant", "wrap")
RNG = np.random.default_rng(20240611)


def save(tmp_path: Path, array: np.ndarray, name: str = "src.npy") -> Path:
    path = tmp_path / name
    np.save(path, array)
    return path


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".npy"))


def smallest_budget(call) -> int:
    """The budget `call(max_memory)` says it needs at least (from its error message)."""
    with pytest.raises(ValueError, match=r"pass max_memory >= (\d+)") as info:
        call(1)
    return int(str(info.value).rsplit(">= ", 1)[1])


@pytest.fixture
def x2(tmp_path):
    """A (37, 29) float32 image saved as src.npy."""
    x = (RNG.random((37, 29)) * 100).astype(np.float32)
    return x, save(tmp_path, x)


# --- map_overlap equals the in-memory filter --------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(53,), (37, 29), (9, 8, 7)], ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("chunk_size", [1, 2, 7])
def test_uniform3_every_mode_bit_exact(tmp_path, mode, shape, chunk_size):
    x = RNG.random(shape, dtype=np.float32)
    out = map_overlap(lambda b: filters.uniform_filter(b, 3, mode=mode), save(tmp_path, x),
                      tmp_path / "out.npy", depth=1, mode=mode, chunk_size=chunk_size)
    assert isinstance(out, np.memmap)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, filters.uniform_filter(x, 3, mode=mode))
    assert leftovers(tmp_path) == []  # no .partial, no checkpoint


# (filter, its halo) for the filters of the brief; the halo mode rule of docs/data-chunked.md:
# the filter's own mode, or None (the filter handles the array's true edges) for any mode
# but 'wrap' — needed for 'constant' with kernels over 5 taps.
FILTERS = {
    "uniform(5,3)": (lambda b, m: filters.uniform_filter(b, (5, 3), mode=m), (2, 1)),
    "gaussian(1.5)": (lambda b, m: filters.gaussian_filter(b, 1.5, mode=m), 6),
    "median(5)": (lambda b, m: filters.median_filter(b, 5, mode=m), 2),
    "sobel(axis=0)": (lambda b, m: filters.sobel(b, 0, mode=m), 1),
    "sobel(axis=1)": (lambda b, m: filters.sobel(b, 1, mode=m), 1),
}
EXACT = [(f, m, halo) for f in FILTERS for m in MODES
         for halo in ([m] if m == "wrap" else [m, None])
         if not (halo == "constant" and f.startswith("gaussian"))]  # fmt: skip


@pytest.mark.parametrize(("name", "mode", "halo"), EXACT)
def test_filters_bit_exact(x2, tmp_path, name, mode, halo):
    x, src = x2
    f, depth = FILTERS[name]
    for chunk_size in (1, 3, 10):
        out = map_overlap(lambda b, f=f: f(b, mode), src, tmp_path / "out.npy", depth=depth,
                          mode=halo, chunk_size=chunk_size)  # fmt: skip
        np.testing.assert_array_equal(out, f(x, mode), err_msg=f"chunk_size={chunk_size}")


def test_constant_halo_rounds_long_kernels_differently(x2, tmp_path):
    """Why the rule above exists: npaccel's kernels add cval taps one by one, data taps four at
    a time, so a constant-padded halo changes the rounding of a 13-tap Gaussian."""
    x, src = x2
    out = map_overlap(lambda b: filters.gaussian_filter(b, 1.5, mode="constant"), src,
                      tmp_path / "out.npy", depth=6, mode="constant", chunk_size=3)
    want = filters.gaussian_filter(x, 1.5, mode="constant")
    assert not np.array_equal(out, want)
    np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_chunks_and_array_smaller_than_depth(tmp_path, mode):
    x = RNG.random((5, 8, 3))
    f = lambda b: filters.uniform_filter(b, (15, 3, 1), mode=mode)  # noqa: E731
    # the halo rule: the filter's own mode, or None but for 'wrap'; not 'constant' for 15 taps
    for halo in {"wrap": ["wrap"], "constant": [None]}.get(mode, [None, mode]):
        out = map_overlap(f, save(tmp_path, x), tmp_path / "out.npy", depth=(7, 1, 0),
                          mode=halo, chunk_size=2)  # fmt: skip
        np.testing.assert_array_equal(out, f(x), err_msg=f"halo {halo}")


@pytest.mark.parametrize("depth", [(1, 2, 0), {0: 1, 1: 2}, [1, 2, 0]])
def test_depth_per_axis_and_chunk_axis(tmp_path, depth):
    x = RNG.random((9, 11, 4), dtype=np.float32)
    f = lambda b: filters.uniform_filter(b, (3, 5, 1), mode="wrap")  # noqa: E731
    for axis in (0, 1):
        out = map_overlap(f, save(tmp_path, x), np.empty_like(x), depth=depth, mode="wrap",
                          axis=axis, chunk_size=4)  # fmt: skip
        np.testing.assert_array_equal(out, f(x))


def test_halo_fill_matches_np_pad(tmp_path):
    """What func sees: the chunk with its halo, exactly np.pad of the array by the mode."""
    x = RNG.integers(0, 100, (7, 5)).astype(np.int16)
    pads = {"reflect": "symmetric", "mirror": "reflect", "nearest": "edge", "wrap": "wrap",
            "constant": "constant"}  # fmt: skip
    for mode, np_mode in pads.items():
        seen = []
        kwargs = {"constant_values": 9} if mode == "constant" else {}
        padded = np.pad(x, ((3, 3), (2, 2)), mode=np_mode, **kwargs)
        map_overlap(lambda b, seen=seen: seen.append(b.copy()) or b, x, np.empty_like(x),
                    depth=(3, 2), mode=mode, cval=9, chunk_size=2)  # fmt: skip
        for k, block in enumerate(seen):
            np.testing.assert_array_equal(block, padded[2 * k : 2 * k + block.shape[0]],
                                          err_msg=mode)  # fmt: skip


def test_mode_none_blocks_stop_at_the_edges(tmp_path):
    x = np.arange(10.0)
    shapes = []
    map_overlap(lambda b: shapes.append(b.shape) or b, x, np.empty_like(x), depth=2, mode=None,
                chunk_size=4)  # fmt: skip
    assert shapes == [(6,), (8,), (4,)]  # [0, 6), [2, 10), [6, 10)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_random_shapes_windows_chunks(data):
    ndim = data.draw(st.integers(1, 3))
    shape = tuple(data.draw(st.lists(st.integers(1, 9), min_size=ndim, max_size=ndim)))
    sizes = tuple(data.draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim)))
    mode = data.draw(st.sampled_from(MODES))
    axis = data.draw(st.integers(0, ndim - 1))
    chunk_size = data.draw(st.integers(1, shape[axis]))
    x = np.asarray(data.draw(st.lists(st.floats(-1e3, 1e3, width=32), min_size=int(np.prod(
        shape)), max_size=int(np.prod(shape)))), np.float32).reshape(shape)  # fmt: skip
    f = lambda b: filters.uniform_filter(b, sizes, mode=mode)  # noqa: E731
    depth = tuple(s // 2 for s in sizes)
    out = map_overlap(f, x, np.empty_like(x), depth=depth, mode=mode, axis=axis,
                      chunk_size=chunk_size)  # fmt: skip
    np.testing.assert_array_equal(out, f(x))


def test_budget_chunks_do_not_divide_and_fit(x2, tmp_path):
    x, src = x2
    sizes = []

    def f(block):
        sizes.append(block.shape[0])
        return filters.uniform_filter(block, 3)

    run = lambda budget: map_overlap(f, src, tmp_path / "out.npy", depth=1,  # noqa: E731
                                     max_memory=budget)
    one_row = smallest_budget(run)
    out = run(4 * one_row)
    np.testing.assert_array_equal(out, filters.uniform_filter(x, 3))
    rows = [s - 2 for s in sizes]  # the halo is 1 row each side
    assert len(rows) > 2
    assert 37 % max(rows) != 0
    assert max(rows) - min(rows) <= 1  # evened out: no tiny last chunk


# --- inputs and outputs -----------------------------------------------------------------------


def test_map_blocks_dtype_change_inferred_and_explicit(tmp_path):
    x = RNG.integers(0, 255, (23, 6), dtype=np.uint8)
    src = save(tmp_path, x)
    out = map_blocks(lambda b: b.astype(np.float64) / 3, src, tmp_path / "f.npy", chunk_size=5)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, x.astype(np.float64) / 3)
    out = map_blocks(lambda b: (b > 100).astype(np.int16), src, tmp_path / "i.npy",
                     dtype=np.int16, chunk_size=4)  # fmt: skip
    np.testing.assert_array_equal(out, (x > 100).astype(np.int16))
    mm = np.lib.format.open_memmap(tmp_path / "mm.npy", mode="w+", dtype=np.int32, shape=x.shape)
    assert map_blocks(lambda b: b.astype(np.int32) * 2, src, mm, chunk_size=3) is mm
    np.testing.assert_array_equal(np.load(tmp_path / "mm.npy"), x.astype(np.int32) * 2)


def test_func_may_return_its_block(tmp_path):
    x = RNG.random((17, 3))
    out = map_blocks(lambda b: b, save(tmp_path, x), tmp_path / "out.npy", chunk_size=2)
    np.testing.assert_array_equal(out, x)  # blocks are copied before their buffer is reused


@pytest.mark.parametrize("kind", ["fortran-file", "fortran-array", "strided-memmap",
                                  "offset-memmap", "ndarray"])  # fmt: skip
def test_layouts(tmp_path, kind):
    base = RNG.random((12, 10), dtype=np.float32)
    if kind == "fortran-file":
        src, x = save(tmp_path, np.asfortranarray(base)), base
    elif kind == "fortran-array":
        src = x = np.asfortranarray(base)
    elif kind == "strided-memmap":
        src = np.load(save(tmp_path, base), mmap_mode="r")[1::2, ::3]
        x = base[1::2, ::3]
    elif kind == "offset-memmap":
        src = np.load(save(tmp_path, base), mmap_mode="r")[3:11]
        x = base[3:11]
    else:
        src = x = base
    f = lambda b: filters.uniform_filter(b, 3, mode="mirror")  # noqa: E731
    out = map_overlap(f, src, tmp_path / "out.npy", depth=1, mode="mirror", chunk_size=2)
    np.testing.assert_array_equal(out, f(np.ascontiguousarray(x)))
    if kind.startswith("fortran"):
        assert out.flags.f_contiguous  # the output keeps the layout: contiguous chunk writes


def test_memmap_and_strided_destinations(tmp_path):
    x = RNG.random((11, 4))
    whole = np.lib.format.open_memmap(tmp_path / "d.npy", mode="w+", dtype=np.float64,
                                      shape=(11, 8))  # fmt: skip
    out = map_blocks(lambda b: b * 2, save(tmp_path, x), whole[:, ::2], chunk_size=3)
    np.testing.assert_array_equal(out, x * 2)
    del whole, out
    np.testing.assert_array_equal(np.load(tmp_path / "d.npy")[:, ::2], x * 2)


def test_empty_src(tmp_path):
    x = np.zeros((0, 5), np.uint8)
    out = map_blocks(lambda b: b.astype(np.float32), save(tmp_path, x), tmp_path / "out.npy")
    assert out.shape == (0, 5)
    assert out.dtype == np.float32
    assert np.load(tmp_path / "out.npy").shape == (0, 5)


def test_progress_bar(x2, tmp_path, capsys):
    _, src = x2
    map_blocks(lambda b: b + 1, src, tmp_path / "out.npy", chunk_size=5, progress=True)
    assert "map_blocks" in capsys.readouterr().err


# --- errors -----------------------------------------------------------------------------------


def test_bad_arguments_named(x2, tmp_path):
    x, src = x2
    dst = tmp_path / "out.npy"
    ok = {"depth": 1}
    cases = [
        ({"depth": -1}, ValueError, r"`depth` must be an int >= 0.*got -1"),
        ({"depth": (1, 2, 3)}, ValueError, r"`depth` must be .*sequence of 2.*3 entries"),
        ({"depth": 1.5}, ValueError, r"`depth` must be"),
        ({"mode": "edge", **ok}, ValueError, r"`mode` must be one of .*got 'edge'"),
        ({"max_memory": 0, **ok}, ValueError, r"`max_memory` must be at least 1 byte; got 0"),
        ({"max_memory": "lots", **ok}, ValueError, r"`max_memory` must be a byte count.*'lots'"),
        ({"max_memory": [1], **ok}, TypeError, r"`max_memory` must be an int or a string"),
        ({"axis": 2, **ok}, ValueError, r"`axis` must be in \[-2, 1\].*got 2"),
        ({"chunk_size": 0, **ok}, ValueError, r"`chunk_size` must be >= 1; got 0"),
        ({"temp_factor": -1, **ok}, ValueError, r"`temp_factor` must be finite and >= 0"),
        ({"cval": "x", **ok}, TypeError, r"`cval` must be a real number; got 'x'"),
        ({"checkpoint": False, "resume": True, **ok}, ValueError, r"`resume`=True needs"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            map_overlap(lambda b: b, src, dst, **kwargs)
    with pytest.raises(TypeError, match=r"`func` must be callable; got int"):
        map_blocks(3, src, dst)
    with pytest.raises(TypeError, match=r"`src` must be a path to a .npy file.*got list"):
        map_blocks(lambda b: b, [1, 2], dst)
    with pytest.raises(TypeError, match=r"`dst` must be a path .*got int"):
        map_blocks(lambda b: b, src, 5)
    with pytest.raises(ValueError, match=r"at least one dimension"):
        map_blocks(lambda b: b, np.array(1.0), dst)
    with pytest.raises(ValueError, match=r"in-memory array"):
        map_blocks(lambda b: b, src, np.empty_like(x), checkpoint=True)
    assert not dst.exists()
    assert leftovers(tmp_path) == []


def test_budget_too_small_says_how_much(x2, tmp_path):
    _, src = x2
    with pytest.raises(ValueError, match=r"too small: one row along axis 0 with its halo of 3 "
                       r"rows on each side needs (\d+) bytes") as info:  # fmt: skip
        map_overlap(lambda b: b, src, tmp_path / "out.npy", depth=3, max_memory="1KB")
    need = int(str(info.value).split("needs ")[1].split()[0])
    out = map_overlap(lambda b: b, src, tmp_path / "out.npy", depth=3, max_memory=need)
    np.testing.assert_array_equal(out, x2[0])
    with pytest.raises(ValueError, match=r"`chunk_size`=37 needs \d+ bytes.*over `max_memory`"):
        map_overlap(lambda b: b, src, tmp_path / "o.npy", depth=3, max_memory=need,
                    chunk_size=37)  # fmt: skip


def test_shape_dtype_overlap_errors(x2, tmp_path):
    x, src = x2
    with pytest.raises(ValueError, match=r"`dst` must have the shape of `src` \(37, 29\); got "
                       r"\(37, 28\)"):  # fmt: skip
        map_blocks(lambda b: b, src, np.empty((37, 28), np.float32))
    with pytest.raises(ValueError, match=r"`dtype`=float64 differs from the dtype of `dst`"):
        map_blocks(lambda b: b, src, np.empty_like(x), dtype=np.float64)
    with pytest.raises(ValueError, match=r"`dst` must be writeable"):
        map_blocks(lambda b: b, src, np.load(src, mmap_mode="r"))
    same = np.load(src, mmap_mode="r+")
    with pytest.raises(ValueError, match=r"`dst` must not overlap `src`"):
        map_blocks(lambda b: b, np.load(src, mmap_mode="r"), same)
    with pytest.raises(ValueError, match=r"`dst` must not overlap `src`"):
        map_blocks(lambda b: b, x[:, :10], x[:, 5:15])
    with pytest.raises(ValueError, match=r"is `src`; write to another file"):
        map_blocks(lambda b: b, src, src)
    np.testing.assert_array_equal(np.load(src), x)  # untouched


def test_func_results_checked(x2, tmp_path):
    _, src = x2
    dst = tmp_path / "out.npy"
    with pytest.raises(ValueError, match=r"must return an array of its block's shape \(7, 31\) "
                       r".*got \(7, 30\) for chunk rows 0:5 along axis 0"):  # fmt: skip
        map_overlap(lambda b: b[:, 1:], src, dst, depth=1, chunk_size=5)
    with pytest.raises(TypeError, match=r"must return an ndarray .*got list for chunk rows 0:5"):
        map_blocks(lambda b: b.tolist(), src, dst, chunk_size=5)
    first = np.load(src)[0, 0]
    with pytest.raises(ValueError, match=r"returned dtype float64 for chunk rows 5:10.*the "
                       r"output has dtype float32"):  # fmt: skip
        map_blocks(lambda b: b if b[0, 0] == first else b.astype(np.float64), src, dst,
                   chunk_size=5)  # fmt: skip
    with pytest.raises(ValueError, match=r"complex128 \(16 bytes per element\).*pass "
                       r"dtype='complex128'"):  # fmt: skip
        map_blocks(lambda b: b.astype(np.complex128), src, dst)



def test_func_errors_name_the_chunk(x2, tmp_path):
    _, src = x2

    def boom(block):
        raise RuntimeError("bad block")

    with pytest.raises(RuntimeError, match="bad block") as info:
        map_blocks(boom, src, tmp_path / "out.npy", chunk_size=5)
    assert any("chunk rows 0:5 along axis 0" in note for note in info.value.__notes__)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_damaged_npy_src_raises_npyerror(tmp_path, damage):
    path = save(tmp_path, np.arange(100.0))
    data = path.read_bytes()
    path.write_bytes({"truncated": data[:-80], "garbage": b"not a npy file" * 10,
                      "empty": b""}[damage])  # fmt: skip
    for call in (lambda: map_blocks(lambda b: b, path, tmp_path / "out.npy"),
                 lambda: reduce(path, "sum")):  # fmt: skip
        with pytest.raises(NpyError, match=str(path.name)):
            call()


# --- reduce ---------------------------------------------------------------------------------


REDUCE_DTYPES = ["bool", "uint8", "int16", "int64", "uint64", "float32", "float64", "complex64"]


def _data(dtype: str, shape) -> np.ndarray:
    if dtype == "bool":
        return RNG.random(shape) > 0.5
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return RNG.integers(max(info.min, -1000), min(info.max, 1000), shape, dtype=dtype,
                            endpoint=True)  # fmt: skip
    if dtype.startswith("complex"):
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)
    return (RNG.standard_normal(shape) * 1e3).astype(dtype)


@pytest.mark.parametrize("dtype", REDUCE_DTYPES)
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_reduce_matches_numpy(tmp_path, dtype, axis):
    x = _data(dtype, (41, 7, 3))
    src = save(tmp_path, x)
    budget = 5 * smallest_budget(lambda m: reduce(src, "sum", axis=axis, max_memory=m))
    wide = np.complex128 if x.dtype.kind == "c" else np.float64
    for op in ("sum", "mean"):
        got = reduce(src, op, axis=axis, max_memory=budget)
        if x.dtype.kind in "biu" and op == "sum":
            want = np.sum(x, axis=axis)
            assert np.asarray(got).dtype == want.dtype
            np.testing.assert_array_equal(got, want)  # exact
        else:
            want = getattr(np, op)(x.astype(wide), axis=axis)
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-9)
    if x.dtype.kind != "c":
        for op in ("min", "max"):
            got = reduce(src, op, axis=axis, max_memory=budget)
            want = getattr(np, op)(x, axis=axis)
            assert np.asarray(got).dtype == x.dtype
            np.testing.assert_array_equal(got, want)


def test_reduce_fortran_and_views(tmp_path):
    x = _data("float64", (13, 9))
    for src, ref in ((save(tmp_path, np.asfortranarray(x)), x),
                     (np.load(save(tmp_path, x, "c.npy"), mmap_mode="r")[::2, 1:], x[::2, 1:]),
                     (x[:, ::-1], x[:, ::-1])):  # fmt: skip
        for axis in (None, 0, 1):
            budget = 3 * smallest_budget(lambda m, s=src, a=axis: reduce(s, "sum", axis=a,
                                                                         max_memory=m))
            np.testing.assert_allclose(reduce(src, "sum", axis=axis, max_memory=budget),
                                       np.sum(ref, axis=axis), rtol=1e-13)  # fmt: skip
            np.testing.assert_array_equal(reduce(src, "max", axis=axis, max_memory=budget),
                                          np.max(ref, axis=axis))  # fmt: skip


def test_reduce_nan_inf(tmp_path):
    x = _data("float32", (30, 4))
    x[7, 2], x[20, 1] = np.nan, np.inf
    src = save(tmp_path, x)
    budget = 3 * smallest_budget(lambda m: reduce(src, "sum", axis=0, max_memory=m))
    for op in ("sum", "mean", "min", "max"):
        got = reduce(src, op, max_memory=budget)
        assert np.isnan(got), op
        by_col = reduce(src, op, axis=0, max_memory=budget)
        want = getattr(np, op)(x.astype(np.float64), axis=0)
        np.testing.assert_allclose(by_col, want, rtol=1e-12)  # NaN and inf where NumPy has them
    y = np.array([1.0, np.inf, 2.0, -np.inf])
    one = smallest_budget(lambda m: reduce(y, "sum", max_memory=m))  # one element per chunk
    for total in (lambda: np.sum(y), lambda: reduce(y, "sum", max_memory=one)):
        with pytest.warns(RuntimeWarning, match="invalid value encountered"):  # both warn
            assert np.isnan(total())
    assert reduce(np.array([1.0, np.inf]), "max") == np.inf
    assert reduce(np.array([np.inf, 3.0, 4.0]), "sum", max_memory=one) == np.inf


def test_reduce_float32_accumulates_in_float64(tmp_path):
    x = np.full(100_000, 0.1, np.float32)
    got = reduce(x, "sum", max_memory=64 * 1024)
    assert got.dtype == np.float64
    assert abs(got - 100_000 * float(np.float32(0.1))) < 1e-6  # float32 sums are off by ~1e-2


def test_reduce_empty_and_single(tmp_path):
    empty = save(tmp_path, np.zeros((0, 3), np.float32))
    assert reduce(empty, "sum") == 0.0
    np.testing.assert_array_equal(reduce(empty, "sum", axis=0), np.zeros(3))
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        assert np.isnan(reduce(empty, "mean"))
    with warnings.catch_warnings(record=True) as numpys:
        warnings.simplefilter("always")
        np.mean(np.zeros((0, 3), np.float32), dtype=np.float64)
    assert [str(w.message) for w in ours] == [str(w.message) for w in numpys]
    assert "Mean of empty slice" in str(ours[0].message)
    with pytest.raises(ValueError, match=r"`src` is empty \(shape \(0, 3\)\): 'min' of an empty "
                       r"array has no value \(np.min raises too\)"):  # fmt: skip
        reduce(empty, "min")
    one = save(tmp_path, np.array([2.5], np.float32), "one.npy")
    assert reduce(one, "sum") == 2.5
    assert reduce(one, "mean") == 2.5
    assert reduce(one, "min") == reduce(one, "max") == np.float32(2.5)
    scalar = save(tmp_path, np.array(7, np.int16), "scalar.npy")
    assert reduce(scalar, "max") == 7
    assert reduce(scalar, "sum") == 7
    np.testing.assert_array_equal(reduce(scalar, "histogram", bins=2)[0], [0, 1])


@pytest.mark.parametrize("dtype", ["uint8", "int32", "float32", "float64"])
def test_histogram_matches_numpy(tmp_path, dtype):
    x = _data(dtype, (57, 5))
    src = save(tmp_path, x)
    for kwargs in ({"bins": 7}, {"bins": 10, "range": (-50, 50)}, {"bins": [-1e3, -3, 0, 8, 9e3]},
                   {"bins": 1}):  # fmt: skip
        counts, edges = reduce(src, "histogram", max_memory=5 * 2 * 5 * x.itemsize + 300,
                               **kwargs)  # fmt: skip
        want_counts, want_edges = np.histogram(x, **kwargs)
        np.testing.assert_array_equal(counts, want_counts, err_msg=str(kwargs))
        np.testing.assert_array_equal(edges, want_edges, err_msg=str(kwargs))
        assert edges.dtype == want_edges.dtype
    constant = np.full((9, 2), 3, dtype)
    for got, want in zip(reduce(constant, "histogram", max_memory=1024),
                         np.histogram(constant), strict=True):  # fmt: skip
        np.testing.assert_array_equal(got, want)


def test_histogram_nan(tmp_path):
    x = _data("float64", (20, 3))
    x[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"autodetected range of \[nan, nan\] is not finite"):
        reduce(x, "histogram", max_memory=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own comparisons with NaN
        want = np.histogram(x, bins=4, range=(-1e3, 1e3))
    got = reduce(x, "histogram", bins=4, range=(-1e3, 1e3), max_memory=500)
    np.testing.assert_array_equal(got[0], want[0])


def test_reduce_errors(tmp_path):
    x = np.arange(10.0)
    with pytest.raises(ValueError, match=r"`op` must be one of .*got 'median'"):
        reduce(x, "median")
    with pytest.raises(ValueError, match=r"`axis` must be in \[-1, 0\].*got 1"):
        reduce(x, "sum", axis=1)
    with pytest.raises(ValueError, match=r"`axis` must be None for op='histogram'"):
        reduce(x, "histogram", axis=0)
    with pytest.raises(ValueError, match=r"`bins` must be a count or the bin edges"):
        reduce(x, "histogram", bins="auto")
    with pytest.raises(ValueError, match=r"`bins` must be >= 1; got 0"):
        reduce(x, "histogram", bins=0)
    with pytest.raises(ValueError, match=r"`range` must be finite with lower <= upper"):
        reduce(x, "histogram", range=(5, 1))
    with pytest.raises(TypeError, match=r"`op`='sum' needs numeric data; `src` has dtype <U1"):
        reduce(np.array(["a"]), "sum")
    with pytest.raises(ValueError, match=r"`max_memory`=8 bytes is too small"):
        reduce(np.zeros((4, 100)), "sum", max_memory=8)


# --- checkpoints ------------------------------------------------------------------------------


def test_interrupted_run_resumes_and_refuses_other_parameters(x2, tmp_path, monkeypatch):
    x, src = x2
    dst = tmp_path / "out.npy"
    monkeypatch.setattr(chunked, "CHECKPOINT_INTERVAL_S", 0.0)
    calls = []
    stop_at = [4]

    def f(block):
        calls.append(block.shape)
        if len(calls) == stop_at[0]:
            raise KeyboardInterrupt  # the user stops the run in chunk 4
        return filters.uniform_filter(block, 3, mode="nearest")

    with pytest.raises(KeyboardInterrupt):
        map_overlap(f, src, dst, depth=1, mode="nearest", chunk_size=5)
    state = json.loads((tmp_path / ("out.npy" + chunked.CHECKPOINT_SUFFIX)).read_text())
    assert state["done"] == 3  # chunks 0-2; chunk 2's write finished during the interrupt
    assert state["chunk_size"] == 5
    assert state["chunks"] == 8
    assert state["dtype"] == "<f4"
    assert not dst.exists()
    assert (tmp_path / "out.npy.partial").exists()
    with pytest.raises(ValueError, match=r"cannot resume: .*other parameters \(depth: \[1, 1\] "
                       r"then, \[2, 2\] now; mode: 'nearest' then, 'reflect' now\)"):  # fmt: skip
        map_overlap(f, src, dst, depth=2, resume=True)
    with pytest.raises(ValueError, match=r"checkpoint's chunks are 5, `chunk_size`=4"):
        map_overlap(f, src, dst, depth=1, mode="nearest", chunk_size=4, resume=True)
    calls.clear()
    stop_at[0] = 3  # interrupted again, after one more chunk: the recorded grid is kept
    with pytest.raises(KeyboardInterrupt):
        map_overlap(f, src, dst, depth=1, mode="nearest", resume=True)
    state = json.loads((tmp_path / ("out.npy" + chunked.CHECKPOINT_SUFFIX)).read_text())
    assert (state["done"], state["chunk_size"], state["chunks"]) == (5, 5, 8)
    calls.clear()
    stop_at[0] = -1
    out = map_overlap(f, src, dst, depth=1, mode="nearest", resume=True)  # chunk size recorded
    assert len(calls) == 8 - 5  # 37 rows in chunks of 5: 8 chunks, 5 were done
    np.testing.assert_array_equal(out, filters.uniform_filter(x, 3, mode="nearest"))
    assert leftovers(tmp_path) == []


def test_resume_without_checkpoint_starts_afresh_and_rerun_starts_over(x2, tmp_path):
    x, src = x2
    out = map_blocks(lambda b: b * 2, src, tmp_path / "out.npy", resume=True, chunk_size=5)
    np.testing.assert_array_equal(out, x * 2)
    stale = tmp_path / ("out.npy" + chunked.CHECKPOINT_SUFFIX)
    stale.write_text("{ damaged")
    with pytest.raises(ValueError, match=r"checkpoint .* is damaged"):
        map_blocks(lambda b: b * 2, src, tmp_path / "out.npy", resume=True)
    out = map_blocks(lambda b: b * 3, src, tmp_path / "out.npy")  # resume=False: start over
    np.testing.assert_array_equal(out, x * 3)
    assert not stale.exists()


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    import npaccel.data._chunked as chunked
    from npaccel.filters import uniform_filter

    chunked.CHECKPOINT_INTERVAL_S = 0.0
    calls = 0

    def slow_wrap_filter(block):
        global calls
        calls += 1
        print("chunk", flush=True)
        time.sleep(float(sys.argv[3]))
        return uniform_filter(block, 3, mode="wrap")

    chunked.map_overlap(slow_wrap_filter, sys.argv[1], sys.argv[2], depth=1, mode="wrap",
                        chunk_size=4, resume=sys.argv[4] == "resume")
    print("calls", calls, flush=True)
""")


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    x = RNG.random((120, 50), dtype=np.float32)  # 30 chunks of 4 rows
    src, dst = save(tmp_path, x), tmp_path / "out.npy"
    script = tmp_path / "job.py"
    script.write_text(KILL_SCRIPT)
    run = subprocess.Popen([sys.executable, str(script), str(src), str(dst), "0.05", "run"],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    for _ in range(8):
        assert run.stdout.readline().strip() == "chunk"
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    run.stdout.close()
    assert run.returncode == -signal.SIGKILL
    state = json.loads((tmp_path / ("out.npy" + chunked.CHECKPOINT_SUFFIX)).read_text())
    assert 1 <= state["done"] < 30
    assert not dst.exists()
    resumed = subprocess.run([sys.executable, str(script), str(src), str(dst), "0", "resume"],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    calls = int(resumed.stdout.split("calls")[1])
    assert calls == 30 - state["done"]
    np.testing.assert_array_equal(np.load(dst), filters.uniform_filter(x, 3, mode="wrap"))
    assert leftovers(tmp_path) == ["job.py"]


# --- memory -----------------------------------------------------------------------------------


MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import psutil
    import npaccel.data._chunked as chunked
    from npaccel import filters
    from npaccel.data import map_overlap, reduce

    src, work, budget = sys.argv[1], sys.argv[2], int(sys.argv[3])
    chunked.FILTERS_MAX_MEMORY = budget
    f = lambda b: filters.uniform_filter(b, 3)
    f(np.ones((64, 64), np.float32))  # kernels loaded
    reduce(np.ones((64, 64), np.float32), "sum")
    process = psutil.Process()

    def hwm():
        with open("/proc/self/status") as fh:
            return next(int(l.split()[1]) * 1024 for l in fh if l.startswith("VmHWM"))

    def peak(run):
        base = process.memory_info().rss
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        run()
        return hwm() - base

    mm = lambda mode="r": np.load(src, mmap_mode=mode)
    out = lambda name: np.lib.format.open_memmap(f"{work}/{name}", mode="w+",
                                                 dtype=np.float32, shape=mm().shape)
    print(json.dumps({
        "baseline": process.memory_info().rss,
        "map_overlap path": peak(lambda: map_overlap(f, src, f"{work}/a.npy", depth=1,
                                                     max_memory=budget)),
        "map_overlap strided memmap": peak(lambda: map_overlap(
            f, mm()[:, ::2], f"{work}/b.npy", depth=1, max_memory=budget)),
        "filters memmap to memmap": peak(lambda: filters.uniform_filter(mm(), 3,
                                                                        output=out("c.npy"))),
        "reduce sum": peak(lambda: reduce(src, "sum", max_memory=budget)),
        "reduce memmap": peak(lambda: reduce(mm(), "max", max_memory=budget)),
    }))
""")
MEMORY_SLACK = 4 * 2**20  # stated in docs/data-chunked.md


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_rss_within_budget(tmp_path):
    """A 64 MiB file through an 8 MiB budget: no run raises the peak RSS above the RSS before it
    by more than the budget plus the stated slack — a memmap's pages included."""
    src = np.lib.format.open_memmap(tmp_path / "src.npy", mode="w+", dtype=np.float32,
                                    shape=(2048, 8192))  # fmt: skip
    for start in range(0, 2048, 256):
        src[start : start + 256] = RNG.random((256, 8192), dtype=np.float32)
    src.flush()
    del src
    script = tmp_path / "memory.py"
    script.write_text(MEMORY_SCRIPT)
    budget = 8 * 2**20
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "src.npy"),
                           str(tmp_path), str(budget)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    peaks = json.loads(done.stdout)
    baseline = peaks.pop("baseline")
    for what, rise in peaks.items():
        assert rise <= budget + MEMORY_SLACK, (what, rise / 2**20, baseline / 2**20)
    x = np.load(tmp_path / "src.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "c.npy"), filters.uniform_filter(x, 3))


# --- npaccel.filters on memmaps ---------------------------------------------------------------


ROUTED = {
    "gaussian_filter": lambda i, o, m: filters.gaussian_filter(i, 1.5, output=o, mode=m),
    "median_filter": lambda i, o, m: filters.median_filter(i, 5, output=o, mode=m),
    "sobel": lambda i, o, m: filters.sobel(i, 0, output=o, mode=m),
    "uniform_filter": lambda i, o, m: filters.uniform_filter(i, (7, 3), output=o, mode=m),
    "minimum_filter": lambda i, o, m: filters.minimum_filter(i, 4, output=o, mode=m),
    "maximum_filter(footprint)": lambda i, o, m: filters.maximum_filter(
        i, footprint=np.eye(3, dtype=bool), output=o, mode=m),
    "correlate(origin)": lambda i, o, m: filters.correlate(
        i, np.arange(12.0).reshape(4, 3), output=o, mode=m, origin=(1, 0)),
    "uniform_filter1d(axis=0)": lambda i, o, m: filters.uniform_filter1d(
        i, 6, axis=0, output=o, mode=m, origin=-2),
    "gaussian_gradient_magnitude": lambda i, o, m: filters.gaussian_gradient_magnitude(
        i, 1.0, output=o, mode=m),
    "laplace": lambda i, o, m: filters.laplace(i, output=o, mode=m),
}  # fmt: skip


@pytest.fixture
def routed(monkeypatch):
    """Small budget (many chunks) and a record of the depths of the chunked runs."""
    monkeypatch.setattr(chunked, "FILTERS_MAX_MEMORY", 30_000)
    depths = []
    original = chunked._transform

    def spy(*args, **kwargs):
        depths.append(kwargs["depth"])
        return original(*args, **kwargs)

    monkeypatch.setattr(chunked, "_transform", spy)
    return depths


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", list(ROUTED))
def test_filters_on_memmaps_route_and_equal(x2, tmp_path, routed, name, mode):
    x, src = x2
    f = ROUTED[name]
    out = np.lib.format.open_memmap(tmp_path / "o.npy", mode="w+", dtype=np.float32,
                                    shape=x.shape)  # fmt: skip
    assert f(np.load(src, mmap_mode="r"), out, mode) is out
    assert len(routed) == 1
    assert list(routed[0]) == [0]
    np.testing.assert_array_equal(out, f(x, None, mode))


def test_filters_routing_dtypes_layout_and_pass_through(tmp_path, routed):
    x = RNG.integers(0, 255, (31, 12), dtype=np.uint8)
    src = np.load(save(tmp_path, x), mmap_mode="r")
    wide = np.lib.format.open_memmap(tmp_path / "w.npy", mode="w+", dtype=np.float64,
                                     shape=x.shape)  # fmt: skip
    filters.gaussian_filter(src, 1, output=wide)
    np.testing.assert_array_equal(wide, filters.gaussian_filter(x, 1, output=np.float64))
    same = np.lib.format.open_memmap(tmp_path / "u.npy", mode="w+", dtype=np.uint8,
                                     shape=x.shape)  # fmt: skip
    filters.uniform_filter(src, 3, output=same, backend="numpy")
    np.testing.assert_array_equal(same, filters.uniform_filter(x, 3, backend="numpy"))
    fortran = np.load(save(tmp_path, np.asfortranarray(x), "f.npy"), mmap_mode="r")
    filters.median_filter(fortran, 3, output=same)
    np.testing.assert_array_equal(same, filters.median_filter(x, 3))
    assert routed[-1] == {1: 1}  # Fortran order: chunked along the last axis
    count = len(routed)
    in_memory = filters.uniform_filter(src, 3)  # output not a memmap: not routed
    np.testing.assert_array_equal(in_memory, filters.uniform_filter(x, 3))
    assert len(routed) == count
    mixed = filters.uniform_filter(src, 3, mode=["wrap", "reflect"], output=same)
    assert len(routed) == count + 1
    assert mixed is same
    np.testing.assert_array_equal(same, filters.uniform_filter(x, 3, mode=["wrap", "reflect"]))


def test_filters_routing_falls_back_when_rows_exceed_budget(tmp_path, monkeypatch):
    monkeypatch.setattr(chunked, "FILTERS_MAX_MEMORY", 1000)  # less than one row and its halo
    x = RNG.random((9, 300), dtype=np.float32)
    out = np.lib.format.open_memmap(tmp_path / "o.npy", mode="w+", dtype=np.float32,
                                    shape=x.shape)  # fmt: skip
    filters.gaussian_filter(np.load(save(tmp_path, x), mmap_mode="r"), 2, output=out)
    np.testing.assert_array_equal(out, filters.gaussian_filter(x, 2))


def test_nothing_left_open(x2, tmp_path):
    """Every run closes the descriptors it opened, also when func fails."""
    _, src = x2
    before = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else None
    for _ in range(3):
        map_overlap(lambda b: b, src, tmp_path / "out.npy", depth=1, chunk_size=4)
        with pytest.raises(ZeroDivisionError):
            map_overlap(lambda b: 1 / 0, src, tmp_path / "out.npy", depth=1, chunk_size=4)
    if before is not None:
        assert len(os.listdir("/proc/self/fd")) == before
