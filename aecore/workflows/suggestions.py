"""Which rows to review next: the rows whose verdict would teach the most (near the threshold,
where the model is least sure, and not all alike). Used by the Review page and
``aecore.workflows.feedback``."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aecore.errors import AecoreError
from aecore.evaluation import thresholds

POOL_PER_SUGGESTION = 30
MIN_POOL = 600


@dataclass
class Suggestions:
    """Rows to review next (positions, best first) and why each was chosen."""

    positions: np.ndarray
    reasons: list[str]

    def __len__(self) -> int:
        return int(len(self.positions))


def suggest_rows(
    errors: Any,
    threshold: float,
    features: Callable[[np.ndarray], np.ndarray] | np.ndarray,
    *,
    reviewed: Any = (),
    n: int = 10,
) -> Suggestions:
    """The ``n`` rows whose verdict would teach the most, best first.

    A row's *uncertainty* is ``exp(-|log error - log threshold| / spread)``, ``spread`` being the
    interquartile range of the log errors: 1 at the threshold, smaller away from it on either
    side. The pool is the most uncertain ``max(30 n, 600)`` rows not reviewed; from it rows are
    taken one at a time, each maximising uncertainty x novelty, where novelty is the distance
    (in model units, ``features(positions)``: e.g. ``detector.transform_inputs``) to the nearest
    row already chosen or reviewed, relative to the pool's typical distance, capped at 1. So the
    suggestions straddle the threshold and cover different kinds of rows instead of repeating
    the top of the ranking."""
    errors = thresholds.as_errors(errors).astype(np.float64)
    threshold = thresholds.check_threshold(threshold)
    n = int(n)
    if n < 1:
        raise AecoreError("Ask for at least one suggestion.")
    reviewed = np.unique(np.asarray(list(reviewed) if not isinstance(reviewed, np.ndarray)
                                    else reviewed, dtype=np.int64))  # fmt: skip
    floor = max(float(np.min(errors[errors > 0])) if (errors > 0).any() else 1e-12, 1e-300)
    logs = np.log(np.maximum(errors, floor))
    centre = math.log(max(threshold, floor))
    q75, q25 = np.quantile(logs, [0.75, 0.25])
    spread = float(q75 - q25) or float(np.std(logs)) or 1.0
    uncertainty = np.exp(-np.abs(logs - centre) / spread)
    open_rows = np.ones(len(errors), dtype=bool)
    open_rows[reviewed[(reviewed >= 0) & (reviewed < len(errors))]] = False
    candidates = np.flatnonzero(open_rows)
    if len(candidates) == 0:
        return Suggestions(np.zeros(0, dtype=np.int64), [])
    size = min(len(candidates), max(POOL_PER_SUGGESTION * n, MIN_POOL))
    order = np.argsort(-uncertainty[candidates], kind="stable")
    pool = candidates[order[:size]]
    get = features if callable(features) else (lambda rows: np.asarray(features)[rows])
    known = reviewed[(reviewed >= 0) & (reviewed < len(errors))]
    # Reviewed rows count as chosen: the next verdicts should teach something new.
    anchors = known[np.argsort(-uncertainty[known])][:2_000] if len(known) else known
    values = np.asarray(get(np.concatenate([pool, anchors])), dtype=np.float64)
    pool_x, anchor_x = values[: len(pool)], values[len(pool):]
    sample = pool_x[np.random.default_rng(0).choice(len(pool_x), min(len(pool_x), 300),
                                                    replace=False)]  # fmt: skip
    upper = np.triu_indices(len(sample), 1)
    typical = float(np.median(pairwise_distances(sample, sample)[upper])) if len(sample) > 1 \
        else 1.0  # fmt: skip
    typical = typical if typical > 0 else 1.0
    nearest = np.full(len(pool), np.inf)
    if len(anchor_x):
        nearest = pairwise_distances(pool_x, anchor_x).min(axis=1)
    chosen: list[int] = []
    reasons: list[str] = []
    taken = np.zeros(len(pool), dtype=bool)
    for _ in range(min(n, len(pool))):
        novelty = np.minimum(1.0, nearest / typical)
        value = uncertainty[pool] * np.where(np.isfinite(novelty), novelty, 1.0)
        value[taken] = -1.0
        k = int(np.argmax(value))
        taken[k] = True
        row = int(pool[k])
        chosen.append(row)
        reasons.append(_reason(errors[row], threshold, nearest[k], typical))
        nearest = np.minimum(nearest, pairwise_distances(pool_x, pool_x[k : k + 1])[:, 0])
    return Suggestions(np.asarray(chosen, dtype=np.int64), reasons)


def pairwise_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of ``a`` and those of ``b``."""
    squared = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.maximum(squared, 0.0))


def _reason(error: float, threshold: float, nearest: float, typical: float) -> str:
    ratio = error / threshold if threshold > 0 else math.inf
    side = (
        f"{ratio:.2g}x the threshold (flagged)" if error > threshold
        else f"{ratio:.2g}x the threshold (not flagged)"
    )  # fmt: skip
    if not np.isfinite(nearest):
        kind = "the first of its kind"
    elif nearest >= typical:
        kind = "unlike the rows reviewed or suggested before it"
    else:
        kind = f"{nearest / typical:.0%} as far from the nearest reviewed or suggested row as " \
            "rows typically are"  # fmt: skip
    return f"error {side}; {kind}"
