"""How the score is calibrated after training: the code limit, the per-column weights, the
second model's cut and input scaling, and the one factor that keeps a pair of models' score in
the loss's units.

Pure numpy (scipy for one quantile): every function takes arrays or a scoring callable and
returns plain values, and ``AnomalyDetector`` stores what they return as JSON
(``score_calibration_``). The settings these algorithms use are in ``aecore.model.defaults``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from aecore.model.defaults import (
    CODE_LIMIT_SHARE,
    MAX_WEIGHT_RATIO,
    SECOND_MODEL_SHARE,
    SECOND_MODEL_SPREAD,
)

CALIBRATION_ROWS = 50_000


def feature_weights(errors: np.ndarray) -> np.ndarray:
    """One weight per column, averaging 1, inversely proportional to the column's typical (median)
    squared error over the given rows (the training rows).

    The plain MSE treats every column's error alike, as if all were rebuilt equally well; a column
    the model rebuilds closely (e.g. one determined by the others) should count more when it is
    off, a naturally noisy one less. The median ignores a contaminated minority of rows; no
    column weighs more than ``MAX_WEIGHT_RATIO`` times the median column, so a column that is
    almost always rebuilt exactly (a rare 0/1 flag) cannot dominate the score.
    """
    errors = np.asarray(errors, dtype=np.float64)
    if errors.ndim != 2 or errors.shape[1] == 0:
        return np.ones(errors.shape[-1] if errors.ndim else 0)
    if len(errors) == 0:
        return np.ones(errors.shape[1])
    typical = np.median(errors, axis=0)
    floor = float(np.median(typical)) / MAX_WEIGHT_RATIO
    if not floor > 0:
        positive = typical[typical > 0]
        floor = float(positive.min()) if positive.size else 1.0
    weights = 1.0 / np.maximum(typical, floor)
    return weights / weights.mean()


def code_limit(codes: np.ndarray, share: float = CODE_LIMIT_SHARE) -> dict | None:
    """The region of typical codes: centre, precision matrix and Mahalanobis radius.

    Decoding a code pulled back inside this radius means a row that is unusual along the data's
    main directions (not only off them) cannot be rebuilt and gets a high error. The radius is the
    one holding ``share`` of Gaussian codes, scaled from the median distance so that a minority of
    anomalies among the training rows barely moves it. ``None`` when the codes cannot define one.
    """
    from scipy.stats import chi2

    if not 0 < share < 1:
        raise ValueError(f"The code limit share must be between 0 and 1, got {share}.")
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or len(codes) < codes.shape[1] + 2 or not np.isfinite(codes).all():
        return None
    k = codes.shape[1]
    center = codes.mean(axis=0)
    covariance = np.atleast_2d(np.cov(codes, rowvar=False))
    ridge = 1e-6 * max(float(np.trace(covariance)) / k, 1e-12)
    precision = np.linalg.pinv(covariance + ridge * np.eye(k))
    diff = codes - center
    distance2 = np.einsum("ij,jk,ik->i", diff, precision, diff)
    radius2 = float(np.median(distance2)) * chi2.ppf(share, k) / chi2.ppf(0.5, k)
    if not (np.isfinite(radius2) and radius2 > 0):
        return None
    return {
        "center": center.tolist(),
        "precision": precision.tolist(),
        "radius": math.sqrt(radius2),
    }


def second_model_cut(
    scores: np.ndarray, share: float = SECOND_MODEL_SHARE, spread: float = SECOND_MODEL_SPREAD
) -> float:
    """The score above which the second model leaves a training row out: rows that stand out
    from the bulk, more than ``spread`` robust standard deviations (1.4826 x the median absolute
    deviation) above the median of the log scores, and never more than ``share`` of them.

    Hidden anomalies stand out, so they are left out; when every training row is normal, few
    rows pass that bar and the second model keeps the rare but normal ones, which a fixed share
    would drop (they then scored high with the second model and raised false alarms).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return math.inf
    logs = np.log(np.maximum(scores, np.finfo(np.float64).tiny))
    median = float(np.median(logs))
    spread_cut = math.exp(min(median + spread * 1.4826 * float(np.median(np.abs(logs - median))),
                              700.0))  # fmt: skip
    return float(max(np.quantile(scores, 1.0 - share), spread_cut))


# A scoring callable: (row positions, calibration settings or None, whether to return codes)
# -> an object with ``feature_errors`` (rows, input columns) and ``latent``.
ScoreRows = Callable[[np.ndarray, "dict | None", bool], object]


def calibrate(
    score_rows: ScoreRows,
    split,
    n_encoded: int,
    *,
    code_limit_share: float | None,
    normalise: bool,
    window: int = 1,
    seed: int = 0,
) -> dict | None:
    """The code limit from the training rows' codes and the column weights from the training
    rows' errors of the limited reconstruction (the one that is scored), then one scale so that
    the held-out rows' mean score equals their plain MSE (the validation loss): the score keeps
    the loss's units. Held-out rows are left to the threshold alone. None when neither a code
    limit nor weights apply (the plain MSE)."""
    if code_limit_share is None and not normalise:
        return None
    calibration: dict = {"feature_weights": None, "code_limit": None}

    def scores(rows, limited, latent=False):
        settings = {"code_limit": calibration["code_limit"]} if limited else None
        return score_rows(rows, settings, latent)

    held = split.validation if len(split.validation) else split.train
    plain = scores(held, False).feature_errors
    plain_mse = float(np.mean(plain.sum(axis=1))) / n_encoded
    train = split.train
    if window == 1 and len(train) > CALIBRATION_ROWS:
        pick = np.random.default_rng(seed).choice(len(train), CALIBRATION_ROWS, replace=False)
        train = np.sort(train[pick])
    if code_limit_share is not None:
        codes = scores(train, False, latent=True).latent
        calibration["code_limit"] = code_limit(codes, code_limit_share)
    limited = calibration["code_limit"] is not None
    if normalise:
        weights = feature_weights(scores(train, limited).feature_errors)
    else:
        weights = np.ones(plain.shape[1])
    held_errors = scores(held, True).feature_errors if limited else plain
    weighted_mse = float(np.mean((held_errors * weights).sum(axis=1))) / n_encoded
    if weighted_mse > 0 and plain_mse > 0 and np.isfinite(weighted_mse / plain_mse):
        weights = weights * (plain_mse / weighted_mse)
    calibration["feature_weights"] = [float(w) for w in weights]
    return calibration


def input_rescaling(preprocessor, x_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per encoded column, (scale, shift) taking the first model's inputs to inputs scaled with
    ``x_rows``' own statistics (same imputation and log transforms; numeric columns only,
    one-hot columns unchanged): the second model's own input scaling."""
    scale = np.ones(x_rows.shape[1], dtype=np.float32)
    shift = np.zeros(x_rows.shape[1], dtype=np.float32)
    for j, column in enumerate(preprocessor.numeric_):
        values = x_rows[:, j].astype(np.float64) * column["scale"] + column["center"]
        center, spread = preprocessor.center_scale(values)
        scale[j] = column["scale"] / spread
        shift[j] = (column["center"] - center) / spread
    return scale, shift


def second_input_scaling(second: dict) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale, shift) per encoded column from the second model's stored calibration."""
    if second.get("input_scale") is None:
        return None
    return (
        np.asarray(second["input_scale"], dtype=np.float32),
        np.asarray(second["input_shift"], dtype=np.float32),
    )


def pair_rescaled(calibration: dict, plain_errors, paired_errors, n_inputs: int) -> dict | None:
    """``calibration`` (of a pair of models) with one factor on both models' column weights so
    that held-out rows score their plain MSE on average again (as with one model): the score
    keeps the loss's units, and the ranking (the two models' relative weight) is unchanged.
    None when the factor is undefined (nothing to change)."""
    target, current = float(np.mean(plain_errors)), float(np.mean(paired_errors))
    if not (target > 0 and current > 0 and np.isfinite(target / current)):
        return None
    factor = target / current
    calibration = dict(calibration)
    second = dict(calibration["second"])
    for settings in (calibration, second):
        weights = settings.get("feature_weights") or [1.0] * n_inputs
        settings["feature_weights"] = [float(w) * factor for w in weights]
    calibration["second"] = second
    return calibration
