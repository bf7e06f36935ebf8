"""Opening .npy files as memory maps, with errors that say what is wrong with the file.

``np.load(path, mmap_mode="r")`` on a damaged file fails deep inside NumPy (or, for a file
cut short, maps it and fails later, at a read); :func:`open_npy` checks the header and the
size first and names the file, the problem and the fix.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

__all__ = ["NpyError", "npy_header", "open_npy"]

_VERSIONS = ((1, 0), (2, 0), (3, 0))  # the .npy format versions NumPy reads


class NpyError(ValueError):
    """A file that is not a usable .npy array (the message names the file and why)."""


def npy_header(path: str | os.PathLike) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """``(shape, dtype, fortran_order, data_offset)`` of a .npy file, checked: the magic
    string, the header, a dtype without Python objects, and a file size that holds the
    whole array."""
    path = Path(path)
    name = str(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise FileNotFoundError(f"{name!r}: no such file") from None
    except IsADirectoryError:
        raise NpyError(f"{name!r} is a directory, not a .npy file") from None
    except PermissionError:
        raise PermissionError(f"{name!r} cannot be read: permission denied") from None
    with fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise NpyError(f"{name!r} is empty (0 bytes), not a .npy file")
        try:
            version = npy_format.read_magic(fh)
        except ValueError:
            raise NpyError(f"{name!r} is not a .npy file (its first bytes are not the .npy "
                           "magic string); save arrays with np.save or npaccel.data.save") from None
        if version not in _VERSIONS:
            raise NpyError(f"{name!r}: .npy format version {version} is not one NumPy reads "
                           f"({', '.join(map(str, _VERSIONS))}); the file is damaged or from "
                           "a newer NumPy")
        try:
            shape, fortran, dtype = _read_header(fh, version)
        except (ValueError, SyntaxError, EOFError) as exc:
            raise NpyError(f"{name!r}: the .npy header is damaged ({exc})") from None
        offset = fh.tell()
    if any(n < 0 for n in shape):
        raise NpyError(f"{name!r}: the .npy header is damaged (negative shape {shape})")
    if dtype.hasobject:
        raise NpyError(f"{name!r} holds Python objects (dtype {dtype}), which cannot be "
                       "memory-mapped; store a numeric dtype")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size < expected:
        raise NpyError(f"{name!r} is truncated: the header says shape {shape} {dtype} "
                       f"({expected} bytes with the header), the file has {size} bytes")
    return tuple(shape), dtype, bool(fortran), offset


def _read_header(fh: BinaryIO, version: tuple[int, int]) -> tuple[tuple, bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of the header at ``fh``'s position.

    Version 3.0 is 2.0 with a UTF-8 header (field names outside Latin-1), for which NumPy
    has no public reader: its non-ASCII characters, which occur only inside string
    literals, are escaped and the header read as 2.0.
    """
    if version == (1, 0):
        return npy_format.read_array_header_1_0(fh)
    if version == (2, 0):
        return npy_format.read_array_header_2_0(fh)
    (length,) = struct.unpack("<I", _read_exact(fh, 4, "header length"))
    text = _read_exact(fh, length, "header").decode("utf-8")
    escaped = text.encode("ascii", "backslashreplace")
    return npy_format.read_array_header_2_0(io.BytesIO(struct.pack("<I", len(escaped)) + escaped))


def _read_exact(fh: BinaryIO, size: int, what: str) -> bytes:
    data = fh.read(size)
    if len(data) != size:
        raise EOFError(f"EOF reading the {what}: expected {size} bytes, got {len(data)}")
    return data


def open_npy(path: str | os.PathLike, mode: str = "r") -> np.memmap:
    """A .npy file as a memory map (``mode`` 'r' or 'r+'), checked by :func:`npy_header`."""
    if mode not in ("r", "r+"):
        raise ValueError(f"`mode` must be 'r' or 'r+'; got {mode!r}")
    shape, dtype, fortran, offset = npy_header(path)
    if int(np.prod(shape, dtype=np.int64)) == 0:  # np.memmap cannot map zero bytes
        return np.lib.format.open_memmap(path, mode=mode)
    return np.memmap(path, dtype=dtype, mode=mode, offset=offset, shape=shape,
                     order="F" if fortran else "C")  # fmt: skip
