"""Run a pipeline over many image files: decode, compute and encode overlapped on a thread
pool, every output written atomically, every input accounted for in the manifest.

Execution. ``workers`` threads each take one input at a time through read → pipeline →
write. Pillow's and tifffile's codecs and npaccel's Numba kernels release the GIL, so the
threads run in parallel; each worker's kernels use ``usable_cpus() // workers`` threads
(Numba's thread count is per calling thread), so IO threads plus kernel threads never
exceed the CPUs this process may use. At most ``max_inflight`` inputs are decoded and not
yet written at any time, which bounds memory.

Nothing is lost. Outputs are published by rename from a temp file in the target directory
(:func:`npaccel.image._io.write_image`); inputs are only ever opened for reading; a failed
input is recorded with its reason and the run goes on; Ctrl-C stops taking new inputs,
lets the ones in flight finish or clean up, and records what happened. With ``resume`` the
inputs the manifest records as done (and whose outputs exist) are skipped, and temp files
left by a killed run are removed first.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from npaccel import threads
from npaccel.cuda._device import thread_stream
from npaccel.image._cluster import ClusterPool, Job, ThreadPool
from npaccel.image._io import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    read_image,
    resolve_png_encoder,
    write_image,
)
from npaccel.image._manifest import MANIFEST_NAME, Manifest, is_done, is_ours, latest_records
from npaccel.image._paths import InputFile, discover_inputs, plan_outputs

__all__ = ["RunSummary", "run"]

BACKENDS = ("cpu", "cuda", "numpy")


@dataclass
class RunSummary:
    """What a run did; ``exit_code`` is the CLI's: 0 all ok, 1 some input failed, 130 if
    interrupted."""

    total: int = 0
    ok: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    bytes_read: int = 0
    bytes_written: int = 0
    interrupted: bool = False
    dry_run: bool = False
    manifest: str | None = None
    failures: list[dict[str, str]] = field(default_factory=list)
    plan: list[dict[str, str]] = field(default_factory=list)
    #: seconds spent in each stage ('read', 'compute', 'write'), summed over the images
    #: written: with ``seconds`` and the worker count, where the time went
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: images processed at once (threads here, or the cluster's worker threads)
    workers: int = 0

    @property
    def images_per_second(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if self.failed else 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["images_per_second"] = self.images_per_second
        data["exit_code"] = self.exit_code
        return data


def _to_stack(image: np.ndarray, pages: int) -> np.ndarray:
    """(P, H, W, C) view of a decoded image (see :func:`npaccel.image._io.read_image`)."""
    if pages > 1:
        return image[..., None] if image.ndim == 3 else image
    return image[None, :, :, None] if image.ndim == 2 else image[None]


def _from_stack(stack: np.ndarray) -> tuple[np.ndarray, bool]:
    """(array to write, whether it is a page stack) for a (P, H, W, C) result."""
    out = stack[..., 0] if stack.shape[-1] == 1 else stack
    if stack.shape[0] == 1:
        return out[0], False
    return out, True


class _Progress:
    """A rich progress bar (images/s, MB/s, ETA, failures), or nothing."""

    def __init__(self, total: int, enabled: bool) -> None:
        self._bar = None
        if not enabled or total == 0:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]images"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("[red]{task.fields[failed]} failed"),
            TimeRemainingColumn(),
            transient=False,
        )
        self._task = self._bar.add_task("images", total=total, rate="", failed=0)
        self._start = time.perf_counter()
        self._bar.start()

    def update(self, summary: RunSummary) -> None:
        if self._bar is None:
            return
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        done = summary.ok + summary.failed
        rate = f"{done / elapsed:.1f} img/s {summary.bytes_read / elapsed / 1e6:.1f} MB/s"
        self._bar.update(self._task, completed=done + summary.skipped, rate=rate,
                         failed=summary.failed)  # fmt: skip

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _compute_lock() -> threading.Lock | None:
    """A lock serialising kernel calls when Numba runs on its 'workqueue' layer, which does
    not allow parallel kernels to be launched from several threads at once."""
    import numba

    from npaccel import filters

    filters.uniform_filter(np.zeros((4, 4), np.float32), 3)  # a parallel kernel: starts the pool
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run: nothing to protect
        return None
    return threading.Lock() if layer == "workqueue" else None


def run(
    inputs: Sequence[str | os.PathLike],
    output_dir: str | os.PathLike,
    pipeline: Any,
    *,
    format: str | None = None,
    overwrite: bool = False,
    resume: bool = False,
    backend: str | None = None,
    workers: int | None = None,
    max_inflight: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    quality: int | None = None,
    compress_level: int | None = None,
    png_encoder: str = "auto",
    dask: str | None = None,
    manifest: str | os.PathLike | None = None,
    dry_run: bool = False,
    progress: bool = False,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> RunSummary:
    """Apply ``pipeline`` to every image of ``inputs`` and write the results under
    ``output_dir``, mirroring the inputs' paths relative to their roots.

    Parameters
    ----------
    inputs : sequence of str or path
        Directories (walked recursively), glob patterns, ``@list.txt`` files or image files.
    output_dir : str or path
        Created if missing. Outputs can never land outside it.
    pipeline : Pipeline or str
        A :class:`npaccel.image.Pipeline`, or its text form (parsed and validated first).
    format : str, optional
        Output format for every image ({'png', 'jpeg', 'tiff', 'bmp', 'webp'}); default: the
        input's own.
    overwrite, resume : bool
        Replace existing outputs; skip inputs the manifest records as done.
    backend : {'cpu', 'cuda', 'numpy'}, optional
        Engine for the filter steps (and grayscale). Default: 'cpu'. 'cuda' moves each
        image to the GPU once per run of consecutive filter steps, on a CUDA stream of its
        worker thread, so one image's copies overlap another's kernels.
    workers : int, optional
        Images processed at once (threads). Default: the usable CPUs.
    max_inflight : int, optional
        Images decoded and not yet written, at most. Default: 2 × workers.
    max_pixels : int or None
        Refuse inputs with more pixels (decompression bombs); None: no limit.
    quality, compress_level : int, optional
        JPEG/WebP quality 1–100; PNG/TIFF deflate level 0–9.
    png_encoder : {'auto', 'pillow', 'opencv'}
        Who writes PNG outputs (same pixels; OpenCV 2–5× faster). 'auto': OpenCV when
        installed (the `opencv` extra), else Pillow.
    dask : str, optional
        Process the images on a Dask cluster instead of threads here: 'local' starts a
        LocalCluster (``workers`` single-threaded worker processes), else the scheduler's
        address (``tcp://host:8786``), which must answer within 10 s. Workers read and
        write the paths themselves: they must see the same filesystem. ``workers`` then
        defaults to the cluster's worker threads.
    manifest : str or path, optional
        The JSON-lines manifest. Default: ``output_dir/.npaccel-manifest.jsonl``.
    dry_run : bool
        Only plan: return the (input, output) pairs in ``summary.plan``; nothing is read.
    progress : bool
        Show a progress bar on the terminal.
    on_result : callable, optional
        Called with each manifest record as it is written.

    Returns
    -------
    RunSummary
    """
    from npaccel.image._pipeline import Pipeline

    if isinstance(pipeline, str):
        pipeline = Pipeline.parse(pipeline)
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"`backend` must be one of {set(BACKENDS)}; got {backend!r}")
    png_encoder = resolve_png_encoder(png_encoder)
    cpus = threads.usable_cpus()
    workers_given = None if workers is None else _positive("workers", workers)
    inflight_given = None if max_inflight is None else _positive("max_inflight", max_inflight)
    workers = cpus if workers_given is None else workers_given
    max_inflight = 2 * workers if inflight_given is None else inflight_given
    if dask is not None and (not isinstance(dask, str) or not dask):
        raise ValueError(f"`dask` must be 'local' or a scheduler address such as "
                         f"'tcp://host:8786'; got {dask!r}")  # fmt: skip
    out_root = Path(os.path.abspath(output_dir))  # recorded absolute, as the inputs are
    manifest_path = Path(manifest) if manifest is not None else out_root / MANIFEST_NAME

    summary = RunSummary(dry_run=dry_run, manifest=str(manifest_path))
    items = discover_inputs(inputs, exclude=[out_root])
    planned, rejected = plan_outputs(items, out_root, format=format)
    summary.total = len(items)
    if dry_run:
        summary.plan = [{"input": str(i.path), "output": str(o)} for i, o in planned]
        summary.failures = [{"input": str(i.path), "reason": "path", "error": why}
                            for i, why in rejected]  # fmt: skip
        summary.failed = len(rejected)
        return summary

    _make_dir(out_root, "output_dir")
    _make_dir(manifest_path.absolute().parent, "manifest")
    if resume:
        from npaccel.image._io import cleanup_temp_files

        cleanup_temp_files(out_root)
        earlier = latest_records(manifest_path)
    else:
        earlier = {}
    header = {"pipeline": str(pipeline), "inputs": [str(s) for s in inputs],
              "output_dir": str(out_root), "format": format, "backend": backend or "cpu",
              "workers": workers, "resume": resume, "overwrite": overwrite,
              "png_encoder": png_encoder}  # fmt: skip
    job = Job(pipeline, backend, max_pixels, quality, compress_level, png_encoder)
    pool: ThreadPool | ClusterPool = (ThreadPool(workers, cpus) if dask is None
                                      else ClusterPool(dask, workers_given))  # fmt: skip
    if dask is not None:
        max_inflight = 2 * pool.slots if inflight_given is None else max_inflight
        header.update(dask=dask, workers=pool.slots, where=pool.where)
    summary.workers = pool.slots
    start = time.perf_counter()
    bar = _Progress(len(items), progress)
    with Manifest(manifest_path, header) as log:

        def finish(entry: dict[str, Any]) -> None:
            log.record(entry)
            if entry["status"] == "ok":
                summary.ok += 1
                for stage, took in entry["timings"].items():
                    summary.stage_seconds[stage] = summary.stage_seconds.get(stage, 0.0) + took
                summary.bytes_read += entry["sizes"]["input_bytes"]
                summary.bytes_written += entry["sizes"]["output_bytes"]
            elif entry["status"] == "failed":
                summary.failed += 1
                summary.failures.append({k: entry[k] for k in ("input", "reason", "error")})
            else:
                summary.skipped += 1
            bar.update(summary)
            if on_result is not None:
                on_result(entry)

        for item, why in rejected:
            finish(_record(item, None, "failed", "path", why))
        todo = []
        for item, target in planned:
            entry = earlier.get(str(item.path))
            if is_done(entry, target):
                finish(_record(item, target, "skipped", "done", "recorded done by an earlier run"))
            else:  # the output a killed run published before recording it is ours to replace
                todo.append((item, target, overwrite or is_ours(entry, target)))

        jobs: dict[cf.Future, tuple[InputFile, Path]] = {}

        def outcome(future: cf.Future) -> dict[str, Any]:
            item, target = jobs.pop(future)
            try:
                return future.result()
            except Exception as exc:  # the job itself records every error: this is the pool's
                return _record(item, target, "failed", "cluster",
                               f"{item.path}: {type(exc).__name__}: {exc}")  # fmt: skip

        pending: set[cf.Future] = set()
        drained = False
        try:
            for item, target, replace in todo:
                while len(pending) >= max_inflight:
                    finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
                    for future in finished:
                        finish(outcome(future))
                # existed: a file this run may not replace is there (see _manifest)
                existed = not replace and os.path.lexists(target)
                log.record(_record(item, target, "started", None, None, existed=existed))
                # a cluster re-runs the job of a worker that died, maybe after it published
                # the output: a file that was not there before is then the earlier attempt's
                may_replace = replace or (isinstance(pool, ClusterPool) and not existed)
                future = pool.submit(job, item, target, may_replace)
                jobs[future] = (item, target)
                pending.add(future)
            for future in cf.as_completed(pending):
                finish(outcome(future))
            pending = set()
            drained = True  # every job has an outcome: none of this run's writes is in flight
        except KeyboardInterrupt:
            summary.interrupted = True
            for future in pending:
                future.cancel()
            for future in pending:  # let the images in flight finish (or clean up)
                if not future.cancelled():
                    finish(outcome(future))
        finally:
            pool.close()
            bar.close()
    if isinstance(pool, ClusterPool) and drained:
        # a worker killed mid-write left its temp file; the cluster re-ran its job elsewhere
        from npaccel.image._io import cleanup_temp_files

        cleanup_temp_files(out_root)
    summary.seconds = time.perf_counter() - start
    return summary


def _make_dir(path: Path, name: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ValueError(f"`{name}`: {str(path)!r} (or a folder above it) exists and is not "
                         "a directory") from None  # fmt: skip
    except OSError as exc:
        raise ValueError(f"`{name}`: cannot create directory {str(path)!r}: "
                         f"{exc.strerror or exc}") from None  # fmt: skip


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer; got {value!r}")
    return int(value)


def _record(item: InputFile, target: Path | None, status: str, reason: str | None,
            error: str | None, **extra: Any) -> dict[str, Any]:  # fmt: skip
    return {"input": str(item.path), "output": str(target) if target else None,
            "status": status, "reason": reason, "error": error, **extra}  # fmt: skip


def _process(item: InputFile, target: Path, pipeline: Any, *, backend: str | None,
             lock: threading.Lock | None, overwrite: bool, max_pixels: int | None,
             quality: int | None, compress_level: int | None,
             png_encoder: str) -> dict[str, Any]:  # fmt: skip
    """One input through read → pipeline → write; every failure becomes a record."""
    from npaccel.image._ops import StepError

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        image, info = read_image(item.path, max_pixels=max_pixels, copy=False)
        timings["read"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        stack = _to_stack(image, info.pages)
        if backend == "cuda":
            with thread_stream():  # this worker's stream: its copies overlap others' kernels
                result = pipeline.apply(stack, backend=backend)
        elif lock is not None:
            with lock:
                result = pipeline.apply(stack, backend=backend)
        else:
            result = pipeline.apply(stack, backend=backend)
        out, pages = _from_stack(result)
        timings["compute"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        target.parent.mkdir(parents=True, exist_ok=True)
        written = write_image(target, out, overwrite=overwrite, quality=quality,
                              compress_level=compress_level, pages=pages,
                              png_encoder=png_encoder)  # fmt: skip
        timings["write"] = time.perf_counter() - t2
    except ImageError as exc:
        return _record(item, target, "failed", exc.reason, str(exc), timings=timings)
    except StepError as exc:
        return _record(item, target, "failed", "step", str(exc), timings=timings)
    except (OSError, ValueError, TypeError, MemoryError) as exc:
        return _record(item, target, "failed", type(exc).__name__, f"{item.path}: {exc}",
                       timings=timings)  # fmt: skip
    sizes = {"input_bytes": info.file_bytes, "output_bytes": written,
             "input_shape": list(image.shape), "output_shape": list(out.shape),
             "input_dtype": str(image.dtype), "output_dtype": str(out.dtype)}  # fmt: skip
    return _record(item, target, "ok", None, None, timings=timings, sizes=sizes)
