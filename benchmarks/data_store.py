"""npaccel.data.save/load: compression ratio and GB/s of each format and codec, in one run.

    python benchmarks/data_store.py                      # 512 MiB of float32 per data set
    python benchmarks/data_store.py --mb 32 --json store.json --path /scratch

Two float32 data sets of ``--mb`` MiB each, shape (rows, 1024): "smooth", a sum of
sinusoids (compressible, like a simulated field), and "noisy", standard normal samples
(close to incompressible: the low mantissa bits are random). Each is written and read
back with:

* npy: ``save`` to .npy (uncompressed; the disk roof);
* np.savez_compressed: NumPy's own (zlib level 6, fixed), the slow baseline, read back
  with ``np.load``;
* npz-1, npz-6: ``save`` to .npz at deflate level 1 and 6;
* zarr-blosc-lz4, zarr-blosc-zstd, zarr-zstd: ``save`` to .zarr with that codec at its
  default level (blosc 5, zstd 3) and the default chunks (about 4 MiB).

Every write is fsynced (np.savez_compressed's too, after it returns) so all are timed to
durable storage. Each repeat writes afresh, then reads twice: "cold" after dropping the
files from the page cache (``posix_fadvise(DONTNEED)``; not possible on tmpfs, where the
JSON says ``"evicted": false``) and "warm" from the cache. GB/s are array bytes (1e9) per
second, the median of ``--repeats``; a spread (max - min) of 10% or more of the median is
flagged with ``!``. Every loaded array is compared with the saved one.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import npaccel
from npaccel import threads
from npaccel.data import load, save

COLUMNS = 1024
SCHEMA = 1


@dataclass
class Method:
    name: str
    suffix: str
    write: Callable[[Path, np.ndarray], None]
    read: Callable[[Path], np.ndarray]


@dataclass
class Result:
    method: str
    data: str
    raw_bytes: int
    stored_bytes: int
    ratio: float
    save_gb_s: float
    load_cold_gb_s: float
    load_warm_gb_s: float
    save_s: list[float]
    load_cold_s: list[float]
    load_warm_s: list[float]


def smooth(rows: int) -> np.ndarray:
    """A sum of sinusoids over the (rows, 1024) grid, float32, made a block at a time."""
    out = np.empty((rows, COLUMNS), np.float32)
    x = np.linspace(0.0, 1.0, COLUMNS, dtype=np.float32)
    terms = [(3.0, 2.0, 1.0), (17.0, 5.0, 0.5), (41.0, 29.0, 0.25)]  # (fx, fy, amplitude)
    for start in range(0, rows, 4096):
        y = (np.arange(start, min(start + 4096, rows), dtype=np.float32) / 4096)[:, None]
        block = out[start:start + y.shape[0]]
        block[...] = 0
        for fx, fy, amplitude in terms:
            block += amplitude * np.sin(2 * np.pi * (fx * x + fy * y))
    return out


def noisy(rows: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((rows, COLUMNS), dtype=np.float32)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _savez_compressed(path: Path, array: np.ndarray) -> None:
    np.savez_compressed(path, array)
    _fsync(path)


def methods() -> list[Method]:
    def ours(**options) -> Callable[[Path, np.ndarray], None]:
        return lambda path, array: save(path, array, **options)

    return [
        Method("npy", ".npy", ours(), load),
        Method("np.savez_compressed", ".npz", _savez_compressed,
               lambda path: np.load(path)["arr_0"]),
        Method("npz-1", ".npz", ours(level=1), load),
        Method("npz-6", ".npz", ours(level=6), load),
        Method("zarr-blosc-lz4", ".zarr", ours(codec="blosc-lz4"), load),
        Method("zarr-blosc-zstd", ".zarr", ours(codec="blosc-zstd"), load),
        Method("zarr-zstd", ".zarr", ours(codec="zstd"), load),
    ]


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return [Path(root) / name for root, _dirs, names in os.walk(path) for name in names]
    return [path]


def _evict(path: Path) -> None:
    for file in _files(path):
        fd = os.open(file, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def _timed(call: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def measure(method: Method, label: str, array: np.ndarray, directory: Path, repeats: int,
            evict: bool) -> Result:
    path = directory / f"{label}{method.suffix}"
    saves, colds, warms = [], [], []
    for _ in range(repeats):
        _remove(path)
        saves.append(_timed(lambda: method.write(path, array))[0])
        if evict:
            _evict(path)
        for times in (colds, warms):
            seconds, loaded = _timed(lambda: method.read(path))
            if not np.array_equal(loaded, array):
                raise AssertionError(f"{method.name} on {label}: the loaded array differs")
            times.append(seconds)
            del loaded
    stored = sum(file.stat().st_size for file in _files(path))
    _remove(path)
    raw = array.nbytes

    def rate(times: list[float]) -> float:
        return raw / statistics.median(times) / 1e9

    return Result(method.name, label, raw, stored, raw / stored, rate(saves), rate(colds),
                  rate(warms), saves, colds, warms)


def _evictable(directory: Path) -> bool:
    """Whether DONTNEED can drop pages here (not on tmpfs/ramfs)."""
    import psutil

    best, fstype = "", ""
    for part in psutil.disk_partitions(all=True):
        if str(directory).startswith(part.mountpoint) and len(part.mountpoint) > len(best):
            best, fstype = part.mountpoint, part.fstype
    return fstype not in {"tmpfs", "ramfs"} and hasattr(os, "posix_fadvise")


def metadata(mb: int, repeats: int, directory: Path, evict: bool) -> dict:
    import numcodecs
    import zarr

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "npaccel": npaccel.__version__, "numpy": np.__version__, "zarr": zarr.__version__,
        "numcodecs": numcodecs.__version__, "python": platform.python_version(),
        "machine": platform.machine(), "processor": platform.processor(),
        "usable_cpus": threads.usable_cpus(), "mib_per_data_set": mb,
        "shape": [mb * (1 << 20) // (4 * COLUMNS), COLUMNS], "dtype": "float32",
        "repeats": repeats, "statistic": "median", "directory": str(directory.resolve()),
        "evicted": evict, "fsync": True,
    }  # fmt: skip


def _flag(times: list[float]) -> str:
    middle = statistics.median(times)
    return "!" if len(times) > 1 and (max(times) - min(times)) >= 0.1 * middle else " "


def format_row(r: Result) -> str:
    return (f"{r.method:<21}{r.data:<8}{r.ratio:7.2f}{r.stored_bytes / 2**20:10.1f}"
            f"{r.save_gb_s:9.3f}{_flag(r.save_s)}{r.load_cold_gb_s:9.3f}{_flag(r.load_cold_s)}"
            f"{r.load_warm_gb_s:9.3f}{_flag(r.load_warm_s)}")


HEADER = (f"{'method':<21}{'data':<8}{'ratio':>7}{'MiB':>10}{'save':>10}{'cold':>10}"
          f"{'warm':>10}   (GB/s of array data; ratio = raw ÷ stored)")


def main(argv: list[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=512, help="MiB of float32 per data set")
    parser.add_argument("--path", default=None, help="directory to write in (default: temp)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated method names")
    parser.add_argument("--json", default="", help="write results here")
    args = parser.parse_args(argv)
    if args.mb < 1 or args.repeats < 1:
        parser.error("--mb and --repeats must be positive")
    rows = args.mb * (1 << 20) // (4 * COLUMNS)
    directory = Path(tempfile.mkdtemp(prefix="npaccel-store-bench-", dir=args.path))
    evict = _evictable(directory.resolve())
    chosen = [m for m in methods() if not args.only or m.name in args.only.split(",")]
    meta = metadata(args.mb, args.repeats, directory, evict)
    print(f"# npaccel {meta['npaccel']}, numpy {meta['numpy']}, zarr {meta['zarr']}, "
          f"{meta['processor'] or meta['machine']}, usable CPUs {meta['usable_cpus']}, "
          f"{args.mb} MiB float32 per data set, median of {args.repeats}, "
          f"cold reads {'evicted from the page cache' if evict else 'NOT evicted (tmpfs?)'}")
    print(HEADER)
    results = []
    try:
        for label, make in (("smooth", smooth), ("noisy", noisy)):
            array = make(rows)
            for method in chosen:
                results.append(measure(method, label, array, directory, args.repeats, evict))
                print(format_row(results[-1]), flush=True)
            del array
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"benchmark": "data_store", "schema": SCHEMA, "meta": meta,
                       "results": [asdict(r) for r in results]}, fh, indent=1)
    return results


if __name__ == "__main__":
    main()
