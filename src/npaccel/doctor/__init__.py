"""``npaccel doctor``: what this machine and NumPy stack can do, and what is misconfigured.

Probes collect plain facts (:func:`collect_facts`), rules turn facts into findings, each
with evidence and a fix (:func:`evaluate`), and :func:`diagnose` returns both as one
JSON-ready dict. ``npaccel doctor`` renders it (``--json`` prints it as is).
"""

from __future__ import annotations

import datetime
import importlib
import time
from collections.abc import Iterable
from typing import Any

from npaccel._sysfs import LIVE, Host
from npaccel.doctor import _machine, _process
from npaccel.doctor._rules import RULES, SEVERITIES, Finding, evaluate

__all__ = [
    "DEFAULT_IMPORTS",
    "RULES",
    "SCHEMA",
    "SEVERITIES",
    "Finding",
    "collect_facts",
    "diagnose",
    "evaluate",
]

SCHEMA = "npaccel.doctor/1"

# What a NumPy workload loads: NumPy and SciPy's linear algebra bring their BLAS copies.
DEFAULT_IMPORTS = ("numpy", "scipy.linalg")


def _import_all(modules: Iterable[str]) -> list[str]:
    done = []
    for name in modules:
        name = name.strip()
        if not name:
            continue
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise ImportError(
                f"`--import {name}` failed: {type(exc).__name__}: {exc}; "
                "give modules that import in this Python environment"
            ) from exc
        done.append(name)
    return done


def collect_facts(host: Host = LIVE, *, imports: Iterable[str] = ()) -> dict[str, Any]:
    """Facts about the machine (read through ``host``) and this Python process.

    Parameters
    ----------
    host : Host
        The machine's files; the live machine by default, a recording in tests.
    imports : iterable of str
        Modules to import first, so that the libraries they load (a second BLAS, an
        OpenMP runtime) are seen. :data:`DEFAULT_IMPORTS` are always imported.
    """
    imported = _import_all([*DEFAULT_IMPORTS, *imports])
    gpu = _machine.gpu_facts(host)
    numba = _process.numba_facts()  # before threadpools: it may load an OpenMP runtime
    return {
        "platform": _process.platform_facts(),
        "versions": _process.versions(),
        "imported": imported,
        "cpu": _machine.cpu_facts(host),
        "numpy_simd": _process.numpy_simd_facts(),
        "numpy_build": _process.numpy_build_facts(),
        "memory": _machine.memory_facts(host),
        "numa": _machine.numa_facts(host),
        "threadpools": _process.threadpool_facts(),
        "generic_blas": _process.generic_blas_facts() if host.live else [],
        "thread_env": _process.thread_env_facts(),
        "numba": numba,
        "gpu": gpu,
        "cupy": _process.cupy_facts(probe_devices=bool(gpu["devices"])),
        "dask": _process.dask_facts(),
    }


def diagnose(*, imports: Iterable[str] = (), host: Host = LIVE) -> dict[str, Any]:
    """Facts and findings for this machine, as one JSON-ready dict.

    Returns
    -------
    dict
        ``{"schema", "created", "elapsed_s", "facts": {...}, "findings": [{"id",
        "severity", "title", "evidence", "fix"}, ...]}``, findings most severe first.

    Raises
    ------
    ImportError
        If a module in ``imports`` cannot be imported.

    Examples
    --------
    >>> import npaccel.doctor
    >>> report = npaccel.doctor.diagnose()
    >>> report["facts"]["cpu"]["usable_cpus"] >= 1
    True
    >>> {f["severity"] for f in report["findings"]} <= {"info", "warn", "error"}
    True
    """
    start = time.perf_counter()
    facts = collect_facts(host, imports=imports)
    return {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - start, 3),
        "facts": facts,
        "findings": [f.to_dict() for f in evaluate(facts)],
    }
