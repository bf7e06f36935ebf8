"""CPU and memory limits that a cgroup (v2 or v1) puts on this process.

A container may see 64 CPUs in /proc/cpuinfo while its quota lets it use 4: libraries that
size their thread pools from ``os.cpu_count()`` then oversubscribe and get throttled. The
effective limit is the tightest one on the path from the process's cgroup up to the root.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from npaccel._sysfs import LIVE, Host

__all__ = ["cgroup_cpu_quota", "cgroup_memory_limit", "cgroup_version"]

# A v1 limit this large means "no limit" (the kernel reports PAGE_COUNTER_MAX pages).
_V1_UNLIMITED = 1 << 60


def _membership(host: Host) -> dict[str, str]:
    """Map controller name ('' for the v2 unified hierarchy) to the process's cgroup path."""
    paths: dict[str, str] = {}
    for line in (host.read("proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for controller in controllers.split(",") if controllers else [""]:
            paths[controller] = path
    return paths


def cgroup_version(host: Host = LIVE) -> int | None:
    """2 for a unified (v2) hierarchy, 1 for v1 or hybrid with v1 controllers, None if none."""
    if host.path("sys/fs/cgroup/cgroup.controllers").exists():
        return 2
    if host.path("sys/fs/cgroup/cpu").exists() or host.path("sys/fs/cgroup/memory").exists():
        return 1
    return None


def _dirs(host: Host, mount: str, path: str | None) -> list[str]:
    """Directories from the process's cgroup up to the mount root, deepest first."""
    out = []
    if path:
        rel = PurePosixPath(path.lstrip("/"))
        while rel.parts and not host.path(f"{mount}/{rel}").is_dir():
            rel = rel.parent  # inside a cgroup namespace the host path is not mounted
        while rel.parts:
            out.append(f"{mount}/{rel}")
            rel = rel.parent
    out.append(mount)
    return out


def _read_int(host: Host, name: str) -> int | None:
    text = host.read(name)
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


def cgroup_cpu_quota(host: Host = LIVE) -> float | None:
    """CPUs' worth of time the process may use per period (e.g. 1.5), or None if unlimited."""
    members = _membership(host)
    quotas = []
    if cgroup_version(host) == 2:
        for d in _dirs(host, "sys/fs/cgroup", members.get("")):
            fields = (host.read(f"{d}/cpu.max") or "").split()
            if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
                quota, period = int(fields[0]), int(fields[1])
                if quota > 0 and period > 0:
                    quotas.append(quota / period)
    else:
        for mount in ("sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpu"):
            if host.path(mount).is_dir():
                break
        for d in _dirs(host, mount, members.get("cpu")):
            quota = _read_int(host, f"{d}/cpu.cfs_quota_us")
            period = _read_int(host, f"{d}/cpu.cfs_period_us")
            if quota is not None and quota > 0 and period:
                quotas.append(quota / period)
    return min(quotas) if quotas else None


def cgroup_memory_limit(host: Host = LIVE) -> int | None:
    """Bytes of memory the process's cgroup may use, or None if unlimited."""
    members = _membership(host)
    limits = []
    if cgroup_version(host) == 2:
        for d in _dirs(host, "sys/fs/cgroup", members.get("")):
            text = (host.read(f"{d}/memory.max") or "").strip()
            if text.isdigit():
                limits.append(int(text))
    else:
        for d in _dirs(host, "sys/fs/cgroup/memory", members.get("memory")):
            limit = _read_int(host, f"{d}/memory.limit_in_bytes")
            if limit is not None and 0 < limit < _V1_UNLIMITED:
                limits.append(limit)
    return min(limits) if limits else None
