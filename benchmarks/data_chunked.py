"""Out-of-core stencil: npaccel.data.map_overlap against a plain file copy, with peak memory.

    python benchmarks/data_chunked.py                               # 4 GiB file, 1 GiB budget
    python benchmarks/data_chunked.py --gib 0.25 --max-memory 64MiB --repeats 3
    python benchmarks/data_chunked.py --path /mnt/nvme/tmp --json chunked.json

A float32 .npy file of ``--gib`` GiB (rows of 8192 values; it should be at least 4 times
``--max-memory``, so that the budget, not the file, bounds memory) goes through a 3x3
``npaccel.filters.uniform_filter`` by ``map_overlap(..., depth=1, max_memory=...)`` into a
new .npy file, and is compared with

* ``copy``: a sequential read + write of the same file in 8 MiB blocks (readinto a
  preallocated buffer, write to a new file) — the I/O roof;
* ``copy+fsync``: the same, fsynced at the end, as map_overlap makes its output durable
  before renaming it into place: the like-for-like baseline, which "vs copy" divides by;
* ``map_blocks(copy)``: the chunked machinery with an identity func (what the
  read-ahead/write-behind pipeline costs without compute);
* ``map_overlap+checkpoint``: map_overlap with its default checkpoint (an fsync of the
  output and an atomic JSON save at most every 2 s), to show what resumability costs.

Each measurement runs in a fresh child process (so that one run's freed memory cannot hide
the next one's peak); each repeat runs all of them back to back, so that the ratios compare
runs under the same machine load and page-cache state; the table gives medians. Nothing
drops the page cache (that needs root): on a machine with RAM to spare, a file just written
is read from memory. Peak memory: the child's peak RSS (VmHWM, reset through
/proc/self/clear_refs just before the run; elsewhere a 1 ms psutil sampler) minus its RSS
just before the run, against ``max_memory``; the baseline RSS (interpreter, NumPy, Numba,
npaccel, kernels loaded) is reported separately. The output of each map_overlap run is
spot-checked against the in-memory filter on its first, middle and last rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numba
import numpy as np
import psutil

import npaccel
from npaccel import threads
from npaccel.data import map_blocks, map_overlap
from npaccel.data._chunked import _parse_bytes
from npaccel.filters import uniform_filter

WIDTH = 8192  # float32 values per row
COPY_BLOCK = 8 * 2**20


class PeakRSS:
    """Peak resident memory during a ``with`` block, above the RSS at its start."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.baseline = self.peak = 0
        self._stop = threading.Event()
        self._sampler: threading.Thread | None = None

    @staticmethod
    def _hwm() -> int | None:
        try:
            with open("/proc/self/status") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def __enter__(self) -> PeakRSS:
        self.baseline = self.process.memory_info().rss
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # reset VmHWM to the current RSS
            self._use_hwm = self._hwm() is not None
        except OSError:
            self._use_hwm = False
        if not self._use_hwm:
            self.peak = self.baseline
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc) -> None:
        if self._use_hwm:
            self.peak = self._hwm() or 0
        else:
            self._stop.set()
            self._sampler.join()

    @property
    def above_baseline(self) -> int:
        return max(self.peak - self.baseline, 0)


def make_source(path: Path, gib: float) -> tuple[int, int]:
    """A float32 (rows, WIDTH) .npy of about `gib` GiB, written in 64 MiB blocks."""
    rows = max(int(gib * 2**30 / (WIDTH * 4)), 3)
    src = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, WIDTH))
    del src  # header written; the data goes in with plain writes (bounded memory)
    offset = path.stat().st_size - rows * WIDTH * 4
    rng = np.random.default_rng(0)
    step = max(64 * 2**20 // (WIDTH * 4), 1)
    with open(path, "r+b") as fh:
        fh.seek(offset)
        for start in range(0, rows, step):
            fh.write(rng.random((min(step, rows - start), WIDTH), dtype=np.float32).tobytes())
    return rows, WIDTH


def plain_copy(src: Path, dst: Path, fsync: bool) -> None:
    buffer = bytearray(COPY_BLOCK)
    view = memoryview(buffer)
    with open(src, "rb", buffering=0) as fin, open(dst, "wb", buffering=0) as fout:
        while n := fin.readinto(view):
            fout.write(view[:n])
        if fsync:
            os.fsync(fout.fileno())


def stencil(block: np.ndarray) -> np.ndarray:
    return uniform_filter(block, 3)


def identity(block: np.ndarray) -> np.ndarray:
    return block.copy()


def spot_check(src: Path, out: Path, rows: int) -> None:
    x, y = np.load(src, mmap_mode="r"), np.load(out, mmap_mode="r")
    for r in sorted({0, rows // 2, rows - 1}):
        # rows r - 2 .. r + 2: row r sees only real rows, or the array's own edge
        lo, hi = max(r - 2, 0), min(r + 3, rows)
        want = uniform_filter(np.array(x[lo:hi]), 3)[r - lo]
        if not np.array_equal(np.asarray(y[r]), want):
            raise SystemExit(f"map_overlap output row {r} differs from the in-memory filter")


KINDS = ("copy", "copy+fsync", "map_blocks(copy)", "map_overlap", "map_overlap+checkpoint")


def measure(kind: str, src: Path, out: Path, budget: int) -> dict:
    """One timed run, in this (fresh) process."""
    stencil(np.ones((8, 8), np.float32))  # kernels loaded before the baseline is taken
    with PeakRSS() as rss:
        start = time.perf_counter()
        if kind in ("copy", "copy+fsync"):
            plain_copy(src, out, fsync=kind == "copy+fsync")
        elif kind == "map_blocks(copy)":
            map_blocks(identity, src, out, max_memory=budget, checkpoint=False)
        else:
            map_overlap(stencil, src, out, depth=1, max_memory=budget,
                        checkpoint=None if kind.endswith("checkpoint") else False)  # fmt: skip
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_above_baseline": rss.above_baseline,
            "baseline_rss": rss.baseline}  # fmt: skip


def run_once(kind: str, src: Path, work: Path, budget: int, rows: int) -> dict:
    out = work / "out.npy"
    child = subprocess.run([sys.executable, __file__, "--child", kind, str(src), str(out),
                            str(budget)], capture_output=True, text=True)  # fmt: skip
    if child.returncode:
        raise SystemExit(f"{kind} failed:\n{child.stderr}")
    if kind.startswith("map_overlap"):
        spot_check(src, out, rows)
    out.unlink()
    return json.loads(child.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gib", type=float, default=4.0, help="source size in GiB")
    parser.add_argument("--max-memory", default="1GiB", help="map_overlap's budget")
    parser.add_argument("--path", type=Path, help="directory for the files (default: a temp "
                        "directory in $TMPDIR)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)  # one measurement
    args = parser.parse_args()
    if args.child:
        kind, src, out, budget = args.child
        print(json.dumps(measure(kind, Path(src), Path(out), int(budget))))
        return
    budget = _parse_bytes(args.max_memory)
    size = args.gib * 2**30
    if size < 4 * budget:
        print(f"# note: the file ({size / 2**20:.0f} MiB) is under 4x max_memory "
              f"({budget / 2**20:.0f} MiB): memory is bounded by the file, not the budget")

    work = Path(tempfile.mkdtemp(prefix="npaccel-chunked-bench-", dir=args.path))
    try:
        src = work / "src.npy"
        rows, width = make_source(src, args.gib)
        nbytes = rows * width * 4
        samples: dict[str, list[dict]] = {k: [] for k in KINDS}
        for _ in range(args.repeats):
            for kind in KINDS:
                samples[kind].append(run_once(kind, src, work, budget, rows))
    finally:
        for p in work.glob("*"):
            p.unlink()
        work.rmdir()

    results = {}
    for kind, runs in samples.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        results[kind] = {
            "seconds_median": seconds,
            "gib_per_s": nbytes / 2**30 / seconds,
            "peak_above_baseline_mib_max": max(r["peak_above_baseline"] for r in runs) / 2**20,
            "baseline_rss_mib": statistics.median(r["baseline_rss"] for r in runs) / 2**20,
            "seconds_all": [r["seconds"] for r in runs],
        }
    copy_rate = results["copy+fsync"]["gib_per_s"]
    print(f"# {nbytes / 2**30:.2f} GiB float32 ({rows} x {width}), 3x3 uniform_filter, "
          f"max_memory {budget / 2**20:.0f} MiB, {args.repeats} repeats (median), "
          f"{threads.usable_cpus()} CPUs, files in {args.path or tempfile.gettempdir()}")
    print(f"{'':<24}{'GiB/s':>8}{'vs copy+fsync':>15}{'peak RSS above baseline':>26}")
    for kind, r in results.items():
        print(f"{kind:<24}{r['gib_per_s']:8.2f}{r['gib_per_s'] / copy_rate:15.0%}"
              f"{r['peak_above_baseline_mib_max']:17.1f} MiB (budget {budget / 2**20:.0f})")
    print(f"baseline RSS (interpreter + NumPy + Numba + npaccel): "
          f"{results['map_overlap']['baseline_rss_mib']:.0f} MiB")
    if args.json:
        meta = {"machine": platform.machine(), "processor": platform.processor(),
                "system": platform.platform(), "cpus": threads.usable_cpus(),
                "python": platform.python_version(), "numpy": np.__version__,
                "numba": numba.__version__, "npaccel": npaccel.__version__,
                "numba_threads": numba.get_num_threads(), "path": str(args.path or
                tempfile.gettempdir()), "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}  # fmt: skip
        args.json.write_text(json.dumps({
            "benchmark": "data_chunked", "metadata": meta, "bytes": nbytes, "shape": [rows, width],
            "max_memory": budget, "repeats": args.repeats, "statistic": "median",
            "results": results}, indent=2))  # fmt: skip


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
