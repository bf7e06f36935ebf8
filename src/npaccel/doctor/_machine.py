"""Probes of the machine: CPU, caches, memory, NUMA, GPUs — parsed from /proc, /sys and
vendor tools through a :class:`~npaccel._sysfs.Host`, so recordings parse like the live
machine. Each probe returns plain JSON-ready data and never raises on a missing file."""

from __future__ import annotations

import platform
import re
from typing import Any

from npaccel._cgroup import cgroup_cpu_quota, cgroup_memory_limit, cgroup_version
from npaccel._sysfs import Host, parse_cpu_list
from npaccel.threads import usable_cpus

__all__ = ["cpu_facts", "gpu_facts", "memory_facts", "numa_facts", "parse_nvidia_smi"]

_SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def _parse_size(text: str) -> int | None:
    """Kernel sizes such as "32K", "2048 kB", "1M" in bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    return int(m[1]) * _SIZE_UNITS[m[2].upper()] if m else None


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks, block = [], {}
    for line in text.splitlines():
        if not line.strip():
            if block:
                blocks.append(block)
            block = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            block[key.strip()] = value.strip()
    if block:
        blocks.append(block)
    return blocks


def _cpu_model(blocks: list[dict[str, str]], host: Host) -> str | None:
    for block in blocks:
        for key in ("model name", "Model Name", "cpu model", "uarch", "Hardware"):
            if block.get(key):
                return block[key]
    for block in blocks:  # Arm: no model name; name it by implementer and part numbers
        if "CPU implementer" in block:
            part = block.get("CPU part", "?")
            if block["CPU implementer"] == "0x41" and part in _ARM_PARTS:
                return f"Arm {_ARM_PARTS[part]}"
            return f"Arm implementer {block['CPU implementer']} part {part}"
    return None


def _topology(
    host: Host, cpus: list[int], blocks: list[dict[str, str]]
) -> tuple[int | None, int | None]:
    """(physical cores, sockets) from sysfs topology, else /proc/cpuinfo, else None."""
    pairs = []
    for cpu in cpus:
        base = f"sys/devices/system/cpu/cpu{cpu}/topology"
        package = host.read(f"{base}/physical_package_id")
        core = host.read(f"{base}/core_id")
        if package is None or core is None:
            break
        pairs.append((package.strip(), core.strip()))
    else:
        if pairs:
            return len(set(pairs)), len({p for p, _ in pairs})
    pairs = [
        (b["physical id"], b["core id"]) for b in blocks if "physical id" in b and "core id" in b
    ]
    if pairs and len(pairs) == len(blocks):
        return len(set(pairs)), len({p for p, _ in pairs})
    return None, None


# Arm's MIDR part numbers for the server cores NumPy workloads meet (implementer 0x41).
_ARM_PARTS = {
    "0xd08": "Cortex-A72", "0xd0c": "Neoverse-N1", "0xd40": "Neoverse-V1",
    "0xd49": "Neoverse-N2", "0xd4f": "Neoverse-V2", "0xd8e": "Neoverse-N3",
    "0xd83": "Neoverse-V3",
}  # fmt: skip


def _architecture(blocks: list[dict[str, str]], host: Host) -> str | None:
    if host.live:
        return platform.machine()
    if any("CPU architecture" in b for b in blocks):
        return "aarch64"
    if any(" lm " in f" {b.get('flags', '')} " for b in blocks):
        return "x86_64"
    return None


def _caches(host: Host, logical: int) -> list[dict[str, Any]]:
    caches = []
    for index in host.glob("sys/devices/system/cpu/cpu0/cache/index*"):
        rel = index.relative_to(host.root).as_posix()
        level, kind, size = (host.read(f"{rel}/{f}") for f in ("level", "type", "size"))
        if level is None or size is None:
            continue
        shared = parse_cpu_list(host.read(f"{rel}/shared_cpu_list") or "0")
        caches.append(
            {
                "level": int(level),
                "type": (kind or "").strip(),
                "size_bytes": _parse_size(size),
                "shared_by_cpus": len(shared),
                "instances": max(1, -(-logical // max(1, len(shared)))),
                "line_bytes": int((host.read(f"{rel}/coherency_line_size") or "0").strip() or 0)
                or None,
            }
        )
    return sorted(caches, key=lambda c: (c["level"], c["type"]))


def cpu_facts(host: Host) -> dict[str, Any]:
    """CPU model, cores, usable CPUs, instruction-set flags and caches."""
    blocks = _cpuinfo_blocks(host.read("proc/cpuinfo") or "")
    online = host.read("sys/devices/system/cpu/online")
    cpus = parse_cpu_list(online) if online else list(range(len(blocks)))
    physical, sockets = _topology(host, cpus, blocks)
    flags_line = next(
        (
            b.get("flags") or b.get("Features")
            for b in blocks
            if b.get("flags") or b.get("Features")
        ),
        "",
    )
    affinity = host.affinity()
    return {
        "model": _cpu_model(blocks, host),
        "vendor": next((b["vendor_id"] for b in blocks if "vendor_id" in b), None),
        "architecture": _architecture(blocks, host),
        "logical_cores": len(cpus) or None,
        "physical_cores": physical,
        "sockets": sockets,
        "affinity": affinity,
        "cgroup_version": cgroup_version(host),
        "cgroup_cpu_quota": cgroup_cpu_quota(host),
        "usable_cpus": usable_cpus(host),
        "flags": sorted(set(flags_line.split())),
        "caches": _caches(host, len(cpus) or 1),
    }


def _meminfo(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        size = _parse_size(value)
        if size is not None:
            out[key.strip()] = size
    return out


def _bracketed(text: str | None) -> str | None:
    """The selected value of a sysfs choice file: "always [madvise] never" → "madvise"."""
    m = re.search(r"\[(\w+)\]", text or "")
    return m[1] if m else None


def memory_facts(host: Host) -> dict[str, Any]:
    """Memory and swap totals, cgroup limit, transparent hugepage policy."""
    info = _meminfo(host.read("proc/meminfo") or "")
    swap_total = info.get("SwapTotal")
    swap_free = info.get("SwapFree")
    thp = "sys/kernel/mm/transparent_hugepage"
    return {
        "total_bytes": info.get("MemTotal"),
        "available_bytes": info.get("MemAvailable"),
        "swap_total_bytes": swap_total,
        "swap_used_bytes": None
        if swap_total is None or swap_free is None
        else swap_total - swap_free,
        "cgroup_limit_bytes": cgroup_memory_limit(host),
        "transparent_hugepages": {
            "enabled": _bracketed(host.read(f"{thp}/enabled")),
            "defrag": _bracketed(host.read(f"{thp}/defrag")),
        },
    }


def numa_facts(host: Host) -> dict[str, Any]:
    """NUMA nodes with their CPUs and memory."""
    nodes = []
    for node in host.glob("sys/devices/system/node/node[0-9]*"):
        rel = node.relative_to(host.root).as_posix()
        node_id = int(node.name.removeprefix("node"))
        mem = {}
        for line in (host.read(f"{rel}/meminfo") or "").splitlines():
            m = re.match(r"Node\s+\d+\s+(\w+):\s+(.*)", line)
            if m:
                mem[m[1]] = _parse_size(m[2])
        nodes.append(
            {
                "id": node_id,
                "cpus": parse_cpu_list(host.read(f"{rel}/cpulist") or ""),
                "memory_total_bytes": mem.get("MemTotal"),
                "memory_free_bytes": mem.get("MemFree"),
            }
        )
    return {"nodes": sorted(nodes, key=lambda n: n["id"])}


_SMI_FIELDS = (
    "index", "name", "memory.total", "driver_version", "compute_cap", "pci.bus_id",
    "pcie.link.gen.max", "pcie.link.width.max",
)  # fmt: skip


def parse_nvidia_smi(text: str) -> list[dict[str, Any]]:
    """Parse ``nvidia-smi --query-gpu=<_SMI_FIELDS> --format=csv,noheader,nounits``."""

    def number(value: str) -> int | None:
        return int(value) if value.isdigit() else None

    devices = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(_SMI_FIELDS):
            continue
        index, name, mem_mib, driver, cc, bus, gen, width = fields
        devices.append(
            {
                "index": number(index),
                "name": name,
                "memory_total_bytes": None if number(mem_mib) is None else number(mem_mib) << 20,
                "driver_version": driver,
                "compute_capability": cc if re.fullmatch(r"\d+\.\d+", cc) else None,
                "pci_bus_id": bus,
                "pcie_link": f"gen{gen} x{width}"
                if number(gen) is not None and number(width) is not None
                else None,
            }
        )
    return devices


def _nvml_devices() -> list[dict[str, Any]] | None:
    """GPUs from NVML (nvidia-ml-py), or None when the binding or the driver is missing."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError: no driver / no device
        return None
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            try:
                link = (
                    f"gen{pynvml.nvmlDeviceGetMaxPcieLinkGeneration(handle)}"
                    f" x{pynvml.nvmlDeviceGetMaxPcieLinkWidth(handle)}"
                )
            except Exception:
                link = None
            name = pynvml.nvmlDeviceGetName(handle)
            devices.append(
                {
                    "index": i,
                    "name": name.decode() if isinstance(name, bytes) else name,
                    "memory_total_bytes": int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                    "driver_version": driver.decode() if isinstance(driver, bytes) else driver,
                    "compute_capability": f"{major}.{minor}",
                    "pci_bus_id": pynvml.nvmlDeviceGetPciInfo(handle).busId,
                    "pcie_link": link,
                }
            )
        return devices
    finally:
        pynvml.nvmlShutdown()


def gpu_facts(host: Host) -> dict[str, Any]:
    """NVIDIA GPUs via NVML, else nvidia-smi, else the kernel driver's /proc entries."""
    devices = _nvml_devices() if host.live else None
    source = "nvml" if devices else None
    if not devices:
        smi = host.run(
            "nvidia-smi",
            [f"--query-gpu={','.join(_SMI_FIELDS)}", "--format=csv,noheader,nounits"],
        )
        devices = parse_nvidia_smi(smi or "")
        source = "nvidia-smi" if devices else None
    if not devices:  # driver loaded but no userspace tools: still say the GPUs are there
        devices = []
        for i, info in enumerate(host.glob("proc/driver/nvidia/gpus/*/information")):
            fields = dict(
                (k.strip(), v.strip())
                for k, _, v in (line.partition(":") for line in info.read_text().splitlines())
            )
            devices.append(
                {"index": i, "name": fields.get("Model"), "pci_bus_id": fields.get("Bus Location")}
            )
        source = "proc" if devices else None
    version = host.read("proc/driver/nvidia/version") or ""
    m = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", version)
    return {
        "source": source,
        "kernel_driver_version": m[1] if m else None,
        "devices": devices,
    }
