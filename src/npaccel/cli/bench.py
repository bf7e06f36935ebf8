"""``npaccel bench`` and ``npaccel bench compare``."""

from __future__ import annotations

import click

from npaccel.cli._common import fail, write_json


def _split(kind):
    def callback(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]):
        items = [v.strip() for value in values for v in value.split(",")]
        if any(not v for v in items):
            raise click.BadParameter(f"empty item in {','.join(values)!r}")
        if kind is int:
            try:
                numbers = [int(v) for v in items]
            except ValueError:
                raise click.BadParameter(f"must be integers; got {','.join(values)!r}") from None
            if any(n < 1 for n in numbers):
                raise click.BadParameter(f"must be >= 1; got {','.join(values)!r}")
            return numbers
        return items

    return callback


def _console(**kwargs):
    """A rich console at least 120 columns wide when not on a terminal (files, pipes)."""
    from rich.console import Console

    console = Console(**kwargs)
    if not console.is_terminal:
        console = Console(width=max(console.width, 120), **kwargs)
    return console


def _table(console, title, header, rows):
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", header_style="bold")
    for i, name in enumerate(header):
        table.add_column(name, justify="right" if 2 <= i <= 7 else "left",
                         overflow="fold")  # fmt: skip
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


@click.group(invoke_without_command=True)
@click.option(
    "--quick",
    "profile",
    flag_value="quick",
    default=True,
    help="Small sizes, representative thread scaling (default; ~1 minute).",
)
@click.option(
    "--full",
    "profile",
    flag_value="full",
    help="The sizes the docs quote, every case at every thread count.",
)
@click.option(
    "--only",
    multiple=True,
    callback=_split(str),
    metavar="PATTERN[,…]",
    help="Run these only: family (stream), kernel (filters.box3) or shell pattern.",
)
@click.option(
    "--skip",
    multiple=True,
    callback=_split(str),
    metavar="PATTERN[,…]",
    help="Leave these out (same patterns as --only).",
)
@click.option(
    "--backend",
    "backends",
    multiple=True,
    callback=_split(str),
    metavar="NAME[,…]",
    help="Only these backends: numpy, numba, npaccel, scipy, cv2, dask; the dask.* rows' "
         "threads, sync, kernel, loop; on a GPU also cupy, npaccel-cuda, cupyx, pageable, "
         "pinned.",
)
@click.option(
    "--sizes",
    multiple=True,
    callback=_split(int),
    metavar="N[,…]",
    help="Edges of the square problems (matrices, FFTs, images).",
)
@click.option(
    "--threads",
    multiple=True,
    callback=_split(int),
    metavar="N[,…]",
    help="Thread counts (the largest is the main one); default 1 … usable CPUs.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    metavar="PATH",
    help="Write the full result (schema npaccel.bench/1) to PATH; '-' prints it.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    metavar="PATH.png",
    help="Write the roofline and thread-scaling charts (needs npaccel[plot]).",
)
@click.option(
    "--price-per-hour",
    type=float,
    metavar="USD",
    help="Instance price: adds $ per TFLOP, per TB moved, per unit of work.",
)
@click.option("--instance", metavar="NAME", help="Take the price from the instance table.")
@click.option(
    "--prices",
    type=click.Path(exists=True, dir_okay=False),
    metavar="FILE",
    help="Instance table (JSON {name: usd_per_hour}) instead of the packaged one.",
)
@click.option(
    "--scratch",
    type=click.Path(exists=True, file_okay=False),
    metavar="DIR",
    help="Where the memmap cases write their file (default: the temp dir).",
)
@click.option("--no-progress", is_flag=True, help="No progress display.")
@click.pass_context
def bench(ctx: click.Context, profile, only, skip, backends, sizes, threads, json_path,
          plot_path, price_per_hour, instance, prices, scratch, no_progress) -> None:  # fmt: skip
    """Time core kernels across backends and threads, against this machine's measured roof.

    Every figure is a median of calibrated samples, checked against a reference first,
    and shown as a fraction of the roofline (STREAM bandwidth, GEMM GFLOP/s) measured in
    the same run. Compare two runs with `npaccel bench compare A.json B.json`.
    """
    if ctx.invoked_subcommand is not None:
        return

    from npaccel import bench as B
    from npaccel.bench._report import peak_lines, result_rows, scaling_rows

    console = _console(stderr=json_path == "-")
    try:
        if plot_path:
            from npaccel.bench._plot import _matplotlib

            _matplotlib()  # fail now, not after the run
        if price_per_hour is not None or instance is not None:
            from npaccel.bench._cost import resolve_price

            resolve_price(price_per_hour, instance, prices)
    except (ImportError, ValueError) as exc:
        fail(str(exc))

    def run(progress):
        return B.run(profile, only=only, skip=skip, backends=backends, sizes=sizes,
                     threads=threads, scratch=scratch, price_per_hour=price_per_hour,
                     instance=instance, prices=prices, progress=progress)  # fmt: skip

    if no_progress:
        doc = run(None)
    else:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=_console(stderr=True),
                      transient=True) as bar:  # fmt: skip
            task = bar.add_task("collecting machine facts", total=None)

            def progress(name, i, n):
                bar.update(task, description=name, completed=i, total=n)

            doc = run(progress)

    if json_path == "-":
        write_json(doc)
    else:
        header, rows, notes = result_rows(doc, price=doc["price"] is not None)
        _table(console, f"npaccel bench --{doc['profile']} ({doc['elapsed']:.0f} s)", header, rows)
        for line in notes:
            console.print(line, markup=False, highlight=False)
        if doc["scaling"]:
            _table(console, "thread scaling", *scaling_rows(doc))
        for line in peak_lines(doc):
            console.print(line, markup=False, highlight=False)
        if json_path:
            B.dump(doc, json_path)
            console.print(f"results written to {json_path}")
    if plot_path:
        from npaccel.bench._plot import plot

        plot(doc, plot_path)
        console.print(f"charts written to {plot_path}")
    bad = [r for r in doc["results"] if r["status"] in {"wrong", "error"}]
    if bad:
        fail("; ".join(f"{r['id']}: {r['status']}: {r['error']}" for r in bad))


@bench.command()
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option(
    "--threshold",
    type=float,
    default=0.10,
    show_default=True,
    help="Smallest change reported (fraction: 0.1 is 10%).",
)
@click.option(
    "--alpha",
    type=float,
    default=0.05,
    show_default=True,
    help="Significance level of the Mann-Whitney U test on the samples.",
)
@click.option("--fail-on-regression", is_flag=True, help="Exit 1 when any regression is flagged.")
@click.option("--all", "all_rows", is_flag=True, help="Show unchanged cases too.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(a, b, threshold, alpha, fail_on_regression, all_rows, as_json) -> None:
    """Ratios B/A of median times; flags changes beyond --threshold that are significant."""
    from dataclasses import asdict

    from npaccel import bench as B
    from npaccel.bench._report import compare_rows

    try:
        doc_a, doc_b = B.load(a), B.load(b)
        changes = B.compare(doc_a, doc_b, threshold=threshold, alpha=alpha)
    except ValueError as exc:
        fail(str(exc))
    differences = B.fact_differences(doc_a, doc_b)
    regressions = [c for c in changes if c.verdict == "regression"]
    if as_json:
        write_json({"a": a, "b": b, "threshold": threshold, "alpha": alpha,
                    "fact_differences": differences,
                    "changes": [asdict(c) for c in changes]})  # fmt: skip
    else:
        console = _console()
        for line in differences:
            console.print(f"warning: the runs differ: {line}", markup=False)
        header, rows = compare_rows(changes, all_rows=all_rows)
        if rows:
            _table(console, f"{b} vs {a}", header, rows)
        counts = {
            v: sum(c.verdict == v for c in changes) for v in ("regression", "improvement", "same")
        }
        console.print(
            f"{counts['regression']} regressions, {counts['improvement']} improvements, "
            f"{counts['same']} unchanged (threshold {threshold:.0%}, alpha {alpha:g})"
        )
        held = [c for c in changes if c.verdict == "same"
                and max(c.ratio, 1 / c.ratio) >= 1 + threshold]  # fmt: skip
        if held:
            console.print(
                f"{len(held)} unchanged beyond the threshold, but not significant or within "
                "the drift the runs saw of themselves (see --all: p, drift); a quieter machine "
                "or more samples (--full) resolves smaller changes",
                markup=False,
            )
    if fail_on_regression and regressions:
        raise SystemExit(1)
