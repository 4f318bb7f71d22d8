"""The defaults a user who changes nothing gets: code size, layer widths, training schedule,
and how the score is calibrated (per-feature weights, code limit, the second model's share).

Chosen from the data's size and width by rules meant to carry to unseen data (see
``bench/quality.py`` for how they are judged), kept in one place so they are easy to explain.
"""

from __future__ import annotations

import math

import numpy as np

CODE_LIMIT_SHARE = 0.75
# Without labels, a second autoencoder learns the training rows less those the first scores far
# above the rest (more than SECOND_MODEL_SPREAD robust standard deviations above the median log
# score), at most this share of them; the score is the mean of both (AnomalyDetector.second_model).
SECOND_MODEL_SHARE = 0.1
SECOND_MODEL_SPREAD = 3.0
MAX_WEIGHT_RATIO = 10.0
MAX_STEPS = 30_000
MAX_ROWS_SEEN = 2_000_000
MIN_EPOCHS, MAX_EPOCHS = 15, 200
# Training rows up to which batches hold 64 rows, then 256 (up to LARGE_ROWS), then 1,024.
SMALL_ROWS, LARGE_ROWS = 20_000, 200_000


def default_code_size(x: np.ndarray, *, variance: float = 0.8, seed: int = 0) -> int:
    """The number of principal components explaining ``variance`` of the (standardised) training
    rows, kept between 2 and half the width: an estimate of the data's intrinsic dimension.

    80% rather than more: the code holds the data's main structure (and the code limit watches
    it), while the finer variation is left to the per-column errors, where it is weighed by how
    well each column is usually rebuilt; a nonlinear code also needs fewer dimensions than PCA.
    """
    n_inputs = x.shape[1]
    upper = int(max(1, min(32, n_inputs // 2)))
    if n_inputs <= 2:
        return 1
    sample = x
    if len(x) > 10_000:
        sample = x[np.random.default_rng(seed).choice(len(x), 10_000, replace=False)]
    sample = sample - sample.mean(axis=0)
    singular = np.linalg.svd(sample.astype(np.float64), compute_uv=False)
    explained = np.cumsum(singular**2) / max(float(np.sum(singular**2)), 1e-12)
    k = int(np.searchsorted(explained, variance) + 1)
    return int(np.clip(k, min(2, upper), upper))


def default_hidden_sizes(n_inputs: int, code_size: int) -> list[int]:
    """Two hidden layers narrowing geometrically from about 2x the input width to the code."""
    first = int(min(128, max(16, 2 * n_inputs)))
    second = int(max(code_size + 1, round(math.sqrt(first * code_size))))
    return [first, second] if second < first else [first]


def default_training(n_rows: int, n_inputs: int, models: int = 1) -> dict:
    """Epochs, batch size, learning rate and patience suited to the data's size: ``n_rows`` is
    the number of rows that train (after the split; the normal ones only when only normal rows
    train), as ``AnomalyDetector.planned_schedule`` counts them.

    Batches of 64 rows up to 20,000 rows; larger data get larger batches (with a learning rate
    raised with the square root of the batch size) so an epoch costs few optimizer steps. Early
    stopping (patience 5) ends training once the validation loss stops improving. The epoch cap
    only bounds the time: at most about 30,000 optimizer steps and 2 million rows seen (25
    epochs over 80,000 training rows), between 15 and 200 epochs. Small data sets stop early long
    before it. On large ones, the epochs past it still lower the validation loss a little (0.059
    to 0.046 at 100,000 rows in ``bench/speed.py``) but did not change which rows score high
    (the same ROC-AUC on planted anomalies), for two to three times the time.

    ``models`` networks trained one after the other (the detector's second model) share that
    budget: each gets its share of the steps and rows, and at least 15 / ``models`` epochs. Small
    data sets still stop early long before the cap (at most 120 to 200 epochs per model under
    10,000 rows), so only large ones train each model for fewer epochs than alone.
    """
    if n_rows <= SMALL_ROWS:
        batch_size = 64
    elif n_rows <= LARGE_ROWS:
        batch_size = 256
    else:
        batch_size = 1024
    learning_rate = min(4e-3, 2e-3 * math.sqrt(batch_size / 64))
    steps_per_epoch = max(1, n_rows // batch_size)
    models = max(1, int(models))
    cap = min(MAX_STEPS // models // steps_per_epoch, MAX_ROWS_SEEN // models // max(1, n_rows))
    epochs = int(np.clip(cap, math.ceil(MIN_EPOCHS / models), MAX_EPOCHS))
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": float(learning_rate),
        "patience": 5,
    }


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
