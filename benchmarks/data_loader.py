"""npaccel.data.ArrayLoader against a plain sequential read, naive memmap batches and torch.

    python benchmarks/data_loader.py                       # 4 GiB of 4 KiB float32 rows
    python benchmarks/data_loader.py --gib 0.25 --warm --json loader.json
    python benchmarks/data_loader.py --path /data/scratch --cold --seconds 60

Makes (once; reused while its size matches) a .npy of float32 rows, ``--row-bytes`` each,
with row ``i`` starting with the value ``i`` (checked on every measured batch), then reads
it, in batches of ``--batch`` rows, with:

* ``sequential``: the roof, ``os.preadv`` of 8 MiB blocks in file order into one buffer;
* ``naive memmap``: ``mm[np.sort(perm[k:k + batch])]``, a sorted random batch from np.load's
  memory map, as people write it;
* ``loader block``: ``ArrayLoader(path, batch)`` (block shuffle, the defaults);
* ``loader full``: ``ArrayLoader(path, batch, shuffle="full")``;
* ``loader block pread`` and ``loader block inline``: block shuffle with ``read="pread"``
  (staging ring) and with ``prefetch=0`` (no threads), to show what each part costs;
* ``torch DataLoader``: a map-style Dataset over the same memmap, ``shuffle=True``,
  ``--workers`` worker processes (skipped, with the reason, when torch is missing).

Each method is made once per phase and reused across epochs, as in training. Warm: the file
is read once first (checked against free memory), each method runs one untimed epoch (maps
and page tables filled), then ``--repeats`` rounds with the methods taking turns, so a slow
moment of the machine hits them alike (median, spread). Cold: each method is made fresh
(a mapped page cannot be dropped), the file's pages are dropped (``os.sync()`` then
``POSIX_FADV_DONTNEED``), and one run is timed; that eviction works is checked by timing a
small scattered read right after it against the same read warm. Each run stops after one
epoch or ``--seconds``, whichever is first; GB/s counts the array bytes delivered (10^9
bytes). The data starts 4096 bytes into the file (a padded, valid .npy header), so a 4 KiB
row is one page, not two. Targets (printed and in the JSON): block shuffle >= 80 % of the
sequential read, warm and cold, and >= 1 GB/s cold.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import npaccel
from npaccel import threads
from npaccel.data import ArrayLoader
from npaccel.data._loader import DEFAULT_BLOCK_BYTES, DEFAULT_WINDOW_BLOCKS

SCHEMA = "npaccel.bench.data_loader/1"
SEQUENTIAL_BLOCK = 8 * 2**20
HEADER_BYTES = 4096
TARGET_FRACTION = 0.8  # block shuffle vs sequential, warm and cold
TARGET_COLD_GBPS = 1.0
STEP = np.float32(1e-3)  # row i is i + STEP * (column number)


@dataclass
class Result:
    method: str
    cache: str  # "warm" | "cold"
    gb_per_s: float | None
    samples_per_s: float | None
    runs_s: list[float] = field(default_factory=list)
    bytes_per_run: list[int] = field(default_factory=list)
    spread: float | None = None  # (max - min) / median of the runs' GB/s
    skipped: str = ""


# ---------------------------------------------------------------------- the file


def write_npy(path: Path, rows: int, row_bytes: int) -> None:
    """A valid .npy of float32 rows whose data starts at byte 4096; row i starts with i.
    Written to a temp file and renamed, so an interrupted run leaves nothing to reuse."""
    columns = row_bytes // 4
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, columns)}
    text = repr(header).encode("latin1")
    preamble = b"\x93NUMPY\x01\x00"
    pad = HEADER_BYTES - len(preamble) - 2 - len(text) - 1
    body = text + b" " * pad + b"\n"
    tmp = path.with_name(path.name + ".part")
    chunk = max(1, (64 * 2**20) // row_bytes)
    pattern = np.arange(columns, dtype=np.float32) * STEP
    with open(tmp, "wb") as fh:
        fh.write(preamble + len(body).to_bytes(2, "little") + body)
        for start in range(0, rows, chunk):
            stop = min(rows, start + chunk)
            block = pattern + np.arange(start, stop, dtype=np.float32)[:, None]
            block[:, 0] = np.arange(start, stop)
            fh.write(block.tobytes())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def ensure_file(directory: Path, gib: float, row_bytes: int) -> tuple[Path, int, bool]:
    rows = max(1, int(gib * 2**30) // row_bytes)
    if rows >= 2**24:
        raise SystemExit(f"ERROR: {rows} rows: row numbers above 2**24 are not exact float32")
    path = directory / f"npaccel-loader-{rows}x{row_bytes}B.npy"
    expected = HEADER_BYTES + rows * row_bytes
    reused = path.is_file() and path.stat().st_size == expected
    if not reused:
        directory.mkdir(parents=True, exist_ok=True)
        write_npy(path, rows, row_bytes)
    mapped = np.load(path, mmap_mode="r")
    if mapped.shape != (rows, row_bytes // 4) or mapped.offset != HEADER_BYTES:
        raise SystemExit(f"ERROR: {path} is not the expected array; delete it and rerun")
    return path, rows, reused


# ------------------------------------------------------------------- page cache


def evict(path: Path) -> None:
    os.sync()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def scattered_read_gbps(path: Path, pieces: int = 32, piece: int = 2**20) -> float:
    size = path.stat().st_size
    buf = bytearray(piece)
    fd = os.open(path, os.O_RDONLY)
    try:
        start = time.perf_counter()
        for k in range(pieces):
            os.preadv(fd, [buf], (size - piece) * k // max(pieces - 1, 1))
        return pieces * piece / (time.perf_counter() - start) / 1e9
    finally:
        os.close(fd)


def eviction_check(path: Path) -> dict:
    """Time a small scattered read right after eviction and again warm."""
    if not hasattr(os, "posix_fadvise"):
        return {"works": False, "why": "os.posix_fadvise is not available here"}
    evict(path)
    cold = scattered_read_gbps(path)
    warm = scattered_read_gbps(path)
    evict(path)
    works = cold < 0.5 * warm
    return {"works": works, "cold_check_gb_s": round(cold, 3), "warm_check_gb_s": round(warm, 3),
            "why": "" if works else "a read right after eviction was not much slower than "
            "warm: the pages were probably not dropped (tmpfs? another cache below?)"}  # fmt: skip


def filesystem(path: Path) -> str:
    import psutil

    best, fstype = "", "?"
    for part in psutil.disk_partitions(all=True):
        if str(path.resolve()).startswith(part.mountpoint) and len(part.mountpoint) > len(best):
            best, fstype = part.mountpoint, part.fstype
    return fstype


# --------------------------------------------------------------------- methods
#
# A method is made once per phase (`make(path, batch)`) and returns `epoch()`, which yields
# the bytes of each batch it delivers: loaders and maps live across epochs, as in training.

Epoch = Callable[[], Iterator[int]]


def sequential(path: Path, batch: int) -> Epoch:
    buf = np.empty(SEQUENTIAL_BLOCK, np.uint8)
    view = memoryview(buf)

    def epoch() -> Iterator[int]:
        fd = os.open(path, os.O_RDONLY)
        try:
            offset, size = HEADER_BYTES, path.stat().st_size
            while offset < size:
                got = os.preadv(fd, [view], offset)
                offset += got
                yield got
        finally:
            os.close(fd)

    return epoch


def naive(path: Path, batch: int) -> Epoch:
    mapped = np.load(path, mmap_mode="r")
    rng = np.random.default_rng(0)

    def epoch() -> Iterator[int]:
        order = rng.permutation(len(mapped))
        for start in range(0, len(mapped), batch):
            rows = np.sort(order[start:start + batch])
            x = mapped[rows]
            check(x, rows)
            yield x.nbytes

    return epoch


def loader(**options: object) -> Callable[[Path, int], Epoch]:
    def make(path: Path, batch: int) -> Epoch:
        data = ArrayLoader(path, batch, seed=0, **options)

        def epoch() -> Iterator[int]:
            with iter(data) as batches:
                for x in batches:
                    check(x)
                    yield x.nbytes

        return epoch

    return make


def torch_loader(workers: int) -> Callable[[Path, int], Epoch]:
    import torch

    class MemmapRows(torch.utils.data.Dataset):
        def __init__(self, path: Path) -> None:
            self.path, self.mapped = path, None
            self.rows = len(np.load(path, mmap_mode="r"))

        def __len__(self) -> int:
            return self.rows

        def __getitem__(self, i: int):
            if self.mapped is None:  # one map per worker process
                self.mapped = np.load(self.path, mmap_mode="r")
            return torch.from_numpy(np.array(self.mapped[i]))

    def make(path: Path, batch: int) -> Epoch:
        data = torch.utils.data.DataLoader(MemmapRows(path), batch_size=batch, shuffle=True,
                                           num_workers=workers)  # fmt: skip

        def epoch() -> Iterator[int]:
            for x in data:
                check(x.numpy())
                yield x.numpy().nbytes

        return epoch

    return make


def check(x: np.ndarray, rows: np.ndarray | None = None) -> None:
    """Row i starts with i: a wrong or torn row would show here."""
    ids = x[:, 0]
    if rows is not None and not np.array_equal(ids, rows):
        raise AssertionError("a batch does not hold the rows it should")
    if not np.array_equal(ids, np.round(ids)) or not np.all(x[:, 1] == ids + STEP):
        raise AssertionError("a batch holds bytes that are not rows of the file")


def timed(epoch: Epoch, limit: float) -> tuple[float, int]:
    """Seconds and bytes of one run: an epoch, or as much as ``limit`` seconds allow."""
    nbytes, start = 0, time.perf_counter()
    batches = epoch()
    try:
        for got in batches:
            nbytes += got
            if time.perf_counter() - start > limit:
                break
    finally:
        batches.close()  # type: ignore[attr-defined]
    return time.perf_counter() - start, nbytes


def summarise(result: Result, row_bytes: int) -> Result:
    rates = [b / s / 1e9 for b, s in zip(result.bytes_per_run, result.runs_s, strict=True)]
    result.gb_per_s = statistics.median(rates)
    result.samples_per_s = result.gb_per_s * 1e9 / row_bytes
    result.spread = (max(rates) - min(rates)) / result.gb_per_s if len(rates) > 1 else None
    return result


def run_warm(methods: dict[str, Callable[[Path, int], Epoch]], path: Path,
             args: argparse.Namespace) -> list[Result]:  # fmt: skip
    """One untimed epoch each (maps and page tables filled), then ``repeats`` rounds, the
    methods taking turns, so that a slow moment of the machine hits all of them alike."""
    epochs = {name: make(path, args.batch) for name, make in methods.items()}
    results = {name: Result(name, "warm", None, None) for name in methods}
    for epoch in epochs.values():
        timed(epoch, args.seconds)
    for _ in range(args.repeats):
        for name, epoch in epochs.items():
            seconds, nbytes = timed(epoch, args.seconds)
            results[name].runs_s.append(seconds)
            results[name].bytes_per_run.append(nbytes)
    return [summarise(r, args.row_bytes) for r in results.values()]


def run_cold(methods: dict[str, Callable[[Path, int], Epoch]], path: Path,
             args: argparse.Namespace) -> list[Result]:  # fmt: skip
    """Each method made fresh (no map holding pages: those DONTNEED cannot drop), the file
    evicted, then one timed run."""
    results = []
    for name, make in methods.items():
        epoch = make(path, args.batch)
        gc.collect()
        evict(path)
        seconds, nbytes = timed(epoch, args.seconds)
        results.append(summarise(Result(name, "cold", None, None, [seconds], [nbytes]),
                                 args.row_bytes))  # fmt: skip
        del epoch
        gc.collect()
    return results


# ---------------------------------------------------------------------- report


def metadata(args: argparse.Namespace, path: Path, rows: int, reused: bool) -> dict:
    import psutil

    try:
        import torch

        torch_version = torch.__version__
    except ImportError:
        torch_version = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "npaccel": npaccel.__version__, "numpy": np.__version__, "torch": torch_version,
        "python": platform.python_version(), "machine": platform.machine(),
        "processor": platform.processor(), "usable_cpus": threads.usable_cpus(),
        "memory_bytes": psutil.virtual_memory().total, "path": str(path.resolve()),
        "filesystem": filesystem(path), "file_bytes": path.stat().st_size, "rows": rows,
        "row_bytes": args.row_bytes, "batch": args.batch, "reused_file": reused,
        "seconds_limit": args.seconds, "repeats_warm": args.repeats, "repeats_cold": 1,
        "statistic": "median", "torch_workers": args.workers,
        "loader": {"block_bytes": DEFAULT_BLOCK_BYTES, "window_blocks": DEFAULT_WINDOW_BLOCKS,
                   "prefetch": 2, "seed": 0},
    }  # fmt: skip


def format_table(results: list[Result]) -> list[str]:
    roof = {r.cache: r.gb_per_s for r in results if r.method == "sequential" and r.gb_per_s}
    lines = [f"{'method':<20}{'cache':<6}{'GB/s':>8}{'samples/s':>12}{'of seq.':>9}"
             f"{'spread':>8}   runs"]  # fmt: skip
    for r in results:
        if r.skipped:
            lines.append(f"{r.method:<20}{r.cache:<6}{'skipped: ' + r.skipped:>}")
            continue
        share = f"{r.gb_per_s / roof[r.cache]:8.0%}" if roof.get(r.cache) else f"{'':>8}"
        spread = f"{r.spread:7.0%}" if r.spread is not None else f"{'':>7}"
        flag = "!" if r.spread is not None and r.spread >= 0.1 else " "
        lines.append(f"{r.method:<20}{r.cache:<6}{r.gb_per_s:8.2f}{r.samples_per_s:12,.0f} "
                     f"{share}{spread}{flag}  {len(r.runs_s)}× "
                     f"{statistics.median(r.runs_s):.2f} s")  # fmt: skip
    return lines


def targets(results: list[Result]) -> dict:
    by = {(r.method, r.cache): r.gb_per_s for r in results if r.gb_per_s}
    out = {}
    for cache in ("warm", "cold"):
        block, seq = by.get(("loader block", cache)), by.get(("sequential", cache))
        if block and seq:
            out[f"block_vs_sequential_{cache}"] = {
                "value": round(block / seq, 3), "target": TARGET_FRACTION,
                "met": block / seq >= TARGET_FRACTION}
    if by.get(("loader block", "cold")):
        value = by[("loader block", "cold")]
        out["block_cold_gb_s"] = {"value": round(value, 3), "target": TARGET_COLD_GBPS,
                                  "met": value >= TARGET_COLD_GBPS}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=4.0, help="file size in GiB (default 4)")
    parser.add_argument("--row-bytes", type=int, default=4096, help="bytes per row (x4)")
    parser.add_argument("--batch", type=int, default=256, help="rows per batch")
    parser.add_argument("--path", default=None,
                        help="directory for the file (default: the temp dir)")  # fmt: skip
    parser.add_argument("--cold", action="store_true", help="measure cold (default: both)")
    parser.add_argument("--warm", action="store_true", help="measure warm (default: both)")
    parser.add_argument("--seconds", type=float, default=30.0, help="time limit per run")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs per method")
    parser.add_argument("--workers", type=int, default=min(4, threads.usable_cpus()),
                        help="torch DataLoader worker processes")  # fmt: skip
    parser.add_argument("--json", default="", help="write the results here")
    args = parser.parse_args(argv)
    if args.gib <= 0 or args.batch < 1 or args.repeats < 1 or args.seconds <= 0:
        parser.error("--gib, --batch, --repeats and --seconds must be positive")
    if args.row_bytes < 8 or args.row_bytes % 4:
        parser.error("--row-bytes must be a multiple of 4, at least 8")
    caches = [c for c in ("warm", "cold") if getattr(args, c)] or ["warm", "cold"]

    directory = Path(args.path or Path(tempfile.gettempdir()) / "npaccel-bench")
    path, rows, reused = ensure_file(directory, args.gib, args.row_bytes)
    meta = metadata(args, path, rows, reused)
    methods: dict[str, Callable[[Path, int], Epoch] | str] = {
        "sequential": sequential, "naive memmap": naive,
        "loader block": loader(), "loader full": loader(shuffle="full"),
        "loader block pread": loader(read="pread"),
        "loader block inline": loader(prefetch=0)}  # fmt: skip
    try:
        methods["torch DataLoader"] = torch_loader(args.workers)
    except ImportError:
        methods["torch DataLoader"] = "torch is not installed (pip install torch)"
    cpu = meta["processor"] or meta["machine"]
    print(f"# npaccel {meta['npaccel']}, numpy {meta['numpy']}, {cpu}, "
          f"usable CPUs {meta['usable_cpus']}, file {path} "
          f"({meta['file_bytes'] / 2**30:.2f} GiB on {meta['filesystem']}"
          f"{', reused' if reused else ''}), {args.row_bytes} B rows, batch {args.batch}")

    report = {"benchmark": "data_loader", "schema": SCHEMA, "meta": meta}
    runnable = {name: m for name, m in methods.items() if not isinstance(m, str)}
    skipped = {name: m for name, m in methods.items() if isinstance(m, str)}
    results: list[Result] = []
    if "warm" in caches:
        import psutil

        fits = psutil.virtual_memory().available > 1.2 * meta["file_bytes"]
        meta["warm_fits_in_memory"] = fits
        timed(sequential(path, args.batch), math.inf)  # fill the page cache
        print(f"# warm: one untimed epoch each, then median of {args.repeats} rounds"
              + ("" if fits else "  (WARNING: the file is larger than free memory: "
                 "'warm' is not warm)"))  # fmt: skip
        results += run_warm(runnable, path, args)
        gc.collect()
    if "cold" in caches:
        meta["eviction"] = ev = eviction_check(path)
        print(f"# cold: pages dropped before each method; check: scattered read "
              f"{ev.get('cold_check_gb_s', '?')} GB/s after eviction vs "
              f"{ev.get('warm_check_gb_s', '?')} warm: "
              + ("eviction works" if ev["works"] else f"EVICTION DOUBTFUL: {ev['why']}"))
        results += run_cold(runnable, path, args)
    for cache in caches:
        for name, why in skipped.items():
            results.append(Result(name, cache, None, None, skipped=why))
    results.sort(key=lambda r: (caches.index(r.cache), list(methods).index(r.method)))
    print("\n".join(format_table(results)))
    report["results"] = [asdict(r) for r in results]
    report["targets"] = targets(results)
    for name, t in report["targets"].items():
        print(f"# target {name}: {t['value']} (target >= {t['target']}): "
              f"{'met' if t['met'] else 'NOT MET'}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
