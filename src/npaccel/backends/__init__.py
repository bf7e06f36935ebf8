"""Backend registry: which engine runs an operation, chosen by name or by the array type.

An op family (``"filters"`` today; linalg, fft later) maps backend names to the module that
implements it, as import paths, so nothing is imported until first used and the GPU and Dask
issues register theirs the same way::

    register("filters", "cuda", "npaccel.filters._cuda", array_type="cupy.ndarray")

Array types are recognised through ``sys.modules``: checking "is this a CuPy array?"
never imports CuPy.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["BackendError", "available", "backend_for_array", "implementation", "register"]


class BackendError(ValueError):
    """An unknown backend, or one whose libraries are not installed."""


@dataclass(frozen=True)
class _Entry:
    module: str
    extra: str | None  # the pip extra that installs what the module needs


_REGISTRY: dict[str, dict[str, _Entry]] = {}
# (module name, type name) → backend name; the first match wins.
_ARRAY_TYPES: list[tuple[str, str, str]] = []


def register(
    family: str, name: str, module: str, *, array_type: str | None = None, extra: str | None = None
) -> None:
    """Declare that ``module`` implements op ``family`` for backend ``name``.

    ``array_type`` ("cupy.ndarray", "dask.array.Array") makes inputs of that type choose
    this backend; ``extra`` names the pip extra to suggest when the import fails.
    """
    _REGISTRY.setdefault(family, {})[name] = _Entry(module, extra)
    if array_type is not None:
        mod, _, typ = array_type.rpartition(".")
        if (mod, typ, name) not in _ARRAY_TYPES:
            _ARRAY_TYPES.append((mod, typ, name))


def backend_for_array(array: Any) -> str | None:
    """Backend named by an array's type (NumPy → "cpu"), or None if unknown."""
    for mod, typ, name in _ARRAY_TYPES:
        module = sys.modules.get(mod)
        cls = getattr(module, typ, None) if module is not None else None
        if cls is not None and isinstance(array, cls):
            return name
    if isinstance(array, np.ndarray):
        return "cpu"
    return None


def implementation(family: str, backend: str | None, array: Any) -> tuple[str, ModuleType]:
    """The backend name and its module for ``family``, from ``backend=`` or the array type."""
    entries = _REGISTRY.get(family, {})
    name = backend if backend is not None else backend_for_array(array)
    if name is None:
        raise TypeError(
            f"`input` must be a NumPy array or a registered array type "
            f"({', '.join(sorted({f'{m}.{t}' for m, t, _ in _ARRAY_TYPES})) or 'none'}); "
            f"got {type(array).__name__}"
        )
    if name not in entries:
        raise BackendError(f"`backend` must be one of {sorted(entries)} for {family}; got {name!r}")
    entry = entries[name]
    try:
        return name, importlib.import_module(entry.module)
    except ImportError as exc:
        hint = f'; install it with pip install "npaccel[{entry.extra}]"' if entry.extra else ""
        raise BackendError(f"backend {name!r} for {family} is not available: {exc}{hint}") from exc


def available(family: str) -> list[str]:
    """Backends of ``family`` whose modules import here."""
    names = []
    for name, entry in _REGISTRY.get(family, {}).items():
        try:
            importlib.import_module(entry.module)
        except ImportError:
            continue
        names.append(name)
    return names
