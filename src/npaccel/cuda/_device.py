"""Where device arrays come from: CuPy on a GPU, NumPy under numba-cuda's simulator.

Kernels are written in numba-cuda, so on a machine without a GPU they run under the CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``), which takes NumPy arrays as device memory. Everything
here answers "which array module holds device data now" so the backends are written once:
``xp`` is ``cupy`` on a GPU and ``numpy`` in simulation. Nothing imports CuPy until a device
array is needed, and CuPy arrays are recognised through ``sys.modules``.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

__all__ = [
    "array_module",
    "is_cupy",
    "launch_stream",
    "require_cupy",
    "simulated",
    "thread_stream",
    "to_device",
    "to_host",
]


def simulated() -> bool:
    """Whether numba-cuda runs kernels in its CPU simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)


def is_cupy(array: Any) -> bool:
    """Whether ``array`` is a CuPy ndarray (never imports CuPy)."""
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(array, cupy.ndarray)


def require_cupy() -> ModuleType:
    """CuPy with a usable GPU, or a BackendError that says what is missing and how to
    install it."""
    from npaccel.backends import BackendError

    try:
        import cupy
    except ImportError as exc:
        raise BackendError(f'backend \'cuda\' needs CuPy ({exc}); install it with pip install '
                           '"npaccel[gpu]" on a machine with an NVIDIA GPU') from exc  # fmt: skip
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError: no driver, or one too old for this CuPy
        raise BackendError(f"backend 'cuda' found no usable GPU: {exc} (npaccel doctor "
                           "explains the driver and CUDA versions)") from exc  # fmt: skip
    if count == 0:
        raise BackendError("backend 'cuda' found no CUDA device")
    return cupy


def array_module(*arrays: Any) -> ModuleType:
    """The module that allocates device arrays for this call: CuPy when any argument is a
    CuPy array or a real GPU is in use; NumPy under the simulator."""
    if any(is_cupy(a) for a in arrays):
        return sys.modules["cupy"]
    if simulated():
        return np
    return require_cupy()


def to_device(host: np.ndarray, xp: ModuleType) -> Any:
    """A C-contiguous device copy of ``host`` (under the simulator, a host copy)."""
    if xp is np:
        return np.array(host, order="C", copy=True)
    return xp.asarray(np.ascontiguousarray(host))


def to_host(device: Any, out: np.ndarray) -> np.ndarray:
    """Copy ``device`` into the NumPy array ``out`` (any layout) and return ``out``."""
    if isinstance(device, np.ndarray):
        out[...] = device
    elif out.flags.c_contiguous and out.dtype == device.dtype:
        device.get(out=out)
    else:
        out[...] = device.get()
    return out


def launch_stream(xp: ModuleType) -> Any:
    """The numba-cuda stream to launch kernels on: CuPy's current stream, so kernels are
    ordered with the CuPy operations around them (the simulator's default stream there)."""
    from numba import cuda

    if xp is np:
        return cuda.stream()  # the simulator runs launches in order, on the host
    return cuda.external_stream(xp.cuda.get_current_stream().ptr)


_local = threading.local()


@contextlib.contextmanager
def thread_stream() -> Iterator[None]:
    """Make this thread's own CUDA stream (created once, non-blocking) CuPy's current one
    for the block, so work queued by different threads overlaps on the GPU; under the
    simulator, or without a GPU, it does nothing."""
    if simulated() or "cupy" not in sys.modules:
        yield
        return
    cupy = sys.modules["cupy"]
    stream = getattr(_local, "stream", None)
    if stream is None:
        stream = _local.stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        yield
