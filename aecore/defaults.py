"""The defaults a user who changes nothing gets: code size, layer widths, training schedule.

Chosen from the data's size and width by rules meant to carry to unseen data (see
``bench/quality.py`` for how they are judged), kept in one place so they are easy to explain.
"""

from __future__ import annotations

import math

import numpy as np


def default_code_size(x: np.ndarray, *, variance: float = 0.9, seed: int = 0) -> int:
    """The number of principal components explaining ``variance`` of the (standardised) training
    rows: an estimate of the data's intrinsic dimension, kept between 2 and half the width."""
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


def default_training(n_rows: int, n_inputs: int) -> dict:
    """Epochs, batch size, learning rate and patience suited to the data's size.

    Small data: small batches and many epochs. Large data: large batches (with a learning rate
    raised with the square root of the batch size) so an epoch costs few optimizer steps, and
    fewer epochs, since each one already sees many rows.
    """
    if n_rows <= 2_000:
        batch_size = 32
    elif n_rows <= 20_000:
        batch_size = 64
    elif n_rows <= 200_000:
        batch_size = 256
    else:
        batch_size = 1024
    learning_rate = min(4e-3, 1e-3 * math.sqrt(batch_size / 32))
    steps_per_epoch = max(1, n_rows // batch_size)
    epochs = int(np.clip(30_000 // steps_per_epoch, 15, 100))
    return {
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": float(learning_rate),
        "patience": 5,
    }
