"""Metrics at one threshold: sklearn's confusion counts, the tolerance model, JSON-safe output."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

from aecore.errors import AecoreError
from aecore.evaluation.metrics import evaluate, ranking_scores
from aecore.evaluation.thresholds import sweep


def labelled_case(seed, n_rows=200):
    rng = np.random.default_rng(seed)
    labels = rng.choice([-1, 0, 1], size=n_rows, p=[0.1, 0.75, 0.15])
    errors = rng.random(n_rows) + 0.8 * (labels == 1)
    return errors, labels


@pytest.mark.parametrize("seed", range(3))
def test_pointwise_counts_and_aucs_match_sklearn_on_known_rows(seed):
    errors, labels = labelled_case(seed)
    known = labels != -1
    result = evaluate(errors, labels, 0.9)
    tn, fp, fn, tp = confusion_matrix(labels[known], errors[known] > 0.9, labels=[0, 1]).ravel()
    assert (result["tn"], result["fp"], result["fn"], result["tp"]) == (tn, fp, fn, tp)
    assert result["false_alarms"] == fp and result["missed"] == fn
    assert result["cost"] == fp + fn
    assert result["precision"] == pytest.approx(tp / (tp + fp))
    assert result["recall"] == pytest.approx(tp / (tp + fn))
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels[known], errors[known]))
    assert result["pr_auc"] == pytest.approx(average_precision_score(labels[known], errors[known]))
    assert result["n_rows"] == known.sum() and result["n_unknown"] == (~known).sum()
    assert result["n_anomalies"] == (labels == 1).sum()
    assert result["n_flagged"] == tp + fp


def test_results_are_plain_python_and_json_safe():
    errors, labels = labelled_case(0)
    result = evaluate(np.float32(1.0) * errors.astype(np.float32), labels, 0.5, tolerance=2)
    assert all(type(value) in (int, float) for value in result.values())
    assert json.loads(json.dumps(result))["tp"] == result["tp"]


def test_tolerance_model_on_a_hand_worked_case():
    # Alarms at rows 1, 4, 7; anomalies at rows 2 and 7. With tolerance 1, row 1 is a correct
    # alarm (next to row 2) and catches it; row 4 is a false alarm.
    errors = np.array([0.1, 0.9, 0.2, 0.3, 0.8, 0.1, 0.1, 0.7])
    labels = np.array([0, 0, 1, 0, 0, 0, 0, 1])
    loose = evaluate(errors, labels, 0.5, tolerance=1, c_alarm=2.0, c_missed=5.0)
    assert (loose["false_alarms"], loose["missed"], loose["cost"]) == (1, 0, 2.0)
    assert loose["precision"] == pytest.approx(2 / 3) and loose["recall"] == 1.0
    assert (loose["tp"], loose["fp"], loose["fn"], loose["tn"]) == (1, 2, 1, 4)
    strict = evaluate(errors, labels, 0.5, c_alarm=2.0, c_missed=5.0)
    assert (strict["false_alarms"], strict["missed"], strict["cost"]) == (2, 1, 9.0)


@pytest.mark.parametrize("tolerance", [0, 3])
def test_evaluate_agrees_with_the_sweep(tolerance):
    errors, labels = labelled_case(4)
    errors = errors.round(1)
    curves = sweep(errors, labels, tolerance=tolerance, c_alarm=1.5, c_missed=4.0)
    for threshold in [-1.0, 0.2, 0.5, 0.85, 1.2, 3.0, *curves.thresholds[::5]]:
        direct = evaluate(errors, labels, threshold, tolerance=tolerance, c_alarm=1.5, c_missed=4.0)
        swept = curves.at(threshold)
        for name in ("precision", "recall", "f1", "false_alarms", "missed", "cost", "n_flagged"):
            assert direct[name] == pytest.approx(swept[name]), (threshold, name)


def test_one_class_gives_nan_auc_not_an_error():
    errors = np.array([0.1, 0.5, 0.9, 0.3])
    result = evaluate(errors, [0, 0, 0, -1], 0.4)
    assert math.isnan(result["roc_auc"]) and math.isnan(result["pr_auc"])
    assert result["fp"] == 2 and result["recall"] == 0.0 and result["precision"] == 0.0
    scores = ranking_scores(errors, [1, 1, -1, 1])
    assert math.isnan(scores["roc_auc"]) and math.isnan(scores["pr_auc"])


def test_ranking_scores_rank_planted_anomalies_first():
    errors = np.array([0.1, 0.2, 5.0, 0.3, 4.0, 0.2])
    labels = np.array([0, 0, 1, 0, 1, -1])
    assert ranking_scores(errors, labels) == {"roc_auc": 1.0, "pr_auc": 1.0}
    shuffled = ranking_scores(errors, np.array([1, 0, 0, 1, 0, -1]))
    assert shuffled["roc_auc"] < 0.5


def test_bad_input_is_reported_clearly():
    with pytest.raises(AecoreError, match="one value per row"):
        evaluate([0.1, 0.2], [0], 0.1)
    with pytest.raises(AecoreError, match="threshold must be a number"):
        evaluate([0.1, 0.2], [0, 1], float("nan"))
    with pytest.raises(AecoreError, match="it also holds: 7"):
        ranking_scores([0.1, 0.2], [0, 7])


def test_low_recall_note_names_the_label_based_methods_only_when_recall_is_low():
    from aecore.evaluation.metrics import low_recall_note

    errors = np.r_[np.zeros(90), np.linspace(1, 10, 10)]
    labels = np.r_[np.zeros(90), np.ones(10)]
    note = low_recall_note(evaluate(errors, labels, 7.5))  # flags 3 of the 10 anomalies
    assert note is not None and "only 3 of the 10 labelled anomalies" in note
    assert "recall 0.30" in note and "Best F1" in note and "Minimum cost" in note
    assert low_recall_note(evaluate(errors, labels, 0.5)) is None
    assert low_recall_note(evaluate(errors, np.zeros(100), 7.5)) is None
