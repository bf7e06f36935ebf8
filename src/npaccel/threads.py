"""The one place that reads and sets thread counts.

npaccel runs on two kinds of thread pools: Numba's (our kernels) and the native pools of
every loaded BLAS/LAPACK/OpenMP library (NumPy's OpenBLAS, MKL, OpenMP runtimes), reached
through threadpoolctl. Setting one without the other oversubscribes the machine, so they
are read and set together here.

The default thread count is the number of CPUs this process may actually use: its CPU
affinity (``taskset``, ``numactl``, Slurm) and its cgroup CPU quota (Docker ``--cpus``,
Kubernetes limits), never more. ``os.cpu_count()`` ignores both.

Examples
--------
>>> from npaccel import threads
>>> n = threads.usable_cpus()
>>> with threads.set_threads(1):           # everything single-threaded inside the block
...     threads.get_threads()["numba"]
1
>>> threads.get_threads()["numba"] == n     # restored on exit
True
"""

from __future__ import annotations

import math
import operator
import os
from typing import Any

from npaccel._cgroup import cgroup_cpu_quota
from npaccel._sysfs import LIVE, Host

__all__ = ["ThreadLimits", "get_threads", "set_threads", "threads_per_worker", "usable_cpus"]


def usable_cpus(host: Host = LIVE) -> int:
    """Number of CPUs this process may use: affinity and cgroup quota aware, at least 1.

    A fractional quota is rounded down (1.5 CPUs → 1 thread): running a second thread on
    half a CPU's budget only gets the process throttled.
    """
    affinity = host.affinity()
    n = len(affinity) if affinity else (os.cpu_count() or 1)
    quota = cgroup_cpu_quota(host)
    if quota is not None:
        n = min(n, max(1, math.floor(quota)))
    return max(1, n)


def threads_per_worker(workers: int, *, cpus: int | None = None) -> int:
    """Threads each of ``workers`` concurrent workers may use without oversubscribing.

    Use it when work nests (a thread or process pool whose tasks call threaded kernels):
    ``workers × threads_per_worker(workers) ≤ usable_cpus()``.
    """
    workers = _check_count("workers", workers)
    total = usable_cpus() if cpus is None else _check_count("cpus", cpus)
    return max(1, total // workers)


def _check_count(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a positive integer; got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"`{name}` must be a positive integer; got {value!r}") from None
    if value < 1:
        raise ValueError(f"`{name}` must be a positive integer (>= 1); got {value!r}")
    return value


def _numba():
    """Numba, imported (it is a core dependency; the import is deferred to keep
    ``import npaccel`` light)."""
    import numba

    return numba


def get_threads() -> dict[str, Any]:
    """Current thread counts: usable CPUs, Numba's count and every loaded native pool.

    Returns a JSON-ready dict: ``{"usable_cpus": int, "numba": int, "numba_max": int,
    "pools": [{"user_api", "internal_api", "filepath", "version", "num_threads"}, ...]}``.
    ``numba`` is the count that parallel Numba code launched from this thread will use.
    """
    from threadpoolctl import threadpool_info

    numba = _numba()
    return {
        "usable_cpus": usable_cpus(),
        "numba": numba.get_num_threads(),
        "numba_max": numba.config.NUMBA_NUM_THREADS,
        "pools": [
            {k: pool.get(k) for k in ("user_api", "internal_api", "filepath", "version")}
            | {"num_threads": pool["num_threads"]}
            for pool in threadpool_info()
        ],
    }


class ThreadLimits:
    """Thread counts set by :func:`set_threads`; restores the previous ones on
    :meth:`restore` or at the end of a ``with`` block."""

    def __init__(self, n: int) -> None:
        from threadpoolctl import ThreadpoolController

        numba = _numba()
        self.requested = n
        self._previous_numba = numba.get_num_threads()
        # Numba's pool is sized once (NUMBA_NUM_THREADS) and cannot grow past it.
        self.numba = min(n, numba.config.NUMBA_NUM_THREADS)
        numba.set_num_threads(self.numba)
        self._limiter = ThreadpoolController().limit(limits=n)
        self._restored = False

    def restore(self) -> None:
        """Put back the counts that were in force before this object was made."""
        if not self._restored:
            self._limiter.restore_original_limits()
            _numba().set_num_threads(self._previous_numba)
            self._restored = True

    def __enter__(self) -> ThreadLimits:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.restore()

    def __repr__(self) -> str:
        return f"ThreadLimits(requested={self.requested}, numba={self.numba})"


def set_threads(n: int | None = None) -> ThreadLimits:
    """Set Numba's and every loaded BLAS/OpenMP pool's thread count to ``n``.

    Parameters
    ----------
    n : int, optional
        Threads to use; default :func:`usable_cpus`. A count above the usable CPUs is
        honoured (to measure oversubscription) but never the default.

    Returns
    -------
    ThreadLimits
        Restores the previous counts on ``restore()``, or when used as a context manager.

    Raises
    ------
    TypeError, ValueError
        If ``n`` is not a positive integer.

    Notes
    -----
    Numba's count is per launching thread (Numba's own semantics): code that runs
    kernels from worker threads sets it in each worker. Numba cannot use more threads
    than ``NUMBA_NUM_THREADS``; ``ThreadLimits.numba`` says what it got. Native libraries
    loaded *after* this call start with their own defaults: call it after imports.
    """
    n = usable_cpus() if n is None else _check_count("n", n)
    return ThreadLimits(n)
