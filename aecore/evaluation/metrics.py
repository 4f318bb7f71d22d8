"""Detection quality of scores against known labels: at one threshold, and as a ranking.

Same conventions as :mod:`aecore.evaluation.thresholds`: flagged means ``error > threshold``;
labels are 1 (anomaly), 0 (normal), -1 (unknown, left out); the time tolerance is in rows of
the data as given. Every value returned is a plain Python int or float, so results go straight
into JSON.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from aecore.evaluation.thresholds import (
    alarm_is_correct,
    as_errors,
    as_labels,
    check_cost,
    check_threshold,
    check_tolerance,
    window_max,
)


def _ranking(errors: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """ROC AUC and average precision of known-label rows; NaN when only one class is present."""
    if np.unique(labels).shape[0] < 2:
        return {"roc_auc": math.nan, "pr_auc": math.nan}
    return {
        "roc_auc": float(roc_auc_score(labels, errors)),
        "pr_auc": float(average_precision_score(labels, errors)),
    }


def ranking_scores(errors: Any, labels: Any) -> dict[str, float]:
    """How well the errors rank anomalies above normal rows, threshold-free: ROC AUC and PR AUC.

    PR AUC is average precision. Both are NaN when the known labels hold only one class.
    """
    errors = as_errors(errors)
    labels = as_labels(labels, errors.shape[0])
    known = labels >= 0
    return _ranking(errors[known], labels[known])


def evaluate(
    errors: Any,
    labels: Any,
    threshold: float,
    *,
    tolerance: int = 0,
    c_alarm: float = 1.0,
    c_missed: float = 1.0,
) -> dict[str, Any]:
    """Everything an analyst asks about one threshold, on rows whose label is known.

    ``tp``/``fp``/``tn``/``fn`` are pointwise. ``precision`` (correct alarms / alarms),
    ``recall`` (caught anomalies / anomalies), ``f1``, ``false_alarms``, ``missed`` and
    ``cost = c_alarm * false_alarms + c_missed * missed`` use the time tolerance (with
    tolerance 0 they are the pointwise ones). The AUCs do not depend on the threshold.
    """
    errors = as_errors(errors)
    labels = as_labels(labels, errors.shape[0])
    threshold = check_threshold(threshold)
    tolerance = check_tolerance(tolerance)
    c_alarm, c_missed = check_cost(c_alarm, "c_alarm"), check_cost(c_missed, "c_missed")

    known = labels >= 0
    is_anomaly = labels == 1
    is_normal = labels == 0
    flagged = (errors > np.float64(threshold)) & known

    n_flagged = int(flagged.sum())
    n_anomalies = int(is_anomaly.sum())
    correct_alarms = int((flagged & alarm_is_correct(is_anomaly, tolerance)).sum())
    near_alarm = window_max(flagged.astype(np.uint8), tolerance, 0) > 0
    caught = int((is_anomaly & near_alarm).sum())
    false_alarms = n_flagged - correct_alarms
    missed = n_anomalies - caught

    precision = correct_alarms / n_flagged if n_flagged else 0.0
    recall = caught / n_anomalies if n_anomalies else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0

    return {
        "threshold": threshold,
        "tolerance": tolerance,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        **_ranking(errors[known], labels[known]),
        "tp": int((flagged & is_anomaly).sum()),
        "fp": int((flagged & is_normal).sum()),
        "tn": int((~flagged & is_normal).sum()),
        "fn": int((~flagged & is_anomaly).sum()),
        "false_alarms": int(false_alarms),
        "missed": int(missed),
        "cost": float(c_alarm * false_alarms + c_missed * missed),
        "n_rows": int(known.sum()),
        "n_unknown": int((~known).sum()),
        "n_anomalies": n_anomalies,
        "n_flagged": n_flagged,
    }

# Below this recall at the threshold shown, the Threshold page points to the label-based methods.
LOW_RECALL = 0.5


def low_recall_note(at: dict[str, Any]) -> str | None:
    """A warning when a threshold flags fewer than ``LOW_RECALL`` of the labelled anomalies,
    pointing to the thresholds chosen from the labels; None when recall is fine or there are
    no labelled anomalies. ``at``: ``Sweep.at`` (or ``evaluate``) at that threshold."""
    caught = int(at.get("caught", at.get("tp", 0)))
    anomalies = caught + int(at.get("missed", 0))
    recall = float(at.get("recall", 0.0))
    if anomalies == 0 or recall >= LOW_RECALL:
        return None
    return (
        f"This threshold catches only {caught:,} of the {anomalies:,} labelled anomalies "
        f"(recall {recall:.2f}). A cut set on normal rows alone often sits too high: the "
        "label-based methods, Best F1 and Minimum cost (under “Set the threshold by a "
        "method”), choose it from the labels."
    )


def evaluation_scope_text(evaluation: dict[str, Any] | None) -> str:
    """Which rows an evaluation was measured on, as a phrase for a sentence: "measured on 5,039
    held-out rows the model never trained on" (see ``AnomalyDetector.evaluation_``); "" without
    an evaluation."""
    if not evaluation:
        return ""
    n_rows = int(evaluation.get("n_rows", 0))
    scope = evaluation.get("scope")
    if scope == "held-out":
        return f"measured on {n_rows:,} held-out rows the model never trained on"
    if scope == "not trained on":
        return (
            f"measured on {n_rows:,} rows the model did not train on (its validation rows and "
            "the anomalies kept out of training; no test share was held out)"
        )
    if scope == "test":  # models saved before held-out evaluations
        return f"measured on {n_rows:,} test rows"
    if scope == "batch":  # a fine-tune on a new batch (aecore.workflows.retraining.retrain)
        return (
            f"measured on the batch's {n_rows:,} labelled rows, the rows it was retrained on "
            "included, so it looks better than it will on new data"
        )
    return (
        f"measured on all {n_rows:,} labelled rows, training rows included, so it looks better "
        "than it will on new data (hold out a test share for an honest measure)"
    )
