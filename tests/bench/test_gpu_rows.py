"""The GPU rows' plumbing, testable without a GPU: skipped with the reason, the GPU's own
roof, peak selection, the profile's sizes. (The rows themselves run in tests/gpu.)"""

from __future__ import annotations

import dataclasses

import pytest

from npaccel.bench._kernels import gpu
from npaccel.bench._profile import PROFILES
from npaccel.bench._roofline import peaks_of, place
from npaccel.bench._suite import GPU_PEAK_KERNELS, select
from npaccel.cuda import available

from ._helpers import make_case, make_record, result, tiny_run

needs_no_gpu = pytest.mark.skipif(available(), reason="a GPU is usable here: tests/gpu runs "
                                  "the GPU rows")  # fmt: skip


def _gpu_record(kernel, backend, *, seconds=1.0, **kwargs):
    rec = make_record(kernel, backend, samples=(seconds,) * 3, **kwargs)
    rec["device"] = "gpu"
    return rec


@needs_no_gpu
def test_gpu_case_without_a_gpu_is_skipped_with_the_reason():
    case = dataclasses.replace(make_case("toy.gpu"), requires=("gpu",), device="gpu")
    rec = result(tiny_run([case]), "toy.gpu")
    assert rec["status"] == "skipped"
    assert rec["error"] == ("needs an NVIDIA GPU usable through CuPy (none here: see npaccel "
                            "doctor)")  # fmt: skip
    assert rec["device"] == "gpu"
    assert rec["timing"] is None


def test_cpu_records_say_where_and_how_they_were_timed():
    rec = result(tiny_run([make_case("toy.cpu")]), "toy.cpu")
    assert (rec["device"], rec["timer"]) == ("cpu", "host")


def test_gpu_figures_are_held_against_the_gpus_roof():
    records = [
        make_record("stream.triad", "numba", nbytes=10e9),  # CPU: 10 GB/s
        _gpu_record("gpu.copy", "cupy", nbytes=2e12),  # GPU: 2 TB/s
        _gpu_record("gpu.gemm", "cupy", flops=50e12, params={"dtype": "float32", "n": 8}),
    ]
    peaks = peaks_of(records, 1)
    assert peaks["bandwidth"]["bytes_per_s"] == pytest.approx(10e9)
    assert peaks["gpu"]["bandwidth"]["bytes_per_s"] == pytest.approx(2e12)
    assert peaks["gpu"]["flops"]["float32"]["flops_per_s"] == pytest.approx(50e12)
    # a GPU filter moving 1 TB/s is half the GPU's copy, not 100x the CPU's triad
    filt = _gpu_record("filters.box3", "npaccel-cuda", nbytes=1e12,
                       params={"dtype": "float32", "n": 8})  # fmt: skip
    assert place(filt, peaks)["roof_fraction"] == pytest.approx(0.5)
    cpu = make_record("filters.box3", "npaccel", nbytes=5e9, params={"dtype": "float32", "n": 8})
    assert place(cpu, peaks)["roof_fraction"] == pytest.approx(0.5)


def test_no_gpu_peaks_without_gpu_records():
    assert "gpu" not in peaks_of([make_record("stream.triad", "numba", nbytes=1e9)], 1)


def test_gpu_record_without_gpu_peaks_has_no_fraction():
    filt = _gpu_record("filters.box3", "npaccel-cuda", nbytes=1e12)
    peaks = peaks_of([make_record("stream.triad", "numba", nbytes=1e9), filt], 1)
    assert peaks["gpu"]["bandwidth"] is None
    assert place(filt, peaks)["roof_fraction"] is None


def test_gpu_peaks_run_when_a_gpu_row_is_chosen_only():
    cases = list(gpu.cases(PROFILES["quick"]))
    cpu = [make_case("stream.triad", "numba"), make_case("toy.cpu")]
    names = {c.kernel for c in select(cpu + cases, only=["filters.box3"])}
    assert set(GPU_PEAK_KERNELS) <= names  # a GPU filter row brings the GPU's roof along
    names = {c.kernel for c in select(cpu + cases, only=["toy.cpu"])}
    assert not names & set(GPU_PEAK_KERNELS)
    assert "stream.triad" in names  # the CPU roof is always there


def test_gpu_rows_cover_the_issue():
    cases = list(gpu.cases(PROFILES["full"]))
    assert {c.params["n"] for c in cases if c.kernel.startswith("filters.")} == {8192}
    kinds = {(c.kernel, c.backend) for c in cases}
    for name in ("box3", "gaussian2", "sobel", "median3"):
        assert (f"filters.{name}", "npaccel-cuda") in kinds
        assert (f"filters.{name}", "cupyx") in kinds
    assert {("gpu.h2d", "pageable"), ("gpu.h2d", "pinned"), ("gpu.d2h", "pageable"),
            ("gpu.d2h", "pinned"), ("gpu.fft2", "cupy"), ("gpu.solve", "cupy"),
            ("filters.box3", "npaccel-cuda+transfers")} <= kinds  # fmt: skip
    for c in cases:
        assert c.device == "gpu"
        assert "gpu" in c.requires
        # kernel-only rows are timed on the device; end-to-end rows include the host's sync
        assert c.timer == ("host" if c.backend.endswith("+transfers") else "cuda-events")


def test_report_folds_skipped_gpu_rows_into_one_note():
    from npaccel.bench._report import result_rows

    from ._helpers import make_doc

    skipped = []
    for backend in ("npaccel-cuda", "cupyx"):
        rec = make_record("filters.box3", backend, status="skipped", samples=None)
        rec.update(device="gpu", error="needs an NVIDIA GPU")
        skipped.append(rec)
    cpu = make_record("toy.cpu", status="skipped", samples=None)  # a CPU row stays a row
    _, rows, notes = result_rows(make_doc([cpu, *skipped]))
    assert [r[0].split()[0] for r in rows] == ["toy.cpu"]
    assert notes == ["[1] toy.cpu[numpy,dtype=float64,n=8]@1: skipped: synthetic",
                     "[2] 2 GPU rows skipped: needs an NVIDIA GPU"]  # fmt: skip
