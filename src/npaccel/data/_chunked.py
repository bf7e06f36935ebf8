"""Arrays larger than memory, processed in chunks that fit a byte budget.

:func:`map_blocks` and :func:`map_overlap` stream an array — a .npy file, an np.memmap or
an ndarray — through a function, chunk by chunk along one axis, into an output array;
:func:`reduce` computes a sum, mean, minimum, maximum or histogram in one pass.

Input/output. A reader thread fills the block of chunk k + 1 while the function runs on
chunk k, and a writer thread writes chunk k - 1. Arrays that are one contiguous range of a
file (a .npy path, a contiguous np.memmap in C or Fortran order) are read with os.preadv
into two preallocated buffers and written with os.pwrite, so no page of the files is ever
mapped into this process and the files never count in its resident memory. Other arrays (a
strided memmap view, an ndarray) are copied by slicing; the pages of a shared memmap are
handed back to the kernel (msync, then madvise(MADV_DONTNEED)) after each chunk.

Halos. For :func:`map_overlap`, each chunk's block has `depth` extra elements on each side
of every axis; where they fall outside the array they are filled by `mode` exactly as
scipy.ndimage extends its input, so a stencil that makes one pass per axis gives, after
the halo is cropped, the in-memory result bit for bit.

The memory model, the checkpoint format and the filters routing are in docs/data-chunked.md.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import mmap
import numbers
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.lib import format as npy_format

from npaccel.data._npy import NpyError, npy_header, open_npy

__all__ = [
    "CHECKPOINT_SUFFIX",
    "DEFAULT_MAX_MEMORY",
    "FILTERS_MAX_MEMORY",
    "PARTIAL_SUFFIX",
    "map_blocks",
    "map_overlap",
    "reduce",
]

DEFAULT_MAX_MEMORY = 256 * 2**20
FILTERS_MAX_MEMORY = DEFAULT_MAX_MEMORY  # budget of npaccel.filters calls routed here
CHECKPOINT_SUFFIX = ".npaccel-chunks.json"
PARTIAL_SUFFIX = ".partial"
CHECKPOINT_INTERVAL_S = 2.0  # at most one checkpoint save (and output fsync) per interval
PAD_MODES = ("reflect", "mirror", "nearest", "constant", "wrap")
REDUCE_OPS = ("sum", "mean", "min", "max", "histogram")

_MODE_ALIASES = {"grid-mirror": "reflect", "grid-wrap": "wrap", "grid-constant": "constant"}
_ASSUMED_ITEMSIZE = 8  # output bytes per element the budget assumes until func's dtype is known
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip
_CHECKPOINT_VERSION = 1
_FAULT_AROUND = 2 * 2**20  # a fault maps up to a whole (PMD-sized) page-cache folio


class _BudgetError(ValueError):
    """`max_memory` too small for one chunk (the filters routing falls back on it)."""


# --- arguments ------------------------------------------------------------------------------


def _parse_bytes(value: Any, name: str = "max_memory") -> int:
    """A byte count from an int or a string such as '64MB', '1.5 GiB'."""
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*", value)
        unit = match.group(2).lower() if match else ""
        if not match or (unit and unit not in _UNITS):
            raise ValueError(f"`{name}` must be a byte count (int) or a string like '512MB' or "
                             f"'2GiB' (units {sorted(_UNITS)}); got {value!r}")  # fmt: skip
        number = float(match.group(1)) * _UNITS.get(unit, 1)
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
    else:
        raise TypeError(f"`{name}` must be an int or a string like '512MB'; got {value!r}")
    if not math.isfinite(number) or number < 1:
        raise ValueError(f"`{name}` must be at least 1 byte; got {value!r}")
    return int(number)


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {value!r}")
    return int(value)


def _check_axis(axis: Any, ndim: int, name: str = "axis") -> int:
    ax = _as_int(axis, name)
    if not -ndim <= ax < ndim:
        raise ValueError(f"`{name}` must be in [{-ndim}, {ndim - 1}] for a {ndim}-D `src`; "
                         f"got {axis!r}")  # fmt: skip
    return ax % ndim


def _check_mode(mode: Any) -> str | None:
    if mode is None:
        return None
    if not isinstance(mode, str) or mode not in PAD_MODES + tuple(_MODE_ALIASES):
        raise ValueError(f"`mode` must be one of {set(PAD_MODES + tuple(_MODE_ALIASES))} or None; "
                         f"got {mode!r}")  # fmt: skip
    return _MODE_ALIASES.get(mode, mode)


def _normalize_depth(depth: Any, ndim: int) -> tuple[int, ...]:
    """Halo per axis from an int (every axis), a sequence (one per axis) or {axis: depth}."""
    rule = (f"`depth` must be an int >= 0, a sequence of {ndim} such ints (one per axis) or a "
            f"dict {{axis: depth}}")  # fmt: skip
    if isinstance(depth, Mapping):
        values = [0] * ndim
        for key, value in depth.items():
            values[_check_axis(key, ndim, "depth")] = value
    elif isinstance(depth, Sequence | np.ndarray) and not isinstance(depth, str):
        values = list(depth)
        if len(values) != ndim:
            raise ValueError(f"{rule}; got {depth!r} ({len(values)} entries)")
    else:
        values = [depth] * ndim
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"{rule}; got {depth!r}")
        out.append(int(value))
    return tuple(out)


def _check_temp_factor(value: Any) -> float:
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"`temp_factor` must be a real number; got {value!r}") from None
    if not math.isfinite(factor) or factor < 0:
        raise ValueError(f"`temp_factor` must be finite and >= 0; got {value!r}")
    return factor


def _func_name(func: Callable) -> str:
    """How a checkpoint recognises `func` again: its module and qualified name."""
    if isinstance(func, functools.partial):
        return f"functools.partial({_func_name(func.func)})"
    name = getattr(func, "__qualname__", None) or type(func).__qualname__
    module = getattr(func, "__module__", None) or type(func).__module__
    return f"{module}.{name}"


def _prod(values: Sequence[int]) -> int:
    return math.prod(int(v) for v in values)


# --- reading and writing rows ---------------------------------------------------------------


def _preadinto(fd: int, buffer: memoryview, offset: int) -> int:
    if hasattr(os, "preadv"):
        return os.preadv(fd, [buffer], offset)
    data = os.pread(fd, len(buffer), offset)  # pragma: no cover - platforms without preadv
    buffer[: len(data)] = data  # pragma: no cover
    return len(data)  # pragma: no cover


def _pread_exact(fd: int, view: np.ndarray, offset: int, name: str) -> None:
    buffer = memoryview(view)
    done = 0
    while done < len(buffer):
        got = _preadinto(fd, buffer[done:], offset + done)
        if got == 0:
            raise NpyError(f"{name!r} ends at byte {offset + done}, inside its array: the file "
                           "was truncated while being read")  # fmt: skip
        done += got


def _pwrite_exact(fd: int, view: np.ndarray, offset: int, name: str) -> None:
    buffer = memoryview(view)
    done = 0
    while done < len(buffer):
        wrote = os.pwrite(fd, buffer[done:], offset + done)
        if wrote == 0:
            raise OSError(f"{name!r}: writing at byte {offset + done} made no progress")
        done += wrote


def _byte_bounds(array: np.ndarray) -> tuple[int, int]:
    try:
        from numpy.lib.array_utils import byte_bounds
    except ImportError:  # pragma: no cover - NumPy < 2
        byte_bounds = np.byte_bounds  # noqa: NPY201
    return byte_bounds(array)


def _mapping(array: np.ndarray) -> tuple[mmap.mmap, np.memmap] | None:
    """The shared mmap behind `array` and the np.memmap that owns it; None for arrays not
    backed by a shared file mapping (copy-on-write 'c' maps hold private pages: never
    dropped)."""
    obj: Any = array
    while isinstance(obj, np.ndarray):
        if isinstance(obj.base, mmap.mmap):
            shared = isinstance(obj, np.memmap) and obj.mode in ("r", "r+", "w+")
            return (obj.base, obj) if shared else None
        obj = obj.base
    return None


def _release(view: np.ndarray, *, dirty: bool) -> None:
    """Hand the pages of a shared memmap behind `view` back to the kernel, msync'ed first
    when `dirty`, so that the pages a chunk touched stop counting in this process."""
    mapped = _mapping(view)
    if mapped is None or view.size == 0 or not hasattr(mmap, "MADV_DONTNEED"):
        return
    mm = mapped[0]
    base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    lo, hi = _byte_bounds(view)
    # a page fault maps a window around it (fault-around, or a whole large folio of the
    # page cache), pages of the previous chunk included: release that much more each side
    start = max(lo - base - _FAULT_AROUND, 0) // mmap.PAGESIZE * mmap.PAGESIZE
    length = min(hi - base + _FAULT_AROUND, len(mm)) - start
    if dirty:
        mm.flush(start, length)
    mm.madvise(mmap.MADV_DONTNEED, start, length)


def _slice_along(array: np.ndarray, axis: int, start: int, stop: int) -> np.ndarray:
    index = [slice(None)] * array.ndim
    index[axis] = slice(start, stop)
    return array[tuple(index)]


class _FileArray:
    """An array stored contiguously, in C or Fortran order, at byte `offset` of a file; rows
    along an axis are read with os.preadv and written with os.pwrite, in as few contiguous
    pieces as the layout allows (one for the outermost axis)."""

    def __init__(self, path: str | os.PathLike, offset: int, shape: Sequence[int],
                 dtype: np.dtype, order: str, *, writable: bool) -> None:  # fmt: skip
        self.path = os.fspath(path)
        self.offset = int(offset)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.order = order if len(self.shape) > 1 else "C"
        self._fd = os.open(self.path, os.O_RDWR if writable else os.O_RDONLY)
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)

    @property
    def outer_axis(self) -> int:
        return len(self.shape) - 1 if self.order == "F" else 0

    def region(self) -> tuple[Any, int, int]:
        st = os.fstat(self._fd)
        return (st.st_dev, st.st_ino), self.offset, self.offset + _nbytes(self)

    def identity(self) -> dict[str, Any]:
        st = os.fstat(self._fd)
        return {"path": os.path.abspath(self.path), "size": st.st_size,
                "mtime_ns": st.st_mtime_ns}  # fmt: skip

    def mapped_bytes(self, axis: int) -> tuple[int, int]:
        return 0, 0  # read and written with preadv/pwrite: no page of it is mapped

    def _pieces(self, axis: int, start: int, stop: int, array: np.ndarray):
        """(file offset, byte view of `array`) for each contiguous piece of rows
        [start, stop) along `axis`; `array` holds those rows, contiguous in this order."""
        physical = array.T if self.order == "F" else array
        pshape = self.shape[::-1] if self.order == "F" else self.shape
        pax = len(self.shape) - 1 - axis if self.order == "F" else axis
        row = _prod(pshape[pax + 1 :]) * self.dtype.itemsize  # bytes per index along the axis
        outer, n, count = _prod(pshape[:pax]), pshape[pax], stop - start
        flat = physical.reshape(-1).view(np.uint8)
        if outer == 1 or count == n:
            yield self.offset + start * row, flat
            return
        piece = count * row
        for j in range(outer):
            yield self.offset + (j * n + start) * row, flat[j * piece : (j + 1) * piece]

    def _contiguous(self, array: np.ndarray) -> bool:
        return bool(array.flags.f_contiguous if self.order == "F" else array.flags.c_contiguous)

    def read(self, axis: int, start: int, stop: int, out: np.ndarray) -> None:
        target = out if self._contiguous(out) else np.empty(out.shape, self.dtype, self.order)
        for offset, view in self._pieces(axis, start, stop, target):
            _pread_exact(self._fd, view, offset, self.path)
        if target is not out:
            np.copyto(out, target)

    def write(self, axis: int, start: int, block: np.ndarray) -> None:
        block = np.asarray(block, order=self.order)
        for offset, view in self._pieces(axis, start, start + block.shape[axis], block):
            _pwrite_exact(self._fd, view, offset, self.path)

    def sync(self) -> None:
        os.fdatasync(self._fd) if hasattr(os, "fdatasync") else os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _MemArray:
    """An array copied by slicing: an ndarray, or an np.memmap that is not one contiguous
    range of its file (whose pages are then released after each chunk)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape = array.shape
        self.dtype = array.dtype
        fortran = array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous
        self.order = "F" if fortran else "C"

    @property
    def outer_axis(self) -> int:
        return self.array.ndim - 1 if self.order == "F" else 0

    def region(self) -> tuple[Any, int, int] | None:
        mapped = _mapping(self.array)
        if mapped is None or mapped[1].filename is None or self.array.size == 0:
            return None
        root = mapped[1]
        lo, hi = _byte_bounds(self.array)
        st = os.stat(root.filename)
        start = root.offset - root.ctypes.data
        return (st.st_dev, st.st_ino), start + lo, start + hi

    def identity(self) -> dict[str, Any]:
        mapped = _mapping(self.array)
        if mapped is None or mapped[1].filename is None:
            return {"path": None}  # in memory: nothing to recognise it by but shape and dtype
        st = os.stat(mapped[1].filename)
        return {"path": os.path.abspath(mapped[1].filename), "size": st.st_size,
                "mtime_ns": st.st_mtime_ns, "strides": list(self.array.strides)}  # fmt: skip

    def mapped_bytes(self, axis: int) -> tuple[int, int]:
        """(per index along `axis`, fixed): the file pages a shared memmap has resident
        while one chunk of it is copied, before they are released (0 for other arrays)."""
        a = self.array
        mapped = _mapping(a)
        if a.size == 0 or mapped is None:
            return 0, 0
        step = abs(a.strides[axis])
        extent = sum(abs(st) * (n - 1) for j, (st, n) in enumerate(zip(a.strides, a.shape,
                     strict=True)) if j != axis) + a.itemsize  # fmt: skip
        return step, min(max(extent - step, 0) + 2 * _FAULT_AROUND, len(mapped[0]))

    def read(self, axis: int, start: int, stop: int, out: np.ndarray) -> None:
        rows = _slice_along(self.array, axis, start, stop)
        np.copyto(out, rows)
        _release(rows, dirty=False)

    def write(self, axis: int, start: int, block: np.ndarray) -> None:
        rows = _slice_along(self.array, axis, start, start + block.shape[axis])
        rows[...] = block
        _release(rows, dirty=True)

    def sync(self) -> None:
        if isinstance(self.array, np.memmap):
            self.array.flush()

    def close(self) -> None:
        pass


_Endpoint = _FileArray | _MemArray


def _nbytes(endpoint: _Endpoint) -> int:
    return _prod(endpoint.shape) * endpoint.dtype.itemsize


def _endpoint_for_array(array: np.ndarray, *, writable: bool) -> _Endpoint:
    """Direct file I/O for a memmap that is one contiguous range of a file it shares, else
    copies by slicing."""
    mapped = _mapping(array) if isinstance(array, np.memmap) else None
    if mapped is None or array.filename is None or array.size == 0:
        return _MemArray(array)
    if array.flags.c_contiguous:
        order = "C"
    elif array.flags.f_contiguous:
        order = "F"
    else:
        return _MemArray(array)
    root = mapped[1]
    offset = root.offset + (array.ctypes.data - root.ctypes.data)
    return _FileArray(array.filename, offset, array.shape, array.dtype, order, writable=writable)


def _check_dtype(dtype: np.dtype, name: str) -> None:
    if dtype.hasobject:
        raise TypeError(f"`{name}` must hold plain data, not Python objects; got dtype {dtype}")


def _open_source(src: Any) -> _Endpoint:
    if isinstance(src, str | os.PathLike):
        shape, dtype, fortran, offset = npy_header(src)
        return _FileArray(src, offset, shape, dtype, "F" if fortran else "C", writable=False)
    if isinstance(src, np.ndarray):
        _check_dtype(src.dtype, "src")
        return _endpoint_for_array(src, writable=False)
    raise TypeError(f"`src` must be a path to a .npy file, an np.memmap or an ndarray; got "
                    f"{type(src).__name__}")  # fmt: skip


def _regions_overlap(a: _Endpoint, b: _Endpoint) -> bool:
    if isinstance(a, _MemArray) and isinstance(b, _MemArray) and np.may_share_memory(
            a.array, b.array):  # fmt: skip
        return True
    ra, rb = a.region(), b.region()
    return ra is not None and rb is not None and ra[0] == rb[0] and ra[1] < rb[2] and rb[1] < ra[2]


# --- the output -----------------------------------------------------------------------------


def _create_npy(path: Path, shape: tuple[int, ...], dtype: np.dtype, order: str) -> int:
    """Write a .npy header for (shape, dtype, order), size the file for its data (sparse);
    return the data offset."""
    header = {"descr": npy_format.dtype_to_descr(dtype), "fortran_order": order == "F",
              "shape": shape}  # fmt: skip
    with open(path, "wb") as fh:
        try:
            npy_format.write_array_header_1_0(fh, header)
        except ValueError:  # a header over 64 KiB (very many dimensions or fields)
            fh.seek(0)
            npy_format.write_array_header_2_0(fh, header)
        offset = fh.tell()
        fh.truncate(offset + _prod(shape) * dtype.itemsize)
    return offset


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class _Output:
    """Where results go: an existing array (np.memmap or ndarray, written in place), or a
    path, written as ``<path>.partial`` (created once the dtype is known) and renamed over
    ``<path>`` when complete."""

    def __init__(self, dst: Any, shape: tuple[int, ...], order: str, dtype: Any) -> None:
        self.shape, self.order = shape, order
        self.dtype = None if dtype is None else np.dtype(dtype)
        if self.dtype is not None:
            _check_dtype(self.dtype, "dtype")
        self.endpoint: _Endpoint | None = None
        self.array: np.ndarray | None = None
        self.path: Path | None = None
        if isinstance(dst, str | os.PathLike):
            self.path = Path(dst)
            if self.path.is_dir():
                raise ValueError(f"`dst` {str(dst)!r} is a directory; give a .npy file path")
            if not self.path.parent.is_dir():
                raise FileNotFoundError(f"`dst` {str(dst)!r}: directory "
                                        f"{str(self.path.parent)!r} does not exist")  # fmt: skip
            self.partial = Path(str(self.path) + PARTIAL_SUFFIX)
        elif isinstance(dst, np.ndarray):
            self._use_array(dst)
        else:
            raise TypeError(f"`dst` must be a path for a new .npy file, an np.memmap or an "
                            f"ndarray; got {type(dst).__name__}")  # fmt: skip

    def _use_array(self, dst: np.ndarray) -> None:
        if dst.shape != self.shape:
            raise ValueError(f"`dst` must have the shape of `src` {self.shape}; got {dst.shape}")
        if not dst.flags.writeable:
            raise ValueError("`dst` must be writeable; got a read-only array (open a memmap "
                             "with mode 'r+' or 'w+')")  # fmt: skip
        if self.dtype is not None and dst.dtype != self.dtype:
            raise ValueError(f"`dtype`={self.dtype} differs from the dtype of `dst` "
                             f"({dst.dtype}); leave dtype=None or pass a matching dst")  # fmt: skip
        _check_dtype(dst.dtype, "dst")
        self.array, self.dtype = dst, dst.dtype
        self.endpoint = _endpoint_for_array(dst, writable=True)

    @property
    def checkpoint_path(self) -> Path | None:
        if self.path is not None:
            return Path(str(self.path) + CHECKPOINT_SUFFIX)
        if isinstance(self.array, np.memmap) and self.array.filename is not None:
            return Path(os.fspath(self.array.filename) + CHECKPOINT_SUFFIX)
        return None

    def create(self, dtype: np.dtype) -> None:
        """Create ``<path>.partial`` for `dtype` (paths only; arrays exist already)."""
        if self.endpoint is not None:
            return
        assert self.path is not None
        offset = _create_npy(self.partial, self.shape, np.dtype(dtype), self.order)
        self.dtype = np.dtype(dtype)
        self.endpoint = _FileArray(self.partial, offset, self.shape, self.dtype, self.order,
                                   writable=True)  # fmt: skip

    def reopen(self, dtype: np.dtype) -> None:
        """Continue writing the ``<path>.partial`` of an interrupted run."""
        if self.path is None:
            if self.dtype != dtype:
                raise ValueError(f"cannot resume: the checkpoint was written for output dtype "
                                 f"{dtype}, `dst` has dtype {self.dtype}")  # fmt: skip
            return
        if not self.partial.exists():
            raise ValueError(f"cannot resume: the checkpoint lists finished chunks but the "
                             f"partial output {str(self.partial)!r} is missing; if "
                             f"{str(self.path)!r} is complete, delete the checkpoint, else "
                             "rerun with resume=False")  # fmt: skip
        shape, found, fortran, offset = npy_header(self.partial)
        order = "F" if fortran and len(shape) > 1 else "C"
        if shape != self.shape or found != dtype or order != self.order:
            raise ValueError(f"cannot resume: {str(self.partial)!r} holds {shape} {found} "
                             f"({order} order), the run writes {self.shape} {dtype}")  # fmt: skip
        self.dtype = np.dtype(dtype)
        self.endpoint = _FileArray(self.partial, offset, shape, found, order, writable=True)

    def sync(self) -> None:
        if self.endpoint is not None:
            self.endpoint.sync()

    def finish(self) -> np.ndarray:
        """Make the output durable and, for a path, publish it; the result array."""
        if self.endpoint is None:  # nothing to write (an empty src): create it now
            self.create(self.dtype)
        self.sync()
        self.close()
        if self.path is None:
            return self.array
        os.replace(self.partial, self.path)
        _fsync_dir(self.path.parent)
        return open_npy(self.path, "r")

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()


# --- halos ----------------------------------------------------------------------------------


def _source_index(positions: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Index in [0, n) that each position reads under `mode`, as scipy.ndimage extends an
    axis of length `n` (not used for 'constant')."""
    if mode == "nearest":
        return np.clip(positions, 0, n - 1)
    if mode == "wrap":
        return positions % n
    if mode == "reflect":  # d c b a | a b c d | d c b a
        j = positions % (2 * n)
        return np.where(j < n, j, 2 * n - 1 - j)
    if n == 1:  # mirror of one element
        return np.zeros_like(positions)
    j = positions % (2 * n - 2)  # mirror: d c b | a b c d | c b a
    return np.where(j < n, j, 2 * n - 2 - j)


def _runs(indices: np.ndarray) -> Iterator[tuple[int, int, int]]:
    """(first, stop, position) of each run of consecutive increasing values in `indices`."""
    start = 0
    for i in range(1, len(indices) + 1):
        if i == len(indices) or indices[i] != indices[i - 1] + 1:
            yield int(indices[start]), int(indices[i - 1]) + 1, start
            start = i


@dataclass(frozen=True)
class _Halo:
    """What the block of chunk [a, b) along `axis` holds: rows a - depth[axis] to
    b + depth[axis] and depth[j] more on each side of every other axis j; positions outside
    the array are filled by `mode`, or, with mode None, left out (the block stops at the
    array's edges and other axes get no halo)."""

    shape: tuple[int, ...]
    axis: int
    depth: tuple[int, ...]
    mode: str | None
    cval: float

    @property
    def reach(self) -> int:
        return self.depth[self.axis]

    def side(self, j: int) -> int:
        return self.depth[j] if self.mode is not None and j != self.axis else 0

    def rows(self, a: int, b: int) -> tuple[int, int]:
        """Global rows of the block's first and last + 1 position along the axis."""
        if self.mode is None:
            return max(0, a - self.reach), min(self.shape[self.axis], b + self.reach)
        return a - self.reach, b + self.reach

    def block_shape(self, a: int, b: int) -> tuple[int, ...]:
        first, stop = self.rows(a, b)
        return tuple(stop - first if j == self.axis else s + 2 * self.side(j)
                     for j, s in enumerate(self.shape))  # fmt: skip

    def largest_block(self, rows: int) -> int:
        """Elements of the block of a chunk of `rows` (the largest chunk)."""
        along = rows + 2 * self.reach
        if self.mode is None:
            along = min(along, self.shape[self.axis])
        return along * _prod([s + 2 * self.side(j) for j, s in enumerate(self.shape)
                              if j != self.axis])  # fmt: skip

    def crop(self, a: int, b: int) -> tuple[slice, ...]:
        first = self.rows(a, b)[0]
        return tuple(slice(a - first, b - first) if j == self.axis
                     else slice(self.side(j), self.side(j) + s)
                     for j, s in enumerate(self.shape))  # fmt: skip

    def other_axes_padded(self) -> bool:
        return any(self.side(j) for j in range(len(self.shape)))

    def fill(self, block: np.ndarray, a: int, b: int, source: _Endpoint) -> None:
        """Read the block of chunk [a, b) from `source` and fill its halo."""
        n, first = self.shape[self.axis], self.rows(a, b)[0]
        lo, hi = max(0, a - self.reach), min(n, b + self.reach)
        inner = block[tuple(slice(None) if j == self.axis else slice(self.side(j),
                            self.side(j) + s) for j, s in enumerate(self.shape))]  # fmt: skip
        source.read(self.axis, lo, hi, _slice_along(inner, self.axis, lo - first, hi - first))
        if self.mode is None:
            return
        for start, stop in ((0, lo - first), (hi - first, block.shape[self.axis])):
            if stop > start:
                self._fill_rows(inner, start, stop, first, lo, hi, source)
        for j, d in enumerate(self.depth):
            if self.side(j):
                self._fill_side(block, j, d)

    def _fill_value(self, dtype: np.dtype) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):
            return np.asarray(self.cval).astype(dtype)

    def _fill_rows(self, inner, start, stop, first, lo, hi, source) -> None:
        """Halo positions [start, stop) along the chunk axis, outside the array."""
        target = _slice_along(inner, self.axis, start, stop)
        if self.mode == "constant":
            target[...] = self._fill_value(inner.dtype)
            return
        rows = _source_index(np.arange(first + start, first + stop), self.shape[self.axis],
                             self.mode)  # fmt: skip
        if lo <= rows.min() and rows.max() < hi:  # inside the rows just read
            target[...] = np.take(inner, rows - first, axis=self.axis)
            return
        for r0, r1, at in _runs(rows):  # elsewhere in the array (wrap): read them
            source.read(self.axis, r0, r1, _slice_along(target, self.axis, at, at + r1 - r0))

    def _fill_side(self, block: np.ndarray, j: int, d: int) -> None:
        """Halos on both sides of axis j (which the block spans whole)."""
        s = self.shape[j]
        for start, stop in ((0, d), (d + s, s + 2 * d)):
            target = _slice_along(block, j, start, stop)
            if self.mode == "constant":
                target[...] = self._fill_value(block.dtype)
            else:
                index = _source_index(np.arange(start - d, stop - d), s, self.mode) + d
                target[...] = np.take(block, index, axis=j)


# --- the budget -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Budget:
    """Bytes a chunk of ``rows`` needs: ``(rows + 2 * halo) * block_row + rows * out_row +
    fixed`` (see docs/data-chunked.md for the terms)."""

    block_row: int  # per row of the block: 2 read buffers, func's output and temporaries
    out_row: int  # per row of the chunk: the cropped result made contiguous for its write
    halo: int  # halo rows on each side along the chunk axis
    fixed: int
    terms: str

    def need(self, rows: int) -> int:
        return (rows + 2 * self.halo) * self.block_row + rows * self.out_row + self.fixed

    def check(self, rows: int, max_memory: int, what: str) -> None:
        if self.need(rows) > max_memory:
            raise _BudgetError(f"{what} needs {self.need(rows)} bytes ({self.terms}), over "
                               f"`max_memory`={max_memory}")  # fmt: skip

    def chunks(self, n: int, max_memory: int, chunk_size: int | None,
               axis: int) -> list[tuple[int, int]]:  # fmt: skip
        """`chunk_size` rows per chunk if that fits; else as few chunks as fit, of even size."""
        if chunk_size is not None:
            self.check(min(chunk_size, n), max_memory, f"`chunk_size`={chunk_size}")
            return _grid(n, chunk_size, None)
        most = (max_memory - self.fixed - 2 * self.halo * self.block_row) // max(
            self.block_row + self.out_row, 1)  # fmt: skip
        if most < 1:
            raise _BudgetError(
                f"`max_memory`={max_memory} bytes is too small: one row along axis {axis} "
                f"with its halo of {self.halo} rows on each side needs {self.need(1)} bytes "
                f"({self.terms}); pass max_memory >= {self.need(1)}"
            )
        return _grid(n, None, math.ceil(n / most))


def _grid(n: int, chunk_size: int | None, count: int | None) -> list[tuple[int, int]]:
    """Chunks of `chunk_size` rows (the last one shorter), or `count` chunks of sizes that
    differ by at most one."""
    if chunk_size is not None:
        return [(a, min(a + chunk_size, n)) for a in range(0, n, chunk_size)]
    bounds = [k * n // count for k in range(count + 1)]
    return [(bounds[k], bounds[k + 1]) for k in range(count)]


def _transform_budget(halo: _Halo, in_itemsize: int, out_itemsize: int, work_itemsize: int,
                      temp_factor: float, src_mapped: tuple[int, int],
                      dst_mapped: tuple[int, int]) -> _Budget:  # fmt: skip
    others = [s for j, s in enumerate(halo.shape) if j != halo.axis]
    padded = _prod([s + 2 * halo.side(j) for j, s in enumerate(halo.shape) if j != halo.axis])
    staging = _prod(others) * in_itemsize if halo.other_axes_padded() else 0
    block_row = padded * (2 * in_itemsize + out_itemsize) + math.ceil(
        padded * temp_factor * work_itemsize) + staging + src_mapped[0]
    terms = (f"2 read-ahead blocks + func's output and temporaries (temp_factor={temp_factor:g} "
             f"x {work_itemsize} bytes per element) + the result being written")  # fmt: skip
    if src_mapped[0] or dst_mapped[0]:
        terms += " + the memmap pages a chunk's copy touches"
    return _Budget(block_row, _prod(others) * out_itemsize + dst_mapped[0], halo.reach,
                   src_mapped[1] + dst_mapped[1], terms)  # fmt: skip


# --- checkpoints ----------------------------------------------------------------------------


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".npaccel-tmp-", suffix=".part")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


class _Checkpoint:
    """How far a run got, in a JSON file next to its output: the run's parameters, the
    chunk length and the number of leading chunks written — durable, since the output is
    fsynced before each save."""

    def __init__(self, path: Path, params: dict[str, Any]) -> None:
        self.path, self.params = path, params
        self.chunk_size: int | None = None  # as the caller gave it (None: sized by the budget)
        self.count: int | None = None
        self.dtype: str | None = None
        self.done = 0
        self._saved_at = time.monotonic()

    def load(self) -> bool:
        """Read a checkpoint left by an earlier run with these parameters (False if none)."""
        try:
            state = json.loads(self.path.read_text())
            params, done = state["params"], int(state["done"])
            chunk_size = None if state["chunk_size"] is None else int(state["chunk_size"])
            count, dtype = int(state["chunks"]), str(state["dtype"])
        except FileNotFoundError:
            return False
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"cannot resume: the checkpoint {str(self.path)!r} is damaged "
                             f"({exc}); delete it or rerun with resume=False") from None
        differ = [f"{key}: {params.get(key)!r} then, {value!r} now"
                  for key, value in self.params.items() if params.get(key) != value]  # fmt: skip
        if differ:
            raise ValueError(f"cannot resume: the checkpoint {str(self.path)!r} is from a run "
                             f"with other parameters ({'; '.join(differ)}); rerun with the "
                             "original ones, or with resume=False to start over")  # fmt: skip
        self.done, self.chunk_size, self.count, self.dtype = done, chunk_size, count, dtype
        return True

    def save(self, done: int, output: _Output, *, force: bool = False) -> None:
        self.done = done
        if not force and time.monotonic() - self._saved_at < CHECKPOINT_INTERVAL_S:
            return
        output.sync()  # the chunks this save calls done are on disk first
        _write_json_atomic(self.path, {"version": _CHECKPOINT_VERSION, "params": self.params,
                                       "chunk_size": self.chunk_size, "chunks": self.count,
                                       "dtype": self.dtype, "done": done})  # fmt: skip
        self._saved_at = time.monotonic()

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# --- the pipeline ---------------------------------------------------------------------------


def _pipeline(count: int, load: Callable[[int], Any], compute: Callable[[int, Any], Any],
              store: Callable[[int, Any], None] | None,
              stored: Callable[[int], None]) -> None:  # fmt: skip
    """load(k + 1) on a reader thread and store(k - 1) on a writer thread while compute(k)
    runs here; stored(k) once chunk k is stored (also for the last store to finish when
    something fails). load(k) may reuse load(k - 2)'s memory."""
    if count == 0:
        return
    with ThreadPoolExecutor(1, "npaccel-read") as reader, \
         ThreadPoolExecutor(1, "npaccel-write") as writer:  # fmt: skip
        reading, writing = reader.submit(load, 0), None
        try:
            for k in range(count):
                block = reading.result()
                if k + 1 < count:
                    reading = reader.submit(load, k + 1)
                result = compute(k, block)
                del block
                if store is None:
                    stored(k)
                    continue
                if writing is not None:
                    writing[1].result()
                    stored(writing[0])
                writing = (k, writer.submit(store, k, result))
                del result
            if writing is not None:
                writing[1].result()
                stored(writing[0])
                writing = None
        except BaseException:
            if writing is not None and writing[1].exception() is None:
                stored(writing[0])  # written: not to be redone on resume
            raise


@contextlib.contextmanager
def _progress(enabled: bool, label: str, total: int, done: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr (bytes of src); yields advance(n_bytes)."""
    if not enabled:
        yield lambda n: None
        return
    from rich import progress as rp
    from rich.console import Console

    columns = (rp.TextColumn("{task.description}"), rp.BarColumn(), rp.DownloadColumn(),
               rp.TransferSpeedColumn(), rp.TimeRemainingColumn())  # fmt: skip
    with rp.Progress(*columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=total, completed=done)
        yield lambda n: bar.advance(task, n)


def _buffers(nbytes: int) -> Callable[[int], np.ndarray]:
    """slot -> one of two byte buffers of `nbytes`, allocated on first use."""
    made: dict[int, np.ndarray] = {}

    def get(slot: int) -> np.ndarray:
        if slot not in made:
            made[slot] = np.empty(nbytes, dtype=np.uint8)
        return made[slot]

    return get


def _view(buffer: np.ndarray, shape: tuple[int, ...], dtype: np.dtype, order: str) -> np.ndarray:
    size = _prod(shape) * dtype.itemsize
    return buffer[:size].view(dtype).reshape(shape, order=order)


# --- map_blocks / map_overlap ---------------------------------------------------------------


@dataclass
class _Transform:
    """One run of func over the chunks of src into an output."""

    operation: str
    func: Callable[[np.ndarray], np.ndarray]
    source: _Endpoint
    output: _Output
    halo: _Halo
    chunks: list[tuple[int, int]]
    first: int  # chunks already done (resumed)
    checkpoint: _Checkpoint | None
    max_out_itemsize: int  # what the budget allowed for func's output
    buffer_bytes: int

    def run(self, progress: bool) -> None:
        todo = self.chunks[self.first :]
        row_bytes = _nbytes(self.source) // self.halo.shape[self.halo.axis]
        buffer = _buffers(self.buffer_bytes)
        done = sum(b - a for a, b in self.chunks[: self.first]) * row_bytes
        with _progress(progress, self.operation, _nbytes(self.source), done) as advance:

            def load(k: int) -> np.ndarray:
                a, b = todo[k]
                block = _view(buffer(k % 2), self.halo.block_shape(a, b), self.source.dtype,
                              self.source.order)  # fmt: skip
                self.halo.fill(block, a, b, self.source)
                return block

            def stored(k: int) -> None:
                a, b = todo[k]
                advance((b - a) * row_bytes)
                if self.checkpoint is not None:
                    self.checkpoint.save(self.first + k + 1, self.output)

            def store(k: int, result: np.ndarray) -> None:
                self.output.endpoint.write(self.halo.axis, todo[k][0], result)

            try:
                _pipeline(len(todo), load, lambda k, block: self.compute(todo[k], block), store,
                          stored)  # fmt: skip
            except BaseException:
                if self.checkpoint is not None and self.checkpoint.done > self.first:
                    self.checkpoint.save(self.checkpoint.done, self.output, force=True)
                raise

    def compute(self, chunk: tuple[int, int], block: np.ndarray) -> np.ndarray:
        a, b = chunk
        where = f"chunk rows {a}:{b} along axis {self.halo.axis}"
        try:
            result = self.func(block)
        except Exception as exc:
            if hasattr(exc, "add_note"):
                exc.add_note(f"npaccel.data.{self.operation}: raised by func on {where}")
            raise
        self._check(result, block, where)
        cropped = result[self.halo.crop(a, b)]
        if np.may_share_memory(cropped, block):  # block's buffer is refilled by the reader
            cropped = cropped.copy()
        return cropped

    def _check(self, result: Any, block: np.ndarray, where: str) -> None:
        if not isinstance(result, np.ndarray):
            raise TypeError(f"`func` must return an ndarray for each block; got "
                            f"{type(result).__name__} for {where}")  # fmt: skip
        if result.shape != block.shape:
            raise ValueError(f"`func` must return an array of its block's shape {block.shape} "
                             f"(the halo is cropped afterwards); got {result.shape} for {where}")
        if self.output.dtype is None:
            if result.dtype.itemsize > self.max_out_itemsize:
                raise ValueError(f"`func` returned dtype {result.dtype} ({result.dtype.itemsize}"
                                 f" bytes per element) for {where}, more than the budget assumed"
                                 f" ({self.max_out_itemsize}); pass dtype={result.dtype.name!r}")
            _check_dtype(result.dtype, "func's result")
            if self.checkpoint is not None:
                self.checkpoint.dtype = result.dtype.str
        elif result.dtype != self.output.dtype:
            name = self.output.dtype.name
            raise ValueError(f"`func` returned dtype {result.dtype} for {where}; the output has "
                             f"dtype {name} (return .astype({name!r}) or pass a matching "
                             "dtype=)")  # fmt: skip
        self.output.create(result.dtype)  # a path's .partial, on the first chunk


def _checkpoint_for(output: _Output, checkpoint: Any, resume: Any,
                    params: dict[str, Any]) -> _Checkpoint | None:  # fmt: skip
    if checkpoint not in (None, True, False) or resume not in (True, False):
        raise TypeError(f"`checkpoint` must be None, True or False and `resume` True or False; "
                        f"got checkpoint={checkpoint!r}, resume={resume!r}")  # fmt: skip
    path = output.checkpoint_path
    if checkpoint is False:
        if resume:
            raise ValueError("`resume`=True needs a checkpoint; got checkpoint=False")
        return None
    if path is None:
        if checkpoint or resume:
            raise ValueError("`checkpoint`/`resume` need an output file (a path or an "
                             "np.memmap); `dst` is an in-memory array")  # fmt: skip
        return None
    state = _Checkpoint(path, params)
    if not (resume and state.load()):
        state.remove()  # start over
    return state


def _transform(operation: str, func: Callable, src: Any, dst: Any, *, depth: Any,
               mode: str | None, cval: Any, dtype: Any, axis: Any, max_memory: Any,
               chunk_size: Any, temp_factor: Any, progress: Any, checkpoint: Any, resume: Any,
               work_itemsize: int | None = None) -> np.ndarray:  # fmt: skip
    if not callable(func):
        raise TypeError(f"`func` must be callable; got {type(func).__name__}")
    budget_bytes = _parse_bytes(max_memory)
    factor = _check_temp_factor(temp_factor)
    try:
        fill = float(cval)
    except (TypeError, ValueError):
        raise TypeError(f"`cval` must be a real number; got {cval!r}") from None
    rows_wanted = None if chunk_size is None else _as_int(chunk_size, "chunk_size")
    if rows_wanted is not None and rows_wanted < 1:
        raise ValueError(f"`chunk_size` must be >= 1; got {chunk_size!r}")
    source = _open_source(src)
    output = None
    try:
        if not source.shape:
            raise ValueError("`src` must have at least one dimension; got a 0-d array")
        ax = source.outer_axis if axis is None else _check_axis(axis, len(source.shape))
        halo = _Halo(source.shape, ax, _normalize_depth(depth, len(source.shape)), mode, fill)
        output = _Output(dst, source.shape, source.order, dtype)
        if output.endpoint is not None and _regions_overlap(source, output.endpoint):
            raise ValueError("`dst` must not overlap `src` (chunks would read results written "
                             "before them); write to another file or array")  # fmt: skip
        if output.path is not None and isinstance(source, _FileArray) and \
                output.path.exists() and os.path.samefile(output.path, source.path):  # fmt: skip
            raise ValueError(f"`dst` {str(output.path)!r} is `src`; write to another file")
        if _prod(source.shape) == 0:
            return _empty(func, source, output)
        params = {"operation": operation, "func": _func_name(func), "src": source.identity(),
                  "shape": list(source.shape), "src_dtype": source.dtype.str,
                  "dtype": None if dtype is None else np.dtype(dtype).str, "axis": ax,
                  "depth": list(halo.depth), "mode": mode, "cval": fill}  # fmt: skip
        state = _checkpoint_for(output, checkpoint, resume, params)
        resumed = state is not None and state.count is not None
        if resumed:
            output.reopen(np.dtype(state.dtype))
        out_size = output.dtype.itemsize if output.dtype is not None else max(
            _ASSUMED_ITEMSIZE, source.dtype.itemsize)
        work = work_itemsize or max(source.dtype.itemsize, out_size)
        dst_mapped = output.endpoint.mapped_bytes(ax) if output.endpoint is not None else (0, 0)
        budget = _transform_budget(halo, source.dtype.itemsize, out_size, work, factor,
                                   source.mapped_bytes(ax), dst_mapped)  # fmt: skip
        n = source.shape[ax]
        if resumed:
            if rows_wanted is not None and rows_wanted != state.chunk_size:
                raise ValueError(f"cannot resume: the checkpoint's chunks are "
                                 f"{state.chunk_size or 'sized by the budget'}, `chunk_size`="
                                 f"{rows_wanted}; pass the same (or None)")  # fmt: skip
            chunks = _grid(n, state.chunk_size, state.count)
            largest = max(b - a for a, b in chunks)
            budget.check(largest, budget_bytes, f"resuming: the checkpoint's chunks of {largest} "
                         "rows")  # fmt: skip
        else:
            chunks = budget.chunks(n, budget_bytes, rows_wanted, ax)
            largest = max(b - a for a, b in chunks)
        if state is not None:
            if not resumed:  # a resumed run keeps the recorded grid
                state.chunk_size, state.count = rows_wanted, len(chunks)
            if output.dtype is not None:
                state.dtype = output.dtype.str
        job = _Transform(operation, func, source, output, halo, chunks,
                         min(state.done, len(chunks)) if resumed else 0, state, out_size,
                         halo.largest_block(largest) * source.dtype.itemsize)  # fmt: skip
        job.run(bool(progress))
        result = output.finish()
        if state is not None:
            state.remove()
        return result
    finally:
        source.close()
        if output is not None:
            output.close()


def _empty(func: Callable, source: _Endpoint, output: _Output) -> np.ndarray:
    """An empty src: func called once on it (to learn the dtype), nothing to read or write."""
    result = func(np.empty(source.shape, source.dtype))
    if not isinstance(result, np.ndarray) or result.shape != source.shape:
        raise ValueError(f"`func` must return an array of shape {source.shape} for the empty "
                         f"`src`; got {getattr(result, 'shape', type(result).__name__)}")
    if output.dtype is None:
        output.dtype = result.dtype
    return output.finish()


_SHARED_DOC = """
    src : str, os.PathLike, np.memmap or ndarray
        The input: a .npy file (opened by npaccel.data's checked reader: a damaged,
        truncated or object file raises NpyError), a memmap or an in-memory array.
    dst : str, os.PathLike, np.memmap or ndarray
        The output, of the shape of `src`. A path is created (overwritten if it exists):
        written as ``<dst>.partial`` and renamed to `dst` once complete, with the dtype of
        `dtype` or else of func's result on the first chunk. An array is written in place
        and must not overlap `src`.
    dtype : dtype, optional
        Output dtype for a path `dst` (default: func's, seen on the first chunk; until then
        the budget assumes 8 bytes per output element). Every chunk's result must have it.
    axis : int, optional
        Axis along which chunks are cut. Default: the outermost axis in memory (0 for C
        order, the last for Fortran order), whose chunks are contiguous in the file.
    max_memory : int or str, optional
        Byte budget, e.g. ``2**30`` or ``'512MB'``: a chunk's block with its halo, a second
        (read-ahead) block, func's output and temporaries and the result being written fit
        in it. Default 256 MiB. Too small for one row with its halo raises ValueError
        saying how much is needed.
    chunk_size : int, optional
        Chunk length along `axis` (the last chunk may be shorter); it must fit
        `max_memory`. Default: the most that fit, evened out over the chunks.
    temp_factor : float, optional
        Bytes func allocates per element of its block, in units of the larger of the input
        and output itemsizes (its output counts 1). Default 2.0.
    progress : bool, optional
        Show a rich progress bar on stderr. Default False.
    checkpoint : bool or None, optional
        Record finished chunks in ``<dst>`` + '.npaccel-chunks.json' (atomic, fsynced, at
        most every 2 s), removed when the run completes. None (default): when `dst` is a
        file. True: required (an in-memory `dst` raises).
    resume : bool, optional
        Continue the interrupted run recorded in the checkpoint, skipping finished chunks;
        with other parameters (func's qualified name, src, dtype, depth, mode, ...) it
        raises ValueError. Without a checkpoint it starts afresh. Default False: start over.

    Returns
    -------
    np.memmap or ndarray
        `dst`; for a path, the finished file opened read-only.

    Raises
    ------
    ValueError, TypeError
        A bad argument (named, with the rule and the value), `dst` overlapping `src`, a
        shape mismatch, a budget too small, func returning a wrong shape or dtype.
    NpyError
        `src` is not a readable .npy file.
"""


def _document(func: Callable) -> Callable:
    func.__doc__ = func.__doc__.replace("    %(shared)s\n", _SHARED_DOC.strip("\n") + "\n")
    return func


@_document
def map_blocks(func: Callable[[np.ndarray], np.ndarray], src: Any, dst: Any, *,
               dtype: Any = None, axis: int | None = None, max_memory: int | str =
               DEFAULT_MAX_MEMORY, chunk_size: int | None = None, temp_factor: float = 2.0,
               progress: bool = False, checkpoint: bool | None = None,
               resume: bool = False) -> np.ndarray:  # fmt: skip
    """Apply `func` to each chunk of `src` and write the results to `dst`, in bounded memory.

    ``func(block)`` gets the chunk's rows (C- or Fortran-contiguous, in a buffer reused for
    later chunks: return a new array, or the block itself) and returns an array of the
    block's shape.

    Parameters
    ----------
    func : callable
        ``func(block) -> ndarray`` of ``block.shape``.
    %(shared)s

    See Also
    --------
    map_overlap : the same with a halo around each chunk, for stencils.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from npaccel.data import map_blocks
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "x.npy"), np.arange(6, dtype=np.uint8).reshape(3, 2))
    >>> map_blocks(lambda b: b.astype(np.float32) / 2, os.path.join(d, "x.npy"),
    ...            os.path.join(d, "y.npy"))
    memmap([[0. , 0.5],
            [1. , 1.5],
            [2. , 2.5]], dtype=float32)
    """
    return _transform("map_blocks", func, src, dst, depth=0, mode=None, cval=0.0, dtype=dtype,
                      axis=axis, max_memory=max_memory, chunk_size=chunk_size,
                      temp_factor=temp_factor, progress=progress, checkpoint=checkpoint,
                      resume=resume)  # fmt: skip


@_document
def map_overlap(func: Callable[[np.ndarray], np.ndarray], src: Any, dst: Any, *, depth: Any,
                mode: str | None = "reflect", cval: float = 0.0, dtype: Any = None,
                axis: int | None = None, max_memory: int | str = DEFAULT_MAX_MEMORY,
                chunk_size: int | None = None, temp_factor: float = 2.0, progress: bool = False,
                checkpoint: bool | None = None, resume: bool = False) -> np.ndarray:  # fmt: skip
    """Apply a stencil `func` to each chunk of `src` with a halo of `depth` around it, crop
    the halo, and write the results to `dst`, in bounded memory.

    ``func(block)`` gets the chunk with ``depth[j]`` extra elements on each side of every
    axis j and returns an array of the block's shape; outside the array the halo is filled
    by `mode` as scipy.ndimage extends its input, so that
    ``map_overlap(lambda b: uniform_filter(b, 3, mode=m), src, dst, depth=1, mode=m)``
    equals ``uniform_filter(src, 3, mode=m)`` bit for bit, for every mode and chunking.

    Parameters
    ----------
    func : callable
        ``func(block) -> ndarray`` of ``block.shape``.
    depth : int, sequence of int or dict
        Halo per axis: an int for every axis, one per axis, or ``{axis: depth}``; at least
        the stencil's radius on each axis. May exceed the chunk or the array.
    mode : {'reflect', 'mirror', 'nearest', 'constant', 'wrap'} or None, optional
        How the halo is filled outside the array (scipy.ndimage's modes; 'grid-mirror',
        'grid-wrap' and 'grid-constant' are accepted as aliases). None: not filled — the
        blocks at the array's edges stop there and the other axes get no halo, for a func
        that applies its own mode (needed for exactness when func makes several passes
        along one axis, such as a filter applied twice). Default 'reflect'.
    cval : float, optional
        Fill value for mode 'constant', converted to src's dtype. Default 0.0.
    %(shared)s

    See Also
    --------
    map_blocks : without a halo.
    npaccel.filters : filters called with an np.memmap input and output run through here.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from npaccel.data import map_overlap
    >>> from npaccel.filters import uniform_filter
    >>> x = np.random.default_rng(0).random((50, 40), dtype=np.float32)
    >>> d = tempfile.mkdtemp()
    >>> np.save(os.path.join(d, "x.npy"), x)
    >>> y = map_overlap(lambda b: uniform_filter(b, 3, mode="wrap"), os.path.join(d, "x.npy"),
    ...                 os.path.join(d, "y.npy"), depth=1, mode="wrap", chunk_size=7)
    >>> bool(np.array_equal(y, uniform_filter(x, 3, mode="wrap")))
    True
    """
    return _transform("map_overlap", func, src, dst, depth=depth, mode=_check_mode(mode),
                      cval=cval, dtype=dtype, axis=axis, max_memory=max_memory,
                      chunk_size=chunk_size, temp_factor=temp_factor, progress=progress,
                      checkpoint=checkpoint, resume=resume)  # fmt: skip


# --- reduce ---------------------------------------------------------------------------------


class _PairwiseSum:
    """Partial results added pairwise (a binary counter), so rounding grows with the log of
    their number; O(log n) partials are kept."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, Any]] = []

    def add(self, value: Any) -> None:
        level = 0
        while self._stack and self._stack[-1][0] == level:
            value = self._stack.pop()[1] + value
            level += 1
        self._stack.append((level, value))

    def total(self) -> Any:
        total = None
        for _, value in reversed(self._stack):
            total = value if total is None else value + total
        return total


def _scan(source: _Endpoint, max_memory: int, fixed: int, per_row: int,
          step: Callable[[int, int, np.ndarray], None], progress: bool, label: str) -> None:
    """step(a, b, block) for each chunk [a, b) along the outermost axis, read ahead."""
    ax = source.outer_axis
    n = source.shape[ax]
    row = _nbytes(source) // n
    mapped_row, mapped_fixed = source.mapped_bytes(ax)
    budget = _Budget(2 * row + per_row + mapped_row, 0, 0, fixed + mapped_fixed,
                     "2 read-ahead blocks + partial results")  # fmt: skip
    chunks = budget.chunks(n, max_memory, None, ax)
    buffer = _buffers(max(b - a for a, b in chunks) * row)

    def load(k: int) -> np.ndarray:
        a, b = chunks[k]
        shape = tuple(b - a if j == ax else s for j, s in enumerate(source.shape))
        block = _view(buffer(k % 2), shape, source.dtype, source.order)
        source.read(ax, a, b, block)
        return block

    with _progress(progress, label, _nbytes(source), 0) as advance:
        _pipeline(len(chunks), load, lambda k, block: step(*chunks[k], block), None,
                  lambda k: advance((chunks[k][1] - chunks[k][0]) * row))  # fmt: skip


def _reduce_dtype(op: str, dtype: np.dtype) -> np.dtype | None:
    """Accumulator of sum/mean: float64 (complex128) for floats and means; NumPy's default
    (int64/uint64) for integer sums."""
    if dtype.kind == "c":
        return np.dtype(np.complex128)
    if op == "mean" or dtype.kind == "f":
        return np.dtype(np.float64)
    return None


def _check_reduce_dtype(op: str, dtype: np.dtype) -> None:
    kinds = {"sum": "biufc", "mean": "biufc", "min": "biufcmM", "max": "biufcmM",
             "histogram": "iuf"}[op]  # fmt: skip
    if dtype.kind not in kinds:
        what = "integer or float" if op == "histogram" else "numeric"
        raise TypeError(f"`op`={op!r} needs {what} data; `src` has dtype {dtype}")


def reduce(src: Any, op: str, *, axis: int | None = None, max_memory: int | str =
           DEFAULT_MAX_MEMORY, bins: Any = 10, range: Any = None,
           progress: bool = False) -> Any:  # fmt: skip
    """Sum, mean, minimum, maximum or histogram of `src` in one pass, in bounded memory.

    Parameters
    ----------
    src : str, os.PathLike, np.memmap or ndarray
        A .npy file, a memmap or an array.
    op : {'sum', 'mean', 'min', 'max', 'histogram'}
        What to compute. NaN propagates as in NumPy (np.sum, np.mean, np.min, np.max; the
        histogram leaves NaN out).
    axis : int, optional
        Reduce along this axis only (not for 'histogram'). Default: over all elements.
    max_memory : int or str, optional
        Byte budget for two read-ahead chunks and the partial results. Default 256 MiB.
    bins, range : optional
        As np.histogram: a bin count (default 10) or the bin edges, and the (lower, upper)
        range. With a count and no range, a first pass finds the data's min and max, as
        np.histogram does in memory: the only case that reads `src` twice.
    progress : bool, optional
        Show a rich progress bar on stderr. Default False.

    Returns
    -------
    scalar, ndarray or (ndarray, ndarray)
        'sum' and 'mean' of floats in float64 (complex128 for complex), summed pairwise
        within each chunk and pairwise over chunks: within a few ulps·log2(n) of the exact
        sum, never less accurate than np.sum of float64. Integer sums are exact (int64 or
        uint64, wrapping like NumPy's); integer means are float64. 'min' and 'max' are
        exact, in src's dtype. 'histogram' returns (counts, edges) equal to np.histogram's.

    Raises
    ------
    ValueError, TypeError
        Bad `op`, `axis`, `bins`, `range`, `max_memory`; min/max of an empty array; a
        dtype `op` does not apply to.

    Examples
    --------
    >>> import numpy as np
    >>> from npaccel.data import reduce
    >>> x = np.arange(10, dtype=np.float32)
    >>> float(reduce(x, "mean")), int(reduce(x, "max"))
    (4.5, 9)
    """
    if not isinstance(op, str) or op not in REDUCE_OPS:
        raise ValueError(f"`op` must be one of {REDUCE_OPS}; got {op!r}")
    limit = _parse_bytes(max_memory)
    source = _open_source(src)
    try:
        _check_reduce_dtype(op, source.dtype)
        if op == "histogram":
            if axis is not None:
                raise ValueError(f"`axis` must be None for op='histogram'; got {axis!r}")
            return _histogram(source, bins, range, limit, bool(progress))
        ax = None if axis is None else _check_axis(axis, max(len(source.shape), 1))
        if len(source.shape) == 0 and ax is not None:
            raise ValueError(f"`axis` must be None for a 0-d `src`; got {axis!r}")
        if _prod(source.shape) == 0 or not source.shape:
            return _reduce_small(source, op, ax)
        return _reduce(source, op, ax, limit, bool(progress))
    finally:
        source.close()


def _read_small(source: _Endpoint) -> np.ndarray:
    """The whole of an empty or 0-d src (at most one element)."""
    if isinstance(source, _MemArray):
        return np.array(source.array)
    data = np.empty(_prod(source.shape) * source.dtype.itemsize, np.uint8)
    _pread_exact(source._fd, data, source.offset, source.path)
    return data.view(source.dtype).reshape(source.shape, order=source.order)


def _reduce_small(source: _Endpoint, op: str, axis: int | None) -> Any:
    """Empty or 0-d src: NumPy's own result (and warnings) on it, errors made clearer."""
    data = _read_small(source)
    try:
        if op in ("sum", "mean"):
            return getattr(np, op)(data, axis=axis, dtype=_reduce_dtype(op, source.dtype))
        return getattr(np, op)(data, axis=axis)
    except ValueError:
        raise ValueError(f"`src` is empty (shape {source.shape}): {op!r} of an empty array "
                         f"has no value (np.{op} raises too)") from None


def _reduce(source: _Endpoint, op: str, axis: int | None, max_memory: int, progress: bool) -> Any:
    if op in ("sum", "mean"):
        acc = _reduce_dtype(op, source.dtype)
        apply = functools.partial(np.sum, axis=axis, dtype=acc)
    else:
        apply = functools.partial(getattr(np, op), axis=axis)
    out_dtype = np.asarray(apply(np.zeros((1,) * len(source.shape), source.dtype))).dtype
    out_shape = () if axis is None else tuple(s for j, s in enumerate(source.shape) if j != axis)
    part_bytes = _prod(out_shape) * out_dtype.itemsize
    chunk_ax = source.outer_axis
    if axis is None or axis == chunk_ax:  # partial results of the result's shape, combined
        levels = math.ceil(math.log2(max(source.shape[chunk_ax], 2))) + 3
        placed, fixed, per_row = None, levels * part_bytes, 0
    else:  # each chunk computes its own slice of the result
        placed, fixed = np.empty(out_shape, out_dtype), part_bytes
        per_row = part_bytes // source.shape[chunk_ax]
        at = chunk_ax - (1 if axis < chunk_ax else 0)
    total = _PairwiseSum()
    extreme: list[Any] = []
    combine = np.minimum if op == "min" else np.maximum

    def step(a: int, b: int, block: np.ndarray) -> None:
        part = apply(block)
        if placed is not None:
            placed[(slice(None),) * at + (slice(a, b),)] = part
        elif op in ("sum", "mean"):
            total.add(part)
        else:
            extreme[:] = [part if not extreme else combine(extreme[0], part)]

    _scan(source, max_memory, fixed, per_row, step, progress, f"reduce {op}")
    if placed is not None:
        result = placed
    else:
        result = total.total() if op in ("sum", "mean") else extreme[0]
    if op == "mean":
        count = _prod(source.shape) if axis is None else source.shape[axis]
        result = result / count
    return result


def _check_bins(bins: Any) -> Any:
    if isinstance(bins, numbers.Integral) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError(f"`bins` must be >= 1; got {bins!r}")
        return int(bins)
    if isinstance(bins, str):
        raise ValueError(f"`bins` must be a count or the bin edges (estimators such as "
                         f"{bins!r} need the whole data); got {bins!r}")  # fmt: skip
    edges = np.asarray(bins)
    if edges.ndim != 1 or edges.size < 2 or np.any(edges[:-1] > edges[1:]):
        raise ValueError(f"`bins` edges must be 1-D, at least 2, increasing; got {bins!r}")
    return edges


def _histogram(source: _Endpoint, bins: Any, range_: Any, max_memory: int,
               progress: bool) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    bins = _check_bins(bins)
    if _prod(source.shape) == 0 or not source.shape:
        return np.histogram(_read_small(source), bins=bins, range=range_)
    if range_ is not None:
        try:
            lo, hi = range_
        except (TypeError, ValueError):
            raise ValueError(f"`range` must be a (lower, upper) pair; got {range_!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
            raise ValueError(f"`range` must be finite with lower <= upper; got {range_!r}")
    elif not isinstance(bins, np.ndarray):  # np.histogram's autodetected range: a first pass
        bounds: list[Any] = []

        def minmax(a: int, b: int, block: np.ndarray) -> None:
            lo, hi = block.min(), block.max()
            bounds[:] = [lo, hi] if not bounds else [np.minimum(bounds[0], lo),
                                                     np.maximum(bounds[1], hi)]  # fmt: skip

        _scan(source, max_memory, 0, 0, minmax, progress, "reduce histogram (range)")
        if not (np.isfinite(bounds[0]) and np.isfinite(bounds[1])):
            raise ValueError(f"autodetected range of [{bounds[0]}, {bounds[1]}] is not finite")
        range_ = tuple(bounds)
    found: list[np.ndarray] = []

    def count(a: int, b: int, block: np.ndarray) -> None:
        counts, edges = np.histogram(block, bins=bins, range=range_)
        if found:
            found[0] += counts
        else:
            found[:] = [counts.astype(np.int64), edges]

    nbins = bins if isinstance(bins, int) else len(bins) - 1
    _scan(source, max_memory, 16 * (nbins + 1), 0, count, progress, "reduce histogram")
    return found[0], found[1]


# --- npaccel.filters on memmaps -------------------------------------------------------------


def _radius(size: int, origin: int) -> int:
    """Elements a window of `size` placed like a correlation with `origin` reaches."""
    return max(size // 2 + origin, size - size // 2 - 1 - origin)


def _nd_taps(shape: Sequence[int], origins: Sequence[int], mode: str) -> list[tuple]:
    """(axis, size, origin, mode) of an N-D window, one per axis."""
    return [(a, s, o, mode) for a, (s, o) in enumerate(zip(shape, origins, strict=True))]


def filters_backend(module: ModuleType) -> _ChunkedFilters:
    """`module` (an npaccel.filters backend) with its kernels run through map_overlap when
    their input and output are both np.memmaps; other calls go straight to `module`."""
    return _ChunkedFilters(module)


class _ChunkedFilters:
    """A filters backend that runs each kernel chunk by chunk along the memmaps' outermost
    axis, with a halo of the kernel's reach: 'wrap' halos read from the far end of the
    array, other modes left to the kernel itself at the array's true edges (mode None)."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def correlate_passes(self, input, passes, cval, out):
        taps = [[(p.axis, len(p.weights), p.origin, p.mode) for p in passes]]
        return self._run(input, out, taps,
                         lambda x, o: self._module.correlate_passes(x, passes, cval, o))

    def combine_passes(self, input, pass_lists, cval, out, combine):
        taps = [[(p.axis, len(p.weights), p.origin, p.mode) for p in ps] for ps in pass_lists]
        return self._run(input, out, taps, lambda x, o: self._module.combine_passes(
            x, pass_lists, cval, o, combine))  # fmt: skip

    def minmax_passes(self, input, passes, cval, minimum, out):
        taps = [[(p.axis, p.size, p.origin, p.mode) for p in passes]]
        return self._run(input, out, taps, lambda x, o: self._module.minmax_passes(
            x, passes, cval, minimum, o))  # fmt: skip

    def correlate_nd(self, input, weights, mode, cval, origins, out):
        taps = [_nd_taps(weights.shape, origins, mode)]
        return self._run(input, out, taps, lambda x, o: self._module.correlate_nd(
            x, weights, mode, cval, origins, o))  # fmt: skip

    def rank_nd(self, input, footprint, rank, mode, cval, origins, out):
        taps = [_nd_taps(footprint.shape, origins, mode)]
        return self._run(input, out, taps, lambda x, o: self._module.rank_nd(
            x, footprint, rank, mode, cval, origins, o))  # fmt: skip

    def _run(self, input: np.ndarray, out: np.ndarray, tap_lists, kernel) -> np.ndarray:
        plan = _filter_plan(input, out, tap_lists)
        if plan is None:
            return kernel(input, out)
        axis, reach, mode = plan

        def per_block(block: np.ndarray) -> np.ndarray:
            result = np.empty(block.shape, out.dtype)
            kernel(block, result)
            return result

        try:
            _transform("filters", per_block, input, out, depth={axis: reach}, mode=mode,
                       cval=0.0, dtype=None, axis=axis, max_memory=FILTERS_MAX_MEMORY,
                       chunk_size=None, temp_factor=3.0, progress=False, checkpoint=False,
                       resume=False, work_itemsize=8)  # fmt: skip
        except _BudgetError:  # rows too long for the budget: the in-memory path, still right
            return kernel(input, out)
        return out


def _filter_plan(input: Any, out: Any, tap_lists) -> tuple[int, int, str | None] | None:
    """(axis, halo, mode) to run a kernel chunked, or None to call it directly: unless input
    and output are distinct, non-overlapping memmaps, or 'wrap' is mixed with other modes
    along the chunk axis."""
    if not (isinstance(input, np.memmap) and isinstance(out, np.memmap)):
        return None
    if input.ndim == 0 or input.size == 0 or out.shape != input.shape:
        return None
    source = _MemArray(input)
    if _regions_overlap(source, _MemArray(out)):
        return None
    axis = source.outer_axis
    reach = max((sum(_radius(s, o) for a, s, o, _ in taps if a == axis) for taps in tap_lists),
                default=0)  # fmt: skip
    modes = {m for taps in tap_lists for a, s, o, m in taps if a == axis and _radius(s, o)}
    if "wrap" in modes and len(modes) > 1:
        return None
    return axis, reach, "wrap" if modes == {"wrap"} else None
