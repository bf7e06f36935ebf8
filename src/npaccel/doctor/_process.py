"""Probes of this Python process: versions, NumPy's build and SIMD dispatch, loaded
BLAS/OpenMP libraries, thread settings, Numba, CuPy and Dask. Plain JSON-ready data."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import re
import sys
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

__all__ = [
    "THREAD_ENV_VARS",
    "cupy_facts",
    "cupy_packages",
    "dask_facts",
    "generic_blas_facts",
    "library_owner",
    "numba_facts",
    "numpy_build_facts",
    "numpy_simd_facts",
    "platform_facts",
    "thread_env_facts",
    "threadpool_facts",
    "versions",
]

THREAD_ENV_VARS = (
    "OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "OMP_PROC_BIND", "OMP_PLACES", "OMP_DYNAMIC",
    "OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "MKL_NUM_THREADS", "MKL_THREADING_LAYER",
    "MKL_DYNAMIC", "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS",
    "NUMEXPR_MAX_THREADS", "NUMBA_NUM_THREADS", "NUMBA_THREADING_LAYER",
    "NUMBA_DEFAULT_NUM_THREADS", "KMP_AFFINITY", "GOMP_CPU_AFFINITY",
)  # fmt: skip


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions of npaccel and the libraries it computes with (read without importing)."""
    names = ("npaccel", "numpy", "scipy", "numba", "llvmlite", "threadpoolctl", "psutil")
    return {name: _version(name) for name in names}


def platform_facts() -> dict[str, Any]:
    uname = platform.uname()
    return {
        "os": uname.system,
        "kernel": uname.release,
        "machine": uname.machine,
        "libc": " ".join(platform.libc_ver()).strip() or None,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "python_executable": sys.executable,
        "free_threaded": not getattr(sys, "_is_gil_enabled", lambda: True)(),
    }


def numpy_simd_facts() -> dict[str, Any]:
    """What NumPy's build targets: the baseline compiled into every function, the extra
    targets it dispatches to at run time, and which of those this CPU runs.

    Read from NumPy's own tables, so whatever names this NumPy version uses (``AVX512_SKX``
    in 1.x, ``X86_V4`` in 2.4) come through as they are.
    """
    import numpy as np

    try:
        umath = importlib.import_module("numpy._core._multiarray_umath")
    except ImportError:  # NumPy 1.x
        umath = importlib.import_module("numpy.core._multiarray_umath")
    baseline = list(getattr(umath, "__cpu_baseline__", []))
    dispatch = list(getattr(umath, "__cpu_dispatch__", []))
    features = dict(getattr(umath, "__cpu_features__", {}))
    return {
        "numpy": np.__version__,
        "baseline": baseline,
        "dispatched": dispatch,
        "found": [f for f in dispatch if features.get(f)],
        "not_found": [f for f in dispatch if not features.get(f)],
        "cpu_features": sorted(f for f, on in features.items() if on),
    }


def numpy_build_facts() -> dict[str, Any]:
    """BLAS/LAPACK that NumPy was built against, as ``numpy.show_config`` records it."""
    import numpy as np

    try:
        config = np.show_config(mode="dicts")
    except TypeError:  # NumPy < 1.26 prints only
        return {"blas": None, "lapack": None}
    deps = (config or {}).get("Build Dependencies", {})

    def pick(entry: dict[str, Any] | None) -> dict[str, Any] | None:
        if not entry:
            return None
        keys = ("name", "version", "found", "detection method", "openblas configuration")
        return {k.replace(" ", "_"): entry[k] for k in keys if k in entry}

    return {"blas": pick(deps.get("blas")), "lapack": pick(deps.get("lapack"))}


def library_owner(filepath: str | None) -> str | None:
    """The installed package a shared library came with, from its path:
    ``.../site-packages/opencv_python_headless.libs/libopenblas…so`` → ``opencv_python_headless``.
    None for system libraries."""
    if not filepath:
        return None
    parts = PurePath(filepath).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            i = parts.index(marker)
            if i + 1 < len(parts) - 1:
                return parts[i + 1].removesuffix(".libs").removesuffix(".dylibs")
    return None


def threadpool_facts() -> list[dict[str, Any]]:
    """Every loaded BLAS/LAPACK/OpenMP library (threadpoolctl), with the package it came with."""
    from threadpoolctl import threadpool_info

    return [dict(info, owner=library_owner(info.get("filepath"))) for info in threadpool_info()]


def thread_env_facts(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, str]:
    """Thread-related environment variables that are set, with their values."""
    env = os.environ if environ is None else environ
    return {name: env[name] for name in THREAD_ENV_VARS if name in env}


def numba_facts() -> dict[str, Any]:
    """Numba's version, thread counts and the threading layer it runs parallel code on.

    Starts Numba's thread pool if no parallel code ran yet — what any parallel Numba kernel
    does first — so the layer reported (and the OpenMP runtime it may load) is the real one.
    """
    try:
        import numba
    except ImportError as exc:  # a core dependency, but report rather than crash
        return {"version": None, "import_error": str(exc)}
    facts: dict[str, Any] = {
        "version": numba.__version__,
        "requested_layer": numba.config.THREADING_LAYER,
        "max_threads": numba.config.NUMBA_NUM_THREADS,
    }
    try:
        from numba.np.ufunc import parallel

        parallel._launch_threads()  # what the first parallel kernel (or get_num_threads) does
        facts["threading_layer"] = numba.threading_layer()
        facts["num_threads"] = numba.get_num_threads()
    except Exception as exc:  # e.g. a requested layer that is not installed
        facts["threading_layer"] = None
        facts["num_threads"] = None
        facts["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return facts


def cupy_packages(dists: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """The CuPy distributions among ``(name, version)`` pairs, each with the CUDA major
    version its wheel is built for (``cupy-cuda12x`` → 12, ``cupy-cuda102`` → 10; None for
    a source build named ``cupy``), sorted by name."""
    found = {}
    for name, version in dists:
        m = re.fullmatch(r"cupy(?:[-_]cuda(\d+?)(\d|x))?", name.lower())
        if not m:
            continue
        major = None if m[1] is None else int(m[1])  # cuda12x → 12, cuda102 → 10
        found[name.lower().replace("_", "-")] = {
            "name": name.lower().replace("_", "-"),
            "version": version,
            "cuda_major": major,
        }
    return [found[n] for n in sorted(found)]


def cupy_facts(*, probe_devices: bool) -> dict[str, Any]:
    """CuPy's wheels (and the CUDA each is built for) and, when asked (a GPU is present),
    what CuPy sees: its CUDA runtime, the driver's CUDA, devices, and whether a kernel runs.

    Reading the wheels imports nothing; the probe imports CuPy and compiles and runs one
    tiny elementwise and reduction kernel (cached by CuPy after the first time), the first
    thing any CuPy program does.
    """
    packages = cupy_packages(
        (d.metadata.get("Name", ""), d.version) for d in importlib.metadata.distributions()
    )
    if importlib.util.find_spec("cupy") is None:
        return {"installed": False, "packages": packages}
    first = packages[0] if packages else None
    facts: dict[str, Any] = {
        "installed": True,
        "version": f"{first['name']} {first['version']}" if first else None,
        "packages": packages,
    }
    if not probe_devices:
        return facts
    try:
        import cupy

        runtime = cupy.cuda.runtime
        facts["cuda_runtime_version"] = _cuda_text(runtime.runtimeGetVersion())
        facts["cuda_driver_version"] = _cuda_text(runtime.driverGetVersion())  # 0: no driver
        facts["device_count"] = int(runtime.getDeviceCount())
    except Exception as exc:
        facts["device_count"] = 0
        facts["error"] = _one_line(exc)
        return facts
    if facts["device_count"]:
        try:
            facts["runs"] = float((cupy.arange(4, dtype=cupy.float32) * 2).sum()) == 12.0
        except Exception as exc:  # NVRTC missing, no kernel image for this GPU, ...
            facts["runs"] = False
            facts["run_error"] = _one_line(exc)
    return facts


def _cuda_text(version: int) -> str | None:
    return f"{version // 1000}.{version % 1000 // 10}" if version else None


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def dask_facts() -> dict[str, Any]:
    """Whether Dask (and dask.distributed) is installed, without importing it."""
    return {
        "installed": importlib.util.find_spec("dask") is not None,
        "version": _version("dask"),
        "distributed": _version("distributed"),
    }


# Generic BLAS/LAPACK sonames: a reference (netlib) build, unless they resolve to an
# optimised library (Debian's alternatives often point libblas.so.3 at OpenBLAS).
_GENERIC_BLAS = re.compile(r"^lib(c?blas|lapack|lapacke|refblas|reflapack)(64)?(_?)\.so")
_OPTIMISED_BLAS = re.compile(r"openblas|mkl|blis|atlas|accelerate|armpl|flexiblas|essl|nvpl")


def generic_blas_facts(maps_text: str | None = None) -> list[dict[str, str]]:
    """Generic BLAS/LAPACK libraries mapped into this process (from /proc/self/maps), each
    with the file it resolves to and whether that is an optimised implementation."""
    if maps_text is None:
        try:
            with open("/proc/self/maps") as f:
                maps_text = f.read()
        except OSError:
            return []
    found: dict[str, dict[str, Any]] = {}
    for line in maps_text.splitlines():
        path = line.split(maxsplit=5)[-1] if line.count(" ") >= 5 else ""
        name = PurePath(path).name
        if path.startswith("/") and _GENERIC_BLAS.match(name) and path not in found:
            real = PurePath(os.path.realpath(path))
            # Debian's OpenBLAS alternative keeps the generic name in an "openblas-*" folder.
            where = f"{real.parent.name}/{real.name}".lower()
            found[path] = {
                "path": path,
                "resolves_to": str(real),
                "optimised": bool(_OPTIMISED_BLAS.search(where)),
            }
    return list(found.values())
