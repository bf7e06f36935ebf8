"""npaccel.data.save/load: bit-exact round trips for every format × codec × dtype × layout,
Hypothesis on random arrays, compatibility with np.save/np.load/np.savez and zarr, atomic
writes under injected failures, and every error, provoked with real files."""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from npaccel.data import _store, load, save
from npaccel.data._npy import NpyError
from npaccel.data._store import (
    CHUNK_BYTES,
    CODECS,
    SaveReport,
    StoreError,
    default_chunks,
)

try:
    import zarr
except ImportError:  # the `data` extra; zarr 3 needs Python >= 3.11
    zarr = None
needs_zarr = pytest.mark.skipif(zarr is None, reason='zarr 3 is not installed (pip install '
                                '"npaccel[data]"; needs Python >= 3.11)')  # fmt: skip

RNG = np.random.default_rng(11)
NUMERIC = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
           "float16", "float32", "float64", "complex64", "complex128"]  # fmt: skip
CODEC_CASES = [("npy", "none"), ("npz", "deflate"), ("npz", "none"), ("zarr", "blosc-lz4"),
               ("zarr", "blosc-zstd"), ("zarr", "zstd"), ("zarr", "none")]  # fmt: skip
CASES = [pytest.param(f, c, id=f"{f}-{c}", marks=needs_zarr if f == "zarr" else ())
         for f, c in CODEC_CASES]  # fmt: skip
FORMATS = ["npy", "npz", pytest.param("zarr", marks=needs_zarr)]


def sample(shape, dtype) -> np.ndarray:
    """Random values of ``dtype`` with its extremes first: min/max for integers; NaN, ±inf,
    -0.0, the largest and the smallest normal for floats (in both parts for complex)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    if dtype.kind == "b":
        flat = RNG.integers(0, 2, n).astype(bool)
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        flat = RNG.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
        flat[:2] = [info.min, info.max][: min(n, 2)]
    else:  # complex: the real and imaginary parts interleaved, as in memory
        info = np.finfo(dtype)
        parts = 2 * n if dtype.kind == "c" else n
        specials = np.array([np.nan, np.inf, -np.inf, -0.0, info.max, info.tiny], info.dtype)
        flat = (RNG.normal(size=parts) * 1e3).astype(info.dtype)
        flat[: min(parts, 6)] = specials[: min(parts, 6)]
        flat = flat.view(dtype)
    return flat.astype(dtype).reshape(shape)


LAYOUTS = {
    "0-d": lambda dt: sample((), dt),
    "empty": lambda dt: sample((0,), dt),
    "empty-3d": lambda dt: sample((2, 0, 3), dt),
    "one": lambda dt: sample((1,), dt),
    "3-d": lambda dt: sample((3, 4, 5), dt),
    "strided": lambda dt: sample((6, 5, 8), dt)[::2, ::-1, 1::3],
    "fortran": lambda dt: np.asfortranarray(sample((3, 4, 5), dt)),
}


def same(loaded: np.ndarray, expected: np.ndarray) -> None:
    """Bit for bit (NaN payloads, -0.0), same dtype and shape."""
    assert type(loaded) is np.ndarray
    assert loaded.dtype == expected.dtype
    assert loaded.shape == expected.shape
    assert np.ascontiguousarray(loaded).tobytes() == np.ascontiguousarray(expected).tobytes()


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".npaccel-tmp-"))


def files_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize(("fmt", "codec"), CASES)
def test_round_trip(tmp_path, fmt, codec, dtype, layout):
    array = LAYOUTS[layout](dtype)
    path = tmp_path / f"a.{fmt}"
    report = save(path, array, codec=codec)
    assert report.codec == codec
    loaded = load(path)
    same(loaded, array)
    keeps_fortran = fmt != "zarr" and layout == "fortran"
    assert loaded.flags.f_contiguous if keeps_fortran else loaded.flags.c_contiguous


@pytest.mark.parametrize(("fmt", "codec"), CASES)
def test_big_endian_input(tmp_path, fmt, codec):
    array = sample((4, 6), ">f8")
    save(tmp_path / f"a.{fmt}", array, codec=codec)
    loaded = load(tmp_path / f"a.{fmt}")
    if fmt == "zarr":  # stored little-endian, loaded native
        same(loaded, array.astype("=f8"))
    else:  # NumPy's layout keeps the byte order
        same(loaded, array)


@pytest.mark.parametrize("fmt", ["npy", "npz"])
@pytest.mark.parametrize("dtype", ["S3", "U2", "datetime64[ns]", "timedelta64[s]",
                                   [("x", "<f4"), ("y", "u1", (2,))]])  # fmt: skip
def test_npy_and_npz_hold_non_numeric_dtypes(tmp_path, fmt, dtype):
    array = np.zeros(5, dtype=dtype)
    array.view(np.uint8)[...] = RNG.integers(0, 128, array.nbytes, dtype=np.uint8)
    if array.dtype.kind == "U":
        array = np.array(["ab", "", "π", "zz", "q"], dtype=dtype)
    save(tmp_path / f"a.{fmt}", array)
    same(load(tmp_path / f"a.{fmt}"), array)


@pytest.mark.parametrize("layout", ["3-d", "strided", "fortran", "0-d", "empty-3d"])
@pytest.mark.parametrize("dtype", ["float32", ">i4", "complex128", "bool", "U3"])
def test_npy_is_byte_identical_to_np_save(tmp_path, dtype, layout):
    array = LAYOUTS[layout]("int8").astype(dtype)
    save(tmp_path / "a.npy", array)
    reference = io.BytesIO()
    np.save(reference, array)
    assert (tmp_path / "a.npy").read_bytes() == reference.getvalue()


@pytest.mark.parametrize("level", range(10))
def test_npz_is_read_by_np_load_at_every_level(tmp_path, level):
    arrays = {"x": sample((20, 30), "float64"), "flag": sample((7,), "bool"),
              "f": np.asfortranarray(sample((4, 5), "int16"))}  # fmt: skip
    report = save(tmp_path / "a.npz", arrays, level=level)
    assert (report.codec, report.level) == (("none", None) if level == 0 else ("deflate", level))
    with np.load(tmp_path / "a.npz") as npz:
        assert sorted(npz.files) == sorted(arrays)
        for key, array in arrays.items():
            same(npz[key], array)
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        kinds = {info.compress_type for info in archive.infolist()}
    assert kinds == {zipfile.ZIP_STORED if level == 0 else zipfile.ZIP_DEFLATED}


def test_npz_level_changes_the_deflate_stream(tmp_path):
    smooth = np.repeat(np.arange(2000, dtype=np.int64) // 7, 50)
    sizes = {lv: save(tmp_path / f"{lv}.npz", smooth, level=lv).stored_bytes for lv in (1, 9)}
    assert sizes[9] < sizes[1] < smooth.nbytes


def test_lone_array_in_npz_is_arr_0(tmp_path):
    array = sample((3, 3), "int32")
    save(tmp_path / "a.npz", array)
    with np.load(tmp_path / "a.npz") as npz:
        assert npz.files == ["arr_0"]
        same(npz["arr_0"], array)
    same(load(tmp_path / "a.npz"), array)
    same(load(tmp_path / "a.npz", key="arr_0"), array)


@pytest.mark.parametrize("writer", [np.savez, np.savez_compressed])
def test_load_reads_numpys_npz(tmp_path, writer):
    a, b = sample((5, 4), "float32"), sample((3,), "uint16")
    writer(tmp_path / "one.npz", a)
    writer(tmp_path / "two.npz", a, b=b)
    same(load(tmp_path / "one.npz"), a)
    two = load(tmp_path / "two.npz")
    assert sorted(two) == ["arr_0", "b"]
    same(two["arr_0"], a)
    same(two["b"], b)


@pytest.mark.parametrize("fmt", FORMATS[1:])
def test_dict_round_trip_and_key(tmp_path, fmt):
    arrays = {"image": sample((8, 9, 3), "uint8"), "mask": sample((8, 9), "bool"),
              "t.0-x": sample((), "float64"), "none": sample((0, 2), "complex64")}  # fmt: skip
    save(tmp_path / f"d.{fmt}", arrays)
    loaded = load(tmp_path / f"d.{fmt}")
    assert sorted(loaded) == sorted(arrays)
    for key, array in arrays.items():
        same(loaded[key], array)
    same(load(tmp_path / f"d.{fmt}", key="mask"), arrays["mask"])
    with pytest.raises(ValueError, match=r"`key` 'nope' is not in .*d\.\w+'; it holds "
                                         r"\['image', 'mask', 'none', 't\.0-x'\]"):
        load(tmp_path / f"d.{fmt}", key="nope")


@pytest.mark.parametrize("fmt", FORMATS[1:])
def test_empty_dict_and_a_dict_of_arr_0(tmp_path, fmt):
    save(tmp_path / f"e.{fmt}", {})
    assert load(tmp_path / f"e.{fmt}") == {}
    array = sample((2,), "int8")
    save(tmp_path / f"one.{fmt}", {"only": array})
    assert list(load(tmp_path / f"one.{fmt}")) == ["only"]  # a dict of one stays a dict
    save(tmp_path / f"arr0.{fmt}", {"arr_0": array})
    loaded = load(tmp_path / f"arr0.{fmt}")
    if fmt == "npz":  # documented: an .npz of only 'arr_0' is a lone array
        same(loaded, array)
    else:
        same(loaded["arr_0"], array)


@needs_zarr
def test_zarr_is_read_by_zarr_with_the_codec_asked_for(tmp_path):
    array = sample((300, 70), "float32")
    for codec, level in [("blosc-lz4", 2), ("blosc-zstd", 7), ("zstd", 11), ("none", None)]:
        path = tmp_path / f"{codec}.zarr"
        report = save(path, array, codec=codec, level=level, chunks=(64, 32))
        opened = zarr.open_array(path, mode="r")
        same(np.asarray(opened[...]), array)
        assert opened.chunks == (64, 32)
        *compressors, checksum = opened.compressors
        assert isinstance(checksum, zarr.codecs.Crc32cCodec)
        if codec == "none":
            assert compressors == []
        elif codec == "zstd":
            assert compressors[0].level == 11
        else:
            assert (compressors[0].cname.value, compressors[0].clevel) == (codec[6:], level)
            assert compressors[0].shuffle.value == "shuffle"
        assert (report.codec, report.level) == (codec, level)


@needs_zarr
def test_zarr_default_chunks_are_default_chunks(tmp_path):
    array = np.zeros((3000, 700), np.float32)  # 8.4 MB: more than one chunk
    save(tmp_path / "a.zarr", array)
    opened = zarr.open_array(tmp_path / "a.zarr", mode="r")
    assert opened.chunks == default_chunks(array.shape, 4) == (1497, 700)
    assert opened.nchunks == 3


@needs_zarr
def test_zarr_int_chunks_apply_to_every_axis(tmp_path):
    save(tmp_path / "a.zarr", {"x": np.ones((5, 7)), "y": np.ones(9)}, chunks=3)
    assert zarr.open_array(tmp_path / "a.zarr" / "x", mode="r").chunks == (3, 3)
    assert zarr.open_array(tmp_path / "a.zarr" / "y", mode="r").chunks == (3,)


def test_mmap_gives_a_read_only_memmap(tmp_path):
    array = np.asfortranarray(sample((6, 7), "float32"))
    save(tmp_path / "a.npy", array)
    mapped = load(tmp_path / "a.npy", mmap=True)
    assert isinstance(mapped, np.memmap)
    assert not mapped.flags.writeable
    assert mapped.flags.f_contiguous
    np.testing.assert_array_equal(mapped, array)


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_argument_overrides_an_unknown_extension(tmp_path, fmt):
    array = sample((4,), "int64")
    path = tmp_path / f"data-{fmt}.bin"
    assert save(path, array, format=fmt.upper()).format == fmt
    same(load(path), array)  # load tells the format from the content


# ------------------------------------------------------------------------------ Hypothesis

HYPOTHESIS_DTYPES = st.sampled_from([np.dtype(d) for d in NUMERIC] + [np.dtype(">f4"),
                                                                      np.dtype(">u2")])


@st.composite
def arrays_and_views(draw):
    """A random array, sometimes a strided or transposed view of it."""
    array = draw(hnp.arrays(HYPOTHESIS_DTYPES, hnp.array_shapes(min_dims=0, max_dims=4,
                                                                min_side=0, max_side=6)))
    view = draw(st.sampled_from(["as is", "reversed", "transposed", "fortran"]))
    if view == "reversed" and array.ndim:
        array = array[::-1, ...][::2]
    elif view == "transposed":
        array = array.T
    elif view == "fortran":
        array = np.asfortranarray(array)
    return array


HYPOTHESIS = settings(max_examples=40, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])  # fmt: skip


@HYPOTHESIS
@given(array=arrays_and_views(), case=st.sampled_from(CODEC_CASES[:3]),
       level=st.integers(0, 9))  # fmt: skip
def test_hypothesis_npy_npz(array, case, level):
    fmt, codec = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"h.{fmt}"
        save(path, array, codec=codec, level=level if codec == "deflate" else None)
        same(load(path), array)
        if fmt == "npz":
            with np.load(path) as npz:
                same(npz["arr_0"], array)


@needs_zarr
@HYPOTHESIS
@given(array=arrays_and_views(), codec=st.sampled_from(list(CODECS["zarr"])),
       chunk=st.integers(1, 7))  # fmt: skip
def test_hypothesis_zarr(array, codec, chunk):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.zarr"
        save(path, array, codec=codec, chunks=chunk)
        expected = array.astype(array.dtype.newbyteorder("="))
        same(load(path), expected)
        same(np.asarray(zarr.open_array(path, mode="r")[...]), expected)


# ---------------------------------------------------------------------------------- report


@pytest.mark.parametrize(("fmt", "codec"), CASES)
def test_report(tmp_path, fmt, codec):
    array = np.tile(np.arange(1000, dtype=np.float64), 20)
    path = tmp_path / f"r.{fmt}"
    report = save(path, array, codec=codec)
    assert isinstance(report, SaveReport)
    assert report.path == path
    assert report.format == fmt
    assert report.raw_bytes == array.nbytes
    assert report.stored_bytes == files_size(path)
    assert report.ratio == pytest.approx(array.nbytes / report.stored_bytes)
    assert report.seconds > 0
    assert report.gb_per_s == pytest.approx(array.nbytes / report.seconds / 1e9)
    assert (report.ratio > 2) == (codec != "none")  # repeated rows compress well
    assert str(report).startswith(f"{str(path)!r}: {fmt} {codec}")
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.ratio = 1.0


@needs_zarr
def test_report_of_a_dict_counts_every_array(tmp_path):
    arrays = {"a": np.zeros(100), "b": np.ones((3, 3), np.int8)}
    assert save(tmp_path / "d.zarr", arrays).raw_bytes == 809
    assert save(tmp_path / "d.npz", arrays).raw_bytes == 809


@pytest.mark.parametrize(("fmt", "codec", "level", "expected"), [
    ("npy", None, None, ("none", None)),
    ("npz", None, None, ("deflate", 1)),
    ("npz", "deflate", 0, ("none", None)),
    ("npz", "none", 0, ("none", None)),
    ("npz", "DEFLATE", 9, ("deflate", 9)),
    pytest.param("zarr", None, None, ("blosc-lz4", 5), marks=needs_zarr),
    pytest.param("zarr", "blosc-zstd", None, ("blosc-zstd", 5), marks=needs_zarr),
    pytest.param("zarr", "zstd", None, ("zstd", 3), marks=needs_zarr),
    pytest.param("zarr", "blosc-lz4", 0, ("blosc-lz4", 0), marks=needs_zarr),
    pytest.param("zarr", "zstd", np.int64(22), ("zstd", 22), marks=needs_zarr),
])  # fmt: skip
def test_codec_and_level_defaults(tmp_path, fmt, codec, level, expected):
    report = save(tmp_path / f"a.{fmt}", np.arange(3), codec=codec, level=level)
    assert (report.codec, report.level) == expected


@pytest.mark.parametrize(("shape", "itemsize", "expected"), [
    ((10_000, 1000), 4, (1048, 1000)),
    ((3, 5), 8, (3, 5)),
    ((), 8, ()),
    ((0, 7), 4, (1, 7)),
    ((100_000_000,), 4, (CHUNK_BYTES // 4,)),
    ((10, 4096, 4096), 1, (1, 1024, 4096)),
    ((5, 3, 2_000_000), 4, (1, 1, 1_048_576)),
    ((3,), CHUNK_BYTES * 2, (1,)),
])  # fmt: skip
def test_default_chunks(shape, itemsize, expected):
    chunks = default_chunks(shape, itemsize)
    assert chunks == expected
    assert all(1 <= c <= max(n, 1) for c, n in zip(chunks, shape, strict=True))
    assert np.prod(chunks, dtype=np.int64) * itemsize <= max(CHUNK_BYTES, itemsize)


# ------------------------------------------------------------------------------ atomicity


class Interrupt(BaseException):
    """Stands for KeyboardInterrupt or SystemExit in the middle of a write."""


def _fail_fsync(monkeypatch, error: BaseException) -> None:
    def fsync(fd):
        raise error

    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("error", [OSError(errno.EIO, "Input/output error"), Interrupt()],
                         ids=["OSError", "BaseException"])
def test_failed_fsync_leaves_nothing(tmp_path, monkeypatch, fmt, error):
    _fail_fsync(monkeypatch, error)
    with pytest.raises(type(error)):
        save(tmp_path / f"a.{fmt}", np.ones(1000))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_failed_overwrite_keeps_the_old_target(tmp_path, monkeypatch, fmt):
    path = tmp_path / f"a.{fmt}"
    old = sample((50,), "int32")
    save(path, old)
    before = sorted((p.relative_to(tmp_path), p.read_bytes()) for p in tmp_path.rglob("*")
                    if p.is_file())  # fmt: skip
    _fail_fsync(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match="No space left"):
        save(path, np.zeros(50), overwrite=True)
    monkeypatch.undo()
    after = sorted((p.relative_to(tmp_path), p.read_bytes()) for p in tmp_path.rglob("*")
                   if p.is_file())  # fmt: skip
    assert after == before
    same(load(path), old)


@pytest.mark.parametrize("fmt", ["npy", "npz"])
def test_failure_in_the_middle_of_the_data_leaves_nothing(tmp_path, monkeypatch, fmt):
    def write_array(fp, array, *args, **kwargs):
        fp.write(b"\x93NUMPY half of an array")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np.lib.format, "write_array", write_array)
    with pytest.raises(OSError, match="No space left"):
        save(tmp_path / f"a.{fmt}", {"x": np.ones(10)} if fmt == "npz" else np.ones(10))
    assert list(tmp_path.iterdir()) == []


@needs_zarr
@pytest.mark.parametrize("overwrite", [False, True])
def test_zarr_failure_after_some_chunks_leaves_nothing_new(tmp_path, monkeypatch, overwrite):
    path = tmp_path / "a.zarr"
    if overwrite:
        save(path, np.arange(10))
    real_set = zarr.storage.LocalStore.set
    written, failed = [], []

    async def failing_set(self, key, value):
        if failed:  # still in flight when the error reaches save: must not outlive it
            await asyncio.sleep(0.05)
        elif len(written) == 3:
            failed.append(key)
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(key)
        await real_set(self, key, value)

    monkeypatch.setattr(zarr.storage.LocalStore, "set", failing_set)
    with pytest.raises(OSError, match="No space left"):
        save(path, np.zeros((40, 3)), chunks=(5, 3), overwrite=overwrite)
    monkeypatch.undo()
    assert len(written) >= 3  # metadata and chunks were written before the failure
    assert leftovers(tmp_path) == []
    if overwrite:
        same(load(path), np.arange(10))
    else:
        assert not path.exists()


@needs_zarr
def test_zarr_failed_rename_restores_the_old_store(tmp_path, monkeypatch):
    path = tmp_path / "a.zarr"
    save(path, np.arange(5))
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # the new store into place
            raise OSError(errno.EIO, "Input/output error")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="Input/output error"):
        save(path, np.zeros(5), overwrite=True)
    monkeypatch.undo()
    assert calls[0][0] == "a.zarr"  # first the old store aside, last back
    assert calls[-1][1] == "a.zarr"
    same(load(path), np.arange(5))
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_existing_target_is_kept_without_overwrite(tmp_path, fmt):
    path = tmp_path / f"a.{fmt}"
    save(path, np.arange(3))
    with pytest.raises(FileExistsError, match=rf"a\.{fmt}' exists; pass overwrite=True to "
                                              r"replace it"):
        save(path, np.zeros(3))
    same(load(path), np.arange(3))
    assert leftovers(tmp_path) == []
    save(path, np.zeros(3), overwrite=True)
    same(load(path), np.zeros(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"a.{fmt}"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_target_appearing_during_the_write_is_not_replaced(tmp_path, monkeypatch, fmt):
    """The check before encoding passes; someone creates the target while we write."""
    path = tmp_path / f"a.{fmt}"
    real_fsync = os.fsync

    def fsync(fd):
        if not path.exists():
            if fmt == "zarr":
                path.mkdir()
                (path / "theirs").write_bytes(b"theirs")
            else:
                path.write_bytes(b"theirs")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(FileExistsError, match=r"exists; pass overwrite=True"):
        save(path, np.arange(3))
    monkeypatch.undo()
    assert (path / "theirs" if fmt == "zarr" else path).read_bytes() == b"theirs"
    assert leftovers(tmp_path) == []


def test_overwrite_replaces_only_the_same_kind(tmp_path):
    (tmp_path / "dir.npy").mkdir()
    with pytest.raises(FileExistsError, match=r"dir\.npy' is a directory; a \.npy file does "
                                              r"not replace a directory"):
        save(tmp_path / "dir.npy", np.arange(3), overwrite=True)
    (tmp_path / "plain.zarr").mkdir()
    (tmp_path / "plain.zarr" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"plain\.zarr' is a directory that is not a zarr "
                                              r"store; overwrite=True replaces only a zarr store"):
        save(tmp_path / "plain.zarr", np.arange(3), overwrite=True)
    (tmp_path / "file.zarr").write_text("mine")
    with pytest.raises(FileExistsError, match=r"file\.zarr' is not a directory"):
        save(tmp_path / "file.zarr", np.arange(3), overwrite=True)
    assert (tmp_path / "plain.zarr" / "keep.txt").read_text() == "mine"
    assert (tmp_path / "file.zarr").read_text() == "mine"
    assert leftovers(tmp_path) == []


@needs_zarr
def test_zarr_overwrite_replaces_a_group_by_an_array(tmp_path):
    save(tmp_path / "a.zarr", {"x": np.ones(3), "y": np.zeros(2)})
    save(tmp_path / "a.zarr", np.arange(4), overwrite=True)
    same(load(tmp_path / "a.zarr"), np.arange(4))
    assert not (tmp_path / "a.zarr" / "x").exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", FORMATS)
def test_new_files_get_the_usual_permissions(tmp_path, fmt):
    mask = os.umask(0o022)
    os.umask(mask)
    save(tmp_path / f"a.{fmt}", np.arange(3))
    mode = stat.S_IMODE((tmp_path / f"a.{fmt}").stat().st_mode)
    assert mode == (0o777 if fmt == "zarr" else 0o666) & ~mask


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere/a\.npy': its directory .*nowhere' "
                                                r"does not exist; create it first"):
        save(tmp_path / "nowhere" / "a.npy", np.arange(3))


def test_unwritable_directory(as_nobody):
    directory = Path(tempfile.mkdtemp(prefix="npaccel-test-", dir="/tmp"))
    try:
        directory.chmod(0o555)
        path = directory / "a.npz"
        if os.geteuid() == 0:
            result = as_nobody(lambda: save(path, np.arange(3)))
        else:
            with pytest.raises(PermissionError) as caught:
                save(path, np.arange(3))
            result = f"{type(caught.value).__name__}: {caught.value}"
        assert result.startswith("PermissionError: ")
        assert f"{str(path)!r}: cannot create a temp file in {str(directory)!r}" in result
        assert list(directory.iterdir()) == []
    finally:
        shutil.rmtree(directory)


# ----------------------------------------------------------------------------- save errors


@pytest.mark.parametrize(("name", "kwargs", "error", "message"), [
    ("a.txt", {}, ValueError, r"a\.txt': the extension '\.txt' names no format; use one of "
                              r"\{\.npy, \.npz, \.zarr\} or pass `format`"),
    ("a", {}, ValueError, r"the extension '' names no format"),
    ("a.bin", {"format": "hdf5"}, ValueError,
     r"`format` must be one of \{'npy', 'npz', 'zarr'\}; got 'hdf5'"),
    ("a.bin", {"format": 3}, ValueError, r"`format` must be one of .*; got 3"),
    ("a.npy", {"format": "npz"}, ValueError,
     r"`format` 'npz' disagrees with the extension '\.npy' of .*a\.npy'; change one of them"),
    ("a.npz", {"codec": "blosc-lz4"}, ValueError,
     r"`codec` for npz must be one of \{'deflate', 'none'\}; got 'blosc-lz4'"),
    ("a.zarr", {"codec": "gzip"}, ValueError,
     r"`codec` for zarr must be one of \{'blosc-lz4', 'blosc-zstd', 'zstd', 'none'\}; "
     r"got 'gzip'"),
    ("a.npy", {"codec": "deflate"}, ValueError, r"`codec` for npy must be one of \{'none'\}"),
    ("a.npy", {"level": 3}, ValueError,
     r"`level` must be None for npy codec 'none' \(it does not compress\); got 3"),
    ("a.zarr", {"codec": "none", "level": 5}, ValueError, r"`level` must be None for zarr"),
    ("a.npz", {"level": 10}, ValueError,
     r"`level` for npz codec 'deflate' must be in \[0, 9\]; got 10"),
    ("a.npz", {"level": -1}, ValueError, r"must be in \[0, 9\]; got -1"),
    ("a.zarr", {"codec": "zstd", "level": 0}, ValueError,
     r"`level` for zarr codec 'zstd' must be in \[1, 22\]; got 0"),
    ("a.zarr", {"codec": "blosc-zstd", "level": 10}, ValueError,
     r"`level` for zarr codec 'blosc-zstd' must be in \[0, 9\]; got 10"),
    ("a.npz", {"level": True}, TypeError, r"`level` must be an int or None; got True"),
    ("a.npz", {"level": 1.5}, TypeError, r"`level` must be an int or None; got 1\.5"),
    ("a.npz", {"chunks": 4}, ValueError,
     r"`chunks` is for zarr only; npz is not chunked: pass chunks=None"),
    ("a.zarr", {"chunks": 0}, ValueError,
     r"`chunks` must be a positive int or a tuple of positive ints; got 0"),
    ("a.zarr", {"chunks": (2, 0)}, ValueError, r"got \(2, 0\)"),
    ("a.zarr", {"chunks": (2, 2.0)}, ValueError, r"got \(2, 2\.0\)"),
    ("a.zarr", {"chunks": True}, ValueError, r"got True"),
    ("a.zarr", {"chunks": (2,)}, ValueError,
     r"`chunks` \(2,\) has 1 axes but the array has 2 \(shape \(3, 4\)\)"),
])  # fmt: skip
def test_bad_arguments(tmp_path, name, kwargs, error, message):
    with pytest.raises(error, match=message):
        save(tmp_path / name, np.zeros((3, 4)), **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("value", [np.array([1, "a", None], dtype=object),
                                   np.zeros(2, dtype=[("x", "f4"), ("o", "O")])],
                         ids=["object", "structured-with-object"])  # fmt: skip
def test_python_objects_are_refused(tmp_path, fmt, value):
    with pytest.raises(TypeError, match=rf"`data` has dtype .*\(it holds Python objects\), "
                                        rf"which {fmt} cannot store"):
        save(tmp_path / f"a.{fmt}", value)
    assert list(tmp_path.iterdir()) == []


def test_string_dtype_is_refused_everywhere(tmp_path):
    strings = np.array(["a", "bc"], dtype=np.dtypes.StringDType())
    for fmt in ("npy", "npz", "zarr"):
        with pytest.raises(TypeError, match=r"has dtype StringDType\(\) \(it holds Python "
                                            r"objects\)"):
            save(tmp_path / f"a.{fmt}", strings)


@pytest.mark.parametrize("dtype", ["U3", "S2", "datetime64[s]", [("x", "f4")]])
def test_zarr_holds_numeric_dtypes_only(tmp_path, dtype):
    with pytest.raises(TypeError, match=r"which zarr cannot store: zarr holds bool, integer, "
                                        r"float and complex dtypes; convert it, or save it as "
                                        r"\.npy or \.npz"):
        save(tmp_path / "a.zarr", {"x": np.zeros(2, dtype)})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", ["", "a/b", ".hidden", "-x", "__x", "a b", "é", "x" * 256,
                                 "zarr.json", "a\\b"])  # fmt: skip
def test_bad_names(tmp_path, key):
    for fmt in ("npz", "zarr"):
        with pytest.raises(ValueError, match=rf"array name {re.escape(repr(key))} in `data` is "
                                             r"not allowed: use 1 to 255 of A-Z a-z 0-9 _ \. -"):
            save(tmp_path / f"a.{fmt}", {"ok": np.zeros(1), key: np.zeros(1)})
    assert list(tmp_path.iterdir()) == []


def test_non_str_names_and_npy_dicts(tmp_path):
    with pytest.raises(TypeError, match=r"array names in `data` must be str; got 1"):
        save(tmp_path / "a.npz", {1: np.zeros(1)})
    with pytest.raises(TypeError, match=r"`data` for \.npy must be one array; got a mapping of "
                                        r"2 arrays: save them as \.npz or \.zarr"):
        save(tmp_path / "a.npy", {"a": np.zeros(1), "b": np.zeros(1)})


def test_ragged_data(tmp_path):
    with pytest.raises(ValueError, match=r"`data\['x'\]` is not an array: "):
        save(tmp_path / "a.npz", {"x": [[1, 2], [3]]})


def test_array_likes_are_accepted(tmp_path):
    save(tmp_path / "a.npz", {"x": [[1, 2], [3, 4]], "y": 2.5})
    loaded = load(tmp_path / "a.npz")
    same(loaded["x"], np.array([[1, 2], [3, 4]]))
    same(loaded["y"], np.array(2.5))


def test_missing_zarr_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "store.zarr").mkdir()
    (tmp_path / "store.zarr" / "zarr.json").write_text('{"zarr_format": 3}')
    monkeypatch.setitem(sys.modules, "zarr", None)  # `import zarr` now raises ImportError
    message = (r'zarr stores need zarr 3: pip install "npaccel\[data\]" \(zarr 3 needs Python '
               r"≥ 3\.11\)")
    with pytest.raises(ImportError, match=message):
        save(tmp_path / "a.zarr", np.arange(3))
    with pytest.raises(ImportError, match=message):
        load(tmp_path / "store.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.zarr"]
    save(tmp_path / "a.npz", np.arange(3))  # the other formats need no zarr
    same(load(tmp_path / "a.npz"), np.arange(3))


def test_npy_and_npz_do_not_import_zarr(tmp_path):
    code = (f"import sys; from npaccel.data import save, load; import numpy as np; "
            f"save({str(tmp_path / 'a.npy')!r}, np.ones(3)); "
            f"save({str(tmp_path / 'a.npz')!r}, {{'x': np.ones(3)}}); "
            f"load({str(tmp_path / 'a.npy')!r}); load({str(tmp_path / 'a.npz')!r}); "
            f"print('zarr' in sys.modules, 'numcodecs' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)  # fmt: skip
    assert out.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------- load errors


def test_load_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.npz': no such file or directory"):
        load(tmp_path / "nope.npz")


@pytest.mark.parametrize("mmap", [False, True])
def test_truncated_npy_is_open_npys_error(tmp_path, mmap):
    save(tmp_path / "t.npy", np.arange(100, dtype=np.int16))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-1])
    with pytest.raises(NpyError, match=r"t\.npy' is truncated: the header says shape \(100,\)"):
        load(tmp_path / "t.npy", mmap=mmap)


@pytest.mark.parametrize(("name", "content", "error", "message"), [
    ("g.npy", b"garbage bytes", NpyError, r"g\.npy' is not a \.npy file"),
    ("e.npy", b"", NpyError, r"e\.npy' is empty \(0 bytes\)"),
    ("g.npz", b"garbage bytes", StoreError,
     r"g\.npz' is truncated or damaged: not a readable zip archive \(File is not a zip file\)"),
    ("e.npz", b"", StoreError, r"e\.npz' is empty \(0 bytes\): not a readable zip archive"),
    ("f.zarr", b"{}", StoreError, r"f\.zarr' is a file; a zarr store is a directory"),
    ("g.dat", b"garbage bytes", StoreError,
     r"g\.dat' is neither a \.npy file nor an \.npz archive \(its first bytes are "
     r"b'garbag'\) nor a zarr directory"),
])  # fmt: skip
def test_not_an_array_file(tmp_path, name, content, error, message):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(error, match=message):
        load(tmp_path / name)


def test_a_directory_named_like_a_file(tmp_path):
    (tmp_path / "d.npy").mkdir()
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(NpyError, match=r"d\.npy' is a directory, not a \.npy file"):
        load(tmp_path / "d.npy")
    with pytest.raises(StoreError, match=r"d\.npz' is a directory, not an \.npz file"):
        load(tmp_path / "d.npz")


def test_truncated_npz(tmp_path):
    save(tmp_path / "t.npz", {"a": sample((100,), "float64"), "b": np.zeros(10)})
    data = (tmp_path / "t.npz").read_bytes()
    for cut in (1, len(data) // 2):
        (tmp_path / "t.npz").write_bytes(data[:-cut])
        with pytest.raises(StoreError, match=r"t\.npz' is truncated or damaged: not a readable "
                                             r"zip archive"):
            load(tmp_path / "t.npz")


def test_npz_member_truncated_inside_a_valid_zip(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, sample((50,), "float32"))
    with zipfile.ZipFile(tmp_path / "m.npz", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("good.npy", buffer.getvalue())
        archive.writestr("short.npy", buffer.getvalue()[:-3])
    with pytest.raises(StoreError, match=r"m\.npz': the member 'short\.npy' is truncated "
                                         r"\(EOF: reading array data"):
        load(tmp_path / "m.npz")
    same(load(tmp_path / "m.npz", key="good"), np.load(io.BytesIO(buffer.getvalue())))


@pytest.mark.parametrize("level", [0, 6])
def test_npz_member_with_damaged_data(tmp_path, level):
    save(tmp_path / "c.npz", {"x": sample((5000,), "float64")}, level=level)
    data = bytearray((tmp_path / "c.npz").read_bytes())
    with zipfile.ZipFile(tmp_path / "c.npz") as archive:
        info = archive.getinfo("x.npy")
    middle = info.header_offset + 30 + len(info.filename) + 20 + info.compress_size // 2
    data[middle:middle + 8] = bytes(255 - b for b in data[middle:middle + 8])
    (tmp_path / "c.npz").write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"c\.npz': the member 'x\.npy' is truncated or "
                                         r"damaged \(.*\); save the file again"):
        load(tmp_path / "c.npz")


def test_npz_members_that_are_not_arrays(tmp_path):
    with zipfile.ZipFile(tmp_path / "t.npz", "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(StoreError, match=r"t\.npz': the member 'notes\.txt' is not a \.npy "
                                         r"array"):
        load(tmp_path / "t.npz")
    np.savez(tmp_path / "o.npz", x=np.array([1, None], dtype=object))
    with pytest.raises(StoreError, match=r"o\.npz': the member 'x\.npy' is not a usable \.npy "
                                         r"array \(Object arrays cannot be loaded"):
        load(tmp_path / "o.npz")
    with zipfile.ZipFile(tmp_path / "j.npz", "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY junk")
    with pytest.raises(StoreError, match=r"j\.npz': the member 'x\.npy' is not a usable"):
        load(tmp_path / "j.npz")


def test_npz_member_with_trailing_bytes(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.arange(4))
    with zipfile.ZipFile(tmp_path / "t.npz", "w") as archive:
        archive.writestr("x.npy", buffer.getvalue() + b"extra")
    with pytest.raises(StoreError, match=r"t\.npz': the member 'x\.npy' has 5 bytes after its "
                                         r"array: it is damaged"):
        load(tmp_path / "t.npz")


@pytest.mark.parametrize("fmt", FORMATS[1:])
def test_mmap_needs_npy(tmp_path, fmt):
    save(tmp_path / f"a.{fmt}", np.arange(3))
    with pytest.raises(ValueError, match=rf"`mmap=True` needs a \.npy file; .*a\.{fmt}' is "
                                         rf"{fmt}, which is read into memory"):
        load(tmp_path / f"a.{fmt}", mmap=True)


@pytest.mark.parametrize(("fmt", "message"), [
    ("npy", r"`key` 'x' given, but .*a\.npy' is a \.npy file holding one array: pass key=None"),
    ("npz", r"`key` 'x' is not in .*a\.npz'; it holds \['arr_0'\]"),
    pytest.param("zarr", r"`key` 'x' given, but .*a\.zarr' is a zarr array, not a group",
                 marks=needs_zarr),
])  # fmt: skip
def test_key_of_a_lone_array(tmp_path, fmt, message):
    save(tmp_path / f"a.{fmt}", np.arange(3))
    with pytest.raises(ValueError, match=message):
        load(tmp_path / f"a.{fmt}", key="x")


@needs_zarr
def test_zarr_without_metadata(tmp_path):
    save(tmp_path / "a.zarr", np.arange(30), chunks=10)
    (tmp_path / "a.zarr" / "zarr.json").unlink()
    with pytest.raises(StoreError, match=r"a\.zarr' is not a zarr store: it has no zarr "
                                         r"metadata \(zarr\.json, or \.zarray/\.zgroup for "
                                         r"zarr 2\)"):
        load(tmp_path / "a.zarr")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(StoreError, match=r"empty\.zarr' is not a zarr store"):
        load(tmp_path / "empty.zarr")


@needs_zarr
def test_zarr_with_damaged_metadata(tmp_path):
    save(tmp_path / "a.zarr", np.arange(30))
    (tmp_path / "a.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_type": ')
    with pytest.raises(StoreError, match=r"a\.zarr': its zarr metadata is damaged "
                                         r"\(JSONDecodeError: "):
        load(tmp_path / "a.zarr")
    save(tmp_path / "b.zarr", np.arange(30))
    meta = json.loads((tmp_path / "b.zarr" / "zarr.json").read_text())
    meta["node_type"] = "sandwich"
    (tmp_path / "b.zarr" / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=r"b\.zarr': its zarr metadata is damaged"):
        load(tmp_path / "b.zarr")


@needs_zarr
@pytest.mark.parametrize("damage", ["truncated", "flipped"])
@pytest.mark.parametrize("codec", list(CODECS["zarr"]))
@pytest.mark.parametrize("seed", range(4))
def test_zarr_with_a_damaged_chunk(tmp_path, codec, damage, seed):
    """Without the checksum some of these decode silently to wrong values (blosc reads
    past the end of a short buffer)."""
    values = np.random.default_rng(seed).normal(size=1000) * 1e3
    save(tmp_path / "a.zarr", {"x": values}, codec=codec, chunks=100)
    chunk = tmp_path / "a.zarr" / "x" / "c" / "3"
    data = bytearray(chunk.read_bytes())
    if damage == "truncated":
        del data[-10:]
    else:
        data[len(data) // 2] ^= 0x10
    chunk.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"a\.zarr': the chunks of array 'x' cannot be decoded "
                                         r"\(.*\); the store is damaged"):
        load(tmp_path / "a.zarr")


@needs_zarr
def test_zarr_with_a_missing_chunk(tmp_path):
    save(tmp_path / "a.zarr", np.zeros(1000), chunks=100)  # all-fill chunks are stored too
    assert len(list((tmp_path / "a.zarr" / "c").iterdir())) == 10
    (tmp_path / "a.zarr" / "c" / "7").unlink()
    with pytest.raises(StoreError, match=r"a\.zarr': the array has 1 of its 10 chunks missing; "
                                         r"the store is incomplete"):
        load(tmp_path / "a.zarr")


@needs_zarr
def test_foreign_zarr_stores_are_read_without_the_chunk_check(tmp_path):
    """zarr itself skips chunks equal to the fill value: absent chunks are legitimate."""
    theirs = zarr.create_array(tmp_path / "z.zarr", shape=(6,), dtype="i4", chunks=(2,))
    theirs[...] = [1, 2, 0, 0, 5, 6]
    assert len(list((tmp_path / "z.zarr" / "c").iterdir())) == 2
    same(load(tmp_path / "z.zarr"), np.array([1, 2, 0, 0, 5, 6], "i4"))
    group = zarr.create_group(tmp_path / "g.zarr")
    group.create_array("x", shape=(2,), dtype="f8")[...] = [1.5, 2.5]
    group.create_group("sub").create_array("y", shape=(1,), dtype="f8")[...] = 3
    assert list(load(tmp_path / "g.zarr")) == ["x"]  # subgroups are not read


@needs_zarr
def test_zarr_2_stores_are_read(tmp_path):
    theirs = zarr.create_array(tmp_path / "v2.zarr", shape=(5,), dtype="f4", chunks=(2,),
                               zarr_format=2)  # fmt: skip
    theirs[...] = np.arange(5, dtype="f4")
    same(load(tmp_path / "v2.zarr"), np.arange(5, dtype="f4"))


def test_store_error_is_a_value_error():
    assert issubclass(StoreError, ValueError)
    assert set(_store.__all__) >= {"save", "load", "SaveReport", "StoreError"}
