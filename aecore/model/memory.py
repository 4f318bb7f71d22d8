"""A memory of normal prototypes: the second reconstruction in the detector's score.

An autoencoder generalises: trained on normal rows, it often rebuilds well a row unlike any of
them (a class of its own, or a row between two modes of the normal data), because that row lies
near the subspace the network learned. A distance to the nearest normal rows (k-NN) sees such a
row at once, but is not a reconstruction and explains nothing per feature.

The memory carries that strength into a reconstruction error. It holds up to
``MAX_PROTOTYPES`` prototypes: k-means centres of the training rows, in the model's input units,
each weighed as the autoencoder's errors are. A row's memory reconstruction is its nearest
prototype, and its memory error is the (weighted) squared difference per column, so it adds up
exactly, column by column, like the autoencoder's. The detector's score is the mean of the
autoencoder's error and the memory error (scaled so that both have the same median on training
rows): a row is abnormal when the network cannot rebuild it, or when it is far from every
prototype of the normal rows. To the analyst: "this row differs from its nearest normal
prototype in ``src_bytes``".

Rows the first model scores far above the rest (``calibration.second_model_cut``) never become
prototypes: unlabelled training rows may hide anomalies. Scoring stays a small matrix product
(rows x prototypes), so a million rows still score in about a second.
"""

from __future__ import annotations

import numpy as np

MAX_PROTOTYPES = 256
ROWS_PER_PROTOTYPE = 4  # at most one prototype per this many training rows
MAX_MEMORY_VALUES = 262_144  # prototypes x encoded columns: the bundle's JSON stays small
MAX_KMEANS_ROWS = 8_000  # k-means (and the memory's scale) on a sample: about 0.3 s on 2 cores
MIN_ROWS = 20


def build_memory(
    rows: np.ndarray,
    column_weights: np.ndarray,
    autoencoder_errors: np.ndarray,
    *,
    seed: int = 0,
) -> dict | None:
    """The memory of ``rows`` (the kept training rows, encoded, in model units):
    ``prototypes`` (k-means centres, in model units), ``scale`` (the factor on the memory error
    that gives it the median of ``autoencoder_errors``, the autoencoder's scores of the same
    rows; the memory error's median is taken on the k-means sample, at most
    ``MAX_KMEANS_ROWS`` of them) and ``n_rows``. ``column_weights`` is one weight per encoded
    column (the autoencoder's column weights, each repeated over its source column's encoded
    columns).
    None when there are too few rows to hold a memory."""
    from sklearn.cluster import KMeans

    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or len(rows) < MIN_ROWS or not np.isfinite(rows).all():
        return None
    n_columns = rows.shape[1]
    weights = np.asarray(column_weights, dtype=np.float64)
    root = np.sqrt(weights)
    n_prototypes = int(
        min(MAX_PROTOTYPES, len(rows) // ROWS_PER_PROTOTYPE, MAX_MEMORY_VALUES // max(n_columns, 1))
    )
    if n_prototypes < 2:
        return None
    sample = rows
    if len(rows) > MAX_KMEANS_ROWS:
        pick = np.random.default_rng(seed).choice(len(rows), MAX_KMEANS_ROWS, replace=False)
        sample = rows[np.sort(pick)]
    kmeans = KMeans(n_clusters=n_prototypes, n_init=1, max_iter=30, random_state=seed)
    kmeans.fit(sample * root)
    prototypes = kmeans.cluster_centers_ / np.where(root > 0, root, 1.0)
    # The memory's typical error, on the same sample (its median hardly moves past a few
    # thousand rows, and the nearest-prototype search over all rows cost 0.5 s at 100,000).
    errors = memory_errors(sample, prototypes, weights).sum(axis=1) / n_columns
    typical = float(np.median(errors))
    target = float(np.median(np.asarray(autoencoder_errors, dtype=np.float64)))
    if not (typical > 0 and np.isfinite(typical) and target > 0 and np.isfinite(target)):
        return None
    return {
        "prototypes": prototypes.astype(np.float32).tolist(),
        "scale": target / typical,
        "n_rows": int(len(rows)),
    }


def nearest_prototypes(
    x: np.ndarray, prototypes: np.ndarray, weights: np.ndarray, batch: int = 65_536
) -> np.ndarray:
    """Each row's nearest prototype (the weighted squared distance), in model units: what
    ``aecore.model.scoring.Scorer`` computes in its compiled pass, in numpy."""
    x = np.asarray(x, dtype=np.float64)
    prototypes = np.asarray(prototypes, dtype=np.float64)
    root = np.sqrt(np.asarray(weights, dtype=np.float64))
    scaled = prototypes * root
    norms = np.sum(scaled**2, axis=1)
    out = np.empty_like(x)
    for start in range(0, len(x), batch):
        part = x[start : start + batch] * root
        distance = norms[None, :] - 2.0 * part @ scaled.T
        out[start : start + batch] = prototypes[np.argmin(distance, axis=1)]
    return out


def memory_errors(x: np.ndarray, prototypes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted squared differences per encoded column between each row and its nearest
    prototype (before the memory's scale)."""
    x = np.asarray(x, dtype=np.float64)
    return (x - nearest_prototypes(x, prototypes, weights)) ** 2 * weights
