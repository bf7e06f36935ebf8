"""Comparing two runs: planted changes are found, noise and small changes are not."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from npaccel.bench import Change, compare, fact_differences

from ._helpers import FACTS, jittered_samples, make_doc, make_record


def one(samples_a, samples_b, **kwargs) -> Change:
    a = make_doc([make_record(samples=samples_a)])
    b = make_doc([make_record(samples=samples_b)])
    [change] = compare(a, b, **kwargs)
    return change


def test_planted_regression():
    change = one(jittered_samples(1.0, 1), jittered_samples(1.2, 2))
    assert change.verdict == "regression"
    assert change.ratio == pytest.approx(1.2, rel=0.03)
    assert change.p_value < 0.05
    assert change.a == pytest.approx(1.0, rel=0.01)
    assert change.b == pytest.approx(1.2, rel=0.01)
    assert change.id == make_record()["id"]


def test_planted_improvement():
    change = one(jittered_samples(1.2, 3), jittered_samples(1.0, 4))
    assert change.verdict == "improvement"
    assert change.ratio == pytest.approx(1 / 1.2, rel=0.03)
    assert change.p_value < 0.05


def test_identical_runs_are_the_same():
    samples = jittered_samples(1.0, 5)
    change = one(samples, samples)
    assert change.verdict == "same"
    assert change.ratio == 1.0
    assert change.p_value == 1.0


def test_pure_noise_is_rarely_flagged():
    seeds = range(50)
    flagged = []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        a, b = (list(rng.normal(1.0, 0.05, 5)) for _ in range(2))
        if one(a, b).verdict != "same":
            flagged.append(seed)
    rate = len(flagged) / len(seeds)
    assert rate <= 0.10, f"false positives on seeds {flagged}"


def test_small_real_change_is_below_the_threshold():
    change = one(
        jittered_samples(1.0, 6), jittered_samples(1.05, 7)
    )  # real and significant, but 5%
    assert change.p_value < 0.05
    assert change.ratio == pytest.approx(1.05, rel=0.02)
    assert change.verdict == "same"
    # with a 3% threshold the same change is reported
    assert (
        one(jittered_samples(1.0, 6), jittered_samples(1.05, 7), threshold=0.03).verdict
        == "regression"
    )


def test_large_change_in_heavy_noise_is_not_significant():
    a = [0.6, 1.0, 1.4, 0.8, 1.9]  # median 1.0
    b = [0.7, 1.3, 1.5, 0.65, 2.0]  # median 1.3, ranks interleaved with a's
    change = one(a, b)
    assert change.ratio == pytest.approx(1.3)
    assert change.p_value > 0.05
    assert change.verdict == "same"


def test_few_samples_cannot_be_significant():
    # with 3 samples a side the smallest two-sided p is 0.1: nothing is ever flagged
    change = one([1.0, 1.01, 1.02], [1.5, 1.51, 1.52])
    assert change.p_value == pytest.approx(0.1)
    assert change.verdict == "same"


def test_alpha_is_used():
    change = one([1.0, 1.01, 1.02], [1.5, 1.51, 1.52], alpha=0.2)
    assert change.verdict == "regression"


def test_one_outlier_does_not_make_a_regression():
    a = jittered_samples(1.0, 8)
    b = [*jittered_samples(1.0, 9)[:4], 50.0]  # one very slow sample in B
    assert one(a, b).verdict == "same"


def test_ids_only_in_one_document_and_untimed_records():
    both = make_record("toy.both", samples=[1.0, 1.01, 0.99])
    only_a = make_record("toy.gone", samples=[1.0, 1.0, 1.0])
    only_b = make_record("toy.new", samples=[1.0, 1.0, 1.0])
    wrong_a = make_record("toy.wrong", status="wrong")
    wrong_b = make_record("toy.wrong", samples=[1.0, 1.0, 1.0])
    skipped = make_record("toy.skip", status="skipped")
    a = make_doc([both, only_a, wrong_a, skipped])
    b = make_doc([only_b, wrong_b, skipped, both])
    verdicts = {c.id: c.verdict for c in compare(a, b)}
    assert verdicts == {
        both["id"]: "same",
        only_a["id"]: "only in A",
        only_b["id"]: "only in B",
        wrong_a["id"]: "not timed",
        skipped["id"]: "not timed",
    }
    changes = compare(a, b)
    assert [c.id for c in changes] == [both["id"], only_a["id"], wrong_a["id"], skipped["id"],
                                       only_b["id"]]  # fmt: skip
    for c in changes[1:]:
        assert (c.a, c.b, c.ratio, c.p_value) == (None, None, None, None)


@pytest.mark.parametrize("threshold", [0, -0.1, math.nan])
def test_threshold_validation(threshold):
    doc = make_doc([make_record()])
    with pytest.raises(ValueError, match="`threshold` must be > 0"):
        compare(doc, doc, threshold=threshold)


@pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.05, math.nan])
def test_alpha_validation(alpha):
    doc = make_doc([make_record()])
    with pytest.raises(ValueError, match=r"`alpha` must be in \(0, 1\)"):
        compare(doc, doc, alpha=alpha)


# --------------------------------------------------------------------------- facts


def test_identical_facts_differ_in_nothing():
    doc = make_doc([make_record()])
    assert fact_differences(doc, copy.deepcopy(doc)) == []


def test_fact_differences():
    a = make_doc([make_record()], main=4)
    facts = copy.deepcopy(FACTS)
    facts["cpu"]["model"] = "Other CPU 1"
    facts["versions"]["numpy"] = "2.1.0"
    b = make_doc([make_record()], facts=facts, main=8, profile="full")
    lines = fact_differences(a, b)
    assert "cpu.model: 'Test CPU 9000' in A, 'Other CPU 1' in B" in lines
    assert "versions.numpy: '2.0.0' in A, '2.1.0' in B" in lines
    assert "threads: 4 in A, 8 in B" in lines
    assert "profile: 'quick' in A, 'full' in B" in lines
    assert len(lines) == 4


def test_fact_missing_in_one_document():
    a = make_doc([make_record()])
    facts = copy.deepcopy(FACTS)
    del facts["versions"]["numba"]
    lines = fact_differences(a, make_doc([make_record()], facts=facts))
    assert lines == ["versions.numba: '0.60.0' in A, None in B"]


def rounds_record(rounds: list[list[float]]) -> dict:
    """A record whose samples were taken in rounds of equal size, in order."""
    rec = make_record(samples=[s for r in rounds for s in r])
    rec["timing"]["per_round"] = len(rounds[0])
    return rec


def one_in_rounds(rounds_a, rounds_b) -> Change:
    [change] = compare(make_doc([rounds_record(rounds_a)]), make_doc([rounds_record(rounds_b)]))
    return change


def test_drift_within_a_run_is_not_a_regression():
    # recorded on this VM (three quick runs, no change in between): one round of B ran
    # about as fast as A, two ran 1.6x slower, each round's samples tight
    a = [[0.918, 0.919], [0.907, 0.953], [0.910, 0.916]]
    b = [[1.500, 1.481], [1.482, 1.485], [0.935, 1.006]]
    flat_a, flat_b = [s for r in a for s in r], [s for r in b for s in r]
    assert one(flat_a, flat_b).verdict == "regression"  # without rounds it would be flagged
    change = one_in_rounds(a, b)
    assert change.verdict == "same"
    # beyond the threshold and significant: only the rounds condition held it back
    assert change.ratio > 1.1
    assert change.p_value < 0.05


def test_change_beyond_every_round_is_flagged():
    a = [jittered_samples(1.0, i, n=2, jitter=0.05) for i in range(3)]
    b = [jittered_samples(1.25, 20 + i, n=2, jitter=0.05) for i in range(3)]
    assert one_in_rounds(a, b).verdict == "regression"
    assert one_in_rounds(b, a).verdict == "improvement"


def test_improvement_needs_every_round_faster():
    a = [jittered_samples(1.0, i, n=2) for i in range(3)]
    b = [jittered_samples(0.7, 30, n=2), jittered_samples(0.7, 31, n=2),
         jittered_samples(0.95, 32, n=2)]  # fmt: skip
    assert one_in_rounds(a, b).verdict == "same"


def test_single_round_runs_skip_the_rounds_condition():
    a, b = [jittered_samples(1.0, 1, n=6)], [jittered_samples(1.2, 2, n=6)]
    assert one_in_rounds(a, b).verdict == "regression"
