"""The GPU bench rows on a real device: each row's check passes on its own result and
catches a wrong one; the event timer measures device time; a tiny GPU run is placed on the
GPU's roof."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gpu_support import require_device

from npaccel import bench
from npaccel.bench._case import CheckFailed
from npaccel.bench._kernels import gpu
from npaccel.bench._profile import PROFILES

pytestmark = pytest.mark.gpu
cupy = require_device()

SMALL = dataclasses.replace(PROFILES["full"], gpu_n=(512,))
CASES = list(gpu.cases(SMALL))


def _spoiled(result):
    if isinstance(result, np.ndarray):
        return result + 1
    return result + 1 if result.dtype.kind != "b" else ~result


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_row_checks_its_result_and_catches_a_wrong_one(case):
    run, check = case.setup()
    result = run()
    cupy.cuda.get_current_stream().synchronize()
    check(result)
    with pytest.raises(CheckFailed):
        check(_spoiled(result))


def test_event_timer_measures_device_time():
    now = gpu.event_timer()
    a = cupy.ones((4096, 4096), cupy.float32)
    t0 = now()
    for _ in range(10):
        a = a * 1.0001  # queued without host syncs
    t1 = now()
    assert t1 > t0
    assert float(a[0, 0]) == pytest.approx(1.0001**10, rel=1e-5)


def test_tiny_gpu_run_is_placed_on_the_gpu_roof():
    profile = dataclasses.replace(SMALL, method=bench._runner.Method(warmups=1, samples=3,
                                                                      min_sample=0.005))
    doc = bench.run(profile, only=["filters.box3"], backends=["npaccel-cuda", "cupy"],
                    threads=[1])  # fmt: skip
    assert doc["peaks"]["gpu"]["bandwidth"]["bytes_per_s"] > 0
    [row] = [r for r in doc["results"] if r["kernel"] == "filters.box3"
             and r["backend"] == "npaccel-cuda" and r["params"]["dtype"] == "float32"]
    assert row["status"] == "ok", row["error"]
    assert row["timer"] == "cuda-events"
    assert 0 < row["roof_fraction"] < 1.5
