"""PyTorch adapter: :class:`TorchDataset`, an ``IterableDataset`` over an
:class:`~npaccel.data.ArrayLoader` that yields tensors and splits an epoch across
``DataLoader`` workers.

torch is imported only when a :class:`TorchDataset` is made: importing this module (or
``npaccel.data``) does not import it. The torch subclass is built on first use and
published as ``_TorchArrayDataset`` in this module (also on attribute access, so that a
spawned worker can unpickle it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from npaccel.data._loader import ArrayLoader

__all__ = ["TorchDataset", "worker_batches", "worker_iteration"]

_INSTALL = "npaccel.data.TorchDataset needs PyTorch, which is not installed: pip install torch"


def worker_batches(num_batches: int, worker_id: int, num_workers: int) -> range:
    """The batches of an epoch that worker ``worker_id`` of ``num_workers`` yields: a
    contiguous share, sizes differing by at most one, so the workers together yield every
    batch once and each reads its own run of blocks (interleaving batches instead would
    make every worker read nearly every block)."""
    if num_workers < 1:
        raise ValueError(f"`num_workers` must be >= 1; got {num_workers!r}")
    if not 0 <= worker_id < num_workers:
        raise ValueError(f"`worker_id` must be in 0..{num_workers - 1}; got {worker_id!r}")
    if num_batches < 0:
        raise ValueError(f"`num_batches` must be >= 0; got {num_batches!r}")
    return range(worker_id * num_batches // num_workers,
                 (worker_id + 1) * num_batches // num_workers)  # fmt: skip


def worker_iteration(loader: ArrayLoader, worker_id: int = 0, num_workers: int = 1,
                     copy: bool | None = None) -> Iterator[Any]:  # fmt: skip
    """One epoch of ``loader`` restricted to this worker's batches (NumPy batches): what
    :class:`TorchDataset` iterates, without torch. Uses up the loader's next epoch, so
    copies of one loader in several workers agree on the order."""
    batches = worker_batches(len(loader), worker_id, num_workers)
    with loader._iterate(batches, copy=copy) as iteration:
        yield from iteration


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc
    return torch


def _as_loader(source: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ArrayLoader:
    if isinstance(source, ArrayLoader):
        if args or kwargs:
            raise TypeError("TorchDataset(loader) takes no further arguments; give either "
                            "an ArrayLoader or ArrayLoader's arguments")  # fmt: skip
        return source
    return ArrayLoader(source, *args, **kwargs)


class TorchDataset:
    """A ``torch.utils.data.IterableDataset`` of an :class:`~npaccel.data.ArrayLoader`'s
    batches as tensors.

    Parameters
    ----------
    loader_or_arrays : ArrayLoader, or ArrayLoader's ``arrays``
        A loader, or the arguments to make one (``*args, **kwargs`` are passed on).

    Notes
    -----
    Use it with ``DataLoader(dataset, batch_size=None, num_workers=k)``: batching is done
    by the loader. Each worker yields a contiguous share of the epoch's batches
    (:func:`worker_batches`), so every sample is seen once per epoch. In the main process
    (``num_workers=0``) tensors are zero-copy views (``torch.from_numpy``) of the loader's
    reused buffers, under the loader's buffer contract; in worker processes each batch is
    a fresh array, since torch pickles it to the main process after the worker moved on.

    With ``num_workers > 0`` and ``persistent_workers=False``, every epoch starts from
    copies of this object, so call ``dataset.set_epoch(epoch)`` before each epoch (as
    with ``DistributedSampler``), or every epoch repeats the same order.

    Raises
    ------
    ImportError
        torch is not installed (``pip install torch``).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        # Python then calls the subclass's __init__ with the same arguments; pickle calls
        # __new__ with none, so both paths only allocate here.
        return super().__new__(_dataset_class() if cls is TorchDataset else cls)


_DATASET_CLASS: type | None = None


def _dataset_class() -> type:
    """The ``TorchDataset`` subclass of ``torch.utils.data.IterableDataset`` (built once)."""
    global _DATASET_CLASS
    if _DATASET_CLASS is not None:
        return _DATASET_CLASS
    torch = _torch()

    class _TorchArrayDataset(TorchDataset, torch.utils.data.IterableDataset):
        def __init__(self, loader_or_arrays: Any, *args: Any, **kwargs: Any) -> None:
            self.loader = _as_loader(loader_or_arrays, args, kwargs)

        def __len__(self) -> int:
            return len(self.loader)

        def set_epoch(self, epoch: int) -> None:
            self.loader.set_epoch(epoch)

        def __iter__(self) -> Iterator[Any]:
            info = torch.utils.data.get_worker_info()
            if info is None:
                batches = worker_iteration(self.loader)
            else:
                batches = worker_iteration(self.loader, info.id, info.num_workers, copy=True)
            for batch in batches:
                if isinstance(batch, np.ndarray):
                    yield torch.from_numpy(batch)
                else:
                    yield tuple(torch.from_numpy(part) for part in batch)

    _TorchArrayDataset.__module__ = __name__
    _TorchArrayDataset.__qualname__ = "_TorchArrayDataset"
    _DATASET_CLASS = _TorchArrayDataset
    return _TorchArrayDataset


def __getattr__(name: str) -> Any:
    if name == "_TorchArrayDataset":
        return _dataset_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
