"""npaccel: make NumPy workloads fast on the machine they land on, and prove it.

Importing npaccel is light: it imports NumPy and nothing optional (no CuPy, Dask, OpenCV,
Pillow, torch, matplotlib or Prometheus client); Numba loads on first use of a kernel or
of :mod:`npaccel.threads` setters.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("npaccel")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from npaccel import fft, linalg, threads
from npaccel._inspect import ArrayReport, inspect
from npaccel.einsum import einsum  # the function: it shadows its module as an attribute

__all__ = ["ArrayReport", "__version__", "einsum", "fft", "inspect", "linalg", "threads"]
