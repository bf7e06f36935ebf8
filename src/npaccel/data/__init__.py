"""Arrays larger than memory: a shuffled batch loader over memmaps that feeds training at
disk speed, bounded-memory chunked processing (map_blocks, map_overlap, reduce), and
compressed save/load.

Imports are lazy: ``import npaccel.data`` loads nothing beyond NumPy until a name is used;
torch and zarr load only when their adapters are used.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "ArrayLoader": "_loader",
    "TorchDataset": "_torch",
    "map_blocks": "_chunked",
    "map_overlap": "_chunked",
    "reduce": "_chunked",
    "save": "_store",
    "load": "_store",
    "SaveReport": "_store",
    "StoreError": "_store",
    "NpyError": "_npy",
    "open_npy": "_npy",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'npaccel.data' has no attribute {name!r}")
    value = getattr(import_module(f"npaccel.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
