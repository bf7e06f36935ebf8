"""npaccel.data._npy: open_npy against np.load on every header version, layout and dtype,
and every way a file can be unusable, provoked with real files."""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from npaccel.data._npy import NpyError, npy_header, open_npy

RNG = np.random.default_rng(7)
DTYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
          "float16", "float32", "float64", "complex64", "complex128", ">f8", ">i4", "S3",
          "U2", "datetime64[s]", "timedelta64[ms]"]  # fmt: skip


def sample(shape, dtype) -> np.ndarray:
    dtype = np.dtype(dtype)
    raw = RNG.integers(0, 256, int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8)
    if dtype.kind == "U":  # random bytes are not valid code points
        return RNG.choice(np.array(["ab", "π", "", "z"], dtype=dtype), shape)
    return raw.view(dtype).reshape(shape)


def write(path: Path, array: np.ndarray, version=None) -> Path:
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, array, version=version, allow_pickle=False)
    return path


def same(loaded: np.ndarray, expected: np.ndarray) -> None:
    """Bit for bit: dtype, shape and bytes (NaN payloads and -0.0 included)."""
    assert loaded.dtype == expected.dtype
    assert loaded.shape == expected.shape
    assert np.ascontiguousarray(loaded).tobytes() == np.ascontiguousarray(expected).tobytes()


# ----------------------------------------------------------------------- valid files


@pytest.mark.parametrize("dtype", DTYPES)
def test_open_npy_reads_what_np_save_wrote(tmp_path, dtype):
    array = sample((4, 5), dtype)
    np.save(tmp_path / "a.npy", array)
    mapped = open_npy(tmp_path / "a.npy")
    assert isinstance(mapped, np.memmap)
    same(mapped, np.load(tmp_path / "a.npy"))
    same(mapped, array)


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
def test_header_versions_1_and_2(tmp_path, version):
    array = sample((3, 2), "float32")
    path = write(tmp_path / "a.npy", array, version)
    assert path.read_bytes()[6:8] == bytes(version)
    shape, dtype, fortran, offset = npy_header(path)
    assert (shape, dtype, fortran) == ((3, 2), np.float32, False)
    assert offset % 64 == 0
    assert path.stat().st_size == offset + array.nbytes
    same(open_npy(path), array)


def test_header_version_3_keeps_utf8_field_names(tmp_path):
    array = np.zeros(3, dtype=[("π", "<f4"), ("b", "<i2")])
    array["π"] = [1.5, 2.5, -3]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "can only be read by NumPy >= 1.17"
        np.save(tmp_path / "a.npy", array)
    assert (tmp_path / "a.npy").read_bytes()[6:8] == b"\x03\x00"
    mapped = open_npy(tmp_path / "a.npy")
    assert mapped.dtype.names == ("π", "b")
    same(mapped, np.load(tmp_path / "a.npy"))


def test_unsupported_version_is_refused(tmp_path):
    data = bytearray(write(tmp_path / "a.npy", np.arange(3.0)).read_bytes())
    data[6] = 9
    (tmp_path / "a.npy").write_bytes(bytes(data))
    with pytest.raises(NpyError, match=r"a\.npy': \.npy format version \(9, 0\) is not one "
                                       r"NumPy reads \(\(1, 0\), \(2, 0\), \(3, 0\)\)"):
        open_npy(tmp_path / "a.npy")


def test_fortran_order(tmp_path):
    array = np.asfortranarray(sample((3, 4, 5), "int16"))
    np.save(tmp_path / "f.npy", array)
    assert npy_header(tmp_path / "f.npy")[2] is True
    mapped = open_npy(tmp_path / "f.npy")
    assert mapped.flags.f_contiguous
    assert not mapped.flags.c_contiguous
    np.testing.assert_array_equal(mapped, array)


@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 0, 2), ()])
def test_empty_and_zero_d(tmp_path, shape):
    array = sample(shape, "float64")
    np.save(tmp_path / "e.npy", array)
    mapped = open_npy(tmp_path / "e.npy")
    assert mapped.shape == shape
    same(mapped, array)


def test_mode_r_plus_writes_through_and_r_is_read_only(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="read-only"):
        open_npy(tmp_path / "a.npy")[0] = 1
    mapped = open_npy(tmp_path / "a.npy", "r+")
    mapped[2] = 7
    mapped.flush()
    del mapped
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), [0, 0, 7, 0])


@pytest.mark.parametrize("mode", ["w", "w+", "c", "rb", None])
def test_mode_is_validated(tmp_path, mode):
    expected = rf"`mode` must be 'r' or 'r\+'; got {re.escape(repr(mode))}"
    with pytest.raises(ValueError, match=expected):
        open_npy(tmp_path / "a.npy", mode)


# ------------------------------------------------------------------------- bad files


def test_truncated_by_one_byte(tmp_path):
    data = write(tmp_path / "t.npy", sample((10, 3), "float32")).read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-1])
    expected = len(data)
    with pytest.raises(NpyError, match=rf"t\.npy' is truncated: the header says shape "
                                       rf"\(10, 3\) float32 \({expected} bytes with the header\), "
                                       rf"the file has {expected - 1} bytes"):
        open_npy(tmp_path / "t.npy")


def test_truncated_inside_the_header(tmp_path):
    data = write(tmp_path / "t.npy", sample((2,), "float32")).read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:20])
    with pytest.raises(NpyError, match=r"t\.npy': the \.npy header is damaged"):
        open_npy(tmp_path / "t.npy")


def test_garbage(tmp_path):
    (tmp_path / "g.npy").write_bytes(RNG.integers(0, 256, 300, dtype=np.uint8).tobytes())
    with pytest.raises(NpyError, match=r"g\.npy' is not a \.npy file \(its first bytes are "
                                       r"not the \.npy magic string\)"):
        open_npy(tmp_path / "g.npy")


def test_damaged_header(tmp_path):
    data = write(tmp_path / "h.npy", np.arange(3)).read_bytes()
    (tmp_path / "h.npy").write_bytes(data[:10] + b"{'descr': nonsense" + data[28:])
    with pytest.raises(NpyError, match=r"h\.npy': the \.npy header is damaged"):
        open_npy(tmp_path / "h.npy")


def test_negative_shape_is_damage(tmp_path):
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (-2, 3)})  # fmt: skip
    (tmp_path / "n.npy").write_bytes(header.getvalue() + bytes(64))
    with pytest.raises(NpyError, match=r"n\.npy': the \.npy header is damaged \(negative "
                                       r"shape \(-2, 3\)\)"):
        open_npy(tmp_path / "n.npy")


def test_empty_file(tmp_path):
    (tmp_path / "z.npy").write_bytes(b"")
    with pytest.raises(NpyError, match=r"z\.npy' is empty \(0 bytes\), not a \.npy file"):
        open_npy(tmp_path / "z.npy")


def test_directory(tmp_path):
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(NpyError, match=r"d\.npy' is a directory, not a \.npy file"):
        open_npy(tmp_path / "d.npy")


def test_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"m\.npy': no such file"):
        open_npy(tmp_path / "m.npy")


def test_object_dtype(tmp_path):
    np.save(tmp_path / "o.npy", np.array([1, "a", None], dtype=object), allow_pickle=True)
    with pytest.raises(NpyError, match=r"o\.npy' holds Python objects \(dtype object\), which "
                                       r"cannot be memory-mapped"):
        open_npy(tmp_path / "o.npy")


def test_npy_error_is_a_value_error():
    assert issubclass(NpyError, ValueError)


def test_permission_denied(shared_dir, as_nobody):
    path = write(shared_dir / "secret.npy", np.arange(4))
    path.chmod(0)
    if os.geteuid() == 0:
        result = as_nobody(lambda: open_npy(path))
    else:
        with pytest.raises(PermissionError) as caught:
            open_npy(path)
        result = f"{type(caught.value).__name__}: {caught.value}"
    assert result == f"PermissionError: {str(path)!r} cannot be read: permission denied"
