"""``npaccel doctor``."""

from __future__ import annotations

import click

from npaccel.cli._common import fail, write_json


def _split_modules(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> list[str]:
    modules = [m.strip() for value in values for m in value.split(",")]
    if any(not m for m in modules):
        raise click.BadParameter(f"module names must be non-empty; got {','.join(values)!r}")
    return modules


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 when an error-level finding exists.")
@click.option(
    "--import",
    "imports",
    metavar="MOD[,MOD…]",
    multiple=True,
    callback=_split_modules,
    help="Import these modules first, to see the libraries your program loads "
    "(e.g. --import cv2,torch).",
)
def doctor(as_json: bool, strict: bool, imports: list[str]) -> None:
    """What this machine and NumPy build can do, and what is misconfigured.

    Each finding has an id, a severity (info, warn, error), the evidence and a fix.
    """
    from npaccel.doctor import diagnose

    try:
        report = diagnose(imports=imports)
    except ImportError as exc:
        fail(str(exc))
    if as_json:
        write_json(report)
    else:
        from rich.console import Console

        from npaccel.doctor._render import render

        console = Console()
        for renderable in render(report):
            console.print(renderable)
    if strict and any(f["severity"] == "error" for f in report["findings"]):
        raise SystemExit(1)
