"""GPU plumbing shared by npaccel's cuda backends.

* `stream_map` — run a function over host batches on the GPU with host→device copies,
  compute and device→host copies overlapped on several CUDA streams (pinned, reused buffers).
* `to_device_batches` — the same pipeline without a function: host batches (or ``(X, y)``
  tuples) delivered as CuPy arrays, e.g. from :class:`npaccel.data.ArrayLoader`.
* `available` — whether a CUDA GPU is usable here through CuPy.
* `simulated` — whether numba-cuda's CPU simulator stands in for the GPU
  (``NUMBA_ENABLE_CUDASIM=1``: how the kernels are tested on machines without one).

Importing this module imports neither CuPy nor numba-cuda.
"""

from __future__ import annotations

from typing import Any

from npaccel.cuda._device import simulated

__all__ = ["available", "simulated", "stream_map", "to_device_batches"]


def available() -> bool:
    """Whether CuPy imports and sees at least one CUDA device (the simulator does not count)."""
    try:
        import cupy

        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:  # ImportError, CUDARuntimeError (no driver), ...: no usable GPU
        return False


def __getattr__(name: str) -> Any:
    if name in ("stream_map", "to_device_batches"):
        from npaccel.cuda import _stream

        return getattr(_stream, name)
    raise AttributeError(f"module 'npaccel.cuda' has no attribute {name!r}")
