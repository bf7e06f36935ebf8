"""Save and load arrays as .npy, compressed .npz or zarr, atomically, with the ratio reported.

:func:`save` writes one array, or a dict of named arrays, in the format its path's
extension names (or ``format=``): '.npy' (NumPy's own layout, uncompressed, loadable as a
memory map), '.npz' (a zip of .npy members, deflated at a level of your choice rather than
``np.savez_compressed``'s fixed, slow level 6; still read by ``np.load``) or '.zarr' (a zarr 3
directory store, chunked, compressed with blosc-lz4, blosc-zstd or zstd; needs the `data`
extra). Every write goes to a temp file or directory next to the target, is fsynced and
then renamed into place, so a target is either untouched or complete. It returns a
:class:`SaveReport`: bytes in and out, the compression ratio, the time and the rate.

:func:`load` reads any of them back, choosing the reader from the content.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import numpy as np
from numpy.lib import format as npy_format
from numpy.typing import ArrayLike

from npaccel._files import remove_quietly, umask
from npaccel.data._npy import npy_header, open_npy

__all__ = [
    "CHUNK_BYTES",
    "CODECS",
    "DEFAULT_CODECS",
    "EXTENSIONS",
    "FORMATS",
    "SaveReport",
    "StoreError",
    "default_chunks",
    "load",
    "save",
]


class Levels(NamedTuple):
    """The compression levels a codec takes: ``low`` to ``high``, ``default`` if None."""

    low: int
    high: int
    default: int


FORMATS = ("npy", "npz", "zarr")
EXTENSIONS = {".npy": "npy", ".npz": "npz", ".zarr": "zarr"}
#: Codecs of each format, with their levels (None: no levels, the data is stored as is).
CODECS: dict[str, dict[str, Levels | None]] = {
    "npy": {"none": None},
    "npz": {"deflate": Levels(0, 9, 1), "none": None},  # deflate level 0 is stored: 'none'
    "zarr": {"blosc-lz4": Levels(0, 9, 5), "blosc-zstd": Levels(0, 9, 5),
             "zstd": Levels(1, 22, 3), "none": None},
}  # fmt: skip
DEFAULT_CODECS = {"npy": "none", "npz": "deflate", "zarr": "blosc-lz4"}
CHUNK_BYTES = 4 << 20  # default zarr chunk: about 4 MiB (see default_chunks)
SINGLE_KEY = "arr_0"  # the name of a lone array in an .npz, as np.savez(file, array) names it

_TEMP_PREFIX = ".npaccel-tmp-"
_TEMP_SUFFIX = ".part"
_NAME = re.compile(r"(?!__)[A-Za-z0-9_][A-Za-z0-9_.\-]{0,254}")
_NPY_KINDS = "biufcmMSUV"  # every NumPy dtype kind but objects ('O') and StringDType ('T')
_ZARR_KINDS = "biufc"
_DTYPE_TEXT = {"npy": "any dtype without Python objects",
               "npz": "any dtype without Python objects",
               "zarr": "bool, integer, float and complex dtypes"}  # fmt: skip
_COMPLETE = {"npaccel": {"all_chunks_written": True}}  # zarr attribute: load checks the chunks
_ZARR_INSTALL = 'zarr stores need zarr 3: pip install "npaccel[data]" (zarr 3 needs Python ≥ 3.11)'


class StoreError(ValueError):
    """A file or zarr store that :func:`load` cannot read: damaged, truncated, incomplete or
    not an array store at all. The message names the file and what is wrong with it."""


@dataclass(frozen=True)
class SaveReport:
    """What :func:`save` wrote.

    Attributes
    ----------
    path : pathlib.Path
        The target, as published.
    format : {'npy', 'npz', 'zarr'}
    codec : str
        A key of ``CODECS[format]``; 'none' when the bytes are stored uncompressed.
    level : int or None
        The codec's level; None for 'none'.
    raw_bytes : int
        The arrays' bytes (``sum(a.nbytes)``).
    stored_bytes : int
        The size on disk: the file, or every file of the zarr directory.
    ratio : float
        ``raw_bytes / stored_bytes``: > 1 when compression saved space (headers and
        metadata count, so tiny arrays stay below 1).
    seconds : float
        Wall time of the call from the checks to the rename: encoding, writing and
        fsync included, a first import of zarr not.
    gb_per_s : float
        ``raw_bytes / seconds / 1e9``: the rate at which array data was saved.
    """

    path: Path
    format: str
    codec: str
    level: int | None
    raw_bytes: int
    stored_bytes: int
    ratio: float
    seconds: float
    gb_per_s: float

    def __str__(self) -> str:
        level = "" if self.level is None else f" level {self.level}"
        return (f"{str(self.path)!r}: {self.format} {self.codec}{level}, {self.raw_bytes} → "
                f"{self.stored_bytes} bytes (ratio {self.ratio:.2f}) in {self.seconds:.3f} s, "
                f"{self.gb_per_s:.3f} GB/s")


# -------------------------------------------------------------------------------- saving


def save(path: str | os.PathLike, data: ArrayLike | Mapping[str, ArrayLike], *,
         format: str | None = None, codec: str | None = None, level: int | None = None,
         chunks: int | tuple[int, ...] | None = None, overwrite: bool = False) -> SaveReport:
    """Write one array or a dict of named arrays to ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The target file ('.npy', '.npz') or directory ('.zarr'); its directory must exist.
    data : array_like or Mapping[str, array_like]
        One array, or named arrays (.npz and .zarr only). Names: 1 to 255 characters of
        ``A-Z a-z 0-9 _ . -``, not starting with '.', '-' or '__'.
    format : {'npy', 'npz', 'zarr'}, optional
        Default: from the extension of ``path``. If given, an extension naming another
        format is an error; any other extension is kept as it is.
    codec : str, optional
        How to compress, by format: 'npy' {'none'}; 'npz' {'deflate', 'none'} (default
        'deflate'); 'zarr' {'blosc-lz4', 'blosc-zstd', 'zstd', 'none'} (default
        'blosc-lz4'). Blosc codecs byte-shuffle the data first.
    level : int, optional
        The codec's level: deflate 0–9 (default 1; 0 stores the members uncompressed, as
        codec 'none' does), blosc 0–9 (default 5), zstd 1–22 (default 3). None for 'none'.
    chunks : int or tuple of int, optional
        zarr only: the chunk shape (an int is used for every axis), applied to every array.
        Default: :func:`default_chunks`, C-order slabs of about 4 MiB.
    overwrite : bool, optional
        Replace an existing target: a file for .npy/.npz, a zarr store for .zarr.

    Returns
    -------
    SaveReport
        Sizes, ratio, time and rate of this write.

    Raises
    ------
    ValueError
        If ``format``, ``codec``, ``level`` or ``chunks`` is not allowed, the extension
        names no format, a name is invalid or a value is not an array (ragged lists).
    TypeError
        If an array's dtype cannot be stored in the format (Python objects never can),
        ``level`` is not an int, a name is not a str, or ``data`` is a mapping for .npy.
    FileExistsError
        If the target exists and ``overwrite`` is False, or is something that ``overwrite``
        must not replace (a directory for a file format; a directory that is not a zarr
        store, or a file, for zarr).
    FileNotFoundError
        If the target's directory does not exist.
    ImportError
        For zarr without zarr 3 installed (``pip install "npaccel[data]"``).

    See Also
    --------
    load : Read what this writes.

    Notes
    -----
    Layout: .npy and .npz keep Fortran order (a Fortran-contiguous array is written as such
    and loads Fortran-contiguous); any other layout, non-contiguous views included, is
    written in C order. zarr always loads C-contiguous. .npy and .npz keep the byte order;
    zarr stores little-endian and loads in native order. Values are equal in every case.

    A lone array in an .npz is its member 'arr_0', as ``np.savez(file, array)`` names it, and
    :func:`load` gives an .npz holding only 'arr_0' back as an array, not a dict.

    Atomicity: the data goes to ``.npaccel-tmp-*.part`` (a file, or a directory for zarr)
    next to the target, every file of it is fsynced, and it is published by
    :func:`os.replace` (``overwrite``) or, for files, :func:`os.link`, which fails when the
    target appeared meanwhile. A zarr store being replaced is first renamed aside, then
    deleted once the new one is in place (restored if that rename fails). On any error or
    interrupt the temp file or directory is removed and the target is untouched.

    zarr arrays are written with every chunk stored (also those equal to the fill value)
    and marked so, which lets :func:`load` refuse a store with chunks missing; every chunk
    ends with a CRC32C of its compressed bytes (zarr's 'crc32c' codec, after the
    compressor), so a damaged or truncated chunk fails to load instead of decoding to
    wrong values (blosc alone does not notice a truncated chunk). .npz members carry the
    zip's CRC-32, checked on load; .npy has no checksum (a short file is still refused).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from npaccel.data import load, save
    >>> folder = tempfile.mkdtemp()
    >>> report = save(os.path.join(folder, "x.npz"), np.zeros((100, 100)), level=6)
    >>> report.format, report.codec, report.level, report.raw_bytes
    ('npz', 'deflate', 6, 80000)
    >>> report.ratio > 50
    True
    >>> load(os.path.join(folder, "x.npz")).shape
    (100, 100)
    """
    start = time.perf_counter()
    path = Path(path)
    fmt = _format_for(path, format)
    codec, level = _check_codec(fmt, codec, level)
    arrays, single = _arrays(data, fmt)
    chunking = _check_chunks(chunks, fmt, arrays)
    _check_target(path, fmt, overwrite)
    if fmt == "zarr":
        imported = time.perf_counter()
        zarr = _import_zarr()
        start += time.perf_counter() - imported  # a first import is not this write's time
        stored = _write_dir(path, overwrite, lambda tmp: _write_zarr(
            zarr, tmp, arrays, single, codec, level, chunking))
    elif fmt == "npz":
        stored = _write_file(path, overwrite, lambda fh: _write_npz(fh, arrays, codec, level))
    else:
        stored = _write_file(path, overwrite, lambda fh: npy_format.write_array(
            fh, arrays[SINGLE_KEY], allow_pickle=False))
    seconds = max(time.perf_counter() - start, 1e-9)
    raw = sum(array.nbytes for array in arrays.values())
    return SaveReport(path, fmt, codec, level, raw, stored, raw / stored if stored else 0.0,
                      seconds, raw / seconds / 1e9)


def default_chunks(shape: tuple[int, ...], itemsize: int,
                   target: int = CHUNK_BYTES) -> tuple[int, ...]:
    """The zarr chunk shape :func:`save` uses: C-order slabs of at most ``target`` bytes.

    Trailing axes are kept whole while they fit, the first axis that does not is split
    and the axes before it get 1, so each chunk is one contiguous piece of a C-order array
    (cheap to cut out and to put back). A single element larger than ``target`` still
    makes a chunk; an axis of length 0 gets 1 (zarr needs positive chunks).

    >>> default_chunks((10_000, 1000), 4)
    (1048, 1000)
    >>> default_chunks((3, 5), 8)
    (3, 5)
    """
    chunks = [1] * len(shape)
    inner = max(int(itemsize), 1)
    for axis in reversed(range(len(shape))):
        length = max(int(shape[axis]), 1)
        if inner * length <= target:
            chunks[axis] = length
            inner *= length
        else:
            chunks[axis] = max(1, target // inner)
            break
    return tuple(chunks)


def _format_for(path: Path, format: str | None) -> str:
    ext = path.suffix.lower()
    implied = EXTENSIONS.get(ext)
    if format is None:
        if implied is None:
            raise ValueError(f"{str(path)!r}: the extension {ext!r} names no format; use one "
                             f"of {{{', '.join(EXTENSIONS)}}} or pass `format`")
        return implied
    name = format.lower() if isinstance(format, str) else None
    if name not in FORMATS:
        raise ValueError(f"`format` must be one of {{{', '.join(map(repr, FORMATS))}}}; "
                         f"got {format!r}")
    if implied is not None and implied != name:
        raise ValueError(f"`format` {format!r} disagrees with the extension {ext!r} of "
                         f"{str(path)!r}; change one of them")
    return name


def _check_codec(fmt: str, codec: str | None, level: int | None) -> tuple[str, int | None]:
    """``(codec, level)`` resolved: defaults filled in, deflate level 0 made 'none'."""
    allowed = CODECS[fmt]
    name = DEFAULT_CODECS[fmt] if codec is None else codec
    name = name.lower() if isinstance(name, str) else name
    if name not in allowed:
        raise ValueError(f"`codec` for {fmt} must be one of "
                         f"{{{', '.join(map(repr, allowed))}}}; got {codec!r}")
    levels = allowed[name]
    if level is not None and (isinstance(level, bool) or not isinstance(level, int | np.integer)):
        raise TypeError(f"`level` must be an int or None; got {level!r}")
    if levels is None:
        if level not in (None, 0):
            raise ValueError(f"`level` must be None for {fmt} codec {name!r} (it does not "
                             f"compress); got {level!r}")
        return name, None
    if level is None:
        return name, levels.default
    if not levels.low <= level <= levels.high:
        raise ValueError(f"`level` for {fmt} codec {name!r} must be in "
                         f"[{levels.low}, {levels.high}]; got {level!r}")
    if fmt == "npz" and level == 0:
        return "none", None
    return name, int(level)


def _arrays(data: Any, fmt: str) -> tuple[dict[str, np.ndarray], bool]:
    """``data`` as named arrays, each checked by :func:`_check_dtype`, and whether it was
    a lone array (then named :data:`SINGLE_KEY`)."""
    if not isinstance(data, Mapping):
        return {SINGLE_KEY: _as_array(data, fmt, "`data`")}, True
    if fmt == "npy":
        raise TypeError("`data` for .npy must be one array; got a mapping of "
                        f"{len(data)} arrays: save them as .npz or .zarr")
    arrays = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise TypeError(f"array names in `data` must be str; got {key!r}")
        if not _NAME.fullmatch(key) or key == "zarr.json":
            raise ValueError(f"array name {key!r} in `data` is not allowed: use 1 to 255 of "
                             "A-Z a-z 0-9 _ . -, not starting with '.', '-' or '__'")
        arrays[key] = _as_array(value, fmt, f"`data[{key!r}]`")
    return arrays, False


def _as_array(value: Any, fmt: str, what: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(f"{what} is not an array: {exc}") from None
    _check_dtype(array.dtype, fmt, what)
    return array


def _check_dtype(dtype: np.dtype, fmt: str, what: str) -> None:
    """The dtype policy: .npy and .npz hold every dtype without Python objects (they are
    NumPy's own layout); zarr holds bool, integer, float and complex."""
    kinds = _ZARR_KINDS if fmt == "zarr" else _NPY_KINDS
    if dtype.hasobject or dtype.kind not in kinds:
        fix = ("convert it to a numeric or fixed-width string dtype" if fmt != "zarr" else
               "convert it, or save it as .npy or .npz")
        objects = " (it holds Python objects)" if dtype.hasobject or dtype.kind in "OT" else ""
        raise TypeError(f"{what} has dtype {dtype}{objects}, which {fmt} cannot store: "
                        f"{fmt} holds {_DTYPE_TEXT[fmt]}; {fix}")


def _check_chunks(chunks: Any, fmt: str,
                  arrays: dict[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    """The chunk shape of each array: ``chunks`` checked against it, or the default."""
    if chunks is None:
        return {key: default_chunks(a.shape, a.dtype.itemsize) for key, a in arrays.items()}
    if fmt != "zarr":
        raise ValueError(f"`chunks` is for zarr only; {fmt} is not chunked: pass chunks=None")
    bad = ValueError(f"`chunks` must be a positive int or a tuple of positive ints; "
                     f"got {chunks!r}")
    if _is_int(chunks):
        if chunks < 1:
            raise bad
        return {key: (int(chunks),) * a.ndim for key, a in arrays.items()}
    if not isinstance(chunks, tuple | list) or not all(_is_int(n) and n >= 1 for n in chunks):
        raise bad
    for key, array in arrays.items():
        if len(chunks) != array.ndim:
            label = "the array" if key == SINGLE_KEY else f"array {key!r}"
            raise ValueError(f"`chunks` {tuple(chunks)!r} has {len(chunks)} axes but {label} "
                             f"has {array.ndim} (shape {array.shape})")
    return {key: tuple(int(n) for n in chunks) for key in arrays}


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _import_zarr() -> Any:
    try:
        zarr = importlib.import_module("zarr")
    except ImportError:
        raise ImportError(_ZARR_INSTALL) from None
    major = zarr.__version__.split(".")[0]
    if not major.isdigit() or int(major) < 3:
        raise ImportError(f"{_ZARR_INSTALL}; found zarr {zarr.__version__}")
    return zarr


def _is_zarr_store(path: Path) -> bool:
    return any((path / meta).is_file() for meta in ("zarr.json", ".zarray", ".zgroup"))


def _check_target(path: Path, fmt: str, overwrite: bool) -> None:
    """Refuse early (before encoding) a target that :func:`save` must not replace."""
    name = str(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{name!r}: its directory {str(path.parent)!r} does not "
                                "exist; create it first")
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise FileExistsError(f"{name!r} exists; pass overwrite=True to replace it")
    is_dir = path.is_dir() and not path.is_symlink()
    if fmt != "zarr" and is_dir:
        raise FileExistsError(f"{name!r} is a directory; a .{fmt} file does not replace a "
                              "directory: remove it yourself or choose another path")
    if fmt == "zarr" and not (is_dir and _is_zarr_store(path)):
        what = "a directory that is not a zarr store" if is_dir else "not a directory"
        raise FileExistsError(f"{name!r} is {what}; overwrite=True replaces only a zarr "
                              "store: remove it yourself or choose another path")


# ---------------------------------------------------------------------- atomic writing


def _write_file(path: Path, overwrite: bool, fill: Callable[[IO[bytes]], None]) -> int:
    """``fill`` a temp file next to ``path``, fsync it and publish it; its size."""
    fd, tmp = _make_temp(path, tempfile.mkstemp)
    try:
        with os.fdopen(fd, "r+b") as fh:
            fill(fh)
            fh.flush()
            os.fsync(fh.fileno())
            size = os.fstat(fh.fileno()).st_size
        os.chmod(tmp, 0o666 & ~umask())
        _publish_file(tmp, path, overwrite)
    except BaseException:
        remove_quietly(tmp)
        raise
    _fsync_dir(path.parent)
    return size


def _write_dir(path: Path, overwrite: bool, fill: Callable[[Path], None]) -> int:
    """``fill`` a temp directory next to ``path``, fsync it and publish it; its size."""
    tmp = Path(_make_temp(path, tempfile.mkdtemp))
    try:
        fill(tmp)
        size = _fsync_tree(tmp)
        os.chmod(tmp, 0o777 & ~umask())
        _publish_dir(tmp, path, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(path.parent)
    return size


def _make_temp(path: Path, make: Callable[..., Any]) -> Any:
    try:
        return make(dir=path.parent, prefix=_TEMP_PREFIX, suffix=_TEMP_SUFFIX)
    except OSError as exc:  # PermissionError stays one
        raise type(exc)(exc.errno, f"{str(path)!r}: cannot create a temp file in "
                                   f"{str(path.parent)!r}: {exc.strerror}") from None


def _publish_file(tmp: str, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path, follow_symlinks=False)  # fails if the target exists: race-free
    except FileExistsError:
        raise _exists(path) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP,
                             errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(path):  # no hard links here: a checked (not race-free) replace
            raise _exists(path) from None
        os.replace(tmp, path)
        return
    remove_quietly(tmp)


def _publish_dir(tmp: Path, path: Path, overwrite: bool) -> None:
    if not os.path.lexists(path):
        try:
            os.rename(tmp, path)  # refused if a file or non-empty directory appeared meanwhile
        except OSError as exc:
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR):
                raise _exists(path) from None
            raise
        return
    if not overwrite:
        raise _exists(path)
    aside = path.parent / f"{_TEMP_PREFIX}{uuid.uuid4().hex}.old"
    os.rename(path, aside)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(aside, path)
        raise
    shutil.rmtree(aside, ignore_errors=True)


def _exists(path: Path) -> FileExistsError:
    return FileExistsError(f"{str(path)!r} exists; pass overwrite=True to replace it")


def _fsync_tree(top: Path) -> int:
    """fsync every file and directory under ``top``; the files' total size."""
    size = 0
    for root, _dirs, files in os.walk(top):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                os.fsync(fh.fileno())
                size += os.fstat(fh.fileno()).st_size
        _fsync_dir(Path(root))
    return size


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem syncs directories
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ------------------------------------------------------------------------------ encoders


def _write_npz(fh: IO[bytes], arrays: dict[str, np.ndarray], codec: str,
               level: int | None) -> None:
    """A zip of .npy members, as np.savez writes it, deflated at ``level``."""
    compression = zipfile.ZIP_STORED if codec == "none" else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(fh, "w", compression=compression, compresslevel=level) as archive:
        for key, array in arrays.items():
            with archive.open(key + ".npy", "w", force_zip64=True) as member:
                npy_format.write_array(member, array, allow_pickle=False)


def _zarr_compressors(zarr: Any, codec: str, level: int | None) -> tuple[Any, ...]:
    """The codec, then a CRC32C of its output: blosc does not notice a truncated chunk
    (it decodes what follows the buffer as data), the checksum makes that an error."""
    checksum = zarr.codecs.Crc32cCodec()
    if codec == "none":
        return (checksum,)
    if codec == "zstd":
        return zarr.codecs.ZstdCodec(level=level), checksum
    return zarr.codecs.BloscCodec(cname=codec.removeprefix("blosc-"), clevel=level,
                                  shuffle="shuffle"), checksum


def _write_zarr(zarr: Any, directory: Path, arrays: dict[str, np.ndarray], single: bool,
                codec: str, level: int | None, chunks: dict[str, tuple[int, ...]]) -> None:
    store = _closable_store(zarr)(directory)
    compressors = _zarr_compressors(zarr, codec, level)
    try:
        if single:
            create = functools.partial(zarr.create_array, store, zarr_format=3)
            _zarr_array(create, arrays[SINGLE_KEY], chunks[SINGLE_KEY], compressors)
            return
        group = zarr.create_group(store=store, zarr_format=3)
        for key, array in arrays.items():
            _zarr_array(functools.partial(group.create_array, key), array, chunks[key],
                        compressors)
    except BaseException:
        # zarr writes chunks concurrently and, when one fails, leaves the others running:
        # let those finish and refuse new ones, so nothing lands after the cleanup
        store.close_writes()
        raise


@functools.cache
def _closable_store(zarr: Any) -> type:
    """zarr's LocalStore whose writes can be closed: :meth:`close_writes` makes later writes
    fail and waits for those in flight."""

    class ClosableLocalStore(zarr.storage.LocalStore):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._writes = threading.Condition()
            self._in_flight = 0
            self._closed = False

        async def set(self, key: str, value: Any) -> None:
            with self._writing():
                await super().set(key, value)

        async def set_if_not_exists(self, key: str, value: Any) -> None:
            with self._writing():
                await super().set_if_not_exists(key, value)

        @contextlib.contextmanager
        def _writing(self) -> Iterator[None]:
            with self._writes:
                if self._closed:
                    raise OSError(errno.ECANCELED, "the write was abandoned after an error")
                self._in_flight += 1
            try:
                yield
            finally:
                with self._writes:
                    self._in_flight -= 1
                    self._writes.notify_all()

        def close_writes(self) -> None:
            with self._writes:
                self._closed = True
                self._writes.wait_for(lambda: self._in_flight == 0)

    return ClosableLocalStore


def _zarr_array(create: Callable[..., Any], array: np.ndarray, chunks: tuple[int, ...],
                compressors: Any) -> None:
    target = create(shape=array.shape, dtype=array.dtype, chunks=chunks,
                    compressors=compressors, attributes=_COMPLETE,
                    config={"write_empty_chunks": True})
    target[...] = array


# ------------------------------------------------------------------------------- loading


def load(path: str | os.PathLike, *, mmap: bool = False,
         key: str | None = None) -> np.ndarray | dict[str, np.ndarray]:
    """Read what :func:`save` (or ``np.save``, ``np.savez``, zarr) wrote.

    Parameters
    ----------
    path : str or os.PathLike
        A .npy file, an .npz archive or a zarr store (a directory). The content chooses
        the reader; the extension matters only to name what a damaged file should be.
    mmap : bool, optional
        .npy only: return a read-only :class:`numpy.memmap` of the file instead of reading
        it into memory.
    key : str, optional
        .npz and zarr groups: return only the array of this name.

    Returns
    -------
    numpy.ndarray or dict of str to numpy.ndarray
        An array for a .npy, for an .npz holding only 'arr_0' (a lone array, as :func:`save`
        and ``np.savez(file, array)`` write it), for a zarr array, and for ``key``; else a
        dict of every array (in a zarr group: the arrays directly in it; subgroups are not
        read).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    npaccel.data._npy.NpyError
        A damaged, truncated or non-.npy file (a ValueError; from :func:`open_npy`).
    StoreError
        A damaged .npz (not a zip, truncated, a member truncated or not a .npy array) or
        zarr store (metadata missing or damaged, chunks damaged or missing), or a file
        that is none of the three. A ValueError; the message names the file.
    ValueError
        If ``mmap`` is True for .npz or zarr, or ``key`` names no array in the file.
    ImportError
        For a zarr store without zarr 3 installed.

    Notes
    -----
    A zarr array written by :func:`save` is marked as having every chunk stored, and is
    refused if some are missing (zarr itself would fill them with the fill value). Stores
    written otherwise may legitimately omit chunks and are not checked.
    """
    path = Path(path)
    name = str(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"{name!r}: no such file or directory")
    fmt = _detect(path)
    if mmap and fmt != "npy":
        raise ValueError(f"`mmap=True` needs a .npy file; {name!r} is {fmt}, which is read "
                         "into memory: pass mmap=False, or save it as .npy")
    if fmt == "npy":
        if key is not None:
            raise ValueError(f"`key` {key!r} given, but {name!r} is a .npy file holding one "
                             "array: pass key=None")
        if mmap:
            return open_npy(path, "r")
        npy_header(path)  # the checks open_npy makes, with its errors
        return np.load(path, allow_pickle=False)
    if fmt == "npz":
        return _load_npz(path, key)
    return _load_zarr(path, key)


def _detect(path: Path) -> str:
    """The format of ``path`` from its content; the extension's for what cannot be told."""
    implied = EXTENSIONS.get(path.suffix.lower())
    if path.is_dir():
        return "zarr" if implied in (None, "zarr") else implied
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except PermissionError:
        raise PermissionError(f"{str(path)!r} cannot be read: permission denied") from None
    if head == b"\x93NUMPY":
        return "npy"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):  # a zip: with members, or empty
        return "npz"
    if implied is not None:
        return implied  # its reader names what is wrong
    raise StoreError(f"{str(path)!r} is neither a .npy file nor an .npz archive (its first "
                     f"bytes are {head!r}) nor a zarr directory")


def _load_npz(path: Path, key: str | None) -> np.ndarray | dict[str, np.ndarray]:
    name = str(path)
    try:
        archive = zipfile.ZipFile(path)
    except IsADirectoryError:
        raise StoreError(f"{name!r} is a directory, not an .npz file") from None
    except PermissionError:
        raise PermissionError(f"{name!r} cannot be read: permission denied") from None
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        what = "is empty (0 bytes)" if path.stat().st_size == 0 else "is truncated or damaged"
        raise StoreError(f"{name!r} {what}: not a readable zip archive ({exc}); an .npz file "
                         "is one, save it again") from None
    with archive:
        members = {}
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise StoreError(f"{name!r}: the member {info.filename!r} is not a .npy array "
                                 "(an .npz holds only .npy members)")
            members[info.filename.removesuffix(".npy")] = info
        if key is not None:
            if key not in members:
                raise ValueError(f"`key` {key!r} is not in {name!r}; it holds "
                                 f"{sorted(members)}")
            return _read_member(archive, members[key], name)
        if list(members) == [SINGLE_KEY]:
            return _read_member(archive, members[SINGLE_KEY], name)
        return {k: _read_member(archive, info, name) for k, info in members.items()}


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> np.ndarray:
    label = f"{name!r}: the member {info.filename!r}"
    try:
        with archive.open(info) as member:
            array = npy_format.read_array(member, allow_pickle=False)
            trailing = len(member.read())  # reading to the end also checks the CRC
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise StoreError(f"{label} is truncated or damaged ({exc}); save the file "
                         "again") from None
    except ValueError as exc:  # numpy's: a bad header, too few bytes, Python objects
        what = "is truncated" if str(exc).startswith("EOF") else "is not a usable .npy array"
        raise StoreError(f"{label} {what} ({exc})") from None
    if trailing:
        raise StoreError(f"{label} has {trailing} bytes after its array: it is damaged")
    return array


def _load_zarr(path: Path, key: str | None) -> np.ndarray | dict[str, np.ndarray]:
    name = str(path)
    if not path.is_dir():
        raise StoreError(f"{name!r} is a file; a zarr store is a directory")
    if not _is_zarr_store(path):
        raise StoreError(f"{name!r} is not a zarr store: it has no zarr metadata (zarr.json, "
                         "or .zarray/.zgroup for zarr 2); was it copied only in part?")
    zarr = _import_zarr()
    try:
        node = zarr.open(store=zarr.storage.LocalStore(path, read_only=True), mode="r")
    except MemoryError:
        raise
    except Exception as exc:  # zarr's errors, JSON and validation errors on bad metadata
        raise StoreError(f"{name!r}: its zarr metadata is damaged ({type(exc).__name__}: "
                         f"{exc})") from None
    if isinstance(node, zarr.Array):
        if key is not None:
            raise ValueError(f"`key` {key!r} given, but {name!r} is a zarr array, not a group: "
                             "pass key=None")
        return _read_zarr(node, name, "the array")
    arrays = dict(node.arrays())
    if key is not None:
        if key not in arrays:
            raise ValueError(f"`key` {key!r} is not in {name!r}; it holds {sorted(arrays)}")
        return _read_zarr(arrays[key], name, f"array {key!r}")
    return {k: _read_zarr(a, name, f"array {k!r}") for k, a in arrays.items()}


def _read_zarr(array: Any, name: str, label: str) -> np.ndarray:
    complete = array.attrs.get("npaccel", {})
    if isinstance(complete, dict) and complete.get("all_chunks_written"):
        stored, expected = array.nchunks_initialized, array.nchunks
        if stored < expected:
            raise StoreError(f"{name!r}: {label} has {expected - stored} of its {expected} "
                             "chunks missing; the store is incomplete (copied only in part?)")
    try:
        return np.asarray(array[...])
    except MemoryError:
        raise
    except Exception as exc:  # the codecs' errors on damaged chunks
        raise StoreError(f"{name!r}: the chunks of {label} cannot be decoded "
                         f"({type(exc).__name__}: {exc}); the store is damaged") from None
