"""Thread scaling from synthetic records: speedup, efficiency, where more threads stop
paying."""

from __future__ import annotations

import pytest

from npaccel.bench._scaling import PAYING_GAIN, scaling_of

from ._helpers import make_record


def series(kernel, medians: dict[int, float], *, backend="numpy", status=None):
    """Records of one case at several thread counts (``status``: {threads: status})."""
    status = status or {}
    return [make_record(kernel, backend, threads=n, samples=[m] * 3,
                        status=status.get(n, "ok")) for n, m in medians.items()]  # fmt: skip


def test_speedup_and_efficiency():
    [entry] = scaling_of(series("toy.a", {1: 8.0, 2: 4.0, 4: 2.5, 8: 2.0}))
    assert entry["case"] == "toy.a[numpy,dtype=float64,n=8]"
    assert entry["threads"] == [1, 2, 4, 8]
    assert entry["median"] == [8.0, 4.0, 2.5, 2.0]
    assert entry["speedup"] == pytest.approx([1.0, 2.0, 3.2, 4.0])
    assert entry["efficiency"] == pytest.approx([1.0, 1.0, 0.8, 0.5])
    assert entry["stops_paying_at"] is None  # 2.0, 1.6, 1.25: every step gains >= 10%


def test_stops_paying_at_first_step_below_the_gain():
    # steps: 1->2 gains 1.8, 2->3 gains 1.05 (< 1.10), 3->4 gains 1.5 again
    [entry] = scaling_of(series("toy.b", {1: 9.0, 2: 5.0, 3: 5.0 / 1.05, 4: 5.0 / 1.05 / 1.5}))
    assert entry["stops_paying_at"] == 3


def test_a_slowdown_stops_paying():
    [entry] = scaling_of(series("toy.c", {1: 1.0, 2: 0.6, 4: 0.7}))
    assert entry["speedup"][-1] == pytest.approx(1 / 0.7)
    assert entry["stops_paying_at"] == 4


def test_gain_of_exactly_paying_gain_pays():
    assert PAYING_GAIN == 1.1
    [entry] = scaling_of(series("toy.d", {1: 1.1, 2: 1.0}))  # 1.1 / 1.0 == PAYING_GAIN
    assert entry["stops_paying_at"] is None
    [entry] = scaling_of(series("toy.d", {1: 1.0999, 2: 1.0}))
    assert entry["stops_paying_at"] == 2


def test_records_are_sorted_by_thread_count():
    [entry] = scaling_of(series("toy.e", {4: 1.0, 1: 4.0, 2: 2.0}))
    assert entry["threads"] == [1, 2, 4]
    assert entry["speedup"] == pytest.approx([1.0, 2.0, 4.0])


def test_cases_without_a_one_thread_record_are_skipped():
    assert scaling_of(series("toy.f", {2: 4.0, 4: 2.0})) == []
    # a failed 1-thread record counts as none
    failed = series("toy.g", {1: 8.0, 2: 4.0, 4: 2.0}, status={1: "wrong"})
    assert scaling_of(failed) == []


def test_single_count_gives_no_entry():
    assert scaling_of(series("toy.h", {1: 1.0})) == []
    assert scaling_of([]) == []


def test_failed_records_are_ignored():
    records = series("toy.i", {1: 8.0, 2: 4.0, 4: 1.0, 8: 0.5}, status={4: "error"})
    [entry] = scaling_of(records)
    assert entry["threads"] == [1, 2, 8]
    assert entry["speedup"] == pytest.approx([1.0, 2.0, 16.0])


def test_cases_are_kept_apart():
    records = [*series("toy.j", {1: 2.0, 2: 1.0}), *series("toy.j", {1: 2.0, 2: 1.9},
               backend="numba"), *series("toy.k", {1: 1.0})]  # fmt: skip
    entries = {e["case"]: e for e in scaling_of(records)}
    assert set(entries) == {"toy.j[numpy,dtype=float64,n=8]", "toy.j[numba,dtype=float64,n=8]"}
    assert entries["toy.j[numpy,dtype=float64,n=8]"]["stops_paying_at"] is None
    assert entries["toy.j[numba,dtype=float64,n=8]"]["stops_paying_at"] == 2
