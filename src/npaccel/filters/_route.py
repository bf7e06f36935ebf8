"""Whole-call routing of the public filters by array type, before any NumPy validation.

Most backends run on validated NumPy arrays behind `backend_module` (cpu, numpy). A Dask
array cannot be validated that way — ``np.asarray`` would compute it — so the public
functions are wrapped: a Dask input (or ``backend='dask'``) goes to npaccel.filters._dask,
which re-calls the same function on every chunk; everything else goes straight through.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from npaccel import backends

__all__ = ["routed"]

F = TypeVar("F", bound=Callable[..., Any])

backends.register("filters", "dask", "npaccel.filters._dask", array_type="dask.array.Array",
                  extra="dask")  # fmt: skip


def _is_dask(array: Any) -> bool:
    module = sys.modules.get("dask.array")  # never imports Dask
    return module is not None and isinstance(array, module.Array)


def routed(fn: F) -> F:
    """``fn`` with Dask inputs and ``backend='dask'`` sent to the dask backend."""

    @functools.wraps(fn)
    def wrapper(input, *args, **kwargs):
        backend = kwargs.get("backend")
        dask_input = _is_dask(input)
        if not dask_input and backend != "dask":
            return fn(input, *args, **kwargs)
        if backend not in (None, "dask"):
            raise backends.BackendError(f"`backend` {backend!r} takes NumPy arrays; a Dask "
                                        "array runs on backend 'dask' (or leave it None)")
        _, dask_backend = backends.implementation("filters", "dask", input)  # extra named
        rest = {k: v for k, v in kwargs.items() if k != "backend"}
        if dask_input:
            return dask_backend.call(fn, input, args, rest)
        return dask_backend.compute_numpy(fn, input, args, rest)

    return wrapper  # type: ignore[return-value]
