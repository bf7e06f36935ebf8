"""Machine probes parsed from recorded /proc and /sys trees, and from the live machine."""

from __future__ import annotations

import os

import psutil
import pytest

from npaccel._sysfs import LIVE, Host, parse_cpu_list
from npaccel.doctor._machine import (
    _parse_size,
    cpu_facts,
    gpu_facts,
    memory_facts,
    numa_facts,
    parse_nvidia_smi,
)

GiB = 1 << 30

# name: (model, arch, logical, physical, sockets, quota, usable, cgroup version, L3 bytes)
CPU_EXPECTED = {
    "epyc-kvm-2cpu": ("AMD EPYC", "x86_64", 2, 2, 1, None, 2, 1, 32 << 20),
    "xeon-2socket-cgroup2-a100": (
        "Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz", "x86_64", 64, 32, 2, 4.0, 4, 2, 22528 << 10,
    ),
    "graviton3-cgroup1-quota": ("Arm Neoverse-V1", "aarch64", 4, 4, 1, 1.5, 1, 1, 32 << 20),
    "spr-h100-driver-only": (
        "Intel(R) Xeon(R) Platinum 8480+", "x86_64", 16, 16, 1, None, 8, 2, None,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CPU_EXPECTED))
def test_cpu_facts_from_recordings(recorded, name):
    model, arch, logical, physical, sockets, quota, usable, cgv, l3 = CPU_EXPECTED[name]
    facts = cpu_facts(recorded(name))
    assert facts["model"] == model
    assert facts["architecture"] == arch
    assert (facts["logical_cores"], facts["physical_cores"], facts["sockets"]) == (
        logical,
        physical,
        sockets,
    )
    assert facts["cgroup_cpu_quota"] == quota
    assert facts["usable_cpus"] == usable
    assert facts["cgroup_version"] == cgv
    l3_sizes = [c["size_bytes"] for c in facts["caches"] if c["level"] == 3]
    assert l3_sizes == ([l3] if l3 else [])


def test_cpu_flags_x86_and_arm(recorded):
    assert {"avx512f", "avx2", "fma"} <= set(
        cpu_facts(recorded("xeon-2socket-cgroup2-a100"))["flags"]
    )
    arm = set(cpu_facts(recorded("graviton3-cgroup1-quota"))["flags"])
    assert {"asimd", "sve"} <= arm
    assert "avx2" not in arm


def test_cache_instances_follow_sharing(recorded):
    caches = cpu_facts(recorded("xeon-2socket-cgroup2-a100"))["caches"]
    by_level = {(c["level"], c["type"]): c for c in caches}
    assert by_level[(1, "Data")]["shared_by_cpus"] == 2  # hyperthread siblings
    assert by_level[(1, "Data")]["instances"] == 32
    assert by_level[(3, "Unified")]["instances"] == 2  # one per socket


def test_memory_facts(recorded):
    xeon = memory_facts(recorded("xeon-2socket-cgroup2-a100"))
    assert xeon["total_bytes"] == 393_216_000 * 1024
    assert xeon["available_bytes"] == 160_000_000 * 1024
    assert xeon["swap_used_bytes"] == 8_388_604 * 1024
    assert xeon["cgroup_limit_bytes"] == 64 * GiB  # the container's, tighter than the pod's
    assert xeon["transparent_hugepages"] == {"enabled": "never", "defrag": "madvise"}
    arm = memory_facts(recorded("graviton3-cgroup1-quota"))
    assert arm["cgroup_limit_bytes"] == 4 * GiB
    assert arm["swap_used_bytes"] == 0
    # v1 "unlimited" (PAGE_COUNTER_MAX) is reported as no limit
    assert memory_facts(recorded("epyc-kvm-2cpu"))["cgroup_limit_bytes"] is None


def test_numa_nodes(recorded):
    nodes = numa_facts(recorded("xeon-2socket-cgroup2-a100"))["nodes"]
    assert [n["id"] for n in nodes] == [0, 1]
    assert nodes[0]["cpus"] == [*range(16), *range(32, 48)]
    assert nodes[1]["memory_total_bytes"] == 196_608_000 * 1024
    assert numa_facts(recorded("spr-h100-driver-only")) == {"nodes": []}


def test_gpu_from_nvidia_smi_recording(recorded):
    gpu = gpu_facts(recorded("xeon-2socket-cgroup2-a100"))
    assert gpu["source"] == "nvidia-smi"
    assert gpu["kernel_driver_version"] == "535.161.08"
    assert [d["name"] for d in gpu["devices"]] == ["NVIDIA A100-SXM4-40GB"] * 2
    assert (gpu["driver_version"], gpu["cuda_driver_version"]) == ("535.161.08", "12.2")
    assert gpu["cuda_driver_version_source"] == "driver-table"  # nvidia-smi's CSV has no CUDA
    first, second = gpu["devices"]
    assert first["memory_total_bytes"] == 40 * GiB
    assert first["compute_capability"] == "8.0"
    assert first["pcie"] == {"gen_current": 4, "gen_max": 4, "width_current": 16,
                             "width_max": 16, "source": "nvidia-smi"}  # fmt: skip
    assert (second["pcie"]["width_current"], second["pcie"]["width_max"]) == (8, 16)
    assert (first["persistence_mode"], first["compute_mode"], first["pstate"]) == (
        True, "Default", "P0",
    )  # fmt: skip


def test_gpu_from_driver_proc_only(recorded):
    gpu = gpu_facts(recorded("spr-h100-driver-only"))
    assert gpu["source"] == "proc"
    assert gpu["kernel_driver_version"] == "550.54.15"  # the "Open Kernel Module" wording
    assert (gpu["driver_version"], gpu["cuda_driver_version"]) == ("550.54.15", "12.4")
    assert gpu["devices"] == [
        {
            "index": 0,
            "name": "NVIDIA H100 80GB HBM3",
            "pci_bus_id": "0000:18:00.0",
            "pcie": {"gen_current": 5, "gen_max": 5, "width_current": 16, "width_max": 16,
                     "source": "sysfs"},
        }
    ]  # fmt: skip


def test_no_gpu(recorded):
    assert gpu_facts(recorded("graviton3-cgroup1-quota")) == {
        "source": None,
        "kernel_driver_version": None,
        "driver_version": None,
        "cuda_driver_version": None,
        "cuda_driver_version_source": None,
        "devices": [],
    }


def test_parse_nvidia_smi_tolerates_noise():
    text = (
        "0, NVIDIA H100 80GB HBM3, 81559, 550.54.15, 9.0, 00000000:18:00.0, 1, 5, 16, 16, "
        "Disabled, Exclusive_Process, P8\n"
        "garbage line\n"
        "0, NVIDIA H100 80GB HBM3, 81559, 550.54.15, 9.0, 00000000:18:00.0, 5, 16\n"  # old
        "1, Tesla T4, 15360, 470.1, [N/A], 00000000:3B:00.0, [N/A], [N/A], [N/A], [N/A], "
        "[N/A], [N/A], [Unknown Error]\n"
    )
    devices = parse_nvidia_smi(text)
    assert [d["index"] for d in devices] == [0, 1]
    assert devices[0]["memory_total_bytes"] == 81559 << 20
    assert devices[0]["pcie"] == {"gen_current": 1, "gen_max": 5, "width_current": 16,
                                  "width_max": 16, "source": "nvidia-smi"}  # fmt: skip
    assert devices[0]["persistence_mode"] is False
    assert (devices[0]["compute_mode"], devices[0]["pstate"]) == ("Exclusive_Process", "P8")
    assert devices[1]["compute_capability"] is None
    assert devices[1]["pcie"] is None
    assert devices[1]["persistence_mode"] is None
    assert (devices[1]["compute_mode"], devices[1]["pstate"]) == (None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", [0]), ("0-3", [0, 1, 2, 3]), ("0-1,8,10-11\n", [0, 1, 8, 10, 11]), ("", [])],
)
def test_parse_cpu_list(text, expected):
    assert parse_cpu_list(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("32K", 32768), ("2048 kB", 2 << 20), ("1M", 1 << 20), ("12", 12), ("lots", None)],
)
def test_parse_size(text, expected):
    assert _parse_size(text) == expected


def test_missing_files_give_empty_facts(tmp_path):
    host = Host(tmp_path)
    facts = cpu_facts(host)
    assert facts["model"] is None
    assert facts["caches"] == []
    assert facts["usable_cpus"] >= 1
    assert memory_facts(host)["total_bytes"] is None
    assert numa_facts(host) == {"nodes": []}
    assert gpu_facts(host)["devices"] == []


def test_live_machine_agrees_with_os():
    facts = cpu_facts(LIVE)
    assert facts["logical_cores"] == os.cpu_count()
    assert facts["physical_cores"] in {psutil.cpu_count(logical=False), None}
    assert facts["affinity"] == sorted(os.sched_getaffinity(0))
    assert 1 <= facts["usable_cpus"] <= len(os.sched_getaffinity(0))
    mem = memory_facts(LIVE)
    vm = psutil.virtual_memory()
    assert mem["total_bytes"] == vm.total
    assert 0 < mem["available_bytes"] <= mem["total_bytes"]
