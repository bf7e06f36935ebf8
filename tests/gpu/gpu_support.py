"""What the GPU tests share: the module-level skip where no real CUDA device is usable, and
tests/filters' oracle loaded as a plain module (a ``from conftest import`` here could find
another directory's conftest)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from npaccel.cuda import available, simulated


def require_device() -> ModuleType:
    """CuPy, or skip the calling test module: CuPy missing, numba-cuda's simulator on, or
    no usable GPU."""
    cupy = pytest.importorskip("cupy")
    if simulated() or not available():
        pytest.skip("needs a real CUDA device (numba-cuda's simulator or no GPU here)",
                    allow_module_level=True)  # fmt: skip
    return cupy


def filters_oracle() -> ModuleType:
    """tests/filters/conftest.py: the oracle, test data and per-dtype tolerances."""
    name = "npaccel_filters_oracle"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).parents[1] / "filters" / "conftest.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
