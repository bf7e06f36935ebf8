"""``npaccel image``: run a pipeline over folders of images; list the ops."""

from __future__ import annotations

import sys

import click

from npaccel import threads
from npaccel.cli._common import fail, write_json

__all__ = ["image"]

USAGE = 2  # exit code for bad usage: a bad pipeline or option, before any image is read


@click.group()
def image() -> None:
    """Batch image processing: a pipeline of ops over folders of images."""


@image.command("ops")
@click.option("--json", "as_json", is_flag=True, help="Print the ops as JSON.")
def ops_command(as_json: bool) -> None:
    """List the pipeline ops with their parameters and defaults."""
    from npaccel.image._ops import describe_ops

    ops = describe_ops()
    if as_json:
        write_json(ops)
        return
    for op in ops:
        params = " ".join(_param_text(p) for p in op["params"])
        click.echo(f"{op['name']:<28} {op['summary']}")
        if params:
            click.echo(f"{'':<28}   {params}")


def _param_text(param: dict) -> str:
    text = param["name"]
    if param.get("required"):
        text = f"<{text}>"
    elif "default" in param:
        text = f"{text}={param['default']}"
    if param.get("allowed"):
        text += "{" + ",".join(str(a) for a in param["allowed"]) + "}"
    return text


@image.command("run")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", "output_dir", required=True, help="Output directory.")
@click.option("-p", "--pipeline", "text", help='Pipeline text, e.g. "grayscale | gaussian 2".')
@click.option("--pipeline-file", type=click.Path(dir_okay=False), help="Pipeline as YAML/JSON.")
@click.option("--format", "fmt", help="Output format {png,jpeg,tiff,bmp,webp} (default: input's).")
@click.option("--backend", type=click.Choice(["cpu", "cuda", "numpy"]), default="cpu",
              show_default=True)  # fmt: skip
@click.option("--workers", type=click.IntRange(min=1), help="Images at once (default: CPUs).")
@click.option("--max-inflight", type=click.IntRange(min=1), help="Images in memory at most.")
@click.option("--max-pixels", type=click.IntRange(min=0), default=None,
              help="Refuse larger inputs (decompression bombs); 0: no limit.")  # fmt: skip
@click.option("--quality", type=click.IntRange(1, 100), help="JPEG/WebP quality.")
@click.option("--compress-level", type=click.IntRange(0, 9), help="PNG/TIFF deflate level.")
@click.option("--dask", "dask", is_flag=False, flag_value="local", default=None,
              metavar="[ADDRESS]", help="Run on a Dask cluster: a scheduler address "
              "(tcp://host:8786), or a local cluster when no address is given.")
@click.option("--png-encoder", type=click.Choice(["auto", "pillow", "opencv"]), default="auto",
              show_default=True, help="PNG writer (same pixels); auto: OpenCV if installed.")
@click.option("--manifest", type=click.Path(dir_okay=False), help="Manifest path (JSON lines).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
@click.option("--resume", is_flag=True, help="Skip inputs the manifest records as done.")
@click.option("--dry-run", is_flag=True, help="Show the plan; read and write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def run_command(inputs, output_dir, text, pipeline_file, fmt, backend, workers, max_inflight,
                max_pixels, quality, compress_level, dask, png_encoder, manifest, overwrite,
                resume, dry_run, as_json, no_progress) -> None:  # fmt: skip
    """Apply a pipeline to every image of INPUTS (folders, globs, @list files, files).

    Exit status: 0 all ok, 1 some inputs failed (see the manifest), 2 usage error,
    130 interrupted.
    """
    from npaccel.image import Pipeline, PipelineError, run
    from npaccel.image._io import DEFAULT_MAX_PIXELS

    if (text is None) == (pipeline_file is None):
        fail("give exactly one of --pipeline TEXT and --pipeline-file PATH", USAGE)
    try:
        pipeline = Pipeline.parse(text) if text is not None else Pipeline.from_file(pipeline_file)
    except (PipelineError, OSError) as exc:
        fail(str(exc), USAGE)
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else (max_pixels or None)
    try:
        summary = run(inputs, output_dir, pipeline, format=fmt, overwrite=overwrite,
                      resume=resume, backend=backend, workers=workers,
                      max_inflight=max_inflight, max_pixels=limit, quality=quality,
                      compress_level=compress_level, png_encoder=png_encoder, dask=dask,
                      manifest=manifest, dry_run=dry_run,
                      progress=not (no_progress or as_json) and sys.stderr.isatty())  # fmt: skip
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc), USAGE)
    if as_json:
        write_json(summary.to_dict())
    else:
        headline, *rest = format_summary(summary)
        click.echo(headline)
        if summary.stage_seconds:
            print_stage_table(summary, summary.workers or threads.usable_cpus())
        for line in rest:
            click.echo(line)
    sys.exit(summary.exit_code)


def print_stage_table(summary, workers: int) -> None:
    """Where the time went: each stage's total and per-image time, and its share of the
    workers' time (the rest: waiting on other workers' IO or kernels, and bookkeeping)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="time per stage (images written)", title_justify="left",
                  header_style="bold")  # fmt: skip
    for name in ("stage", "total s", "per image ms", "share of worker time"):
        table.add_column(name, justify="left" if name == "stage" else "right")
    busy = max(summary.seconds * workers, 1e-9)
    for stage, took in summary.stage_seconds.items():
        table.add_row(stage, f"{took:.2f}", f"{1e3 * took / max(summary.ok, 1):.1f}",
                      f"{took / busy:.0%}")  # fmt: skip
    Console(width=100).print(table)


def format_summary(summary) -> list[str]:
    """Lines of the human summary: the plan for a dry run, else counts, rates and failures."""
    if summary.dry_run:
        lines = [f"{p['input']} -> {p['output']}" for p in summary.plan]
        lines += [f"REJECTED {f['input']}: {f['error']}" for f in summary.failures]
        lines.append(f"{len(summary.plan)} to write, {summary.failed} rejected (dry run)")
        return lines
    mb = summary.bytes_read / 1e6
    lines = [
        f"{summary.ok} ok, {summary.failed} failed, {summary.skipped} skipped of "
        f"{summary.total} in {summary.seconds:.2f} s "
        f"({summary.images_per_second:.1f} images/s, {mb / max(summary.seconds, 1e-9):.1f} MB/s)",
    ]
    for failure in summary.failures:
        lines.append(f"FAILED {failure['input']} [{failure['reason']}]: {failure['error']}")
    if summary.interrupted:
        lines.append("interrupted: run again with --resume to finish")
    lines.append(f"manifest: {summary.manifest}")
    return lines
