"""`npaccel bench` and `npaccel bench compare`, run as users run them: in a subprocess.

Two real runs only (marked slow: the peak STREAM case alone moves arrays of 4x the
last-level cache); `compare` and the option errors run on small files and exit quickly."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from npaccel.bench import SCHEMA, dump, load, validate

from ._helpers import jittered_samples, make_doc, make_record

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def npaccel(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "npaccel", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a failing command prints on stderr."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("ERROR: ")
    return lines[0]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """One real quick run: the copy kernels (and the peak cases, always run), one thread."""
    where = tmp_path_factory.mktemp("bench-cli")
    done = npaccel("bench", "--only", "stream.copy", "--sizes", "64", "--threads", "1",
                   "--no-progress", "--json", "out.json", "--plot", "out.png",
                   cwd=where)  # fmt: skip
    return done, where


@pytest.fixture
def small_files(tmp_path):
    """Two result files with 5 tight samples per result; B has one case 1.5x slower."""
    ids = ("toy.a", "toy.b", "toy.c")
    a = make_doc([make_record(k, samples=jittered_samples(1e-3, seed=i))
                  for i, k in enumerate(ids)])  # fmt: skip
    b = copy.deepcopy(a)
    rec = b["results"][1]
    rec["timing"]["samples"] = [1.5 * s for s in rec["timing"]["samples"]]
    rec["timing"]["median"] *= 1.5
    dump(a, tmp_path / "a.json")
    dump(b, tmp_path / "b.json")
    return tmp_path / "a.json", tmp_path / "b.json", rec["id"]


# --------------------------------------------------------------------------- bench


@pytest.mark.slow
def test_bench_writes_json_and_plot(real_run):
    done, where = real_run
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "npaccel bench --quick" in done.stdout
    assert "results written to out.json" in done.stdout
    assert "charts written to out.png" in done.stdout
    assert "roof measured in this run at 1 threads:" in done.stdout
    doc = load(where / "out.json")
    assert doc["schema"] == SCHEMA
    assert doc["threads"]["main"] == 1
    kernels = {(r["kernel"], r["backend"]) for r in doc["results"]}
    assert {("stream.copy", "numpy"), ("stream.copy", "numba"), ("stream.triad", "numpy"),
            ("linalg.gemm", "numpy")} <= kernels  # fmt: skip
    assert all(r["status"] == "ok" for r in doc["results"])
    assert {r["params"]["n"] for r in doc["results"] if r["kernel"] == "linalg.gemm"} == {64}
    assert doc["peaks"]["bandwidth"] is not None
    png = (where / "out.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    assert len(png) > 1000
    assert sorted(p.name for p in where.iterdir()) == ["out.json", "out.png"]  # no temp files


@pytest.mark.slow
def test_bench_json_to_stdout():
    # gemm only: skipping the STREAM family leaves out the (slow) bandwidth peak too
    done = npaccel("bench", "--only", "linalg.gemm", "--skip", "stream", "--sizes", "32",
                   "--threads", "1", "--no-progress", "--json", "-")  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = validate(json.loads(done.stdout), "stdout")
    assert {r["kernel"] for r in doc["results"]} == {"linalg.gemm"}
    assert {r["params"]["n"] for r in doc["results"]} == {32}
    assert {r["params"]["dtype"] for r in doc["results"]} == {"float32", "float64"}
    assert all(r["status"] == "ok" for r in doc["results"])


@pytest.mark.slow
def test_compare_real_run_with_itself_and_a_planted_regression(real_run):
    done, where = real_run
    assert done.returncode == 0, done.stderr
    same = npaccel("bench", "compare", "out.json", "out.json", "--fail-on-regression",
                   cwd=where)  # fmt: skip
    assert same.returncode == 0, same.stderr
    assert "0 regressions, 0 improvements" in same.stdout
    assert "warning" not in same.stdout

    doc = json.loads((where / "out.json").read_text())
    # a result whose samples all lie within 1.5x of each other: 1.5x slower is then a clean
    # separation of the two sample sets (the Mann-Whitney test's smallest p)
    rec = next(r for r in doc["results"]
               if max(r["timing"]["samples"]) < 1.5 * min(r["timing"]["samples"]))  # fmt: skip
    rec["timing"]["samples"] = [1.5 * s for s in rec["timing"]["samples"]]
    rec["timing"]["median"] *= 1.5
    (where / "slower.json").write_text(json.dumps(doc))
    slower = npaccel("bench", "compare", "out.json", "slower.json", "--fail-on-regression",
                     cwd=where)  # fmt: skip
    assert slower.returncode == 1, slower.stderr
    assert "regression" in slower.stdout
    assert "1 regressions" in slower.stdout


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--threads", "0"], 2, ["'--threads'", "'0'"]),
        (["--threads", "2,,4"], 2, ["'--threads'", "empty item"]),
        (["--sizes", "x"], 2, ["'--sizes'", "'x'"]),
        (["--instance", "nope"], 1, ["ERROR: `instance` must be one of", "'nope'", "c7i.large"]),
        (["--price-per-hour", "-1"], 1, ["ERROR: `price_per_hour`", "-1"]),
    ],
)
def test_bad_options_fail_fast(args, code, words):
    done = npaccel("bench", *args, "--no-progress")
    assert done.returncode == code
    for word in words:
        assert word in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


# --------------------------------------------------------------------------- compare


def test_compare_same_file_is_no_regression(small_files):
    a, _, _ = small_files
    done = npaccel("bench", "compare", str(a), str(a), "--fail-on-regression")
    assert done.returncode == 0, done.stderr
    assert "0 regressions, 0 improvements, 3 unchanged" in done.stdout


def test_compare_planted_regression(small_files):
    a, b, slow_id = small_files
    done = npaccel("bench", "compare", str(a), str(b), "--fail-on-regression")
    assert done.returncode == 1, done.stderr
    assert "regression" in done.stdout
    assert "1 regressions, 0 improvements, 2 unchanged" in done.stdout
    assert done.stderr == ""
    # without --fail-on-regression it reports and succeeds; backwards it is an improvement
    back = npaccel("bench", "compare", str(b), str(a), "--json")
    assert back.returncode == 0, back.stderr
    report = json.loads(back.stdout)
    verdicts = {c["id"]: c["verdict"] for c in report["changes"]}
    assert verdicts[slow_id] == "improvement"
    assert sorted(verdicts.values()) == ["improvement", "same", "same"]
    assert report["fact_differences"] == []


def test_compare_missing_file(small_files, tmp_path):
    a, _, _ = small_files
    done = npaccel("bench", "compare", str(a), str(tmp_path / "missing.json"))
    assert done.returncode == 1
    line = error_line(done)
    assert "no such result file" in line
    assert "missing.json" in line


def test_compare_wrong_schema(small_files, tmp_path):
    a, _, _ = small_files
    other = tmp_path / "doctor.json"
    other.write_text(json.dumps({"schema": "npaccel.doctor/1", "facts": {}}))
    done = npaccel("bench", "compare", str(other), str(a), "--fail-on-regression")
    assert done.returncode == 1
    line = error_line(done)
    assert "doctor.json" in line
    assert "'npaccel.doctor/1'" in line
    assert "'npaccel.bench/1'" in line


def test_compare_bad_threshold(small_files):
    a, _, _ = small_files
    done = npaccel("bench", "compare", str(a), str(a), "--threshold", "0")
    assert done.returncode == 1
    assert "`threshold` must be > 0" in error_line(done)
