"""npaccel.filters on Dask against the single call, in one run.

    python benchmarks/dask_filters.py                 # 8192² float32, 2048² chunks
    python benchmarks/dask_filters.py --size 4096 --chunk 1024 --json out.json

For box 3×3 (uniform_filter) and gaussian σ=2: the single cpu-backend call (NumPy in, a
preallocated NumPy output, all threads), then the same filter of a Dask array of
``--chunk``² chunks on the threaded scheduler, stored chunk by chunk into the same output
(``da.store``), and on a 2-worker LocalCluster (processes, 1 thread each), gathered back
to the client. The input lives in memory on the client for the threaded scheduler and is
scattered to the cluster once, untimed (a real cluster job reads its chunks where they
are); the cluster time includes sending the result back. Every timed call also copies its
result once (the same copy for all three), so results can be compared.
Reported: median seconds of ``--repeats`` calls, the ratio to the single call (target
≤ 1.5×) and whether the result equals the single call bit for bit. Also the scheduler's
overhead per task: a graph of ``--tasks`` no-op tasks on each scheduler, seconds per task;
and the floor of the threaded column: the same store of a Dask array whose chunks are
copied instead of filtered (every chunk a fresh array, then stored) — what any filter of
a Dask array stored this way costs beyond its kernels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from npaccel import filters, threads

CASES = {"box 3x3": (filters.uniform_filter, (3,)), "gaussian s=2": (filters.gaussian_filter, (2,))}


def timed(fn, repeats):
    fn()  # warm-up: compiles, starts pools, fills caches
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


def _stored(lazy, out):
    """A Dask result written chunk by chunk into ``out`` (no concatenated temporary)."""
    import dask.array as da

    da.store(lazy, out, lock=False)
    return out.copy()


def task_overhead(compute, tasks: int) -> float:
    import dask

    graph = [dask.delayed(lambda i: i)(i) for i in range(tasks)]
    compute(graph)  # warm
    start = time.perf_counter()
    compute(graph)
    return (time.perf_counter() - start) / tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--json", dest="json_path")
    args = parser.parse_args()

    import dask
    import dask.array as da
    from distributed import Client, LocalCluster, wait

    x = np.random.default_rng(0).random((args.size, args.size), dtype=np.float32)
    out = np.empty_like(x)
    local = da.from_array(x, chunks=args.chunk)
    rows = []
    for name, (fn, fargs) in CASES.items():  # no cluster running yet: a quiet machine
        single, want = timed(lambda fn=fn, fargs=fargs: fn(x, *fargs, output=out).copy(),
                             args.repeats)  # fmt: skip
        with dask.config.set(scheduler="threads"):
            threaded, got_t = timed(lambda fn=fn, fargs=fargs: _stored(fn(local, *fargs), out),
                                    args.repeats)  # fmt: skip
        rows.append({"filter": name, "single_s": single, "threads_s": threaded,
                     "threads_ratio": threaded / single,
                     "threads_equal": bool(np.array_equal(got_t, want)), "want": want})  # fmt: skip
    with dask.config.set(scheduler="threads"):
        per_task_threads = task_overhead(dask.compute, args.tasks)
        floor, _ = timed(lambda: _stored(local.map_blocks(np.copy), out), args.repeats)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:  # fmt: skip
        client.wait_for_workers(2)
        on_cluster = client.persist(da.from_array(x, chunks=args.chunk))  # scattered once
        wait(on_cluster)
        for row in rows:
            fn, fargs = CASES[row["filter"]]
            clustered, got_c = timed(
                lambda fn=fn, fargs=fargs: client.compute(fn(on_cluster, *fargs)).result(),
                args.repeats)  # fmt: skip
            row.update(cluster_s=clustered, cluster_ratio=clustered / row["single_s"],
                       cluster_equal=bool(np.array_equal(got_c, row.pop("want"))))  # fmt: skip
        per_task_cluster = task_overhead(lambda g: client.gather(client.compute(g)),
                                         args.tasks)  # fmt: skip
    chunks = (args.size // args.chunk) ** 2
    print(f"# {args.size}² float32, {args.chunk}² chunks ({chunks} chunks), "
          f"{threads.usable_cpus()} CPUs, median of {args.repeats}")
    print(f"{'filter':<14} {'single':>8} {'threads':>8} {'ratio':>6} {'cluster':>8} {'ratio':>6}"
          "  equal")
    for r in rows:
        print(f"{r['filter']:<14} {r['single_s']:8.3f} {r['threads_s']:8.3f} "
              f"{r['threads_ratio']:6.2f} {r['cluster_s']:8.3f} {r['cluster_ratio']:6.2f}  "
              f"{r['threads_equal'] and r['cluster_equal']}")
    print(f"floor of the threads column (chunks copied, not filtered, then stored): "
          f"{floor:.3f} s")
    print(f"scheduler overhead per task: threads {per_task_threads * 1e6:.0f} µs, "
          f"2-worker LocalCluster {per_task_cluster * 1e6:.0f} µs")
    if args.json_path:
        with open(args.json_path, "w") as fh:
            json.dump({"size": args.size, "chunk": args.chunk, "rows": rows,
                       "threads_floor_s": floor,
                       "task_overhead_s": {"threads": per_task_threads,
                                           "cluster": per_task_cluster}}, fh, indent=2)


if __name__ == "__main__":
    main()
