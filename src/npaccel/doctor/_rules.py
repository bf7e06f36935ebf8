"""Rules: facts in, findings out. Each rule is a small pure function of the facts dict, so
every rule is tested with facts that trigger it and facts that don't."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

from npaccel.doctor._simd import TIER_NAMES, blas_core_tier, cpu_tier, numpy_target_tier

__all__ = ["RULES", "SEVERITIES", "Finding", "evaluate"]

Severity = Literal["info", "warn", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warn", "error")

Facts = dict[str, Any]


@dataclass(frozen=True)
class Finding:
    """Something worth knowing about the machine, with the evidence and how to fix it."""

    id: str
    severity: Severity
    title: str
    evidence: str
    fix: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


Rule = Callable[[Facts], Iterator[Finding]]
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def evaluate(facts: Facts) -> list[Finding]:
    """All findings for ``facts``, most severe first (stable within a severity)."""
    findings = [f for r in RULES for f in r(facts)]
    return sorted(findings, key=lambda f: -SEVERITIES.index(f.severity))


def _usable(facts: Facts) -> int:
    return int(facts.get("cpu", {}).get("usable_cpus") or 1)


def _pool_label(pool: dict[str, Any]) -> str:
    label = f"{pool.get('internal_api')} {pool.get('version') or ''}".strip()
    if pool.get("owner"):
        label += f" (from {pool['owner']})"
    return label


def _pools(facts: Facts, user_api: str) -> list[dict[str, Any]]:
    return [p for p in facts.get("threadpools", []) if p.get("user_api") == user_api]


@rule
def oversubscription(facts: Facts) -> Iterator[Finding]:
    usable = _usable(facts)
    over = [
        f"{_pool_label(p)}: {p['num_threads']} threads"
        for p in facts.get("threadpools", [])
        if (p.get("num_threads") or 0) > usable
    ]
    numba = facts.get("numba", {})
    if (numba.get("num_threads") or 0) > usable:
        over.append(f"numba: {numba['num_threads']} threads")
    for name, value in facts.get("thread_env", {}).items():
        if (
            name.endswith(("_NUM_THREADS", "_MAX_THREADS", "_MAXIMUM_THREADS"))
            and value.strip().isdigit()
            and int(value) > usable
        ):
            over.append(f"{name}={value}")
    if over:
        yield Finding(
            "threads-oversubscribed",
            "warn",
            f"Thread pools are larger than the {usable} CPU(s) this process may use",
            "; ".join(over) + f". Usable CPUs (affinity and cgroup quota): {usable}.",
            f"export OMP_NUM_THREADS={usable} OPENBLAS_NUM_THREADS={usable} "
            f"MKL_NUM_THREADS={usable} NUMBA_NUM_THREADS={usable}; or in code: "
            f"npaccel.threads.set_threads({usable})",
        )


@rule
def threads_pinned_to_one(facts: Facts) -> Iterator[Finding]:
    usable = _usable(facts)
    if usable < 2:
        return
    pinned = [_pool_label(p) for p in facts.get("threadpools", []) if p.get("num_threads") == 1]
    if facts.get("numba", {}).get("num_threads") == 1:
        pinned.append("numba")
    if not pinned:
        return
    env = facts.get("thread_env", {})
    culprits = [f"{k}={v}" for k, v in env.items() if v.strip() == "1" and "THREADS" in k]
    why = f" (set by {', '.join(culprits)})" if culprits else ""
    yield Finding(
        "threads-pinned-to-one",
        "warn",
        f"Single-threaded while {usable} CPUs are usable",
        f"{', '.join(pinned)} run 1 thread{why}.",
        f"unset {' '.join(c.split('=')[0] for c in culprits)}; or in code: "
        f"npaccel.threads.set_threads({usable})"
        if culprits
        else f"npaccel.threads.set_threads({usable})  # or threadpool_limits({usable})",
    )


@rule
def reference_blas(facts: Facts) -> Iterator[Finding]:
    evidence = [
        f"{lib['path']} → {lib['resolves_to']}"
        for lib in facts.get("generic_blas", [])
        if not lib.get("optimised")
    ]
    for p in _pools(facts, "blas"):
        if (
            p.get("internal_api") == "flexiblas"
            and "NETLIB" in str(p.get("current_backend", "")).upper()
        ):
            evidence.append(f"FlexiBLAS backend {p['current_backend']} ({p.get('filepath')})")
    blas = (facts.get("numpy_build") or {}).get("blas") or {}
    if str(blas.get("name", "")).lower() in {"blas", "cblas", "netlib", "refblas"}:
        evidence.append(f"NumPy was built against '{blas['name']}' (numpy.show_config())")
    if evidence:
        yield Finding(
            "blas-reference",
            "error",
            "A reference (netlib) BLAS is in use: matrix products run 10-100x slower",
            "; ".join(evidence) + ".",
            "pip install --force-reinstall numpy scipy  # wheels bundle OpenBLAS; "
            "on Debian/Ubuntu: "
            "sudo apt install libopenblas0-pthread && sudo update-alternatives --config "
            "libblas.so.3-$(uname -m)-linux-gnu; with FlexiBLAS: export FLEXIBLAS=OPENBLAS",
        )


@rule
def several_blas(facts: Facts) -> Iterator[Finding]:
    pools = _pools(facts, "blas")
    if len({p.get("filepath") for p in pools}) < 2:
        return
    foreign = [p for p in pools if p.get("owner") not in {"numpy", "scipy"}]
    listing = "; ".join(
        f"{_pool_label(p)} [{p.get('architecture') or '?'}] at {p.get('filepath')}" for p in pools
    )
    if foreign:
        sources = ", ".join(sorted({p.get("owner") or "the system" for p in foreign}))
        yield Finding(
            "blas-multiple",
            "warn",
            f"{len(pools)} BLAS libraries are loaded, not only NumPy's and SciPy's",
            f"{listing}. Each keeps its own thread pool: calls from different libraries "
            "at once oversubscribe the CPUs, and kernels, speed and rounding differ by copy.",
            "Limit all pools together (npaccel.threads.set_threads(n) or "
            "threadpoolctl.threadpool_limits(n)) after the imports that load them; for the "
            f"copies from {sources} prefer builds that link one shared BLAS (conda-forge "
            "packages share one libblas).",
        )
    else:
        yield Finding(
            "blas-multiple",
            "info",
            f"{len(pools)} BLAS copies: NumPy's and SciPy's wheels each bundle OpenBLAS",
            f"{listing}. Normal for pip wheels; each copy has its own thread pool.",
            "Nothing to do unless NumPy and SciPy run BLAS concurrently; then limit threads "
            "with npaccel.threads.set_threads(n). conda-forge builds share one BLAS.",
        )


@rule
def several_openmp(facts: Facts) -> Iterator[Finding]:
    pools = _pools(facts, "openmp")
    if len({p.get("filepath") for p in pools}) < 2:
        return
    runtimes = {str(p.get("prefix")) for p in pools}  # libgomp, libiomp, libomp, vcomp
    listing = "; ".join(f"{p.get('prefix')} at {p.get('filepath')}" for p in pools)
    if {"libiomp", "libomp"} <= runtimes:
        yield Finding(
            "openmp-intel-and-llvm",
            "error",
            "Intel and LLVM OpenMP runtimes are loaded together: known to crash or deadlock",
            listing + ".",
            "Use one OpenMP runtime: install packages from one channel (all conda-forge or all "
            "pip), or for MKL: export MKL_THREADING_LAYER=GNU; see "
            "https://github.com/joblib/threadpoolctl/blob/master/multiple_openmp.md",
        )
    else:
        yield Finding(
            "openmp-multiple",
            "warn",
            f"{len(pools)} OpenMP runtimes are loaded, each with its own thread pool",
            listing + ". Work from different libraries at once oversubscribes the CPUs.",
            "Limit all pools together (npaccel.threads.set_threads(n)); where possible "
            "install packages that share one runtime (one conda channel).",
        )


def _top(tiers: list[int | None], arm: bool) -> int | None:
    same = [t for t in tiers if t is not None and (t > 10) == arm]
    return max(same) if same else None


@rule
def numpy_simd_unused(facts: Facts) -> Iterator[Finding]:
    simd = facts.get("numpy_simd") or {}
    cpu = cpu_tier(facts.get("cpu", {}).get("flags", []))
    if cpu is None or not simd:
        return
    used = simd.get("baseline", []) + simd.get("found", [])
    top = _top([numpy_target_tier(n) for n in used], arm=cpu > 10)
    if top is None or top >= cpu:
        return
    covered = set(simd.get("baseline", [])) | set(simd.get("dispatched", []))
    unused = [
        f
        for f in simd.get("cpu_features", [])
        if f not in covered
        and (numpy_target_tier(f) or 0) > top
        and (numpy_target_tier(f) or 0) // 10 == cpu // 10
    ]
    yield Finding(
        "numpy-simd-unused",
        "warn",
        f"NumPy's build stops at {TIER_NAMES[top]}; this CPU has {TIER_NAMES[cpu]}",
        f"NumPy {simd.get('numpy')} baseline {simd.get('baseline')}, dispatched "
        f"{simd.get('dispatched')}; CPU features it never uses: {unused or 'see cpu flags'}.",
        "pip install --upgrade numpy  # release wheels dispatch up to AVX-512; a source build: "
        "pip install numpy --no-binary numpy -Csetup-args=-Dcpu-dispatch=max",
    )


_CORETYPE_FOR_TIER = {2: "Nehalem", 3: "Sandybridge", 4: "Haswell", 5: "SkylakeX", 12: "NeoverseV1"}


@rule
def blas_old_target(facts: Facts) -> Iterator[Finding]:
    cpu = cpu_tier(facts.get("cpu", {}).get("flags", []))
    if cpu is None:
        return
    for p in _pools(facts, "blas"):
        if p.get("internal_api") != "openblas":  # core names, OPENBLAS_CORETYPE: OpenBLAS only
            continue
        tier = blas_core_tier(p.get("architecture"))
        if tier is None or (tier > 10) != (cpu > 10) or tier >= cpu:
            continue
        severe = cpu - tier >= 2
        yield Finding(
            "blas-old-target",
            "warn" if severe else "info",
            f"{_pool_label(p)} runs '{p['architecture']}' kernels ({TIER_NAMES[tier]}) "
            f"on a CPU with {TIER_NAMES[cpu]}",
            f"{p.get('filepath')}: OpenBLAS {p.get('version')} picked core "
            f"'{p['architecture']}', so matrix products through this copy use narrower vector "
            f"instructions than the CPU has"
            + (
                " (an unknown, newer CPU makes old OpenBLAS fall back to Prescott)."
                if tier == 1
                else "."
            ),
            f"pip install --upgrade {p.get('owner') or 'the package that loads it'}  # newer "
            f"OpenBLAS knows this CPU; or, for a DYNAMIC_ARCH build: "
            f"export OPENBLAS_CORETYPE={_CORETYPE_FOR_TIER.get(cpu, 'Haswell')}",
        )


# --- GPUs and CuPy -------------------------------------------------------------------------

# The oldest Linux driver each CUDA major runs on (CUDA minor version compatibility), and the
# oldest compute capability it still compiles for (CUDA 12 dropped Kepler; CUDA 13 dropped
# Maxwell, Pascal and Volta).
_CUDA_MIN_DRIVER = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
_CUDA_MIN_CC = {11: (3, 5), 12: (5, 0), 13: (7, 5)}
# PCIe bandwidth per lane and direction, GB/s (after 8b/10b or 128b/130b encoding).
_LANE_GBPS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


def _major(version: Any) -> int | None:
    head = str(version or "").partition(".")[0]
    return int(head) if head.isdigit() else None


def _cc(text: Any) -> tuple[int, int] | None:
    major, _, minor = str(text or "").partition(".")
    return (int(major), int(minor)) if major.isdigit() and minor.isdigit() else None


def _driver_cuda(facts: Facts) -> tuple[str | None, str]:
    """The newest CUDA the driver supports and where that comes from, for evidence."""
    gpu, cupy = facts.get("gpu", {}), facts.get("cupy", {})
    if gpu.get("cuda_driver_version"):
        how = {"nvml": "NVML", "driver-table": "CUDA's driver table"}.get(
            gpu.get("cuda_driver_version_source"), "doctor"
        )
        return gpu["cuda_driver_version"], f"driver {gpu.get('driver_version') or '?'} ({how})"
    if cupy.get("cuda_driver_version"):
        return cupy["cuda_driver_version"], "driver (CuPy's driverGetVersion)"
    return None, ""


def _cupy_builds(cupy: Facts) -> list[tuple[str, int]]:
    """(package label, CUDA major it is built for) of each installed CuPy."""
    builds = [(f"{p['name']} {p['version']}", p["cuda_major"])
              for p in cupy.get("packages", []) if p.get("cuda_major")]  # fmt: skip
    runtime = _major(cupy.get("cuda_runtime_version"))
    if not builds and runtime:  # a source build: the runtime it loaded says
        builds = [(cupy.get("version") or "cupy", runtime)]
    return builds


def _wheel(major: int | None) -> str | None:
    return f"cupy-cuda{major}x" if major is not None and major >= 11 else None


def _cupy_names(cupy: Facts) -> str:
    return " ".join(p["name"] for p in cupy.get("packages", [])) or "cupy"


def _too_new(facts: Facts) -> tuple[list[tuple[str, int]], str | None, str]:
    cupy = facts.get("cupy", {})
    cuda, where = _driver_cuda(facts)
    driver_major = _major(cuda)
    if not cupy.get("installed") or driver_major is None:
        return [], cuda, where
    return [(b, m) for b, m in _cupy_builds(cupy) if m > driver_major], cuda, where


def _device_label(d: Facts) -> str:
    return f"GPU {d.get('index')} ({d.get('name')}, {d.get('pci_bus_id') or 'bus ?'})"


@rule
def gpu_without_cupy(facts: Facts) -> Iterator[Finding]:
    devices = facts.get("gpu", {}).get("devices", [])
    if not devices or facts.get("cupy", {}).get("installed"):
        return
    names = ", ".join(str(d.get("name")) for d in devices)
    cuda, _ = _driver_cuda(facts)
    major = _major(cuda)
    if major == 12 or major is None:
        fix = 'pip install "npaccel[gpu]"  # CuPy for CUDA 12 (cupy-cuda12x)'
    elif _wheel(major):
        fix = (f"pip install {_wheel(major)}  # the driver supports CUDA {cuda}; npaccel[gpu] "
               "installs cupy-cuda12x")  # fmt: skip
    else:
        fix = (f"Upgrade the NVIDIA driver to >= {_CUDA_MIN_DRIVER[12]} (CUDA 12), then "
               'pip install "npaccel[gpu]"  # current CuPy has no wheels for CUDA '
               f"{cuda}")  # fmt: skip
    yield Finding(
        "gpu-without-cupy",
        "warn",
        f"{len(devices)} NVIDIA GPU(s) present but CuPy is not installed",
        f"GPUs: {names}. npaccel's cuda backend needs CuPy.",
        fix,
    )


@rule
def cupy_cuda_too_new(facts: Facts) -> Iterator[Finding]:
    too_new, cuda, where = _too_new(facts)
    if not too_new:
        return
    need = max(m for _, m in too_new)
    builds = ", ".join(f"{b} (CUDA {m})" for b, m in too_new)
    wheel = _wheel(_major(cuda))
    upgrade = f"upgrade the NVIDIA driver to >= {_CUDA_MIN_DRIVER.get(need, '?')} (CUDA {need})"
    cupy = facts.get("cupy", {})
    yield Finding(
        "cupy-cuda-too-new",
        "error",
        f"CuPy is built for CUDA {need}, newer than the CUDA {cuda} the driver supports",
        f"{builds}; the NVIDIA {where} supports CUDA up to {cuda}, so CuPy cannot start "
        "(cudaErrorInsufficientDriver).",
        f"pip uninstall -y {_cupy_names(cupy)} && pip install {wheel}; or {upgrade}"
        if wheel
        else f"{upgrade[0].upper()}{upgrade[1:]}: current CuPy has no wheels for CUDA {cuda}",
    )


@rule
def several_cupy_wheels(facts: Facts) -> Iterator[Finding]:
    cupy = facts.get("cupy", {})
    packages = cupy.get("packages", [])
    if len(packages) < 2:
        return
    majors = [p["cuda_major"] for p in packages if p.get("cuda_major")]
    keep = _wheel(_major(_driver_cuda(facts)[0])) or _wheel(max(majors, default=None)) or "cupy"
    yield Finding(
        "cupy-multiple-wheels",
        "error",
        f"{len(packages)} CuPy packages are installed together",
        f"{', '.join(p['name'] + ' ' + p['version'] for p in packages)} all install the same "
        "cupy/ files, so the import mixes builds (ImportError, wrong CUDA libraries, crashes).",
        f"pip uninstall -y {_cupy_names(cupy)} && pip install {keep}",
    )


@rule
def cupy_without_gpu(facts: Facts) -> Iterator[Finding]:
    cupy = facts.get("cupy", {})
    if not cupy.get("installed") or cupy.get("device_count") or _too_new(facts)[0]:
        return
    devices = facts.get("gpu", {}).get("devices", [])
    evidence = f"{cupy.get('version') or 'CuPy'} is installed but sees no GPU"
    if cupy.get("error"):
        evidence += f": {cupy['error']}"
    if devices:
        fix = (
            "The driver sees GPUs but CuPy cannot use them: install the CuPy build for the "
            "driver's CUDA major version (nvidia-smi shows it; pip install cupy-cuda12x "
            "or cupy-cuda13x) and check CUDA_VISIBLE_DEVICES."
        )
    else:
        fix = (
            "No NVIDIA GPU or driver found (nvidia-smi). Run on a GPU machine, or "
            "pip uninstall cupy to drop the unused dependency; npaccel uses the CPU."
        )
    yield Finding("cupy-without-gpu", "warn", "CuPy has no usable GPU", evidence + ".", fix)


@rule
def cupy_cannot_run(facts: Facts) -> Iterator[Finding]:
    cupy = facts.get("cupy", {})
    if not cupy.get("device_count") or cupy.get("runs") is not False:
        return
    error = cupy.get("run_error") or "no error text"
    major = _major(cupy.get("cuda_runtime_version")) or next((m for _, m in _cupy_builds(cupy)), 12)
    wheel = next((p["name"] for p in cupy.get("packages", []) if p.get("cuda_major")), None)
    ctk = f'pip install "{wheel or _wheel(major)}[ctk]"'
    if "nvrtc" in error.lower():
        fix = (f"{ctk}  # NVRTC and the CUDA libraries CuPy loads; or set CUDA_PATH to a "
               f"CUDA {major}.x toolkit")  # fmt: skip
    else:
        fix = ('python -c "import cupy; cupy.show_config()" shows the CUDA libraries CuPy '
               f"found; {ctk} installs them, matching its CUDA {major}")  # fmt: skip
    yield Finding(
        "cupy-cannot-run",
        "error",
        "CuPy sees the GPU but cannot compile and run a kernel",
        f"{cupy.get('version') or 'CuPy'} sees {cupy['device_count']} GPU(s); a one-line "
        f"kernel failed: {error}.",
        fix,
    )


@rule
def gpu_unsupported_by_cupy(facts: Facts) -> Iterator[Finding]:
    cupy = facts.get("cupy", {})
    if not cupy.get("installed"):
        return
    devices = facts.get("gpu", {}).get("devices", [])
    for build, major in _cupy_builds(cupy):
        oldest = _CUDA_MIN_CC.get(major)
        known = [(d, _cc(d.get("compute_capability"))) for d in devices]
        old = [(d, cc) for d, cc in known if oldest and cc and cc < oldest]
        if not old:
            continue
        lowest = min(cc for _, cc in old)
        listing = "; ".join(f"{_device_label(d)}: cc {cc[0]}.{cc[1]}" for d, cc in old)
        fit = next((m for m in (12, 11) if lowest >= _CUDA_MIN_CC[m]), None)
        yield Finding(
            "gpu-unsupported-by-cupy",
            "error",
            f"{build} (CUDA {major}) does not support compute capability {lowest[0]}.{lowest[1]}",
            f"{listing}. CUDA {major} compiles for compute capability >= {oldest[0]}.{oldest[1]}.",
            f"pip uninstall -y {_cupy_names(cupy)} && pip install {_wheel(fit)}  # CUDA {fit} "
            f"supports compute capability >= {_CUDA_MIN_CC[fit][0]}.{_CUDA_MIN_CC[fit][1]}"
            if fit
            else "No CuPy release with current wheels supports this GPU: use npaccel's CPU "
            "backends (backend='cpu').",
        )


def _link(gen: int | None, width: int | None) -> str:
    return f"gen{gen or '?'} x{width or '?'}"


def _gbps(gen: int | None, width: int | None) -> float | None:
    return _LANE_GBPS[gen] * width if gen in _LANE_GBPS and width else None


@rule
def pcie_degraded(facts: Facts) -> Iterator[Finding]:
    slow = []
    for d in facts.get("gpu", {}).get("devices", []):
        link = d.get("pcie") or {}
        gen, gen_max = link.get("gen_current"), link.get("gen_max")
        width, width_max = link.get("width_current"), link.get("width_max")
        narrow = width and width_max and width < width_max
        # GPUs drop the link generation when idle to save power: only a busy GPU (P0) at a
        # lower generation is running slow.
        old_gen = gen and gen_max and gen < gen_max and d.get("pstate") == "P0"
        if not (narrow or old_gen):
            continue
        now = _gbps(gen if old_gen else gen_max, width)
        best = _gbps(gen_max, width_max)
        rate = f": about {now:.1f} of {best:.1f} GB/s each way" if now and best else ""
        slow.append(f"{_device_label(d)} runs PCIe {_link(gen, width)}, capable of "
                    f"{_link(gen_max, width_max)}{rate} ({link.get('source')})")  # fmt: skip
    if slow:
        yield Finding(
            "gpu-pcie-degraded",
            "warn",
            "A GPU's PCIe link runs below its capability: host-device transfers are slower",
            "; ".join(slow) + ".",
            "Move the card to a slot wired x16 (slots that share lanes drop to x8 when the "
            "other is used: see the board manual), check the BIOS PCIe settings (link speed, "
            "bifurcation) and risers; re-check under load with nvidia-smi -q -d PCI or "
            "sudo lspci -vv | grep LnkSta.",
        )


@rule
def persistence_off(facts: Facts) -> Iterator[Finding]:
    off = [d for d in facts.get("gpu", {}).get("devices", []) if d.get("persistence_mode") is False]
    if off:
        yield Finding(
            "gpu-persistence-off",
            "info",
            "GPU persistence mode is off: each new process waits for the driver to start",
            f"Persistence mode disabled on {', '.join(_device_label(d) for d in off)}. With no "
            "process holding a GPU the driver unloads its state, so the first CUDA call of "
            "every short job or benchmark pays the re-initialisation (often 0.1-2 s).",
            "sudo nvidia-smi -pm 1  # until reboot; or: sudo systemctl enable --now "
            "nvidia-persistenced",
        )


@rule
def compute_mode(facts: Facts) -> Iterator[Finding]:
    devices = facts.get("gpu", {}).get("devices", [])
    for mode, fid, severity, what in (
        ("Prohibited", "gpu-compute-prohibited", "error",
         "no process may create a CUDA context on it: CuPy and npaccel's cuda backend fail"),
        ("Exclusive_Process", "gpu-compute-exclusive", "info",
         "only one process at a time may use it: a second one (a Dask worker, a notebook "
         "beside a job) fails with cudaErrorDevicesUnavailable"),
    ):  # fmt: skip
        hit = [d for d in devices if d.get("compute_mode") == mode]
        if hit:
            indices = ",".join(str(d.get("index")) for d in hit)
            yield Finding(
                fid,
                severity,
                f"{len(hit)} GPU(s) in compute mode {mode}",
                f"{', '.join(_device_label(d) for d in hit)}: compute mode {mode}, so {what}.",
                f"sudo nvidia-smi -i {indices} -c DEFAULT  # if your cluster's scheduler set "
                "it, ask for a GPU per process instead",
            )


@rule
def several_numa_nodes(facts: Facts) -> Iterator[Finding]:
    nodes = facts.get("numa", {}).get("nodes", [])
    if len(nodes) < 2:
        return
    layout = "; ".join(
        f"node {n['id']}: CPUs {_ranges(n['cpus'])}, "
        f"{(n.get('memory_total_bytes') or 0) / 2**30:.0f} GiB"
        for n in nodes
    )
    yield Finding(
        "numa-multiple-nodes",
        "info",
        f"{len(nodes)} NUMA nodes: memory bandwidth depends on where data and threads live",
        layout + ".",
        "One job per node: numactl --cpunodebind=0 --membind=0 python job.py; one job over "
        "all nodes with bandwidth-bound arrays: numactl --interleave=all python job.py",
    )


def _ranges(cpus: list[int]) -> str:
    out, start = [], None
    for i, c in enumerate(cpus):
        if start is None:
            start = c
        if i + 1 == len(cpus) or cpus[i + 1] != c + 1:
            out.append(f"{start}-{c}" if c != start else f"{c}")
            start = None
    return ",".join(out)


@rule
def low_memory(facts: Facts) -> Iterator[Finding]:
    mem = facts.get("memory", {})
    total, available = mem.get("total_bytes"), mem.get("available_bytes")
    if not total or available is None:
        return
    limit = mem.get("cgroup_limit_bytes")
    if limit and limit < total:
        total = limit
        available = min(available, limit)
    if available < 0.10 * total or available < 1 << 30:
        yield Finding(
            "memory-low",
            "warn",
            f"Only {available / 2**30:.1f} GiB of {total / 2**30:.1f} GiB memory is available",
            f"MemAvailable {available} bytes of {total}"
            + (f" (cgroup limit {limit})" if limit else "")
            + ".",
            "Free memory (close other processes), or bound the job: process arrays in chunks "
            "(npaccel.data.map_blocks(..., max_memory='2GiB')) and preallocate outputs (out=).",
        )


@rule
def swap_in_use(facts: Facts) -> Iterator[Finding]:
    used = facts.get("memory", {}).get("swap_used_bytes") or 0
    if used > 64 << 20:
        yield Finding(
            "swap-in-use",
            "warn",
            f"{used / 2**30:.2f} GiB of swap is in use: timings will be erratic",
            f"SwapTotal - SwapFree = {used} bytes.",
            "Reduce the memory in use, then bring swapped pages back: sudo swapoff -a && "
            "sudo swapon -a; watch 'vmstat 1' (si/so columns) during runs.",
        )


@rule
def hugepages_off(facts: Facts) -> Iterator[Finding]:
    thp = facts.get("memory", {}).get("transparent_hugepages", {})
    if thp.get("enabled") == "never":
        yield Finding(
            "thp-disabled",
            "info",
            "Transparent hugepages are disabled: large arrays pay more TLB misses",
            "/sys/kernel/mm/transparent_hugepage/enabled = never.",
            "echo madvise | sudo tee /sys/kernel/mm/transparent_hugepage/enabled",
        )


@rule
def numba_layer_error(facts: Facts) -> Iterator[Finding]:
    numba = facts.get("numba", {})
    if numba.get("version") and numba.get("error"):  # installed, but its threads cannot start
        yield Finding(
            "numba-threading-layer",
            "error",
            "Numba cannot start its parallel threading layer",
            f"requested layer {numba.get('requested_layer')!r}: {numba['error']}.",
            "unset NUMBA_THREADING_LAYER (Numba then picks tbb, omp or workqueue), or "
            "install the layer: pip install tbb",
        )
