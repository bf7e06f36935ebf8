"""Choosing the backend module for a call (see npaccel.backends)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from npaccel import backends

backends.register("filters", "numpy", "npaccel.filters._scipy")
backends.register("filters", "cpu", "npaccel.filters._cpu")


def backend_module(backend: str | None, input: Any, out: Any = None) -> ModuleType:
    name, module = backends.implementation("filters", backend, input)
    if name == "cpu" and any(
        getattr(a, "dtype", None) is not None and a.dtype.kind == "c" for a in (input, out)
    ):
        # Complex data takes the reference path (documented in docs/filters.md).
        return backends.implementation("filters", "numpy", input)[1]
    return module
