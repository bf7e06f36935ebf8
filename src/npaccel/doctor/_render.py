"""Human rendering of a doctor report with rich. Returns renderables; the CLI prints them."""

from __future__ import annotations

import re
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = ["render"]

_SEVERITY_STYLE = {"error": "bold red", "warn": "yellow", "info": "cyan"}
_SIMD_FLAG = re.compile(r"^(sse|ssse|avx|fma|f16c|amx|asimd|sve|neon|vnni)", re.IGNORECASE)


def _bytes(n: int | None) -> str:
    if n is None:
        return "?"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _kv(title: str, rows: list[tuple[str, Any]]) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        title_style="bold",
        show_header=False,
        box=None,
        padding=(0, 2),
    )
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, "—" if value in (None, "", []) else str(value))
    return table


def _system(f: dict[str, Any]) -> Table:
    p, v = f["platform"], f["versions"]
    return _kv(
        "System",
        [
            ("OS", f"{p['os']} {p['kernel']} ({p['machine']}, {p.get('libc') or 'libc ?'})"),
            (
                "Python",
                f"{p['python_implementation']} {p['python']}"
                + (" free-threaded" if p.get("free_threaded") else "")
                + f"  {p['python_executable']}",
            ),
            ("Versions", ", ".join(f"{k} {val}" for k, val in v.items() if val)),
            ("Imported", ", ".join(f["imported"])),
        ],
    )


def _cpu(f: dict[str, Any]) -> Table:
    c = f["cpu"]
    limits = []
    if c.get("affinity") is not None:
        limits.append(f"affinity {len(c['affinity'])}")
    if c.get("cgroup_cpu_quota") is not None:
        limits.append(f"cgroup v{c.get('cgroup_version')} quota {c['cgroup_cpu_quota']:g}")
    caches = ", ".join(
        f"L{k['level']}{k['type'][0] if k['type'] in ('Data', 'Instruction') else ''} "
        f"{_bytes(k['size_bytes'])}×{k['instances']}"
        for k in c.get("caches", [])
    )
    return _kv(
        "CPU",
        [
            ("Model", f"{c.get('model')} ({c.get('vendor') or c.get('architecture') or '?'})"),
            (
                "Cores",
                f"{c.get('logical_cores')} logical, {c.get('physical_cores')} physical, "
                f"{c.get('sockets')} socket(s)",
            ),
            ("Usable CPUs", f"{c['usable_cpus']}" + (f" ({', '.join(limits)})" if limits else "")),
            ("SIMD", " ".join(x for x in c.get("flags", []) if _SIMD_FLAG.match(x))),
            ("Caches", caches),
        ],
    )


def _numpy(f: dict[str, Any]) -> Table:
    s, b = f["numpy_simd"], f.get("numpy_build") or {}
    blas = b.get("blas") or {}
    return _kv(
        "NumPy build",
        [
            ("SIMD baseline", " ".join(s.get("baseline", []))),
            ("Dispatched, found", " ".join(s.get("found", []))),
            ("Dispatched, not found", " ".join(s.get("not_found", []))),
            (
                "BLAS (build)",
                f"{blas.get('name')} {blas.get('version') or ''}".strip() if blas else None,
            ),
        ],
    )


def _memory(f: dict[str, Any]) -> Table:
    m, nodes = f["memory"], f["numa"]["nodes"]
    thp = m.get("transparent_hugepages", {})
    return _kv(
        "Memory",
        [
            (
                "Total / available",
                f"{_bytes(m.get('total_bytes'))} / {_bytes(m.get('available_bytes'))}",
            ),
            (
                "Swap used / total",
                f"{_bytes(m.get('swap_used_bytes'))} / {_bytes(m.get('swap_total_bytes'))}",
            ),
            (
                "cgroup limit",
                _bytes(m["cgroup_limit_bytes"]) if m.get("cgroup_limit_bytes") else "none",
            ),
            ("Hugepages (THP)", f"enabled={thp.get('enabled')} defrag={thp.get('defrag')}"),
            (
                "NUMA nodes",
                "; ".join(
                    f"{n['id']}: {len(n['cpus'])} CPUs, {_bytes(n.get('memory_total_bytes'))}"
                    for n in nodes
                )
                or "not reported",
            ),
        ],
    )


def _threads(f: dict[str, Any]) -> Group:
    table = Table(title="Thread pools", title_justify="left", title_style="bold")
    for col in ("API", "library", "version", "arch / layer", "threads", "from"):
        table.add_column(col, overflow="fold")
    for p in f["threadpools"]:
        arch = " / ".join(str(x) for x in (p.get("architecture"), p.get("threading_layer")) if x)
        table.add_row(
            p.get("user_api"),
            p.get("prefix"),
            p.get("version") or "",
            arch,
            str(p.get("num_threads")),
            p.get("owner") or p.get("filepath"),
        )
    n = f["numba"]
    table.add_row(
        "numba",
        n.get("threading_layer") or f"({n.get('error', 'not started')})",
        n.get("version") or "",
        n.get("requested_layer") or "",
        f"{n.get('num_threads')} of {n.get('max_threads')}",
        "numba",
    )
    env = f["thread_env"]
    return Group(
        table, _kv("", [("Thread env", " ".join(f"{k}={v}" for k, v in env.items()) or "none set")])
    )


def _pcie_text(link: dict[str, Any] | None) -> str | None:
    if not link:
        return None
    now = f"gen{link.get('gen_current') or '?'} x{link.get('width_current') or '?'}"
    best = f"gen{link.get('gen_max') or '?'} x{link.get('width_max') or '?'}"
    return f"PCIe {now}" + ("" if now == best else f" (max {best})")


def _gpu_rows(g: dict[str, Any]) -> list[tuple[str, Any]]:
    if not g["devices"]:
        return [("NVIDIA GPUs", "none found")]
    driver = g.get("driver_version") or g.get("kernel_driver_version")
    cuda = g.get("cuda_driver_version")
    rows: list[tuple[str, Any]] = [
        (
            "NVIDIA driver",
            f"{driver or '?'}"
            + (f", supports CUDA {cuda} ({g.get('cuda_driver_version_source')})" if cuda else "")
            + f"; GPUs via {g['source']}",
        )
    ]
    for d in g["devices"]:
        parts = [
            str(d.get("name")),
            _bytes(d.get("memory_total_bytes")) if d.get("memory_total_bytes") else None,
            f"cc {d['compute_capability']}" if d.get("compute_capability") else None,
            _pcie_text(d.get("pcie")),
            d.get("pstate"),
            None
            if d.get("persistence_mode") is None
            else f"persistence {'on' if d['persistence_mode'] else 'off'}",
            f"compute mode {d['compute_mode']}" if d.get("compute_mode") else None,
            d.get("pci_bus_id"),
        ]
        rows.append((f"GPU {d.get('index')}", ", ".join(p for p in parts if p)))
    return rows


def _cupy_text(cupy: dict[str, Any]) -> str:
    if not cupy.get("installed"):
        return "not installed"
    packages = cupy.get("packages") or []
    text = ", ".join(f"{p['name']} {p['version']}" for p in packages) or str(cupy.get("version"))
    cuda = [
        f"CUDA {cupy[k]} {what}"
        for k, what in (("cuda_runtime_version", "runtime"), ("cuda_driver_version", "driver"))
        if cupy.get(k)
    ]
    if cuda:
        text += f" ({', '.join(cuda)})"
    if "device_count" in cupy:
        text += f", sees {cupy['device_count']} GPU(s)"
    if "runs" in cupy:
        text += ", kernels run" if cupy["runs"] else f", kernels fail ({cupy.get('run_error')})"
    if cupy.get("error"):
        text += f" ({cupy['error']})"
    return text


def _accelerators(f: dict[str, Any]) -> Table:
    g, cupy, dask = f["gpu"], f["cupy"], f["dask"]
    return _kv(
        "GPU and cluster",
        [
            *_gpu_rows(g),
            ("CuPy", _cupy_text(cupy)),
            (
                "Dask",
                f"{dask['version']} (distributed {dask.get('distributed') or 'not installed'})"
                if dask.get("installed")
                else "not installed",
            ),
        ],
    )


def _findings(findings: list[dict[str, str]]) -> RenderableType:
    if not findings:
        return Text(
            "No findings: nothing misconfigured that doctor knows to look for.", style="green"
        )
    parts: list[RenderableType] = []
    for f in findings:
        style = _SEVERITY_STYLE[f["severity"]]
        parts.append(
            Text.assemble(
                (f"{f['severity'].upper():5} ", style),
                (f["id"], "bold"),
                f"  {f['title']}\n",
                ("      evidence: ", "dim"),
                f"{f['evidence']}\n",
                ("      fix: ", "bold"),
                f["fix"],
            )
        )
    return Group(*parts)


def render(report: dict[str, Any]) -> list[RenderableType]:
    """Renderables for a :func:`npaccel.doctor.diagnose` report, in reading order."""
    f = report["facts"]
    counts = {
        s: sum(x["severity"] == s for x in report["findings"]) for s in ("error", "warn", "info")
    }
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"
    return [
        Text(
            f"npaccel doctor — {f['cpu'].get('model')}, {f['cpu']['usable_cpus']} usable CPU(s) "
            f"— {summary} ({report['elapsed_s']:.1f} s)",
            style="bold",
        ),
        _system(f),
        _cpu(f),
        _numpy(f),
        _memory(f),
        _threads(f),
        _accelerators(f),
        Text("Findings", style="bold"),
        _findings(report["findings"]),
    ]
