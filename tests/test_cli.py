"""The CLI, run as users run it: in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from npaccel import __version__
from npaccel.doctor import SCHEMA
from npaccel.doctor._simd import blas_core_tier, cpu_tier


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "npaccel", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        check=False,
    )


def doctor_json(*args: str, env: dict[str, str] | None = None) -> dict:
    done = run("doctor", "--json", *args, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_version_and_help():
    assert run("--version").stdout.strip().endswith(__version__)
    help_text = run("--help").stdout
    assert "doctor" in help_text
    assert "--import" in run("doctor", "--help").stdout


def test_doctor_human_output():
    done = run("doctor")
    assert done.returncode == 0, done.stderr
    for heading in ("npaccel doctor", "System", "CPU", "NumPy build", "Memory", "Thread pools",
                    "GPU and cluster", "Findings"):  # fmt: skip
        assert heading in done.stdout
    assert "Traceback" not in done.stderr


def test_doctor_json_is_the_diagnose_report():
    report = doctor_json()
    assert report["schema"] == SCHEMA
    facts = report["facts"]
    for key in ("platform", "versions", "cpu", "numpy_simd", "numpy_build", "memory", "numa",
                "threadpools", "thread_env", "numba", "gpu", "cupy", "dask"):  # fmt: skip
        assert key in facts
    assert facts["imported"][:2] == ["numpy", "scipy.linalg"]
    assert any(p["owner"] == "numpy" for p in facts["threadpools"])
    for finding in report["findings"]:
        assert set(finding) == {"id", "severity", "title", "evidence", "fix"}


def test_doctor_import_cv2_reports_opencv_openblas():
    pytest.importorskip("cv2")
    report = doctor_json("--import", "cv2")
    cv_pools = [p for p in report["facts"]["threadpools"]
                if p["user_api"] == "blas" and (p["owner"] or "").startswith("opencv")]  # fmt: skip
    assert cv_pools, "opencv-python wheels bundle their own OpenBLAS"
    ids = {f["id"]: f for f in report["findings"]}
    assert ids["blas-multiple"]["severity"] == "warn"
    assert cv_pools[0]["filepath"] in ids["blas-multiple"]["evidence"]
    cpu, blas = (
        cpu_tier(report["facts"]["cpu"]["flags"]),
        blas_core_tier(cv_pools[0]["architecture"]),
    )
    if cpu is not None and blas is not None and blas < cpu:
        assert cv_pools[0]["architecture"] in ids["blas-old-target"]["title"]
    else:
        assert "blas-old-target" not in ids


def test_doctor_import_list_and_repeat():
    report = doctor_json("--import", "json,decimal", "--import", "fractions")
    assert report["facts"]["imported"][2:] == ["json", "decimal", "fractions"]


def test_doctor_import_failure_is_one_error_line():
    done = run("doctor", "--import", "no_such_module_xyz")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("ERROR: `--import no_such_module_xyz` failed: ModuleNotFoundError")


def test_doctor_empty_import_is_a_usage_error():
    done = run("doctor", "--import", "json,,os")
    assert done.returncode == 2
    assert "module names must be non-empty" in done.stderr


def test_thread_env_is_reported_and_judged():
    report = doctor_json(env={"OMP_NUM_THREADS": "64", "OPENBLAS_NUM_THREADS": "64"})
    assert report["facts"]["thread_env"]["OMP_NUM_THREADS"] == "64"
    usable = report["facts"]["cpu"]["usable_cpus"]
    if usable < 64:
        finding = next(f for f in report["findings"] if f["id"] == "threads-oversubscribed")
        assert "OMP_NUM_THREADS=64" in finding["evidence"]
        assert f"OMP_NUM_THREADS={usable}" in finding["fix"]


def test_strict_exits_1_on_error_finding_only():
    env = {"NUMBA_THREADING_LAYER": "no_such_layer"}
    report = doctor_json(env=env)
    assert any(f["id"] == "numba-threading-layer" and f["severity"] == "error"
               for f in report["findings"])  # fmt: skip
    assert run("doctor", "--strict", env=env).returncode == 1
    assert run("doctor", env=env).returncode == 0
    healthy = doctor_json()
    strict = run("doctor", "--strict").returncode
    assert strict == (1 if any(f["severity"] == "error" for f in healthy["findings"]) else 0)


def test_console_script_is_installed():
    exe = os.path.join(os.path.dirname(sys.executable), "npaccel")
    assert os.path.exists(exe)
    done = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert __version__ in done.stdout
