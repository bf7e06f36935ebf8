"""npaccel.threads: usable CPUs (affinity, cgroup v1/v2 quotas) and setting every pool."""

from __future__ import annotations

import os
import subprocess
import sys

import numba
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from npaccel import threads
from npaccel._cgroup import cgroup_cpu_quota, cgroup_memory_limit, cgroup_version
from npaccel._sysfs import Host


def _write(root, name, text):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("name", "usable"),
    [
        ("epyc-kvm-2cpu", 2),  # no quota: affinity
        ("xeon-2socket-cgroup2-a100", 4),  # v2 quota 4 on 64 CPUs, nested under a pod of 8
        ("graviton3-cgroup1-quota", 1),  # v1 quota 1.5 rounds down
        ("spr-h100-driver-only", 8),  # affinity 0-7 of 16 CPUs
    ],
)
def test_usable_cpus_recorded(recorded, name, usable):
    assert threads.usable_cpus(recorded(name)) == usable


def test_v2_quota_is_tightest_on_path(tmp_path):
    _write(tmp_path, "proc/self/cgroup", "0::/a/b\n")
    _write(tmp_path, "proc/self/status", "Cpus_allowed_list:\t0-31\n")
    _write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu memory\n")
    _write(tmp_path, "sys/fs/cgroup/a/cpu.max", "250000 100000\n")
    _write(tmp_path, "sys/fs/cgroup/a/b/cpu.max", "max 100000\n")
    _write(tmp_path, "sys/fs/cgroup/a/b/memory.max", "max\n")
    _write(tmp_path, "sys/fs/cgroup/a/memory.max", f"{3 << 30}\n")
    host = Host(tmp_path)
    assert cgroup_version(host) == 2
    assert cgroup_cpu_quota(host) == 2.5  # the parent's limit binds the child
    assert threads.usable_cpus(host) == 2
    assert cgroup_memory_limit(host) == 3 << 30


def test_v2_inside_cgroup_namespace(tmp_path):
    # In a cgroup namespace the process sees "/" and the limits sit at the mount root.
    _write(tmp_path, "proc/self/cgroup", "0::/\n")
    _write(tmp_path, "proc/self/status", "Cpus_allowed_list:\t0-7\n")
    _write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu\n")
    _write(tmp_path, "sys/fs/cgroup/cpu.max", "300000 100000\n")
    assert threads.usable_cpus(Host(tmp_path)) == 3


def test_v2_path_not_mounted_falls_back_to_root(tmp_path):
    # Without a cgroup namespace the host path may not exist inside the container's mount.
    _write(tmp_path, "proc/self/cgroup", "0::/system.slice/docker-abc.scope\n")
    _write(tmp_path, "proc/self/status", "Cpus_allowed_list:\t0-7\n")
    _write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu\n")
    _write(tmp_path, "sys/fs/cgroup/cpu.max", "100000 100000\n")
    assert threads.usable_cpus(Host(tmp_path)) == 1


def test_v1_quota_and_unlimited(tmp_path):
    _write(tmp_path, "proc/self/cgroup", "4:cpu,cpuacct:/job\n")
    _write(tmp_path, "proc/self/status", "Cpus_allowed_list:\t0-15\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us", "-1\n")
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_period_us", "100000\n")
    host = Host(tmp_path)
    assert cgroup_cpu_quota(host) is None
    assert threads.usable_cpus(host) == 16
    _write(tmp_path, "sys/fs/cgroup/cpu,cpuacct/job/cpu.cfs_quota_us", "50000\n")
    assert cgroup_cpu_quota(host) == 0.5
    assert threads.usable_cpus(host) == 1  # never below one


def test_affinity_tighter_than_quota(tmp_path):
    _write(tmp_path, "proc/self/cgroup", "0::/\n")
    _write(tmp_path, "proc/self/status", "Cpus_allowed_list:\t4-5\n")
    _write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu\n")
    _write(tmp_path, "sys/fs/cgroup/cpu.max", "800000 100000\n")
    assert threads.usable_cpus(Host(tmp_path)) == 2


def test_garbage_cgroup_files_are_ignored(tmp_path):
    _write(tmp_path, "proc/self/cgroup", "not a cgroup line\n0::/x\n")
    _write(tmp_path, "proc/self/status", "Cpus_allowed_list:\t0-3\n")
    _write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu\n")
    _write(tmp_path, "sys/fs/cgroup/x/cpu.max", "lots 100000\n")
    _write(tmp_path, "sys/fs/cgroup/x/memory.max", "-5\n")
    host = Host(tmp_path)
    assert cgroup_cpu_quota(host) is None
    assert cgroup_memory_limit(host) is None
    assert threads.usable_cpus(host) == 4


def test_live_usable_cpus_follows_affinity():
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from npaccel import threads; print(threads.usable_cpus())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    assert threads.usable_cpus() <= len(os.sched_getaffinity(0))


def _blas_threads():
    return {p["filepath"]: p["num_threads"] for p in threadpool_info()}


def test_set_threads_sets_numba_and_every_pool_and_restores():
    np.dot(np.ones((4, 4)), np.ones((4, 4)))  # make sure NumPy's BLAS is loaded
    before_numba, before_pools = numba.get_num_threads(), _blas_threads()
    assert before_pools, "threadpoolctl should see NumPy's BLAS"
    with threads.set_threads(1) as limits:
        assert limits.numba == 1
        assert numba.get_num_threads() == 1
        assert set(_blas_threads().values()) == {1}
        state = threads.get_threads()
        assert state["numba"] == 1
        assert {p["num_threads"] for p in state["pools"]} == {1}
    assert numba.get_num_threads() == before_numba
    assert _blas_threads() == before_pools


def test_set_threads_default_is_usable_cpus_and_restore_is_idempotent():
    before = numba.get_num_threads()
    limits = threads.set_threads()
    try:
        assert limits.requested == threads.usable_cpus()
        assert numba.get_num_threads() == min(limits.requested, numba.config.NUMBA_NUM_THREADS)
    finally:
        limits.restore()
        limits.restore()
    assert numba.get_num_threads() == before


def test_numba_count_is_capped_at_its_pool():
    with threads.set_threads(numba.config.NUMBA_NUM_THREADS + 3) as limits:
        assert limits.numba == numba.config.NUMBA_NUM_THREADS
        assert limits.requested == numba.config.NUMBA_NUM_THREADS + 3


def test_threads_reach_numba_parallel_code():
    @numba.njit(parallel=True)
    def seen():
        out = np.zeros(64, dtype=np.int64)
        for i in numba.prange(64):
            out[i] = numba.get_num_threads()
        return out

    with threads.set_threads(1):
        assert set(seen()) == {1}


@pytest.mark.parametrize("bad", [0, -2, 1.5, "4", True, np.float64(2.0)])
def test_bad_counts_are_refused(bad):
    with pytest.raises((TypeError, ValueError), match=r"`n` must be a positive integer.*got"):
        threads.set_threads(bad)


@pytest.mark.parametrize(("workers", "cpus", "each"), [(1, 8, 8), (3, 8, 2), (16, 8, 1)])
def test_threads_per_worker(workers, cpus, each):
    assert threads.threads_per_worker(workers, cpus=cpus) == each


def test_threads_per_worker_bad_input():
    with pytest.raises(ValueError, match=r"`workers` must be a positive integer .*got 0"):
        threads.threads_per_worker(0)
    with pytest.raises(TypeError, match=r"`cpus` must be a positive integer; got 2.0"):
        threads.threads_per_worker(2, cpus=2.0)
