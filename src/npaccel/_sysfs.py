"""Read-only access to a Linux system's /proc and /sys, live or recorded.

Everything npaccel learns about the machine goes through a :class:`Host`, so the same
parsing code runs on the live machine and on recorded fixtures (a directory holding
``proc/...`` and ``sys/...`` files, plus ``_commands/<name>`` for recorded command output).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LIVE", "Host", "parse_cpu_list"]


@dataclass(frozen=True)
class Host:
    """A view of a machine's files: ``root="/"`` is this machine, anything else a recording."""

    root: Path = Path("/")

    @property
    def live(self) -> bool:
        return self.root == Path("/")

    def path(self, name: str) -> Path:
        return self.root / name.lstrip("/")

    def read(self, name: str) -> str | None:
        """The text of ``name`` (e.g. ``"proc/meminfo"``), or None if it cannot be read."""
        try:
            return self.path(name).read_text(errors="replace")
        except OSError:
            return None

    def glob(self, pattern: str) -> list[Path]:
        return sorted(self.root.glob(pattern.lstrip("/")))

    def run(self, name: str, args: list[str], *, timeout: float = 3.0) -> str | None:
        """Stdout of command ``name`` (recorded in ``_commands/name`` for a recording), or None."""
        if not self.live:
            return self.read(f"_commands/{name}")
        exe = shutil.which(name)
        if exe is None:
            return None
        try:
            done = subprocess.run(
                [exe, *args], capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout if done.returncode == 0 else None

    def affinity(self) -> list[int] | None:
        """CPUs this process may run on: the scheduler's answer live, the status file otherwise."""
        if self.live and hasattr(os, "sched_getaffinity"):
            return sorted(os.sched_getaffinity(0))
        for line in (self.read("proc/self/status") or "").splitlines():
            if line.startswith("Cpus_allowed_list:"):
                return parse_cpu_list(line.split(":", 1)[1])
        return None


LIVE = Host()


def parse_cpu_list(text: str) -> list[int]:
    """Parse the kernel's CPU list format (``"0-3,8,10-11"``) into sorted CPU ids."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return sorted(cpus)
