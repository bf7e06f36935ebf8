"""diagnose() end to end: live process facts, recorded machine facts, JSON round trip."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import npaccel.doctor as doctor
from npaccel.doctor._process import (
    generic_blas_facts,
    library_owner,
    numpy_simd_facts,
    thread_env_facts,
)


@pytest.fixture(scope="module")
def live_report():
    return doctor.diagnose()


def test_report_is_json_round_trippable(live_report):
    assert json.loads(json.dumps(live_report)) == live_report
    assert live_report["schema"] == doctor.SCHEMA
    assert live_report["elapsed_s"] > 0


def test_numpy_simd_matches_show_config():
    simd = numpy_simd_facts()
    config = np.show_config(mode="dicts")["SIMD Extensions"]
    assert simd["baseline"] == config["baseline"]
    assert simd["found"] == config["found"]
    assert simd["not_found"] == config["not found"]
    assert set(simd["dispatched"]) == set(config["found"]) | set(config["not found"])


def test_threadpools_are_threadpoolctls_with_owner(live_report):
    pools = live_report["facts"]["threadpools"]
    assert {p["filepath"] for p in pools} == {p["filepath"] for p in threadpool_info()}
    assert all("owner" in p for p in pools)


@pytest.mark.parametrize(
    ("path", "owner"),
    [
        ("/v/lib/python3.11/site-packages/numpy.libs/libscipy_openblas64_-1.so", "numpy"),
        (
            "/v/lib/python3.12/site-packages/opencv_python_headless.libs/libopenblas.so",
            "opencv_python_headless",
        ),
        ("/v/lib/python3.11/site-packages/torch/lib/libgomp-a34b3233.so.1", "torch"),
        ("/usr/lib/python3/dist-packages/sklearn/.libs/libgomp.so.1", "sklearn"),
        ("/usr/lib/x86_64-linux-gnu/libgomp.so.1", None),
        (None, None),
    ],
)
def test_library_owner(path, owner):
    assert library_owner(path) == owner


def test_generic_blas_detection(tmp_path):
    netlib = tmp_path / "libblas.so.3.11.0"
    netlib.write_bytes(b"")
    (tmp_path / "libblas.so.3").symlink_to(netlib)
    openblas = tmp_path / "libopenblasp-r0.3.21.so"
    openblas.write_bytes(b"")
    (tmp_path / "alt").mkdir()
    (tmp_path / "alt" / "liblapack.so.3").symlink_to(openblas)
    maps = "\n".join(
        f"7f00-7f10 r-xp 00000000 08:01 {i} {path}"
        for i, path in enumerate(
            [
                tmp_path / "libblas.so.3",
                tmp_path / "libblas.so.3",
                tmp_path / "alt" / "liblapack.so.3",
                "/usr/lib/libc.so.6",
            ]
        )
    )
    maps += "\n7f20-7f30 rw-p 00000000 00:00 0 \n"  # anonymous mapping: no path
    found = generic_blas_facts(maps)
    assert [(os.path.basename(f["path"]), f["optimised"]) for f in found] == [
        ("libblas.so.3", False),
        ("liblapack.so.3", True),
    ]


def test_thread_env_only_lists_set_variables():
    env = {"OMP_NUM_THREADS": "4", "PATH": "/bin", "NUMBA_NUM_THREADS": "2"}
    assert thread_env_facts(env) == {"OMP_NUM_THREADS": "4", "NUMBA_NUM_THREADS": "2"}


def test_recorded_machine_yields_its_findings(recorded):
    report = doctor.diagnose(host=recorded("xeon-2socket-cgroup2-a100"))
    ids = {f["id"] for f in report["findings"]}
    assert {"numa-multiple-nodes", "swap-in-use", "thp-disabled", "gpu-pcie-degraded"} <= ids
    assert report["facts"]["cpu"]["usable_cpus"] == 4
    assert report["facts"]["gpu"]["source"] == "nvidia-smi"
    (pcie,) = [f for f in report["findings"] if f["id"] == "gpu-pcie-degraded"]
    assert "GPU 1 (NVIDIA A100-SXM4-40GB, 00000000:0F:00.0) runs PCIe gen4 x8" in pcie["evidence"]
    assert "GPU 0" not in pcie["evidence"]
    if not report["facts"]["cupy"]["installed"]:
        assert "gpu-without-cupy" in ids


def test_healthy_recording_has_no_machine_findings(recorded):
    report = doctor.diagnose(host=recorded("epyc-kvm-2cpu"))
    machine_rules = {"numa-multiple-nodes", "swap-in-use", "thp-disabled", "memory-low",
                     "gpu-without-cupy", "gpu-pcie-degraded", "gpu-persistence-off",
                     "gpu-compute-prohibited", "gpu-compute-exclusive"}  # fmt: skip
    assert not machine_rules & {f["id"] for f in report["findings"]}


def test_driver_only_gpu_node_reads_its_link_from_sysfs(recorded):
    report = doctor.diagnose(host=recorded("spr-h100-driver-only"))
    gpu = report["facts"]["gpu"]
    assert (gpu["source"], gpu["cuda_driver_version"]) == ("proc", "12.4")
    assert gpu["devices"][0]["pcie"]["source"] == "sysfs"
    assert "gpu-pcie-degraded" not in {f["id"] for f in report["findings"]}  # gen5 x16 of x16


def test_bad_import_names_the_module():
    with pytest.raises(ImportError, match=r"`--import no_such_mod_q` failed: ModuleNotFoundError"):
        doctor.diagnose(imports=["no_such_mod_q"])


def test_debian_openblas_alternative_is_optimised(tmp_path):
    # Debian's alternatives point libblas.so.3 at .../openblas-pthread/libblas.so.3: a real
    # OpenBLAS with the generic name, told apart from netlib's .../blas/libblas.so.3 by folder.
    for folder in ("openblas-pthread", "blas"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "libblas.so.3").write_bytes(b"")
    maps = "\n".join(
        f"7f00-7f10 r-xp 00000000 08:01 1 {tmp_path / folder / 'libblas.so.3'}"
        for folder in ("openblas-pthread", "blas")
    )
    assert [f["optimised"] for f in generic_blas_facts(maps)] == [True, False]
