"""`npaccel image` on backend 'cuda': the pipeline moves the stack to the device once per run
of consecutive filter steps and back, and its results equal the cpu backend's. Run under
numba-cuda's simulator here (the device is host memory); tests/gpu repeats it on a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from npaccel.cli import cli
from npaccel.cuda import _device
from npaccel.image import Pipeline, read_image, run, write_image

pytestmark = pytest.mark.skipif(not _device.simulated(), reason="needs numba-cuda's "
                                "simulator (NUMBA_ENABLE_CUDASIM=1); tests/gpu runs this on a "
                                "GPU")  # fmt: skip

RNG = np.random.default_rng(5)
RGB = RNG.integers(0, 256, (1, 9, 11, 3), dtype=np.uint8)


def test_grayscale_on_cuda_is_bit_identical_to_cpu():
    p = Pipeline.parse("grayscale")
    np.testing.assert_array_equal(p.apply(RGB, backend="cuda"), p.apply(RGB, backend="cpu"))


def test_filter_pipeline_on_cuda_equals_cpu():
    p = Pipeline.parse("grayscale | gaussian sigma=1 | sobel | astype uint8")
    got = p.apply(RGB, backend="cuda")
    want = p.apply(RGB, backend="cpu")
    assert got.dtype == want.dtype == np.uint8
    assert isinstance(got, np.ndarray)
    # float32 on both; a value within float32 rounding of .5 may round the other way
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_stack_moves_once_per_run_of_device_steps(monkeypatch):
    uploads = []
    real = _device.to_device

    def spy(host, xp):
        uploads.append(host.shape)
        return real(host, xp)

    monkeypatch.setattr(_device, "to_device", spy)
    # [grayscale, gaussian] on the device, invert on the host, [uniform] on the device
    p = Pipeline.parse("grayscale | gaussian 1 | invert | uniform 3")
    got = p.apply(RGB, backend="cuda")
    assert uploads == [(1, 9, 11, 3), (1, 9, 11, 1)]
    np.testing.assert_array_equal(got, p.apply(RGB, backend="numpy"))


def test_no_device_step_means_no_upload(monkeypatch):
    monkeypatch.setattr(_device, "to_device", lambda *a: pytest.fail("uploaded"))
    p = Pipeline.parse("invert | flip horizontal")
    np.testing.assert_array_equal(p.apply(RGB, backend="cuda"), p.apply(RGB))


def test_runner_and_cli_on_cuda(tmp_path: Path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        write_image(src / f"{i}.png", RNG.integers(0, 256, (7, 10, 3), dtype=np.uint8))
    text = "gaussian sigma=1 | median size=3"
    summary = run([src], tmp_path / "cuda", text, backend="cuda", workers=2)
    assert summary.ok == 3
    assert summary.failed == 0
    run([src], tmp_path / "cpu", text, backend="cpu")
    for i in range(3):
        got = read_image(tmp_path / "cuda" / f"{i}.png")[0].astype(int)
        want = read_image(tmp_path / "cpu" / f"{i}.png")[0].astype(int)
        assert np.abs(got - want).max() <= 1
    result = CliRunner().invoke(cli, ["image", "run", str(src), "-o", str(tmp_path / "cli"),
                                      "-p", text, "--backend", "cuda"])  # fmt: skip
    assert result.exit_code == 0, result.output
