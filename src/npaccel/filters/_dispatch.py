"""Choosing the backend module for a call (see npaccel.backends)."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from npaccel import backends
from npaccel.cuda._device import is_cupy

backends.register("filters", "numpy", "npaccel.filters._scipy")
backends.register("filters", "cpu", "npaccel.filters._cpu")
backends.register("filters", "cuda", "npaccel.filters._cuda", array_type="cupy.ndarray",
                  extra="gpu")  # fmt: skip


def backend_module(backend: str | None, input: Any, out: Any = None) -> ModuleType:
    name, module = backends.implementation("filters", backend, input)
    if name != "cuda" and is_cupy(input):
        raise backends.BackendError(f"`backend` {name!r} takes NumPy arrays; a CuPy array runs "
                                    "on backend 'cuda' (or leave it None)")  # fmt: skip
    if name == "cuda" and any(
        getattr(a, "dtype", None) is not None and a.dtype.kind == "c" for a in (input, out)
    ):
        # Complex data takes the GPU reference path, cupyx.scipy.ndimage (docs/filters.md).
        return _cupyx_reference()
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


def _cupyx_reference() -> ModuleType:
    from npaccel.filters import _cupyx

    return _cupyx
