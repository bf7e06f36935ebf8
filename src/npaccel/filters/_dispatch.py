"""Choosing the backend module for a call (see npaccel.backends)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from npaccel import backends

backends.register("filters", "numpy", "npaccel.filters._scipy")
backends.register("filters", "cpu", "npaccel.filters._cpu")


def backend_module(backend: str | None, input: Any, out: Any = None) -> ModuleType:
    name, module = backends.implementation("filters", backend, input)
    if name == "cpu" and any(
        getattr(a, "dtype", None) is not None and a.dtype.kind == "c" for a in (input, out)
    ):
        # Complex data takes the reference path (documented in docs/filters.md).
        module = backends.implementation("filters", "numpy", input)[1]
    if isinstance(input, np.memmap):
        # Out of core: when the output is a memmap too, kernels run chunk by chunk in
        # bounded memory (docs/data-chunked.md); any other output goes straight through.
        from npaccel.data._chunked import filters_backend

        return filters_backend(module)
    return module
