"""The roofline: attainable performance, fractions of it, peaks from a run's own records."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npaccel.bench._roofline import attainable, fraction, peaks_of, place

from ._helpers import make_record

PI = 1e11  # FLOP/s
BETA = 1e10  # bytes/s


def test_memory_bound_by_hand():
    # I = 0.1 FLOP/byte: the roof there is I * beta = 1e9 FLOP/s, far below pi
    flops, nbytes, seconds = 1e9, 1e10, 2.0
    assert attainable(flops / nbytes, PI, BETA) == pytest.approx(1e9)
    # 0.5e9 FLOP/s of 1e9 attainable; equally 5e9 B/s of 1e10
    assert fraction(flops, nbytes, seconds, PI, BETA) == pytest.approx(0.5)


def test_compute_bound_by_hand():
    # I = 1000 FLOP/byte: the roof is pi
    flops, nbytes, seconds = 1e12, 1e9, 20.0
    assert attainable(flops / nbytes, PI, BETA) == PI
    assert fraction(flops, nbytes, seconds, PI, BETA) == pytest.approx(0.5)  # 5e10 of 1e11


def test_ridge_point():
    ridge = PI / BETA  # intensity where the two roofs meet
    assert attainable(ridge, PI, BETA) == pytest.approx(PI)
    assert attainable(ridge / 2, PI, BETA) == pytest.approx(PI / 2)
    assert attainable(ridge * 2, PI, BETA) == pytest.approx(PI)


positive = st.floats(min_value=1e-3, max_value=1e12, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, database=None, deadline=None)
@given(flops=positive, nbytes=positive, seconds=positive, pi=positive, beta=positive)
def test_fraction_is_performance_over_attainable(flops, nbytes, seconds, pi, beta):
    expected = (flops / seconds) / attainable(flops / nbytes, pi, beta)
    assert fraction(flops, nbytes, seconds, pi, beta) == pytest.approx(expected, rel=1e-9)


def test_no_flops_is_held_against_bandwidth():
    assert fraction(0, 1e10, 2.0, PI, BETA) == pytest.approx(0.5)
    assert fraction(0, 1e10, 2.0, None, BETA) == pytest.approx(0.5)


def test_no_compute_peak_is_held_against_bandwidth():
    # compute-bound work, but no pi (an integer kernel): the bandwidth fraction only
    assert fraction(1e12, 1e9, 20.0, None, BETA) == pytest.approx(1e9 / 20.0 / BETA)


@pytest.mark.parametrize(
    ("flops", "nbytes", "pi", "beta"),
    [(1e9, 1e9, None, None), (0, 1e9, PI, None), (1e9, 0, None, BETA), (0, 0, PI, BETA)],
)
def test_nothing_to_hold_against_gives_none(flops, nbytes, pi, beta):
    assert fraction(flops, nbytes, 1.0, pi, beta) is None


# --------------------------------------------------------------------------- peaks_of


def triad(threads, median, *, status="ok", backend="numba", n=1 << 20):
    return make_record("stream.triad", backend, threads=threads, status=status,
                       samples=[median] * 3, params={"dtype": "float64", "n": n},
                       flops=2.0 * n, nbytes=24.0 * n)  # fmt: skip


def gemm(threads, median, dtype, *, status="ok", n=256):
    return make_record("linalg.gemm", "numpy", threads=threads, status=status,
                       samples=[median] * 3, params={"dtype": dtype, "n": n},
                       flops=2.0 * n**3, nbytes=3.0 * n * n * 8)  # fmt: skip


def test_peaks_pick_the_best_ok_record_at_the_thread_count():
    n = 1 << 20
    records = [
        triad(2, 1e-3, backend="numpy"),
        triad(2, 5e-4, backend="numba"),  # the best at 2 threads
        triad(2, 1e-5, backend="numpy", status="wrong", n=2048),  # failed: no timing
        triad(1, 1e-5, backend="numpy", n=4096),  # faster, but at another thread count
        gemm(2, 2e-3, "float64"),
        gemm(2, 1e-3, "float64", n=128),  # faster, but fewer FLOP/s than the n=256 one
        gemm(2, 1e-3, "float32"),
        gemm(2, 1e-9, "float32", status="error"),
        gemm(4, 1e-6, "float64"),
        make_record("stream.copy", "numpy", threads=2, samples=[1e-9] * 3, nbytes=1e9),
    ]
    peaks = peaks_of(records, threads=2)
    assert peaks["threads"] == 2
    assert peaks["bandwidth"]["bytes_per_s"] == pytest.approx(24.0 * n / 5e-4)
    assert peaks["bandwidth"]["from"] == records[1]["id"]
    f64, f32 = peaks["flops"]["float64"], peaks["flops"]["float32"]
    assert f64["flops_per_s"] == pytest.approx(2.0 * 256**3 / 2e-3)
    assert f64["from"] == records[4]["id"]
    assert f32["flops_per_s"] == pytest.approx(2.0 * 256**3 / 1e-3)
    assert f32["from"] == records[6]["id"]


def test_peaks_missing():
    peaks = peaks_of([triad(1, 1e-3, status="wrong"), gemm(1, 1e-3, "float64")], threads=1)
    assert peaks["bandwidth"] is None
    assert set(peaks["flops"]) == {"float64"}
    assert peaks_of([], threads=8) == {"threads": 8, "bandwidth": None, "flops": {}}


# --------------------------------------------------------------------------- place

PEAKS = {
    "threads": 1,
    "bandwidth": {"bytes_per_s": BETA, "from": "triad"},
    "flops": {"float64": {"flops_per_s": PI, "from": "gemm64"},
              "float32": {"flops_per_s": 4 * PI, "from": "gemm32"}},
}  # fmt: skip


def test_place_memory_bound():
    rec = make_record(samples=[2.0] * 3, flops=1e9, nbytes=1e10, work=(1e6, "items"))
    out = place(rec, PEAKS)
    assert out["gflops"] == pytest.approx(0.5)
    assert out["gbs"] == pytest.approx(5.0)
    assert out["intensity"] == pytest.approx(0.1)
    assert out["roof_fraction"] == pytest.approx(0.5)
    assert out["bound"] == "memory"
    assert out["throughput"] == pytest.approx(5e5)


def test_place_compute_bound():
    rec = make_record(samples=[20.0] * 3, flops=1e12, nbytes=1e9)
    out = place(rec, PEAKS)
    assert out["gflops"] == pytest.approx(50.0)
    assert out["roof_fraction"] == pytest.approx(0.5)
    assert out["bound"] == "compute"
    assert out["throughput"] is None


def test_place_roof_none_gives_rates_but_no_fraction():
    rec = make_record(samples=[2.0] * 3, flops=1e9, nbytes=1e10, roof="none",
                      work=(1e6, "samples"))  # fmt: skip
    out = place(rec, PEAKS)
    assert out["gflops"] == pytest.approx(0.5)
    assert out["gbs"] == pytest.approx(5.0)
    assert out["throughput"] == pytest.approx(5e5)
    assert out["roof_fraction"] is None
    assert out["bound"] is None


@pytest.mark.parametrize(
    ("dtype", "pi"),
    [("complex128", PI), ("float64", PI), ("complex64", 4 * PI), ("float32", 4 * PI),
     ("float16", 4 * PI)],
)  # fmt: skip
def test_place_uses_the_peak_of_the_matching_real_dtype(dtype, pi):
    rec = make_record(samples=[20.0] * 3, flops=1e12, nbytes=1e9, params={"dtype": dtype})
    assert place(rec, PEAKS)["roof_fraction"] == pytest.approx(1e12 / 20.0 / pi)


@pytest.mark.parametrize("flops", [0.0, 1e12])
def test_place_integer_dtype_is_held_against_bandwidth_only(flops):
    rec = make_record(samples=[20.0] * 3, flops=flops, nbytes=1e9, params={"dtype": "uint8"})
    out = place(rec, PEAKS)
    assert out["roof_fraction"] == pytest.approx(1e9 / 20.0 / BETA)
    if not flops:
        assert out["bound"] == "memory"


def test_place_without_peaks():
    rec = make_record(samples=[2.0] * 3, flops=1e9, nbytes=1e10)
    out = place(rec, {"threads": 1, "bandwidth": None, "flops": {}})
    assert out["gflops"] == pytest.approx(0.5)
    assert out["roof_fraction"] is None
    assert out["bound"] is None


@pytest.mark.parametrize("status", ["wrong", "error", "skipped"])
def test_place_untimed_record_is_empty(status):
    out = place(make_record(status=status, flops=1e9, nbytes=1e9), PEAKS)
    assert out == dict.fromkeys(
        ("gflops", "gbs", "intensity", "roof_fraction", "bound", "throughput")
    )
