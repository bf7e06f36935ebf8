"""GPU and CuPy probes: the driver's CUDA version, PCIe link state from nvidia-smi, NVML
and sysfs, CuPy's wheels, and the GPU section of the rendered report."""

from __future__ import annotations

import importlib.metadata
import types

import pytest
from rich.console import Console

import npaccel.doctor as doctor
from npaccel._sysfs import Host
from npaccel.doctor._machine import (
    CUDA_MIN_DRIVER,
    cuda_for_driver,
    cuda_version_text,
    gpu_facts,
    nvml_devices,
    sysfs_bus_id,
    sysfs_pcie_link,
)
from npaccel.doctor._process import cupy_facts, cupy_packages
from npaccel.doctor._render import render


@pytest.mark.parametrize(
    ("driver", "cuda"),
    [
        ("535.161.08", "12.2"), ("550.54.14", "12.4"), ("550.54.13", "12.3"),
        ("470.82.01", "11.4"), ("525.60.13", "12.0"), ("520.61.05", "11.8"),
        ("580.65.06", "13.0"), ("999.1", "13.0"), ("410.48", "10.0"), ("390.157", None),
        ("garbage", None), ("", None), (None, None),
    ],
)  # fmt: skip
def test_cuda_for_driver(driver, cuda):
    assert cuda_for_driver(driver) == cuda


def test_driver_table_is_newest_first_with_rising_drivers():
    def key(v):
        return tuple(int(p) for p in v.split("."))

    cudas = [key(c) for c, _ in CUDA_MIN_DRIVER]
    drivers = [key(d) for _, d in CUDA_MIN_DRIVER]
    assert cudas == sorted(cudas, reverse=True)
    assert drivers == sorted(drivers, reverse=True)


@pytest.mark.parametrize(("value", "text"), [(12040, "12.4"), (11080, "11.8"), (13000, "13.0"),
                                             (0, None), (None, None)])  # fmt: skip
def test_cuda_version_text(value, text):
    assert cuda_version_text(value) == text


@pytest.mark.parametrize(
    ("bus", "addr"),
    [("00000000:3B:00.0", "0000:3b:00.0"), ("0000:18:00.0", "0000:18:00.0"),
     ("00000001:AF:1F.7", "0001:af:1f.7"), ("bogus", None), (None, None)],
)  # fmt: skip
def test_sysfs_bus_id(bus, addr):
    assert sysfs_bus_id(bus) == addr


def write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize(
    ("speeds", "link"),
    [
        (("16.0 GT/s PCIe", "16.0 GT/s PCIe", "8", "16"), (4, 4, 8, 16)),
        (("2.5 GT/s", "8 GT/s", "16", "16"), (1, 3, 16, 16)),  # older kernels: no "PCIe"
        (("Unknown", "32.0 GT/s PCIe", "0", "16"), (None, 5, 0, 16)),
    ],
)
def test_sysfs_pcie_link(tmp_path, speeds, link):
    base = "sys/bus/pci/devices/0000:3b:00.0"
    names = ("current_link_speed", "max_link_speed", "current_link_width", "max_link_width")
    write(tmp_path, {f"{base}/{n}": f"{v}\n" for n, v in zip(names, speeds, strict=True)})
    got = sysfs_pcie_link(Host(tmp_path), "00000000:3B:00.0")
    assert got == {"gen_current": link[0], "gen_max": link[1], "width_current": link[2],
                   "width_max": link[3], "source": "sysfs"}  # fmt: skip
    assert sysfs_pcie_link(Host(tmp_path), "00000000:3C:00.0") is None  # no such device


def test_smi_without_link_state_falls_back_to_sysfs(tmp_path):
    smi = ("0, Tesla T4, 15360, 470.82.01, 7.5, 00000000:3B:00.0, [N/A], [N/A], [N/A], "
           "[N/A], Disabled, Default, P8\n")  # fmt: skip
    write(tmp_path, {
        "_commands/nvidia-smi": smi,
        "sys/bus/pci/devices/0000:3b:00.0/current_link_speed": "8.0 GT/s PCIe\n",
        "sys/bus/pci/devices/0000:3b:00.0/max_link_speed": "8.0 GT/s PCIe\n",
        "sys/bus/pci/devices/0000:3b:00.0/current_link_width": "8\n",
        "sys/bus/pci/devices/0000:3b:00.0/max_link_width": "16\n",
    })  # fmt: skip
    gpu = gpu_facts(Host(tmp_path))
    assert gpu["cuda_driver_version"] == "11.4"
    (device,) = gpu["devices"]
    assert device["pcie"] == {"gen_current": 3, "gen_max": 3, "width_current": 8,
                              "width_max": 16, "source": "sysfs"}  # fmt: skip
    ids = {f.id for f in doctor.evaluate({"gpu": gpu, "cupy": {"installed": False}})}
    assert ids == {"gpu-pcie-degraded", "gpu-persistence-off", "gpu-without-cupy"}


class _NVMLError(Exception):
    pass


def _nvml(**overrides):
    """A stand-in for the pynvml binding with one H100 answering every query as NVML does
    (values from an H100 PCIe node); ``overrides`` replace functions, e.g. to raise."""

    def unsupported(*_):
        raise _NVMLError("Not Supported")

    calls = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlSystemGetDriverVersion": lambda: "550.54.15",
        "nvmlSystemGetCudaDriverVersion": lambda: 12040,
        "nvmlDeviceGetCount": lambda: 1,
        "nvmlDeviceGetHandleByIndex": lambda i: f"handle{i}",
        "nvmlDeviceGetName": lambda h: b"NVIDIA H100 PCIe",
        "nvmlDeviceGetCudaComputeCapability": lambda h: (9, 0),
        "nvmlDeviceGetMemoryInfo": lambda h: types.SimpleNamespace(total=85520809984),
        "nvmlDeviceGetPciInfo": lambda h: types.SimpleNamespace(busId=b"00000000:CA:00.0"),
        "nvmlDeviceGetCurrPcieLinkGeneration": lambda h: 5,
        "nvmlDeviceGetMaxPcieLinkGeneration": lambda h: 5,
        "nvmlDeviceGetCurrPcieLinkWidth": lambda h: 8,
        "nvmlDeviceGetMaxPcieLinkWidth": lambda h: 16,
        "nvmlDeviceGetPersistenceMode": lambda h: 1,
        "nvmlDeviceGetComputeMode": lambda h: 3,
        "nvmlDeviceGetPerformanceState": lambda h: 0,
    }
    calls.update({k: (unsupported if v is None else v) for k, v in overrides.items()})
    return types.SimpleNamespace(**calls)


def test_nvml_devices_map_every_query():
    devices, cuda = nvml_devices(_nvml())
    assert cuda == "12.4"
    assert devices == [{
        "index": 0, "name": "NVIDIA H100 PCIe", "memory_total_bytes": 85520809984,
        "driver_version": "550.54.15", "compute_capability": "9.0",
        "pci_bus_id": "00000000:CA:00.0",
        "pcie": {"gen_current": 5, "gen_max": 5, "width_current": 8, "width_max": 16,
                 "source": "nvml"},
        "persistence_mode": True, "compute_mode": "Exclusive_Process", "pstate": "P0",
    }]  # fmt: skip


def test_nvml_unsupported_queries_become_none():
    devices, cuda = nvml_devices(_nvml(
        nvmlSystemGetCudaDriverVersion=None, nvmlDeviceGetCurrPcieLinkGeneration=None,
        nvmlDeviceGetCurrPcieLinkWidth=None, nvmlDeviceGetMaxPcieLinkGeneration=None,
        nvmlDeviceGetMaxPcieLinkWidth=None, nvmlDeviceGetPersistenceMode=None,
        nvmlDeviceGetPerformanceState=lambda h: 32,  # NVML_PSTATE_UNKNOWN
    ))  # fmt: skip
    assert cuda is None
    (device,) = devices
    assert (device["pcie"], device["persistence_mode"], device["pstate"]) == (None, None, None)
    assert nvml_devices(_nvml(nvmlInit=None)) is None  # no driver: NVML does not start


@pytest.mark.parametrize(
    ("dists", "expected"),
    [
        ([("cupy-cuda12x", "13.3.0"), ("numpy", "2.1")], [("cupy-cuda12x", "13.3.0", 12)]),
        ([("cupy_cuda11x", "12.3.0"), ("cupy-cuda12x", "13.3.0")],
         [("cupy-cuda11x", "12.3.0", 11), ("cupy-cuda12x", "13.3.0", 12)]),
        ([("cupy", "14.0.0")], [("cupy", "14.0.0", None)]),  # a source build
        ([("cupy-cuda102", "9.6.0"), ("cupy-cuda117", "11.6.0"), ("CuPy-CUDA13x", "14.0")],
         [("cupy-cuda102", "9.6.0", 10), ("cupy-cuda117", "11.6.0", 11),
          ("cupy-cuda13x", "14.0", 13)]),
        ([("cupy-rocm-5-0", "13.0"), ("cupyx-extra", "1.0")], []),  # ROCm is not CUDA
    ],
)  # fmt: skip
def test_cupy_packages(dists, expected):
    got = cupy_packages(dists)
    assert [(p["name"], p["version"], p["cuda_major"]) for p in got] == expected


def test_cupy_facts_list_the_installed_wheels():
    facts = cupy_facts(probe_devices=False)
    names = {(d.metadata.get("Name") or "").lower() for d in importlib.metadata.distributions()}
    assert {p["name"] for p in facts["packages"]} <= {n.replace("_", "-") for n in names}
    assert "device_count" not in facts  # not probed: CuPy is not imported for this
    if facts["installed"]:
        assert facts["version"] == f"{facts['packages'][0]['name']} " \
            f"{facts['packages'][0]['version']}"  # fmt: skip


def _text(report) -> str:
    console = Console(record=True, width=240, color_system=None)
    for part in render(report):
        console.print(part)
    return console.export_text()


def test_render_shows_gpu_facts(recorded):
    report = doctor.diagnose(host=recorded("xeon-2socket-cgroup2-a100"))
    lines = {" ".join(line.split()) for line in _text(report).splitlines()}
    assert (
        "NVIDIA driver 535.161.08, supports CUDA 12.2 (driver-table); GPUs via nvidia-smi" in lines
    )
    assert (
        "GPU 1 NVIDIA A100-SXM4-40GB, 40.0 GiB, cc 8.0, PCIe gen4 x8 (max gen4 x16), P0, "
        "persistence on, compute mode Default, 00000000:0F:00.0"
    ) in lines
    assert (
        "GPU 0 NVIDIA A100-SXM4-40GB, 40.0 GiB, cc 8.0, PCIe gen4 x16, P0, persistence on, "
        "compute mode Default, 00000000:07:00.0"
    ) in lines  # full width: no "(max ...)"
    assert any(line.startswith("WARN gpu-pcie-degraded") for line in lines)


def test_render_shows_cupy_facts(recorded):
    report = doctor.diagnose(host=recorded("epyc-kvm-2cpu"))
    report["facts"]["cupy"] = {
        "installed": True, "version": "cupy-cuda12x 13.3.0",
        "packages": [{"name": "cupy-cuda12x", "version": "13.3.0", "cuda_major": 12}],
        "cuda_runtime_version": "12.8", "cuda_driver_version": "12.4", "device_count": 1,
        "runs": False, "run_error": "CompileException: libnvrtc.so.12 not found",
    }  # fmt: skip
    assert (
        "cupy-cuda12x 13.3.0 (CUDA 12.8 runtime, CUDA 12.4 driver), sees 1 GPU(s), kernels "
        "fail (CompileException: libnvrtc.so.12 not found)"
    ) in _text(report)
