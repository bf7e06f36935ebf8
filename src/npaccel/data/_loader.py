"""Shuffled batches from aligned arrays on disk, at the disk's speed: :class:`ArrayLoader`.

A memory map looks like the obvious way to feed training from a file larger than memory,
but ``mm[random_indices]`` turns every sample into a page fault that reads 4 KiB at a time
with one request in flight. This loader reads the way disks like to be read instead:

* ``shuffle="block"`` (the default, after FFCV's quasi-random order): the rows are cut into
  blocks of a few MiB, the block order is shuffled, and samples are shuffled within a window
  that slides over ``window_blocks`` consecutive blocks of that order, so a batch reads from
  at most ``window_blocks + 1`` blocks. Each block is read whole: announced to the kernel
  (``POSIX_FADV_WILLNEED``, a few blocks ahead, skipped when an ``RWF_NOWAIT`` probe finds
  it cached) and gathered from the memory map with ``np.take(..., out=)`` (``read="mmap"``,
  one copy), or read with one ``preadv`` into a staging ring by an I/O thread and gathered
  from there (``read="pread"``, two copies, bounded memory, clean errors).
* ``shuffle="full"``: a uniform random partition into batches; each batch's rows are
  gathered in file order from the map (marked ``MADV_RANDOM``), their pages announced a few
  batches ahead when they are not cached, so the disk sees many requests at once.
* ``shuffle="none"``: file order (``MADV_SEQUENTIAL``, ``POSIX_FADV_SEQUENTIAL``).

A background thread gathers batches into a ring of reused buffers (a second one reads
blocks or sends hints), so nothing is allocated per batch; copies and reads release the
GIL. Every order is a pure function of ``(seed, epoch)``.
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import queue
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from npaccel.data._npy import open_npy

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "DEFAULT_WINDOW_BLOCKS",
    "READ_MODES",
    "SHUFFLE_MODES",
    "THREAD_PREFIX",
    "ArrayLoader",
    "DeviceIterator",
    "LoaderIterator",
]

DEFAULT_BLOCK_BYTES = 8 * 2**20
DEFAULT_WINDOW_BLOCKS = 8
SHUFFLE_MODES = ("block", "full", "none")
READ_MODES = ("mmap", "pread")
THREAD_PREFIX = "npaccel-loader"
READ_AHEAD_BLOCKS = 2  # blocks read or announced ahead of those a batch can touch
HINT_AHEAD_BATCHES = 4  # how far ahead full shuffle announces its rows to the kernel
_CHUNK_BATCHES = 16  # block plan: batches are cut from index arrays at least this long
_CHUNK_ROWS = 2**18  # block plan: rows of the segments generated together
_PROBE_PAGES = 4  # pages of a block or batch checked for being cached before hinting it
_JOIN_TIMEOUT_S = 30.0
_POLL_S = 0.5

ArraySource = str | os.PathLike | np.ndarray


# ------------------------------------------------------------------------ sources


@dataclass(frozen=True, eq=False)
class _Source:
    """One input array. ``path`` is set for a C-contiguous, shared map of a named file (a
    .npy path or such an np.memmap): its rows start at byte ``offset`` of that file, which
    is checked, announced to the kernel and, with ``read='pread'``, read with ``preadv``.
    Otherwise (and for ``read='mmap'`` gathers) rows come from ``array``."""

    name: str
    array: np.ndarray
    path: str | None = None
    offset: int = 0
    mapping: mmap.mmap | None = None

    @property
    def row_bytes(self) -> int:
        return self.array.dtype.itemsize * math.prod(self.array.shape[1:])

    def __reduce__(self) -> tuple[Any, ...]:
        # A pickled loader (spawned DataLoader workers) re-maps the file instead of copying it.
        if self.path is None:
            return (_Source, (self.name, self.array))
        return (_remapped, (self.name, self.path, self.offset, self.array.dtype,
                            self.array.shape))  # fmt: skip


def _remapped(name: str, path: str, offset: int, dtype: np.dtype,
              shape: tuple[int, ...]) -> _Source:  # fmt: skip
    array = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    return _Source(name, array, path, offset, getattr(array, "_mmap", None))


def _open_sources(arrays: Any) -> tuple[list[_Source], bool]:
    """The sources and whether a single array (not a sequence) was given."""
    if isinstance(arrays, (str, os.PathLike, np.ndarray, np.generic)):
        return [_open_source("arrays", arrays)], True
    if not isinstance(arrays, Sequence) or isinstance(arrays, bytes):
        raise TypeError("`arrays` must be an array, a .npy path, or a list/tuple of them; "
                        f"got {type(arrays).__name__}")  # fmt: skip
    if len(arrays) == 0:
        raise ValueError("`arrays` is empty; give at least one array or .npy path")
    sources = [_open_source(f"arrays[{i}]", item) for i, item in enumerate(arrays)]
    rows = len(sources[0].array)
    for source in sources[1:]:
        if len(source.array) != rows:
            raise ValueError(f"all arrays must have the same number of rows (first axis): "
                             f"{source.name} has {len(source.array)}, "
                             f"{sources[0].name} has {rows}")  # fmt: skip
    return sources, False


def _open_source(label: str, item: Any) -> _Source:
    if isinstance(item, np.generic):  # a NumPy scalar: refused below as 0-d
        item = np.asarray(item)
    if isinstance(item, (str, os.PathLike)):
        array = open_npy(item)
        name = f"{label} ({os.fspath(item)!r})"
    elif isinstance(item, np.ndarray):
        array = item
        filename = getattr(item, "filename", None)
        name = f"{label} ({os.fspath(filename)!r})" if filename else label
    else:
        raise TypeError(f"`{label}` must be a NumPy array, an np.memmap or a .npy path; "
                        f"got {type(item).__name__}")  # fmt: skip
    if array.ndim == 0:
        raise ValueError(f"`{label}` is 0-d (shape ()); the loader needs rows along the "
                         "first axis: give an array of at least 1 dimension")  # fmt: skip
    if array.dtype.hasobject:
        raise TypeError(f"`{label}` has dtype {array.dtype}, which holds Python objects; "
                        "give a numeric or fixed-size dtype")  # fmt: skip
    mapping = getattr(array, "_mmap", None) if isinstance(array, np.memmap) else None
    path, offset = _file_location(array, name) if mapping is not None else (None, 0)
    return _Source(name, array, path, offset, mapping)


def _file_location(array: np.memmap, name: str) -> tuple[str | None, int]:
    """``(path, byte offset of row 0)`` when the rows can be read with ``preadv``: a
    C-contiguous, shared (not copy-on-write) map of a named file; else ``(None, 0)``."""
    filename = getattr(array, "filename", None)
    if (filename is None or array.mode == "c" or not array.flags.c_contiguous
            or array.nbytes == 0):  # fmt: skip
        return None, 0
    base = np.frombuffer(array._mmap, dtype=np.uint8).ctypes.data
    map_start = array.offset - array.offset % mmap.ALLOCATIONGRANULARITY
    offset = map_start + (array.ctypes.data - base)
    size = os.stat(filename).st_size
    if size < offset + array.nbytes:
        raise ValueError(f"{name} maps bytes {offset}..{offset + array.nbytes} but the file "
                         f"has {size} bytes: it was truncated after it was mapped")
    return os.fspath(filename), offset


# -------------------------------------------------------------------- validation


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}; got {value!r}")
    return int(value)


def _check_shuffle(shuffle: Any) -> str:
    if shuffle is True:
        return "block"
    if shuffle is False:
        return "none"
    if isinstance(shuffle, str) and shuffle in SHUFFLE_MODES:
        return shuffle
    raise ValueError("`shuffle` must be one of {'block', 'full', 'none', True, False}; "
                     f"got {shuffle!r}")  # fmt: skip


def _check_seed(seed: Any) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy)
    return _check_int("seed", seed, 0)


def _batch_count(rows: int, batch_size: int, drop_last: bool) -> int:
    return rows // batch_size if drop_last else -(-rows // batch_size)


def _block_bounds(rows: int, block_rows: int) -> np.ndarray:
    """Row boundaries of ``max(1, rows // block_rows)`` blocks of near-equal size, each at
    least ``block_rows`` long (``rows`` < ``block_rows`` gives one short block)."""
    if rows == 0:
        return np.zeros(1, dtype=np.int64)
    blocks = max(1, rows // block_rows)
    return np.arange(blocks + 1, dtype=np.int64) * rows // blocks


# ------------------------------------------------------------------------- plans


class _Step(NamedTuple):
    """One batch of a plan: ``size`` rows, either ``rows`` (file row numbers, in yield
    order) or the range starting at ``start``; ``local``: the same rows in the staging
    ring; ``lo``..``hi``: the block-order positions they come from (block shuffle)."""

    size: int
    rows: np.ndarray | None = None
    start: int = 0
    local: np.ndarray | None = None
    lo: int = 0
    hi: int = -1


class _Plan:
    """The order of one epoch: which rows each batch holds."""

    def __init__(self, rows: int, batch_size: int, drop_last: bool) -> None:
        self.rows = rows
        self.batch_size = batch_size
        self.count = _batch_count(rows, batch_size, drop_last)

    def size(self, m: int) -> int:
        return min(self.batch_size, self.rows - m * self.batch_size)

    def steps(self, batches: range) -> Iterator[_Step]:
        raise NotImplementedError


class _SequentialPlan(_Plan):
    def steps(self, batches: range) -> Iterator[_Step]:
        for m in batches:
            yield _Step(self.size(m), start=m * self.batch_size)


class _FullPlan(_Plan):
    def __init__(self, rows: int, batch_size: int, drop_last: bool,
                 rng: np.random.Generator) -> None:  # fmt: skip
        super().__init__(rows, batch_size, drop_last)
        self.permutation = rng.permutation(rows)

    def steps(self, batches: range) -> Iterator[_Step]:
        for m in batches:
            start = m * self.batch_size
            rows = np.sort(self.permutation[start:start + self.size(m)])
            yield _Step(len(rows), rows=rows)


class _BlockPlan(_Plan):
    """Block order shuffled, samples shuffled within a window sliding over it.

    The block at order position ``p`` is shuffled and dealt into ``window`` near-equal
    groups (``np.array_split`` sizes); group ``j`` goes to segment ``p + j``. Segment ``s``
    is thus a shuffle of one group from each of blocks ``s - window + 1 .. s``, and a block's
    rows are spread over ``window`` consecutive segments. Batches are consecutive runs of
    the segment stream. Blocks hold at least ``batch_size`` rows, so a full segment (one
    group of each index) holds at least a batch and a batch spans at most two segments:
    its rows come from at most ``window + 1`` consecutive blocks of the block order.
    """

    def __init__(self, bounds: np.ndarray, batch_size: int, drop_last: bool, window: int,
                 rng: np.random.Generator, slots: int) -> None:  # fmt: skip
        super().__init__(int(bounds[-1]), batch_size, drop_last)
        self.blocks = len(bounds) - 1
        self.window = window = max(1, min(window, self.blocks))  # wider mixes no more
        self.slots = slots
        self.rng = rng
        self.order = rng.permutation(self.blocks)
        self.starts = bounds[:-1][self.order]
        self.lengths = np.diff(bounds)[self.order]
        self.capacity = int(self.lengths.max(initial=0))
        j = np.arange(window)
        groups = self.lengths[:, None] // window + (j < self.lengths[:, None] % window)
        self.group_bounds = np.concatenate(
            [np.zeros((self.blocks, 1), np.int64), np.cumsum(groups, axis=1)], axis=1)
        segments = np.zeros(self.blocks + window - 1, dtype=np.int64)
        for k in range(window):
            segments[k:k + self.blocks] += groups[:, k]
        segment_ends = np.cumsum(segments)
        first = np.arange(self.count, dtype=np.int64) * batch_size
        last = np.minimum(first + batch_size, self.rows) - 1
        self.lo = np.maximum(np.searchsorted(segment_ends, first, side="right") - window + 1, 0)
        self.hi = np.minimum(np.searchsorted(segment_ends, last, side="right"), self.blocks - 1)

    def span(self, m: int) -> tuple[int, int]:
        """Block-order positions ``lo..hi`` that batch ``m`` may read (monotone in m)."""
        return int(self.lo[m]), int(self.hi[m])

    def _segments(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(file rows, staging rows)`` of consecutive segments, a chunk at a time (each
        chunk vectorised: its rows, their segment, one stable sort by segment of a random
        permutation, which shuffles every segment)."""
        window, rng, blocks = self.window, self.rng, self.blocks
        total = blocks + window - 1
        per_chunk = int(min(255, max(1, _CHUNK_ROWS // max(self.capacity, 1))))
        shuffled: dict[int, np.ndarray] = {}
        for c0 in range(0, total, per_chunk):
            c1 = min(c0 + per_chunk, total)
            for p in range(c0, min(c1, blocks)):
                shuffled[p] = rng.permutation(int(self.lengths[p]))
            rows, local, segment = [], [], []
            staged = self.slots > 0
            for p in range(max(0, c0 - window + 1), min(c1, blocks)):
                j0, j1 = max(0, c0 - p), min(window, c1 - p)
                a, b = self.group_bounds[p, j0], self.group_bounds[p, j1]
                offsets = shuffled[p][a:b]
                rows.append(offsets + self.starts[p])
                if staged:
                    local.append(offsets + (p % self.slots) * self.capacity)
                segment.append(np.repeat(np.arange(p + j0 - c0, p + j1 - c0, dtype=np.uint8),
                                         np.diff(self.group_bounds[p, j0:j1 + 1])))
            for p in range(max(0, c0 - window + 1), c1 - window + 1):
                del shuffled[p]  # its last group was in this chunk
            if rows:
                rows_c, segment_c = np.concatenate(rows), np.concatenate(segment)
                mix = rng.permutation(len(rows_c))
                order = mix[np.argsort(segment_c[mix], kind="stable")]
                yield rows_c[order], np.concatenate(local)[order] if staged else rows_c[:0]

    def steps(self, batches: range) -> Iterator[_Step]:
        segments = self._segments()
        rows = local = np.zeros(0, dtype=np.int64)
        at, staged = 0, self.slots > 0
        for m in range(batches.stop):
            size = self.size(m)
            if len(rows) - at < size:  # refill with segments worth several batches at once
                rows_parts, local_parts = [rows[at:]], [local[at:]]
                held = len(rows) - at
                while held < max(size, _CHUNK_BATCHES * self.batch_size):
                    piece = next(segments, None)
                    if piece is None:
                        break
                    rows_parts.append(piece[0])
                    local_parts.append(piece[1])
                    held += len(piece[0])
                rows, local, at = np.concatenate(rows_parts), np.concatenate(local_parts), 0
            if m >= batches.start:
                yield _Step(size, rows[at:at + size], 0,
                            local[at:at + size] if staged else None,
                            int(self.lo[m]), int(self.hi[m]))  # fmt: skip
            at += size


# ------------------------------------------------------------------------ reading


def _advise(mapping: mmap.mmap | None, name: str) -> None:
    """``mapping.madvise(mmap.<name>)`` where the OS and Python offer it."""
    advice = getattr(mmap, name, None)
    if mapping is None or advice is None or not hasattr(mapping, "madvise"):
        return
    with contextlib.suppress(OSError, ValueError):  # a closed map, a kernel saying no
        mapping.madvise(advice)


def _fadvise(fd: int, offset: int, length: int, name: str) -> None:
    advice = getattr(os, name, None)
    if advice is None or not hasattr(os, "posix_fadvise"):
        return
    with contextlib.suppress(OSError):
        os.posix_fadvise(fd, offset, length, advice)


def _read_at(fd: int, view: memoryview, offset: int) -> int:
    if hasattr(os, "preadv"):
        return os.preadv(fd, [view], offset)
    if hasattr(os, "pread"):
        data = os.pread(fd, len(view), offset)
    else:  # Windows: only this thread reads this descriptor
        os.lseek(fd, offset, os.SEEK_SET)
        data = os.read(fd, len(view))
    view[:len(data)] = data
    return len(data)


def _read_exact(fd: int, out: np.ndarray, offset: int, name: str) -> None:
    """Fill the C-contiguous ``out`` with the file's bytes at ``offset`` (GIL released)."""
    view = memoryview(out.reshape(-1).view(np.uint8))
    done = 0
    while done < len(view):
        got = _read_at(fd, view[done:], offset + done)
        if got == 0:
            raise OSError(f"{name} ends at byte {offset + done}, but the loader needs bytes "
                          f"up to {offset + len(view)}: the file was truncated after the "
                          "loader opened it")  # fmt: skip
        done += got


def _page_runs(starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Merged page-aligned byte ranges ``[begin, end)`` covering sorted ``starts`` + length."""
    page = mmap.PAGESIZE
    if len(starts) == 0:
        return starts[:0], starts[:0]
    first = starts // page
    end = (starts + length + page - 1) // page
    new = np.ones(len(first), dtype=bool)
    new[1:] = first[1:] > end[:-1]
    heads = np.flatnonzero(new)
    tails = np.append(heads[1:] - 1, len(first) - 1)
    return first[heads] * page, end[tails] * page


class _StagingPool:
    """Staging buffers kept between the iterations of one loader: fresh ones would cost a
    page fault per 4 KiB touched, tens of MiB, every epoch. Pickles as an empty pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[np.ndarray] = []

    def __reduce__(self) -> tuple[Any, ...]:
        return (_StagingPool, ())

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        with self._lock:
            for i, array in enumerate(self._free):
                if array.shape == shape and array.dtype == dtype:
                    return self._free.pop(i)
        return np.empty(shape, dtype)

    def give(self, array: np.ndarray) -> None:
        with self._lock:
            if len(self._free) < 16:
                self._free.append(array)


class _Reader:
    """The reads of one iteration: descriptors, hints, the staging ring (``read='pread'``
    with block shuffle), and the gathers into batch buffers."""

    def __init__(self, sources: list[_Source], plan: _Plan, mode: str, read: str,
                 pool: _StagingPool) -> None:  # fmt: skip
        self.sources = sources
        self.plan = plan
        self.mode = mode
        self.read = read
        self.pool = pool
        self.fds: list[int | None] = [None] * len(sources)
        self.staging: list[np.ndarray | None] = [None] * len(sources)
        self.advised: list[mmap.mmap] = []
        self.probe = memoryview(bytearray(1))  # RWF_NOWAIT probes: one byte of a page
        try:
            for i, source in enumerate(sources):
                self._prepare(i, source)
        except BaseException:
            self.close()
            raise

    @property
    def files(self) -> bool:
        """Whether any source is read through a file descriptor (reads or hints)."""
        return any(fd is not None for fd in self.fds)

    @property
    def staged(self) -> bool:
        """Whether blocks are read into a staging ring (by the I/O thread)."""
        return any(staging is not None for staging in self.staging)

    def _prepare(self, i: int, source: _Source) -> None:
        mapped_reads = source.path is None or self.read == "mmap" or self.mode == "full"
        if source.mapping is not None and mapped_reads:
            advice = {"full": "MADV_RANDOM", "none": "MADV_SEQUENTIAL"}.get(self.mode)
            if advice is not None:
                _advise(source.mapping, advice)
                self.advised.append(source.mapping)
        if source.path is None or source.row_bytes == 0:
            return
        size = os.stat(source.path).st_size
        if size < source.offset + source.array.nbytes:  # mapped reads would die of SIGBUS
            raise OSError(f"{source.name} has {size} bytes now, but its rows end at byte "
                          f"{source.offset + source.array.nbytes}: the file was truncated "
                          "after the loader opened it")  # fmt: skip
        fd = os.open(source.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self.fds[i] = fd
        if self.mode == "none":
            _fadvise(fd, source.offset, 0, "POSIX_FADV_SEQUENTIAL")
        elif self.mode == "block" and self.read == "pread":
            assert isinstance(self.plan, _BlockPlan)
            rows = self.plan.slots * self.plan.capacity
            self.staging[i] = self.pool.take((rows, *source.array.shape[1:]), source.array.dtype)

    def close(self) -> None:
        for i, fd in enumerate(self.fds):
            if fd is not None:
                self.fds[i] = None
                os.close(fd)
        for mapping in self.advised:
            _advise(mapping, "MADV_NORMAL")
        self.advised.clear()
        for i, staging in enumerate(self.staging):
            if staging is not None:
                self.staging[i] = None
                self.pool.give(staging)

    def _block_bytes(self, source: _Source, p: int) -> tuple[int, int]:
        assert isinstance(self.plan, _BlockPlan)
        start, length = int(self.plan.starts[p]), int(self.plan.lengths[p])
        return source.offset + start * source.row_bytes, length * source.row_bytes

    def hint_block(self, p: int) -> None:
        """Ask the kernel to start reading the block at order position ``p`` (if any)."""
        assert isinstance(self.plan, _BlockPlan)
        if not 0 <= p < self.plan.blocks:
            return
        for i, source in enumerate(self.sources):
            fd = self.fds[i]
            if fd is None:
                continue
            offset, length = self._block_bytes(source, p)
            probes = [offset + k * length // _PROBE_PAGES for k in range(_PROBE_PAGES)]
            if not self._cached(fd, probes):  # else the hint would only cost time
                _fadvise(fd, offset, length, "POSIX_FADV_WILLNEED")

    def load_block(self, p: int) -> None:
        """Read the block at order position ``p`` into its staging slot, one ``preadv``."""
        plan = self.plan
        assert isinstance(plan, _BlockPlan)
        for i, source in enumerate(self.sources):
            fd, staging = self.fds[i], self.staging[i]
            if fd is None or staging is None:
                continue
            offset, _ = self._block_bytes(source, p)
            slot = (p % plan.slots) * plan.capacity
            _read_exact(fd, staging[slot:slot + int(plan.lengths[p])], offset, source.name)

    def _cached(self, fd: int, offsets: list[int]) -> bool:
        """Whether the pages at these byte offsets are in the page cache (``RWF_NOWAIT``
        reads fail rather than wait for the disk); False where the kernel cannot tell."""
        flag = getattr(os, "RWF_NOWAIT", None)
        if flag is None or not hasattr(os, "preadv"):
            return False
        for offset in offsets:
            try:
                if os.preadv(fd, [self.probe], offset, flag) <= 0:
                    return False
            except OSError:  # BlockingIOError: not cached; EOPNOTSUPP: cannot tell
                return False
        return True

    def hint_rows(self, step: _Step) -> None:
        """Tell the kernel which pages a full-shuffle batch will read, so they are fetched
        together, many requests in flight, before the gather faults on them; skipped when
        a probe finds the rows cached (the hints would only cost time)."""
        assert step.rows is not None
        sample = step.rows[:: max(1, len(step.rows) // _PROBE_PAGES)][:_PROBE_PAGES]
        for i, source in enumerate(self.sources):
            fd = self.fds[i]
            if fd is None:
                continue
            starts = source.offset + sample * source.row_bytes
            if self._cached(fd, starts.tolist()):
                continue
            begins, ends = _page_runs(source.offset + step.rows * source.row_bytes,
                                      source.row_bytes)  # fmt: skip
            for begin, end in zip(begins.tolist(), ends.tolist(), strict=True):
                _fadvise(fd, begin, end - begin, "POSIX_FADV_WILLNEED")

    def gather(self, step: _Step, outs: tuple[np.ndarray, ...]) -> None:
        """Fill ``outs[i][:step.size]`` with the step's rows of source ``i``."""
        for i, source in enumerate(self.sources):
            out = outs[i][:step.size]
            fd, staging = self.fds[i], self.staging[i]
            if step.rows is None:  # sequential
                stop = step.start + step.size
                if fd is None or self.read == "mmap":
                    np.copyto(out, source.array[step.start:stop])
                else:
                    _read_exact(fd, out, source.offset + step.start * source.row_bytes,
                                source.name)  # fmt: skip
            elif staging is not None:
                np.take(staging, step.local, axis=0, out=out, mode="clip")
            else:  # mode="clip": indices are valid, and "raise" would buffer `out`
                np.take(source.array, step.rows, axis=0, out=out, mode="clip")


# ---------------------------------------------------------------------- pipeline


class _Pipeline:
    """The state shared by the consumer and the prefetch threads of one iteration.

    Threads hand work over through ``queue.SimpleQueue`` tokens (cheap, C-level): the
    consumer grants the gather thread one batch per ``next()`` (``prefetch`` granted up
    front); the gather thread passes finished batches to the consumer and frees staging
    slots for the I/O thread, which reports each block it loads. ``None`` in a queue means
    stop. It holds no reference to the :class:`LoaderIterator`, so an abandoned iterator is
    collected and its finalizer stops the threads.
    """

    def __init__(self, sources: list[_Source], plan: _Plan, mode: str, read: str,
                 batches: range, prefetch: int, copy: bool, pool: _StagingPool,
                 gather_threads: int = 1) -> None:  # fmt: skip
        self.plan = plan
        self.batches = batches
        self.prefetch = prefetch
        self.copy = copy
        self.shapes = [(s.array.shape[1:], s.array.dtype) for s in sources]
        rows = min(plan.batch_size, plan.rows)
        self.ring = [] if copy else [
            tuple(np.empty((rows, *shape), dtype) for shape, dtype in self.shapes)
            for _ in range(2 * prefetch + 1)]  # fmt: skip
        self.ready: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.credits: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.loaded: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.freed: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.stopped = False
        self.filled = -1  # the last batch gathered (read by the hint thread)
        self.threads: list[threading.Thread] = []
        self._steps: Iterator[_Step] | None = None
        self._loaded = -1  # inline mode: the last block loaded
        self._hinted = -1  # block shuffle from the mapping: the last block announced
        self.reader = _Reader(sources, plan, mode, read, pool)  # opens files: nothing fails after
        blocks, files = isinstance(plan, _BlockPlan), self.reader.files
        self.block_mode = blocks and self.reader.staged  # an I/O thread reads blocks
        self.block_hints = blocks and files and not self.reader.staged
        self.hinting = isinstance(plan, _FullPlan) and files and prefetch > 0
        # Gathers from the map or memory run on several threads (a scattered-row gather is
        # bound by memory latency, not bandwidth: two threads move about twice as much);
        # staged block reads keep one, whose order the I/O thread's slots follow.
        self.gatherers = 1 if self.block_mode else max(1, min(gather_threads, prefetch))
        self._order = threading.Lock()  # the multi-gatherer claim of the next batch
        self._next_k = 0
        self._early: dict[int, Any] = {}  # batches that arrived before the one asked for

    # ---- lifecycle

    def start(self) -> None:
        if (self.block_mode or self.block_hints) and len(self.batches):
            self._loaded = self._hinted = self._span(0)[0] - 1
        if self.prefetch == 0 or not len(self.batches):
            self._steps = self.plan.steps(self.batches)
            return
        for _ in range(self.prefetch):
            self.credits.put(True)
        if self.gatherers == 1:
            targets = [("gather", self._gather_loop)]
        else:
            self._worker_steps = self.plan.steps(self.batches)
            targets = [(f"gather{i}", self._gather_worker) for i in range(self.gatherers)]
        if self.block_mode:
            assert isinstance(self.plan, _BlockPlan)
            for _ in range(self.plan.slots):
                self.freed.put(True)
            targets.append(("io", self._block_io_loop))
        elif self.hinting:
            for _ in range(HINT_AHEAD_BATCHES + 1):
                self.freed.put(True)
            targets.append(("io", self._hint_loop))
        for label, target in targets:
            thread = threading.Thread(target=self._guarded, args=(target,), daemon=True,
                                      name=f"{THREAD_PREFIX}-{label}")  # fmt: skip
            self.threads.append(thread)
            thread.start()

    def _wake_all(self) -> None:
        for tokens in (self.credits, self.loaded, self.freed):
            for _ in range(max(1, len(self.threads))):  # every thread that may be waiting
                tokens.put(None)

    def shutdown(self) -> None:
        self.stopped = True
        self._wake_all()
        current = threading.current_thread()
        for thread in self.threads:
            if thread is not current:
                thread.join(_JOIN_TIMEOUT_S)
        if not any(thread.is_alive() for thread in self.threads):
            self.reader.close()

    def _guarded(self, target: Any) -> None:
        try:
            target()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            if hasattr(exc, "add_note"):  # Python >= 3.11
                exc.add_note("(raised in the npaccel.data.ArrayLoader prefetch thread "
                             f"{threading.current_thread().name!r})")
            self.ready.put(exc)  # before `stopped`, which the waiting consumer checks
            self.stopped = True
            self._wake_all()

    def _take(self, tokens: queue.SimpleQueue[Any]) -> bool:
        """Wait for a token; False when told to stop."""
        return tokens.get() is not None and not self.stopped

    def _span(self, k: int) -> tuple[int, int]:
        assert isinstance(self.plan, _BlockPlan)
        return self.plan.span(self.batches[k])

    # ---- producer side

    def _produce(self, k: int, step: _Step) -> tuple[tuple[np.ndarray, ...], int]:
        outs = self._claim(k, step)
        self.reader.gather(step, outs)
        return outs, step.size

    def _claim(self, k: int, step: _Step) -> tuple[np.ndarray, ...]:
        """Announce batch k's blocks (block shuffle from the map) and pick its buffers."""
        if self.block_hints:  # the kernel reads blocks ahead while we gather from the map
            last = self._span(-1)[1]
            while self._hinted < min(step.hi + READ_AHEAD_BLOCKS, last):
                self._hinted += 1
                self.reader.hint_block(self._hinted)
        if self.copy:
            return tuple(np.empty((step.size, *shape), dtype) for shape, dtype in self.shapes)
        return self.ring[k % len(self.ring)]

    def _gather_worker(self) -> None:
        """One of several gather threads: each credit lets one batch be gathered — the next
        unclaimed one, claimed in order under a lock — so batch k still reuses the buffer
        of batch k - (2 * prefetch + 1) only after its credit (see `_gather_loop`)."""
        while self._take(self.credits):
            with self._order:
                k = self._next_k
                if k >= len(self.batches):
                    return
                self._next_k = k + 1
                step = next(self._worker_steps)
                outs = self._claim(k, step)
            self.reader.gather(step, outs)
            self.ready.put((k, (outs, step.size)))
            self.filled = max(self.filled, k)
            if self.hinting:
                self.freed.put(True)

    def _gather_loop(self) -> None:
        loaded = lo = self._loaded
        lo += 1
        last = self._span(-1)[1] if self.block_mode else 0
        for k, step in enumerate(self.plan.steps(self.batches)):
            # Batch k reuses the buffer of batch k - (2 * prefetch + 1), which the contract
            # frees once the consumer has asked for batch k - prefetch: its credit.
            if not self._take(self.credits):
                return
            while self.block_mode and loaded < step.hi:
                if not self._take(self.loaded):
                    return
                loaded += 1
            self.ready.put((k, self._produce(k, step)))
            self.filled = k
            if self.block_mode:  # blocks before the next batch's lo are never read again
                next_lo = self._span(k + 1)[0] if k + 1 < len(self.batches) else last + 1
                for _ in range(next_lo - lo):
                    self.freed.put(True)
                lo = next_lo
            elif self.hinting:
                self.freed.put(True)

    def _block_io_loop(self) -> None:
        assert isinstance(self.plan, _BlockPlan)
        first, last = self._span(0)[0], self._span(-1)[1]
        for p in range(first, min(first + READ_AHEAD_BLOCKS, last + 1)):
            self.reader.hint_block(p)
        for p in range(first, last + 1):
            # slot p % slots held block p - slots, freed once no batch needs it
            if not self._take(self.freed):
                return
            if p + READ_AHEAD_BLOCKS <= last:  # keep the disk busy while this one is copied
                self.reader.hint_block(p + READ_AHEAD_BLOCKS)
            self.reader.load_block(p)
            self.loaded.put(True)

    def _hint_loop(self) -> None:
        for k, step in enumerate(self.plan.steps(self.batches)):
            if not self._take(self.freed):  # at most HINT_AHEAD_BATCHES ahead of the gather
                return
            if k > self.filled:  # else the gather got there first: the hint is too late
                self.reader.hint_rows(step)

    # ---- consumer side

    def next_batch(self, k: int) -> tuple[tuple[np.ndarray, ...], int]:
        if not self.threads:
            return self._next_inline(k)
        self.credits.put(True)
        while k not in self._early:
            item = self._next_ready()
            if isinstance(item, BaseException):
                raise item
            self._early[item[0]] = item[1]  # several gatherers finish out of order
        return self._early.pop(k)

    def _next_ready(self) -> Any:
        gatherers = self.threads[: self.gatherers]
        while True:
            try:
                return self.ready.get(timeout=_POLL_S)
            except queue.Empty:
                if not self.stopped and any(t.is_alive() for t in gatherers):
                    continue
                try:  # a thread may have put its last item just before it ended
                    return self.ready.get_nowait()
                except queue.Empty:
                    if self.stopped:  # closed from elsewhere
                        raise StopIteration from None
                    raise RuntimeError("the loader's gather thread stopped without "
                                       "producing the next batch") from None

    def _next_inline(self, k: int) -> tuple[tuple[np.ndarray, ...], int]:
        assert self._steps is not None
        step = next(self._steps)
        if self.block_mode:
            for p in range(self._loaded + 1, step.hi + 1):
                self.reader.hint_block(p + 1)
                self.reader.load_block(p)
            self._loaded = max(self._loaded, step.hi)
        return self._produce(k, step)


class LoaderIterator:
    """One pass (epoch) over an :class:`ArrayLoader`; made by ``iter(loader)``.

    Yields what the loader documents. ``close()`` (also called by ``with`` and at the end
    of the epoch) stops the prefetch threads; an iterator that is dropped unfinished is
    stopped when it is garbage-collected.

    Attributes
    ----------
    epoch : int
        The epoch whose order this pass yields.
    """

    def __init__(self, loader: ArrayLoader, epoch: int, batches: range, copy: bool) -> None:
        self.epoch = epoch
        self._single = loader._single
        self._count = len(batches)
        self._position = 0
        plan = loader._plan(epoch)
        self._pipeline = _Pipeline(loader._sources, plan, loader.shuffle, loader.read,
                                   batches, loader.prefetch, copy, loader._pool,
                                   loader.gather_threads)  # fmt: skip
        self._finalizer = weakref.finalize(self, self._pipeline.shutdown)
        self._pipeline.start()

    def __iter__(self) -> LoaderIterator:
        return self

    def __len__(self) -> int:
        return self._count

    def __next__(self) -> Any:
        k = self._position
        if k >= self._count or not self._finalizer.alive:
            self.close()
            raise StopIteration
        try:
            outs, size = self._pipeline.next_batch(k)
        except BaseException:  # an error from a thread, StopIteration, KeyboardInterrupt
            self.close()
            raise
        self._position = k + 1
        batch = tuple(out if len(out) == size else out[:size] for out in outs)
        return batch[0] if self._single else batch

    def close(self) -> None:
        """Stop the prefetch threads and close the files (idempotent)."""
        self._finalizer()

    def __enter__(self) -> LoaderIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class DeviceIterator:
    """One pass of an ``ArrayLoader(..., device='cuda')``: the host iteration's batches,
    delivered on the GPU by :func:`npaccel.cuda.to_device_batches` (which copies each host
    batch into pinned memory before asking for the next, so the host buffers' contract
    holds). Same ``epoch``, ``len()``, ``close()`` and ``with`` as `LoaderIterator`."""

    def __init__(self, host: LoaderIterator) -> None:
        from npaccel.cuda._stream import to_device_batches

        self.epoch = host.epoch
        self._host = host
        self._device = to_device_batches(host, streams=max(2, host._pipeline.prefetch + 1))

    def __iter__(self) -> DeviceIterator:
        return self

    def __len__(self) -> int:
        return len(self._host)

    def __next__(self) -> Any:
        return next(self._device)

    def close(self) -> None:
        """Stop the copies and the prefetch threads (idempotent)."""
        self._device.close()
        self._host.close()

    def __enter__(self) -> DeviceIterator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# ------------------------------------------------------------------------ loader


class ArrayLoader:
    """Shuffled batches of aligned arrays (X, y, ...) from .npy files, memmaps or memory,
    read in large blocks by background threads.

    Parameters
    ----------
    arrays : array, np.memmap, str or os.PathLike, or a sequence of them
        The arrays, aligned along the first axis (row ``i`` of each is sample ``i``). A path
        is opened with :func:`npaccel.data._npy.open_npy` (a checked, read-only memmap).
        A C-contiguous memmap (or .npy) is read as a file (``read``, hints); other arrays
        (in memory, non-contiguous, copy-on-write maps) are gathered with ``np.take``.
    batch_size : int
        Rows per batch, >= 1. The last batch is shorter unless ``drop_last``; a
        ``batch_size`` larger than the row count gives one short batch (or none).
    shuffle : {'block', 'full', 'none', True, False}, optional
        ``'block'`` (also ``True``, the default): block order shuffled, rows shuffled within
        a window sliding over ``window_blocks`` blocks of it; reads are whole blocks.
        ``'full'``: a uniform random partition of the rows into batches, each batch's rows
        in file order (random row reads, sorted). ``'none'`` (also ``False``): file order.
    seed : int, optional
        >= 0. The order of epoch ``e`` is a function of ``(seed, e)`` only. ``None`` draws a
        fresh seed, kept as ``.seed`` so that a run can be repeated.
    drop_last : bool, optional
        Skip the last, short batch.
    prefetch : int, optional
        Batches prepared ahead of the consumer by a background thread, >= 0 (default 2).
        0: no threads, every batch is read in the consumer's ``next()``.
    block_bytes : int, optional
        Bytes per block of the widest array (its row size times the rows per block),
        >= 1, default 8 MiB. Rounded down to whole rows, then raised to at least
        ``batch_size`` rows; the row count is then cut into near-equal blocks at least
        that long. Only ``'block'`` uses blocks.
    window_blocks : int, optional
        Blocks mixed together, >= 1, default 8: each batch draws about equally from this
        many consecutive blocks of the shuffled block order, and from at most
        ``window_blocks + 1``.
    read : {'mmap', 'pread'}, optional
        How block shuffle reads arrays that live in files. ``'mmap'`` (default): blocks are
        announced to the kernel ahead of use (``POSIX_FADV_WILLNEED``; the kernel reads them
        whole) and batches are gathered straight from the memory map: one copy. ``'pread'``:
        an I/O thread reads each block with one ``preadv`` into a staging ring of
        ``window_blocks + 3`` blocks per array and batches are gathered from it: two
        copies, but memory that is the loader's own and a clean ``OSError`` (not
        ``SIGBUS``) if the file shrinks during an epoch. Sequential reads use ``preadv``
        straight into the batch with ``'pread'``; full shuffle always gathers from the map.
    copy : bool, optional
        ``False`` (default): batches are views of reused buffers (see Notes).
        ``True``: every batch is a freshly allocated array that stays valid.
    gather_threads : int, optional
        Threads that gather batches from the memory map or memory, >= 1; default
        ``min(2, usable CPUs)``. A gather of scattered rows is bound by memory latency, so
        a second thread about doubles it (docs/data-loader.md); each thread fills whole
        batches, at most ``prefetch`` at once. ``read='pread'`` block shuffle uses one.
    device : {None, 'cpu', 'cuda'}, optional
        Where batches are delivered. ``None``/``'cpu'``: NumPy arrays. ``'cuda'``: CuPy
        arrays on the GPU, each one new and the caller's, moved by
        :func:`npaccel.cuda.to_device_batches` (pinned staging buffers, copies on their own
        streams overlapping the caller's work, ordered before the caller's current stream
        uses them; docs/cuda-stream.md). Needs ``npaccel[gpu]``.

    Attributes
    ----------
    rows, batch_size, shuffle, seed, drop_last, prefetch, window_blocks, read, copy, device,
    gather_threads
        The normalised arguments (``shuffle`` as one of ``SHUFFLE_MODES``; ``device`` None
        for the host).
    block_rows : int
        Minimum rows per block after rounding.
    blocks : numpy.ndarray
        Row boundaries of the blocks, ``(number of blocks + 1,)``.

    Raises
    ------
    TypeError
        An argument of the wrong type (e.g. a list of numbers as an array, a float
        ``batch_size``), or an array of Python objects.
    ValueError
        A 0-d array, arrays with different row counts, an argument out of range.
    npaccel.data._npy.NpyError
        A path that is not a usable .npy file (damaged, truncated, object dtype).

    Notes
    -----
    **Buffer contract** (``copy=False``): the thread gathers into ``2 * prefetch + 1``
    buffers, batch ``i`` into buffer ``i % (2 * prefetch + 1)``. Batch ``i`` stays valid
    until you ask for batch ``i + prefetch + 1`` (the ``next()`` call that returns it
    starts overwriting), so the current batch and the ``prefetch`` before it may be held.
    With ``prefetch=0`` a batch is valid until the next ``next()``. Each iteration has its
    own buffers: a new epoch never overwrites batches of the previous one. Keep a batch
    longer with ``batch.copy()`` or ``copy=True``.

    **Epochs**: ``set_epoch(e)`` makes the next iteration use epoch ``e``; each iteration
    then advances the epoch, so plain ``for epoch in ...: for batch in loader`` gets a new
    order each time.

    **Threads**: one gathers batches; with arrays read from files, a second reads blocks
    (``read='pread'``) or announces a full shuffle's rows. An exception in either is
    re-raised by ``next()`` (the same exception, carrying the thread's traceback). The
    threads stop when the iteration ends, on ``close()``, on leaving a ``with`` block, and
    when an unfinished iterator is garbage-collected.

    **Files**: each epoch checks that every file still holds its rows (a map of a shrunk
    file raises ``SIGBUS``); a file cut short *during* an epoch kills the process with
    ``read='mmap'`` and raises ``OSError`` with ``read='pread'``. Full shuffle marks the map
    ``MADV_RANDOM``, sequential ``MADV_SEQUENTIAL``, both reset to ``MADV_NORMAL`` after.

    Examples
    --------
    >>> import numpy as np
    >>> X, y = np.arange(20.0).reshape(10, 2), np.arange(10)
    >>> loader = ArrayLoader((X, y), 4, seed=0)
    >>> len(loader)
    3
    >>> sorted(np.concatenate([yb.copy() for _, yb in loader]).tolist()) == list(range(10))
    True
    """

    def __init__(self, arrays: ArraySource | Sequence[ArraySource], batch_size: int, *,
                 shuffle: bool | str = "block", seed: int | None = None,
                 drop_last: bool = False, prefetch: int = 2,
                 block_bytes: int = DEFAULT_BLOCK_BYTES,
                 window_blocks: int = DEFAULT_WINDOW_BLOCKS, read: str = "mmap",
                 copy: bool = False, device: str | None = None,
                 gather_threads: int | None = None) -> None:  # fmt: skip
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.shuffle = _check_shuffle(shuffle)
        self.seed = _check_seed(seed)
        self.prefetch = _check_int("prefetch", prefetch, 0)
        block_bytes = _check_int("block_bytes", block_bytes, 1)
        self.window_blocks = _check_int("window_blocks", window_blocks, 1)
        if not isinstance(read, str) or read not in READ_MODES:
            raise ValueError(f"`read` must be one of {{'mmap', 'pread'}}; got {read!r}")
        self.read = read
        for name, flag in (("drop_last", drop_last), ("copy", copy)):
            if not isinstance(flag, (bool, np.bool_)):
                raise TypeError(f"`{name}` must be True or False; got {flag!r}")
        self.drop_last, self.copy = bool(drop_last), bool(copy)
        if device not in (None, "cpu", "cuda"):
            raise ValueError(f"`device` must be one of {{None, 'cpu', 'cuda'}}; got {device!r}")
        self.device = None if device == "cpu" else device
        if gather_threads is None:
            from npaccel.threads import usable_cpus

            gather_threads = min(2, usable_cpus())
        self.gather_threads = _check_int("gather_threads", gather_threads, 1)
        self._sources, self._single = _open_sources(arrays)
        self.rows = len(self._sources[0].array)
        widest = max(source.row_bytes for source in self._sources)
        self.block_rows = max(self.batch_size, block_bytes // max(widest, 1), 1)
        self.blocks = _block_bounds(self.rows, self.block_rows)
        self._next_epoch = 0
        self._pool = _StagingPool()

    def __len__(self) -> int:
        return _batch_count(self.rows, self.batch_size, self.drop_last)

    def __repr__(self) -> str:
        return (f"ArrayLoader({len(self._sources)} array(s), rows={self.rows}, "
                f"batch_size={self.batch_size}, shuffle={self.shuffle!r}, seed={self.seed}, "
                f"next_epoch={self._next_epoch})")

    @property
    def next_epoch(self) -> int:
        """The epoch the next iteration will use."""
        return self._next_epoch

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration yield the order of ``epoch`` (>= 0)."""
        self._next_epoch = _check_int("epoch", epoch, 0)

    def __iter__(self) -> LoaderIterator | DeviceIterator:
        iteration = self._iterate()
        return iteration if self.device is None else DeviceIterator(iteration)

    def _iterate(self, batches: range | None = None, copy: bool | None = None
                 ) -> LoaderIterator:  # fmt: skip
        """An iteration over ``batches`` (default all) of the next epoch, which it uses up."""
        epoch = self._next_epoch
        self._next_epoch = epoch + 1
        batches = range(len(self)) if batches is None else batches
        return LoaderIterator(self, epoch, batches, self.copy if copy is None else copy)

    def _rng(self, epoch: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))

    def _plan(self, epoch: int) -> _Plan:
        if self.shuffle == "none":
            return _SequentialPlan(self.rows, self.batch_size, self.drop_last)
        if self.shuffle == "full":
            return _FullPlan(self.rows, self.batch_size, self.drop_last, self._rng(epoch))
        slots = 0  # no staging ring: gathers from the mapping or from memory
        if self.read == "pread" and any(s.path is not None for s in self._sources):
            slots = min(self.window_blocks + 1 + READ_AHEAD_BLOCKS, max(len(self.blocks) - 1, 1))
        return _BlockPlan(self.blocks, self.batch_size, self.drop_last, self.window_blocks,
                          self._rng(epoch), slots)  # fmt: skip

    def indices(self, epoch: int | None = None) -> np.ndarray:
        """The rows an iteration of ``epoch`` (default: the next one) yields, in order,
        without reading any data; ``len(loader)`` batches of ``batch_size`` consecutive
        entries each (the last one shorter unless ``drop_last``)."""
        epoch = self._next_epoch if epoch is None else _check_int("epoch", epoch, 0)
        plan = self._plan(epoch)
        rows = [step.rows if step.rows is not None
                else np.arange(step.start, step.start + step.size)
                for step in plan.steps(range(plan.count))]  # fmt: skip
        return np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)

    def block_order(self, epoch: int | None = None) -> np.ndarray:
        """Block numbers (into ``blocks``) in the order ``shuffle='block'`` reads them in
        ``epoch`` (default: the next one)."""
        if self.shuffle != "block":
            raise ValueError(f"block_order() describes shuffle='block'; this loader has "
                             f"shuffle={self.shuffle!r}")  # fmt: skip
        epoch = self._next_epoch if epoch is None else _check_int("epoch", epoch, 0)
        plan = self._plan(epoch)
        assert isinstance(plan, _BlockPlan)
        return plan.order.copy()
