"""Reading a memory-mapped file: sequential against random rows (numpy#13172).

The file (random bytes, written and fsync'ed once in the scratch directory) is evicted from
the page cache at the start of every call (``posix_fadvise(DONTNEED)``), so each call reads
from the device, as the first epoch of a training run does. On tmpfs, or where eviction is
not supported, reads come from memory: the case's ``cache`` parameter says which.

* sequential: the whole file, copied out in 4 MiB slices;
* random: 4 KiB rows at random positions, fancy-indexed, with the kernel's default
  read-ahead (``madvise`` normal) and with ``MADV_RANDOM`` — the hint that stops every
  small read pulling in a read-ahead window.

Bytes are the bytes asked for; the figures are not held against the memory roofline.
"""

from __future__ import annotations

import mmap
import os
import tempfile
import weakref
from collections.abc import Iterator

import numpy as np

from npaccel.bench._case import Case, check_close
from npaccel.bench._profile import Profile

ROW = 4096
SLICE = 4 << 20
RANDOM_ROWS = 2048


def _evictable(path: str) -> bool:
    """Whether DONTNEED can drop this file's pages (not on tmpfs/ramfs)."""
    try:
        import psutil

        best = ""
        fstype = ""
        for part in psutil.disk_partitions(all=True):
            if path.startswith(part.mountpoint) and len(part.mountpoint) > len(best):
                best, fstype = part.mountpoint, part.fstype
        return fstype not in {"tmpfs", "ramfs"} and hasattr(os, "posix_fadvise")
    except Exception:
        return False


def _case(pattern: str, size: int, scratch: str | None) -> Case:
    rows = size // ROW
    directory = scratch or tempfile.gettempdir()
    evict = _evictable(os.path.abspath(directory))

    def setup():
        tmp = tempfile.TemporaryDirectory(prefix="npaccel-bench-", dir=directory)
        path = os.path.join(tmp.name, "data.bin")
        data = np.random.default_rng(13).integers(0, 256, (rows, ROW), dtype=np.uint8)
        with open(path, "wb") as fh:
            data.tofile(fh)
            fh.flush()
            os.fsync(fh.fileno())
        mm = np.memmap(path, dtype=np.uint8, mode="r", shape=(rows, ROW))
        if pattern == "random_madvise" and hasattr(mmap, "MADV_RANDOM"):
            mm._mmap.madvise(mmap.MADV_RANDOM)
        fd = os.open(path, os.O_RDONLY)
        picks = np.random.default_rng(14).choice(rows, size=min(rows, RANDOM_ROWS), replace=False)
        buf = np.empty(SLICE if pattern == "sequential" else (len(picks), ROW), np.uint8)
        sums = np.zeros(rows, np.int64)

        def drop_cache():
            if evict:  # pages mapped into this process are never evicted: unmap them first
                if hasattr(mmap, "MADV_DONTNEED"):
                    mm._mmap.madvise(mmap.MADV_DONTNEED)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)

        if pattern == "sequential":
            flat = mm.reshape(-1)
            per_slice = SLICE // ROW

            def run():
                drop_cache()
                for start in range(0, flat.size, SLICE):
                    part = flat[start : start + SLICE]
                    np.copyto(buf[: part.size], part)
                    first = start // ROW
                    sums[first : first + per_slice] = buf[: part.size].reshape(-1, ROW)[:, 0]
                return sums

            def check(result):
                check_close(result, data[:, 0].astype(np.int64), rtol=0, what="first bytes")
        else:

            def run():
                drop_cache()
                np.take(mm, picks, axis=0, out=buf)
                return buf

            def check(result):
                check_close(result, data[picks], rtol=0, what="random rows")

        def close():
            os.close(fd)
            tmp.cleanup()

        weakref.finalize(run, close)
        return run, check

    moved = size if pattern == "sequential" else min(rows, RANDOM_ROWS) * ROW
    return Case(f"memmap.{pattern}", "numpy",
                {"bytes": size, "row": ROW, "cache": "cold" if evict else "memory"}, 0, moved,
                setup, scalable=False, roof="none")  # fmt: skip


def cases(profile: Profile, scratch: str | None = None) -> Iterator[Case]:
    for pattern in ("sequential", "random", "random_madvise"):
        yield _case(pattern, profile.memmap_bytes, scratch)
