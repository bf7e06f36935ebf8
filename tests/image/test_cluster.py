"""npaccel image run on Dask clusters (real LocalClusters on loopback)."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from npaccel.image import Pipeline, _cluster, read_image, run, write_image
from npaccel.image._manifest import MANIFEST_NAME, read_records

distributed = pytest.importorskip("distributed")  # the `dask` extra; CI installs it

PIPELINE = "grayscale | gaussian sigma=1 | sobel"


def corpus(root, count, shape=(24, 32, 3)):
    rng = np.random.default_rng(0)
    pixels = {}
    for i in range(count):
        rel = f"sub{i % 3}/img{i:03d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        pixels[rel] = rng.integers(0, 256, shape, dtype=np.uint8)
        write_image(root / rel, pixels[rel])
    return pixels


def check_outputs(src, out, pixels):
    pipeline = Pipeline.parse(PIPELINE)
    for rel, image in pixels.items():
        got, _ = read_image(out / rel)
        np.testing.assert_array_equal(got, pipeline(image))  # gray: (H, W)
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == sorted([*pixels, MANIFEST_NAME])  # no temp files, nothing else
    done = [r for r in read_records(out / MANIFEST_NAME) if r["status"] == "ok"]
    assert sorted(r["input"] for r in done) == sorted(str(src / rel) for rel in pixels)


@pytest.mark.slow
def test_a_local_cluster_writes_every_output_exactly_once(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    pixels = corpus(src, 12)
    summary = run([src], out, PIPELINE, dask="local", workers=2)
    assert (summary.ok, summary.failed, summary.exit_code, summary.workers) == (12, 0, 0, 2)
    check_outputs(src, out, pixels)
    header = (out / MANIFEST_NAME).read_text().splitlines()[0]
    assert '"dask": "local"' in header
    again = run([src], out, PIPELINE, dask="local", workers=2, resume=True)
    assert (again.ok, again.skipped) == (0, 12)


@pytest.mark.slow
def test_a_scheduler_address_with_threaded_workers(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    pixels = corpus(src, 8)
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    # what a worker killed mid-write leaves: removed once every job has its outcome
    (out / "sub0").mkdir(parents=True)
    (out / "sub0" / ".npaccel-tmp-orphan.part").write_bytes(b"half an image")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:  # fmt: skip
        summary = run([src], out, PIPELINE, dask=cluster.scheduler_address)
    assert (summary.ok, summary.failed, summary.exit_code, summary.workers) == (8, 1, 1, 2)
    assert summary.failures[0]["reason"] == "corrupt"
    (src / "bad.png").unlink()
    check_outputs(src, out, pixels)


@pytest.mark.slow
def test_a_worker_killed_mid_run_still_gives_every_output_once(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    pixels = corpus(src, 40, shape=(200, 260, 3))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:  # fmt: skip
        pids = list(client.run(os.getpid).values())
        killed = []

        def kill_one(entry):
            if not killed:  # after the first image, while the others are in flight
                os.kill(pids[0], signal.SIGKILL)
                killed.append(time.monotonic())

        summary = run([src], out, PIPELINE, dask=cluster.scheduler_address,
                      on_result=kill_one)  # fmt: skip
    assert killed
    assert (summary.ok, summary.failed) == (40, 0), summary.failures
    check_outputs(src, out, pixels)


def test_a_scheduler_that_does_not_answer_is_a_clear_error_in_bounded_time(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setattr(_cluster, "CONNECT_TIMEOUT", 1.0)
    corpus(tmp_path / "in", 1)
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"no Dask scheduler answered at 'tcp://127\.0\.0\.1:9' "
                       r"within 1 s .*`dask scheduler`"):  # fmt: skip
        run([tmp_path / "in"], tmp_path / "out", PIPELINE, dask="tcp://127.0.0.1:9")
    assert time.monotonic() - start < 8
    assert not (tmp_path / "out" / "sub0").exists()  # nothing written


@pytest.mark.parametrize("bad", ["", 7])
def test_dask_argument_is_checked(tmp_path, bad):
    with pytest.raises(ValueError, match=r"`dask` must be 'local' or a scheduler address"):
        run([tmp_path], tmp_path / "out", PIPELINE, dask=bad)
