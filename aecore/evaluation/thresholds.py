"""Thresholds: where to cut the anomaly score, and what each possible cut costs.

Scores ("errors") are 1-D, higher = more anomalous; a row is flagged when ``error > threshold``
(strictly greater, as in PyOD). Labels: 1 = anomaly, 0 = normal, -1 = unknown (left out of every
labelled computation). Comparisons are exact: a float32 error is compared with the threshold as
the real number it holds, never after rounding the threshold to float32.

The time tolerance (``tolerance``, in rows; rows are in time order) softens what counts as right:
an alarm at row i is correct when a labelled anomaly lies within ``tolerance`` rows of i, and an
anomaly is caught when an alarm lies within ``tolerance`` rows of it. Rows with an unknown label
raise no alarm and are no anomaly, but they keep their place in time, so the window is measured in
rows of the data as given. With tolerance 0 this is the ordinary confusion matrix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

import numpy as np

from aecore.errors import AecoreError

METHODS = ("percentile", "mean_std", "best_f1", "min_cost", "fixed")

_PARAMS = {
    "percentile": {"percentile", "anomaly_share"},
    "mean_std": {"k"},
    "fixed": {"value"},
    "best_f1": {"tolerance"},
    "min_cost": {"c_alarm", "c_missed", "tolerance"},
}


# ------------------------------------------------------------ input checks (shared with metrics)


def as_errors(errors: Any, name: str = "errors") -> np.ndarray:
    """A finite, non-empty 1-D float array (float32 kept as is, anything else as float64)."""
    array = np.asarray(errors)
    if array.ndim != 1:
        raise AecoreError(f"{name} must be one score per row (1-D), got shape {array.shape}.")
    if array.size == 0:
        raise AecoreError(f"There are no {name} to work with (0 rows).")
    if array.dtype.kind not in "biuf":
        raise AecoreError(f"{name} must be numbers, got values of type {array.dtype}.")
    if array.dtype not in (np.float32, np.float64):
        array = array.astype(np.float64)
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise AecoreError(
            f"{name} contain {bad} missing or infinite value(s); scores must be finite."
        )
    return array


def as_labels(labels: Any, n_rows: int) -> np.ndarray:
    """Labels as an int8 array of 1 (anomaly), 0 (normal) and -1 (unknown), one per row."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.shape[0] != n_rows:
        raise AecoreError(
            f"The labels must be one value per row: got {array.shape} labels for {n_rows} rows."
        )
    if array.dtype == bool:
        return array.astype(np.int8)
    if array.dtype.kind not in "iuf":
        raise AecoreError(
            "The label column must hold 1 (anomaly), 0 (normal) or -1 (unknown), "
            f"got values of type {array.dtype}."
        )
    valid = np.isin(array, (-1, 0, 1))
    if not valid.all():
        examples = ", ".join(str(value) for value in np.unique(array[~valid])[:5])
        raise AecoreError(
            "The label column must hold 1 (anomaly), 0 (normal) or -1 (unknown); "
            f"it also holds: {examples}."
        )
    return array.astype(np.int8)


def check_tolerance(tolerance: Any) -> int:
    """A tolerance in rows (a whole number >= 0), or ``AecoreError``."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, Integral) or tolerance < 0:
        raise AecoreError(f"The tolerance must be a whole number of rows >= 0, got {tolerance!r}.")
    return int(tolerance)


def check_cost(value: Any, name: str) -> float:
    """A cost (a finite number >= 0) named ``name`` in the message, or ``AecoreError``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not (0 <= value < math.inf):
        raise AecoreError(f"{name} must be a finite number >= 0, got {value!r}.")
    return float(value)


def check_threshold(threshold: Any) -> float:
    """A threshold (a number, not NaN), or ``AecoreError``."""
    if isinstance(threshold, bool) or not isinstance(threshold, Real) or math.isnan(threshold):
        raise AecoreError(f"The threshold must be a number, got {threshold!r}.")
    return float(threshold)


def alarm_is_correct(is_anomaly: np.ndarray, tolerance: int) -> np.ndarray:
    """Per row: does an anomaly lie within ``tolerance`` rows (an alarm here would be correct)?"""
    if tolerance == 0:
        return is_anomaly.astype(bool)
    n_rows = is_anomaly.shape[0]
    running = np.concatenate(([0], np.cumsum(is_anomaly, dtype=np.int64)))
    positions = np.arange(n_rows)
    upper = np.minimum(positions + tolerance + 1, n_rows)
    lower = np.maximum(positions - tolerance, 0)
    return running[upper] > running[lower]


def window_max(values: np.ndarray, tolerance: int, fill: float) -> np.ndarray:
    """Maximum of ``values`` over rows [i - tolerance, i + tolerance] for every row i, in O(n)."""
    if tolerance == 0:
        return values
    from scipy.ndimage import maximum_filter1d

    return maximum_filter1d(values, size=2 * tolerance + 1, mode="constant", cval=fill)


def _nearest_below(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The largest ``dtype`` numbers <= the float64 ``values`` (so ``x > v`` is exact in dtype)."""
    values = np.asarray(values, dtype=np.float64)
    if dtype == np.float64:
        return values
    rounded = values.astype(dtype)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], dtype.type(-np.inf))
    return rounded


def _nearest_above(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The smallest ``dtype`` numbers >= the float64 ``values`` (so ``x < v`` is exact in dtype)."""
    values = np.asarray(values, dtype=np.float64)
    if dtype == np.float64:
        return values
    rounded = values.astype(dtype)
    below = rounded.astype(np.float64) < values
    rounded[below] = np.nextafter(rounded[below], dtype.type(np.inf))
    return rounded


def _plain(value: Any) -> Any:
    """Numpy scalars and containers as plain Python values (JSON-safe)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


# ---------------------------------------------------------------- the chosen threshold


@dataclass
class ThresholdChoice:
    """A threshold value with how it was chosen (method and its parameters)."""

    value: float
    method: str
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain, JSON-safe dict."""
        return {"value": float(self.value), "method": self.method, "params": _plain(self.params)}

    @classmethod
    def from_dict(cls, data: dict) -> ThresholdChoice:
        """Inverse of :meth:`to_dict`."""
        try:
            value, method = float(data["value"]), str(data["method"])
        except (KeyError, TypeError, ValueError) as error:
            raise AecoreError(
                f"A saved threshold needs a numeric 'value' and a 'method': {data!r}."
            ) from error
        if method not in METHODS:
            raise AecoreError(
                f"Unknown threshold method {method!r}; valid methods: {', '.join(METHODS)}."
            )
        return cls(value=value, method=method, params=dict(data.get("params") or {}))


def flag(errors: Any, threshold: float) -> np.ndarray:
    """Boolean array: which rows are flagged (``error > threshold``, compared exactly)."""
    return np.asarray(errors) > np.float64(check_threshold(threshold))


def fixed_threshold(value: float) -> ThresholdChoice:
    """A threshold the analyst typed in."""
    return ThresholdChoice(value=check_threshold(value), method="fixed", params={})


def percentile_threshold(
    errors: Any, *, percentile: float | None = None, anomaly_share: float | None = None
) -> ThresholdChoice:
    """Cut at a percentile of the errors, or so that ``anomaly_share`` of the rows are flagged.

    ``anomaly_share`` = s sets the threshold at the (1 - s) quantile (linear interpolation), so
    about s of the rows lie above it (fewer when errors tie at the cut).
    """
    errors = as_errors(errors)
    if (percentile is None) == (anomaly_share is None):
        raise AecoreError("Give exactly one of percentile or anomaly_share.")
    if percentile is not None:
        if (
            isinstance(percentile, bool)
            or not isinstance(percentile, Real)
            or not (0 < percentile < 100)
        ):
            raise AecoreError(
                f"The percentile must be between 0 and 100 (exclusive), got {percentile!r}."
            )
        value = float(np.percentile(errors, float(percentile)))
        return ThresholdChoice(value, "percentile", {"percentile": float(percentile)})
    share = anomaly_share
    if isinstance(share, bool) or not isinstance(share, Real) or not (0 < share < 1):
        raise AecoreError(f"The anomaly share must be between 0 and 1 (exclusive), got {share!r}.")
    n_rows = errors.shape[0]
    if share * n_rows < 1 - 1e-9:
        raise AecoreError(
            f"An anomaly share of {share:g} is less than one row of {n_rows}; "
            f"use at least {1 / n_rows:.3g}."
        )
    value = float(np.quantile(errors, 1 - float(share)))
    return ThresholdChoice(value, "percentile", {"anomaly_share": float(share)})


def mean_std_threshold(errors: Any, *, k: float = 3.0) -> ThresholdChoice:
    """Mean + k standard deviations (population std) of the errors of normal / held-out rows."""
    errors = as_errors(errors)
    if isinstance(k, bool) or not isinstance(k, Real) or not math.isfinite(k):
        raise AecoreError(f"k (the number of standard deviations) must be a number, got {k!r}.")
    as_float = errors.astype(np.float64)
    mean, std = float(as_float.mean()), float(as_float.std())
    return ThresholdChoice(
        mean + float(k) * std, "mean_std", {"k": float(k), "mean": mean, "std": std}
    )


# ---------------------------------------------------------------- every cut at once


@dataclass(eq=False)
class Sweep:
    """Detection metrics at every distinct cut of the errors, in order of decreasing threshold.

    Candidate k (k = 0..m, m distinct error values u_1 > ... > u_m) flags exactly the rows with
    error >= u_k (none for k = 0); ``thresholds[k]`` realises it under the ``>`` rule.
    ``levels`` holds u_1..u_m. All arrays but ``levels`` have length m + 1.
    """

    thresholds: np.ndarray
    n_flagged: np.ndarray
    correct_alarms: np.ndarray
    false_alarms: np.ndarray
    caught: np.ndarray
    missed: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    cost: np.ndarray
    n_anomalies: int
    tolerance: int
    c_alarm: float
    c_missed: float
    levels: np.ndarray = field(repr=False)
    _ascending: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._ascending = np.ascontiguousarray(self.levels[::-1])

    def __len__(self) -> int:
        return int(self.thresholds.shape[0])

    def index_of(self, threshold: float) -> int:
        """The candidate that ``error > threshold`` selects, in O(log n)."""
        threshold = check_threshold(threshold)
        return int(self._ascending.shape[0] - np.searchsorted(self._ascending, threshold, "right"))

    def _row(self, index: int, threshold: float) -> dict:
        return {
            "threshold": float(threshold),
            "n_flagged": int(self.n_flagged[index]),
            "correct_alarms": int(self.correct_alarms[index]),
            "false_alarms": int(self.false_alarms[index]),
            "caught": int(self.caught[index]),
            "missed": int(self.missed[index]),
            "precision": float(self.precision[index]),
            "recall": float(self.recall[index]),
            "f1": float(self.f1[index]),
            "cost": float(self.cost[index]),
        }

    def at(self, threshold: float) -> dict:
        """Metrics (plain Python numbers) when flagging ``error > threshold``; O(log n)."""
        return self._row(self.index_of(threshold), threshold)

    def _choice(self, index: int, method: str) -> ThresholdChoice:
        row = self._row(index, self.thresholds[index])
        params = {
            "tolerance": self.tolerance,
            "c_alarm": self.c_alarm,
            "c_missed": self.c_missed,
            **{key: row[key] for key in ("f1", "cost", "precision", "recall", "n_flagged")},
        }
        return ThresholdChoice(row["threshold"], method, params)

    def best_f1(self) -> ThresholdChoice:
        """The cut with the highest F1 (ties: the higher threshold, i.e. fewer alarms)."""
        return self._choice(int(np.argmax(self.f1)), "best_f1")

    def min_cost(self) -> ThresholdChoice:
        """The cut with the lowest cost (ties: the higher threshold, i.e. fewer alarms)."""
        return self._choice(int(np.argmin(self.cost)), "min_cost")

    def to_frame(self):
        """One row per candidate, for plotting (pandas DataFrame)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "threshold": self.thresholds,
                "n_flagged": self.n_flagged,
                "correct_alarms": self.correct_alarms,
                "false_alarms": self.false_alarms,
                "caught": self.caught,
                "missed": self.missed,
                "precision": self.precision,
                "recall": self.recall,
                "f1": self.f1,
                "cost": self.cost,
            }
        )


def _counts_by_level(levels: np.ndarray, m: int) -> np.ndarray:
    """Running totals over candidates 0..m of items first counted at candidate ``levels + 1``."""
    totals = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(np.bincount(levels, minlength=m), out=totals[1:])
    return totals


def sweep(
    errors: Any,
    labels: Any,
    *,
    tolerance: int = 0,
    c_alarm: float = 1.0,
    c_missed: float = 1.0,
) -> Sweep:
    """Precision, recall, F1 and cost at every candidate threshold, in one O(n log n) pass.

    Rows labelled -1 (unknown) are dropped from the sweep: they raise no alarm, are no anomaly and
    give no candidate threshold, but keep their place in time for the tolerance window.
    ``cost = c_alarm * false_alarms + c_missed * missed``.
    """
    errors = as_errors(errors)  # float32 errors are sorted as float32 (half the bytes)
    labels = as_labels(labels, errors.shape[0])
    tolerance = check_tolerance(tolerance)
    c_alarm, c_missed = check_cost(c_alarm, "c_alarm"), check_cost(c_missed, "c_missed")
    known = labels >= 0
    if not known.any():
        raise AecoreError("Every label is unknown (-1); there is nothing to evaluate against.")
    is_anomaly = labels == 1

    ascending, inverse = np.unique(errors[known], return_inverse=True)
    ascending = ascending.astype(np.float64)  # exact: thresholds between levels need float64
    m = ascending.shape[0]
    rank = (m - 1) - inverse  # 0 for the highest error: flagged from candidate rank + 1 on
    n_flagged = _counts_by_level(rank, m)
    correct_here = alarm_is_correct(is_anomaly, tolerance)[known]
    correct_alarms = _counts_by_level(rank[correct_here], m)
    false_alarms = n_flagged - correct_alarms

    # An anomaly is caught from the first candidate at or below the highest known error near it.
    alarm_scores = np.where(known, errors, -np.inf)
    nearest_max = window_max(alarm_scores, tolerance, -np.inf)[is_anomaly]
    catch_rank = (m - 1) - np.searchsorted(ascending, nearest_max)
    caught = _counts_by_level(catch_rank, m)
    n_anomalies = int(is_anomaly.sum())
    missed = n_anomalies - caught

    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(n_flagged > 0, correct_alarms / np.maximum(n_flagged, 1), 0.0)
        recall = caught / n_anomalies if n_anomalies else np.zeros(m + 1)
        total = precision + recall
        f1 = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)
    cost = c_alarm * false_alarms + c_missed * missed

    levels = ascending[::-1].copy()
    thresholds = np.empty(m + 1)
    thresholds[0] = levels[0]
    higher, lower = levels[:-1], levels[1:]
    middle = 0.5 * higher + 0.5 * lower
    thresholds[1:m] = np.where((middle > lower) & (middle < higher), middle, lower)
    thresholds[m] = np.nextafter(levels[-1], -np.inf)

    return Sweep(
        thresholds=thresholds,
        n_flagged=n_flagged,
        correct_alarms=correct_alarms,
        false_alarms=false_alarms,
        caught=caught,
        missed=missed,
        precision=precision,
        recall=recall,
        f1=f1,
        cost=cost,
        n_anomalies=n_anomalies,
        tolerance=tolerance,
        c_alarm=c_alarm,
        c_missed=c_missed,
        levels=levels,
    )


def _check_both_classes(labels: Any, n_rows: int, method: str) -> None:
    labels = as_labels(labels, n_rows)
    if not (labels == 1).any() or not (labels == 0).any():
        raise AecoreError(
            f"{method} needs a label column with at least one anomaly (1) and one normal row (0); "
            f"this one has {int((labels == 1).sum())} anomalies and {int((labels == 0).sum())} "
            "normal rows."
        )


def best_f1_threshold(errors: Any, labels: Any, *, tolerance: int = 0) -> ThresholdChoice:
    """The threshold with the best F1 against the labels (ties: the higher one)."""
    errors = as_errors(errors)
    _check_both_classes(labels, errors.shape[0], "best_f1")
    return sweep(errors, labels, tolerance=tolerance).best_f1()


def min_cost_threshold(
    errors: Any,
    labels: Any,
    *,
    c_alarm: float = 1.0,
    c_missed: float = 1.0,
    tolerance: int = 0,
) -> ThresholdChoice:
    """The threshold with the lowest ``c_alarm * false_alarms + c_missed * missed``.

    Ties go to the higher threshold (fewer alarms).
    """
    errors = as_errors(errors)
    _check_both_classes(labels, errors.shape[0], "min_cost")
    return sweep(errors, labels, tolerance=tolerance, c_alarm=c_alarm, c_missed=c_missed).min_cost()


def choose_threshold(
    errors: Any,
    method: str,
    *,
    labels: Any = None,
    reference_errors: Any = None,
    **params: Any,
) -> ThresholdChoice:
    """Choose a threshold by method name: one of ``METHODS``.

    percentile and mean_std use ``reference_errors`` (errors of held-out normal rows) when given,
    else ``errors``; best_f1 and min_cost need ``labels``; fixed needs ``value``.
    """
    if method not in METHODS:
        raise AecoreError(
            f"Unknown threshold method {method!r}; valid methods: {', '.join(METHODS)}."
        )
    unexpected = sorted(set(params) - _PARAMS[method])
    if unexpected:
        allowed = ", ".join(sorted(_PARAMS[method]))
        raise AecoreError(
            f"The {method} method takes {allowed}; it does not take {', '.join(unexpected)}."
        )
    if method == "fixed":
        if "value" not in params:
            raise AecoreError("The fixed method needs a threshold value.")
        return fixed_threshold(params["value"])
    basis = errors if reference_errors is None else reference_errors
    if method == "percentile":
        return percentile_threshold(basis, **params)
    if method == "mean_std":
        return mean_std_threshold(basis, **params)
    if labels is None:
        raise AecoreError(
            f"{method} needs a label column with at least one anomaly (1) and one normal row (0)."
        )
    if method == "best_f1":
        return best_f1_threshold(errors, labels, **params)
    return min_cost_threshold(errors, labels, **params)


# ---------------------------------------------------------------- the slider's index


class ErrorIndex:
    """Errors sorted once, so counts above a threshold and histograms cost O(log n) per query.

    Built for the dashboard's threshold slider over a million rows; float32 errors stay float32
    and are still compared exactly with the (float64) threshold.
    """

    def __init__(self, errors: Any) -> None:
        self.sorted_errors = np.sort(as_errors(errors))
        self.n_rows = int(self.sorted_errors.shape[0])

    def count_above(self, threshold: float) -> int:
        """How many rows ``error > threshold`` flags."""
        cut = _nearest_below(np.float64(check_threshold(threshold)), self.sorted_errors.dtype)
        return self.n_rows - int(np.searchsorted(self.sorted_errors, cut, side="right"))

    def share_above(self, threshold: float) -> float:
        """The share of rows ``error > threshold`` flags."""
        return self.count_above(threshold) / self.n_rows

    def histogram(
        self, bins: int = 100, log: bool = False, range: tuple[float, float] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(counts, edges)`` as ``numpy.histogram`` gives them; ``log=True``: log-spaced edges.

        With ``log=True`` the default range spans the positive errors only.
        """
        if isinstance(bins, bool) or not isinstance(bins, Integral) or bins < 1:
            raise AecoreError(f"The number of bins must be a whole number >= 1, got {bins!r}.")
        values = self.sorted_errors
        if range is None:
            if log:
                positive = values[np.searchsorted(values, 0.0, side="right") :]
                if positive.size == 0:
                    raise AecoreError("A log-scale histogram needs positive errors; all are <= 0.")
                low, high = float(positive[0]), float(positive[-1])
            else:
                low, high = float(values[0]), float(values[-1])
            if low == high:
                low, high = (low / 2, high * 2) if log else (low - 0.5, high + 0.5)
        else:
            low, high = (float(bound) for bound in range)
            if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
                raise AecoreError(
                    f"The histogram range must be two finite numbers, low < high: {range!r}."
                )
            if log and low <= 0:
                raise AecoreError(f"A log-scale histogram needs a positive range, got {range!r}.")
        edges = (
            np.geomspace(low, high, int(bins) + 1) if log else np.linspace(low, high, int(bins) + 1)
        )
        starts = np.searchsorted(values, _nearest_above(edges, values.dtype), side="left")
        starts[-1] = np.searchsorted(values, _nearest_below(edges[-1], values.dtype), side="right")
        return np.diff(starts), edges
