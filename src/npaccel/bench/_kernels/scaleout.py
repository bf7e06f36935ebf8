"""Dask on this machine: what the scheduler costs per task, what a chunk costs, and a
stream of files — the figures docs/scaling.md turns into chunk-size advice.

* ``dask.tasks``: a graph of no-op tasks on the threaded and the synchronous scheduler;
  the throughput in tasks/s is the inverse of the scheduler's overhead per task.
* ``dask.chunk``: a Gaussian (σ=2) of a float32 image in 4 × 4 chunks through npaccel's
  dask backend (threaded scheduler, stored into a preallocated array), in chunks/s; its
  peer ``kernel`` filters one chunk-sized array on one task's share of the CPUs. The
  gap between the two is what a chunk costs beyond its kernels (halo strips, a fresh
  output, the store, the scheduler).
* ``dask.files``: a stream of .npy files, each read, filtered (Gaussian σ=2) and written
  atomically (`npaccel.data.save`: temporary file, fsync, rename), as one Dask task per
  file on the threaded scheduler; its peer ``loop`` does the same files one after another
  with all CPUs per file. In files/s.

A process cluster (LocalCluster) is not started by the bench: benchmarks/dask_filters.py
measures one, with the cost of moving chunks between processes.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections.abc import Iterator

import numpy as np

from npaccel.bench._case import Case, CheckFailed, check_close
from npaccel.bench._profile import Profile

SIGMA = 2.0
GRID = 4  # chunks per axis of the dask.chunk image


def _noop(i: int) -> int:
    return i


def _tasks_case(scheduler: str, tasks: int) -> Case:
    def setup():
        import dask

        graph = [dask.delayed(_noop)(i) for i in range(tasks)]

        def run():
            return dask.compute(*graph, scheduler=scheduler)

        def check(result):
            if list(result) != list(range(tasks)):
                raise CheckFailed(f"{tasks} no-op tasks on {scheduler!r} returned other values")

        return run, check

    return Case("dask.tasks", scheduler, {"tasks": tasks}, 0, 0, setup, scalable=False,
                work=(float(tasks), "tasks"), roof="none", requires=("dask",))  # fmt: skip


def _chunk_case(backend: str, n: int) -> Case:
    side = n // GRID

    def setup():
        from npaccel import filters, threads

        x = np.random.default_rng(31).random((n, n), dtype=np.float32)
        expected = filters.gaussian_filter(x, SIGMA, backend="numpy")
        if backend == "kernel":  # one chunk, on one task's share of the CPUs
            import numba

            chunk = np.ascontiguousarray(x[:side, :side])
            out = np.empty_like(chunk)
            share = threads.threads_per_worker(threads.usable_cpus())  # read once, untimed

            def run():
                previous = numba.get_num_threads()
                numba.set_num_threads(share)
                try:
                    return filters.gaussian_filter(chunk, SIGMA, output=out)
                finally:
                    numba.set_num_threads(previous)

            def check(result):
                inner = (slice(0, side - 8),) * 2  # away from the chunk's own edges
                check_close(np.asarray(result)[inner], expected[inner], rtol=0,
                            atol=16 * np.finfo(np.float32).eps, what="one chunk")  # fmt: skip

            return run, check
        import dask
        import dask.array as da

        lazy = da.from_array(x, chunks=side)
        out = np.empty_like(x)

        def run():
            with dask.config.set(scheduler="threads"):
                da.store(filters.gaussian_filter(lazy, SIGMA), out, lock=False)
            return out

        def check(result):
            check_close(result, expected, rtol=0, atol=16 * np.finfo(np.float32).eps,
                        what="chunked gaussian")  # fmt: skip

        return run, check

    chunks = 1 if backend == "kernel" else GRID * GRID
    pixels = chunks * side * side
    return Case("dask.chunk", backend, {"n": n, "chunk": side}, 0, 8 * pixels, setup,
                scalable=False, work=(float(chunks), "chunks"), roof="none",
                requires=("dask.array",))  # fmt: skip


def _process_file(src: str, dst: str, share: int | None) -> float:
    """One file of the stream: read, filter, write atomically (`npaccel.data.save`: temp
    file, fsync, rename); returns the result's sum (the check). ``share``: Numba threads
    for this task's kernels; None: this thread's count as it is."""
    from npaccel import data, filters

    if share is not None:
        import numba

        numba.set_num_threads(share)
    result = filters.gaussian_filter(np.load(src), SIGMA)
    data.save(dst, result, overwrite=True)
    return float(result.sum(dtype=np.float64))


def _files_case(backend: str, files: int, n: int, scratch: str | None) -> Case:
    def setup():
        from npaccel import filters, threads

        tmp = tempfile.TemporaryDirectory(prefix="npaccel-bench-", dir=scratch)
        rng = np.random.default_rng(32)
        paths, sums = [], []
        for i in range(files):
            image = rng.random((n, n), dtype=np.float32)
            paths.append(os.path.join(tmp.name, f"in-{i:04d}.npy"))
            np.save(paths[-1], image)
            reference = filters.gaussian_filter(image, SIGMA, backend="numpy")
            sums.append(float(reference.sum(dtype=np.float64)))
        outs = [os.path.join(tmp.name, f"out-{i:04d}.npy") for i in range(len(paths))]
        workers = threads.usable_cpus()
        share = threads.threads_per_worker(workers)  # read once, untimed

        if backend == "loop":

            def run():
                return [_process_file(s, d, None) for s, d in zip(paths, outs, strict=True)]
        else:
            import dask

            def run():
                tasks = [dask.delayed(_process_file)(s, d, share)
                         for s, d in zip(paths, outs, strict=True)]  # fmt: skip
                return dask.compute(*tasks, scheduler="threads", num_workers=workers)

        def check(result):
            check_close(np.asarray(result), np.asarray(sums), rtol=1e-5, what="file sums")
            for dst in outs:  # written whole: every output loads with the right shape
                if np.load(dst, mmap_mode="r").shape != (n, n):
                    raise CheckFailed(f"{dst} does not hold a {n}x{n} image")

        weakref.finalize(run, tmp.cleanup)
        return run, check

    moved = 2 * files * n * n * 4
    return Case("dask.files", backend, {"files": files, "n": n}, 0, moved, setup,
                scalable=False, work=(float(files), "files"), roof="none",
                requires=("dask",) if backend == "threads" else ())  # fmt: skip


def cases(profile: Profile, scratch: str | None = None) -> Iterator[Case]:
    tasks = 500 if profile.name == "quick" else 2000
    for scheduler in ("threads", "sync"):
        yield _tasks_case(scheduler, tasks)
    for n in profile.image_n:
        for backend in ("threads", "kernel"):
            yield _chunk_case(backend, n)
    files, n = (16, 256) if profile.name == "quick" else (64, 1024)
    for backend in ("threads", "loop"):
        yield _files_case(backend, files, n, scratch)
