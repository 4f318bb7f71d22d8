"""Preprocessing fitted on training rows only, kept as plain JSON-serialisable parameters.

Numeric columns: impute (median) -> optional symmetric log1p -> scale (standard, min-max or
robust). Categorical columns: one-hot over the training categories; a category never seen in
training encodes as all zeros (no crash). A column with more than ``MAX_CATEGORIES`` values in
the training rows keeps its ``MAX_CATEGORIES`` most frequent ones (ties by name) and adds one
``OTHER_CATEGORY`` column for every other value, seen in training or not: the encoding stays
at most 51 columns wide however many values a column holds. Encoded columns of one source
column are contiguous, so per-feature errors add back into their source column with one matrix
product.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from aecore import errors
from aecore.errors import AecoreError
from aecore.io.roles import ColumnRoles

SCALINGS = ("standard", "minmax", "robust")
MISSING_CATEGORY = "(missing)"
OTHER_CATEGORY = "(other)"
MISSING_NAMED = 8  # missing input columns named in the error; beyond, a count
MAX_CATEGORIES = 50
SKEW_FOR_LOG = 2.0
# Hostile numbers. When transforming, a numeric value more than OUT_OF_RANGE of its column's
# training spreads (the scale: standard deviation, range or interquartile range, as the scaling
# says) from the column's centre, after the optional log, enters the model as exactly that many
# spreads; an infinite value too, by its sign. Its squared error (about a million) puts the row
# far above any threshold, and Explain names the column: no score is ever NaN or infinite.
OUT_OF_RANGE = 1_000.0
# In the training rows, an infinite cell or a sentinel is treated as missing (imputed with the
# median; ``Preprocessor.notes_`` says how many per column). A sentinel is a value more than
# SENTINEL_SPREADS times the larger of the column's interquartile range, |median| and 1 from
# its median (3.4e38 or -1e20 among ordinary numbers; a long-tailed column such as byte counts
# keeps its large values). A column where most present cells are such is refused.
SENTINEL_SPREADS = 1e9


def usable_range(col: np.ndarray) -> tuple[float, float]:
    """The (low, high) range of a numeric column's usable training values (``col``: floats,
    NaN = missing, infinities kept): within ``SENTINEL_SPREADS`` times the larger of its
    interquartile range, |median| and 1 of its median. (0, -1), an empty range, when no value
    is finite. Infinite cells and the values outside are treated as missing in training."""
    finite = col[np.isfinite(col)]
    if not finite.size:
        return 0.0, -1.0  # nothing usable
    q1, median, q3 = np.percentile(finite, [25, 50, 75])
    reach = SENTINEL_SPREADS * max(q3 - q1, abs(median), 1.0)
    return float(median - reach), float(median + reach)


def _skewness(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    if values.size < 3:
        return 0.0
    std = values.std()
    if std == 0:
        return 0.0
    return float(np.mean(((values - values.mean()) / std) ** 3))


def _signed_log1p(x: np.ndarray) -> np.ndarray:
    """log1p for non-negative values, mirrored for negative ones so that no value gives NaN."""
    return np.sign(x) * np.log1p(np.abs(x))


def _signed_expm1(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.expm1(np.abs(x))


def numeric_matrix(
    frame: pd.DataFrame, columns: list[str], *, keep_infinite: bool = False
) -> np.ndarray:
    """The given columns as a float32 matrix; text in a numeric column is a clear error.

    Infinite values (and numbers too large for float32) become NaN unless ``keep_infinite``."""
    if not columns:
        return np.zeros((len(frame), 0), dtype=np.float32)
    # Filled column by column into a (columns, rows) block: each column is one contiguous write.
    block = np.empty((len(columns), len(frame)), dtype=np.float32)
    for j, column in enumerate(columns):
        series = frame[column]
        if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
            converted = pd.to_numeric(series, errors="coerce")
            bad = converted.isna() & series.notna() & (series.astype(str).str.strip() != "")
            if bad.any():
                example = series[bad].iloc[0]
                raise AecoreError(
                    f"Column {column!r} should hold numbers but contains text such as "
                    f"{str(example)[:40]!r}."
                )
            series = converted
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf
            block[j] = series.to_numpy(dtype=np.float32, na_value=np.nan)
    if not keep_infinite:
        block[~np.isfinite(block)] = np.nan
    return block.T


class Preprocessor:
    """Turns a frame's input columns into a float32 matrix for the autoencoder, and back."""

    def __init__(self, scaling: str = "standard", log_transform: str | bool | list = "auto"):
        self.scaling = scaling
        self.log_transform = log_transform

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, roles: ColumnRoles) -> Preprocessor:
        if self.scaling not in SCALINGS:
            raise AecoreError(
                f"Unknown scaling {self.scaling!r}; choose one of {', '.join(SCALINGS)}."
            )
        missing = [c for c in roles.inputs if c not in frame.columns]
        if missing:
            raise AecoreError(f"Columns not in the data: {', '.join(map(repr, missing))}.")
        self.numeric_ = []
        self.valid_ranges_ = {}  # per column: the (low, high) of usable training values
        self.notes_ = []
        values = numeric_matrix(frame, roles.features, keep_infinite=True).astype(np.float64)
        for j, column in enumerate(roles.features):
            col = values[:, j]
            low, high = self._valid_range(column, col)
            self.valid_ranges_[column] = (low, high)
            col = np.where((col >= low) & (col <= high), col, np.nan)
            finite = col[np.isfinite(col)]
            fill = float(np.median(finite))
            col = np.where(np.isfinite(col), col, fill)
            use_log = self._wants_log(column, col)
            if use_log:
                col = _signed_log1p(col)
            center, scale = self.center_scale(col)
            self.numeric_.append(
                {"name": column, "fill": fill, "log": use_log, "center": center, "scale": scale}
            )
        self.categorical_ = []
        for column in roles.categorical:
            text = frame[column].astype("string").fillna(MISSING_CATEGORY)
            counts = text.value_counts()
            # Most frequent first, ties by name, so the kept values do not depend on row order.
            ranked = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
            categories = [str(value) for value, _ in ranked[:MAX_CATEGORIES]]
            other = len(ranked) > MAX_CATEGORIES
            self.categorical_.append(
                {"name": column, "categories": sorted(categories), "other": other}
            )
        return self

    def _valid_range(self, column: str, col: np.ndarray) -> tuple[float, float]:
        """The range of a column's usable training values (see ``SENTINEL_SPREADS``); notes how
        many present cells fall outside it, and refuses the column when most of them do."""
        present = ~np.isnan(col)
        n_present = int(present.sum())
        if n_present == 0:
            raise AecoreError(f"Column {column!r} is entirely empty; mark it as ignore.")
        low, high = usable_range(col)
        bad = present & ~((col >= low) & (col <= high))
        n_bad = int(bad.sum())
        if n_bad == 0:
            return low, high
        example = f"{col[bad][0]:.4g}"
        if 2 * n_bad > n_present:
            raise AecoreError(
                f"Column {column!r} is mostly infinite or far out of range ({n_bad:,} of "
                f"{n_present:,} values, e.g. {example}); fix those cells or mark the column "
                "as ignore."
            )
        note = (
            f"Column {column!r}: {n_bad:,} infinite or far out of range value(s) (e.g. "
            f"{example}) treated as missing in the training rows and imputed with the median."
        )
        self.notes_.append(note)
        warnings.warn(note, UserWarning, stacklevel=4)
        return low, high

    def _wants_log(self, column: str, col: np.ndarray) -> bool:
        if isinstance(self.log_transform, (list, tuple)):
            return column in self.log_transform
        if self.log_transform is False or self.log_transform == "none":
            return False
        nonneg = bool(col.min() >= 0)
        if self.log_transform is True:
            return nonneg
        return nonneg and np.unique(col[:10_000]).size > 10 and _skewness(col) > SKEW_FOR_LOG

    def center_scale(self, col: np.ndarray) -> tuple[float, float]:
        """(center, spread) of one numeric column of values by this preprocessor's ``scaling``
        (public: the second model's input scaling is computed with it)."""
        if self.scaling == "standard":
            center, scale = col.mean(), col.std()
        elif self.scaling == "minmax":
            center, scale = col.min(), col.max() - col.min()
        else:
            q1, median, q3 = np.percentile(col, [25, 50, 75])
            center, scale = median, q3 - q1
            if scale <= 0:
                scale = col.std()
        if not np.isfinite(scale) or scale <= 1e-12:
            scale = 1.0  # a constant column encodes as zeros, never NaN
        return float(center), float(scale)

    # ---- layout --------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "numeric_"):
            raise errors.NotFittedError("The preprocessor is not fitted yet.")

    @property
    def input_columns(self) -> list[str]:
        self._check_fitted()
        return [p["name"] for p in self.numeric_] + [p["name"] for p in self.categorical_]

    @property
    def encoded_names(self) -> list[str]:
        self._check_fitted()
        names = [p["name"] for p in self.numeric_]
        for p in self.categorical_:
            names += [f"{p['name']}={c}" for c in _encoded_categories(p)]
        return names

    @property
    def n_encoded(self) -> int:
        return len(self.encoded_names)

    @property
    def source_index(self) -> np.ndarray:
        """For each encoded column, the index of its source column in ``input_columns``."""
        self._check_fitted()
        index = list(range(len(self.numeric_)))
        for k, p in enumerate(self.categorical_):
            index += [len(self.numeric_) + k] * len(_encoded_categories(p))
        return np.asarray(index, dtype=np.int64)

    def group_matrix(self) -> np.ndarray | None:
        """(n_encoded, n_inputs) 0/1 matrix summing encoded columns into source columns.

        ``None`` when every input is numeric (the identity), so callers can skip the product.
        """
        if not self.categorical_:
            return None
        matrix = np.zeros((self.n_encoded, len(self.input_columns)), dtype=np.float32)
        matrix[np.arange(self.n_encoded), self.source_index] = 1.0
        return matrix

    # ---- transforming --------------------------------------------------------------------
    def transform(self, frame: pd.DataFrame, *, training: bool = False) -> np.ndarray:
        """The frame's input columns as a float32 matrix (n_rows, n_encoded).

        Numbers are clipped to ``OUT_OF_RANGE`` spreads (infinite ones by their sign), so the
        matrix is always finite. With ``training`` (the rows ``fit`` saw, right after it), the
        cells ``fit`` treated as missing (infinite, sentinels) are imputed instead."""
        self._check_fitted()
        missing = [c for c in self.input_columns if c not in frame.columns]
        if missing:
            named = ", ".join(map(repr, missing[:MISSING_NAMED]))
            if len(missing) > MISSING_NAMED:  # a page-long list of names helps nobody
                raise AecoreError(
                    f"The data lacks {len(missing):,} of the {len(self.input_columns):,} feature "
                    f"columns the model needs, among them {named} and "
                    f"{len(missing) - MISSING_NAMED:,} more: is it the kind of data the model "
                    "was trained on?"
                )
            raise AecoreError(f"The data lacks feature columns the model needs: {named}.")
        names = [p["name"] for p in self.numeric_]
        x = numeric_matrix(frame, names, keep_infinite=True)
        if names:
            fill = np.array([p["fill"] for p in self.numeric_], dtype=np.float32)
            nan = np.isnan(x)
            ranges = getattr(self, "valid_ranges_", None)
            if training and ranges:
                low = np.array([ranges[n][0] for n in names], dtype=np.float64)
                high = np.array([ranges[n][1] for n in names], dtype=np.float64)
                nan |= ~((x >= low) & (x <= high))
            if nan.any():
                x = np.where(nan, fill, x)
            with np.errstate(over="ignore", invalid="ignore"):
                log = np.array([p["log"] for p in self.numeric_])
                if log.any():
                    x[:, log] = _signed_log1p(x[:, log])
                center = np.array([p["center"] for p in self.numeric_], dtype=np.float32)
                scale = np.array([p["scale"] for p in self.numeric_], dtype=np.float32)
                x -= center
                x /= scale
            np.clip(x, -OUT_OF_RANGE, OUT_OF_RANGE, out=x)
        blocks = [x]
        for p in self.categorical_:
            categories = p["categories"]
            text = frame[p["name"]].astype("string").fillna(MISSING_CATEGORY)
            codes = pd.Categorical(text, categories=categories).codes  # unseen -> -1
            width = len(categories) + bool(p.get("other"))
            onehot = np.zeros((len(frame), width), dtype=np.float32)
            seen = codes >= 0
            onehot[np.flatnonzero(seen), codes[seen]] = 1.0
            if p.get("other"):
                onehot[~seen, -1] = 1.0  # every value outside the kept ones
            blocks.append(onehot)
        if len(blocks) == 1:
            # Column-major as built (a whole-matrix transposing copy cost 0.1-0.25 s a million
            # rows): the scorer copies each batch of rows into row order, a cache-sized piece
            # at a time, and row indexing makes row-ordered copies anyway.
            return x.astype(np.float32, copy=False)
        return np.concatenate(blocks, axis=1).astype(np.float32, copy=False)

    def unseen_categories(self, frame: pd.DataFrame) -> dict[str, list[str]]:
        """Categories present in ``frame`` that training never saw, per categorical column.

        With an ``OTHER_CATEGORY`` column, values outside the kept ones count as unseen too.
        """
        self._check_fitted()
        found = {}
        for p in self.categorical_:
            text = frame[p["name"]].astype("string").fillna(MISSING_CATEGORY)
            new = sorted(set(text.unique()) - set(p["categories"]))
            if new:
                found[p["name"]] = [str(v) for v in new]
        return found

    def inverse_transform(self, encoded: np.ndarray) -> pd.DataFrame:
        """Encoded values back in original units: numbers for numeric columns, the most likely
        category for categorical ones."""
        self._check_fitted()
        encoded = np.asarray(encoded, dtype=np.float64)
        out = {}
        for j, p in enumerate(self.numeric_):
            col = encoded[:, j] * p["scale"] + p["center"]
            out[p["name"]] = _signed_expm1(col) if p["log"] else col
        start = len(self.numeric_)
        for p in self.categorical_:
            names = _encoded_categories(p)
            block = encoded[:, start : start + len(names)]
            out[p["name"]] = np.asarray(names, dtype=object)[block.argmax(axis=1)]
            start += len(names)
        return pd.DataFrame(out)

    # ---- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        self._check_fitted()
        return {
            "scaling": self.scaling,
            "log_transform": self.log_transform,
            "numeric": self.numeric_,
            "categorical": self.categorical_,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Preprocessor:
        pre = cls(scaling=data["scaling"], log_transform=data["log_transform"])
        pre.numeric_ = [dict(p) for p in data["numeric"]]
        pre.categorical_ = [dict(p) for p in data["categorical"]]  # no "other": older bundles
        return pre


def _encoded_categories(params: dict) -> list[str]:
    """The one-hot columns of a categorical column: its kept values, then "(other)" if any."""
    categories = list(params["categories"])
    return [*categories, OTHER_CATEGORY] if params.get("other") else categories
