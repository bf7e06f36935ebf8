"""What every cuda filter kernel shares: edge modes, the store policy as device functions,
launch shapes, and a call's arrays moved onto the device and back.

Kernels are numba-cuda, specialised by closure constants (radius, mode, output kind) in
factories memoised per static parameters; the same source runs on a GPU and, for tests on
machines without one, under numba-cuda's simulator (``NUMBA_ENABLE_CUDASIM=1``).
"""

from __future__ import annotations

import functools
import math
import sys
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from numba import cuda

from npaccel.cuda._device import (
    array_module,
    is_cupy,
    launch_stream,
    simulated,
    to_device,
    to_host,
)

__all__ = [
    "CONSTANT",
    "MIRROR",
    "MODE_CODE",
    "NEAREST",
    "REFLECT",
    "WRAP",
    "DeviceCall",
    "device_call",
    "device_constant",
    "grid_1d",
    "kernel_dtype",
    "launch",
    "map_index",
    "memoised",
    "rint_even",
    "store_bounds",
    "to_integer",
]

REFLECT, MIRROR, NEAREST, CONSTANT, WRAP = range(5)  # the cpu backend's codes
MODE_CODE = {"reflect": REFLECT, "mirror": MIRROR, "nearest": NEAREST, "constant": CONSTANT,
             "wrap": WRAP}  # fmt: skip

THREADS = 256  # threads per block of the element-wise (grid-stride) kernels
_MAX_BLOCKS = 65535 * 8  # more blocks than any GPU runs at once; the loops stride past it


@cuda.jit(device=True, inline=True)
def map_index(i, n, mode):
    """Index inside [0, n) that position ``i`` reads under ``mode``; -1 means cval.
    (scipy.ndimage's extensions, as `npaccel.filters._cpu._map_index`.)"""
    if i >= 0 and i < n:
        return i
    if mode == NEAREST:
        return 0 if i < 0 else n - 1
    if mode == WRAP:
        j = i % n
        return j + n if j < 0 else j
    if mode == REFLECT:
        p = 2 * n
        j = i % p
        j = j + p if j < 0 else j
        return j if j < n else p - 1 - j
    if mode == MIRROR:
        if n == 1:
            return 0
        p = 2 * n - 2
        j = i % p
        j = j + p if j < 0 else j
        return j if j < n else p - j
    return -1


@cuda.jit(device=True, inline=True)
def rint_even(x):
    """``x`` rounded to the nearest integer, ties to even (``np.rint``), in x's type.
    Written out so the GPU and the simulator round the same way: ``x - floor(x)`` is exact."""
    f = math.floor(x)
    d = x - f
    if d > 0.5:
        return f + 1
    if d < 0.5:
        return f
    half = f * 0.5
    return f + 1 if math.floor(half) != half else f


@cuda.jit(device=True, inline=True)
def to_integer(x, lo, hi):
    """The policy's store into an integer type: NaN → 0, round half to even, saturate to
    [lo, hi] (integral floats the caller chose so the final cast is exact). Saturating
    first keeps ±inf and huge values away from the rounding (the simulator's ``math.floor``
    raises on inf); a value strictly inside (lo, hi) rounds into [lo, hi]."""
    if x != x:
        return lo - lo
    if x <= lo:
        return lo
    if x >= hi:
        return hi
    return rint_even(x)


def store_bounds(dtype: np.dtype) -> tuple[bool, float, float]:
    """``(integer, lo, hi)`` for storing into ``dtype``: the float bounds of 64-bit types
    round up past the range, so step below them (as the cpu backend does)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu":
        return False, 0.0, 0.0
    info = np.iinfo(dtype)
    hi = float(info.max) if info.bits < 64 else float(np.nextafter(float(info.max), 0))
    return True, float(info.min), hi


def grid_1d(n: int, threads: int | None = None) -> tuple[int, int]:
    """``(blocks, threads)`` for a grid-stride loop over ``n`` elements (``threads``:
    `THREADS` as it is at the call, which tests shrink)."""
    threads = THREADS if threads is None else threads
    return max(1, min(-(-n // threads), _MAX_BLOCKS)), threads


def kernel_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype kernels read and write for ``dtype`` (float16 goes through float32)."""
    return np.dtype(np.float32) if np.dtype(dtype) == np.float16 else np.dtype(dtype)


@dataclass
class DeviceCall:
    """One backend call's arrays on the device.

    ``src``: the input, C-contiguous, in a kernel dtype, never aliasing ``dst``.
    ``dst``: where kernels write: ``out`` itself when it is a C-contiguous device array of
    a kernel dtype, else a temporary that `finish` copies into ``out``.
    ``xp``: the array module (CuPy, or NumPy under the simulator); ``stream``: the numba-cuda
    stream kernels launch on (CuPy's current one)."""

    xp: ModuleType
    src: Any
    dst: Any
    out: Any
    stream: Any

    def empty(self, dtype: Any) -> Any:
        """A scratch array of the input's shape on the device."""
        return self.xp.empty(self.src.shape, dtype=dtype)

    def finish(self) -> Any:
        """Copy the result into ``out`` if kernels wrote elsewhere; return ``out``."""
        if self.dst is not self.out:
            with np.errstate(over="ignore"):  # a cast by the policy: beyond float16 is ±inf
                if isinstance(self.out, np.ndarray) and self.xp is not np:
                    to_host(self.dst, self.out)
                else:
                    self.out[...] = self.dst
        return self.out


def device_call(input: Any, out: Any) -> DeviceCall:
    """Move ``input`` (NumPy or CuPy, any layout) and ``out`` onto the device for kernels."""
    xp = array_module(input, out)
    if is_cupy(input):
        src = xp.ascontiguousarray(input)
        if src.dtype == np.float16:
            src = src.astype(np.float32)
    else:
        host = input.astype(np.float32) if input.dtype == np.float16 else input
        src = to_device(host, xp)
    on_device = is_cupy(out) or (xp is np and isinstance(out, np.ndarray))
    if on_device and out.flags.c_contiguous and out.dtype == kernel_dtype(out.dtype):
        dst = out
    else:
        dst = xp.empty(out.shape, dtype=kernel_dtype(out.dtype))
    if src is input and _shares(xp, src, dst):  # output=input: read a copy
        src = src.copy()
    return DeviceCall(xp, src, dst, out, launch_stream(xp))


def _shares(xp: ModuleType, a: Any, b: Any) -> bool:
    return bool(xp.shares_memory(a, b)) if xp is np else bool(xp.may_share_memory(a, b))


def memoised(factory: Callable[..., Any]) -> Callable[..., Any]:
    """Kernel factories are cached per static parameters (and, through numba-cuda, per
    device and argument types)."""
    return functools.lru_cache(maxsize=None)(factory)


def launch(kernel: Any, blocks: Any, threads: Any, stream: Any, *args: Any) -> None:
    """Run ``kernel[blocks, threads, stream](*args)``.

    CuPy arrays go to numba-cuda as views that skip its host synchronisation of their
    stream (it would block at every launch; the launches are already ordered on CuPy's
    current stream). numba-cuda's warning about grids of few blocks, which small inputs
    rightly make, is not raised. Under the simulator, NumPy's warnings about inf and NaN in scalar
    arithmetic, which a GPU computes silently, are not raised."""
    args = tuple(cuda.as_cuda_array(a, sync=False) if is_cupy(a) else a for a in args)
    if not simulated():
        if math.prod(blocks if isinstance(blocks, tuple) else (blocks,)) >= _FEW_BLOCKS:
            kernel[blocks, threads, stream](*args)
            return
        from numba.core.errors import NumbaPerformanceWarning

        # small inputs make small grids, rightly; catch_warnings is process-wide state, so
        # threads (the image runner's workers) take turns at it
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", NumbaPerformanceWarning)
            configured = kernel[blocks, threads, stream]
        configured(*args)
        return
    _lock_simulated_shared_arrays()
    # the simulator runs one kernel at a time (it refuses concurrent ones from threads)
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kernel[blocks, threads, stream](*args)


_WARNINGS_LOCK = threading.RLock()


_FEW_BLOCKS = 128  # numba-cuda warns of under-utilisation below this many blocks
_CONSTANTS: OrderedDict[tuple, Any] = OrderedDict()
_MAX_CONSTANTS = 256


def device_constant(values: np.ndarray, xp: ModuleType) -> Any:
    """A device copy of a small host array (weights, tap offsets, shapes), uploaded once per
    device and content and then reused, so a call queues no host-to-device copy."""
    values = np.ascontiguousarray(values)
    if xp is np:
        return values
    device = int(xp.cuda.runtime.getDevice())
    key = (device, values.dtype.str, values.shape, values.tobytes())
    found = _CONSTANTS.get(key)
    if found is not None:
        _CONSTANTS.move_to_end(key)
        return found
    found = xp.asarray(values)
    xp.cuda.get_current_stream().synchronize()  # complete before another stream reads it
    _CONSTANTS[key] = found
    if len(_CONSTANTS) > _MAX_CONSTANTS:
        _CONSTANTS.popitem(last=False)
    return found


_SHARED_LOCK = threading.Lock()


def _lock_simulated_shared_arrays() -> None:
    """Make the simulator's ``cuda.shared.array`` allocate each array once per block.

    The simulator (one Python thread per CUDA thread) looks the array of a call site up
    and creates it when missing without a lock, so two threads of a block can each create
    one and stop sharing it: a data race that no GPU has, seen here as rare wrong results.
    Wrapped once, the look-up and creation hold a lock; call sites are identified as the
    simulator does (file and line of the caller)."""
    from numba.cuda.simulator import kernelapi

    shared = kernelapi.FakeCUDAShared
    if getattr(shared.array, "npaccel_locked", False):
        return
    unlocked = shared.array

    def array(self, shape, dtype):
        if shape == 0 or not hasattr(self, "_allocations"):  # dynamic shared memory
            return unlocked(self, shape, dtype)
        if isinstance(dtype, kernelapi.types.Type):
            dtype = kernelapi.numpy_support.as_dtype(dtype)
        caller = sys._getframe(1)
        site = (caller.f_code.co_filename, caller.f_lineno)
        with _SHARED_LOCK:
            found = self._allocations.get(site)
            if found is None:
                found = self._allocations[site] = np.empty(shape, dtype)
        return found

    array.npaccel_locked = True
    shared.array = array
