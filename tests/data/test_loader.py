"""npaccel.data.ArrayLoader and TorchDataset: every sample once per epoch, the right bytes,
reproducible orders, block locality, the buffer contract, errors from the threads, thread
cleanup, and clear errors for bad input; sources are real .npy files, memmaps (also at an
offset, sliced and strided) and in-memory arrays (also non-contiguous views)."""

from __future__ import annotations

import doctest
import gc
import os
import pickle
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npaccel.data import ArrayLoader, TorchDataset, _loader, _torch
from npaccel.data._loader import THREAD_PREFIX
from npaccel.data._npy import NpyError
from npaccel.data._torch import worker_batches, worker_iteration

ID_DTYPES = ["int64", "float64", ">i8", "int32"]  # hold any row number here exactly
DATA_DTYPES = ["uint8", "bool", "int16", "float32", ">f4", "complex64", "S3"]
KINDS = ["npy", "memmap", "memmap_slice", "memmap_strided", "memory", "view"]


def loader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def random_rows(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    kind = np.dtype(dtype).kind
    if kind == "b":
        return rng.random(shape) < 0.5
    if kind == "S":
        return rng.choice(np.array([b"ab", b"xyz", b"", b"q"], dtype=dtype), shape)
    if kind in "iu":
        return rng.integers(0, 100, shape).astype(dtype)
    if kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def as_source(data: np.ndarray, kind: str, folder: Path, name: str):
    """``data`` presented as a source of the given kind (same values)."""
    path = folder / f"{name}.npy"
    if kind == "npy":
        np.save(path, data)
        return str(path)
    if kind == "memory":
        return data.copy()
    if kind == "view":  # every other row of a bigger array: not contiguous
        base = np.zeros((2 * len(data), *data.shape[1:]), data.dtype)
        base[::2] = data
        return base[::2]
    if kind == "memmap":  # a raw file with 13 bytes before the data: unaligned offset
        path.write_bytes(b"x" * 13)
        mapped = np.memmap(path, data.dtype, "r+", offset=13, shape=data.shape)
        mapped[:] = data
        mapped.flush()
        return mapped
    if kind == "memmap_slice":  # a slice of a memmap: its data starts 3 rows in
        mapped = np.memmap(path, data.dtype, "w+", shape=(len(data) + 3, *data.shape[1:]))
        mapped[3:] = data
        mapped.flush()
        return mapped[3:]
    assert kind == "memmap_strided"  # column 0 of (n, 2, ...): not C-contiguous
    mapped = np.memmap(path, data.dtype, "w+", shape=(len(data), 2, *data.shape[1:]))
    mapped[:, 0] = data
    return mapped[:, 0]


def decode_ids(batch_ids: np.ndarray) -> np.ndarray:
    return batch_ids.reshape(len(batch_ids), -1)[:, 0].astype(np.int64)


def epoch_batches(loader: ArrayLoader) -> list[tuple[np.ndarray, ...]]:
    """One epoch, every batch copied as it arrives (it lives in a reused buffer)."""
    out = []
    for batch in loader:
        parts = (batch,) if isinstance(batch, np.ndarray) else batch
        out.append(tuple(np.array(part, copy=True) for part in parts))
    return out


def block_spans(loader: ArrayLoader, epoch: int, ids_per_batch: list[np.ndarray]) -> list[int]:
    """For each batch: how many consecutive blocks of the block order its rows span."""
    position = np.argsort(loader.block_order(epoch))  # block number -> place in the order
    spans = []
    for ids in ids_per_batch:
        places = position[np.searchsorted(loader.blocks, ids, side="right") - 1]
        spans.append(int(places.max() - places.min() + 1))
    return spans


# ----------------------------------------------------------- the core property


@st.composite
def loader_cases(draw):
    rows = draw(st.one_of(st.sampled_from([0, 1, 2, 7]), st.integers(0, 300)))
    count = draw(st.integers(1, 3))
    specs = [(draw(st.sampled_from(ID_DTYPES)), draw(st.sampled_from([(), (2,)])))]
    for _ in range(count - 1):
        specs.append((draw(st.sampled_from(DATA_DTYPES)),
                      draw(st.sampled_from([(), (3,), (2, 2)]))))  # fmt: skip
    return {
        "rows": rows,
        "specs": specs,
        "kinds": [draw(st.sampled_from(KINDS)) for _ in specs],
        "single": count == 1 and draw(st.booleans()),
        "batch_size": draw(st.one_of(st.integers(1, 40), st.just(rows + 5))),
        "shuffle": draw(st.sampled_from(["block", "full", "none", True, False])),
        "drop_last": draw(st.booleans()),
        "block_bytes": draw(st.integers(1, 1500)),
        "window_blocks": draw(st.integers(1, 6)),
        "read": draw(st.sampled_from(["mmap", "pread"])),
        "prefetch": draw(st.integers(0, 3)),
        "gather_threads": draw(st.integers(1, 3)),
        "copy": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**64)),
        "epoch": draw(st.integers(0, 3)),
    }


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=loader_cases())
def test_every_sample_once_with_the_source_bytes_in_a_reproducible_order(case):
    rng = np.random.default_rng(case["seed"] % 2**32)
    rows = case["rows"]
    datas = []
    for i, (dtype, shape) in enumerate(case["specs"]):
        if i == 0:  # the ids array: row i holds i
            ids = np.arange(rows).reshape(rows, *([1] * len(shape)))
            datas.append(np.broadcast_to(ids, (rows, *shape)).astype(dtype))
        else:
            datas.append(random_rows(rng, (rows, *shape), dtype))
    options = {k: case[k] for k in ("batch_size", "shuffle", "drop_last", "block_bytes",
                                     "window_blocks", "read", "prefetch", "gather_threads",
                                     "copy", "seed")}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        pairs = enumerate(zip(datas, case["kinds"], strict=True))
        sources = [as_source(d, kind, Path(folder), f"a{i}") for i, (d, kind) in pairs]
        loader = ArrayLoader(sources[0] if case["single"] else sources, **options)
        loader.set_epoch(case["epoch"])
        batches = epoch_batches(loader)

    batch_size, mode = case["batch_size"], loader.shuffle
    full, rest = divmod(rows, batch_size)
    expected_sizes = [batch_size] * full + ([rest] if rest and not case["drop_last"] else [])
    assert len(loader) == len(expected_sizes)
    assert [len(b[0]) for b in batches] == expected_sizes

    ids_per_batch = [decode_ids(b[0]) for b in batches]
    seen = np.concatenate(ids_per_batch) if batches else np.zeros(0, np.int64)
    assert len(np.unique(seen)) == len(seen)  # nothing twice
    if case["drop_last"]:
        assert len(seen) == full * batch_size
        assert set(seen.tolist()) <= set(range(rows))
    else:
        np.testing.assert_array_equal(np.sort(seen), np.arange(rows))  # everything once
    for batch, ids in zip(batches, ids_per_batch, strict=True):
        for part, data in zip(batch, datas, strict=True):
            assert part.dtype == data.dtype
            assert part.shape == (len(ids), *data.shape[1:])
            np.testing.assert_array_equal(part, data[ids])

    # the order is the one the loader reports, and a function of (seed, epoch) only
    np.testing.assert_array_equal(seen, loader.indices(case["epoch"]))
    twin = ArrayLoader(datas if not case["single"] else datas[0], **options)
    np.testing.assert_array_equal(twin.indices(case["epoch"]), seen)
    if mode == "none":
        np.testing.assert_array_equal(seen, np.arange(len(seen)))
    if mode == "full":
        assert all(np.all(np.diff(ids) > 0) for ids in ids_per_batch)  # sorted gathers
    if mode == "block":
        spans = block_spans(loader, case["epoch"], ids_per_batch)
        assert all(span <= case["window_blocks"] + 1 for span in spans), spans
    assert not loader_threads()


# ------------------------------------------------------------ orders and epochs


@pytest.mark.parametrize("shuffle", ["block", "full"])
def test_seeds_and_epochs_change_the_order_and_repeat_it(shuffle):
    X = np.arange(5000)

    def make(seed: int) -> ArrayLoader:
        return ArrayLoader(X, 50, shuffle=shuffle, seed=seed, block_bytes=800, window_blocks=4)

    a, b = make(1), make(2)
    assert not np.array_equal(a.indices(0), b.indices(0))
    assert not np.array_equal(a.indices(0), a.indices(1))
    np.testing.assert_array_equal(a.indices(3), make(1).indices(3))
    assert not np.array_equal(a.indices(0), np.arange(5000))


def test_iterations_advance_the_epoch_and_set_epoch_picks_one():
    loader = ArrayLoader(np.arange(300), 16, seed=3, block_bytes=64, prefetch=1)
    orders = [np.concatenate([b.copy() for b in loader]) for _ in range(2)]
    np.testing.assert_array_equal(orders[0], loader.indices(0))
    np.testing.assert_array_equal(orders[1], loader.indices(1))
    assert loader.next_epoch == 2
    loader.set_epoch(7)
    iteration = iter(loader)
    assert iteration.epoch == 7
    assert loader.next_epoch == 8
    np.testing.assert_array_equal(np.concatenate([b.copy() for b in iteration]),
                                  loader.indices(7))  # fmt: skip


def test_seed_none_draws_a_seed_that_reproduces_the_run():
    a, b = ArrayLoader(np.arange(1000), 10), ArrayLoader(np.arange(1000), 10)
    assert isinstance(a.seed, int)
    assert a.seed != b.seed
    np.testing.assert_array_equal(ArrayLoader(np.arange(1000), 10, seed=a.seed).indices(0),
                                  a.indices(0))  # fmt: skip


def test_block_shuffle_mixes_blocks_but_stays_within_the_window():
    X = np.arange(8192, dtype=np.int64)
    loader = ArrayLoader(X, 64, seed=5, block_bytes=256 * 8, window_blocks=4)
    assert loader.block_rows == 256
    assert len(loader.blocks) == 33
    ids = [b.copy() for b in loader]
    spans = block_spans(loader, 0, ids)
    assert max(spans) <= 5
    distinct = [len(np.unique(np.searchsorted(loader.blocks, i, side="right"))) for i in ids]
    assert np.mean(distinct) > 3  # a batch draws from about `window_blocks` blocks
    # The locality check is not vacuous: a full shuffle of the same rows breaks it.
    full = ArrayLoader(X, 64, seed=5, shuffle="full")
    places = [np.searchsorted(loader.blocks, full_ids, side="right") for full_ids in
              np.split(full.indices(0), 128)]  # fmt: skip
    assert max(int(p.max() - p.min()) for p in places) > 5


@pytest.mark.parametrize("read", ["pread", "mmap"])
def test_block_shuffle_reads_each_block_once_as_a_whole(tmp_path, monkeypatch, read):
    """pread: one preadv per block, of the whole block. mmap: no preadv. Both announce
    each block once, whole, with POSIX_FADV_WILLNEED (unless a probe finds it cached)."""
    X = np.arange(4000 * 16, dtype=np.float32).reshape(4000, 16)
    np.save(tmp_path / "x.npy", X)
    reads, hints = [], []
    real_preadv, real_fadvise = os.preadv, os.posix_fadvise

    def counting_preadv(fd, buffers, offset, *flags):
        reads.append(sum(memoryview(b).nbytes for b in buffers))
        return real_preadv(fd, buffers, offset, *flags)

    def counting_fadvise(fd, offset, length, advice):
        if advice == os.POSIX_FADV_WILLNEED:
            hints.append(length)
        return real_fadvise(fd, offset, length, advice)

    monkeypatch.setattr(os, "preadv", counting_preadv)
    monkeypatch.setattr(os, "posix_fadvise", counting_fadvise)
    monkeypatch.delattr(os, "RWF_NOWAIT", raising=False)  # no cache probe: always announce
    loader = ArrayLoader(tmp_path / "x.npy", 32, seed=0, block_bytes=64 * 1024, read=read)
    batches = epoch_batches(loader)
    assert len(batches) == 125
    blocks = sorted((np.diff(loader.blocks) * 64).tolist())
    assert min(blocks) >= 64 * 1024
    assert sorted(hints) == blocks
    assert sorted(reads) == (blocks if read == "pread" else [])


@settings(max_examples=200, deadline=None)
@given(starts=st.lists(st.integers(0, 50_000), max_size=40), length=st.integers(1, 9000))
def test_page_runs_cover_exactly_the_pages_of_the_rows(starts, length):
    starts = np.array(sorted(starts), dtype=np.int64)
    begins, ends = _loader._page_runs(starts, length)
    page = _loader.mmap.PAGESIZE
    wanted = {p for s in starts.tolist() for p in range(s // page, (s + length - 1) // page + 1)}
    covered = [p for b, e in zip(begins.tolist(), ends.tolist(), strict=True)
               for p in range(b // page, e // page)]  # fmt: skip
    assert sorted(covered) == sorted(wanted)  # every page once: disjoint, no extra
    assert np.all(begins % page == 0)
    assert np.all(ends % page == 0)
    assert np.all(begins[1:] > ends[:-1])  # merged where they touch


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="no RWF_NOWAIT reads here")
def test_the_cache_probe_sees_cached_and_evicted_pages(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.ones((2000, 512), np.float64))
    loader = ArrayLoader(path, 10, read="mmap", prefetch=0)  # no gathers: nothing mapped
    with iter(loader) as iteration:
        reader = iteration._pipeline.reader
        fd = reader.fds[0]
        os.pread(fd, 8 * 2**20, 0)
        assert reader._cached(fd, [0, 4096 * 100, 4096 * 1500])
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        evicted = not reader._cached(fd, [4096 * 1000])
    if not evicted:
        pytest.skip("this filesystem keeps pages after POSIX_FADV_DONTNEED (tmpfs?)")


# --------------------------------------------------------------- buffer contract


@pytest.mark.parametrize(("prefetch", "gather_threads"), [(0, 1), (1, 1), (2, 1), (2, 2), (3, 3)])
def test_a_batch_stays_valid_until_batch_i_plus_prefetch_plus_1_is_asked_for(prefetch,
                                                                             gather_threads):
    X = np.arange(2000, dtype=np.int64).reshape(1000, 2)
    loader = ArrayLoader(X, 10, seed=1, prefetch=prefetch, block_bytes=800,
                         gather_threads=gather_threads)  # fmt: skip
    expected = np.split(loader.indices(0), 100)
    held = []
    for j, batch in enumerate(loader):
        held.append(batch)
        for i in range(max(0, j - prefetch), j + 1):  # the contract: these are intact
            np.testing.assert_array_equal(held[i][:, 0] // 2, expected[i])
    ring = 2 * prefetch + 1
    for i in range(len(held) - ring):
        assert np.shares_memory(held[i], held[i + ring])  # the buffer came back
        assert not any(np.shares_memory(held[i], held[k]) for k in range(i + 1, i + ring))


def test_copy_true_gives_fresh_arrays_that_stay_valid():
    X = np.arange(1000, dtype=np.int64)
    loader = ArrayLoader(X, 10, seed=1, copy=True, block_bytes=80)
    held = list(loader)
    for i, batch in enumerate(held):
        np.testing.assert_array_equal(batch, np.split(loader.indices(0), 100)[i])
        assert not any(np.shares_memory(batch, other) for other in held[i + 1:i + 8])


# ------------------------------------------------------------ errors from threads


@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("shuffle", ["block", "none"])
def test_a_read_error_in_the_prefetch_thread_surfaces_with_its_traceback(
        tmp_path, shuffle, prefetch):  # fmt: skip
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((4000, 8), np.float64))
    loader = ArrayLoader(path, 50, shuffle=shuffle, seed=0, prefetch=prefetch, read="pread",
                         block_bytes=8 * 64 * 10)  # fmt: skip
    iteration = iter(loader)
    next(iteration)
    os.truncate(path, 2000)  # the file shrinks under the reading threads
    with pytest.raises(OSError, match="truncated after the loader opened it") as excinfo:
        for _ in iteration:
            pass
    assert str(path) in str(excinfo.value)
    assert any(entry.name == "_read_exact" for entry in excinfo.traceback)
    if prefetch and sys.version_info >= (3, 11):
        assert any(THREAD_PREFIX in note for note in excinfo.value.__notes__)
    assert not loader_threads()


@pytest.mark.parametrize("read", ["mmap", "pread"])
@pytest.mark.parametrize("shuffle", ["block", "full", "none"])
def test_a_file_truncated_before_an_epoch_is_refused_cleanly(tmp_path, read, shuffle):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((4000, 8), np.float64))
    loader = ArrayLoader(path, 50, shuffle=shuffle, read=read)
    os.truncate(path, 2000)  # gathers from the map would die of SIGBUS: checked first
    with pytest.raises(OSError, match=r"has 2000 bytes now.*truncated after the loader"):
        next(iter(loader))
    assert not loader_threads()


def test_a_truncated_memmap_is_refused_up_front(tmp_path):
    path = tmp_path / "raw.bin"
    mapped = np.memmap(path, np.float32, "w+", shape=(100, 4))
    os.truncate(path, 100)
    with pytest.raises(ValueError, match="truncated after it was mapped"):
        ArrayLoader(mapped, 10)


# ----------------------------------------------------------------- threads


def make_loader(**options) -> ArrayLoader:
    return ArrayLoader(np.arange(100_000, dtype=np.int64), 10, block_bytes=800, **options)


@pytest.mark.parametrize("shuffle", ["block", "full", "none"])
def test_threads_stop_after_an_early_break(shuffle):
    loader = make_loader(shuffle=shuffle)
    for i, _ in enumerate(loader):
        assert loader_threads()  # the check below can fail: there are threads to stop
        if i == 3:
            break
    assert not loader_threads()


def test_threads_stop_when_an_abandoned_iterator_is_collected():
    iteration = iter(make_loader())
    next(iteration)
    assert loader_threads()
    del iteration
    gc.collect()
    assert not loader_threads()


def test_threads_stop_on_close_with_and_generator_close():
    iteration = iter(make_loader())
    next(iteration)
    iteration.close()
    assert not loader_threads()
    with pytest.raises(StopIteration):
        next(iteration)
    with iter(make_loader()) as iteration:
        next(iteration)
        assert loader_threads()
    assert not loader_threads()

    def wrapped():
        yield from make_loader()

    generator = wrapped()
    next(generator)
    generator.close()
    assert not loader_threads()


def test_threads_end_with_the_epoch_and_a_finished_loader_starts_again():
    loader = make_loader(prefetch=3)
    assert sum(len(b) for b in loader) == 100_000
    assert not loader_threads()
    assert sum(len(b) for b in loader) == 100_000


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_full_and_sequential_reads_advise_the_map_and_restore_it(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((20_000, 64), np.float32))

    def vm_flags() -> set[str]:
        flags, inside = set(), False
        for line in Path("/proc/self/smaps").read_text().splitlines():
            if "-" in line.split(" ", 1)[0]:
                inside = line.rstrip().endswith(str(path))
            elif inside and line.startswith("VmFlags:"):
                flags |= set(line.split()[1:])
        return flags

    for shuffle, flag in (("full", "rr"), ("none", "sr")):
        loader = ArrayLoader(path, 100, shuffle=shuffle, seed=0)
        assert flag not in vm_flags()
        with iter(loader) as iteration:
            next(iteration)
            assert flag in vm_flags()
        assert flag not in vm_flags()


# -------------------------------------------------------------- input checks


def test_zero_rows_give_zero_batches():
    loader = ArrayLoader((np.zeros((0, 3)), np.zeros(0)), 4)
    assert len(loader) == 0
    assert list(loader) == []
    assert len(loader.indices()) == 0


@pytest.mark.parametrize(("drop_last", "sizes"), [(False, [7]), (True, [])])
def test_batch_larger_than_the_data(drop_last, sizes):
    loader = ArrayLoader(np.arange(7), 100, drop_last=drop_last)
    assert [len(b) for b in loader] == sizes


BAD = [
    ({"batch_size": 0}, ValueError, r"`batch_size` must be >= 1; got 0"),
    ({"batch_size": 2.5}, TypeError, r"`batch_size` must be an integer >= 1; got 2.5"),
    ({"batch_size": True}, TypeError, r"`batch_size` must be an integer"),
    ({"shuffle": "random"}, ValueError, r"`shuffle` must be one of .*got 'random'"),
    ({"shuffle": None}, ValueError, r"`shuffle` must be one of .*got None"),
    ({"block_bytes": 0}, ValueError, r"`block_bytes` must be >= 1; got 0"),
    ({"window_blocks": 0}, ValueError, r"`window_blocks` must be >= 1; got 0"),
    ({"prefetch": -1}, ValueError, r"`prefetch` must be >= 0; got -1"),
    ({"prefetch": 1.0}, TypeError, r"`prefetch` must be an integer >= 0; got 1.0"),
    ({"seed": -3}, ValueError, r"`seed` must be >= 0; got -3"),
    ({"seed": "x"}, TypeError, r"`seed` must be an integer >= 0; got 'x'"),
    ({"drop_last": "yes"}, TypeError, r"`drop_last` must be True or False; got 'yes'"),
    ({"copy": 1}, TypeError, r"`copy` must be True or False; got 1"),
    ({"gather_threads": 0}, ValueError, r"`gather_threads` must be >= 1; got 0"),
    ({"read": "direct"}, ValueError, r"`read` must be one of \{'mmap', 'pread'\}; got 'direct'"),
]


@pytest.mark.parametrize(("options", "error", "message"), BAD)
def test_bad_options_are_named(options, error, message):
    arguments = {"batch_size": 4, **options}
    with pytest.raises(error, match=message):
        ArrayLoader(np.arange(10), **arguments)


@pytest.mark.parametrize(("arrays", "error", "message"), [
    ([], ValueError, r"`arrays` is empty"),
    (np.float64(3.0), ValueError, r"`arrays` is 0-d"),
    ([np.arange(3), np.array(5)], ValueError, r"`arrays\[1\]` is 0-d"),
    ([np.arange(10), np.arange(9)], ValueError, r"arrays\[1\] has 9, arrays\[0\] has 10"),
    ([[1, 2, 3]], TypeError, r"`arrays\[0\]` must be a NumPy array.*got list"),
    (42, TypeError, r"`arrays` must be an array, a .npy path.*got int"),
    (np.array([None, 1], dtype=object), TypeError, r"holds Python objects"),
])  # fmt: skip
def test_bad_arrays_are_named(arrays, error, message):
    with pytest.raises(error, match=message):
        ArrayLoader(arrays, 2)


def test_set_epoch_and_indices_check_the_epoch():
    loader = ArrayLoader(np.arange(10), 2)
    with pytest.raises(ValueError, match=r"`epoch` must be >= 0; got -1"):
        loader.set_epoch(-1)
    with pytest.raises(TypeError, match=r"`epoch` must be an integer"):
        loader.indices(1.5)
    with pytest.raises(ValueError, match=r"block_order\(\) describes shuffle='block'"):
        ArrayLoader(np.arange(10), 2, shuffle="full").block_order()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_a_bad_npy_path_raises_npy_error_naming_it(tmp_path, damage):
    path = tmp_path / "bad.npy"
    np.save(path, np.arange(1000.0))
    if damage == "garbage":
        path.write_bytes(b"not an npy file at all" * 10)
    elif damage == "truncated":
        os.truncate(path, 500)
    else:
        path.write_bytes(b"")
    with pytest.raises(NpyError, match=str(path)):
        ArrayLoader([str(path), np.arange(1000)], 10)


def test_missing_path_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        ArrayLoader(tmp_path / "nope.npy", 10)


# ------------------------------------------------------------------ pickling


def test_a_pickled_loader_maps_the_file_again_and_gives_the_same_batches(tmp_path):
    X = np.arange(3000, dtype=np.int32).reshape(1000, 3)
    np.save(tmp_path / "x.npy", X)
    loader = ArrayLoader([tmp_path / "x.npy", np.arange(1000)], 64, seed=9, block_bytes=240)
    clone = pickle.loads(pickle.dumps(loader))
    assert clone._sources[0].path == loader._sources[0].path
    assert isinstance(clone._sources[0].array, np.memmap)
    for (xa, ya), (xb, yb) in zip(epoch_batches(loader), epoch_batches(clone), strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


# ----------------------------------------------------------------- torch side


def test_worker_batches_split_an_epoch_into_contiguous_shares():
    for batches in range(0, 40):
        for workers in range(1, 9):
            shares = [worker_batches(batches, w, workers) for w in range(workers)]
            assert [b for share in shares for b in share] == list(range(batches))
            assert max(map(len, shares)) - min(map(len, shares)) <= 1
    with pytest.raises(ValueError, match=r"`worker_id` must be in 0..1; got 2"):
        worker_batches(10, 2, 2)
    with pytest.raises(ValueError, match=r"`num_workers` must be >= 1; got 0"):
        worker_batches(10, 0, 0)


@pytest.mark.parametrize("shuffle", ["block", "full", "none"])
def test_worker_copies_see_every_sample_once_per_epoch(tmp_path, shuffle):
    np.save(tmp_path / "x.npy", np.arange(1003, dtype=np.int64))
    loader = ArrayLoader(tmp_path / "x.npy", 16, shuffle=shuffle, seed=4, block_bytes=400)
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        blob = pickle.dumps(loader)  # what each worker process starts from
        seen = [batch.copy() for w in range(3)
                for batch in worker_iteration(pickle.loads(blob), w, 3)]  # fmt: skip
        assert len(seen) == len(loader)
        np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.arange(1003))
        assert set(np.concatenate(seen).tolist()) == set(loader.indices(epoch).tolist())
    assert not loader_threads()


def test_torch_dataset_says_how_to_install_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # what a missing torch looks like
    monkeypatch.setattr(_torch, "_DATASET_CLASS", None)
    with pytest.raises(ImportError, match=r"pip install torch"):
        TorchDataset(np.arange(10), 2)


def test_importing_the_adapters_does_not_import_torch():
    code = ("import sys, npaccel.data, npaccel.data._torch; "
            "from npaccel.data import TorchDataset, ArrayLoader; "
            "print('torch' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.strip() == "False"


def test_torch_dataset_with_torch():
    torch = pytest.importorskip("torch", reason="torch is not installed (too big for CI)")
    X, y = np.arange(200.0).reshape(100, 2), np.arange(100)
    dataset = TorchDataset((X, y), 8, seed=0)
    assert isinstance(dataset, torch.utils.data.IterableDataset)
    assert isinstance(dataset, TorchDataset)
    assert len(dataset) == 13
    for workers in (0, 2):
        dataset.set_epoch(1)
        loader = torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=workers)
        labels = torch.cat([yb for _, yb in loader]).numpy()
        np.testing.assert_array_equal(np.sort(labels), np.arange(100))


def test_the_docstring_example_runs():
    failures, tried = doctest.testmod(_loader, verbose=False)
    assert tried > 0
    assert failures == 0


@pytest.mark.parametrize("shuffle", ["block", "full", "none"])
def test_several_gather_threads_give_the_same_batches_in_order(shuffle):
    X = np.arange(3000, dtype=np.int64).reshape(1500, 2)
    one = ArrayLoader(X, 16, seed=4, shuffle=shuffle, block_bytes=512, gather_threads=1,
                      copy=True)  # fmt: skip
    two = ArrayLoader(X, 16, seed=4, shuffle=shuffle, block_bytes=512, gather_threads=2,
                      prefetch=3)  # fmt: skip
    probe = two._iterate()  # uses up epoch 0 of `two`: the comparison starts at epoch 0 again
    assert probe._pipeline.gatherers == 2
    probe.close()
    two.set_epoch(0)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


def test_gather_threads_default_to_two_where_two_cpus_are_usable():
    from npaccel.threads import usable_cpus

    assert ArrayLoader(np.zeros((4, 1)), 2).gather_threads == min(2, usable_cpus())
