"""Choosing the backend module for a call (see npaccel.backends)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from npaccel import backends

backends.register("filters", "numpy", "npaccel.filters._scipy")
backends.register("filters", "cpu", "npaccel.filters._cpu")


def backend_module(backend: str | None, input: Any) -> ModuleType:
    name, module = backends.implementation("filters", backend, input)
    if name == "cpu" and getattr(input, "dtype", None) is not None and input.dtype.kind == "c":
        # Complex data takes the reference path (documented in docs/filters.md).
        return backends.implementation("filters", "numpy", input)[1]
    return module
