"""What the analyst's marks change: which rows to review next, the threshold, and the model.

- ``suggest_rows`` (``aecore.workflows.suggestions``, re-exported here): the rows whose verdict
  would teach the most, near the threshold and not all alike.
- ``threshold_from_marks``: best F1 or minimum cost on the reviewed rows only, with how many
  rows it rests on and a warning when they are few.
- ``retrain_with_feedback``: a new model trained without the confirmed anomalies (and the
  unreviewed rows nearer to one than to any row confirmed normal), with the confirmed normal rows
  counted more; it reports the reviewed rows' ranks before and after and, on reviewed rows held
  out of the retraining, the change in detection.

The score stays the reconstruction error: marks change what the model learns from and where the
threshold sits, never what the score means.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aecore.errors import AecoreError
from aecore.evaluation import thresholds
from aecore.workflows.export import FIRST_DATA_ROW, ranks
from aecore.workflows.suggestions import (  # noqa: F401  (suggest_rows: re-exported)
    Suggestions,
    pairwise_distances,
    suggest_rows,
)

MIN_MARKS = 20  # reviewed rows (anomaly or normal) below which a threshold from marks is shaky
MIN_PER_CLASS = 5
FEEDBACK_WEIGHT = 3  # a confirmed normal row counts as this many training rows
HOLDOUT_SHARE = 0.3
MIN_HOLDOUT_PER_CLASS = 2


# ---------------------------------------------------------------- threshold from marks


@dataclass
class MarksThreshold:
    """A threshold chosen on the reviewed rows, with what it rests on."""

    choice: thresholds.ThresholdChoice
    n_rows: int
    n_anomalies: int
    n_normal: int
    warning: str | None = None
    metrics: dict = field(default_factory=dict)

    @property
    def value(self) -> float:
        return float(self.choice.value)

    def sentence(self) -> str:
        """What the choice rests on, in one sentence."""
        how = "best F1" if self.choice.method == "best_f1" else "lowest cost"
        return (
            f"Threshold {self.value:.4g}: the {how} on the {self.n_rows:,} reviewed rows "
            f"({self.n_anomalies:,} confirmed anomalies, {self.n_normal:,} false alarms); "
            "unsure and unreviewed rows are left out."
        )


def threshold_from_marks(
    errors: Any,
    labels: Any,
    *,
    method: str = "best_f1",
    c_alarm: float = 1.0,
    c_missed: float = 1.0,
) -> MarksThreshold:
    """The threshold with the best F1 (``method="best_f1"``) or the lowest
    ``c_alarm x false alarms + c_missed x missed`` (``"min_cost"``) on the reviewed rows
    (``labels``: 1 confirmed anomaly, 0 normal, -1 unsure or not reviewed, as
    ``ReviewBook.labels``). Raises ``AecoreError`` without at least one row of each verdict;
    ``warning`` says when fewer than ``MIN_MARKS`` rows, or ``MIN_PER_CLASS`` of either verdict,
    carry it. Reviewed rows are seldom a random sample (most were flagged), so the warning also
    says what the choice cannot see."""
    errors = thresholds.as_errors(errors)
    labels = thresholds.as_labels(labels, len(errors))
    n_anomalies, n_normal = int((labels == 1).sum()), int((labels == 0).sum())
    if n_anomalies == 0 or n_normal == 0:
        raise AecoreError(
            "Setting the threshold from reviews needs at least one confirmed anomaly and one "
            f"false alarm among the reviewed rows; there are {n_anomalies} and {n_normal}."
        )
    if method not in ("best_f1", "min_cost"):
        raise AecoreError("Choose best_f1 or min_cost for a threshold from reviews.")
    reviewed = labels >= 0
    sweep = thresholds.sweep(errors[reviewed], labels[reviewed], c_alarm=c_alarm,
                             c_missed=c_missed)  # fmt: skip
    picked = sweep.best_f1() if method == "best_f1" else sweep.min_cost()
    params = {"reviewed_rows": n_anomalies + n_normal}
    if method == "min_cost":
        params.update(c_alarm=float(c_alarm), c_missed=float(c_missed))
    choice = thresholds.ThresholdChoice(float(picked.value), method, params)
    warning = None
    total = n_anomalies + n_normal
    if total < MIN_MARKS or min(n_anomalies, n_normal) < MIN_PER_CLASS:
        warning = (
            f"Only {total} reviewed rows carry this choice: review at least {MIN_MARKS}, "
            f"{MIN_PER_CLASS} of each verdict, before relying on it."
        )
    flagged = errors[reviewed] > choice.value
    truth = labels[reviewed] == 1
    metrics = {
        "caught": int((flagged & truth).sum()),
        "missed": int((~flagged & truth).sum()),
        "false_alarms": int((flagged & ~truth).sum()),
        "flagged_rows": int((errors > choice.value).sum()),
    }
    return MarksThreshold(choice, total, n_anomalies, n_normal, warning, metrics)


# ---------------------------------------------------------------- retraining with feedback


@dataclass
class FeedbackResult:
    """A model retrained with the analyst's marks, and what the marks changed."""

    detector: Any
    table: pd.DataFrame  # the reviewed rows: source_row, status, held_out, ranks and errors
    left_out: int  # training rows left out (confirmed anomalies and the rows like them)
    like_anomalies: int  # of those, unreviewed rows nearer a confirmed anomaly than a normal
    weighted: int  # confirmed normal rows counted FEEDBACK_WEIGHT times
    held_out: dict  # detection on the held-out reviewed rows, before and after (or a reason)
    trained_rows: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))

    def sentence(self) -> str:
        how = "Fine-tuned" if self.detector.retraining_.get("how") == "fine_tune" else "Retrained"
        parts = [
            f"{how} without {self.left_out:,} rows (the confirmed anomalies"
            + (f" and {self.like_anomalies:,} unreviewed rows nearer to one of them than to "
               "any row confirmed normal)" if self.like_anomalies else ")"),
            f"with {self.weighted:,} confirmed normal rows counted {FEEDBACK_WEIGHT} times",
        ]  # fmt: skip
        return "; ".join(parts) + "."

    def warning(self) -> str | None:
        """What speaks against using the retrained model, in one sentence, or None: confirmed
        anomalies no longer flagged or ranked much lower (median rank more than twice as far
        down, plus 20), false alarms ranked much higher, or PR-AUC on the held-out reviewed rows
        down by more than 0.02."""
        table, problems = self.table, []
        anomalies = table[table["status"] == "anomaly"]
        lost = int((anomalies["flagged_before"] & ~anomalies["flagged_after"]).sum()) \
            if "flagged_after" in table else 0  # fmt: skip
        if lost:
            problems.append(f"{lost} of your confirmed anomalies are no longer flagged")
        for rows, worse, text in ((anomalies, 1, "your confirmed anomalies rank much lower"),
                                  (table[table["status"] == "normal"], -1,
                                   "your false alarms rank much higher")):  # fmt: skip
            if len(rows):
                before = float(rows["rank_before"].median())
                after = float(rows["rank_after"].median())
                far = after > 2 * before + 20 if worse > 0 else 2 * after + 20 < before
                if far:
                    problems.append(f"{text} (median rank {before:,.0f} before, {after:,.0f} "
                                    "after)")  # fmt: skip
        held = self.held_out
        if held.get("rows") and held["after"]["pr_auc"] < held["before"]["pr_auc"] - 0.02:
            problems.append(
                f"PR-AUC on the held-out reviewed rows fell ({held['before']['pr_auc']:.3f} to "
                f"{held['after']['pr_auc']:.3f})"
            )
        if not problems:
            return None
        return ("The retrained model does worse on your reviews: " + "; ".join(problems)
                + ". Keep the current model, or review more rows first.")  # fmt: skip


LIKE_QUANTILE = 0.10  # "like" is at most this quantile of the distances between rows apart
MAX_LIKE_SHARE = 0.10  # and at most this share of the rows leaves training for being alike


def like_confirmed(inputs: np.ndarray, anomalies: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Rows "like" a confirmed anomaly: their nearest reviewed row (in model units) is a
    confirmed anomaly, and they are nearer to it than half its distance to the nearest row
    confirmed normal (the midpoint rule) and than the ``LIKE_QUANTILE`` quantile of the
    distances between rows (so a few false alarms far away never make half the data "like" an
    anomaly). A burst of one attack then leaves training with the one flow the analyst
    confirmed. At most ``MAX_LIKE_SHARE`` of the rows, the nearest first."""
    from sklearn.neighbors import NearestNeighbors

    inputs = np.asarray(inputs, dtype=np.float64)
    out = np.zeros(len(inputs), dtype=bool)
    if len(anomalies) == 0:
        return out
    near = NearestNeighbors(n_neighbors=1).fit(inputs[anomalies])
    to_anomaly, which = near.kneighbors(inputs)
    to_anomaly, which = to_anomaly[:, 0], which[:, 0]
    pick = np.random.default_rng(0).choice(len(inputs), min(len(inputs), 600), replace=False)
    sample = inputs[pick]
    spread = pairwise_distances(sample, sample)[np.triu_indices(len(sample), 1)]
    cap = float(np.quantile(spread, LIKE_QUANTILE)) if len(spread) else 0.0
    reach = np.full(len(anomalies), cap)
    to_normal = np.full(len(inputs), np.inf)
    if len(normal):
        normal_index = NearestNeighbors(n_neighbors=1).fit(inputs[normal])
        to_normal = normal_index.kneighbors(inputs)[0][:, 0]
        reach = np.minimum(reach, 0.5 * normal_index.kneighbors(inputs[anomalies])[0][:, 0])
    out = (to_anomaly < to_normal) & (to_anomaly < reach[which])
    out[normal] = False
    limit = int(MAX_LIKE_SHARE * len(inputs))
    if out.sum() > limit:
        candidates = np.flatnonzero(out)
        keep = candidates[np.argsort(to_anomaly[candidates], kind="stable")[:limit]]
        out[:] = False
        out[keep] = True
    return out


def _holdout(labels: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Reviewed rows (anomaly or normal) held out of the retraining, stratified: none when
    either verdict has too few rows to spare."""
    rng = np.random.default_rng(seed)
    held = []
    for value in (1, 0):
        rows = np.flatnonzero(labels == value)
        count = int(round(share * len(rows)))
        if count < MIN_HOLDOUT_PER_CLASS or len(rows) - count < 1:
            return np.zeros(0, dtype=np.int64)
        held.append(rng.choice(rows, count, replace=False))
    return np.sort(np.concatenate(held))


def _detection(errors: np.ndarray, labels: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return {
        "roc_auc": float(roc_auc_score(labels, errors)),
        "pr_auc": float(average_precision_score(labels, errors)),
    }


def retrain_with_feedback(
    detector: Any,
    frame: pd.DataFrame,
    labels: Any,
    *,
    holdout_share: float = HOLDOUT_SHARE,
    weight: int = FEEDBACK_WEIGHT,
    seed: int = 0,
    mode: str = "fine_tune",
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FeedbackResult:
    """A new detector with ``detector``'s settings, trained on ``frame`` with the marks
    (``labels``, one per row: 1 confirmed anomaly, 0 normal, -1 unsure or not reviewed):

    - a share (``holdout_share``, stratified) of the reviewed rows is held out: they train as
      unreviewed rows do, and measure the change in detection (``held_out``: ROC-AUC and
      PR-AUC before and after), when each verdict has a few rows to spare;
    - the other confirmed anomalies are left out of training, with the unreviewed rows like
      them (``like_confirmed``);
    - their confirmed normal rows count ``weight`` times (repeated).

    ``mode="fine_tune"`` (the default) trains copies of the current networks further on those
    rows at a tenth of their learning rate (``AnomalyDetector.fine_tune``; the score is
    calibrated and the threshold derived again); ``"scratch"`` fits a new detector with the same
    settings on them. On the network-flow sample fine-tuning gained far more (``bench/review.py``,
    ``bench/RESULTS.md``): the model forgets what it had learnt of the confirmed anomalies and
    their like, while keeping what it knew of the normal rows.

    ``detector`` is left unchanged. The new one records ``retraining_`` (mode "feedback")."""
    from aecore.detector import AnomalyDetector, as_frame

    detector.check_fitted()
    frame = as_frame(frame)
    labels = thresholds.as_labels(labels, len(frame))
    if not (labels == 1).any() and not (labels == 0).any():
        raise AecoreError(
            "No row is marked as a confirmed anomaly or a false alarm yet: review some flagged "
            "rows first."
        )
    held = _holdout(labels, float(holdout_share), seed)
    used = labels.copy()
    used[held] = -1
    anomalies = np.flatnonzero(used == 1)
    normal = np.flatnonzero(used == 0)
    like = np.zeros(len(frame), dtype=bool)
    if len(anomalies):
        like = like_confirmed(detector.transform_inputs(frame), anomalies, normal)
        like[held] = False  # held-out rows must train as if unreviewed
        like[anomalies] = False
    drop = np.zeros(len(frame), dtype=bool)
    drop[anomalies] = True
    drop |= like
    keep = np.flatnonzero(~drop)
    extra = np.repeat(normal, max(int(weight) - 1, 0))
    rows = np.sort(np.concatenate([keep, extra]))  # repeats sit by their row (time order kept)
    if len(rows) < 30:
        raise AecoreError(
            f"Only {len(rows)} rows would be left to train on; at least 30 are needed."
        )
    params = detector.get_params(deep=False)
    params["roles"] = detector.roles_
    if detector.roles_.label is not None and detector.roles_.label not in frame:
        params["roles"] = dataclasses.replace(detector.roles_, label=None)
    if mode == "fine_tune":  # continue the current networks on the kept rows
        learn = None  # rows the data's own label column calls anomalies stay out too, as in fit
        label = detector.roles_.label
        if label is not None and label in frame:
            from aecore.io import labelling

            learn = (labelling.binary_labels(frame[label]) != 1)[rows]
        new = AnomalyDetector.from_state(detector.get_state(), detector.network()).fine_tune(
            frame.iloc[rows], normal=learn, progress=progress, should_stop=should_stop
        )
    elif mode == "scratch":
        new = AnomalyDetector(**params).fit(
            frame.iloc[rows], progress=progress, should_stop=should_stop
        )
    else:
        raise AecoreError(f"Unknown retraining mode {mode!r}; choose 'scratch' or 'fine_tune'.")
    before = np.asarray(detector.decision_function(frame), dtype=np.float64)
    after = np.asarray(new.decision_function(frame), dtype=np.float64)
    reviewed = np.flatnonzero(labels >= 0)
    rank_before, rank_after = ranks(before), ranks(after)
    status = np.where(labels[reviewed] == 1, "anomaly", "normal")
    table = pd.DataFrame({
        "source_row": reviewed + FIRST_DATA_ROW,
        "status": status,
        "held_out": np.isin(reviewed, held),
        "rank_before": rank_before[reviewed],
        "rank_after": rank_after[reviewed],
        "error_before": before[reviewed],
        "error_after": after[reviewed],
        "flagged_before": before[reviewed] > float(detector.threshold_),
        "flagged_after": after[reviewed] > float(new.threshold_),
    })  # fmt: skip
    if len(held):
        truth = labels[held] == 1
        held_out = {
            "rows": int(len(held)),
            "anomalies": int(truth.sum()),
            "before": _detection(before[held], truth),
            "after": _detection(after[held], truth),
        }
    else:
        held_out = {
            "rows": 0,
            "reason": (
                f"Too few reviewed rows to hold some out: at least "
                f"{math.ceil(MIN_HOLDOUT_PER_CLASS / holdout_share) if holdout_share else 0} "
                "confirmed anomalies and as many false alarms are needed."
            ),
        }
    new.record_retraining({
        "mode": "feedback",
        "rule": "feedback",
        "how": mode,
        "rows": int(len(keep)),
        "left_out": int(drop.sum()),
        "like_anomalies": int(like.sum()),
        "weighted": int(len(normal)),
        "weight": int(weight),
        "window_rows": int(len(frame)),
        "previous_threshold": float(detector.threshold_),
        "threshold": float(new.threshold_),
    }, label_column=detector.roles_.label)  # fmt: skip
    return FeedbackResult(new, table, int(drop.sum()), int(like.sum()), int(len(normal)),
                          held_out, rows)  # fmt: skip
