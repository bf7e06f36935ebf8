"""`npaccel image run` end to end through the CLI: every format and bit depth the IO reads
and writes, bad inputs, usage errors, pipeline files, --json, --resume and --overwrite, each
checked against the manifest and the files on disk.

Inputs and outputs are decoded here with Pillow and tifffile directly, not with npaccel's
reader, and the expected pixels come from the pipeline called in Python.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner
from PIL import Image

from npaccel.cli import cli
from npaccel.image import Pipeline, write_image

MANIFEST = ".npaccel-manifest.jsonl"
SCHEMA = "npaccel.image.manifest/1"
TEMP_GLOB = ".npaccel-tmp-*.part"  # what _io._write_atomic names its temp files
HEIGHT, WIDTH = 24, 32
RNG = np.random.default_rng(20240611)


def noise(shape, dtype=np.uint8):
    """Random pixels over the dtype's whole range (floats in [0, 1))."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return RNG.random(shape).astype(dtype)
    info = np.iinfo(dtype)
    return RNG.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


def smooth(shape):
    """A gentle uint8 gradient, channel c offset by 25 c: what lossy codecs keep well."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    base = 30 + 100 * x / (shape[1] - 1) + 50 * y / (shape[0] - 1)
    if len(shape) == 2:
        return base.astype(np.uint8)
    return np.stack([base + 25 * c for c in range(shape[2])], -1).astype(np.uint8)


def decode(path: Path) -> np.ndarray:
    """The pixels of an image file, read by Pillow or tifffile (not by npaccel)."""
    if path.suffix in (".tif", ".tiff"):
        return tifffile.imread(path)
    with Image.open(path) as im:
        return np.asarray(im)


def expected(text: str, image: np.ndarray, *, pages: bool = False) -> np.ndarray:
    """The pipeline called in Python on a decoded image; a page stack page by page."""
    pipeline = Pipeline.parse(text)
    if pages:
        return np.stack([pipeline(page, backend="cpu") for page in image])
    return pipeline(image, backend="cpu")


def image_run(*args, **kwargs):
    """``npaccel image run ARGS --no-progress`` through click's runner (SystemExit caught,
    any other exception raised)."""
    argv = ["image", "run", *(str(a) for a in args), "--no-progress"]
    return CliRunner().invoke(cli, argv, catch_exceptions=False, **kwargs)


def manifest_lines(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / MANIFEST).read_text("utf-8").splitlines()]


def outcomes(out: Path) -> dict[str, dict]:
    """{input path: its latest record other than 'started'}, over every run."""
    final = {}
    for entry in manifest_lines(out):
        if "input" in entry and entry["status"] != "started":
            final[entry["input"]] = entry
    return final


def tree(root: Path) -> set[str]:
    """Every file under ``root``, hidden ones included, as POSIX relative paths."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir()}


def snapshot(root: Path) -> dict[str, tuple[bytes | None, int, int, int]]:
    """(content, or None if unreadable; mtime in ns; inode; mode) of every file under
    ``root``."""
    state = {}
    for rel in tree(root):
        path = root / rel
        st = path.stat()
        content = path.read_bytes() if os.access(path, os.R_OK) else None
        state[rel] = (content, st.st_mtime_ns, st.st_ino, st.st_mode)
    return state


def png_header_only(width: int, height: int) -> bytes:
    """A gray PNG whose header declares width × height: a decompression bomb's signature,
    without the pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))  # fmt: skip


# ------------------------------------------------------------ every format and bit depth

S2, S3, S4 = (HEIGHT, WIDTH), (HEIGHT, WIDTH, 3), (HEIGHT, WIDTH, 4)
# (name, pixels, pipeline, lossy tolerance (max, mean abs error) or None, page stack)
FORMATS = [
    pytest.param("png", noise(S2), "invert", None, False, id="png-gray8"),
    pytest.param("png", noise(S3), "gaussian sigma=1", None, False, id="png-rgb8"),
    pytest.param("png", noise(S4), "flip horizontal", None, False, id="png-rgba8"),
    pytest.param("png", noise(S2, np.uint16), "gaussian sigma=1", None, False, id="png-gray16"),
    pytest.param("jpg", smooth(S2), "flip vertical", (6, 1.5), False, id="jpeg-gray"),
    pytest.param("jpeg", smooth(S3), "invert", (6, 1.5), False, id="jpeg-rgb"),
    pytest.param("bmp", noise(S2), "invert", None, False, id="bmp-gray"),
    pytest.param("bmp", noise(S3), "gaussian sigma=1", None, False, id="bmp-rgb"),
    pytest.param("webp", smooth(S3), "flip horizontal", (16, 3), False, id="webp-rgb"),
    pytest.param("webp", smooth(S4), "flip vertical", (16, 3), False, id="webp-rgba"),
    pytest.param("tif", noise(S3), "invert", None, False, id="tiff-uint8-rgb"),
    pytest.param("tiff", noise(S2, np.uint16), "gaussian sigma=1", None, False,
                 id="tiff-uint16"),
    pytest.param("tif", noise(S2, np.float32), "gaussian sigma=1", None, False,
                 id="tiff-float32"),
    pytest.param("tif", noise(S3, np.float32), "invert", None, False, id="tiff-float32-rgb"),
    pytest.param("tif", noise((3, *S2), np.uint16), "flip horizontal", None, True,
                 id="tiff-stack-gray16"),
    pytest.param("tif", noise((3, *S3)), "gaussian sigma=1", None, True,
                 id="tiff-stack-rgb8"),
]  # fmt: skip


@pytest.mark.parametrize(("ext", "pixels", "text", "tolerance", "pages"), FORMATS)
def test_every_format_and_bit_depth_end_to_end(tmp_path, ext, pixels, text, tolerance, pages):
    src, out = tmp_path / "in", tmp_path / "out"
    rel = f"sub/deep/x.{ext}"
    (src / "sub" / "deep").mkdir(parents=True)
    write_image(src / rel, pixels, pages=pages)
    source = decode(src / rel)
    if tolerance is None:
        np.testing.assert_array_equal(source, pixels)  # the fixture itself is lossless
    before = snapshot(src)

    result = image_run(src, "-o", out, "--pipeline", text)

    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout.startswith("1 ok, 0 failed, 0 skipped of 1 in ")
    assert result.stdout.endswith(f"\nmanifest: {out / MANIFEST}\n")
    assert tree(out) == {rel, MANIFEST}  # mirrored path; no temp files
    header, started, record = manifest_lines(out)
    assert header["schema"] == SCHEMA
    assert header["run"]["pipeline"] == str(Pipeline.parse(text))
    assert started == {"input": str(src / rel), "output": str(out / rel), "status": "started",
                       "reason": None, "error": None, "existed": False}  # fmt: skip
    assert {k: record[k] for k in ("input", "output", "status", "reason", "error")} == {
        "input": str(src / rel), "output": str(out / rel), "status": "ok", "reason": None,
        "error": None}  # fmt: skip
    assert set(record["timings"]) == {"read", "compute", "write"}
    assert all(isinstance(t, float) and 0 <= t < 60 for t in record["timings"].values())

    written = decode(out / rel)
    assert written.dtype == source.dtype  # bit depth preserved
    assert written.shape == source.shape  # channels (and pages) preserved
    assert record["sizes"] == {
        "input_bytes": (src / rel).stat().st_size, "output_bytes": (out / rel).stat().st_size,
        "input_shape": list(source.shape), "output_shape": list(written.shape),
        "input_dtype": source.dtype.name, "output_dtype": written.dtype.name}  # fmt: skip
    want = expected(text, source, pages=pages)
    assert want.dtype == source.dtype
    if tolerance is None:
        assert not np.array_equal(want, source)  # the pipeline shows
        np.testing.assert_array_equal(written, want)
    else:
        assert np.abs(want.astype(np.int16) - source).mean() > 4 * tolerance[1]
        error = np.abs(written.astype(np.int16) - want)
        assert error.max() <= tolerance[0]
        assert error.mean() <= tolerance[1]
    assert snapshot(src) == before  # the input is only read


@pytest.mark.parametrize(("name", "pixels", "fmt", "out_name", "magic"), [
    pytest.param("x.png", noise(S3), "tiff", "x.tif", (b"II*\x00", b"MM\x00*"), id="png-tiff"),
    pytest.param("x.png", noise(S2, np.uint16), "tif", "x.tif", (b"II*\x00", b"MM\x00*"),
                 id="png16-tiff"),
    pytest.param("x.tif", noise(S4), "png", "x.png", (b"\x89PNG",), id="tiff-png"),
    pytest.param("x.bmp", smooth(S3), "WEBP", "x.webp", (b"RIFF",), id="bmp-webp"),
])  # fmt: skip
def test_format_option_changes_the_output_format_and_extension(tmp_path, name, pixels, fmt,
                                                               out_name, magic):  # fmt: skip
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "a").mkdir(parents=True)
    write_image(src / "a" / name, pixels)
    result = image_run(src, "-o", out, "-p", "flip horizontal", "--format", fmt)
    assert result.exit_code == 0, result.output
    assert tree(out) == {f"a/{out_name}", MANIFEST}
    assert (out / "a" / out_name).read_bytes()[:4] in magic  # the content, not just the name
    (record,) = outcomes(out).values()
    assert record["output"] == str(out / "a" / out_name)
    written = decode(out / "a" / out_name)
    assert written.shape == pixels.shape
    want = expected("flip horizontal", pixels)
    if fmt == "WEBP":  # lossy: within the tolerance of the format test
        error = np.abs(written.astype(np.int16) - want)
        assert (error.max(), error.mean() <= 3) <= (16, True)
    else:
        np.testing.assert_array_equal(written, want)


def test_a_format_that_cannot_hold_the_result_fails_that_image_with_the_fix(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    write_image(src / "f.tif", noise(S2, np.float32))
    write_image(src / "u.tif", noise(S2))
    result = image_run(src, "-o", out, "-p", "invert", "--format", "png")
    assert result.exit_code == 1
    final = outcomes(out)
    assert final[str(src / "u.tif")]["status"] == "ok"
    failed = final[str(src / "f.tif")]
    assert (failed["status"], failed["reason"]) == ("failed", "unsupported")
    assert "PNG holds" in failed["error"]
    assert "float32" in failed["error"]
    assert "astype uint8" in failed["error"]  # the fix
    assert tree(out) == {"u.png", MANIFEST}


def test_an_encoder_refusal_mid_write_leaves_no_temp_file(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    write_image(src / "ok.png", smooth(S3))
    write_image(src / "wide.png", noise((2, 16_400, 3)))  # WebP holds at most 16383 columns
    result = image_run(src, "-o", out, "-p", "invert", "--format", "webp")
    assert result.exit_code == 1
    failed = outcomes(out)[str(src / "wide.png")]
    assert (failed["status"], failed["reason"]) == ("failed", "unsupported")
    assert "16383" in failed["error"]
    assert tree(out) == {"ok.webp", MANIFEST}  # the temp file the encoder filled is gone
    assert not list(out.rglob(TEMP_GLOB))


# ------------------------------------------------------------------------ bad inputs

GOOD = {"good/a.png": noise((16, 20, 3)), "good/deeper/b.tif": noise((16, 20), np.uint16)}
LIMIT = ("--max-pixels", "1000")  # the good images have 320 pixels


def _png_with_damaged_pixels(path: Path) -> None:
    data = bytearray(_encoded(".png", noise((16, 20))))
    start = data.index(b"IDAT") + 4
    data[start : start + 40] = bytes(40)  # zlib stream broken; CRC left stale
    path.write_bytes(bytes(data))


def _encoded(suffix: str, pixels: np.ndarray) -> bytes:
    """``pixels`` encoded by Pillow or tifffile, in memory."""
    if suffix == ".tif":
        buffer = io.BytesIO()
        tifffile.imwrite(buffer, pixels, photometric="minisblack")
        return buffer.getvalue()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format={".png": "PNG", ".jpg": "JPEG"}[suffix])
    return buffer.getvalue()


def _half(suffix: str):
    def make(path: Path) -> None:
        data = _encoded(suffix, noise((16, 20)))
        path.write_bytes(data[: len(data) // 2])

    return make


BAD = [
    pytest.param("garbage.png", lambda p: p.write_bytes(b"not an image at all " * 8),
                 "corrupt", LIMIT, id="corrupt-bytes"),
    pytest.param("damaged.png", _png_with_damaged_pixels, "corrupt", LIMIT, id="corrupt-pixels"),
    pytest.param("cut.png", _half(".png"), "truncated", LIMIT, id="truncated-png"),
    pytest.param("cut.jpg", _half(".jpg"), "truncated", LIMIT, id="truncated-jpeg"),
    pytest.param("cut.tif", _half(".tif"), "truncated", LIMIT, id="truncated-tiff"),
    pytest.param("zero.png", lambda p: p.write_bytes(b""), "empty", LIMIT, id="zero-byte"),
    pytest.param("png-inside.tif", lambda p: p.write_bytes(_encoded(".png", noise((8, 8)))),
                 "wrong-extension", LIMIT, id="wrong-extension-png-as-tif"),
    pytest.param("jpeg-inside.png", lambda p: p.write_bytes(_encoded(".jpg", noise((8, 8)))),
                 "wrong-extension", LIMIT, id="wrong-extension-jpeg-as-png"),
    pytest.param("big.png", lambda p: write_image(p, noise((40, 40))), "too-large", LIMIT,
                 id="over-max-pixels"),
    pytest.param("pages.tif", lambda p: write_image(p, noise((4, 16, 20)), pages=True),
                 "too-large", LIMIT, id="over-max-pixels-all-pages"),
    pytest.param("bomb.png", lambda p: p.write_bytes(png_header_only(100_000, 100_000)),
                 "too-large", (), id="bomb-default-limit"),
]  # fmt: skip


def _good_corpus(src: Path) -> None:
    for rel, pixels in GOOD.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        write_image(src / rel, pixels)


def _check_bad_run(result, src: Path, out: Path, bad: Path, reason: str, before) -> None:
    assert result.exit_code == 1, result.output
    final = outcomes(out)
    assert set(final) == {str(src / rel) for rel in GOOD} | {str(bad)}
    for rel, pixels in GOOD.items():
        assert final[str(src / rel)]["status"] == "ok"
        np.testing.assert_array_equal(decode(out / rel), expected("invert", pixels))
    record = final[str(bad)]
    assert (record["status"], record["reason"]) == ("failed", reason)
    assert str(bad) in record["error"]  # names the file
    assert f"FAILED {bad} [{reason}]: " in result.stdout
    assert "2 ok, 1 failed, 0 skipped of 3" in result.stdout
    assert tree(out) == set(GOOD) | {MANIFEST}  # no output, no temp file for the bad one
    assert not list(out.rglob(TEMP_GLOB))
    assert snapshot(src) == before  # inputs untouched, the bad one too


@pytest.mark.parametrize(("name", "make", "reason", "limit"), BAD)
def test_a_bad_input_is_recorded_failed_and_the_others_succeed(tmp_path, name, make, reason,
                                                               limit):  # fmt: skip
    src, out = tmp_path / "in", tmp_path / "out"
    _good_corpus(src)
    (src / "bad").mkdir()
    make(src / "bad" / name)
    before = snapshot(src)
    result = image_run(src, "-o", out, "-p", "invert", *limit)
    _check_bad_run(result, src, out, src / "bad" / name, reason, before)


def _image_run_as_nobody(fork, *args) -> SimpleNamespace:
    """``image_run(*args)`` as user 65534 (root may read any file), through the
    `forked_as_nobody` fixture: its exit code and stdout. (Not a subprocess: user 65534
    cannot run this Python, which lives under /root here.) OpenMP, which the parent's
    kernels may have started, is not fork-safe, so the child launches no parallel kernel:
    the runner's thread-pool probe is skipped, and the pipelines used here are NumPy-only.
    The threading layer itself is loaded before the fork (the child's workers set their
    thread counts on it)."""
    import numba

    from npaccel.image import _runner

    numba.get_num_threads()  # loads the threading layer here, as the child's workers expect
    # user 65534 cannot read this Python's library under /root: import here what the run
    # imports lazily (the CLI's rich output), so a test run alone passes as in the suite
    import rich.console
    import rich.progress
    import rich.table  # noqa: F401

    def child() -> str:
        _runner._compute_lock = lambda: None
        try:
            result = image_run(*args)
            report = {"exit_code": result.exit_code, "stdout": result.stdout}
        except BaseException as exc:
            report = {"exit_code": -1, "stdout": repr(exc)}
        return json.dumps(report)

    report = json.loads(fork(child))
    return SimpleNamespace(**report, output=report["stdout"])


def test_an_unreadable_input_is_recorded_failed_and_the_others_succeed(shared_dir,
                                                                     forked_as_nobody):
    src, out = shared_dir / "in", shared_dir / "out"
    _good_corpus(src)
    (src / "bad").mkdir()
    secret = src / "bad" / "secret.png"
    write_image(secret, noise((8, 8)))
    secret.chmod(0)
    try:
        before = snapshot(src)
        if os.geteuid() == 0:  # root reads anything: run as nobody
            result = _image_run_as_nobody(forked_as_nobody, src, "-o", out, "-p", "invert")
        else:
            result = image_run(src, "-o", out, "-p", "invert")
        _check_bad_run(result, src, out, secret, "permission", before)
        assert "permission denied" in outcomes(out)[str(secret)]["error"]
        assert secret.stat().st_mode & 0o777 == 0  # its mode left as it was
    finally:
        secret.chmod(0o600)


def test_many_bad_inputs_at_once_and_the_json_summary_agrees_with_the_manifest(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _good_corpus(src)
    bad = {"bad/garbage.png": "corrupt", "bad/cut.png": "truncated", "bad/zero.bmp": "empty",
           "bad/png-inside.jpg": "wrong-extension", "bad/big.tif": "too-large"}  # fmt: skip
    (src / "bad").mkdir()
    (src / "bad/garbage.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(50))
    _half(".png")(src / "bad/cut.png")
    (src / "bad/zero.bmp").write_bytes(b"")
    (src / "bad/png-inside.jpg").write_bytes(_encoded(".png", noise((8, 8))))
    write_image(src / "bad/big.tif", noise((40, 40)))
    before = snapshot(src)

    result = image_run(src, "-o", out, "-p", "invert", "--json", "--workers", "1",
                       "--max-inflight", "1", *LIMIT)  # fmt: skip

    assert result.exit_code == 1
    summary = json.loads(result.stdout)  # nothing but the JSON on stdout
    final = outcomes(out)
    assert {Path(k).relative_to(src).as_posix(): v["reason"] for k, v in final.items()
            if v["status"] == "failed"} == bad  # fmt: skip
    ok = [r for r in final.values() if r["status"] == "ok"]
    assert (summary["total"], summary["ok"], summary["failed"], summary["skipped"]) == (
        len(GOOD) + len(bad), len(GOOD), len(bad), 0)  # fmt: skip
    assert len(ok) == summary["ok"]
    assert summary["exit_code"] == 1
    assert summary["interrupted"] is False
    assert summary["dry_run"] is False
    assert summary["manifest"] == str(out / MANIFEST)
    assert summary["bytes_read"] == sum(r["sizes"]["input_bytes"] for r in ok)
    assert summary["bytes_written"] == sum(r["sizes"]["output_bytes"] for r in ok)
    assert summary["bytes_written"] == sum((out / rel).stat().st_size for rel in GOOD)
    assert sorted((f["input"], f["reason"], f["error"]) for f in summary["failures"]) == sorted(
        (k, v["reason"], v["error"]) for k, v in final.items() if v["status"] == "failed")
    assert summary["images_per_second"] > 0
    assert tree(out) == set(GOOD) | {MANIFEST}
    assert snapshot(src) == before


# ------------------------------------------------------------------------ usage errors

USAGE_ERRORS = [
    pytest.param(["-p", "invert | gausian 2"], ["step 2", "unknown op 'gausian'", "'gaussian'"],
                 id="unknown-op"),
    pytest.param(["-p", "gaussian sigma=-1"], ["step 1 (gaussian)", "`sigma`", "got -1"],
                 id="bad-value"),
    pytest.param(["-p", "invert | flip diagonal"], ["step 2 (flip)", "`direction`",
                                                    "'diagonal'"], id="bad-choice"),
    pytest.param(["-p", "median size=3 bogus=1"], ["step 1 (median)", "'bogus'"],
                 id="unknown-parameter"),
    pytest.param(["-p", "gaussian"], ["step 1 (gaussian)", "`sigma`"], id="missing-parameter"),
    pytest.param(["-p", "invert |"], ["step 2", "empty step"], id="empty-step"),
    pytest.param([], ["exactly one of --pipeline", "--pipeline-file"], id="neither"),
    pytest.param(["-p", "invert", "--pipeline-file", "{tmp}/p.txt"],
                 ["exactly one of --pipeline", "--pipeline-file"], id="both"),
    pytest.param(["--pipeline-file", "{tmp}/bad.yaml"],
                 ["{tmp}/bad.yaml", "step 2", "unknown op 'smudge'"], id="bad-yaml-step"),
    pytest.param(["--pipeline-file", "{tmp}/bad.json"],
                 ["{tmp}/bad.json", "step 1 (gaussian)", "`sigma`", "'x'"], id="bad-json-value"),
    pytest.param(["--pipeline-file", "{tmp}/missing.yaml"], ["{tmp}/missing.yaml"],
                 id="missing-pipeline-file"),
    pytest.param(["-p", "invert", "--format", "gif"], ["`format`", "'gif'"], id="bad-format"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "named"), USAGE_ERRORS)
def test_usage_errors_exit_2_naming_the_step_and_write_nothing(tmp_path, args, named):
    src, out = tmp_path / "in", tmp_path / "out"
    _good_corpus(src)
    (tmp_path / "p.txt").write_text("invert\n")
    (tmp_path / "bad.yaml").write_text("pipeline:\n  - invert\n  - smudge: 2\n")
    (tmp_path / "bad.json").write_text('[{"op": "gaussian", "sigma": "x"}]')
    before = snapshot(tmp_path)
    result = image_run(src, "-o", out, *(a.format(tmp=tmp_path) for a in args))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith("ERROR: ")
    assert result.stderr.count("\n") == 1  # one line
    for text in named:
        assert text.format(tmp=tmp_path) in result.stderr
    assert not out.exists()
    assert snapshot(tmp_path) == before


def test_a_missing_input_is_a_usage_error(tmp_path):
    result = image_run(tmp_path / "nope", "-o", tmp_path / "out", "-p", "invert")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"ERROR: input {str(tmp_path / 'nope')!r} does not exist")
    assert not (tmp_path / "out").exists()


PIPELINE_TEXT = "gaussian sigma=1.5 mode=nearest | invert | flip horizontal"
PIPELINE_FILES = {
    "p.yaml": "pipeline:\n  - gaussian: {sigma: 1.5, mode: nearest}\n  - invert\n"
              "  - op: flip\n    direction: horizontal\n",
    "p.yml": "- gaussian sigma=1.5 mode=nearest\n- invert: null\n- flip: horizontal\n",
    "p.json": json.dumps([{"op": "gaussian", "sigma": 1.5, "mode": "nearest"}, {"invert": None},
                          "flip horizontal"]),
    "p.txt": PIPELINE_TEXT + "\n",
}  # fmt: skip


def test_pipeline_files_give_the_same_outputs_as_the_text_form(tmp_path):
    src = tmp_path / "in"
    _good_corpus(src)
    result = image_run(src, "-o", tmp_path / "text", "-p", PIPELINE_TEXT)
    assert result.exit_code == 0, result.output
    reference = snapshot(tmp_path / "text")
    assert set(reference) == set(GOOD) | {MANIFEST}
    for rel, pixels in GOOD.items():
        np.testing.assert_array_equal(decode(tmp_path / "text" / rel),
                                      expected(PIPELINE_TEXT, pixels))  # fmt: skip
    for name, content in PIPELINE_FILES.items():
        (tmp_path / name).write_text(content)
        out = tmp_path / name.replace(".", "-")
        result = image_run(src, "-o", out, "--pipeline-file", tmp_path / name)
        assert result.exit_code == 0, (name, result.output)
        for rel in GOOD:
            assert (out / rel).read_bytes() == reference[rel][0], name
        assert manifest_lines(out)[0]["run"]["pipeline"] == str(Pipeline.parse(PIPELINE_TEXT))


# ------------------------------------------------------------- --resume and --overwrite


def test_resume_after_a_complete_run_skips_everything_and_rewrites_nothing(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _good_corpus(src)
    first = image_run(src, "-o", out, "-p", "invert", "--json")
    assert first.exit_code == 0
    assert json.loads(first.stdout)["ok"] == len(GOOD)
    written = {rel: v for rel, v in snapshot(out).items() if rel != MANIFEST}
    lines = len(manifest_lines(out))

    again = image_run(src, "-o", out, "-p", "invert", "--json", "--resume")

    assert again.exit_code == 0
    summary = json.loads(again.stdout)
    assert (summary["total"], summary["ok"], summary["failed"], summary["skipped"]) == (
        len(GOOD), 0, 0, len(GOOD))  # fmt: skip
    assert summary["bytes_written"] == 0
    assert {rel: v for rel, v in snapshot(out).items() if rel != MANIFEST} == written
    second = manifest_lines(out)[lines:]  # appended: the header, then one record per input
    assert second[0]["schema"] == SCHEMA
    assert second[0]["run"]["resume"] is True
    assert sorted((r["input"], r["status"], r["reason"]) for r in second[1:]) == sorted(
        (str(src / rel), "skipped", "done") for rel in GOOD)
    assert tree(out) == set(GOOD) | {MANIFEST}


def test_resume_redoes_what_failed_or_lost_its_output_and_skips_the_rest(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _good_corpus(src)
    (src / "late.png").write_bytes(b"")  # fails first, then is fixed
    assert image_run(src, "-o", out, "-p", "invert").exit_code == 1
    write_image(src / "late.png", noise((8, 8)), overwrite=True)
    (out / "good/a.png").unlink()  # done, but its output is gone
    kept = snapshot(out)["good/deeper/b.tif"]
    result = image_run(src, "-o", out, "-p", "invert", "--resume", "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert (summary["ok"], summary["skipped"], summary["failed"]) == (2, 1, 0)
    final = outcomes(out)
    assert {Path(k).name: v["status"] for k, v in final.items()} == {
        "late.png": "ok", "a.png": "ok", "b.tif": "skipped"}  # fmt: skip
    assert snapshot(out)["good/deeper/b.tif"] == kept
    np.testing.assert_array_equal(decode(out / "good/a.png"),
                                  expected("invert", GOOD["good/a.png"]))  # fmt: skip
    assert tree(out) == set(GOOD) | {"late.png", MANIFEST}


def test_without_overwrite_existing_outputs_are_kept_and_recorded(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _good_corpus(src)
    (out / "good").mkdir(parents=True)
    (out / "good/a.png").write_bytes(b"keep me")
    first = image_run(src, "-o", out, "-p", "invert")
    assert first.exit_code == 1
    record = outcomes(out)[str(src / "good/a.png")]
    assert (record["status"], record["reason"]) == ("failed", "exists")
    assert "--overwrite" in record["error"]
    assert (out / "good/a.png").read_bytes() == b"keep me"
    assert outcomes(out)[str(src / "good/deeper/b.tif")]["status"] == "ok"

    kept = snapshot(out)  # a second full run, neither --resume nor --overwrite
    second = image_run(src, "-o", out, "-p", "invert", "--json")
    assert second.exit_code == 1
    summary = json.loads(second.stdout)
    assert (summary["ok"], summary["failed"]) == (0, len(GOOD))
    assert {f["reason"] for f in summary["failures"]} == {"exists"}
    assert {rel: v for rel, v in snapshot(out).items() if rel != MANIFEST} == {
        rel: v for rel, v in kept.items() if rel != MANIFEST}  # fmt: skip

    third = image_run(src, "-o", out, "-p", "invert", "--overwrite")
    assert third.exit_code == 0
    for rel, pixels in GOOD.items():
        np.testing.assert_array_equal(decode(out / rel), expected("invert", pixels))
    assert tree(out) == set(GOOD) | {MANIFEST}


def test_resume_keeps_an_output_that_existed_before_the_first_run(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _good_corpus(src)
    (out / "good").mkdir(parents=True)
    (out / "good/a.png").write_bytes(b"keep me")
    assert image_run(src, "-o", out, "-p", "invert").exit_code == 1
    result = image_run(src, "-o", out, "-p", "invert", "--resume")
    assert (out / "good/a.png").read_bytes() == b"keep me"
    assert result.exit_code == 1
    assert outcomes(out)[str(src / "good/a.png")]["reason"] == "exists"


def test_resume_recognises_the_output_dir_however_it_is_spelled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _good_corpus(Path("in"))
    assert image_run("in", "-o", "out", "-p", "invert").exit_code == 0
    written = {k: v for k, v in snapshot(tmp_path / "out").items() if k != MANIFEST}
    result = image_run("in", "-o", tmp_path / "out", "-p", "invert", "--resume", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["skipped"] == len(GOOD)
    assert {k: v for k, v in snapshot(tmp_path / "out").items() if k != MANIFEST} == written


def test_a_custom_manifest_path_and_a_dry_run(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _good_corpus(src)
    plan = image_run(src, "-o", out, "-p", "invert", "--dry-run")
    assert plan.exit_code == 0
    assert plan.stdout.splitlines() == [
        *(f"{src / rel} -> {out / rel}" for rel in sorted(GOOD)),
        f"{len(GOOD)} to write, 0 rejected (dry run)"]  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # nothing read or written

    log = tmp_path / "logs" / "run.jsonl"
    result = image_run(src, "-o", out, "-p", "invert", "--manifest", log, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["manifest"] == str(log)
    assert tree(out) == set(GOOD)  # no default manifest
    assert sorted(r["status"] for r in outcomes_of(log).values()) == ["ok"] * len(GOOD)
    again = image_run(src, "-o", out, "-p", "invert", "--manifest", log, "--resume", "--json")
    assert json.loads(again.stdout)["skipped"] == len(GOOD)


def outcomes_of(manifest: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in manifest.read_text("utf-8").splitlines()]
    return {e["input"]: e for e in lines if "input" in e and e["status"] != "started"}


@pytest.mark.parametrize("where", ["output", "manifest"])
def test_an_output_dir_that_is_a_file_is_one_error_line(tmp_path, where):
    src = tmp_path / "in"
    _good_corpus(src)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    args = ["-o", blocker] if where == "output" else ["-o", tmp_path / "out", "--manifest",
                                                        blocker / "m.jsonl"]  # fmt: skip
    result = image_run(src, *args, "-p", "invert")
    assert result.exit_code == 2
    assert result.stderr.startswith("ERROR: ")
    assert str(blocker) in result.stderr
    assert blocker.read_text() == "not a directory"


# ------------------------------------------------------------------ as users run it


@pytest.mark.slow
def test_the_console_script_in_a_subprocess(tmp_path):
    script = Path(sys.executable).with_name("npaccel")
    if not script.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    src, out = tmp_path / "in", tmp_path / "out"
    _good_corpus(src)
    (src / "broken.png").write_bytes(b"\x89PNG broken")
    done = subprocess.run([str(script), "image", "run", str(src), "-o", str(out), "-p",
                           "gaussian sigma=1 | invert", "--json"], capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stderr == ""  # no progress bar, no traceback
    summary = json.loads(done.stdout)
    assert (summary["ok"], summary["failed"], summary["exit_code"]) == (len(GOOD), 1, 1)
    assert [(f["input"], f["reason"]) for f in summary["failures"]] == [
        (str(src / "broken.png"), "corrupt")]
    for rel, pixels in GOOD.items():
        np.testing.assert_array_equal(decode(out / rel),
                                      expected("gaussian sigma=1 | invert", pixels))
    assert tree(out) == set(GOOD) | {MANIFEST}
