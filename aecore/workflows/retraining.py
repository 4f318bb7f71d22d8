"""Retraining a model on a new batch: only its rows believed normal are learnt from, from scratch
or by fine-tuning (``AnomalyDetector.fine_tune``); the new version is saved with a record of
how it was made.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aecore.detector import AnomalyDetector, as_frame
from aecore.errors import AecoreError
from aecore.evaluation.drift import MIN_REFERENCE_ERRORS, batch_labels, judge_normal_part
from aecore.io import inference

MIN_RETRAIN_ROWS = 30
RETRAIN_MODES = ("scratch", "fine_tune")


def recent_rows(
    frame: pd.DataFrame, window: int | str | pd.Timedelta | None, time_column: str | None
) -> pd.DataFrame:
    """The rows of ``frame`` inside ``window``: None = all; an int = the last that many rows
    (in time order when there is a time column); a duration ("7D", "12h") = the rows within
    that span before the latest time."""
    if window is None:
        return frame
    times = None
    if time_column is not None and time_column in frame:
        times = inference.parse_times(frame[time_column])
    if isinstance(window, (int, np.integer)) and not isinstance(window, bool):
        if window < 1:
            raise AecoreError(f"The window must be at least one row, got {window}.")
        if times is not None and times.notna().any():
            order = np.argsort(times.to_numpy(dtype="datetime64[ns]"), kind="stable")
            return frame.iloc[np.sort(order[-int(window) :])]
        return frame.iloc[-int(window) :]
    try:
        span = pd.Timedelta(window)
    except (TypeError, ValueError) as error:
        raise AecoreError(
            f"Could not read the window {window!r}: give a number of rows or a duration "
            "such as '7D' or '12h'."
        ) from error
    if times is None or times.isna().all():
        raise AecoreError("A window given as a duration needs a time column.")
    if span <= pd.Timedelta(0):
        raise AecoreError("The window's duration must be positive.")
    keep = (times > times.max() - span).to_numpy()
    return frame.loc[keep]


RULE_TEXT = {
    "labelled": "labelled normal",
    "threshold": "at or below the model's threshold",
    "carried_threshold": "at or below the threshold carried over to the batch's changed "
    "errors, since the old one flags much of its new normal",
    "feedback": "without the rows the analyst confirmed as anomalies and the rows like them",
}


def _carried_threshold(errors: np.ndarray, reference: np.ndarray, threshold: float) -> float:
    """The threshold moved to a batch whose normal errors changed: as many robust standard
    deviations (median absolute deviation, log errors) above the batch's median as the
    threshold is above the reference median, and at most the batch's 99th percentile (so its
    most unusual rows are always left out)."""
    def centre_spread(values: np.ndarray) -> tuple[float, float]:
        logs = np.log(np.maximum(values, 1e-12))
        centre = float(np.median(logs))
        return centre, 1.4826 * float(np.median(np.abs(logs - centre)))

    ref_centre, ref_spread = centre_spread(reference)
    new_centre, new_spread = centre_spread(errors)
    top = float(np.quantile(errors, 0.99))
    if not (ref_spread > 0 and new_spread > 0):
        return top
    z = (math.log(max(threshold, 1e-12)) - ref_centre) / ref_spread
    return min(top, float(math.exp(new_centre + z * new_spread)))


def believed_normal(detector: AnomalyDetector, rows: pd.DataFrame) -> tuple[np.ndarray, str]:
    """Which of ``rows`` retraining may learn from: (boolean mask, rule).

    Rule "labelled": the batch has the model's label column with enough rows labelled normal;
    those are used (a row with an empty label is used when it is at or below the threshold).
    Rule "threshold": no labels; the rows at or below the model's current threshold. Rule
    "carried_threshold": no labels and the batch's normal part has drifted (``monitor`` would
    say "drifted" on its errors), so the old threshold would leave out much of the new normal:
    the rows at or below the threshold carried over to the batch's errors
    (``_carried_threshold``).
    """
    errors = np.asarray(detector.reconstruction_error(rows), dtype=np.float64)
    threshold = float(detector.threshold_)
    below = errors <= threshold
    labels = batch_labels(detector, rows)
    if labels is not None and (labels == 0).sum() >= MIN_RETRAIN_ROWS:
        return (labels == 0) | ((labels < 0) & below), "labelled"
    reference = np.asarray(getattr(detector, "reference_errors_", []), dtype=np.float64)
    reference = reference[np.isfinite(reference)]
    if reference.size < MIN_REFERENCE_ERRORS:
        return below, "threshold"
    judgement = judge_normal_part(errors, reference, None)
    if judgement["judged"] and max(judgement["grades"].values()) < 2:
        return below, "threshold"
    return errors <= _carried_threshold(errors, reference, threshold), "carried_threshold"


def retrain(
    detector: AnomalyDetector,
    frame: pd.DataFrame,
    *,
    mode: str = "scratch",
    window: int | str | pd.Timedelta | None = None,
    epochs: int | None = None,
    learning_rate: float | None = None,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    source: dict | None = None,
) -> AnomalyDetector:
    """A new detector for the new normal; ``detector`` itself is left unchanged.

    Only the rows of the ``window`` believed normal (``believed_normal``: labelled normal, or
    else at or below the current threshold) are learnt from, so a batch full of anomalies does
    not teach the model its anomalies. ``mode="scratch"`` fits a fresh detector with the same
    settings and columns on them (rows labelled anomalous stay in for a label-based threshold
    and the metrics, as ``fit`` uses them). ``mode="fine_tune"`` keeps the preprocessing and
    continues training a copy of the network on them at a tenth of the original learning rate
    (or ``learning_rate``). Either way the threshold is derived again with the detector's
    threshold method, and the new detector records ``retraining_`` (how it was made: mode,
    rows used and left out, the rule, and ``source``: optional "model", "version", "created",
    "batch" naming what it was retrained from and on) and ``reference_feature_errors_``.
    Without labels the held-out rows stop at the old threshold, so the new threshold tends to
    be a little lower than the old one.
    """
    detector.check_fitted()
    if mode not in RETRAIN_MODES:
        raise AecoreError(f"Unknown retraining mode {mode!r}; choose 'scratch' or 'fine_tune'.")
    rows = recent_rows(as_frame(frame), window, detector.roles_.time)
    missing = [c for c in detector.roles_.inputs if c not in rows.columns]
    if missing:
        raise AecoreError(
            "The new data lacks the model's columns: " + ", ".join(map(repr, missing)) + "."
        )
    if len(rows) < MIN_RETRAIN_ROWS:
        raise AecoreError(
            f"Only {len(rows)} rows in the chosen window; at least {MIN_RETRAIN_ROWS} are "
            "needed to retrain."
        )
    normal, rule = believed_normal(detector, rows)
    if normal.sum() < MIN_RETRAIN_ROWS:
        raise AecoreError(
            f"Only {int(normal.sum())} of the {len(rows):,} rows in the chosen window are "
            f"believed normal ({RULE_TEXT[rule]}); at least {MIN_RETRAIN_ROWS} are needed to "
            "retrain."
        )
    if mode == "scratch":
        params = detector.get_params(deep=False)
        params["roles"] = detector.roles_
        if detector.roles_.label is not None and detector.roles_.label not in rows:
            params["roles"] = dataclasses.replace(detector.roles_, label=None)  # unlabelled batch
        if epochs is not None:
            params["epochs"] = int(epochs)
        if learning_rate is not None:
            params["learning_rate"] = float(learning_rate)
        keep = normal
        if rule == "labelled":  # fit trains on the normal rows and uses the anomalous ones
            keep = normal | (batch_labels(detector, rows) == 1)
        new = AnomalyDetector(**params).fit(
            rows.iloc[np.flatnonzero(keep)], progress=progress, should_stop=should_stop
        )
    else:
        # A detector sharing the fitted state; fine_tune trains copies of the networks, so
        # ``detector`` is left unchanged.
        new = AnomalyDetector.from_state(detector.get_state(), detector.network()).fine_tune(
            rows,
            normal=normal,
            epochs=epochs,
            learning_rate=learning_rate,
            progress=progress,
            should_stop=should_stop,
        )
    source = dict(source or {})
    # Trained without labels, a scratch model still reads them in later batches that have them.
    new.record_retraining({
        "mode": mode,
        "rows": int(normal.sum()),
        "left_out": int(len(rows) - normal.sum()),
        "window_rows": int(len(rows)),
        "rule": rule,
        "window": None if window is None else str(window),
        "previous_threshold": float(detector.threshold_),
        "threshold": float(new.threshold_),
        **{
            f"from_{key}" if key != "batch" else key: str(source[key])
            for key in ("model", "version", "created", "batch")
            if source.get(key) is not None
        },
    }, label_column=detector.roles_.label)
    return new


def _when(created: Any) -> str:
    """"2026-11-23T15:43:19+00:00" as "2026-11-23 15:43 UTC" (anything else as given)."""
    try:
        stamp = pd.Timestamp(str(created))
    except (TypeError, ValueError):
        return str(created)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%d %H:%M") + (" UTC" if stamp.tzinfo is not None else "")


def describe_retraining(retraining: dict) -> str:
    """One sentence on how a model was retrained, from its ``retraining_`` record."""
    how = {"fine_tune": "Fine-tuned", "feedback": "Retrained with the analyst's reviews"}.get(
        retraining.get("mode"), "Retrained from scratch"
    )
    origin = ""
    if retraining.get("from_model"):
        origin = f" from {retraining['from_model']}"
        if retraining.get("from_created"):
            origin += f" (the version saved {_when(retraining['from_created'])})"
        elif retraining.get("from_version"):
            origin += f" (version {retraining['from_version']})"
    batch = f" of {retraining['batch']}" if retraining.get("batch") else ""
    window = f" (window: {retraining['window']})" if retraining.get("window") else ""
    rows = int(retraining.get("rows", 0))
    rule = retraining.get("rule")
    if rule not in RULE_TEXT:  # recorded before retraining kept to normal rows
        return f"{how}{origin} on {rows:,} recent rows{batch}{window}."
    left_out = int(retraining.get("left_out", 0))
    return (
        f"{how}{origin} on {rows:,} rows{batch}{window}"
        + (", normal rows only " if rule != "feedback" else " ")
        + f"({RULE_TEXT[rule]}); {left_out:,} row{'s' if left_out != 1 else ''} left out."
    )


def describe_training(meta: dict) -> str:
    """How a saved detector was trained, in one sentence, from its meta.json (``persistence.
    read_meta``): the same sentence on every page (Models, Drift) and in the CLI."""
    retraining = meta.get("retraining")
    sizes = meta.get("split_sizes") or {}
    if isinstance(retraining, dict) and "rows" in retraining:
        sentence = describe_retraining(retraining)
        if sizes.get("train") and sizes.get("validation"):
            sentence += (
                f" Of them, {int(sizes['train']):,} trained and {int(sizes['validation']):,} "
                "were held out to set the threshold."
            )
        return sentence
    rows = int(meta.get("n_train_rows") or 0)
    scope = (
        "rows labelled normal only"
        if meta.get("trained_on") == "normal"
        else "every row; no labels used"
    )
    held = sizes.get("validation")
    extra = f"; {int(held):,} more held out to set the threshold" if held else ""
    return f"Trained on {rows:,} rows ({scope}){extra}."


def retrain_saved(
    name: str,
    frame: pd.DataFrame,
    *,
    mode: str = "scratch",
    window: int | str | pd.Timedelta | None = None,
    models_dir: str | os.PathLike | None = None,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    batch_name: str | None = None,
) -> tuple[AnomalyDetector, Path]:
    """Load bundle ``name``, retrain it on ``frame`` (only its rows believed normal) and save
    the result as its new version (the old one stays listed in ``store.list_versions``).
    The new meta.json records how (``retraining``: from which version, on how many rows of
    ``batch_name``, how many left out) and its description is ``describe_training``'s
    sentence. Returns (detector, folder)."""
    from aecore import store

    detector = AnomalyDetector.load(name, models_dir=models_dir)
    meta = store.read_meta(name, models_dir=models_dir)
    source = {
        "model": name,
        "version": meta.get("version"),
        "created": meta.get("created"),
        "batch": batch_name,
    }
    new = retrain(
        detector,
        frame,
        mode=mode,
        window=window,
        progress=progress,
        should_stop=should_stop,
        source=source,
    )
    description = describe_retraining(new.retraining_)
    path = store.save(new, name, models_dir=models_dir, description=description)
    return new, path
