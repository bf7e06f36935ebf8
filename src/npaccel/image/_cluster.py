"""Where the images of a run are processed: a thread pool here, or a Dask cluster.

Both pools take the same job — one input through read → pipeline → write, returning its
manifest record — and hand back ``concurrent.futures`` futures, so the runner's loop
(bounded in-flight work, the manifest, Ctrl-C) is one piece of code for both. On a
cluster the workers read the inputs and write the outputs themselves, so every worker must
see the same paths (a shared filesystem); only the small records travel back.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from npaccel import threads
from npaccel.image._paths import InputFile

__all__ = ["CONNECT_TIMEOUT", "ClusterPool", "Job", "ThreadPool"]

CONNECT_TIMEOUT = 10.0  # seconds a scheduler address gets to answer


@dataclass(frozen=True)
class Job:
    """Everything a worker needs besides the input and its target (picklable)."""

    pipeline: Any
    backend: str | None
    max_pixels: int | None
    quality: int | None
    compress_level: int | None
    png_encoder: str

    def __call__(self, item: InputFile, target: Path, replace: bool,
                 lock: threading.Lock | None) -> dict[str, Any]:  # fmt: skip
        from npaccel.image._runner import _process

        return _process(item, target, self.pipeline, backend=self.backend, lock=lock,
                        overwrite=replace, max_pixels=self.max_pixels, quality=self.quality,
                        compress_level=self.compress_level,
                        png_encoder=self.png_encoder)  # fmt: skip


@functools.cache
def _process_lock() -> threading.Lock | None:
    from npaccel.image._runner import _compute_lock

    return _compute_lock()


class ThreadPool:
    """``workers`` threads of this process, each running its kernels on its share of the
    usable CPUs (Numba's thread count is per calling thread)."""

    def __init__(self, workers: int, cpus: int) -> None:
        kernel_threads = threads.threads_per_worker(workers, cpus=cpus)

        def init() -> None:
            import numba

            numba.set_num_threads(kernel_threads)

        self.slots = workers
        self.where = f"{workers} threads"
        self._lock = _process_lock()
        self._pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="npaccel-image",
                                           initializer=init)  # fmt: skip

    def submit(self, job: Job, item: InputFile, target: Path, replace: bool) -> cf.Future:
        return self._pool.submit(job, item, target, replace, self._lock)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _on_worker(job: Job, item: InputFile, target: Path, replace: bool) -> dict[str, Any]:
    """A job on a Dask worker: kernels get the worker's cores divided among its threads."""
    import numba
    from distributed import get_worker

    nthreads = get_worker().state.nthreads
    numba.set_num_threads(max(1, min(numba.config.NUMBA_NUM_THREADS,
                                     threads.usable_cpus() // nthreads)))  # fmt: skip
    return job(item, target, replace, _process_lock())


class ClusterPool:
    """A Dask cluster: ``address`` 'local' starts a LocalCluster on this machine (one
    single-threaded worker process per worker), anything else is a scheduler address such
    as ``tcp://10.0.0.5:8786``."""

    def __init__(self, address: str, workers: int | None) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("`dask` needs dask.distributed: pip install "
                             "'npaccel[dask]'") from None  # fmt: skip
        self._cluster = None
        if address == "local":
            n = workers or threads.usable_cpus()
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                         dashboard_address=None)  # fmt: skip
            self._client = Client(self._cluster)
        else:
            try:
                self._client = Client(address, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError, ValueError) as exc:
                raise ValueError(f"`dask`: no Dask scheduler answered at {address!r} within "
                                 f"{CONNECT_TIMEOUT:g} s ({type(exc).__name__}: {exc}); start "
                                 "one with `dask scheduler` and workers with `dask worker "
                                 "tcp://HOST:8786`, or pass --dask without an address for a "
                                 "local cluster") from None  # fmt: skip
        cores = sum(self._client.nthreads().values())
        self.slots = workers or max(cores, 1)
        self.where = f"Dask at {self._client.scheduler.address} ({cores} worker threads)"
        self._executor = self._client.get_executor(pure=False)

    def submit(self, job: Job, item: InputFile, target: Path, replace: bool) -> cf.Future:
        return self._executor.submit(_on_worker, job, item, target, replace)

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


Pool = ThreadPool | ClusterPool
Submit = Callable[[Job, InputFile, Path, bool], cf.Future]
