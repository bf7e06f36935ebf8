"""Reading result documents back: schema and version checks."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["SCHEMA", "load", "validate"]

SCHEMA = "npaccel.bench/1"
_REQUIRED = ("schema", "created", "profile", "method", "threads", "facts", "versions", "peaks",
             "results", "scaling")  # fmt: skip
_RESULT_REQUIRED = ("id", "kernel", "backend", "params", "threads", "status", "timing")


def validate(doc: object, where: str = "document") -> dict:
    """Return ``doc`` if it is a bench result of this schema version; else ValueError."""
    if not isinstance(doc, dict) or "schema" not in doc:
        raise ValueError(f"{where} is not an npaccel bench result (no 'schema' key)")
    schema = doc["schema"]
    if not isinstance(schema, str) or not schema.startswith("npaccel.bench/"):
        raise ValueError(f"{where} has schema {schema!r}; expected {SCHEMA!r}")
    if schema != SCHEMA:
        raise ValueError(f"{where} is {schema}; this npaccel reads {SCHEMA} only "
                         "(re-run the benchmark with this version)")  # fmt: skip
    missing = [k for k in _REQUIRED if k not in doc]
    if missing:
        raise ValueError(f"{where} lacks {', '.join(missing)}")
    for i, rec in enumerate(doc["results"]):
        lacking = [k for k in _RESULT_REQUIRED if k not in rec]
        if lacking:
            raise ValueError(f"{where}: result {i} lacks {', '.join(lacking)}")
        timing = rec["timing"]
        if rec["status"] == "ok" and not (isinstance(timing, dict) and timing.get("samples")):
            raise ValueError(f"{where}: result {rec['id']!r} is ok but has no samples")
    return doc


def load(path: str | Path) -> dict:
    """Read and validate a result file written by ``npaccel bench --json``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"no such result file: {str(path)!r}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is not JSON: {exc}") from None
    return validate(doc, repr(str(path)))


def dump(doc: dict, path: str | Path) -> None:
    """Write ``doc`` atomically (temp file in the same directory, then rename)."""
    import os
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=1, allow_nan=False, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
