"""A scored data set and what the dashboard derives from it, computed once and reused.

``ScoredData`` holds one scoring pass of a frame (errors, per-feature errors, codes) with the
errors sorted once (``ErrorIndex``), the labels and the time order. Everything a threshold move
needs (count above, histogram, metrics at a threshold) is an O(log n) query or a memoised
result, so moving the threshold never scores again. Pure: no streamlit.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aecore.errors import AecoreError
from aecore.evaluation import thresholds
from aecore.evaluation.explain import row_detail, top_features
from aecore.io import inference, labelling
from aecore.workflows.export import FIRST_DATA_ROW, SOURCE_ROW, source_rows

GRID_LINEAR = 200
GRID_LOG = 300
COMPARISON_ROWS = 20_000


def content_key(payload: bytes) -> str:
    """A short, stable fingerprint of a file's bytes (identifies data in caches)."""
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


def labels_of(frame: pd.DataFrame, label_column: str | None) -> np.ndarray | None:
    """Binary labels (1 anomaly, 0 normal, -1 unknown) of ``label_column``, or None when there
    is no such column or no known label."""
    if not label_column or label_column not in frame:
        return None
    labels = labelling.binary_labels(frame[label_column])
    return labels if (labels >= 0).any() else None


def time_axis(frame: pd.DataFrame, time_column: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(order, x, title)``: row positions in time order, the values to plot along the x axis
    in that order, and the axis title. Row order when there is no (parsable) time column, the
    x values then being the rows' ``source_row`` (their number in the file; title "row")."""
    if time_column and time_column in frame:
        try:
            times = inference.parse_times(frame[time_column])
        except AecoreError:
            times = None
        if times is not None and not times.isna().all():
            order = np.argsort(times.to_numpy(), kind="stable")
            values = times.to_numpy()[order]
            return order, values, str(time_column)
    order = np.arange(len(frame))
    return order, source_rows(order), "row"


def threshold_grid(sorted_errors: np.ndarray, extra: tuple[float, ...] = ()) -> list[float]:
    """Thresholds a slider can stop at: an even grid and a log-spaced grid over the errors'
    range, the percentiles analysts ask for, and the ``extra`` values exactly (the current
    threshold, the model's). Rounded to 4 significant digits, one per displayed value.
    ``sorted_errors`` must be sorted (percentiles are read off by position, O(1) each)."""
    values = np.asarray(sorted_errors, dtype=np.float64)
    low, high = float(values[0]), float(values[-1])
    grids = [np.linspace(low, high, GRID_LINEAR)]
    first_positive = int(np.searchsorted(values, 0.0, side="right"))
    if first_positive < len(values) and values[first_positive] < high:
        grids.append(np.geomspace(float(values[first_positive]), high, GRID_LOG))
    shares = np.array([0.5, 0.75, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999, 0.9999])
    grids.append(values[np.minimum((shares * len(values)).astype(np.int64), len(values) - 1)])
    grid = np.concatenate(grids)
    rounded = {f"{v:.4g}": float(f"{v:.4g}") for v in grid.tolist() if math.isfinite(v)}
    for bound in (_round_significant(low, down=True), _round_significant(high, down=False)):
        rounded[f"{bound:.4g}"] = bound  # the ends flag every row and no row
    for value in extra:
        if value is not None and math.isfinite(value):
            rounded[f"{float(value):.4g}"] = float(value)
    return sorted(rounded.values())


def _round_significant(value: float, *, down: bool, digits: int = 4) -> float:
    """A ``digits``-significant-digit number strictly below ``value`` (``down``), so a cut there
    flags the row with that error, or at or above it (a cut there flags no such row)."""
    if not math.isfinite(value):
        return float(value)
    if value == 0:
        return -(10.0**-digits) if down else 0.0
    scale = 10.0 ** (math.floor(math.log10(abs(value))) - digits + 1)
    steps = (math.floor if down else math.ceil)(round(value / scale, 6))
    rounded = float(f"{steps * scale:.{digits}g}")
    if down and rounded >= value:
        rounded = float(f"{(steps - 1) * scale:.{digits}g}")
    return rounded


@dataclass(eq=False)
class ScoredData:
    """One scoring pass of ``frame`` plus its labels and time order, with memoised views."""

    frame: pd.DataFrame
    scores: Any  # aecore.detector.Scores
    label_column: str | None = None
    time_column: str | None = None
    reference_errors: np.ndarray | None = None
    _memo: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.errors = np.asarray(self.scores.row_error)
        if len(self.errors) != len(self.frame):
            raise AecoreError("The scores do not cover the rows of the data: score it again.")
        self.index = thresholds.ErrorIndex(self.errors)
        self.labels = labels_of(self.frame, self.label_column)
        self.order, self.time_values, self.time_title = time_axis(self.frame, self.time_column)

    # ---- counts at a threshold (O(log n))
    @property
    def n_rows(self) -> int:
        return int(len(self.errors))

    def count_above(self, threshold: float) -> int:
        """How many rows the threshold flags."""
        return self.index.count_above(threshold)

    def flags(self, threshold: float) -> np.ndarray:
        """Boolean flag per row (``error > threshold``)."""
        return thresholds.flag(self.errors, threshold)

    def histogram(
        self, *, log: bool = False, bins: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Binned errors (counts, edges); the same for every threshold, so computed once.
        Default bins: twice the square root of the row count, between 20 and 100."""
        if bins is None:
            bins = int(np.clip(2 * math.sqrt(self.n_rows), 20, 100))
        key = ("histogram", log, bins)
        if key not in self._memo:
            if log and self.index.sorted_errors[-1] <= 0:
                log = False
            self._memo[key] = self.index.histogram(bins=bins, log=log)
        return self._memo[key]

    def options(self, *extra: float) -> list[float]:
        """Threshold values for the slider (see ``threshold_grid``), with ``extra`` included."""
        if "grid" not in self._memo:
            self._memo["grid"] = threshold_grid(self.index.sorted_errors)
        grid = self._memo["grid"]
        if not extra:
            return list(grid)
        merged = {f"{v:.4g}": v for v in grid}
        merged.update({f"{float(v):.4g}": float(v) for v in extra if math.isfinite(v)})
        return sorted(merged.values())

    # ---- labelled metrics
    @property
    def has_labels(self) -> bool:
        """True when known labels hold both classes (metrics and best-F1/min-cost apply)."""
        if self.labels is None:
            return False
        return bool((self.labels == 1).any() and (self.labels == 0).any())

    def sweep(
        self, *, tolerance: int = 0, c_alarm: float = 1.0, c_missed: float = 1.0
    ) -> thresholds.Sweep | None:
        """Metrics at every threshold, rows in time order (memoised per parameters)."""
        if not self.has_labels:
            return None
        key = ("sweep", int(tolerance), float(c_alarm), float(c_missed))
        if key not in self._memo:
            for old in [k for k in self._memo if k[0] == "sweep"][:-3]:
                del self._memo[old]
            self._memo[key] = thresholds.sweep(
                self.errors[self.order],
                self.labels[self.order],
                tolerance=int(tolerance),
                c_alarm=float(c_alarm),
                c_missed=float(c_missed),
            )
        return self._memo[key]

    def choose(self, method: str, *, basis: str = "data", **params: Any) -> float:
        """A threshold by method: ``percentile`` / ``mean_std`` on this data's errors
        (``basis="data"``) or the model's held-out errors (``basis="model"``); ``best_f1`` /
        ``min_cost`` against the labels (``tolerance``, ``c_alarm``, ``c_missed``)."""
        if method in ("best_f1", "min_cost"):
            sweep = self.sweep(**params)
            if sweep is None:
                raise AecoreError(
                    f"{method} needs a label column with both anomalies (1) and normal rows (0)."
                )
            return float((sweep.best_f1() if method == "best_f1" else sweep.min_cost()).value)
        reference = None
        if basis == "model":
            if self.reference_errors is None or len(self.reference_errors) == 0:
                raise AecoreError("This model kept no held-out errors; use this data's errors.")
            reference = self.reference_errors
        choice = thresholds.choose_threshold(
            self.errors, method, reference_errors=reference, **params
        )
        return float(choice.value)

    # ---- views for the other pages
    def curve(self, *, tolerance: int = 0, c_alarm: float = 1.0, c_missed: float = 1.0):
        """The sweep thinned for plotting (``aecore.viz.charts.Curve``), or None without labels."""
        key = ("curve", int(tolerance), float(c_alarm), float(c_missed))
        if key not in self._memo:
            from aecore.viz.charts import thin_sweep

            sweep = self.sweep(tolerance=tolerance, c_alarm=c_alarm, c_missed=c_missed)
            if sweep is None:
                return None
            for old in [k for k in self._memo if k[0] == "curve"][:-3]:
                del self._memo[old]
            self._memo[key] = thin_sweep(sweep)
        return self._memo[key]

    def timeline(self):
        """The error signal in time order, reduced for plotting (``aecore.viz.charts.Timeline``)."""
        if "timeline" not in self._memo:
            from aecore.viz.charts import reduce_timeline

            labels = None if self.labels is None else self.labels[self.order]
            self._memo["timeline"] = reduce_timeline(
                self.time_values, self.errors[self.order], labels, x_title=self.time_title
            )
        return self._memo["timeline"]

    def latent_2d(self) -> tuple[np.ndarray, str]:
        """The codes in 2-D and how: the code itself when 2-D, else its first two principal
        components (said in the returned note)."""
        if "latent" not in self._memo:
            from aecore.evaluation.pca import project_2d

            latent = self.scores.latent
            if latent is None:
                raise AecoreError("These scores were computed without latent codes.")
            size = latent.shape[1]
            if size == 2:
                note = "The code is 2-D: plotted as it is."
            elif size == 1:
                note = "The code is 1-D: plotted along x."
            else:
                note = f"The code has {size} dimensions: shown as its first 2 principal components."
            self._memo["latent"] = (project_2d(latent), note)
        return self._memo["latent"]

    def inputs_2d(self, detector: Any) -> np.ndarray:
        """The model's (preprocessed) inputs projected on their first two principal components."""
        if "inputs" not in self._memo:
            from aecore.evaluation.pca import project_2d

            self._memo["inputs"] = project_2d(detector.transform_inputs(self.frame))
        return self._memo["inputs"]

    def ranked_flagged(self, threshold: float, limit: int | None = None) -> np.ndarray:
        """Positions of the flagged rows, highest error first (at most ``limit``); equal errors
        in row order. The order is sorted once, so a threshold move costs O(limit)."""
        if "ranked" not in self._memo:
            self._memo["ranked"] = np.argsort(-self.errors, kind="stable")
        count = self.count_above(threshold)
        return self._memo["ranked"][: count if limit is None else min(count, int(limit))]

    def top_features_text(self, rows: np.ndarray, k: int = 3) -> list[str]:
        """Per row, its ``k`` largest-error features with their share of the row's error."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return []
        top = top_features(self.scores.feature_errors.iloc[rows], k=k)
        parts = []
        for j in range(1, k + 1):
            if f"top{j}_feature" in top:
                names = top[f"top{j}_feature"].astype(str).to_numpy()
                shares = top[f"top{j}_share"].to_numpy(dtype=np.float64)
                parts.append([f"{n} {s:.0%}" for n, s in zip(names, shares, strict=True)])
        return [", ".join(items) for items in zip(*parts, strict=True)] if parts else []

    @property
    def source_rows(self) -> np.ndarray:
        """Each row's ``source_row``: its number in the file, as a spreadsheet shows it (header
        = row 1; ``aecore.workflows.export.SOURCE_ROW_NOTE``), the number every page and export
        uses."""
        if "source_rows" not in self._memo:
            self._memo["source_rows"] = source_rows(np.arange(self.n_rows))
        return self._memo["source_rows"]

    def positions_of(self, numbers: Any) -> np.ndarray:
        """The positions of the rows with these ``source_row`` numbers."""
        return np.asarray(numbers, dtype=np.int64) - FIRST_DATA_ROW

    def row_name(self, row: int, ids: Any = ()) -> str:
        """How a page names the row at position ``row``: "row N" (its ``source_row``), with its
        id columns' values, e.g. ``row 13212 (host=web-3)``."""
        name = f"row {int(self.source_rows[row])}"
        shown = [f"{c}={self.frame[c].iloc[row]}" for c in ids if c in self.frame]
        return name + (f" ({', '.join(shown)})" if shown else "")

    def rows_table(
        self, rows: np.ndarray, threshold: float, k: int = 3, *, ids: Any = ()
    ) -> pd.DataFrame:
        """The given rows: ``source_row`` and the ``ids`` columns first (so each row can be found
        in the input file), then their error, flag and top features, then the other original
        columns."""
        rows = np.asarray(rows, dtype=np.int64)
        part = self.frame.iloc[rows]
        ids = [c for c in dict.fromkeys(ids) if c in part.columns]
        head = pd.DataFrame({SOURCE_ROW: self.source_rows[rows]}, index=part.index)
        middle = pd.DataFrame(
            {
                "error": self.errors[rows],
                "flagged": self.errors[rows] > threshold,
                "top features": self.top_features_text(rows, k),
            },
            index=part.index,
        )
        rest = part[[c for c in part.columns if c not in set(ids) and c != SOURCE_ROW]]
        return pd.concat([head, part[ids], middle, rest], axis=1)

    def mean_feature_errors(self, threshold: float) -> pd.Series:
        """Mean error per feature over the flagged rows, largest first."""
        flagged = self.flags(threshold)
        return self.scores.feature_errors[flagged].mean(axis=0).sort_values(ascending=False)


def reconstruct_row(detector: Any, frame: pd.DataFrame, row: int) -> pd.DataFrame:
    """Input vs reconstruction of one row (position ``row``), in original units and in the
    model units its error is computed in, largest error first:
    ``aecore.evaluation.explain.row_detail``."""
    return row_detail(detector, frame, row)


def pca_comparison(
    detector: Any, frame: pd.DataFrame, *, trained_on_frame: bool = False, seed: int = 0
) -> tuple[dict, str]:
    """``compare_with_pca`` on at most ``COMPARISON_ROWS`` rows, and a note saying on what.

    A model trained on ``frame`` (``trained_on_frame``) is compared on its own training and
    validation rows; otherwise on a sample of ``frame`` (a saved model's rows are not kept)."""
    from aecore.evaluation.pca import compare_with_pca

    rng = np.random.default_rng(seed)

    def sample(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        if len(rows) <= COMPARISON_ROWS:
            return rows
        return np.sort(rng.choice(rows, COMPARISON_ROWS, replace=False))

    split = getattr(detector, "split_", None)
    if trained_on_frame and split is not None and len(split.train):
        train = sample(split.train)
        test = sample(split.validation) if len(split.validation) else None
        note = f"PCA fitted on {len(train):,} of the model's training rows"
        if test is not None:
            note += f"; test = {len(test):,} validation rows"
        result = compare_with_pca(
            detector, frame.iloc[train], None if test is None else frame.iloc[test]
        )
    else:
        rows = sample(np.arange(len(frame)))
        note = f"PCA fitted on {len(rows):,} rows of the current data (not the model's "
        note += "training rows, which are only known for a model trained on this data here)"
        result = compare_with_pca(detector, frame.iloc[rows])
    return result, note
