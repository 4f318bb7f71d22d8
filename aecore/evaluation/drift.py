"""Drift: has normal behaviour changed since the model was trained, and retraining when it has.

``monitor(detector, new_frame)`` compares the reconstruction errors of a new batch with the
errors of held-out rows at training time (``detector.reference_errors_``, stored in the bundle)
and returns a ``DriftReport``: a verdict (stable / drifting / drifted) and the evidence in
sentences. Drift is judged on the batch's **normal part** only: the rows labelled normal when
the batch has the model's label column, else the rows in the normal range (at or below the
error 90% of the reference rows stay under, compared with those reference rows: anomalies, even
milder ones below the threshold, mostly lie above it). Its share of anomalies (rows above the
threshold, against the ~1% expected) is reported apart: a batch full of anomalies whose normal
rows look as before is "stable" with ``many_anomalies`` set, and says so, rather than
"drifted". When fewer than a tenth of an unlabelled batch's rows are in the normal range, the
normal part cannot be judged and the verdict is "drifted" (signal ``normal_part``). The
signals on the normal part, each graded 0 (stable), 1 (drifting) or 2 (drifted); the verdict
is the highest grade:

- Kolmogorov-Smirnov (two samples, one-sided: are the new errors larger than the reference
  errors?): statistic D >= 0.1 is drifting, D >= 0.2 drifted, in both cases only when p < 0.01
  (so small batches need a clearer shift);
- population stability index over ten bins cut at the reference errors' deciles: >= 0.1 is
  drifting, >= 0.25 drifted (the usual credit-scoring rule of thumb);
- both count only when the shift is material: the new median error at least 1.25 times the
  reference median (1.1 in the normal range, where the medians of cut-off errors move less).
  Rows of a time series are not independent, so the tests flag differences
  that occur between any two periods of the same data; the median gate keeps those stable;
- false alarms (labelled batches): the share of rows labelled normal above the threshold minus
  the share expected from the reference errors. 10 points more than expected (and p < 0.01,
  binomial) is drifting, 25 points drifted;
- features: the mean error of one input column over the normal part, against its reference
  mean: 2 times its reference and adding 20% to the reference mean row error is drifting, 3
  times and 50% drifted.

Errors that got smaller (data the model finds easier) raise no false alarms: they are reported
but not graded. The tests assume independent rows; rows of a time series are not, so read the
p-values as a guide. The reference errors should come from a chronological hold-out for
time-ordered data (``split="chronological"``): a random split leaves each held-out row between
training rows just like it and makes the reference errors, and the threshold, too optimistic.

Per-feature errors say where the errors grew. They need the per-feature errors of the
reference rows, ``detector.reference_feature_errors_`` (the mean error of every input column
over the held-out rows, from ``AnomalyDetector.reference_feature_errors``), which ``fit`` and
``retrain`` set and a saved bundle keeps, so a loaded model names the features too. A model
saved before the profile existed lacks it: ``AnomalyDetector.set_reference_profile`` adds it,
or ``monitor`` computes it from a ``reference_frame``.

``retrain(detector, frame, mode=...)`` returns a new detector, trained from scratch on a window
of recent rows or fine-tuned from the old weights at a low learning rate, with its threshold
derived again. Either way only the rows believed normal learn (``believed_normal``: labelled
normal, or else at or below the current threshold), and ``retraining_`` records how many rows
were used and left out; ``retrain_saved`` saves it as a new version of the bundle. The
sentence every page shows for how a saved model was trained is ``describe_training(meta)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from aecore.errors import AecoreError
from aecore.io import labelling
from aecore.io.frames import as_frame

if TYPE_CHECKING:  # annotations only: monitoring needs no import of the detector
    from aecore.detector import AnomalyDetector

VERDICTS = ("stable", "drifting", "drifted")
KS_LIMITS = (0.1, 0.2)
PSI_LIMITS = (0.1, 0.25)
ALARM_EXCESS_LIMITS = (0.10, 0.25)
P_VALUE = 0.01
MIN_MEDIAN_RATIO = 1.25
PSI_BINS = 10
MIN_BATCH_ROWS = 30
MIN_REFERENCE_ERRORS = 20
MIN_NORMAL_PART = 30
MIN_NORMAL_SHARE = 0.1
NORMAL_RANGE_QUANTILE = 0.9
MIN_RANGE_MEDIAN_RATIO = 1.1
MANY_ANOMALIES_EXCESS = 0.05
FEATURE_SHARE_LIMITS = (0.2, 0.5)
FEATURE_RATIO_LIMITS = (2.0, 3.0)


@dataclass
class DriftReport:
    """The verdict on one new batch and the evidence behind it."""

    verdict: str
    signals: dict[str, int]
    n_rows: int
    n_reference: int
    threshold: float
    expected_alarm_share: float
    alarm_share: float
    alarm_pvalue: float
    ks_statistic: float
    ks_pvalue: float
    psi: float
    median_ratio: float
    evidence: list[str]
    feature_changes: pd.DataFrame | None
    new_errors: np.ndarray = field(repr=False)
    reference_errors: np.ndarray = field(repr=False)
    false_alarm_share: float | None = None
    many_anomalies: bool = False
    normal_basis: str = "normal_range"
    n_normal_part: int = 0
    normal_part_judged: bool = True

    @property
    def level(self) -> int:
        """0 stable, 1 drifting, 2 drifted."""
        return VERDICTS.index(self.verdict)

    @property
    def headline(self) -> str:
        """One sentence for the top of a page."""
        if self.verdict == "stable" and self.many_anomalies:
            return (
                f"No drift, but many anomalies: {_percent(self.alarm_share)} of the rows are "
                f"above the threshold (expected about {_percent(self.expected_alarm_share)}); "
                "the normal rows look like the training data, so no retraining is needed."
            )
        return {
            "stable": "Stable: the new batch looks like the data the model was trained on.",
            "drifting": "Drifting: the new batch has started to differ from the training data.",
            "drifted": "Drifted: normal behaviour has changed; the model needs retraining.",
        }[self.verdict]

    def to_dict(self) -> dict:
        """JSON-safe summary (no per-row arrays)."""
        return {
            "verdict": self.verdict,
            "signals": dict(self.signals),
            "n_rows": self.n_rows,
            "n_reference": self.n_reference,
            "threshold": self.threshold,
            "expected_alarm_share": self.expected_alarm_share,
            "alarm_share": self.alarm_share,
            "alarm_pvalue": self.alarm_pvalue,
            "ks_statistic": self.ks_statistic,
            "ks_pvalue": self.ks_pvalue,
            "psi": self.psi,
            "median_ratio": self.median_ratio,
            "false_alarm_share": self.false_alarm_share,
            "many_anomalies": self.many_anomalies,
            "normal_basis": self.normal_basis,
            "n_normal_part": self.n_normal_part,
            "normal_part_judged": self.normal_part_judged,
            "evidence": list(self.evidence),
            "feature_changes": (
                None
                if self.feature_changes is None
                else self.feature_changes.head(10).to_dict(orient="records")
            ),
        }


def population_stability_index(reference: Any, new: Any, *, bins: int = PSI_BINS) -> float:
    """PSI = sum over bins of (new share - reference share) * ln(new share / reference share).

    Bins are cut at quantiles of the reference, so each holds about 1/bins of it; empty bins
    count as a share of 1e-4 (the usual guard against log(0)).
    """
    reference = np.asarray(reference, dtype=np.float64)
    new = np.asarray(new, dtype=np.float64)
    if reference.size == 0 or new.size == 0:
        raise AecoreError("Both samples need at least one value to compare.")
    inner = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    def shares(values: np.ndarray) -> np.ndarray:
        counts = np.bincount(np.searchsorted(inner, values, "right"), minlength=len(inner) + 1)
        return np.maximum(counts / values.size, 1e-4)

    reference_share, new_share = shares(reference), shares(new)
    return float(np.sum((new_share - reference_share) * np.log(new_share / reference_share)))


def _grade(value: float, limits: tuple[float, float], significant: bool = True) -> int:
    if not significant or not math.isfinite(value):
        return 0
    return 2 if value >= limits[1] else 1 if value >= limits[0] else 0


def _percent(share: float) -> str:
    if share == 0:
        return "0%"
    return f"{100 * share:.1f}%" if share >= 0.001 else f"{100 * share:.2f}%"


def _p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _feature_changes(
    detector: AnomalyDetector, new_feature_errors: pd.DataFrame, reference_frame
) -> pd.DataFrame | None:
    reference = getattr(detector, "reference_feature_errors_", None)
    if reference is None and reference_frame is not None:
        reference = detector.feature_errors(as_frame(reference_frame)).mean(axis=0)
    if reference is None:
        return None
    reference = pd.Series(reference, dtype=np.float64).reindex(new_feature_errors.columns)
    new = new_feature_errors.mean(axis=0).astype(np.float64)
    table = pd.DataFrame(
        {
            "feature": new.index.astype(str),
            "reference_error": reference.to_numpy(),
            "new_error": new.to_numpy(),
        }
    )
    table["increase"] = table["new_error"] - table["reference_error"]
    table["ratio"] = table["new_error"] / table["reference_error"].clip(lower=1e-12)
    return table.sort_values("increase", ascending=False, kind="stable").reset_index(drop=True)


def batch_labels(detector, frame: pd.DataFrame) -> np.ndarray | None:
    """The batch's labels (1 anomaly, 0 normal, -1 unknown) when it has the model's label
    column with at least one known value; else None."""
    column = detector.roles_.label
    if column is None or column not in frame:
        return None
    labels = labelling.binary_labels(frame[column])
    return labels if (labels >= 0).any() else None


def _grade_features(changes: pd.DataFrame | None) -> int:
    """Per-feature check on the normal part: a feature whose mean error alone adds a good share
    to the reference mean row error, and is several times its own reference error."""
    if changes is None or changes.empty:
        return 0
    total = float(np.nansum(changes["reference_error"]))
    if not total > 0:
        return 0
    grades = [
        min(
            _grade(row.increase / total, FEATURE_SHARE_LIMITS),
            _grade(row.ratio, FEATURE_RATIO_LIMITS),
        )
        for row in changes.itertuples()
        if math.isfinite(row.increase) and row.increase > 0
    ]
    return max(grades, default=0)


def judge_normal_part(new: np.ndarray, reference: np.ndarray, labels) -> dict:
    """The batch's normal part and how its errors compare with the reference errors.

    Labelled batches (at least ``MIN_NORMAL_PART`` rows labelled normal): those rows, against
    every reference error. Otherwise the rows in the normal range, at or below the error that
    ``NORMAL_RANGE_QUANTILE`` of the reference rows stay under, against those reference rows:
    anomalies, even the milder ones below the threshold, mostly lie above that range, so a
    batch full of them leaves the comparison alone, while a changed normal moves it. Keys:
    basis ("labelled" / "normal_range"), part (mask), cut, judged (enough rows to judge), ks,
    ks_p, ks_down, psi, median_ratio, gate (the median ratio that counts as material) and
    grades {"ks", "psi"}."""
    from scipy import stats

    labelled_normal = None if labels is None else labels == 0
    if labelled_normal is not None and labelled_normal.sum() >= MIN_NORMAL_PART:
        basis, part, reference_part, cut = "labelled", labelled_normal, reference, math.nan
        gate = MIN_MEDIAN_RATIO
    else:
        cut = float(np.quantile(reference, NORMAL_RANGE_QUANTILE))
        basis, part, reference_part = "normal_range", new <= cut, reference[reference <= cut]
        gate = MIN_RANGE_MEDIAN_RATIO
    bulk = new[part]
    judged = bool(
        bulk.size >= MIN_NORMAL_PART
        and (basis == "labelled" or bulk.size >= MIN_NORMAL_SHARE * new.size)
        and reference_part.size >= MIN_REFERENCE_ERRORS
    )
    result = {
        "basis": basis, "part": part, "cut": cut, "judged": judged, "gate": gate,
        "ks": math.nan, "ks_p": math.nan, "ks_down": math.nan, "psi": math.nan,
        "median_ratio": math.nan, "grades": {"ks": 0, "psi": 0},
    }  # fmt: skip
    if not judged:
        return result
    # One-sided: "new errors larger" (the new CDF lies below the reference CDF) is drift that
    # raises false alarms; smaller errors (data the model finds easier) are only reported.
    method = "asymp" if min(bulk.size, reference_part.size) > 100 else "auto"
    ks = stats.ks_2samp(bulk, reference_part, alternative="less", method=method)
    down = stats.ks_2samp(bulk, reference_part, alternative="greater", method=method)
    reference_median = float(np.median(reference_part))
    median_ratio = float(np.median(bulk) / reference_median) if reference_median > 0 else math.nan
    psi = population_stability_index(reference_part, bulk)
    material = median_ratio >= gate
    result.update(
        ks=float(ks.statistic), ks_p=float(ks.pvalue), ks_down=float(down.statistic), psi=psi,
        median_ratio=median_ratio,
        grades={
            "ks": _grade(float(ks.statistic), KS_LIMITS, float(ks.pvalue) < P_VALUE and material),
            "psi": _grade(psi, PSI_LIMITS, material),
        },
    )  # fmt: skip
    return result


def monitor(
    detector: AnomalyDetector,
    new_frame: pd.DataFrame,
    *,
    reference_frame: pd.DataFrame | None = None,
    top_features: int = 5,
) -> DriftReport:
    """Judge drift on ``new_frame``'s normal part and report its share of anomalies apart.

    The normal part is the rows labelled normal when the batch has the model's label column
    (with at least ``MIN_NORMAL_PART`` of them), else the rows in the normal range
    (``judge_normal_part``); it is compared with the reference errors (those in the same
    range, in the second case, so like is compared with like). A batch full of anomalies whose
    normal rows are unchanged is therefore "stable" with ``many_anomalies`` set (only ever set
    with "stable"), not "drifted"; its headline and evidence say so. ``reference_frame``
    (optional; e.g. the training data) supplies per-feature reference errors when the detector
    has no ``reference_feature_errors_``.
    """
    from scipy import stats

    detector.check_fitted()
    frame = as_frame(new_frame)
    if len(frame) < MIN_BATCH_ROWS:
        raise AecoreError(
            f"The new batch has {len(frame)} rows; at least {MIN_BATCH_ROWS} are needed to "
            "judge drift."
        )
    reference = np.asarray(getattr(detector, "reference_errors_", []), dtype=np.float64)
    reference = reference[np.isfinite(reference)]
    if reference.size < MIN_REFERENCE_ERRORS:
        raise AecoreError(
            "This model has too few reference errors from training to judge drift; retrain "
            "it (saving stores them)."
        )
    scores = detector.score_rows(frame, latent=False)
    new = np.asarray(scores.row_error, dtype=np.float64)
    threshold = float(detector.threshold_)

    # The batch's share of anomalies: every row above the threshold, against the reference.
    expected = float(np.mean(reference > threshold))
    alarms = int(np.sum(new > threshold))
    share = alarms / len(new)
    floor = max(expected, 1.0 / (reference.size + 1))
    alarm_p = float(stats.binomtest(alarms, len(new), floor, alternative="greater").pvalue)
    many_anomalies = alarm_p < P_VALUE and share - expected >= MANY_ANOMALIES_EXCESS

    # The batch's normal part, and the reference it is compared with.
    labels = batch_labels(detector, frame)
    labelled_normal = None if labels is None else labels == 0
    judgement = judge_normal_part(new, reference, labels)
    basis, part, judged = judgement["basis"], judgement["part"], judgement["judged"]
    ks_statistic, ks_p, ks_down = judgement["ks"], judgement["ks_p"], judgement["ks_down"]
    psi, median_ratio = judgement["psi"], judgement["median_ratio"]
    gate = judgement["gate"]
    upward = judged and ks_statistic >= ks_down
    material = judged and median_ratio >= gate

    false_alarms = None
    false_alarm_grade = 0
    if labelled_normal is not None and labelled_normal.any():
        normal_errors = new[labelled_normal]
        false_alarms = float(np.mean(normal_errors > threshold))
        count = int(np.sum(normal_errors > threshold))
        test = stats.binomtest(count, normal_errors.size, floor, alternative="greater")
        if basis == "labelled":
            false_alarm_grade = _grade(
                false_alarms - expected, ALARM_EXCESS_LIMITS, float(test.pvalue) < P_VALUE
            )

    part_features = scores.feature_errors[part] if judged else scores.feature_errors
    changes = _feature_changes(detector, part_features, reference_frame)
    signals = {
        "ks": judgement["grades"]["ks"],
        "psi": judgement["grades"]["psi"],
        "false_alarms": false_alarm_grade,
        "features": _grade_features(changes) if judged else 0,
        "normal_part": 0 if judged else 2,
    }
    verdict = VERDICTS[max(signals.values())]

    times = ""
    if expected > 0 and share > 1.5 * expected:
        times = f" ({share / expected:.1f} times as many)"
    evidence = [
        f"{_percent(share)} of the {len(new):,} new rows are above the threshold "
        f"({threshold:.4g}), against about {_percent(expected)} expected from the reference "
        f"rows{times}. Rows above the threshold are anomalies by the model's standard; drift "
        "is judged on the normal rows only."
    ]
    if basis == "labelled":
        evidence.append(
            f"Normal part: the {int(part.sum()):,} rows labelled normal in "
            f"{detector.roles_.label!r}, compared with the reference errors."
        )
    elif judged:
        evidence.append(
            f"Normal part: the {int(part.sum()):,} rows ({_percent(part.mean())}) in the normal "
            f"range, at or below {judgement['cut']:.4g} (the error "
            f"{NORMAL_RANGE_QUANTILE:.0%} of the reference rows stay under), compared with "
            "those reference rows"
            + (
                f" (too few rows are labelled normal in {detector.roles_.label!r})."
                if labels is not None
                else "."
            )
        )
    else:
        evidence.append(
            f"Only {int(part.sum()):,} of the {len(new):,} rows ({_percent(part.mean())}) are "
            f"in the normal range (at or below {judgement['cut']:.4g}, where "
            f"{NORMAL_RANGE_QUANTILE:.0%} of the reference rows are): too few look normal to "
            "judge the normal part on its own. Normal behaviour has most likely changed, "
            "unless the batch is almost all anomalies: look at a few flagged rows (a label "
            "column marking normal rows settles it)."
        )
    if judged:
        evidence.append(
            f"Kolmogorov-Smirnov test for larger errors of the normal rows: D = "
            f"{ks_statistic:.3f} ({_p_text(ks_p)}); "
            + (
                "no significant shift towards larger errors."
                if signals["ks"] == 0
                else f"their errors as a whole have grown (the median error is "
                f"{median_ratio:.2f} times the reference median)."
            )
        )
        evidence.append(
            f"Population stability index of the normal rows' errors: {psi:.3f} (below "
            f"{PSI_LIMITS[0]} is stable, {PSI_LIMITS[0]}-{PSI_LIMITS[1]} drifting, above "
            f"{PSI_LIMITS[1]} drifted)"
            + ("; not counted, see below." if not material and psi >= PSI_LIMITS[0] else ".")
        )
    if false_alarms is not None:
        evidence.append(
            f"Of the rows labelled normal, {_percent(false_alarms)} are flagged "
            f"(the target is about {_percent(expected)})."
        )
    if upward and not material and (ks_statistic >= KS_LIMITS[0] or psi >= PSI_LIMITS[0]):
        evidence.append(
            f"The normal rows' errors are somewhat larger than the reference ones, but their "
            f"median is only {median_ratio:.2f} times the reference median (drift needs "
            f"{gate}): differences of this size occur between periods of the same "
            "data."
        )
    if judged and not upward and ks_down >= KS_LIMITS[0]:
        evidence.append(
            f"The normal rows' errors are mostly smaller than the reference ones (median "
            f"{median_ratio:.2f} times the reference): the model finds this batch easier, "
            "which raises no false alarms and is not counted as drift."
        )
    if many_anomalies and verdict == "stable":
        evidence.append(
            f"This batch holds many anomalies ({_percent(share)} above the threshold, expected "
            f"about {_percent(expected)}), but its normal rows look like the training data: "
            "these are rows to review, not a changed normal, and no retraining is needed."
        )
    elif many_anomalies:
        evidence.append(
            f"Many rows are above the threshold ({_percent(share)}), but with normal "
            "behaviour changed, many of them are likely normal rows the model no longer "
            "recognises rather than anomalies."
        )
    elif verdict == "stable" and share - expected > 0.01 and alarm_p < P_VALUE:
        evidence.append(
            "More rows than expected are above the threshold, but the normal rows have not "
            "moved: these look like individual anomalies rather than a changed normal; review "
            "the flagged rows."
        )
    if changes is not None and verdict != "stable":
        grown = changes[changes["increase"] > 0].head(top_features)
        if len(grown):
            parts = [
                f"{row.feature} (+{row.increase:.3g}, {row.ratio:.1f}x its reference error)"
                for row in grown.itertuples()
            ]
            scope = "of the normal rows " if judged else ""
            evidence.append(
                f"The mean error {scope}grew most (in absolute terms) in "
                + ", ".join(parts)
                + "."
            )
    elif changes is None:
        evidence.append(
            "Per-feature reference errors are not stored with this model, so the features "
            "that changed cannot be named."
        )
    if verdict != "stable" and detector.split == "random" and detector.roles_.time is not None:
        evidence.append(
            "The reference errors come from a random split of time-ordered rows: neighbouring "
            "rows are alike, so they understate the errors of later data. If this model was "
            "trained recently, retrain it with split='chronological' before reading this as "
            "drift."
        )
    if len(new) < 200:
        evidence.append(
            f"With only {len(new)} new rows these measures are rough; a larger batch gives a "
            "firmer verdict."
        )
    if verdict == "stable":
        evidence.append(
            "No retraining needed: review the flagged rows."
            if many_anomalies
            else "No action needed."
        )
    else:
        evidence.append(
            {
                "drifting": "Watch the next batches; retrain if the shift persists.",
                "drifted": "Retrain the model on recent normal data (from scratch on a recent "
                "window, or fine-tune it; only rows believed normal are used), then check that "
                "the alarm rate is back near its target.",
            }[verdict]
        )
    return DriftReport(
        verdict=verdict,
        signals=signals,
        n_rows=int(len(new)),
        n_reference=int(reference.size),
        threshold=threshold,
        expected_alarm_share=expected,
        alarm_share=float(share),
        alarm_pvalue=alarm_p,
        ks_statistic=ks_statistic,
        ks_pvalue=ks_p,
        psi=psi,
        median_ratio=median_ratio,
        evidence=evidence,
        feature_changes=changes,
        new_errors=new,
        reference_errors=reference,
        false_alarm_share=false_alarms,
        many_anomalies=bool(many_anomalies and verdict == "stable"),
        normal_basis=basis,
        n_normal_part=int(part.sum()),
        normal_part_judged=bool(judged),
    )
