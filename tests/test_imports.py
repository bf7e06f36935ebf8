"""`import npaccel` stays light: no optional or heavy library comes with it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

OPTIONAL = ("cupy", "dask", "distributed", "cv2", "PIL", "tifffile", "torch", "matplotlib",
            "prometheus_client", "pynvml")  # fmt: skip
DEFERRED = ("numba", "scipy", "threadpoolctl", "rich", "click")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in json.loads(out.stdout)}


def test_import_npaccel_imports_no_optional_library():
    loaded = _modules_after("import npaccel")
    assert "npaccel" in loaded
    assert not loaded & set(OPTIONAL)
    assert not loaded & set(DEFERRED), "heavy core libraries load on first use, not on import"


def test_doctor_import_stays_lazy_too():
    loaded = _modules_after("import npaccel.doctor")
    assert not loaded & set(OPTIONAL)


def test_detector_sees_an_optional_import():
    # The check above can fail: an optional library, once imported, is visible to it.
    pytest.importorskip("cv2")
    assert "cv2" in _modules_after("import cv2") & set(OPTIONAL)
