"""Pageable vs pinned host<->device copies, and npaccel.cuda.stream_map on a transfer-bound
function, against the pinned host->device bandwidth of the same GPU.

    python benchmarks/gpu_stream.py                        # 64 MiB batches, 32 of them
    python benchmarks/gpu_stream.py --mib 16 --batches 96 --streams 2 3 4 --json gpu.json

Copies (device time, CUDA events around each copy on a non-blocking stream; one --mib copy
at a time, ``cudaMemcpyAsync`` from/to the host buffer):

* ``H2D pageable`` / ``D2H pageable``: from/to ``np.empty`` memory (the driver stages it);
* ``H2D pinned`` / ``D2H pinned``: from/to ``cupyx.empty_pinned`` memory (plain DMA);
* ``both pinned``: one H2D and one D2H at once on two streams: what a map that sends and
  receives as many bytes can reach per direction when the link is full duplex.

Pipelines (host wall clock from the first batch to the last result, so everything counts:
staging copies, launches, waits), over --batches pageable float32 batches of --mib MiB
(4 distinct arrays, in turn), computing ``x * 2`` (transfer-bound: 2 flops per 8 bytes moved):

* ``naive``: ``(cupy.asarray(b) * 2).get()`` per batch, what NumPy users write;
* ``stream_map S copy=False``: ``stream_map(lambda x: x * 2, batches, streams=S,
  copy=False)`` for each --streams S (results are views of the pinned output buffers);
* ``stream_map S copy=True``: the same with owned results, for the first S.

Each figure is the median of --repeats runs after one untimed warm-up run (pinned pools
filled, kernels compiled); spread = (max - min) / median, flagged ``!`` at >= 10 %.
GB/s counts input bytes (10^9 per second); "of H2D" divides by the pinned H2D bandwidth.
Target (printed, and in the JSON): the best ``stream_map copy=False`` >= 80 % of pinned
H2D bandwidth. Needs CuPy and an NVIDIA GPU; otherwise it says so and exits 1.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = "npaccel.bench.gpu_stream/1"
TARGET_FRACTION = 0.8  # stream_map (best streams, copy=False) vs pinned H2D bandwidth
DISTINCT_BATCHES = 4


@dataclass
class Result:
    name: str
    kind: str  # "copy" (device time) or "pipeline" (wall clock)
    bytes_per_run: int
    runs_s: list[float] = field(default_factory=list)
    gb_per_s: float | None = None
    spread: float | None = None
    of_h2d: float | None = None

    def finish(self) -> Result:
        rates = [self.bytes_per_run / t / 1e9 for t in self.runs_s]
        self.gb_per_s = self.bytes_per_run / statistics.median(self.runs_s) / 1e9
        self.spread = (max(rates) - min(rates)) / self.gb_per_s if len(rates) > 1 else None
        return self


def fail(message: str) -> None:
    print(f"ERROR: {message}", file=sys.stderr)
    raise SystemExit(1)


def require_gpu() -> Any:
    """CuPy with a real GPU, or exit 1 with one line saying what is missing."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        fail("NUMBA_ENABLE_CUDASIM=1 is set: stream_map would run on the host simulator; "
             "unset it to measure the GPU")  # fmt: skip
    try:
        import cupy
    except ImportError as exc:
        fail(f"gpu_stream needs CuPy and an NVIDIA GPU ({exc}); "
             'install it with pip install "npaccel[gpu]"')  # fmt: skip
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDARuntimeError: no driver
        fail(f"gpu_stream found no usable GPU: {exc}")
    if count == 0:
        fail("gpu_stream found no CUDA device")
    return cupy


# ------------------------------------------------------------------------ copies


def _copy(direction: str, device: Any, host: np.ndarray, stream: Any) -> None:
    pointer = ctypes.c_void_p(host.ctypes.data)
    if direction == "h2d":
        device.data.copy_from_host_async(pointer, host.nbytes, stream)
    else:
        device.data.copy_to_host_async(pointer, host.nbytes, stream)


def copy_seconds(cupy: Any, direction: str, device: Any, host: np.ndarray,
                 repeats: int) -> list[float]:  # fmt: skip
    """Device time of one copy, ``repeats`` times after a warm-up one (CUDA events)."""
    stream = cupy.cuda.Stream(non_blocking=True)
    times = []
    for _ in range(repeats + 1):
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record(stream)
        _copy(direction, device, host, stream)
        end.record(stream)
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end) / 1e3)
    return times[1:]


def duplex_seconds(cupy: Any, devices: tuple[Any, Any], hosts: tuple[np.ndarray, np.ndarray],
                   repeats: int) -> list[float]:  # fmt: skip
    """Device time of an H2D and a D2H started together on two streams (the later end)."""
    up, down = cupy.cuda.Stream(non_blocking=True), cupy.cuda.Stream(non_blocking=True)
    times = []
    for _ in range(repeats + 1):
        start, end_up, end_down = cupy.cuda.Event(), cupy.cuda.Event(), cupy.cuda.Event()
        start.record(up)
        down.wait_event(start)
        _copy("h2d", devices[0], hosts[0], up)
        _copy("d2h", devices[1], hosts[1], down)
        end_up.record(up)
        end_down.record(down)
        end_up.synchronize()
        end_down.synchronize()
        times.append(max(cupy.cuda.get_elapsed_time(start, end_up),
                         cupy.cuda.get_elapsed_time(start, end_down)) / 1e3)  # fmt: skip
    return times[1:]


def measure_copies(cupy: Any, nbytes: int, repeats: int) -> list[Result]:
    import cupyx

    count = nbytes // 4
    pageable = np.random.default_rng(0).random(count, dtype=np.float32)  # touched
    pinned = cupyx.empty_pinned((count,), dtype=np.float32)
    pinned[...] = pageable
    pinned_back = cupyx.empty_pinned((count,), dtype=np.float32)
    pinned_back[...] = 0  # touched, like the others
    device = cupy.empty(count, dtype=cupy.float32)
    device_back = cupy.zeros(count, dtype=cupy.float32)
    cupy.cuda.Device().synchronize()
    results = []
    for name, direction, host in (("H2D pageable", "h2d", pageable), ("H2D pinned", "h2d", pinned),
                                  ("D2H pageable", "d2h", pageable),
                                  ("D2H pinned", "d2h", pinned_back)):  # fmt: skip
        r = Result(name, "copy", nbytes, copy_seconds(cupy, direction, device, host, repeats))
        results.append(r.finish())
    both = duplex_seconds(cupy, (device, device_back), (pinned, pinned_back), repeats)
    results.append(Result("both pinned (per direction)", "copy", nbytes, both).finish())
    return results


# --------------------------------------------------------------------- pipelines


def naive(cupy: Any, batches: list[np.ndarray]) -> None:
    for batch in batches:
        (cupy.asarray(batch) * 2).get()


def via_stream_map(streams: int, copy: bool) -> Callable[[Any, list[np.ndarray]], None]:
    from npaccel.cuda import stream_map

    def run(cupy: Any, batches: list[np.ndarray]) -> None:
        for _ in stream_map(lambda x: x * 2, batches, streams=streams, copy=copy):
            pass

    return run


def check_stream_map(batch: np.ndarray) -> None:
    """The pipeline's results are right (not timed)."""
    from npaccel.cuda import stream_map

    for result in stream_map(lambda x: x * 2, [batch, batch[: len(batch) // 3]], streams=2):
        expected = batch[: len(result)] * 2
        if not np.array_equal(result, expected):
            fail("stream_map returned a wrong result: the measurement would mean nothing")


def measure_pipelines(cupy: Any, batches: list[np.ndarray], streams: list[int],
                      repeats: int) -> list[Result]:  # fmt: skip
    nbytes = sum(b.nbytes for b in batches)
    methods: dict[str, Callable[[Any, list[np.ndarray]], None]] = {"naive": naive}
    for s in streams:
        methods[f"stream_map {s} copy=False"] = via_stream_map(s, copy=False)
    methods[f"stream_map {streams[0]} copy=True"] = via_stream_map(streams[0], copy=True)
    results = {name: Result(name, "pipeline", nbytes) for name in methods}
    for method in methods.values():  # warm-up: pinned pools, kernels, page tables
        method(cupy, batches)
    cupy.cuda.Device().synchronize()
    for _ in range(repeats):  # methods take turns, so a slow moment hits them alike
        for name, method in methods.items():
            t0 = time.perf_counter()
            method(cupy, batches)
            cupy.cuda.Device().synchronize()
            results[name].runs_s.append(time.perf_counter() - t0)
    return [r.finish() for r in results.values()]


# ------------------------------------------------------------------------ report


def metadata(cupy: Any, args: argparse.Namespace) -> dict:
    import npaccel
    from npaccel import threads

    device = cupy.cuda.Device()
    props = cupy.cuda.runtime.getDeviceProperties(device.id)
    name = props["name"]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "npaccel": npaccel.__version__, "numpy": np.__version__, "cupy": cupy.__version__,
        "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
        "cuda_driver": cupy.cuda.runtime.driverGetVersion(),
        "gpu": name.decode() if isinstance(name, bytes) else str(name), "gpu_id": device.id,
        "pci_bus_id": device.pci_bus_id, "python": platform.python_version(),
        "machine": platform.machine(), "processor": platform.processor(),
        "usable_cpus": threads.usable_cpus(), "batch_bytes": args.mib * 2**20,
        "batches": args.batches, "distinct_batches": DISTINCT_BATCHES,
        "streams": args.streams, "repeats": args.repeats, "statistic": "median",
        "function": "x * 2 (float32)",
    }  # fmt: skip


def format_table(results: list[Result]) -> list[str]:
    lines = [f"{'method':<30}{'GB/s':>8}{'of H2D':>8}{'spread':>8}   runs"]
    for r in results:
        share = f"{r.of_h2d:8.0%}" if r.of_h2d is not None else f"{'':>8}"
        spread = f"{r.spread:7.0%}" if r.spread is not None else f"{'':>7}"
        flag = "!" if r.spread is not None and r.spread >= 0.1 else " "
        median_ms = statistics.median(r.runs_s) * 1e3
        clock = "device" if r.kind == "copy" else "wall"
        lines.append(f"{r.name:<30}{r.gb_per_s:8.2f}{share}{spread}{flag}  "
                     f"{len(r.runs_s)}x {median_ms:.2f} ms ({clock})")  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="MiB per batch (default 64)")
    parser.add_argument("--batches", type=int, default=32, help="batches per pipeline run")
    parser.add_argument("--streams", type=int, nargs="+", default=[2, 3, 4],
                        help="stream counts for stream_map (default 2 3 4)")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each")
    parser.add_argument("--json", default="", help="write the results here")
    args = parser.parse_args(argv)
    if args.mib < 1 or args.batches < 1 or args.repeats < 1 or min(args.streams) < 1:
        parser.error("--mib, --batches, --repeats and --streams must be >= 1")
    cupy = require_gpu()
    meta = metadata(cupy, args)
    print(f"# {meta['gpu']} (bus {meta['pci_bus_id']}), CUDA runtime {meta['cuda_runtime']}, "
          f"driver {meta['cuda_driver']}, cupy {meta['cupy']}, npaccel {meta['npaccel']}, "
          f"usable CPUs {meta['usable_cpus']}; {args.batches} batches of {args.mib} MiB, "
          f"median of {args.repeats} after a warm-up")  # fmt: skip

    nbytes = args.mib * 2**20
    copies = measure_copies(cupy, nbytes, args.repeats)
    rng = np.random.default_rng(1)
    distinct = [rng.random(nbytes // 4, dtype=np.float32) for _ in range(DISTINCT_BATCHES)]
    check_stream_map(distinct[0])
    batches = [distinct[k % DISTINCT_BATCHES] for k in range(args.batches)]
    pipelines = measure_pipelines(cupy, batches, args.streams, args.repeats)
    results = copies + pipelines
    h2d = next(r.gb_per_s for r in copies if r.name == "H2D pinned")
    for r in results:
        r.of_h2d = r.gb_per_s / h2d if h2d else None
    print("\n".join(format_table(results)))

    best = max((r for r in pipelines if r.name.endswith("copy=False")),
               key=lambda r: r.gb_per_s or 0.0)  # fmt: skip
    fraction = best.of_h2d or 0.0
    target = {"name": best.name, "value": round(fraction, 3), "target": TARGET_FRACTION,
              "met": fraction >= TARGET_FRACTION}  # fmt: skip
    print(
        f"# target: {best.name} reaches {target['value']:.0%} of pinned H2D bandwidth "
        f"(target >= {TARGET_FRACTION:.0%}): {'met' if target['met'] else 'NOT MET'}"
    )
    report = {"benchmark": "gpu_stream", "schema": SCHEMA, "meta": meta,
              "results": [asdict(r) for r in results],
              "targets": {"stream_map_vs_h2d": target}}  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
