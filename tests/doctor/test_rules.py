"""Doctor rules, each with facts that trigger it and near-misses that must not.

Every case starts from :func:`baseline` — the facts of a healthy 8-CPU AVX2 machine that
raise no finding — and changes only what the case is about, so a case that triggers one
rule must trigger that rule alone. The SIMD tier ladders the rules compare are tested last.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from npaccel.doctor import RULES, SEVERITIES, Finding, evaluate
from npaccel.doctor._simd import TIER_NAMES, blas_core_tier, cpu_tier, numpy_target_tier

Facts = dict[str, Any]
Change = Callable[[Facts], None]

GiB = 1 << 30
MiB = 1 << 20

SITE = "/home/ada/proj/.venv/lib/python3.12/site-packages"
NUMPY_BLAS = f"{SITE}/numpy.libs/libscipy_openblas64_-ff651d7f.so"
SCIPY_BLAS = f"{SITE}/scipy.libs/libscipy_openblas-68440149.so"
CV2_BLAS = f"{SITE}/opencv_python_headless.libs/libopenblasp-r0-59ffcd50.3.15.so"
LIBGOMP = "/usr/lib/x86_64-linux-gnu/libgomp.so.1.0.0"
SKLEARN_GOMP = f"{SITE}/scikit_learn.libs/libgomp-a34b3233.so.1.0.0"
LIBIOMP = "/home/ada/proj/.venv/lib/libiomp5.so"
LIBOMP = f"{SITE}/torch/lib/libomp-a34b3233.so"
H100 = {
    "index": 0,
    "name": "NVIDIA H100 80GB HBM3",
    "memory_total_bytes": 81559 * MiB,
    "driver_version": "550.54.15",
    "compute_capability": "9.0",
    "pci_bus_id": "00000000:18:00.0",
    "pcie": {"gen_current": 5, "gen_max": 5, "width_current": 16, "width_max": 16,
             "source": "nvml"},
    "persistence_mode": True,
    "compute_mode": "Default",
    "pstate": "P0",
}  # fmt: skip


def words(text: str) -> list[str]:
    return sorted(text.split())


# /proc/cpuinfo flags (the ones that matter, plus some company).
HASWELL_FLAGS = words(
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx "
    "fxsr sse sse2 ht syscall nx pdpe1gb rdtscp lm constant_tsc pni pclmulqdq ssse3 fma cx16 "
    "sse4_1 sse4_2 x2apic movbe popcnt aes xsave avx f16c rdrand lahf_lm abm fsgsbase bmi1 "
    "avx2 smep bmi2 erms invpcid xsaveopt"
)
SKYLAKE_SP_FLAGS = sorted(
    [*HASWELL_FLAGS, "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "clwb"]
)
GRAVITON3_FLAGS = words(
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt "
    "fcma lrcpc dcpop sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs "
    "paca pacg dcpodp svei8mm svebf16 i8mm bf16 dgh rng"
)
NEOVERSE_N1_FLAGS = words(
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc "
    "dcpop asimddp ssbs"
)

# NumPy 2.2 x86_64 wheel: its baseline and dispatch targets.
NUMPY_BASELINE = ["SSE", "SSE2", "SSE3"]
NUMPY_DISPATCH = [
    "SSSE3", "SSE41", "POPCNT", "SSE42", "AVX", "F16C", "FMA3", "AVX2", "AVX512F",
    "AVX512CD", "AVX512_KNL", "AVX512_KNM", "AVX512_SKX", "AVX512_CLX", "AVX512_CNL",
    "AVX512_ICL", "AVX512_SPR",
]  # fmt: skip
HASWELL_FEATURES = [
    "AVX", "AVX2", "F16C", "FMA3", "MMX", "POPCNT", "SSE", "SSE2", "SSE3", "SSE41", "SSE42",
    "SSSE3",
]  # fmt: skip
SKYLAKE_SP_FEATURES = sorted(
    [*HASWELL_FEATURES, "AVX512F", "AVX512CD", "AVX512BW", "AVX512DQ", "AVX512VL", "AVX512_SKX"]
)
# NumPy 2.4 names its x86 targets by microarchitecture level.
NUMPY24_SKYLAKE_SP_FEATURES = sorted([*SKYLAKE_SP_FEATURES, "X86_V2", "X86_V3", "X86_V4"])
ARM_NUMPY_BASELINE = ["NEON", "NEON_FP16", "NEON_VFPV4", "ASIMD"]
ARM_NUMPY_DISPATCH = ["ASIMDHP", "ASIMDDP", "ASIMDFHM"]


def blas_pool(
    filepath: str = NUMPY_BLAS,
    owner: str | None = "numpy",
    architecture: str | None = "Haswell",
    version: str = "0.3.27",
    num_threads: int = 8,
    **extra: Any,
) -> dict[str, Any]:
    """A BLAS entry as ``threadpoolctl.threadpool_info()`` gives it, plus its owner."""
    return {
        "user_api": "blas",
        "internal_api": "openblas",
        "num_threads": num_threads,
        "prefix": "libscipy_openblas" if "scipy_openblas" in filepath else "libopenblas",
        "filepath": filepath,
        "version": version,
        "threading_layer": "pthreads",
        "architecture": architecture,
        "owner": owner,
        **extra,
    }


def omp_pool(prefix: str, filepath: str, owner: str | None = None) -> dict[str, Any]:
    """An OpenMP runtime entry as threadpoolctl gives it (internal_api is always 'openmp')."""
    return {
        "user_api": "openmp",
        "internal_api": "openmp",
        "num_threads": 8,
        "prefix": prefix,
        "filepath": filepath,
        "version": None,
        "owner": owner,
    }


def baseline() -> Facts:
    """A healthy machine: 8 usable AVX2 CPUs, NumPy's own OpenBLAS ('Haswell', 8 threads)
    and the libgomp Numba's omp layer loads, NumPy targets up to AVX2, 32 GiB free memory,
    no swap, THP madvise, one NUMA node, no GPU and no CuPy."""
    return {
        "platform": {
            "os": "Linux",
            "kernel": "6.8.0-49-generic",
            "machine": "x86_64",
            "libc": "glibc 2.39",
            "python": "3.12.3",
            "python_implementation": "CPython",
            "python_executable": "/home/ada/proj/.venv/bin/python",
            "free_threaded": False,
        },
        "versions": {
            "npaccel": "0.1.0",
            "numpy": "2.2.6",
            "scipy": "1.15.3",
            "numba": "0.61.2",
            "llvmlite": "0.44.0",
            "threadpoolctl": "3.6.0",
            "psutil": "7.0.0",
        },
        "imported": ["numpy", "scipy.linalg"],
        "cpu": {
            "model": "Intel(R) Core(TM) i7-4770 CPU @ 3.40GHz",
            "vendor": "GenuineIntel",
            "architecture": "x86_64",
            "logical_cores": 8,
            "physical_cores": 4,
            "sockets": 1,
            "affinity": list(range(8)),
            "cgroup_version": 2,
            "cgroup_cpu_quota": None,
            "usable_cpus": 8,
            "flags": list(HASWELL_FLAGS),
            "caches": [
                {
                    "level": 1,
                    "type": "Data",
                    "size_bytes": 32 << 10,
                    "shared_by_cpus": 2,
                    "instances": 4,
                    "line_bytes": 64,
                },
                {
                    "level": 2,
                    "type": "Unified",
                    "size_bytes": 256 << 10,
                    "shared_by_cpus": 2,
                    "instances": 4,
                    "line_bytes": 64,
                },
                {
                    "level": 3,
                    "type": "Unified",
                    "size_bytes": 8 << 20,
                    "shared_by_cpus": 8,
                    "instances": 1,
                    "line_bytes": 64,
                },
            ],
        },
        "numpy_simd": {
            "numpy": "2.2.6",
            "baseline": list(NUMPY_BASELINE),
            "dispatched": list(NUMPY_DISPATCH),
            "found": NUMPY_DISPATCH[:8],
            "not_found": NUMPY_DISPATCH[8:],
            "cpu_features": list(HASWELL_FEATURES),
        },
        "numpy_build": {
            "blas": {
                "name": "scipy-openblas",
                "version": "0.3.27",
                "found": True,
                "detection_method": "pkgconfig",
                "openblas_configuration": "OpenBLAS 0.3.27 USE64BITINT DYNAMIC_ARCH "
                "NO_AFFINITY Haswell MAX_THREADS=64",
            },
            "lapack": {
                "name": "scipy-openblas",
                "version": "0.3.27",
                "found": True,
                "detection_method": "pkgconfig",
            },
        },
        "memory": {
            "total_bytes": 32 * GiB,
            "available_bytes": 24 * GiB,
            "swap_total_bytes": 0,
            "swap_used_bytes": 0,
            "cgroup_limit_bytes": None,
            "transparent_hugepages": {"enabled": "madvise", "defrag": "madvise"},
        },
        "numa": {
            "nodes": [
                {
                    "id": 0,
                    "cpus": list(range(8)),
                    "memory_total_bytes": 32 * GiB,
                    "memory_free_bytes": 25 * GiB,
                }
            ]
        },
        "threadpools": [blas_pool(), omp_pool("libgomp", LIBGOMP)],
        "generic_blas": [],
        "thread_env": {},
        "numba": {
            "version": "0.61.2",
            "requested_layer": "default",
            "max_threads": 8,
            "num_threads": 8,
            "threading_layer": "omp",
        },
        "gpu": {"source": None, "kernel_driver_version": None, "devices": []},
        "cupy": {"installed": False},
        "dask": {"installed": False, "version": None, "distributed": None},
    }


# --- Changes to the baseline ------------------------------------------------------------


def put(path: str, value: Any) -> Change:
    """Set the fact at a dotted path ("threadpools.0.num_threads"; ints index lists)."""

    def change(facts: Facts) -> None:
        *parents, last = path.split(".")
        node: Any = facts
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[int(last) if isinstance(node, list) else last] = copy.deepcopy(value)

    return change


def add_pool(pool: dict[str, Any]) -> Change:
    return lambda facts: facts["threadpools"].append(copy.deepcopy(pool))


def env(**variables: str) -> Change:
    return lambda facts: facts["thread_env"].update(variables)


def cpus(n: int) -> Change:
    """A machine (or cgroup) with n usable CPUs whose thread pools are sized to match."""

    def change(facts: Facts) -> None:
        facts["cpu"].update(logical_cores=n, affinity=list(range(n)), usable_cpus=n)
        facts["numa"]["nodes"][0]["cpus"] = list(range(n))
        for pool in facts["threadpools"]:
            pool["num_threads"] = n
        facts["numba"].update(max_threads=n, num_threads=n)

    return change


def skylake_sp(facts: Facts) -> None:
    """An AVX-512 Xeon, with NumPy's wheel and OpenBLAS using AVX-512 on it."""
    facts["cpu"].update(model="Intel(R) Xeon(R) Gold 6130 CPU @ 2.10GHz", flags=SKYLAKE_SP_FLAGS)
    facts["numpy_simd"].update(
        found=[*NUMPY_DISPATCH[:10], "AVX512_SKX"],
        not_found=[t for t in NUMPY_DISPATCH[10:] if t != "AVX512_SKX"],
        cpu_features=list(SKYLAKE_SP_FEATURES),
    )
    facts["threadpools"][0]["architecture"] = "SkylakeX"


def graviton3(facts: Facts) -> None:
    """An AWS Graviton3 (Neoverse V1: ASIMD and SVE) with a NumPy that stops at ASIMD."""
    facts["platform"]["machine"] = "aarch64"
    facts["cpu"].update(
        model="Arm Neoverse-V1", vendor=None, architecture="aarch64", flags=GRAVITON3_FLAGS
    )
    facts["numpy_simd"] = {
        "numpy": "2.2.6",
        "baseline": list(ARM_NUMPY_BASELINE),
        "dispatched": list(ARM_NUMPY_DISPATCH),
        "found": list(ARM_NUMPY_DISPATCH),
        "not_found": [],
        "cpu_features": sorted([*ARM_NUMPY_BASELINE, *ARM_NUMPY_DISPATCH, "SVE"]),
    }
    facts["threadpools"][0].update(
        filepath=NUMPY_BLAS.replace("x86_64", "aarch64"), architecture="NeoverseV1"
    )
    facts["threadpools"][1]["filepath"] = LIBGOMP.replace("x86_64", "aarch64")


def numpy_dispatches_sve(facts: Facts) -> None:
    facts["numpy_simd"]["dispatched"].append("SVE")
    facts["numpy_simd"]["found"].append("SVE")


def neoverse_n1(facts: Facts) -> None:
    """An AWS Graviton2 (Neoverse N1: ASIMD, no SVE)."""
    graviton3(facts)
    facts["cpu"].update(model="Arm Neoverse-N1", flags=NEOVERSE_N1_FLAGS)
    facts["numpy_simd"]["cpu_features"].remove("SVE")
    facts["threadpools"][0]["architecture"] = "NeoverseN1"


def numpy_1x_no_dispatch(facts: Facts) -> None:
    """A NumPy 1.x source build with ``--cpu-dispatch=none``: SSE3 everywhere."""
    facts["numpy_simd"] = {
        "numpy": "1.26.4",
        "baseline": ["SSE", "SSE2", "SSE3"],
        "dispatched": [],
        "found": [],
        "not_found": [],
        "cpu_features": list(SKYLAKE_SP_FEATURES),
    }


def numpy_24(*found: str) -> Change:
    """NumPy 2.4's x86-64-v2 baseline, dispatching (and finding) ``found``."""

    def change(facts: Facts) -> None:
        facts["numpy_simd"] = {
            "numpy": "2.4.1",
            "baseline": ["X86_V2"],
            "dispatched": list(found),
            "found": list(found),
            "not_found": [],
            "cpu_features": list(NUMPY24_SKYLAKE_SP_FEATURES),
        }

    return change


def facts_with(*changes: Change) -> Facts:
    facts = baseline()
    for change in changes:
        change(facts)
    return facts


def gpu_node(name: str = H100["name"], cc: str = "9.0", driver: str = "550.54.15",
             cuda: str | None = "12.4", wheels: tuple[str, ...] = ("cupy-cuda12x",),
             **cupy: Any) -> Change:  # fmt: skip
    """A GPU node whose CuPy (``wheels``, default working) sees the one GPU: H100 with a
    550 driver (CUDA 12.4) and cupy-cuda12x unless told otherwise; ``cupy`` overrides CuPy
    facts."""

    def change(facts: Facts) -> None:
        device = dict(copy.deepcopy(H100), name=name, compute_capability=cc,
                      driver_version=driver)  # fmt: skip
        facts["gpu"] = {
            "source": "nvml", "kernel_driver_version": driver, "driver_version": driver,
            "cuda_driver_version": cuda, "cuda_driver_version_source": "nvml" if cuda else None,
            "devices": [device],
        }  # fmt: skip
        packages = [{"name": w, "version": "13.3.0", "cuda_major": _wheel_major(w)}
                    for w in wheels]  # fmt: skip
        facts["cupy"] = {
            "installed": True, "version": f"{wheels[0]} 13.3.0" if wheels else None,
            "packages": packages, "cuda_runtime_version": "12.8", "cuda_driver_version": cuda,
            "device_count": 1, "runs": True, **cupy,
        }  # fmt: skip

    return change


def _wheel_major(wheel: str) -> int | None:
    digits = wheel.removeprefix("cupy-cuda").removesuffix("x")
    return int(digits) if digits.isdigit() else None


# --- Cases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """Facts (baseline + changes) that raise finding ``id`` — and, besides it, ``also``."""

    name: str
    id: str
    severity: str
    changes: tuple[Change, ...]
    title: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    fix: tuple[str, ...] = ()
    also: tuple[str, ...] = ()


def trigger(
    name: str,
    id: str,
    severity: str,
    *changes: Change,
    title: tuple[str, ...] = (),
    evidence: tuple[str, ...] = (),
    fix: tuple[str, ...] = (),
    also: tuple[str, ...] = (),
) -> Trigger:
    """A case: ``id`` at ``severity``, whose title, evidence and fix contain these texts."""
    return Trigger(name, id, severity, changes, title, evidence, fix, also)


MACHINE_NETLIB = {
    "path": "/usr/lib/x86_64-linux-gnu/libblas.so.3",
    "resolves_to": "/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0",
    "optimised": False,
}
MACHINE_OPENBLAS_ALTERNATIVE = {
    "path": "/usr/lib/x86_64-linux-gnu/liblapack.so.3",
    "resolves_to": "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so",
    "optimised": True,
}
FLEXIBLAS = {
    "user_api": "blas",
    "internal_api": "flexiblas",
    "num_threads": 8,
    "prefix": "libflexiblas",
    "filepath": "/usr/lib64/libflexiblas.so.3.4",
    "version": "3.4.2",
    "available_backends": ["NETLIB", "OPENBLAS-OPENMP"],
    "loaded_backends": ["NETLIB"],
    "current_backend": "NETLIB",
    "owner": None,
}
NO_GPU_ERROR = (
    "CUDARuntimeError: cudaErrorInsufficientDriver: CUDA driver version is insufficient "
    "for CUDA runtime version"
)

TRIGGERS = [
    # threads-oversubscribed: pools, Numba and environment variables above usable CPUs
    trigger(
        "oversubscribed-blas-pool",
        "threads-oversubscribed",
        "warn",
        put("threadpools.0.num_threads", 16),
        title=("8 CPU(s)",),
        evidence=(
            "openblas 0.3.27 (from numpy): 16 threads",
            "Usable CPUs (affinity and cgroup quota): 8",
        ),
        fix=("OMP_NUM_THREADS=8", "OPENBLAS_NUM_THREADS=8", "set_threads(8)"),
    ),
    trigger(
        "oversubscribed-openmp-pool-by-one",
        "threads-oversubscribed",
        "warn",
        put("threadpools.1.num_threads", 9),
        evidence=("openmp: 9 threads",),
    ),
    trigger(
        "oversubscribed-numba",
        "threads-oversubscribed",
        "warn",
        put("numba.num_threads", 16),
        put("numba.max_threads", 16),
        evidence=("numba: 16 threads",),
        fix=("NUMBA_NUM_THREADS=8",),
    ),
    trigger(
        "oversubscribed-env-OMP_NUM_THREADS",
        "threads-oversubscribed",
        "warn",
        env(OMP_NUM_THREADS="32"),
        evidence=("OMP_NUM_THREADS=32",),
        fix=("OMP_NUM_THREADS=8",),
    ),
    trigger(
        "oversubscribed-env-NUMEXPR_MAX_THREADS",
        "threads-oversubscribed",
        "warn",
        env(NUMEXPR_MAX_THREADS="64"),
        evidence=("NUMEXPR_MAX_THREADS=64",),
    ),
    trigger(
        "oversubscribed-env-VECLIB_MAXIMUM_THREADS",
        "threads-oversubscribed",
        "warn",
        env(VECLIB_MAXIMUM_THREADS="9"),
        evidence=("VECLIB_MAXIMUM_THREADS=9",),
    ),
    trigger(
        "oversubscribed-cgroup-quota",
        "threads-oversubscribed",
        "warn",
        put("cpu.usable_cpus", 2),
        put("cpu.cgroup_cpu_quota", 2.0),
        title=("2 CPU(s)",),
        evidence=("(from numpy): 8 threads", "openmp: 8 threads", "numba: 8 threads", "quota): 2"),
        fix=("OMP_NUM_THREADS=2", "set_threads(2)"),
    ),
    # threads-pinned-to-one: with and without an environment variable to blame
    trigger(
        "pinned-by-env",
        "threads-pinned-to-one",
        "warn",
        put("threadpools.0.num_threads", 1),
        put("threadpools.1.num_threads", 1),
        put("numba.num_threads", 1),
        env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"),
        title=("8 CPUs",),
        evidence=(
            "openblas 0.3.27 (from numpy), openmp, numba run 1 thread",
            "(set by OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=1)",
        ),
        fix=("unset OMP_NUM_THREADS OPENBLAS_NUM_THREADS", "set_threads(8)"),
    ),
    trigger(
        "pinned-numba-no-env",
        "threads-pinned-to-one",
        "warn",
        put("numba.num_threads", 1),
        evidence=("numba run 1 thread.",),
        fix=("set_threads(8)", "threadpool_limits(8)"),
    ),
    trigger(
        "pinned-on-two-cpus",
        "threads-pinned-to-one",
        "warn",
        cpus(2),
        put("threadpools.0.num_threads", 1),
        title=("2 CPUs",),
        evidence=("(from numpy) run 1 thread",),
        fix=("set_threads(2)",),
    ),
    # blas-reference
    trigger(
        "reference-generic-libblas",
        "blas-reference",
        "error",
        put("generic_blas", [MACHINE_NETLIB]),
        evidence=(f"{MACHINE_NETLIB['path']} → {MACHINE_NETLIB['resolves_to']}",),
        fix=("update-alternatives --config libblas.so.3",),
    ),
    trigger(
        "reference-flexiblas-netlib",
        "blas-reference",
        "error",
        put("threadpools.0", FLEXIBLAS),
        put("numpy_build.blas.name", "flexiblas"),
        evidence=("FlexiBLAS backend NETLIB (/usr/lib64/libflexiblas.so.3.4)",),
        fix=("FLEXIBLAS=OPENBLAS",),
    ),
    *(
        trigger(
            f"reference-numpy-built-against-{name}",
            "blas-reference",
            "error",
            put("numpy_build.blas", {"name": name, "version": "3.12.0", "found": True}),
            evidence=(f"NumPy was built against '{name}'",),
            fix=("pip install --force-reinstall numpy",),
        )
        for name in ("blas", "cblas", "refblas", "Netlib")
    ),
    # blas-multiple
    trigger(
        "multiple-numpy-and-scipy",
        "blas-multiple",
        "info",
        add_pool(blas_pool(SCIPY_BLAS, "scipy", version="0.3.27.dev")),
        title=("2 BLAS copies",),
        evidence=(NUMPY_BLAS, SCIPY_BLAS, "[Haswell]"),
    ),
    trigger(
        "multiple-with-opencv",
        "blas-multiple",
        "warn",
        add_pool(blas_pool(SCIPY_BLAS, "scipy")),
        add_pool(blas_pool(CV2_BLAS, "opencv_python_headless", version="0.3.15")),
        title=("3 BLAS libraries",),
        evidence=(CV2_BLAS, "openblas 0.3.15 (from opencv_python_headless)"),
        fix=("copies from opencv_python_headless prefer",),
    ),
    # openmp-multiple and openmp-intel-and-llvm
    trigger(
        "openmp-two-libgomp",
        "openmp-multiple",
        "warn",
        add_pool(omp_pool("libgomp", SKLEARN_GOMP, "scikit_learn")),
        title=("2 OpenMP runtimes",),
        evidence=(f"libgomp at {LIBGOMP}", SKLEARN_GOMP),
    ),
    trigger(
        "openmp-gnu-and-intel",
        "openmp-multiple",
        "warn",
        add_pool(omp_pool("libiomp", LIBIOMP)),
        evidence=(f"libiomp at {LIBIOMP}",),
    ),
    trigger(
        "openmp-intel-and-llvm",
        "openmp-intel-and-llvm",
        "error",
        add_pool(omp_pool("libiomp", LIBIOMP)),
        add_pool(omp_pool("libomp", LIBOMP, "torch")),
        evidence=(f"libiomp at {LIBIOMP}", f"libomp at {LIBOMP}"),
        fix=("MKL_THREADING_LAYER=GNU", "multiple_openmp.md"),
    ),
    # numpy-simd-unused
    trigger(
        "simd-numpy1-sse3-only-on-avx512",
        "numpy-simd-unused",
        "warn",
        skylake_sp,
        numpy_1x_no_dispatch,
        title=("stops at SSE2/SSE3", "this CPU has AVX-512"),
        evidence=(
            "NumPy 1.26.4 baseline ['SSE', 'SSE2', 'SSE3'], dispatched []",
            "'AVX2'",
            "'AVX512F'",
        ),
        fix=("cpu-dispatch=max",),
    ),
    trigger(
        "simd-numpy24-stops-at-x86-v3-on-avx512",
        "numpy-simd-unused",
        "warn",
        skylake_sp,
        numpy_24("X86_V3"),
        title=("stops at AVX2+FMA",),
        evidence=("'X86_V4'", "'AVX512F'"),
    ),
    trigger(
        "simd-arm-sve-unused",
        "numpy-simd-unused",
        "warn",
        graviton3,
        title=("stops at Arm NEON/ASIMD", "this CPU has Arm SVE"),
        evidence=("'ASIMD'", "never uses: ['SVE']"),
    ),
    # blas-old-target
    trigger(
        "old-target-prescott-on-avx512",
        "blas-old-target",
        "warn",
        skylake_sp,
        put("threadpools.0.architecture", "Prescott"),
        title=("'Prescott' kernels (SSE2/SSE3)", "AVX-512"),
        evidence=(NUMPY_BLAS, "OpenBLAS 0.3.27", "'Prescott'"),
        fix=("OPENBLAS_CORETYPE=SkylakeX", "pip install --upgrade numpy"),
    ),
    trigger(
        "old-target-zen-on-avx512",
        "blas-old-target",
        "info",
        skylake_sp,
        put("threadpools.0.architecture", "Zen"),
        title=("'Zen' kernels (AVX2+FMA)",),
        fix=("OPENBLAS_CORETYPE=SkylakeX",),
    ),
    trigger(
        "old-target-sandybridge-on-avx2",
        "blas-old-target",
        "info",
        put("threadpools.0.architecture", "Sandybridge"),
        title=("(AVX)", "AVX2+FMA"),
        fix=("OPENBLAS_CORETYPE=Haswell",),
    ),
    trigger(
        "old-target-nehalem-on-avx2-lowercase",
        "blas-old-target",
        "warn",
        put("threadpools.0.architecture", "NEHALEM"),
        evidence=("picked core 'NEHALEM'",),
        fix=("OPENBLAS_CORETYPE=Haswell",),
    ),
    trigger(
        "old-target-cv2-copy-only",
        "blas-old-target",
        "warn",
        add_pool(blas_pool(CV2_BLAS, "opencv_python_headless", "Prescott", "0.3.15")),
        title=("(from opencv_python_headless)",),
        evidence=(CV2_BLAS,),
        fix=("pip install --upgrade opencv_python_headless",),
        also=("blas-multiple",),
    ),
    trigger(
        "old-target-neoverse-n1-on-sve",
        "blas-old-target",
        "info",
        graviton3,
        numpy_dispatches_sve,
        put("threadpools.0.architecture", "NeoverseN1"),
        title=("Arm NEON/ASIMD", "Arm SVE"),
        fix=("OPENBLAS_CORETYPE=NeoverseV1",),
    ),
    # gpu-without-cupy, cupy-without-gpu
    trigger(
        "gpu-without-cupy",
        "gpu-without-cupy",
        "warn",
        put("gpu", {"source": "nvml", "kernel_driver_version": "550.54.15", "devices": [H100]}),
        title=("1 NVIDIA GPU(s)",),
        evidence=("NVIDIA H100 80GB HBM3",),
        fix=("npaccel[gpu]",),
    ),
    trigger(
        "cupy-without-any-gpu",
        "cupy-without-gpu",
        "warn",
        put("cupy", {"installed": True, "version": "cupy-cuda12x 13.3.0"}),
        evidence=("cupy-cuda12x 13.3.0 is installed but sees no GPU.",),
        fix=("No NVIDIA GPU", "pip uninstall cupy"),
    ),
    trigger(
        "cupy-cannot-use-driver-gpu",
        "cupy-without-gpu",
        "warn",
        put("gpu", {"source": "proc", "kernel_driver_version": "535.104.05", "devices": [H100]}),
        put(
            "cupy",
            {
                "installed": True,
                "version": "cupy-cuda12x 13.3.0",
                "device_count": 0,
                "error": NO_GPU_ERROR,
            },
        ),
        evidence=("cupy-cuda12x 13.3.0", "cudaErrorInsufficientDriver"),
        fix=("driver sees GPUs", "cupy-cuda12x", "CUDA_VISIBLE_DEVICES"),
    ),
    trigger(
        "gpu-without-cupy-cuda13-driver",
        "gpu-without-cupy",
        "warn",
        gpu_node(driver="580.65.06", cuda="13.0"),
        put("cupy", {"installed": False, "packages": []}),
        fix=("pip install cupy-cuda13x", "the driver supports CUDA 13.0"),
    ),
    trigger(
        "gpu-without-cupy-cuda11-driver",
        "gpu-without-cupy",
        "warn",
        gpu_node(name="Tesla V100-SXM2-16GB", cc="7.0", driver="470.82.01", cuda="11.4"),
        put("cupy", {"installed": False, "packages": []}),
        fix=("pip install cupy-cuda11x",),
    ),
    trigger(
        "gpu-without-cupy-cuda10-driver",
        "gpu-without-cupy",
        "warn",
        gpu_node(name="Tesla P100", cc="6.0", driver="440.33.01", cuda="10.2"),
        put("cupy", {"installed": False}),
        fix=("Upgrade the NVIDIA driver to >= 525.60.13 (CUDA 12)", "no wheels for CUDA 10.2"),
    ),
    # cupy-cuda-too-new: CuPy's CUDA major above the driver's
    trigger(
        "cupy-cuda12-on-cuda11-driver",
        "cupy-cuda-too-new",
        "error",
        gpu_node(
            name="Tesla V100-SXM2-16GB",
            cc="7.0",
            driver="470.82.01",
            cuda="11.4",
            device_count=0,
            error=NO_GPU_ERROR,
            cuda_driver_version=None,
        ),
        put("gpu.cuda_driver_version_source", "driver-table"),
        title=("built for CUDA 12", "the CUDA 11.4 the driver supports"),
        evidence=(
            "cupy-cuda12x 13.3.0 (CUDA 12)",
            "driver 470.82.01 (CUDA's driver table) supports CUDA up to 11.4",
        ),
        fix=(
            "pip uninstall -y cupy-cuda12x && pip install cupy-cuda11x",
            "upgrade the NVIDIA driver to >= 525.60.13 (CUDA 12)",
        ),
    ),
    trigger(
        "cupy-source-build-from-cupys-driver-version",
        "cupy-cuda-too-new",
        "error",
        gpu_node(wheels=("cupy",), cuda=None, cuda_driver_version="11.8", device_count=0),
        evidence=("cupy 13.3.0 (CUDA 12)", "driver (CuPy's driverGetVersion)"),
        fix=("pip uninstall -y cupy && pip install cupy-cuda11x",),
    ),
    trigger(
        "cupy-on-cuda10-driver",
        "cupy-cuda-too-new",
        "error",
        gpu_node(name="Tesla P100", cc="6.0", driver="440.33.01", cuda="10.2", device_count=0),
        fix=(
            "Upgrade the NVIDIA driver to >= 525.60.13 (CUDA 12): current CuPy has no wheels "
            "for CUDA 10.2",
        ),
    ),
    # cupy-multiple-wheels
    trigger(
        "cupy-cuda11x-and-cuda12x",
        "cupy-multiple-wheels",
        "error",
        gpu_node(wheels=("cupy-cuda11x", "cupy-cuda12x")),
        title=("2 CuPy packages",),
        evidence=("cupy-cuda11x 13.3.0, cupy-cuda12x 13.3.0 all install the same cupy/ files",),
        fix=("pip uninstall -y cupy-cuda11x cupy-cuda12x && pip install cupy-cuda12x",),
    ),
    trigger(
        "cupy-wheels-without-driver-facts",
        "cupy-multiple-wheels",
        "error",
        put(
            "cupy",
            {
                "installed": True,
                "version": "cupy-cuda12x 13.3.0",
                "device_count": 1,
                "packages": [
                    {"name": "cupy-cuda12x", "version": "13.3.0", "cuda_major": 12},
                    {"name": "cupy-cuda13x", "version": "14.0.0", "cuda_major": 13},
                ],
            },
        ),
        fix=("&& pip install cupy-cuda13x",),  # no driver known: the newest
    ),
    # cupy-cannot-run
    trigger(
        "cupy-without-nvrtc",
        "cupy-cannot-run",
        "error",
        gpu_node(
            runs=False,
            run_error="CompileException: libnvrtc.so.12: cannot open shared "
            "object file: No such file or directory",
        ),
        evidence=("sees 1 GPU(s)", "libnvrtc.so.12"),
        fix=('pip install "cupy-cuda12x[ctk]"', "CUDA_PATH"),
    ),
    trigger(
        "cupy-kernel-fails-otherwise",
        "cupy-cannot-run",
        "error",
        gpu_node(runs=False, run_error="CUDADriverError: CUDA_ERROR_NO_BINARY_FOR_GPU"),
        fix=("cupy.show_config()", 'pip install "cupy-cuda12x[ctk]"'),
    ),
    # gpu-unsupported-by-cupy
    trigger(
        "cupy-cuda13-on-volta",
        "gpu-unsupported-by-cupy",
        "error",
        gpu_node(
            name="Tesla V100-SXM2-16GB",
            cc="7.0",
            driver="580.65.06",
            cuda="13.0",
            wheels=("cupy-cuda13x",),
        ),
        title=("cupy-cuda13x 13.3.0 (CUDA 13)", "compute capability 7.0"),
        evidence=(
            "GPU 0 (Tesla V100-SXM2-16GB, 00000000:18:00.0): cc 7.0",
            "compute capability >= 7.5",
        ),
        fix=("pip uninstall -y cupy-cuda13x && pip install cupy-cuda12x", ">= 5.0"),
    ),
    trigger(
        "cupy-cuda12-on-kepler",
        "gpu-unsupported-by-cupy",
        "error",
        gpu_node(name="Tesla K80", cc="3.7", driver="470.82.01", cuda="11.4", device_count=0),
        fix=("pip install cupy-cuda11x",),
        also=("cupy-cuda-too-new",),  # a K80's last driver stops at CUDA 11.4 too
    ),
    trigger(
        "cupy-on-fermi",
        "gpu-unsupported-by-cupy",
        "error",
        gpu_node(
            name="Tesla M2090", cc="2.0", driver="390.157", cuda=None, wheels=("cupy-cuda11x",)
        ),
        fix=("No CuPy release with current wheels supports this GPU",),
    ),
    # gpu-pcie-degraded
    trigger(
        "pcie-x8-of-x16",
        "gpu-pcie-degraded",
        "warn",
        gpu_node(),
        put("gpu.devices.0.pcie.width_current", 8),
        evidence=(
            "GPU 0 (NVIDIA H100 80GB HBM3, 00000000:18:00.0) runs PCIe gen5 x8, capable "
            "of gen5 x16: about 31.5 of 63.0 GB/s each way (nvml).",
        ),
        fix=("x16", "nvidia-smi -q -d PCI"),
    ),
    trigger(
        "pcie-x8-while-idle-downshifted",
        "gpu-pcie-degraded",
        "warn",
        gpu_node(),
        put("gpu.devices.0.pcie.width_current", 8),
        put("gpu.devices.0.pcie.gen_current", 1),
        put("gpu.devices.0.pstate", "P8"),  # the rate is the width's cost at full speed
        evidence=("runs PCIe gen1 x8, capable of gen5 x16: about 31.5 of 63.0 GB/s",),
    ),
    trigger(
        "pcie-gen3-under-load",
        "gpu-pcie-degraded",
        "warn",
        gpu_node(),
        put("gpu.devices.0.pcie.gen_current", 3),
        evidence=("runs PCIe gen3 x16, capable of gen5 x16: about 15.8 of 63.0 GB/s",),
    ),
    # gpu-persistence-off, gpu-compute-prohibited, gpu-compute-exclusive
    trigger(
        "persistence-off",
        "gpu-persistence-off",
        "info",
        gpu_node(),
        put("gpu.devices.0.persistence_mode", False),
        evidence=("Persistence mode disabled on GPU 0 (NVIDIA H100 80GB HBM3",),
        fix=("nvidia-smi -pm 1", "nvidia-persistenced"),
    ),
    trigger(
        "compute-prohibited",
        "gpu-compute-prohibited",
        "error",
        gpu_node(),
        put("gpu.devices.0.compute_mode", "Prohibited"),
        title=("1 GPU(s) in compute mode Prohibited",),
        fix=("sudo nvidia-smi -i 0 -c DEFAULT",),
    ),
    trigger(
        "compute-exclusive-process",
        "gpu-compute-exclusive",
        "info",
        gpu_node(),
        put("gpu.devices.0.compute_mode", "Exclusive_Process"),
        evidence=("cudaErrorDevicesUnavailable",),
    ),
    # numa-multiple-nodes
    trigger(
        "numa-two-sockets",
        "numa-multiple-nodes",
        "info",
        put(
            "numa.nodes",
            [
                {"id": 0, "cpus": [0, 1, 2, 3, 8, 9, 10, 11], "memory_total_bytes": 16 * GiB},
                {"id": 1, "cpus": [4, 5, 6, 7, 12, 13, 14, 15], "memory_total_bytes": 16 * GiB},
            ],
        ),
        title=("2 NUMA nodes",),
        evidence=("node 0: CPUs 0-3,8-11, 16 GiB", "node 1: CPUs 4-7,12-15, 16 GiB"),
        fix=("numactl --cpunodebind=0 --membind=0", "--interleave=all"),
    ),
    trigger(
        "numa-node-without-memory",
        "numa-multiple-nodes",
        "info",
        put(
            "numa.nodes",
            [
                {"id": 0, "cpus": [0, 2, 4, 6], "memory_total_bytes": 32 * GiB},
                {"id": 1, "cpus": [1, 3, 5, 7], "memory_total_bytes": None},
            ],
        ),
        evidence=("node 0: CPUs 0,2,4,6, 32 GiB", "node 1: CPUs 1,3,5,7, 0 GiB"),
    ),
    # memory-low: under 1 GiB, under 10 %, and under a cgroup limit
    trigger(
        "memory-under-1GiB",
        "memory-low",
        "warn",
        put("memory.available_bytes", GiB - 1),
        title=("Only 1.0 GiB of 32.0 GiB",),
        evidence=(f"MemAvailable {GiB - 1} bytes of {32 * GiB}",),
        fix=("map_blocks",),
    ),
    trigger(
        "memory-under-10-percent",
        "memory-low",
        "warn",
        put("memory.total_bytes", 100 * GiB),
        put("memory.available_bytes", 10 * GiB - 1),
        title=("of 100.0 GiB",),
    ),
    trigger(
        "memory-under-cgroup-limit",
        "memory-low",
        "warn",
        put("memory.cgroup_limit_bytes", 512 * MiB),
        title=("Only 0.5 GiB of 0.5 GiB",),
        evidence=(f"(cgroup limit {512 * MiB})",),
    ),
    trigger(
        "memory-host-low-under-large-cgroup-limit",
        "memory-low",
        "warn",
        put("memory.cgroup_limit_bytes", 16 * GiB),
        put("memory.available_bytes", 512 * MiB),
        title=("of 16.0 GiB",),
        evidence=(f"MemAvailable {512 * MiB} bytes of {16 * GiB}",),
    ),
    # swap-in-use, just over 64 MiB
    trigger(
        "swap-just-over-64MiB",
        "swap-in-use",
        "warn",
        put("memory.swap_total_bytes", 8 * GiB),
        put("memory.swap_used_bytes", 64 * MiB + 1),
        evidence=(f"{64 * MiB + 1} bytes",),
        fix=("swapoff -a", "vmstat 1"),
    ),
    trigger(
        "swap-gigabytes",
        "swap-in-use",
        "warn",
        put("memory.swap_total_bytes", 8 * GiB),
        put("memory.swap_used_bytes", 3 * GiB),
        title=("3.00 GiB of swap",),
    ),
    # thp-disabled
    trigger(
        "thp-never",
        "thp-disabled",
        "info",
        put("memory.transparent_hugepages.enabled", "never"),
        evidence=("= never",),
        fix=("echo madvise",),
    ),
    # numba-threading-layer
    trigger(
        "numba-tbb-missing",
        "numba-threading-layer",
        "error",
        put("numba.requested_layer", "tbb"),
        put("numba.threading_layer", None),
        put("numba.error", "ValueError: No threading layer could be loaded."),
        env(NUMBA_THREADING_LAYER="tbb"),
        evidence=("requested layer 'tbb'", "No threading layer could be loaded"),
        fix=("unset NUMBA_THREADING_LAYER", "pip install tbb"),
    ),
]


@dataclass(frozen=True)
class NearMiss:
    """Facts just short of raising ``ids``: the whole evaluation must be empty."""

    name: str
    ids: tuple[str, ...]
    changes: tuple[Change, ...]


def near(name: str, ids: str | tuple[str, ...], *changes: Change) -> NearMiss:
    return NearMiss(name, (ids,) if isinstance(ids, str) else ids, changes)


NEAR_MISSES = [
    near(
        "threads-equal-to-cpus",
        "threads-oversubscribed",
        env(OMP_NUM_THREADS="8", MKL_NUM_THREADS=" 8 "),
    ),
    near("threads-nested-list", "threads-oversubscribed", env(OMP_NUM_THREADS="16,4")),
    near("thread-limit-is-a-cap", "threads-oversubscribed", env(OMP_THREAD_LIMIT="64")),
    near(
        "thread-settings-not-counts",
        "threads-oversubscribed",
        env(OMP_PROC_BIND="true", MKL_THREADING_LAYER="GNU", NUMBA_THREADING_LAYER="omp"),
    ),
    near("numba-threads-unknown", "threads-oversubscribed", put("numba.num_threads", None)),
    near(
        "single-cpu-machine",
        "threads-pinned-to-one",
        cpus(1),
        env(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"),
    ),
    near("two-cpus-two-threads", "threads-pinned-to-one", cpus(2)),
    near("env-one-but-pools-resized", "threads-pinned-to-one", env(OMP_NUM_THREADS="1")),
    near(
        "libblas-resolves-to-openblas",
        "blas-reference",
        put("generic_blas", [MACHINE_OPENBLAS_ALTERNATIVE]),
    ),
    near(
        "flexiblas-openblas-backend",
        "blas-reference",
        put("threadpools.0", {**FLEXIBLAS, "current_backend": "OPENBLAS-OPENMP"}),
    ),
    *(
        near(f"numpy-built-against-{name}", "blas-reference", put("numpy_build.blas.name", name))
        for name in ("openblas", "scipy-openblas", "mkl-sdl", "accelerate")
    ),
    near(
        "numpy-build-unknown", "blas-reference", put("numpy_build", {"blas": None, "lapack": None})
    ),
    near("same-blas-listed-twice", "blas-multiple", add_pool(blas_pool())),
    near(
        "no-openmp-runtime",
        ("openmp-multiple", "openmp-intel-and-llvm"),
        put("threadpools", [blas_pool()]),
    ),
    near(
        "same-openmp-listed-twice",
        ("openmp-multiple", "openmp-intel-and-llvm"),
        add_pool(omp_pool("libgomp", LIBGOMP)),
    ),
    near("numpy-avx512-on-avx512", "numpy-simd-unused", skylake_sp),
    near("numpy24-x86-v4-on-avx512", "numpy-simd-unused", skylake_sp, numpy_24("X86_V3", "X86_V4")),
    near("arm-numpy-dispatches-sve", "numpy-simd-unused", graviton3, numpy_dispatches_sve),
    near("arm-without-sve", "numpy-simd-unused", neoverse_n1),
    near("no-cpu-flags", ("numpy-simd-unused", "blas-old-target"), put("cpu.flags", [])),
    near("no-numpy-simd-facts", "numpy-simd-unused", put("numpy_simd", {})),
    near(
        "powerpc-targets",
        ("numpy-simd-unused", "blas-old-target"),
        put("cpu.flags", ["vsx", "altivec"]),
        put("threadpools.0.architecture", "POWER9"),
        put("numpy_simd.baseline", ["VSX", "VSX2"]),
        put("numpy_simd.found", ["VSX3"]),
    ),
    near("haswell-core-on-avx2", "blas-old-target", put("threadpools.0.architecture", "haswell")),
    near("unknown-core", "blas-old-target", skylake_sp, put("threadpools.0.architecture", "Zen5")),
    near(
        "no-core-reported", "blas-old-target", skylake_sp, put("threadpools.0.architecture", None)
    ),
    near(
        "mkl-has-no-core",
        "blas-old-target",
        skylake_sp,
        put(
            "threadpools.0",
            {
                "user_api": "blas",
                "internal_api": "mkl",
                "num_threads": 8,
                "prefix": "libmkl_rt",
                "filepath": f"{SITE}/../../libmkl_rt.so.2",
                "version": "2024.2",
                "threading_layer": "intel",
                "owner": None,
            },
        ),
    ),
    near("arm-core-on-x86", "blas-old-target", put("threadpools.0.architecture", "NeoverseN1")),
    near(
        "x86-core-on-arm",
        "blas-old-target",
        graviton3,
        numpy_dispatches_sve,
        put("threadpools.0.architecture", "Prescott"),
    ),
    near(
        "gpu-with-working-cupy",
        ("gpu-without-cupy", "cupy-without-gpu"),
        put("gpu", {"source": "nvml", "kernel_driver_version": "550.54.15", "devices": [H100]}),
        put("cupy", {"installed": True, "version": "cupy-cuda12x 13.3.0", "device_count": 1}),
    ),
    near(
        "gpu-node-healthy",
        (
            "cupy-cuda-too-new",
            "cupy-multiple-wheels",
            "cupy-cannot-run",
            "gpu-pcie-degraded",
            "gpu-persistence-off",
            "gpu-compute-prohibited",
            "gpu-compute-exclusive",
            "gpu-unsupported-by-cupy",
        ),
        gpu_node(),
    ),
    # CuPy's runtime minor above the driver's: minor-version compatibility (CuPy emits cubin)
    near(
        "cupy-runtime-minor-ahead",
        "cupy-cuda-too-new",
        gpu_node(driver="535.104.05", cuda="12.2", cuda_runtime_version="12.9"),
    ),
    near(
        "cupy-too-new-unknown-driver",
        "cupy-cuda-too-new",
        gpu_node(cuda=None, cuda_driver_version=None),
    ),
    near("cupy-kernels-not-probed", "cupy-cannot-run", gpu_node(runs=None)),
    near(
        "volta-on-cuda12",
        "gpu-unsupported-by-cupy",
        gpu_node(name="Tesla V100-SXM2-16GB", cc="7.0"),
    ),
    near(
        "turing-on-cuda13",
        "gpu-unsupported-by-cupy",
        gpu_node(
            name="Tesla T4", cc="7.5", driver="580.65.06", cuda="13.0", wheels=("cupy-cuda13x",)
        ),
    ),
    near("cc-unknown", "gpu-unsupported-by-cupy", gpu_node(cc="[N/A]")),
    near(
        "pcie-idle-downshift",  # GPUs lower the link generation at idle: normal
        "gpu-pcie-degraded",
        gpu_node(),
        put("gpu.devices.0.pcie.gen_current", 1),
        put("gpu.devices.0.pstate", "P8"),
    ),
    near(
        "pcie-gen-low-pstate-unknown",
        "gpu-pcie-degraded",
        gpu_node(),
        put("gpu.devices.0.pcie.gen_current", 3),
        put("gpu.devices.0.pstate", None),
    ),
    near("pcie-unknown", "gpu-pcie-degraded", gpu_node(), put("gpu.devices.0.pcie", None)),
    near(
        "pcie-width-unknown",
        "gpu-pcie-degraded",
        gpu_node(),
        put("gpu.devices.0.pcie.width_current", None),
    ),
    near(
        "persistence-unknown",
        ("gpu-persistence-off",),
        gpu_node(),
        put("gpu.devices.0.persistence_mode", None),
    ),
    near(
        "compute-mode-default-or-unknown",
        ("gpu-compute-prohibited", "gpu-compute-exclusive"),
        gpu_node(),
        put("gpu.devices.0.compute_mode", None),
    ),
    near("no-numa-sysfs", "numa-multiple-nodes", put("numa", {"nodes": []})),
    near(
        "memory-exactly-10-percent",
        "memory-low",
        put("memory.total_bytes", 100 * GiB),
        put("memory.available_bytes", 10 * GiB),
    ),
    near(
        "memory-exactly-1GiB-of-4",
        "memory-low",
        put("memory.total_bytes", 4 * GiB),
        put("memory.available_bytes", GiB),
    ),
    near("cgroup-limit-roomy", "memory-low", put("memory.cgroup_limit_bytes", 16 * GiB)),
    # a limit above the machine's memory is not the total: 24 GiB free is not < 10 % of 1 TiB
    near("cgroup-limit-above-total", "memory-low", put("memory.cgroup_limit_bytes", 1 << 40)),
    near(
        "meminfo-unreadable",
        "memory-low",
        put("memory.total_bytes", None),
        put("memory.available_bytes", None),
    ),
    near(
        "swap-exactly-64MiB",
        "swap-in-use",
        put("memory.swap_total_bytes", 8 * GiB),
        put("memory.swap_used_bytes", 64 * MiB),
    ),
    near("swap-unknown", "swap-in-use", put("memory.swap_used_bytes", None)),
    near("thp-always", "thp-disabled", put("memory.transparent_hugepages.enabled", "always")),
    near(
        "thp-unknown",
        "thp-disabled",
        put("memory.transparent_hugepages", {"enabled": None, "defrag": None}),
    ),
    near("numba-error-empty", "numba-threading-layer", put("numba.error", "")),
    near("numba-workqueue-ok", "numba-threading-layer", put("numba.threading_layer", "workqueue")),
]

# Every rule by function name, with the finding ids it (alone) may produce. A rule added to
# RULES without an entry here, or an id without a triggering case, fails the meta-tests.
RULE_IDS = {
    "oversubscription": {"threads-oversubscribed"},
    "threads_pinned_to_one": {"threads-pinned-to-one"},
    "reference_blas": {"blas-reference"},
    "several_blas": {"blas-multiple"},
    "several_openmp": {"openmp-multiple", "openmp-intel-and-llvm"},
    "numpy_simd_unused": {"numpy-simd-unused"},
    "blas_old_target": {"blas-old-target"},
    "gpu_without_cupy": {"gpu-without-cupy"},
    "cupy_cuda_too_new": {"cupy-cuda-too-new"},
    "several_cupy_wheels": {"cupy-multiple-wheels"},
    "cupy_without_gpu": {"cupy-without-gpu"},
    "cupy_cannot_run": {"cupy-cannot-run"},
    "gpu_unsupported_by_cupy": {"gpu-unsupported-by-cupy"},
    "pcie_degraded": {"gpu-pcie-degraded"},
    "persistence_off": {"gpu-persistence-off"},
    "compute_mode": {"gpu-compute-prohibited", "gpu-compute-exclusive"},
    "several_numa_nodes": {"numa-multiple-nodes"},
    "low_memory": {"memory-low"},
    "swap_in_use": {"swap-in-use"},
    "hugepages_off": {"thp-disabled"},
    "numba_layer_error": {"numba-threading-layer"},
}
ALL_IDS = set().union(*RULE_IDS.values())


# --- Baseline ---------------------------------------------------------------------------


def test_baseline_is_healthy():
    assert evaluate(baseline()) == []


def test_baseline_is_fresh_each_call():
    facts = baseline()
    facts["threadpools"][0]["num_threads"] = 99
    facts["cpu"]["flags"].clear()
    assert baseline()["threadpools"][0]["num_threads"] == 8
    assert baseline()["cpu"]["flags"] == HASWELL_FLAGS


@pytest.mark.parametrize("facts", [{}, {"numpy_simd": None, "numpy_build": None}])
def test_missing_sections_raise_nothing(facts):
    assert evaluate(facts) == []


# --- Each rule triggers ... -------------------------------------------------------------


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in TRIGGERS])
def test_rule_triggers(case: Trigger):
    findings = evaluate(facts_with(*case.changes))
    assert sorted(f.id for f in findings) == sorted([case.id, *case.also])
    (finding,) = [f for f in findings if f.id == case.id]
    assert finding.severity == case.severity
    for text in case.title:
        assert text in finding.title
    for text in case.evidence:
        assert text in finding.evidence
    for text in case.fix:
        assert text in finding.fix


# --- ... and near-misses do not ---------------------------------------------------------


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in NEAR_MISSES])
def test_near_miss_raises_nothing(case: NearMiss):
    assert evaluate(facts_with(*case.changes)) == []


# --- Rule-specific details --------------------------------------------------------------


def test_pinned_fix_without_culprit_does_not_unset():
    (finding,) = evaluate(facts_with(put("numba.num_threads", 1)))
    assert "unset" not in finding.fix
    assert "set by" not in finding.evidence


def test_pinned_culprits_are_only_variables_set_to_one():
    facts = facts_with(
        put("threadpools.0.num_threads", 1),
        env(OMP_NUM_THREADS="4", OPENBLAS_NUM_THREADS="1", OMP_DYNAMIC="1"),
    )
    (finding,) = evaluate(facts)
    assert "(set by OPENBLAS_NUM_THREADS=1)" in finding.evidence
    assert "unset OPENBLAS_NUM_THREADS;" in finding.fix
    assert "OMP_NUM_THREADS" not in finding.fix
    assert "OMP_DYNAMIC" not in finding.evidence


def test_oversubscription_lists_every_culprit():
    facts = facts_with(
        put("threadpools.0.num_threads", 12), put("numba.num_threads", 10),
        env(OMP_NUM_THREADS="16"),
    )  # fmt: skip
    (finding,) = evaluate(facts)
    assert finding.evidence.startswith(
        "openblas 0.3.27 (from numpy): 12 threads; numba: 10 threads; OMP_NUM_THREADS=16."
    )


def test_blas_reference_combines_all_evidence():
    facts = facts_with(
        put("generic_blas", [MACHINE_NETLIB, MACHINE_OPENBLAS_ALTERNATIVE]),
        put("numpy_build.blas.name", "blas"),
    )
    (finding,) = evaluate(facts)
    assert MACHINE_NETLIB["resolves_to"] in finding.evidence
    assert MACHINE_OPENBLAS_ALTERNATIVE["path"] not in finding.evidence  # the optimised one
    assert "NumPy was built against 'blas'" in finding.evidence


def test_blas_old_target_one_finding_per_old_pool():
    facts = facts_with(
        skylake_sp,
        add_pool(blas_pool(SCIPY_BLAS, "scipy", "Haswell")),
        add_pool(blas_pool(CV2_BLAS, "opencv_python_headless", "Prescott", "0.3.15")),
    )
    old = [f for f in evaluate(facts) if f.id == "blas-old-target"]
    assert [(f.severity, "scipy" in f.title) for f in old] == [("warn", False), ("info", True)]
    assert CV2_BLAS in old[0].evidence
    assert SCIPY_BLAS in old[1].evidence


def test_intel_and_llvm_openmp_is_one_error_not_also_a_warning():
    facts = facts_with(add_pool(omp_pool("libiomp", LIBIOMP)), add_pool(omp_pool("libomp", LIBOMP)))
    assert [(f.id, f.severity) for f in evaluate(facts)] == [("openmp-intel-and-llvm", "error")]


# --- Regressions: bugs these tests found, fixed in the rules --------------------------


def test_blas_old_target_advice_fits_a_blis_pool():
    blis = {
        "user_api": "blas",
        "internal_api": "blis",
        "num_threads": 8,
        "prefix": "libblis",
        "filepath": "/opt/conda/lib/libblis.so.4",
        "version": "0.9.0",
        "threading_layer": "pthreads",
        "architecture": "haswell",
        "owner": None,
    }
    findings = evaluate(facts_with(skylake_sp, put("threadpools.0", blis)))
    for f in findings:
        assert "OpenBLAS" not in f.evidence
        assert "OPENBLAS_CORETYPE" not in f.fix


def test_blas_multiple_fix_names_no_none_owner():
    # apt's python3-numpy (system OpenBLAS, no site-packages owner) + a pip SciPy wheel
    system = blas_pool(
        "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblasp-r0.3.21.so", None, version="0.3.21"
    )
    facts = facts_with(put("threadpools.0", system), add_pool(blas_pool(SCIPY_BLAS, "scipy")))
    (finding,) = evaluate(facts)
    assert finding.id == "blas-multiple"
    assert "None" not in finding.fix
    assert "the system" in finding.fix


def test_missing_numba_is_not_reported_as_threading_layer_failure():
    for numba in ({"version": None, "error": "No module named 'numba'"},
                  {"version": None, "import_error": "No module named 'numba'"}):  # fmt: skip
        assert not any("tbb" in f.fix for f in evaluate(facts_with(put("numba", numba))))


# --- Properties of all rules ------------------------------------------------------------


def test_rule_table_matches_RULES():
    names = [r.__name__ for r in RULES]
    assert len(names) == len(set(names)), "a rule is registered twice"
    assert set(names) == set(RULE_IDS), "add new rules to RULE_IDS and give them cases"


def test_rule_families_have_disjoint_ids():
    for a, ids_a in RULE_IDS.items():
        for b, ids_b in RULE_IDS.items():
            assert a == b or not ids_a & ids_b, f"{a} and {b} share ids {ids_a & ids_b}"


def test_every_rule_and_every_id_has_a_triggering_case():
    produced: dict[str, set[str]] = {r.__name__: set() for r in RULES}
    for case in TRIGGERS:
        facts = facts_with(*case.changes)
        for r in RULES:
            produced[r.__name__] |= {f.id for f in r(facts)}
    assert produced == RULE_IDS  # each rule fires, only with its own ids, and all of them
    assert {c.id for c in TRIGGERS} == ALL_IDS


def test_every_id_has_a_near_miss():
    covered = {i for case in NEAR_MISSES for i in case.ids}
    assert covered == ALL_IDS


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in TRIGGERS])
def test_findings_are_well_formed_and_rules_pure(case: Trigger):
    facts = facts_with(*case.changes)
    before = copy.deepcopy(facts)
    findings = evaluate(facts)
    assert facts == before, "a rule changed the facts"
    for f in findings:
        assert isinstance(f, Finding)
        assert f.severity in SEVERITIES
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", f.id)
        assert f.id in ALL_IDS
        assert f.title.strip()
        assert f.evidence.strip()
        assert f.fix.strip()
        assert f.evidence.endswith(".")
        assert f.to_dict() == {
            "id": f.id,
            "severity": f.severity,
            "title": f.title,
            "evidence": f.evidence,
            "fix": f.fix,
        }


def test_evaluate_sorts_error_warn_info_and_keeps_rule_order_within_each():
    facts = facts_with(
        put("memory.transparent_hugepages.enabled", "never"),
        put("numba.error", "ValueError: No threading layer could be loaded."),
        put("memory.swap_used_bytes", GiB),
        put("memory.available_bytes", GiB // 2),
        put("generic_blas", [MACHINE_NETLIB]),
        put("numa.nodes", [{"id": 0, "cpus": [0, 1, 2, 3]}, {"id": 1, "cpus": [4, 5, 6, 7]}]),
    )
    findings = evaluate(facts)
    assert [(f.severity, f.id) for f in findings] == [
        ("error", "blas-reference"),
        ("error", "numba-threading-layer"),
        ("warn", "memory-low"),
        ("warn", "swap-in-use"),
        ("info", "numa-multiple-nodes"),
        ("info", "thp-disabled"),
    ]


def test_severities_are_ordered_least_to_most_severe():
    assert SEVERITIES == ("info", "warn", "error")


# --- SIMD tiers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "tier"),
    [
        (HASWELL_FLAGS, 4),
        (SKYLAKE_SP_FLAGS, 5),
        (GRAVITON3_FLAGS, 12),
        (NEOVERSE_N1_FLAGS, 11),
        (["sse", "sse2"], 1),
        (["sse2", "sse4_1", "sse4_2"], 2),
        (["sse2", "sse4_2", "avx"], 3),
        (["sse2", "sse4_2", "avx", "avx2"], 3),  # AVX2 without FMA is not the AVX2+FMA tier
        (["sse2", "sse4_2", "avx", "avx2", "fma", "avx512f", "avx512cd"], 4),  # KNL: no BW/DQ/VL
        (["avx512f", "avx512bw", "avx512dq", "avx512vl"], 5),
        (["asimd", "sve", "sse2"], 1),  # an x86 ladder wins over stray Arm names
        ([], None),
        (["vsx", "altivec"], None),
    ],
)
def test_cpu_tier(flags, tier):
    assert cpu_tier(flags) == tier
    assert cpu_tier(iter(flags)) == tier  # any iterable


@pytest.mark.parametrize(
    ("names", "tier"),
    [
        # NumPy 1.x / 2.x names
        (["SSE", "SSE2", "SSE3", "SSSE3"], 1),
        (["SSE41", "SSE42", "POPCNT"], 2),
        (["AVX", "F16C"], 3),
        (["FMA3", "AVX2"], 4),
        (["AVX512F", "AVX512CD", "AVX512_KNL", "AVX512_SKX", "AVX512_ICL", "AVX512_SPR"], 5),
        # NumPy 2.4 names, and lower case
        (["X86_V2", "x86_v2"], 2),
        (["X86_V3", "x86_v3"], 4),
        (["X86_V4", "x86_v4", "avx512_skx"], 5),
        # Arm
        (["NEON", "NEON_FP16", "NEON_VFPV4", "ASIMD", "ASIMDHP", "ASIMDDP", "ASIMDFHM"], 11),
        (["SVE", "SVE2"], 12),
        # Other architectures and unknown names map to no tier
        (["VSX", "VSX2", "VSX4", "VX", "VXE", "LSX", "RVV", "FMA4", "XOP", ""], None),
    ],
)
def test_numpy_target_tier(names, tier):
    for name in names:
        assert numpy_target_tier(name) == tier, name


@pytest.mark.parametrize(
    ("core", "tier"),
    [
        ("Prescott", 1),
        ("Core2", 1),
        ("Nehalem", 2),
        ("Sandybridge", 3),
        ("Haswell", 4),
        ("HASWELL", 4),
        ("haswell", 4),
        ("Zen", 4),
        ("SkylakeX", 5),
        ("SKYLAKEX", 5),
        ("CooperLake", 5),
        ("SapphireRapids", 5),
        ("ARMV8", 11),
        ("NeoverseN1", 11),
        ("neoversen1", 11),
        ("NeoverseV1", 12),
        ("Neoverse-V1", 12),
        ("A64FX", 12),
        ("Zen5", None),
        ("POWER9", None),
        ("", None),
        (None, None),
    ],
)
def test_blas_core_tier(core, tier):
    assert blas_core_tier(core) == tier


def test_every_tier_has_a_name_and_ladders_are_separate():
    tiers = {cpu_tier(f) for f in (HASWELL_FLAGS, SKYLAKE_SP_FLAGS, GRAVITON3_FLAGS, ["sse2"])}
    tiers |= {numpy_target_tier(n) for n in [*NUMPY_DISPATCH, *ARM_NUMPY_BASELINE, "SVE"]}
    tiers.discard(None)
    assert tiers <= set(TIER_NAMES)
    assert all((t > 10) == (t // 10 == 1) for t in TIER_NAMES)
