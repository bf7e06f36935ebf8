"""npaccel.image.run and `npaccel image run` end to end, on small generated image files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from npaccel import filters, threads
from npaccel.cli import cli
from npaccel.image import Pipeline, read_image, run, write_image
from npaccel.image._manifest import MANIFEST_NAME, read_records

PIPELINE = "gaussian sigma=1 | median size=3"


def expected(image: np.ndarray) -> np.ndarray:
    """The pipeline called directly on one decoded image."""
    axes = (0, 1)
    return filters.median_filter(filters.gaussian_filter(image, 1, axes=axes), 3, axes=axes)


def make_corpus(root: Path, n: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    images = {}
    for i in range(n):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        rgb = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
        write_image(sub / f"img{i}.png", rgb)
        images[f"{sub.name}/img{i}.png"] = rgb
    gray16 = rng.integers(0, 65536, (9, 11), dtype=np.uint16)
    write_image(root / "deep16.tif", gray16)
    images["deep16.tif"] = gray16
    return images


def test_every_output_equals_the_ops_called_directly(tmp_path):
    images = make_corpus(tmp_path / "in")
    summary = run([tmp_path / "in"], tmp_path / "out", PIPELINE)
    assert (summary.ok, summary.failed, summary.exit_code) == (len(images), 0, 0)
    for rel, image in images.items():
        out, info = read_image(tmp_path / "out" / rel)
        assert info.dtype == str(image.dtype)  # bit depth preserved
        np.testing.assert_array_equal(out, expected(image))
    np.testing.assert_array_equal(Pipeline.parse(PIPELINE)(images["deep16.tif"]),
                                  expected(images["deep16.tif"]))  # fmt: skip


def test_bad_inputs_are_recorded_and_the_rest_succeed(tmp_path):
    src = tmp_path / "in"
    make_corpus(src, n=2)
    (src / "empty.png").write_bytes(b"")
    (src / "garbage.jpg").write_bytes(b"not an image at all" * 10)
    good = (src / "b" / "img0.png").read_bytes()
    (src / "truncated.png").write_bytes(good[: len(good) // 2])
    (src / "mislabeled.jpg").write_bytes(good)  # PNG content, .jpg name
    write_image(src / "big.png", np.zeros((40, 40), np.uint8))
    summary = run([src], tmp_path / "out", PIPELINE, max_pixels=1000)
    reasons = {Path(f["input"]).name: f["reason"] for f in summary.failures}
    assert reasons == {"empty.png": "empty", "garbage.jpg": "corrupt",
                       "truncated.png": "truncated", "mislabeled.jpg": "wrong-extension",
                       "big.png": "too-large"}  # fmt: skip
    assert summary.ok == 3
    assert summary.exit_code == 1
    records = read_records(tmp_path / "out" / MANIFEST_NAME)
    final = {Path(r["input"]).name: r for r in records if r["status"] != "started"}
    assert final["big.png"]["error"].count("1000") == 1
    assert all(r["timings"] for r in final.values() if r["status"] == "ok")
    assert not (tmp_path / "out" / "empty.png").exists()


def test_existing_outputs_are_kept_without_overwrite(tmp_path):
    make_corpus(tmp_path / "in", n=2)
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    (out / "a" / "img1.png").write_bytes(b"keep me")
    summary = run([tmp_path / "in"], out, PIPELINE)
    assert [f["reason"] for f in summary.failures] == ["exists"]
    assert (out / "a" / "img1.png").read_bytes() == b"keep me"
    summary = run([tmp_path / "in"], out, PIPELINE, overwrite=True)
    assert summary.failed == 0
    assert (out / "a" / "img1.png").read_bytes() != b"keep me"


def test_list_file_entries_cannot_escape_the_output_dir(tmp_path):
    make_corpus(tmp_path / "in", n=2)
    outside = tmp_path / "elsewhere.png"
    write_image(outside, np.zeros((5, 5), np.uint8))
    listing = tmp_path / "in" / "list.txt"
    listing.write_text("# inputs\nb/img0.png\n../elsewhere.png\n" + str(outside) + "\n")
    summary = run([f"@{listing}"], tmp_path / "out", PIPELINE)
    assert summary.ok == 1
    assert len(summary.failures) == 1
    assert summary.failures[0]["reason"] == "path"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere.png", "in", "out"]


def test_symlinked_output_subdir_pointing_outside_is_refused(tmp_path):
    make_corpus(tmp_path / "in", n=2)
    out = tmp_path / "out"
    out.mkdir()
    target = tmp_path / "victim"
    target.mkdir()
    (out / "a").symlink_to(target)
    summary = run([tmp_path / "in"], out, PIPELINE)
    assert [f["reason"] for f in summary.failures] == ["path"]
    assert list(target.iterdir()) == []


def test_dry_run_reads_and_writes_nothing(tmp_path):
    make_corpus(tmp_path / "in", n=2)
    summary = run([tmp_path / "in"], tmp_path / "out", PIPELINE, dry_run=True, format="tiff")
    assert len(summary.plan) == 3
    assert not (tmp_path / "out").exists()
    assert all(p["output"].endswith(".tif") for p in summary.plan)


def _cli(*args, **kwargs):
    return subprocess.run([sys.executable, "-m", "npaccel", "image", *args],
                          capture_output=True, text=True, timeout=120, **kwargs)  # fmt: skip


def test_cli_exit_codes_and_json(tmp_path):
    make_corpus(tmp_path / "in", n=2)
    bad = _cli("run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-p", "gausian 2")
    assert bad.returncode == 2
    assert "unknown op" in bad.stderr
    assert "gaussian" in bad.stderr
    assert not (tmp_path / "out").exists()  # validated before any image is read
    ok = _cli("run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-p", PIPELINE, "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["ok"] == 3
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG broken")
    some = _cli("run", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-p", PIPELINE,
                "--resume")  # fmt: skip
    assert some.returncode == 1
    assert "broken.png" in some.stdout
    assert "3 skipped" in some.stdout
    ops = _cli("ops", "--json")
    assert ops.returncode == 0
    assert "gaussian" in {op["name"] for op in json.loads(ops.stdout)}


def _start_slow_run(tmp_path, **popen):
    """40 inputs, one worker, started as a subprocess; returns once 3 outputs exist, with
    (input dir, output dir, CLI args, the process)."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    for i in range(40):
        write_image(src / f"img{i:02d}.png", rng.integers(0, 256, (96, 96, 3), dtype=np.uint8))
    out = tmp_path / "out"
    args = ["run", str(src), "-o", str(out), "-p", "gaussian sigma=3 | median size=5",
            "--workers", "1", "--no-progress"]  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "npaccel", "image", *args], **popen)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("img*.png"))) < 3:
        time.sleep(0.02)
    return src, out, args, proc


@pytest.mark.slow
def test_killed_run_resumes_with_every_output_exactly_once(tmp_path):
    """SIGKILL a run mid-way; --resume finishes it: every output once, no temp files."""
    src, out, args, proc = _start_slow_run(tmp_path, stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)  # fmt: skip
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = len(list(out.glob("img*.png")))
    assert 3 <= first < 40, "the run should have been killed mid-way"
    resumed = _cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    outputs = sorted(p.name for p in out.iterdir() if not p.name.startswith(".npaccel-manifest"))
    assert outputs == [f"img{i:02d}.png" for i in range(40)]  # no temp files, each once
    for i in (0, 39):
        image, _ = read_image(src / f"img{i:02d}.png")
        want = filters.median_filter(filters.gaussian_filter(image, 3, axes=(0, 1)), 5,
                                     axes=(0, 1))  # fmt: skip
        np.testing.assert_array_equal(read_image(out / f"img{i:02d}.png")[0], want)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path):
    """SIGINT mid-run: exit 130, no temp files, every finished input recorded; --resume
    then writes the rest."""
    _src, out, args, proc = _start_slow_run(tmp_path, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted" in stdout
    assert not list(out.rglob(".npaccel-tmp-*"))
    written = {p.name for p in out.glob("img*.png")}
    assert 3 <= len(written) < 40
    records = read_records(out / MANIFEST_NAME)
    assert {Path(r["output"]).name for r in records if r["status"] == "ok"} == written
    resumed = _cli(*args, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{len(written)} skipped" in resumed.stdout
    assert sorted(p.name for p in out.glob("img*.png")) == [f"img{i:02d}.png" for i in range(40)]


def test_the_summary_says_where_the_time_went(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write_image(src / f"{i}.png", np.full((8, 9, 3), 40 * i, np.uint8))
    result = CliRunner().invoke(cli, ["image", "run", str(src), "-o", str(tmp_path / "out"),
                                      "-p", "grayscale | sobel", "--no-progress",
                                      "--workers", "2"])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("3 ok, 0 failed, 0 skipped of 3 in ")
    assert "time per stage (images written)" in lines[1]
    for stage in ("read", "compute", "write"):
        assert any(line.split("│")[1:2] == [f" {stage:<7} "] for line in lines), stage
    assert lines[-1].startswith("manifest: ")

    again = CliRunner().invoke(cli, ["image", "run", str(src), "-o", str(tmp_path / "out2"),
                                     "-p", "grayscale | sobel", "--json"])  # fmt: skip
    data = json.loads(again.output)
    stages = data["stage_seconds"]
    assert set(stages) == {"read", "compute", "write"}
    assert all(t > 0 for t in stages.values())
    assert sum(stages.values()) <= data["seconds"] * threads.usable_cpus() * 1.05
