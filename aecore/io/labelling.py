"""Label columns read as labels: 1 anomaly, 0 normal, -1 unknown (``binary_labels``), or as
class names (``class_labels``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from aecore.errors import AecoreError

_NORMAL_WORDS = {
    "normal", "benign", "ok", "no", "false", "0", "none", "legit", "legitimate", "clean",
    "nominal", "negative", "background",
}  # fmt: skip


def column_kind(series: pd.Series) -> str:
    """``bool``, ``numeric``, ``datetime``, ``text``, ``bool_text`` (bools and missing) or
    ``other``."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return "text"
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred == "boolean":
            return "bool_text"
        if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
            return "numeric"
        if inferred in ("datetime", "datetime64", "date"):
            return "datetime"
        return "text"
    if pd.api.types.is_string_dtype(dtype):
        return "text"
    return "other"


def format_value(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def binary_labels(values: Any) -> np.ndarray:
    """1 = anomaly, 0 = normal, -1 = unknown (missing or empty cell), as int8.

    Numbers: 0 is normal, anything else an anomaly. Booleans: True is an anomaly. Text: words
    such as "normal" or "benign" are normal; without any, the most frequent value is normal.
    """
    series, missing = _label_series(values)
    labels = np.full(len(series), -1, dtype=np.int8)
    present = series[~missing]
    if present.empty:
        return labels
    labels[~missing] = np.where(_normal_mask(present), 0, 1)
    return labels


def class_labels(values: Any) -> tuple[np.ndarray, list[str]]:
    """Integer class codes (-1 = unknown) and class names, normal classes first.

    Classes are then ordered by how often they occur, so codes are stable for the same data.
    """
    series, missing = _label_series(values)
    codes = np.full(len(series), -1, dtype=np.int32)
    present = series[~missing]
    if present.empty:
        return codes, []
    names = _label_names(present)
    normal = _normal_mask(present)
    frequency = names.value_counts()
    first_seen = {name: position for position, name in enumerate(pd.unique(names))}
    normal_names = set(names[normal])
    ordered = sorted(
        frequency.index,
        key=lambda name: (name not in normal_names, -frequency[name], first_seen[name]),
    )
    lookup = {name: code for code, name in enumerate(ordered)}
    codes[~missing] = names.map(lookup).to_numpy(dtype=np.int32)
    return codes, [str(name) for name in ordered]


def _label_series(values: Any) -> tuple[pd.Series, np.ndarray]:
    if isinstance(values, pd.DataFrame):
        raise AecoreError("Labels must be one column, not a table.")
    if isinstance(values, pd.Series):
        series = values.reset_index(drop=True)
    else:
        array = values if isinstance(values, np.ndarray) else list(values)
        series = pd.Series(array)
    missing = series.isna().to_numpy()
    if column_kind(series) in ("text", "bool_text", "other"):
        blank = series.astype(str).str.strip().eq("").to_numpy()
        missing = missing | blank
    return series, missing


def _label_mode(present: pd.Series) -> str:
    """``bool``, ``numeric`` or ``text``: how the non-missing label values are read."""
    kind = column_kind(present)
    if kind in ("bool", "bool_text"):
        return "bool"
    if kind == "numeric":
        return "numeric"
    if pd.to_numeric(present, errors="coerce").notna().all():
        return "numeric"
    return "text"


def _normal_mask(present: pd.Series) -> np.ndarray:
    mode = _label_mode(present)
    if mode == "bool":
        return ~present.astype(bool).to_numpy()
    if mode == "numeric":
        return (pd.to_numeric(present, errors="coerce") == 0).to_numpy()
    text = present.astype(str).str.strip()
    normal = text.str.lower().isin(_NORMAL_WORDS).to_numpy()
    if not normal.any():
        normal = (text == text.value_counts(sort=False).idxmax()).to_numpy()
    return normal


def _label_names(present: pd.Series) -> pd.Series:
    mode = _label_mode(present)
    if mode == "bool":
        return present.astype(bool).map(str)
    if mode == "numeric":
        return pd.to_numeric(present, errors="coerce").map(format_value)
    return present.astype(str).str.strip()
