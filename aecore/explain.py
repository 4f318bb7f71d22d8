"""Why a row was flagged: which features carry its reconstruction error."""

from __future__ import annotations

import numpy as np
import pandas as pd


def top_features(feature_errors: pd.DataFrame, k: int = 3) -> pd.DataFrame:
    """The ``k`` features with the largest error per row, and each one's share of the row's
    total feature error. Columns: ``top1_feature, top1_share, ..., topk_feature, topk_share``.
    Vectorised: one partial sort over the whole matrix, no loop per row."""
    values = feature_errors.to_numpy(dtype=np.float32, copy=False)
    names = np.asarray(feature_errors.columns, dtype=object)
    k = int(min(k, values.shape[1]))
    if k == 0 or len(values) == 0:
        return pd.DataFrame(index=feature_errors.index)
    n_columns = values.shape[1]
    if n_columns > k:  # the k largest, without a negated copy of the matrix
        part = np.argpartition(values, n_columns - k, axis=1)[:, n_columns - k :]
    else:
        part = np.broadcast_to(np.arange(k), (len(values), k))
    picked = np.take_along_axis(values, part, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    index = np.take_along_axis(part, order, axis=1)
    top = np.take_along_axis(values, index, axis=1)
    total = values.sum(axis=1, keepdims=True)
    share = np.divide(top, total, out=np.zeros_like(top), where=total > 0)
    columns = {}
    categories = pd.Index(names, dtype=object)
    unique = categories.is_unique
    for j in range(k):
        # Categorical: one code per row instead of one Python string object per row.
        columns[f"top{j + 1}_feature"] = (
            pd.Categorical.from_codes(index[:, j], categories=categories)
            if unique
            else names[index[:, j]]
        )
        columns[f"top{j + 1}_share"] = share[:, j]
    return pd.DataFrame(columns, index=feature_errors.index)


def mean_feature_errors(feature_errors: pd.DataFrame, rows=None) -> pd.Series:
    """Mean error per feature over ``rows`` (a boolean mask or index; all rows if None), largest
    first: where the errors of, say, all flagged rows concentrate."""
    subset = feature_errors if rows is None else feature_errors.loc[rows]
    if isinstance(rows, np.ndarray) and rows.dtype == bool:
        subset = feature_errors[rows]
    return subset.mean(axis=0).sort_values(ascending=False).rename("mean_error")


def error_shares(feature_errors: pd.DataFrame) -> pd.DataFrame:
    """Each feature's share of its row's total error (rows sum to 1)."""
    total = feature_errors.sum(axis=1).replace(0, np.nan)
    return feature_errors.div(total, axis=0).fillna(0.0)
