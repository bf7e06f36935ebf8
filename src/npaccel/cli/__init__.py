"""The ``npaccel`` command line: one module per command, formatting kept in the library."""

from __future__ import annotations

import sys

import click

from npaccel import __version__
from npaccel.cli._common import fail

__all__ = ["fail", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="npaccel")
def cli() -> None:
    """Make NumPy workloads fast on this machine, and prove it with measurements."""


def _register() -> None:
    from npaccel.cli.bench import bench
    from npaccel.cli.doctor import doctor
    from npaccel.cli.image import image

    cli.add_command(bench)
    cli.add_command(doctor)
    cli.add_command(image)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and ``python -m npaccel``."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="npaccel")
