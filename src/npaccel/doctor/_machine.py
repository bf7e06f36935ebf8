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

__all__ = [
    "CUDA_MIN_DRIVER",
    "cpu_facts",
    "cuda_for_driver",
    "gpu_facts",
    "memory_facts",
    "numa_facts",
    "nvml_devices",
    "parse_nvidia_smi",
    "sysfs_pcie_link",
]

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


# --- GPUs ---------------------------------------------------------------------------------

_SMI_FIELDS = (
    "index", "name", "memory.total", "driver_version", "compute_cap", "pci.bus_id",
    "pcie.link.gen.current", "pcie.link.gen.max", "pcie.link.width.current",
    "pcie.link.width.max", "persistence_mode", "compute_mode", "pstate",
)  # fmt: skip

# Linux driver each CUDA release needs (CUDA Toolkit release notes, "CUDA Toolkit and
# Corresponding Driver Versions", GA builds): a driver supports the newest CUDA whose
# minimum it meets. nvidia-smi's CSV query has no CUDA field, so without NVML (or CuPy) the
# driver version is looked up here; a driver newer than the table reports the table's newest.
CUDA_MIN_DRIVER = (
    ("13.0", "580.65.06"), ("12.9", "575.51.03"), ("12.8", "570.26"), ("12.6", "560.28.03"),
    ("12.5", "555.42.02"), ("12.4", "550.54.14"), ("12.3", "545.23.06"),
    ("12.2", "535.54.03"), ("12.1", "530.30.02"), ("12.0", "525.60.13"),
    ("11.8", "520.61.05"), ("11.7", "515.43.04"), ("11.6", "510.39.01"),
    ("11.5", "495.29.05"), ("11.4", "470.42.01"), ("11.3", "465.19.01"),
    ("11.2", "460.27.03"), ("11.1", "455.23"), ("11.0", "450.36.06"), ("10.2", "440.33"),
    ("10.1", "418.39"), ("10.0", "410.48"),
)  # fmt: skip

# GT/s per lane → PCIe generation (sysfs current_link_speed: "16.0 GT/s PCIe").
_GTS_GEN = {2.5: 1, 5.0: 2, 8.0: 3, 16.0: 4, 32.0: 5, 64.0: 6}

_COMPUTE_MODES = {0: "Default", 1: "Exclusive_Thread", 2: "Prohibited", 3: "Exclusive_Process"}


def _version_key(version: str | None) -> tuple[int, ...] | None:
    if not version or not re.fullmatch(r"\d+(\.\d+)*", version.strip()):
        return None
    return tuple(int(p) for p in version.strip().split("."))


def cuda_for_driver(driver_version: str | None) -> str | None:
    """The newest CUDA version (``"12.2"``) a Linux driver (``"535.161.08"``) supports, from
    :data:`CUDA_MIN_DRIVER`; None for an unparsable or pre-CUDA-10 driver."""
    key = _version_key(driver_version)
    if key is None:
        return None
    for cuda, minimum in CUDA_MIN_DRIVER:
        if key >= _version_key(minimum):
            return cuda
    return None


def cuda_version_text(version: int | None) -> str | None:
    """CUDA's integer versions (12040, as NVML and the CUDA runtime give them) as "12.4"."""
    if not version:
        return None
    return f"{version // 1000}.{version % 1000 // 10}"


def sysfs_bus_id(bus_id: str | None) -> str | None:
    """nvidia-smi's/NVML's "00000000:3B:00.0" as sysfs names it: "0000:3b:00.0"."""
    m = re.fullmatch(r"([0-9a-fA-F]+):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])", bus_id or "")
    return f"{int(m[1], 16):04x}:{m[2].lower()}:{m[3].lower()}.{m[4]}" if m else None


def _number(value: Any) -> int | None:
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def _pcie(gen_current, gen_max, width_current, width_max, source) -> dict[str, Any] | None:
    link = {
        "gen_current": _number(gen_current),
        "gen_max": _number(gen_max),
        "width_current": _number(width_current),
        "width_max": _number(width_max),
    }
    if all(v is None for v in link.values()):
        return None
    return {**link, "source": source}


def sysfs_pcie_link(host: Host, bus_id: str | None) -> dict[str, Any] | None:
    """A PCI device's link from /sys/bus/pci/devices/<addr>/{current,max}_link_{speed,width}."""
    addr = sysfs_bus_id(bus_id)
    if addr is None:
        return None
    base = f"sys/bus/pci/devices/{addr}"

    def gen(name: str) -> int | None:
        m = re.match(r"\s*([\d.]+)\s*GT/s", host.read(f"{base}/{name}") or "")
        return _GTS_GEN.get(float(m[1])) if m else None

    def width(name: str) -> str | None:
        return (host.read(f"{base}/{name}") or "").strip() or None

    return _pcie(gen("current_link_speed"), gen("max_link_speed"), width("current_link_width"),
                 width("max_link_width"), "sysfs")  # fmt: skip


def parse_nvidia_smi(text: str) -> list[dict[str, Any]]:
    """Parse ``nvidia-smi --query-gpu=<_SMI_FIELDS> --format=csv,noheader,nounits``."""
    devices = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(_SMI_FIELDS):
            continue
        row = dict(zip(_SMI_FIELDS, fields, strict=True))
        mem_mib = _number(row["memory.total"])
        persistence = row["persistence_mode"].lower()
        link = _pcie(row["pcie.link.gen.current"], row["pcie.link.gen.max"],
                     row["pcie.link.width.current"], row["pcie.link.width.max"],
                     "nvidia-smi")  # fmt: skip
        devices.append(
            {
                "index": _number(row["index"]),
                "name": row["name"],
                "memory_total_bytes": None if mem_mib is None else mem_mib << 20,
                "driver_version": row["driver_version"],
                "compute_capability": row["compute_cap"]
                if re.fullmatch(r"\d+\.\d+", row["compute_cap"])
                else None,
                "pci_bus_id": row["pci.bus_id"],
                "pcie": link,
                "persistence_mode": {"enabled": True, "disabled": False}.get(persistence),
                "compute_mode": row["compute_mode"]
                if re.fullmatch(r"[A-Za-z_]+", row["compute_mode"])
                else None,
                "pstate": row["pstate"] if re.fullmatch(r"P\d+", row["pstate"]) else None,
            }
        )
    return devices


def _nvml_call(fn: Any, *args: Any) -> Any:
    """``fn(*args)``, or None when NVML says the query is not supported on this device."""
    try:
        value = fn(*args)
    except Exception:  # NVMLError_NotSupported, _NoPermission, an older binding's AttributeError
        return None
    return value.decode() if isinstance(value, bytes) else value


def nvml_devices(nvml: Any) -> tuple[list[dict[str, Any]], str | None] | None:
    """GPUs and the CUDA version the driver supports, read through the NVML binding
    ``nvml`` (``pynvml`` from nvidia-ml-py); None when NVML cannot start (no driver)."""
    try:
        nvml.nvmlInit()
    except Exception:  # NVMLError: no driver / no device
        return None
    try:
        driver = _nvml_call(nvml.nvmlSystemGetDriverVersion)
        cuda = cuda_version_text(_nvml_call(nvml.nvmlSystemGetCudaDriverVersion))
        devices = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            cc = _nvml_call(nvml.nvmlDeviceGetCudaComputeCapability, handle)
            memory = _nvml_call(nvml.nvmlDeviceGetMemoryInfo, handle)
            pci = _nvml_call(nvml.nvmlDeviceGetPciInfo, handle)
            persistence = _nvml_call(nvml.nvmlDeviceGetPersistenceMode, handle)
            pstate = _nvml_call(nvml.nvmlDeviceGetPerformanceState, handle)
            bus = getattr(pci, "busId", None)
            devices.append(
                {
                    "index": i,
                    "name": _nvml_call(nvml.nvmlDeviceGetName, handle),
                    "memory_total_bytes": int(memory.total) if memory is not None else None,
                    "driver_version": driver,
                    "compute_capability": f"{cc[0]}.{cc[1]}" if cc else None,
                    "pci_bus_id": bus.decode() if isinstance(bus, bytes) else bus,
                    "pcie": _pcie(
                        _nvml_call(nvml.nvmlDeviceGetCurrPcieLinkGeneration, handle),
                        _nvml_call(nvml.nvmlDeviceGetMaxPcieLinkGeneration, handle),
                        _nvml_call(nvml.nvmlDeviceGetCurrPcieLinkWidth, handle),
                        _nvml_call(nvml.nvmlDeviceGetMaxPcieLinkWidth, handle),
                        "nvml",
                    ),
                    "persistence_mode": None if persistence is None else bool(persistence),
                    "compute_mode": _COMPUTE_MODES.get(
                        _nvml_call(nvml.nvmlDeviceGetComputeMode, handle)
                    ),
                    "pstate": None if pstate is None or pstate > 15 else f"P{int(pstate)}",
                }
            )
        return devices, cuda
    finally:
        _nvml_call(nvml.nvmlShutdown)


def _proc_devices(host: Host) -> list[dict[str, Any]]:
    """GPUs the kernel driver lists in /proc/driver/nvidia/gpus (no userspace tools)."""
    devices = []
    for i, info in enumerate(host.glob("proc/driver/nvidia/gpus/*/information")):
        fields = dict(
            (k.strip(), v.strip())
            for k, _, v in (line.partition(":") for line in info.read_text().splitlines())
        )
        devices.append(
            {"index": i, "name": fields.get("Model"), "pci_bus_id": fields.get("Bus Location")}
        )
    return devices


def gpu_facts(host: Host) -> dict[str, Any]:
    """NVIDIA GPUs via NVML, else nvidia-smi, else the kernel driver's /proc entries; the
    PCIe link from sysfs where those do not give it; the CUDA version the driver supports
    from NVML, else from the driver version (:data:`CUDA_MIN_DRIVER`)."""
    found, cuda, cuda_source = None, None, None
    if host.live:
        try:
            import pynvml
        except ImportError:
            pynvml = None
        found = nvml_devices(pynvml) if pynvml is not None else None
    devices, source = (found[0], "nvml") if found and found[0] else ([], None)
    if found and found[1]:
        cuda, cuda_source = found[1], "nvml"
    if not devices:
        smi = host.run(
            "nvidia-smi",
            [f"--query-gpu={','.join(_SMI_FIELDS)}", "--format=csv,noheader,nounits"],
        )
        devices = parse_nvidia_smi(smi or "")
        source = "nvidia-smi" if devices else None
    if not devices:  # driver loaded but no userspace tools: still say the GPUs are there
        devices = _proc_devices(host)
        source = "proc" if devices else None
    for device in devices:
        link = device.get("pcie")
        if link is None or None in (link["gen_current"], link["width_current"]):
            device["pcie"] = sysfs_pcie_link(host, device.get("pci_bus_id")) or link
    version = host.read("proc/driver/nvidia/version") or ""
    m = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", version)
    kernel_driver = m[1] if m else None
    driver = next((d["driver_version"] for d in devices if d.get("driver_version")), None)
    if cuda is None and (driver or kernel_driver):
        cuda = cuda_for_driver(driver or kernel_driver)
        cuda_source = "driver-table" if cuda else None
    return {
        "source": source,
        "kernel_driver_version": kernel_driver,
        "driver_version": driver or kernel_driver,
        "cuda_driver_version": cuda,
        "cuda_driver_version_source": cuda_source,
        "devices": devices,
    }
