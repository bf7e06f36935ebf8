"""What every command shares: one-line errors and JSON output."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click

__all__ = ["fail", "write_json"]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``ERROR: message`` on stderr and exit with ``code``."""
    click.echo(f"ERROR: {message}", err=True)
    sys.exit(code)


def write_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))
