"""The run manifest: one JSON line per input (what happened to it, why, how long it took).

The manifest is the run's memory. Each record is appended and flushed as soon as its input
is finished, so a run killed at any point leaves every finished input on record; the first
line describes the run (pipeline, options, start time). An input is recorded ``started``
when it is handed to a worker, then ``ok``, ``failed`` or ``skipped``. ``--resume`` reads
it back: inputs recorded ``ok`` whose output exists are skipped; an input whose latest
record is ``started`` with no output there before (``"existed": false``) is this tool's own
unfinished work, and its output (a complete file, if the killed run published it before
recording it) may be replaced. Outputs are compared as absolute paths, however the output
directory was spelled.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_NAME", "Manifest", "is_done", "is_ours", "latest_records", "read_records"]

MANIFEST_NAME = ".npaccel-manifest.jsonl"  # hidden: input discovery never picks it up
SCHEMA = "npaccel.image.manifest/1"


class Manifest:
    """Append-only JSON-lines writer, safe to call from several threads."""

    def __init__(self, path: os.PathLike | str, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._append({"schema": SCHEMA, "run": header, "started": time.time()})

    def record(self, entry: dict[str, Any]) -> None:
        self._append(entry)

    def _append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, default=str, ensure_ascii=False)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                os.fsync(self._file.fileno())
                self._file.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(path: os.PathLike | str) -> list[dict[str, Any]]:
    """The per-input records of a manifest (run headers left out). A last line cut short by
    a crash is ignored; any other unreadable line is an error naming the line."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):  # the line being written when the run was killed
                break
            raise ValueError(f"manifest {str(path)!r} line {number} is not JSON: {exc}") from None
        if "input" in entry:
            records.append(entry)
    return records


def latest_records(path: os.PathLike | str) -> dict[str, dict[str, Any]]:
    """{input path: its latest record} over every run a manifest holds."""
    latest: dict[str, dict[str, Any]] = {}
    for entry in read_records(path):
        latest[entry["input"]] = entry
    return latest


def _same_path(recorded: Any, path: os.PathLike | str) -> bool:
    return isinstance(recorded, str) and os.path.abspath(recorded) == os.path.abspath(path)


def is_done(entry: dict[str, Any] | None, output: os.PathLike | str) -> bool:
    """Whether a record says its input was written to ``output``, and that file exists."""
    return (entry is not None and entry.get("status") == "ok"
            and _same_path(entry.get("output"), output) and Path(output).exists())  # fmt: skip


def is_ours(entry: dict[str, Any] | None, output: os.PathLike | str) -> bool:
    """Whether an existing ``output`` is a file this tool was writing when a run stopped
    (the latest record is ``started`` for this output, which did not exist before), so a
    resumed run may replace it without ``overwrite``."""
    return (entry is not None and entry.get("status") == "started"
            and entry.get("existed") is False and _same_path(entry.get("output"), output))
