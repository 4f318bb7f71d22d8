"""The defaults a user who changes nothing gets: code size, layer widths, training schedule,
and the calibration's settings (the code limit's share, the second model's share and spread;
the calibration algorithms themselves are in ``aecore.model.calibration``).

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
# The memory of prototypes' share of the score when a label column selects the normal rows that
# train (AnomalyDetector.memory); without labels every reconstruction counts the same, since
# hidden anomalies among unlabelled rows can become prototypes (bench/RESULTS.md, thirteenth
# session: 3/4 on known normal rows, the k-NN distance's detection with exact explanations).
MEMORY_SHARE_NORMAL = 0.75
MAX_STEPS = 30_000
MAX_ROWS_SEEN = 960_000  # 2,000,000 until the twelfth session, 1,280,000 in it (default_training)
MIN_EPOCHS, MAX_EPOCHS = 12, 200  # the floor was 15 until the thirteenth session
# Training rows up to which batches hold 128 rows, then 256 (up to LARGE_ROWS), then 1,024.
SMALL_ROWS, LARGE_ROWS = 20_000, 200_000
SMALL_BATCH = 128  # 64 until the tenth session: the same detection for about a third less time


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

    Batches of 128 rows up to 20,000 rows; larger data get larger batches; the learning rate
    is raised with the square root of the batch size (2e-3 at 64 rows), so an epoch costs few
    optimizer steps. 128 rather than 64: the same detection on the benchmark's shared and
    held-out sets (``bench/RESULTS.md``, tenth session) for about a third less time. Early
    stopping (patience 5) ends training once the validation loss stops improving. The epoch cap
    only bounds the time: at most about 30,000 optimizer steps and 960,000 rows seen (12 epochs
    over 80,000 training rows), between 12 and 200 epochs. Early stopping ends most small
    fits before it. On large ones, the epochs past it still lower the validation loss a little
    but do not find the anomalies better (the inlier-memorisation effect: later epochs learn
    the rare rows too). With 100,000 rows and planted anomalies (``bench/RESULTS.md``, twelfth and
    thirteenth sessions): 8 epochs a network instead of 12 gave a higher mean PR-AUC in three of
    four seeded comparisons; 6 instead of 8 gave the same on average over 11 seeds (+0.003); one
    network alone, 12 epochs instead of 16, a higher PR-AUC on all 9 seeds (+0.035 on average),
    each step about a fifth less time.

    ``models`` networks trained one after the other (the detector's second model) share that
    budget: each gets its share of the steps and rows, and at least 12 / ``models`` epochs. Under
    3,000 training rows a model may still run 160 to 200 epochs; at 5,500 (pendigits, unlabelled)
    87, which early stopping usually ends first.
    """
    if n_rows <= SMALL_ROWS:
        batch_size = SMALL_BATCH
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
