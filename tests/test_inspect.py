"""Tests for ``npaccel.inspect``: every reported fact is checked against a value computed
independently (NumPy flags, ``__array_interface__`` addresses, file sizes, hard-coded
layouts), and every advice rule has a case that triggers it and cases that must not."""

from __future__ import annotations

import json
import mmap
import os
import struct
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npaccel
from npaccel import ArrayReport

MIB = 1 << 20
LARGE = 64 * MIB  # the documented threshold for "large" remarks
NON_NATIVE = ">" if sys.byteorder == "little" else "<"
POINTER_SIZE = struct.calcsize("P")

KEYS = {
    "shape",
    "ndim",
    "dtype",
    "itemsize",
    "size",
    "nbytes",
    "strides",
    "c_contiguous",
    "f_contiguous",
    "aligned",
    "alignment",
    "writeable",
    "owner",
    "base_type",
    "base_nbytes",
    "memmap",
    "memmap_file",
    "span_bytes",
    "padding_bytes",
    "byteorder",
    "advice",
}

# Advice prefixes, one per rule.
OBJECT = "object dtype"
ZERO_STRIDE = "zero stride"
NOT_CONTIGUOUS = "not contiguous"
LARGE_STRIDED = "large strided view"
SMALL_VIEW = "small view keeps"
MISALIGNED = "misaligned for its dtype"
START_ALIGN = "data starts"
SWAPPED = "non-native byte order"
PADDING = "structured dtype with"
MEMMAP = "memory-mapped"
ASTYPE = "pipeline: a.astype"


# --------------------------------------------------------------------------- helpers


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def element_addresses(a: np.ndarray) -> list[int]:
    """Real data address of every element, read from 0-d views (not from the strides)."""
    return [address(a[(*idx, Ellipsis)]) for idx in np.ndindex(*a.shape)]


def expected_span(a: np.ndarray) -> int:
    addrs = element_addresses(a)
    if not addrs:
        return 0
    return max(addrs) - min(addrs) + a.itemsize


def expected_alignment(addr: int) -> int:
    if addr == 0:
        return 4096
    k = 1
    while k < 4096 and addr % (2 * k) == 0:
        k *= 2
    return k


def advice_with(report: ArrayReport, prefix: str) -> list[str]:
    return [a for a in report["advice"] if prefix in a]


def has_advice(report: ArrayReport, prefix: str) -> bool:
    return bool(advice_with(report, prefix))


def check_basic_facts(a: np.ndarray, r: ArrayReport) -> None:
    """Facts that map one-to-one onto NumPy attributes and flags."""
    assert r["shape"] == list(a.shape)
    assert r["ndim"] == len(a.shape)
    assert r["dtype"] == str(a.dtype)
    assert r["itemsize"] == a.dtype.itemsize
    assert r["size"] == int(np.prod(a.shape, dtype=np.int64))
    assert r["nbytes"] == r["size"] * a.dtype.itemsize
    assert r["strides"] == list(a.strides)
    assert r["c_contiguous"] is bool(a.flags["C_CONTIGUOUS"])
    assert r["f_contiguous"] is bool(a.flags["F_CONTIGUOUS"])
    assert r["aligned"] is bool(a.flags["ALIGNED"])
    assert r["writeable"] is bool(a.flags["WRITEABLE"])
    assert r["owner"] is (a.base is None)
    assert r["alignment"] == expected_alignment(address(a))
    assert r["byteorder"] == ("native" if a.dtype.isnative else "swapped")


# --------------------------------------------------------------------------- API surface


def test_exported_in_all() -> None:
    assert "inspect" in npaccel.__all__
    assert "ArrayReport" in npaccel.__all__
    assert callable(npaccel.inspect)


def test_report_is_read_only_mapping_with_documented_keys() -> None:
    r = npaccel.inspect(np.zeros((2, 3)))
    assert set(r) == KEYS
    assert len(r) == len(KEYS)
    assert isinstance(r["advice"], list)
    with pytest.raises(TypeError):
        r["shape"] = [1]  # type: ignore[index]
    with pytest.raises(KeyError):
        r["no-such-fact"]
    assert repr(r) == "ArrayReport(shape=[2, 3], dtype='float64', advice=0)"


def test_report_is_json_ready() -> None:
    r = npaccel.inspect(np.zeros((4, 4))[::2, ::-1])
    d = dict(r)
    assert json.loads(json.dumps(d)) == d


# --------------------------------------------------------------------------- layouts


def test_c_contiguous() -> None:
    a = np.zeros((3, 4), dtype=np.float32)
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    assert r["strides"] == [16, 4]
    assert r["c_contiguous"] is True
    assert r["f_contiguous"] is False
    assert r["owner"] is True
    assert r["base_type"] is None
    assert r["base_nbytes"] is None
    assert r["span_bytes"] == 48 == r["nbytes"]
    assert r["advice"] == []
    text = str(r)
    assert "C-contiguous" in text
    assert "owns its data" in text
    assert "advice     none" in text


def test_f_contiguous() -> None:
    a = np.zeros((3, 4), dtype=np.float64, order="F")
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    assert r["strides"] == [8, 24]
    assert (r["c_contiguous"], r["f_contiguous"]) == (False, True)
    assert r["span_bytes"] == 96
    assert not has_advice(r, NOT_CONTIGUOUS)
    assert "F-contiguous" in str(r)


def test_transpose_is_f_contiguous_view() -> None:
    a = np.zeros((3, 5), dtype=np.int16)
    t = a.T
    r = npaccel.inspect(t)
    check_basic_facts(t, r)
    assert r["shape"] == [5, 3]
    assert r["strides"] == [2, 10]
    assert (r["c_contiguous"], r["f_contiguous"]) == (False, True)
    assert r["owner"] is False
    assert r["base_type"] == "ndarray"
    assert r["base_nbytes"] == 30
    assert r["span_bytes"] == 30
    assert not has_advice(r, NOT_CONTIGUOUS)


def test_non_contiguous_column_slice() -> None:
    a = np.zeros((4, 6), dtype=np.float64)
    v = a[:, ::2]
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["strides"] == [48, 16]
    assert (r["c_contiguous"], r["f_contiguous"]) == (False, False)
    assert r["nbytes"] == 4 * 3 * 8
    # from element (0, 0) to element (3, 4): 3 rows * 48 + 4 * 8 + one element
    assert r["span_bytes"] == 3 * 48 + 4 * 8 + 8 == expected_span(v)
    assert r["base_nbytes"] == a.nbytes
    assert has_advice(r, NOT_CONTIGUOUS)
    assert "96 B" in advice_with(r, NOT_CONTIGUOUS)[0]  # the copy size is nbytes
    assert "non-contiguous" in str(r)
    assert "view of ndarray of 192 B" in str(r)


def test_negative_stride_1d() -> None:
    a = np.arange(10, dtype=np.int32)
    v = a[::-1]
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["strides"] == [-4]
    assert (r["c_contiguous"], r["f_contiguous"]) == (False, False)
    assert r["span_bytes"] == 40 == expected_span(v)
    assert address(v) == address(a) + 36
    assert has_advice(r, NOT_CONTIGUOUS)


def test_negative_stride_2d() -> None:
    a = np.zeros((3, 8), dtype=np.float32)
    v = a[:, ::-2]
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["strides"] == [32, -8]
    assert r["shape"] == [3, 4]
    assert r["span_bytes"] == 2 * 32 + 3 * 8 + 4 == expected_span(v)
    assert has_advice(r, NOT_CONTIGUOUS)


def test_negative_stride_on_length_one_axis_is_contiguous() -> None:
    v = np.zeros(1)[::-1]
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["c_contiguous"] is True
    assert r["span_bytes"] == 8
    assert not has_advice(r, NOT_CONTIGUOUS)


def test_zero_dimensional() -> None:
    a = np.array(3.5)
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    assert r["shape"] == []
    assert r["ndim"] == 0
    assert r["strides"] == []
    assert r["size"] == 1
    assert r["nbytes"] == 8
    assert r["span_bytes"] == 8
    assert r["advice"] == []
    assert "shape      []  (1 elements)" in str(r)


def test_zero_dimensional_view() -> None:
    a = np.arange(3.0)
    v = a[1, ...]
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["shape"] == []
    assert r["owner"] is False
    assert r["base_nbytes"] == 24
    assert r["span_bytes"] == 8


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 5, 2)])
def test_empty_arrays(shape: tuple[int, ...]) -> None:
    a = np.empty(shape, dtype=np.float64)
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    assert r["size"] == 0
    assert r["nbytes"] == 0
    assert r["span_bytes"] == 0
    assert r["advice"] == []
    assert json.loads(json.dumps(dict(r))) == dict(r)


def test_empty_strided_view() -> None:
    v = np.zeros((4, 6))[:0, ::-2]
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["span_bytes"] == 0
    assert not has_advice(r, NOT_CONTIGUOUS)


@pytest.mark.parametrize("shape", [(1,), (1, 1), (1, 1, 1)])
def test_one_element(shape: tuple[int, ...]) -> None:
    a = np.zeros(shape, dtype=np.complex64)
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    assert r["size"] == 1
    assert r["nbytes"] == 8
    assert r["span_bytes"] == 8
    assert r["c_contiguous"] is True
    assert r["f_contiguous"] is True
    assert r["advice"] == []


def test_one_element_strided_view_gets_no_contiguity_advice() -> None:
    v = np.zeros((5, 5))[2:3, ::10]
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["size"] == 1
    assert not has_advice(r, NOT_CONTIGUOUS)


def test_broadcast_view() -> None:
    src = np.arange(3.0)
    b = np.broadcast_to(src, (4, 3))
    r = npaccel.inspect(b)
    check_basic_facts(b, r)
    assert r["strides"] == [0, 8]
    assert r["size"] == 12
    assert r["nbytes"] == 96  # logical size, not memory used
    assert r["span_bytes"] == 24 == expected_span(b)  # the memory actually touched
    assert r["writeable"] is False
    assert r["owner"] is False
    assert r["base_nbytes"] == src.nbytes
    assert has_advice(r, ZERO_STRIDE)
    assert not has_advice(r, NOT_CONTIGUOUS)  # zero stride takes its place
    assert not has_advice(r, LARGE_STRIDED)
    assert "read-only" in str(r)


def test_broadcast_scalar_to_one_element_has_no_zero_stride_advice() -> None:
    b = np.broadcast_to(np.float64(1.0), (1, 1))
    r = npaccel.inspect(b)
    check_basic_facts(b, r)
    assert r["size"] == 1
    assert not has_advice(r, ZERO_STRIDE)


def test_broadcast_scalar_to_many() -> None:
    b = np.broadcast_to(np.float32(2.0), (5, 7))
    r = npaccel.inspect(b)
    check_basic_facts(b, r)
    assert r["strides"] == [0, 0]
    assert r["span_bytes"] == 4
    assert has_advice(r, ZERO_STRIDE)


def test_zero_stride_on_length_one_axis_is_not_aliasing() -> None:
    b = np.broadcast_to(np.arange(5.0), (1, 5))
    assert b.strides == (0, 8)
    assert b.flags.c_contiguous
    assert len(set(element_addresses(b))) == b.size  # no two elements share memory
    r = npaccel.inspect(b)
    assert not has_advice(r, ZERO_STRIDE)


# --------------------------------------------------------------------------- dtypes

DTYPES = [
    ("bool", 1, "b"),
    ("uint8", 1, "u"),
    ("int16", 2, "i"),
    ("int32", 4, "i"),
    ("int64", 8, "i"),
    ("float16", 2, "f"),
    ("float32", 4, "f"),
    ("float64", 8, "f"),
    ("complex64", 8, "c"),
    ("complex128", 16, "c"),
    ("object", POINTER_SIZE, "O"),
]


@pytest.mark.parametrize(("name", "itemsize", "kind"), DTYPES)
def test_common_dtypes(name: str, itemsize: int, kind: str) -> None:
    a = np.zeros((2, 5), dtype=name)
    assert a.dtype.kind == kind
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    assert r["dtype"] == name
    assert r["itemsize"] == itemsize
    assert r["nbytes"] == 10 * itemsize
    assert r["strides"] == [5 * itemsize, itemsize]
    assert r["span_bytes"] == 10 * itemsize
    assert r["padding_bytes"] == 0
    assert r["byteorder"] == "native"
    assert r["aligned"] is True
    assert has_advice(r, OBJECT) is (name == "object")
    assert len(r["advice"]) == (1 if name == "object" else 0)
    text = str(r)
    assert name in text
    assert f"({itemsize} B/element)" in text
    assert json.loads(json.dumps(dict(r))) == dict(r)


def test_non_native_byte_order() -> None:
    a = np.zeros(4, dtype=NON_NATIVE + "f8")
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    assert r["byteorder"] == "swapped"
    assert r["dtype"] == NON_NATIVE + "f8"
    assert has_advice(r, SWAPPED)


@pytest.mark.parametrize("dt", ["=f8", "|u1", "f4", NON_NATIVE + "u1"])
def test_native_or_byte_order_free_dtypes(dt: str) -> None:
    r = npaccel.inspect(np.zeros(4, dtype=dt))
    assert r["byteorder"] == "native"
    assert not has_advice(r, SWAPPED)


def test_packed_structured_dtype() -> None:
    dt = np.dtype([("a", "u1"), ("b", "f8"), ("c", "i2")])
    a = np.zeros(5, dtype=dt)
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    assert r["itemsize"] == 11
    assert r["padding_bytes"] == 0
    assert r["nbytes"] == 55
    assert not has_advice(r, PADDING)
    assert r["aligned"] is bool(a.flags.aligned)
    assert "padding" not in str(r)


def test_aligned_structured_dtype_reports_padding() -> None:
    dt = np.dtype([("a", "u1"), ("b", "f8"), ("c", "i2")], align=True)
    # u1 at 0, f8 at 8, i2 at 16, total rounded up to 24: 24 - 11 = 13 padding bytes
    assert dt.itemsize == 24
    a = np.zeros(5, dtype=dt)
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    assert r["itemsize"] == 24
    assert r["padding_bytes"] == 13
    (msg,) = advice_with(r, PADDING)
    assert "13 padding byte(s)" in msg
    assert "54%" in msg  # 13 / 24
    assert "13 B padding" in str(r)


def test_single_padding_byte_is_reported() -> None:
    dt = np.dtype([("a", "u1"), ("b", "u2")], align=True)  # u1 at 0, u2 at 2
    assert dt.itemsize == 4
    r = npaccel.inspect(np.zeros(3, dtype=dt))
    assert r["padding_bytes"] == 1
    (msg,) = advice_with(r, PADDING)
    assert "1 padding byte(s)" in msg
    assert "25%" in msg


def test_structured_dtype_with_subarray_and_explicit_gap() -> None:
    dt = np.dtype({"names": ["x", "y"], "formats": [("f4", (3,)), "i8"], "offsets": [0, 16]})
    assert dt.itemsize == 24
    r = npaccel.inspect(np.zeros(2, dtype=dt))
    assert r["padding_bytes"] == 24 - 12 - 8


def test_structured_field_view_is_strided() -> None:
    dt = np.dtype([("x", "f8"), ("y", "f8")])
    a = np.zeros(6, dtype=dt)
    v = a["y"]
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["dtype"] == "float64"
    assert r["strides"] == [16]
    assert r["span_bytes"] == 5 * 16 + 8
    assert has_advice(r, NOT_CONTIGUOUS)
    assert address(v) == address(a) + 8


def test_overlapping_fields_have_no_negative_padding() -> None:
    dt = np.dtype({"names": ["a", "b"], "formats": ["i4", "i4"], "offsets": [0, 0]})
    r = npaccel.inspect(np.zeros(3, dtype=dt))
    assert r["padding_bytes"] >= 0
    assert not has_advice(r, PADDING)


# --------------------------------------------------------------------------- alignment


def misaligned_float64(n: int = 4) -> tuple[np.ndarray, np.ndarray]:
    buf = np.zeros(8 * n + 8, dtype=np.uint8)
    start = (-address(buf)) % 8 + 1  # address congruent to 1 mod 8
    return buf, buf[start : start + 8 * n].view(np.float64)


def test_misaligned_view_of_uint8_buffer() -> None:
    buf, v = misaligned_float64()
    assert address(v) % 8 == 1
    assert v.flags.aligned is False  # what NumPy itself reports
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["aligned"] is False
    assert r["alignment"] == 1
    assert r["base_nbytes"] == buf.nbytes
    assert has_advice(r, MISALIGNED)
    assert not has_advice(r, START_ALIGN)  # misaligned replaces the cache-line remark
    assert "misaligned for dtype" in str(r)


def test_misaligned_frombuffer_offset() -> None:
    raw = bytearray(8 * 4 + 1)
    v = np.frombuffer(raw, dtype=np.float64, offset=1)
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["aligned"] is bool(address(v) % 8 == 0)
    assert r["aligned"] is False  # CPython buffers are at least 8-aligned, +1 is not
    assert has_advice(r, MISALIGNED)


def test_aligned_array_has_no_misaligned_advice() -> None:
    a = np.zeros(4)
    r = npaccel.inspect(a)
    assert r["aligned"] is True
    assert r["alignment"] >= 8
    assert "misaligned" not in str(r)
    assert not has_advice(r, MISALIGNED)


def test_uint8_is_aligned_at_any_offset() -> None:
    v = np.zeros(16, dtype=np.uint8)[1:]
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["aligned"] is True
    assert not has_advice(r, MISALIGNED)


def view_at(alignment_mod_64: int, nbytes: int) -> np.ndarray:
    """A float64 view whose data address is exactly ``alignment_mod_64`` mod 64."""
    buf = np.empty(nbytes + 128, dtype=np.uint8)  # np.empty commits no pages
    start = (-address(buf)) % 64 + alignment_mod_64
    return buf[start : start + nbytes].view(np.float64)


def test_large_array_not_on_cache_line_gets_advice() -> None:
    v = view_at(8, LARGE)
    assert address(v) % 64 == 8
    r = npaccel.inspect(v)
    assert r["aligned"] is True
    assert r["alignment"] == 8
    (msg,) = advice_with(r, START_ALIGN)
    assert "8 B-aligned" in msg
    assert not has_advice(r, MISALIGNED)


def test_large_array_on_cache_line_gets_no_alignment_advice() -> None:
    v = view_at(0, LARGE)
    r = npaccel.inspect(v)
    assert r["alignment"] >= 64
    assert r["alignment"] == expected_alignment(address(v))
    assert not has_advice(r, START_ALIGN)


def test_small_array_not_on_cache_line_gets_no_alignment_advice() -> None:
    v = view_at(8, LARGE - 8)
    r = npaccel.inspect(v)
    assert r["alignment"] == 8
    assert not has_advice(r, START_ALIGN)


# --------------------------------------------------------------------------- ownership


def test_read_only_array() -> None:
    a = np.zeros(3)
    a.flags.writeable = False
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    assert r["writeable"] is False
    assert r["owner"] is True
    assert "read-only" in str(r)
    assert "read-only" not in str(npaccel.inspect(np.zeros(3)))


def test_view_chain_reports_root_base() -> None:
    a = np.zeros(1000)
    v1 = a[100:500]
    v2 = v1[::-3]
    v3 = v2.reshape(-1, 1)
    r = npaccel.inspect(v3)
    check_basic_facts(v3, r)
    assert r["owner"] is False
    assert r["base_type"] == "ndarray"
    assert r["base_nbytes"] == 8000
    assert r["nbytes"] == v3.size * 8
    assert r["span_bytes"] == expected_span(v3)


def test_owner_copy() -> None:
    r = npaccel.inspect(np.zeros(1000)[::2].copy())
    assert r["owner"] is True
    assert r["base_type"] is None
    assert r["base_nbytes"] is None
    assert r["c_contiguous"] is True


def test_frombuffer_bytes() -> None:
    raw = bytes(range(16))
    v = np.frombuffer(raw, dtype=np.float64)
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["writeable"] is False
    assert r["owner"] is False
    assert r["base_type"] == "bytes"
    assert r["base_nbytes"] == 16
    assert r["memmap"] is False
    assert "view of bytes of 16 B" in str(r)


def test_frombuffer_bytearray() -> None:
    raw = bytearray(40)
    v = np.frombuffer(raw, dtype=np.int32)
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["writeable"] is True
    assert r["owner"] is False
    # NumPy wraps writable exporters in a memoryview; the report names what is behind it
    assert r["base_type"] == "bytearray"
    assert r["base_nbytes"] == 40
    assert r["memmap"] is False


def test_sliding_window_view_reports_real_base() -> None:
    a = np.zeros(100)
    w = np.lib.stride_tricks.sliding_window_view(a, 3)
    r = npaccel.inspect(w)
    assert r["base_type"] == "ndarray"
    assert r["base_nbytes"] == a.nbytes


# --------------------------------------------------------------------------- memmaps


def test_np_memmap(tmp_path) -> None:
    path = tmp_path / "data.bin"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(16, 8))
    r = npaccel.inspect(mm)
    check_basic_facts(mm, r)
    assert r["memmap"] is True
    assert r["memmap_file"] == os.path.abspath(path)
    assert r["owner"] is False
    assert r["base_type"] == "mmap"
    assert r["base_nbytes"] == os.path.getsize(path) == 16 * 8 * 4
    assert r["writeable"] is True
    assert has_advice(r, MEMMAP)
    assert f"memory-mapped from {os.path.abspath(path)}" in str(r)
    del mm


def test_np_load_mmap_mode_r(tmp_path) -> None:
    path = tmp_path / "arr.npy"
    np.save(path, np.arange(20, dtype=np.int64).reshape(4, 5))
    mm = np.load(path, mmap_mode="r")
    r = npaccel.inspect(mm)
    check_basic_facts(mm, r)
    assert r["memmap"] is True
    assert r["memmap_file"] == os.path.abspath(path)
    assert r["writeable"] is False
    assert r["shape"] == [4, 5]
    # the mapping starts at the file start and covers the .npy header too
    assert r["base_nbytes"] == os.path.getsize(path)
    assert r["base_nbytes"] > r["nbytes"]
    assert has_advice(r, MEMMAP)
    assert not has_advice(r, SMALL_VIEW)
    text = str(r)
    assert "read-only" in text
    assert "memory-mapped from" in text


def test_view_of_memmap(tmp_path) -> None:
    path = tmp_path / "arr.npy"
    np.save(path, np.zeros((6, 4)))
    mm = np.load(path, mmap_mode="r")
    v = mm[1:5:2, ::-1]
    r = npaccel.inspect(v)
    check_basic_facts(v, r)
    assert r["memmap"] is True
    assert r["memmap_file"] == os.path.abspath(path)
    assert r["owner"] is False
    assert r["span_bytes"] == expected_span(v)
    assert has_advice(r, MEMMAP)
    assert has_advice(r, NOT_CONTIGUOUS)


def test_large_memmap_small_view_gets_no_small_view_advice(tmp_path) -> None:
    path = tmp_path / "big.bin"
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=(LARGE,))  # sparse file
    r = npaccel.inspect(mm[:16])
    assert r["base_nbytes"] == LARGE
    assert r["memmap"] is True
    assert not has_advice(r, SMALL_VIEW)
    del mm


def test_plain_array_is_not_memmap() -> None:
    r = npaccel.inspect(np.zeros(3)[1:])
    assert r["memmap"] is False
    assert r["memmap_file"] is None
    assert not has_advice(r, MEMMAP)
    assert "memory-mapped" not in str(r)


def test_ndarray_view_of_memmap_keeps_filename(tmp_path) -> None:
    path = tmp_path / "arr.npy"
    np.save(path, np.arange(10.0))
    mm = np.load(path, mmap_mode="r")
    r = npaccel.inspect(np.asarray(mm))
    assert r["memmap"] is True
    assert "None" not in str(r)
    assert r["memmap_file"] == os.path.abspath(path)


def test_copy_of_memmap_is_not_memory_mapped(tmp_path) -> None:
    path = tmp_path / "arr.npy"
    np.save(path, np.arange(10.0))
    c = np.load(path, mmap_mode="r").copy()
    assert c.base is None
    r = npaccel.inspect(c)
    assert r["owner"] is True
    assert r["memmap"] is False
    assert not has_advice(r, MEMMAP)


def test_frombuffer_of_file_mmap_is_memory_mapped(tmp_path) -> None:
    path = tmp_path / "raw.bin"
    path.write_bytes(bytes(4096))
    with open(path, "r+b") as fh:
        m = mmap.mmap(fh.fileno(), 0)
    v = np.frombuffer(m, dtype=np.uint8)
    r = npaccel.inspect(v)
    del v
    m.close()
    assert r["memmap"] is True


# --------------------------------------------------------------------------- advice rules


def test_object_dtype_advice_only_for_object() -> None:
    assert has_advice(npaccel.inspect(np.array([1, "a"], dtype=object)), OBJECT)
    assert not has_advice(npaccel.inspect(np.array([1.0, 2.0])), OBJECT)
    assert not has_advice(npaccel.inspect(np.array(["a", "b"])), OBJECT)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: np.zeros((4, 6))[:, ::2], True),
        (lambda: np.zeros((4, 6))[::2], True),  # rows skipped: neither C nor F
        (lambda: np.zeros((4, 6))[:, ::-1], True),
        (lambda: np.zeros(7)[::-1], True),
        (lambda: np.zeros((3, 4, 5)).transpose(1, 0, 2), True),
        (lambda: np.zeros((4, 6)), False),
        (lambda: np.zeros((4, 6), order="F"), False),
        (lambda: np.zeros((4, 6)).T, False),
        (lambda: np.zeros((4, 6))[1:3], False),  # a block of rows stays C-contiguous
        (lambda: np.zeros((4, 6))[:, 2], True),
        (lambda: np.zeros((4, 6))[2, :], False),
        (lambda: np.zeros((4, 6))[::2, ::2][:1, :1], False),  # one element
        (lambda: np.zeros((4, 6))[:, ::2][:0], False),  # empty
    ],
)
def test_not_contiguous_advice(make, expected: bool) -> None:
    a = make()
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    independent = not (a.flags.c_contiguous or a.flags.f_contiguous) and a.size > 1
    assert independent is expected
    assert has_advice(r, NOT_CONTIGUOUS) is expected


def test_large_strided_view_advice() -> None:
    base = np.empty((8193, 2048), dtype=np.float32)  # np.empty commits no pages
    v = base[:, ::4]
    r = npaccel.inspect(v)
    span = 8192 * 2048 * 4 + 511 * 16 + 4
    assert r["span_bytes"] == span >= LARGE
    assert r["nbytes"] == 8193 * 512 * 4 < span / 2
    (msg,) = advice_with(r, LARGE_STRIDED)
    assert "25%" in msg
    assert "64.0 MiB" in msg


def test_large_strided_view_threshold_is_inclusive() -> None:
    buf = np.empty(LARGE, dtype=np.uint8)
    at = buf[:: LARGE - 1]  # first and last byte: span exactly 64 MiB
    assert at.shape == (2,)
    r = npaccel.inspect(at)
    assert r["span_bytes"] == LARGE == expected_span(at)
    assert has_advice(r, LARGE_STRIDED)

    below = buf[: LARGE - 1 : LARGE - 2]  # span 64 MiB - 1
    r = npaccel.inspect(below)
    assert r["span_bytes"] == LARGE - 1 == expected_span(below)
    assert not has_advice(r, LARGE_STRIDED)


def test_large_view_using_half_its_span_gets_no_strided_advice() -> None:
    v = np.empty((8193, 2048), dtype=np.float32)[:, ::2]
    r = npaccel.inspect(v)
    assert r["span_bytes"] >= LARGE
    assert r["nbytes"] >= r["span_bytes"] / 2
    assert not has_advice(r, LARGE_STRIDED)
    assert has_advice(r, NOT_CONTIGUOUS)


def test_large_view_using_exactly_half_its_span_gets_no_strided_advice() -> None:
    # rows of 48 MiB, the first 16 MiB of each of 2 rows: 32 MiB used of a 64 MiB span
    v = np.empty((2, 48 * MIB), dtype=np.uint8)[:, : 16 * MIB]
    r = npaccel.inspect(v)
    # first byte of row 0 to last byte of row 1's first 16 MiB (enumerating is too slow)
    assert r["span_bytes"] == v.strides[0] + 16 * MIB == LARGE
    assert r["nbytes"] == 32 * MIB == r["span_bytes"] / 2
    assert not has_advice(r, LARGE_STRIDED)
    assert has_advice(r, NOT_CONTIGUOUS)


def test_small_strided_view_gets_no_large_strided_advice() -> None:
    v = np.zeros((64, 64), dtype=np.float32)[:, ::8]
    r = npaccel.inspect(v)
    assert r["nbytes"] < r["span_bytes"] / 2
    assert not has_advice(r, LARGE_STRIDED)


def test_large_contiguous_array_gets_no_strided_advice() -> None:
    r = npaccel.inspect(np.empty(LARGE // 4, dtype=np.float32))
    assert r["span_bytes"] == LARGE == r["nbytes"]
    assert not has_advice(r, LARGE_STRIDED)
    assert not has_advice(r, SMALL_VIEW)


def test_small_view_of_large_base_advice() -> None:
    base = np.empty(LARGE // 4, dtype=np.float32)
    r = npaccel.inspect(base[:16])
    assert r["base_nbytes"] == LARGE
    (msg,) = advice_with(r, SMALL_VIEW)
    assert "64.0 MiB" in msg


@pytest.mark.parametrize(
    ("base_items", "view_items", "expected"),
    [
        (LARGE // 4, LARGE // 16, True),  # base is exactly 4x the view: still advised
        (LARGE // 4, LARGE // 16 + 1, False),  # view more than a quarter of the base
        (LARGE // 4 - 1, 16, False),  # base just under 64 MiB
    ],
)
def test_small_view_thresholds(base_items: int, view_items: int, expected: bool) -> None:
    base = np.empty(base_items, dtype=np.float32)
    v = base[:view_items]
    r = npaccel.inspect(v)
    assert r["base_nbytes"] == base.nbytes
    assert r["nbytes"] == view_items * 4
    assert has_advice(r, SMALL_VIEW) is expected


def test_swapped_byte_order_advice_only_when_swapped() -> None:
    assert has_advice(npaccel.inspect(np.zeros(3, NON_NATIVE + "i4")), SWAPPED)
    assert not has_advice(npaccel.inspect(np.zeros(3, "i4")), SWAPPED)


@pytest.mark.parametrize(
    ("dtype", "pipeline", "expected"),
    [
        ("float64", "float32", True),
        ("float64", np.float32, True),
        ("float64", "float16", True),
        ("complex128", "complex64", True),
        ("int64", "int32", True),
        (NON_NATIVE + "f8", "float32", True),
        ("float32", "float32", False),
        ("float32", "float64", False),
        ("float64", "float64", False),
        ("int64", "float32", False),  # different kind
        ("float64", "int32", False),  # different kind
        ("float64", "complex64", False),  # different kind
        ("float64", None, False),
    ],
)
def test_astype_advice(dtype: str, pipeline, expected: bool) -> None:
    a = np.zeros(10, dtype=dtype)
    r = npaccel.inspect(a, pipeline_dtype=pipeline)
    assert has_advice(r, ASTYPE) is expected
    if expected:
        (msg,) = advice_with(r, ASTYPE)
        target = np.dtype(pipeline)
        assert f"np.{target.name}" in msg
        assert f"({a.nbytes} B → {10 * target.itemsize} B)" in msg


def test_astype_advice_does_not_change_facts() -> None:
    a = np.zeros((3, 3))
    with_target = dict(npaccel.inspect(a, pipeline_dtype="float32"))
    without = dict(npaccel.inspect(a))
    assert with_target.pop("advice") != without.pop("advice")
    assert with_target == without


def test_several_advice_together_in_str() -> None:
    a = np.zeros((4, 6), dtype=NON_NATIVE + "f8")[:, ::2]
    r = npaccel.inspect(a, pipeline_dtype="float32")
    assert has_advice(r, NOT_CONTIGUOUS)
    assert has_advice(r, SWAPPED)
    assert has_advice(r, ASTYPE)
    lines = str(r).splitlines()
    advice_lines = lines[-len(r["advice"]) :]
    assert advice_lines[0].startswith("advice     ")
    assert all(line.startswith("           ") for line in advice_lines[1:])
    for line, msg in zip(advice_lines, r["advice"], strict=True):
        assert line.strip().endswith(msg.strip())


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("value", "type_name"),
    [([1, 2], "list"), (3.0, "float"), (np.float64(1.0), "float64"), (None, "NoneType")],
)
def test_non_array_raises_type_error(value, type_name: str) -> None:
    with pytest.raises(TypeError, match=rf"`array`.*\b{type_name}\b"):
        npaccel.inspect(value)


@pytest.mark.parametrize("value", ["notadtype", "f4 f4", 3.5])
def test_bad_pipeline_dtype_raises_type_error(value) -> None:
    import re

    with pytest.raises(TypeError, match=rf"`pipeline_dtype`.*{re.escape(repr(value))}"):
        npaccel.inspect(np.zeros(2), pipeline_dtype=value)


def test_invalid_pipeline_dtype_spec_raises_type_error() -> None:
    with pytest.raises(TypeError, match="`pipeline_dtype`"):
        npaccel.inspect(np.zeros(2), pipeline_dtype=[("a", "f4"), ("a", "f4")])


def test_ndarray_subclass_is_accepted() -> None:
    m = np.ma.masked_array(np.arange(4.0), mask=[0, 1, 0, 0])
    r = npaccel.inspect(m)
    assert r["shape"] == [4]
    assert r["dtype"] == "float64"


# --------------------------------------------------------------------------- property tests

HYP_DTYPES = [
    "bool",
    "uint8",
    "int16",
    "int32",
    "int64",
    "float16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "object",
    NON_NATIVE + "f8",
    "V3",
]


@st.composite
def strided_arrays(draw) -> np.ndarray:
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim)))
    dtype = np.dtype(draw(st.sampled_from(HYP_DTYPES)))
    order = draw(st.sampled_from("CF"))
    base = np.zeros(shape, dtype=dtype, order=order)
    index = []
    for _ in range(ndim):
        start = draw(st.none() | st.integers(-5, 5))
        stop = draw(st.none() | st.integers(-5, 5))
        step = draw(st.sampled_from([None, 1, 2, 3, -1, -2, -3]))
        index.append(slice(start, stop, step))
    view = base[(*index, Ellipsis)]  # the Ellipsis keeps a 0-d result an ndarray
    if ndim and draw(st.booleans()):
        view = view.transpose(draw(st.permutations(range(ndim))))
    return view


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(strided_arrays())
def test_property_facts_match_numpy(a: np.ndarray) -> None:
    r = npaccel.inspect(a)
    check_basic_facts(a, r)
    assert r["span_bytes"] == expected_span(a)
    if a.size and (a.flags.c_contiguous or a.flags.f_contiguous):
        assert r["span_bytes"] == r["nbytes"]
    assert r["span_bytes"] >= r["nbytes"]  # slicing never makes zero strides
    assert has_advice(r, NOT_CONTIGUOUS) is (
        not (a.flags.c_contiguous or a.flags.f_contiguous) and a.size > 1
    )
    assert has_advice(r, OBJECT) is (a.dtype == object)
    assert has_advice(r, SWAPPED) is (not a.dtype.isnative)
    assert r["memmap"] is False
    d = dict(r)
    assert json.loads(json.dumps(d)) == d
    text = str(r)
    assert text
    assert str(a.dtype) in text
