"""The device operations :func:`npaccel.cuda.stream_map` is scheduled with, behind one small
interface so that the scheduling is tested without a GPU.

An *ops* object allocates pinned host buffers and device buffers, queues copies on streams,
records and waits for events, makes a stream current (``on``) and calls ``func`` there
(``call``: a fake GPU that computes on the host finishes the stream's copies first). Buffers are
flat ``uint8`` arrays; the pipeline cuts typed views out of them. Two implementations:

* :class:`CupyOps` — the real thing: CuPy streams and events, pinned memory from CuPy's
  pinned pool, copies with ``cudaMemcpyAsync`` straight from/to the pinned buffers
  (``MemoryPointer.copy_from_host_async``), never through ``cupy.asarray``, which would
  stage the data once more through a pinned buffer of its own.
* :class:`HostOps` — used under numba-cuda's simulator, where "device arrays" are NumPy
  arrays (as everywhere in npaccel): every operation completes when it is issued.

The tests add a third, with worker-thread streams, random delays and poisoned buffers.
Nothing here imports CuPy until :class:`CupyOps` is made.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["CupyOps", "HostOps"]


class HostOps:
    """Synchronous stand-ins on the host: streams and events are ``None``, copies are done
    when issued, device arrays are NumPy arrays."""

    device_kind = "a NumPy array (numba-cuda simulator)"

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def new_stream(self) -> Any:
        return None

    def current_stream(self) -> Any:
        return None

    def on(self, stream: Any) -> contextlib.AbstractContextManager[Any]:
        return contextlib.nullcontext()

    def call(self, func: Any, argument: Any, stream: Any) -> Any:
        return func(argument)

    def pinned(self, nbytes: int) -> np.ndarray:
        return np.empty(nbytes, dtype=np.uint8)

    def release(self, buffer: np.ndarray) -> None:
        pass

    def device_empty(self, nbytes: int, stream: Any) -> np.ndarray:
        return np.empty(nbytes, dtype=np.uint8)

    def h2d(self, dst: np.ndarray, src: np.ndarray, stream: Any) -> None:
        dst[...] = src

    def d2h(self, dst: np.ndarray, src: np.ndarray, stream: Any) -> None:
        dst[...] = src.reshape(-1).view(np.uint8)

    def record(self, stream: Any) -> Any:
        return None

    def wait_event(self, stream: Any, event: Any) -> None:
        pass

    def synchronize(self, event: Any) -> None:
        pass

    def synchronize_stream(self, stream: Any) -> None:
        pass

    def as_device_array(self, value: Any) -> np.ndarray | None:
        """``value`` as a device array, or None when it is not one."""
        if isinstance(value, np.generic):  # NumPy reductions give scalars, CuPy's 0-d arrays
            return np.asarray(value)
        return value if isinstance(value, np.ndarray) else None

    def contiguous(self, array: np.ndarray) -> np.ndarray:
        return array if array.flags.c_contiguous else array.copy(order="C")


class CupyOps:
    """CuPy streams, events and pinned memory on the device current when it is made."""

    device_kind = "a CuPy array"

    def __init__(self, cupy: ModuleType) -> None:
        import cupyx

        self.cupy = cupy
        self._empty_pinned = cupyx.empty_pinned
        self.device_id = cupy.cuda.Device().id  # the caller's current device, for every thread

    def _device(self) -> Any:
        # a new Device per `with`: a Device keeps the devices it replaced in a list of its
        # own, which two threads entering the same object would mix up
        return self.cupy.cuda.Device(self.device_id)

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        return self._device()

    def new_stream(self) -> Any:
        # non_blocking: no implicit synchronisation with the legacy default stream
        return self.cupy.cuda.Stream(non_blocking=True)

    def current_stream(self) -> Any:
        return self.cupy.cuda.get_current_stream()

    @contextlib.contextmanager
    def on(self, stream: Any) -> Iterator[None]:
        with self._device(), stream:
            yield

    def call(self, func: Any, argument: Any, stream: Any) -> Any:
        """``func(argument)``, inside ``on(stream)``: its kernels queue after the copy in."""
        return func(argument)

    def pinned(self, nbytes: int) -> np.ndarray:
        # From CuPy's pinned pool (cudaHostAlloc, portable): a buffer dropped while a copy
        # is still reading it would be handed out again, so the pipeline drops buffers only
        # after their copies' events completed.
        return self._empty_pinned((nbytes,), dtype=np.uint8)

    def release(self, buffer: np.ndarray) -> None:
        pass  # the pool gets it back when the last view of it is gone

    def device_empty(self, nbytes: int, stream: Any) -> Any:
        # CuPy's pool keeps freed blocks per stream, so reuse is ordered on this stream.
        with self._device(), stream:
            return self.cupy.empty(nbytes, dtype=self.cupy.uint8)

    def h2d(self, dst: Any, src: np.ndarray, stream: Any) -> None:
        if src.nbytes:
            dst.data.copy_from_host_async(ctypes.c_void_p(src.ctypes.data), src.nbytes, stream)

    def d2h(self, dst: np.ndarray, src: Any, stream: Any) -> None:
        if dst.nbytes:
            src.data.copy_to_host_async(ctypes.c_void_p(dst.ctypes.data), dst.nbytes, stream)

    def record(self, stream: Any) -> Any:
        # block=True: the host sleeps in synchronize() instead of spinning a core
        event = self.cupy.cuda.Event(block=True, disable_timing=True)
        event.record(stream)  # explicit: Event.record() alone means the null stream
        return event

    def wait_event(self, stream: Any, event: Any) -> None:
        stream.wait_event(event)

    def synchronize(self, event: Any) -> None:
        event.synchronize()  # releases the GIL

    def synchronize_stream(self, stream: Any) -> None:
        stream.synchronize()

    def as_device_array(self, value: Any) -> Any:
        return value if isinstance(value, self.cupy.ndarray) else None

    def contiguous(self, array: Any) -> Any:
        return array if array.flags.c_contiguous else array.copy(order="C")
