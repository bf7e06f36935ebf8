"""Small file-system helpers shared by the modules that write files atomically."""

from __future__ import annotations

import contextlib
import os

__all__ = ["remove_quietly", "umask"]


def remove_quietly(path: str) -> None:
    """Remove ``path`` if it is there; errors (already gone, no permission) are ignored."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def umask() -> int:
    """The process umask, read without changing it where /proc allows."""
    with contextlib.suppress(OSError, ValueError, StopIteration), \
            open("/proc/self/status", encoding="ascii") as status:
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly affects other threads)
    os.umask(mask)
    return mask
