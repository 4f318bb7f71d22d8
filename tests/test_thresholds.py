"""Thresholds: the one-pass sweep against a brute-force reading of its definition, and the rest."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from aecore.errors import AecoreError
from aecore.evaluation.thresholds import (
    METHODS,
    ErrorIndex,
    ThresholdChoice,
    best_f1_threshold,
    choose_threshold,
    fixed_threshold,
    flag,
    mean_std_threshold,
    min_cost_threshold,
    percentile_threshold,
    sweep,
)


def brute_force(errors, labels, threshold, tolerance, c_alarm=1.0, c_missed=1.0):
    """The tolerance model read literally: sets of alarms and anomalies, explicit windows."""
    n_rows = len(errors)
    alarms = {i for i in range(n_rows) if labels[i] != -1 and float(errors[i]) > threshold}
    anomalies = {j for j in range(n_rows) if labels[j] == 1}
    correct = sum(1 for i in alarms if any(abs(i - j) <= tolerance for j in anomalies))
    caught = sum(1 for j in anomalies if any(abs(i - j) <= tolerance for i in alarms))
    precision = correct / len(alarms) if alarms else 0.0
    recall = caught / len(anomalies) if anomalies else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    false_alarms, missed = len(alarms) - correct, len(anomalies) - caught
    return {
        "n_flagged": len(alarms),
        "correct_alarms": correct,
        "false_alarms": false_alarms,
        "caught": caught,
        "missed": missed,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "cost": c_alarm * false_alarms + c_missed * missed,
    }


def random_case(seed, n_rows=80, dtype=np.float64, unknown_share=0.1):
    """Errors on a 0.1 grid (many ties), a few anomalies, some unknown labels."""
    rng = np.random.default_rng(seed)
    errors = rng.random(n_rows).round(1).astype(dtype)
    labels = rng.choice([-1, 0, 1], size=n_rows, p=[unknown_share, 0.8 - unknown_share, 0.2])
    errors[labels == 1] += dtype(0.3)
    errors[labels == -1] += dtype(0.5)  # unknown rows score high: they must still raise no alarm
    return errors, labels


CASES = [(seed, tolerance) for seed in range(4) for tolerance in (0, 3)]


@pytest.mark.parametrize(("seed", "tolerance"), CASES)
def test_sweep_matches_brute_force_at_every_candidate(seed, tolerance):
    dtype = np.float32 if seed % 2 else np.float64
    errors, labels = random_case(seed, dtype=dtype)
    result = sweep(errors, labels, tolerance=tolerance, c_alarm=1.0, c_missed=4.0)

    levels = np.unique(errors[labels != -1])[::-1]
    assert len(result) == len(levels) + 1
    assert np.all(np.diff(result.thresholds) < 0)
    for k, threshold in enumerate(result.thresholds):
        expected_flagged = 0 if k == 0 else int(((errors >= levels[k - 1]) & (labels != -1)).sum())
        assert result.n_flagged[k] == expected_flagged
        expected = brute_force(errors, labels, threshold, tolerance, 1.0, 4.0)
        for name, value in expected.items():
            assert getattr(result, name)[k] == pytest.approx(value), (k, name)
    assert result.n_anomalies == int((labels == 1).sum())


@pytest.mark.parametrize("seed", range(3))
def test_sweep_without_tolerance_matches_sklearn(seed):
    errors, labels = random_case(seed)
    result = sweep(errors, labels)
    known = labels != -1
    for k, threshold in enumerate(result.thresholds):
        flagged = errors[known] > threshold
        truth = labels[known]
        assert result.precision[k] == pytest.approx(
            precision_score(truth, flagged, zero_division=0)
        )
        assert result.recall[k] == pytest.approx(recall_score(truth, flagged, zero_division=0))
        assert result.f1[k] == pytest.approx(f1_score(truth, flagged, zero_division=0))


def test_hand_worked_case_with_tolerance():
    # Anomalies at rows 2 and 7; with tolerance 1 an alarm at rows 1-3 or 6-7 is correct.
    errors = np.array([0.1, 0.9, 0.2, 0.3, 0.8, 0.1, 0.1, 0.7])
    labels = np.array([0, 0, 1, 0, 0, 0, 0, 1])
    result = sweep(errors, labels, tolerance=1)
    assert result.thresholds == pytest.approx([0.9, 0.85, 0.75, 0.5, 0.25, 0.15, 0.1])
    assert result.thresholds[-1] < 0.1
    assert result.n_flagged.tolist() == [0, 1, 2, 3, 4, 5, 8]
    assert result.false_alarms.tolist() == [0, 0, 1, 1, 1, 1, 3]
    assert result.caught.tolist() == [0, 1, 1, 2, 2, 2, 2]
    assert result.cost.tolist() == [2, 1, 2, 1, 1, 1, 3]
    # Cost 1 is reached at four cuts: the highest threshold (fewest alarms) wins.
    assert result.min_cost().value == pytest.approx(0.85)
    # F1 peaks at 4 correct of 5 alarms with both anomalies caught: 2 * 0.8 * 1 / 1.8.
    best = best_f1_threshold(errors, labels, tolerance=1)
    assert best.value == pytest.approx(0.15)
    assert best.params["f1"] == pytest.approx(1.6 / 1.8)
    # A missed anomaly costing 5 false alarms moves the cut down to catch both.
    costly = min_cost_threshold(errors, labels, c_missed=5.0, tolerance=1)
    assert costly.value == pytest.approx(0.5)
    assert costly.params == {
        "tolerance": 1,
        "c_alarm": 1.0,
        "c_missed": 5.0,
        "f1": pytest.approx(0.8),
        "cost": 1.0,
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "n_flagged": 3,
    }


def test_unknown_rows_raise_no_alarm_but_keep_their_place_in_time():
    errors = np.array([0.9, 5.0, 0.1, 0.1])
    labels = np.array([0, -1, -1, 1])
    at_half = sweep(errors, labels, tolerance=2).at(0.5)
    # The unknown row's high error is no alarm; row 0 is 3 rows from the anomaly, so it is false.
    assert at_half["n_flagged"] == 1
    assert at_half["false_alarms"] == 1
    assert at_half["missed"] == 1
    assert sweep(errors, labels, tolerance=3).at(0.5)["false_alarms"] == 0


@pytest.mark.parametrize(("seed", "tolerance"), CASES)
def test_chosen_thresholds_are_optimal_by_brute_force(seed, tolerance):
    errors, labels = random_case(seed)
    grid = np.concatenate([np.linspace(-0.1, 1.5, 161), np.unique(errors)])
    costs = [brute_force(errors, labels, t, tolerance, 2.0, 3.0)["cost"] for t in grid]
    f1s = [brute_force(errors, labels, t, tolerance)["f1"] for t in grid]

    cheapest = min_cost_threshold(errors, labels, c_alarm=2.0, c_missed=3.0, tolerance=tolerance)
    achieved = brute_force(errors, labels, cheapest.value, tolerance, 2.0, 3.0)["cost"]
    assert achieved == pytest.approx(min(costs))
    assert cheapest.params["cost"] == pytest.approx(achieved)
    assert all(
        cost > achieved for t, cost in zip(grid, costs, strict=True) if t >= cheapest.value + 0.06
    )

    best = best_f1_threshold(errors, labels, tolerance=tolerance)
    assert brute_force(errors, labels, best.value, tolerance)["f1"] == pytest.approx(max(f1s))
    assert best.method == "best_f1" and best.params["tolerance"] == tolerance


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_at_and_count_above_agree_with_direct_counting(dtype):
    errors, labels = random_case(7, n_rows=120, dtype=dtype)
    result = sweep(errors, labels, tolerance=2)
    index = ErrorIndex(errors)
    rng = np.random.default_rng(1)
    exact_ties = [float(value) for value in np.unique(errors)]
    probes = [*rng.uniform(-1.0, 2.0, 50), *exact_ties, 0.1, 0.7, -5.0, 1e9, *result.thresholds]
    for threshold in probes:
        direct = int((errors.astype(np.float64) > threshold).sum())
        assert index.count_above(threshold) == direct == int(flag(errors, threshold).sum())
        assert index.share_above(threshold) == pytest.approx(direct / len(errors))
        expected = brute_force(errors, labels, threshold, 2)
        got = result.at(threshold)
        assert got["threshold"] == threshold
        for name, value in expected.items():
            assert got[name] == pytest.approx(value), (threshold, name)
    json.dumps(result.at(0.5))


def test_float32_errors_are_compared_exactly():
    errors = np.array([0.1, 0.2], dtype=np.float32)  # float32(0.1) is slightly above 0.1
    assert flag(errors, 0.1).tolist() == [True, True]
    assert ErrorIndex(errors).count_above(0.1) == 2
    assert ErrorIndex(errors).count_above(float(np.float32(0.1))) == 1


def test_flag_is_strictly_greater():
    assert flag([1.0, 2.0, 3.0], 2.0).tolist() == [False, False, True]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_histogram_matches_numpy(dtype):
    errors = np.random.default_rng(3).lognormal(size=5000).astype(dtype)
    errors[:10] = 0.0
    index = ErrorIndex(errors)
    counts, edges = index.histogram(bins=40)
    assert np.allclose(edges, np.histogram_bin_edges(errors.astype(np.float64), bins=40))
    assert counts.tolist() == np.histogram(errors.astype(np.float64), bins=edges)[0].tolist()
    assert counts.sum() == len(errors)

    log_counts, log_edges = index.histogram(bins=30, log=True)
    assert np.allclose(np.diff(np.log(log_edges)), np.log(log_edges[1] / log_edges[0]))
    assert log_counts.sum() == int((errors > 0).sum())
    assert (
        log_counts.tolist() == np.histogram(errors.astype(np.float64), bins=log_edges)[0].tolist()
    )

    clipped, _ = index.histogram(bins=5, range=(1.0, 2.0))
    assert clipped.sum() == int(((errors >= 1.0) & (errors <= 2.0)).sum())


def test_sweep_frame_for_plotting():
    errors, labels = random_case(0)
    frame = sweep(errors, labels).to_frame()
    assert list(frame.columns[:3]) == ["threshold", "n_flagged", "correct_alarms"]
    assert {"precision", "recall", "f1", "cost", "false_alarms", "missed"} <= set(frame.columns)
    assert frame["threshold"].is_monotonic_decreasing
    assert frame["n_flagged"].iloc[-1] == int((labels != -1).sum())


def test_all_errors_equal_gives_two_candidates():
    result = sweep([0.5, 0.5, 0.5], [0, 1, 0])
    assert result.thresholds[0] == 0.5 and result.thresholds[1] < 0.5
    assert result.n_flagged.tolist() == [0, 3]
    assert result.f1[1] == pytest.approx(0.5)


def test_percentile_and_anomaly_share():
    errors = np.arange(1.0, 101.0)
    assert percentile_threshold(errors, percentile=90).value == pytest.approx(90.1)
    by_share = percentile_threshold(errors, anomaly_share=0.05)
    assert flag(errors, by_share.value).sum() == 5
    assert by_share.method == "percentile" and by_share.params == {"anomaly_share": 0.05}
    assert flag(errors[:10], percentile_threshold(errors[:10], anomaly_share=0.1).value).sum() == 1


def test_mean_std():
    choice = mean_std_threshold([1.0, 2.0, 3.0, 4.0, 5.0], k=2)
    assert choice.value == pytest.approx(3 + 2 * np.sqrt(2))
    assert choice.params["k"] == 2.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"anomaly_share": 0.001}, "less than one row"),
        ({"anomaly_share": 1.0}, "between 0 and 1"),
        ({"percentile": 0}, "between 0 and 100"),
        ({"percentile": 100}, "between 0 and 100"),
        ({"percentile": 150}, "between 0 and 100"),
        ({}, "exactly one"),
        ({"percentile": 90, "anomaly_share": 0.1}, "exactly one"),
    ],
)
def test_percentile_validation(params, message):
    with pytest.raises(AecoreError, match=message):
        percentile_threshold(np.arange(100.0), **params)


def test_best_f1_and_min_cost_need_both_classes():
    errors = np.arange(10.0)
    with pytest.raises(AecoreError, match="best_f1 needs a label column with at least one anomaly"):
        best_f1_threshold(errors, np.zeros(10, dtype=int))
    with pytest.raises(AecoreError, match="min_cost needs a label column"):
        min_cost_threshold(errors, np.ones(10, dtype=int))
    with pytest.raises(AecoreError, match="best_f1 needs a label column"):
        choose_threshold(errors, "best_f1")
    with pytest.raises(AecoreError, match="best_f1 needs a label column"):
        choose_threshold(errors, "best_f1", labels=np.array([-1] * 9 + [1]))


def test_bad_input_is_reported_clearly():
    with pytest.raises(AecoreError, match="missing or infinite"):
        sweep([0.1, np.nan], [0, 1])
    with pytest.raises(AecoreError, match="1 \\(anomaly\\), 0 \\(normal\\) or -1"):
        sweep([0.1, 0.2], [0, 2])
    with pytest.raises(AecoreError, match="one value per row"):
        sweep([0.1, 0.2], [0, 1, 0])
    with pytest.raises(AecoreError, match="tolerance"):
        sweep([0.1, 0.2], [0, 1], tolerance=-1)
    with pytest.raises(AecoreError, match="c_missed"):
        sweep([0.1, 0.2], [0, 1], c_missed=-1.0)


def test_choose_threshold_dispatches_by_name():
    rng = np.random.default_rng(5)
    errors, reference = rng.random(200), rng.random(50) * 2
    assert choose_threshold(errors, "percentile", percentile=99).value == pytest.approx(
        np.percentile(errors, 99)
    )
    from_reference = choose_threshold(
        errors, "percentile", reference_errors=reference, percentile=99
    )
    assert from_reference.value == pytest.approx(np.percentile(reference, 99))
    mean_std = choose_threshold(errors, "mean_std", reference_errors=reference, k=1.5)
    assert mean_std.value == pytest.approx(reference.mean() + 1.5 * reference.std())
    assert choose_threshold(errors, "fixed", value=0.3) == fixed_threshold(0.3)

    labels = (errors > 0.9).astype(int)
    best = choose_threshold(errors, "best_f1", labels=labels, tolerance=0)
    assert (
        best.params["f1"] == 1.0
        and flag(errors, best.value).tolist() == labels.astype(bool).tolist()
    )
    cheap = choose_threshold(errors, "min_cost", labels=labels, c_alarm=1.0, c_missed=2.0)
    assert cheap.params["cost"] == 0.0

    with pytest.raises(AecoreError, match=", ".join(METHODS)):
        choose_threshold(errors, "otsu")
    with pytest.raises(AecoreError, match="does not take"):
        choose_threshold(errors, "mean_std", percentile=90)


def test_threshold_choice_round_trips_through_json():
    errors = np.arange(20.0)
    labels = (errors > 15).astype(np.int64)
    choice = min_cost_threshold(errors, labels, tolerance=np.int64(1))
    restored = ThresholdChoice.from_dict(json.loads(json.dumps(choice.to_dict())))
    assert restored == choice
    assert type(restored.value) is float
    with pytest.raises(AecoreError, match="valid methods"):
        ThresholdChoice.from_dict({"value": 1.0, "method": "magic"})
