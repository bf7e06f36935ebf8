"""The timing method (`measure`, `Method`) on a fake clock: every number is known exactly."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import pytest

from npaccel.bench import Method, Timing, measure
from npaccel.bench._runner import SHORT_SAMPLE, SPREAD_WARN


class FakeClock:
    """A timer that moves only when a kernel says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Kernel:
    """Each call advances ``clock`` by the next of ``costs`` (the last one repeats)."""

    def __init__(self, clock: FakeClock, costs: Sequence[float]) -> None:
        self.clock = clock
        self.costs = list(costs)
        self.calls = 0

    def __call__(self) -> None:
        self.clock.now += self.costs[min(self.calls, len(self.costs) - 1)]
        self.calls += 1


def timed(costs: Sequence[float], **method) -> tuple[Timing, Kernel]:
    clock = FakeClock()
    kernel = Kernel(clock, costs)
    return measure(kernel, Method(**method), timer=clock), kernel


def scripted(samples: Sequence[float], **method) -> Timing:
    """Per-call samples exactly ``samples``: no warm-up, and a first (calibration) call
    long enough that one call is one sample."""
    method = {"warmups": 0, "samples": len(samples), "min_sample": 0.5} | method
    timing, kernel = timed([10.0, *samples], **method)
    assert timing.loops == 1
    assert kernel.calls == 1 + len(samples)
    return timing


# --------------------------------------------------------------------------- calibration


def test_calibration_makes_a_sample_last_min_sample():
    timing, _ = timed([1e-3], warmups=0, samples=3, min_sample=0.02)
    assert 20 <= timing.loops <= 50
    assert timing.samples == pytest.approx([1e-3] * 3, rel=1e-9)
    assert timing.warnings == ()


@pytest.mark.parametrize("cost", [1e-6, 1e-4, 7e-4, 1e-3, 0.019, 0.02, 0.5])
def test_calibrated_loops_are_enough_and_not_absurdly_more(cost):
    min_sample = 0.02
    timing, _ = timed([cost], warmups=0, samples=3, min_sample=min_sample)
    needed = math.ceil(min_sample / cost - 1e-9)
    assert timing.loops * cost >= min_sample * (1 - 1e-9)
    assert timing.loops <= 2 * needed + 1
    assert timing.samples == pytest.approx([cost] * 3, rel=1e-6)
    if cost >= min_sample:
        assert timing.loops == 1


def test_per_call_samples_equal_the_cost():
    timing, kernel = timed([2.5e-4], warmups=2, samples=7, min_sample=0.01)
    assert len(timing.samples) == 7
    assert timing.samples == pytest.approx([2.5e-4] * 7, rel=1e-9)
    assert timing.median == pytest.approx(2.5e-4, rel=1e-9)
    assert timing.min == pytest.approx(2.5e-4, rel=1e-9)
    assert timing.iqr == pytest.approx(0.0, abs=1e-15)
    assert timing.warmup == pytest.approx(2.5e-4, rel=1e-9)
    assert kernel.calls > 2 + 7 * timing.loops  # warm-ups and calibration calls on top


def test_calibration_stops_at_max_loops_with_a_short_sample_warning():
    timing, _ = timed([1e-5], warmups=0, samples=3, min_sample=0.02, max_loops=10)
    assert timing.loops == 10
    assert timing.samples == pytest.approx([1e-5] * 3, rel=1e-9)
    assert SHORT_SAMPLE > 10 * 1e-5  # the samples are short
    [warning] = timing.warnings
    assert "samples as short as" in warning
    assert "max_loops" in warning


def test_no_short_sample_warning_when_calibration_reaches_the_target():
    timing, _ = timed([1e-5], warmups=0, samples=3, min_sample=0.02)
    assert timing.loops * 1e-5 >= 0.02
    assert timing.warnings == ()


# --------------------------------------------------------------------------- statistics


def test_statistics_on_scripted_samples():
    timing = scripted([3.0, 1.0, 5.0, 2.0, 4.0])
    assert timing.samples == (3.0, 1.0, 5.0, 2.0, 4.0)  # in the order taken
    assert timing.median == 3.0
    assert timing.min == 1.0
    assert timing.quartiles == (2.0, 4.0)
    assert timing.iqr == 2.0
    assert timing.spread == pytest.approx(2.0 / 3.0)


@pytest.mark.parametrize(
    "samples",
    [[1.0, 2.0, 3.0, 4.0], [1.0, 1.5, 1.25, 8.0, 2.0, 1.0], [0.5, 0.75, 0.625]],
    ids=["four", "six-outlier", "three"],
)
def test_quartiles_are_the_linear_percentiles(samples):
    timing = scripted(samples)
    q1, q3 = np.percentile(samples, [25, 75])
    assert timing.quartiles == pytest.approx((q1, q3))
    assert timing.median == pytest.approx(float(np.median(samples)))
    assert timing.iqr == pytest.approx(q3 - q1)
    assert timing.spread == pytest.approx((q3 - q1) / np.median(samples))


@pytest.mark.parametrize(
    ("samples", "spread", "warned"),
    [
        ([9.5, 9.5, 10.0, 10.5, 10.5], 0.10, True),  # exactly at the threshold: flagged
        ([9.375, 9.375, 10.0, 10.875, 10.875], 0.15, True),
        ([9.75, 9.75, 10.0, 10.25, 10.25], 0.05, False),
        ([9.5, 10.0, 10.0, 10.0, 10.25], 0.0, False),  # one outlier: IQR unmoved
        ([10.0] * 5, 0.0, False),
    ],
)
def test_spread_warning(samples, spread, warned):
    timing = scripted(samples)
    assert timing.spread == pytest.approx(spread)
    spread_warnings = [w for w in timing.warnings if w.startswith("spread")]
    assert bool(spread_warnings) == warned
    assert (timing.spread >= SPREAD_WARN) == warned
    if warned:
        assert f"{spread:.0%}" in spread_warnings[0]
    assert not any("short" in w for w in timing.warnings)  # samples of seconds


# --------------------------------------------------------------------------- warm-up


def test_warmups_run_before_calibration_and_are_not_sampled():
    # 3 warm-ups (7, 2, 3), one calibration call (10: one call is enough), 5 samples
    costs = [7.0, 2.0, 3.0, 10.0, 1.0, 1.5, 1.25, 1.0, 1.0]
    timing, kernel = timed(costs, warmups=3, samples=5, min_sample=0.5)
    assert kernel.calls == len(costs)
    assert timing.warmup == 7.0  # the first warm-up only
    assert timing.loops == 1
    assert timing.samples == (1.0, 1.5, 1.25, 1.0, 1.0)


def test_no_warmup_gives_nan():
    timing, kernel = timed([10.0, 1.0], warmups=0, samples=3, min_sample=0.5)
    assert math.isnan(timing.warmup)
    assert kernel.calls == 1 + 3
    assert timing.samples == (1.0, 1.0, 1.0)


def test_default_method():
    method = Method()
    assert (method.warmups, method.samples) == (1, 5)
    assert method.min_sample > 0
    assert method.max_loops >= 1


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"samples": 2}, "samples"),
        ({"samples": 0}, "samples"),
        ({"samples": 5.0}, "samples"),
        ({"samples": "5"}, "samples"),
        ({"warmups": -1}, "warmups"),
        ({"warmups": 1.5}, "warmups"),
        ({"warmups": None}, "warmups"),
        ({"min_sample": 0}, "min_sample"),
        ({"min_sample": -0.1}, "min_sample"),
        ({"min_sample": math.nan}, "min_sample"),
        ({"max_loops": 0}, "max_loops"),
        ({"max_loops": 2.0**20}, "max_loops"),
    ],
)
def test_method_validation_names_the_argument(kwargs, name):
    [value] = kwargs.values()
    with pytest.raises(ValueError, match=rf"`{name}`.*got {re.escape(repr(value))}"):
        Method(**kwargs)


def test_method_accepts_the_smallest_valid_values():
    method = Method(warmups=0, samples=3, min_sample=1e-9, max_loops=1)
    timing, _ = timed([1e-3], **vars(method))
    assert timing.loops == 1
    assert len(timing.samples) == 3
