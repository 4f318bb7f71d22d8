"""Classical detectors beside the autoencoder: an IsolationForest and the k-nearest-neighbours
distance, fitted on the rows the autoencoder trained on and scoring the same standardised
inputs, with how far they agree with the autoencoder and the rows one ranks high and the other
does not.

A comparison only: the autoencoder's score, threshold and flags are never changed by it.
``fit_classical`` does the slow part once (fit and score); ``ClassicalScores.compare`` then
gives the comparison at any threshold in O(n), so a threshold move never fits again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors

from aecore.errors import AecoreError

KNN_NEIGHBOURS = 5  # PyOD's KNN default: the distance to the 5th nearest training row
MAX_FIT_ROWS = 10_000  # training rows the k-NN distance is measured to (a seeded sample beyond)
MIN_ROWS = 10
TABLE_ROWS = 20
AUTOENCODER = "autoencoder"
DETECTORS = {"isolation_forest": "IsolationForest", "knn": "k-NN distance"}
GROUPS = ("other rows", "flagged and in the top set", "top set only", "flagged only")


@dataclass(frozen=True)
class DetectorComparison:
    """The autoencoder beside the classical detectors at one threshold.

    ``top_n`` is the number of rows the autoencoder flags (at least 1): each classical
    detector's "top set" is its ``top_n`` highest-scoring rows. ``overlap[name]`` is the share of
    the autoencoder's flagged rows that the detector also has in its top set (NaN when no row
    is flagged); ``chance_overlap`` what a random ranking would give. ``only_classical[name]``
    lists (up to ``TABLE_ROWS``) rows in the detector's top set that the autoencoder does not
    flag, highest classical score first; ``only_autoencoder[name]`` the flagged rows the
    detector ranks below its top set, highest autoencoder error first. Tables are indexed by
    row position and give each row's score, rank (1 = highest) and percentile (100 = highest)
    under both; ``n_only_classical`` and ``n_only_autoencoder`` count all such rows."""

    autoencoder: np.ndarray
    isolation_forest: np.ndarray
    knn: np.ndarray
    threshold: float
    n_flagged: int
    top_n: int
    spearman: dict[str, float]
    overlap: dict[str, float]
    chance_overlap: float
    only_classical: dict[str, pd.DataFrame]
    only_autoencoder: dict[str, pd.DataFrame]
    n_only_classical: dict[str, int]
    n_only_autoencoder: dict[str, int]
    ranks: dict[str, np.ndarray]  # per row, 0 = the highest score (ties in row order)
    percentiles: dict[str, np.ndarray]  # per row, 100 = the highest score
    fit_note: str
    summary: str

    def groups(self, name: str) -> np.ndarray:
        """Per row, where it falls beside the detector ``name`` (``GROUPS``): 0 neither flagged
        nor in the detector's top set, 1 both, 2 in the detector's top set only, 3 flagged by
        the autoencoder only."""
        autoencoder = self.ranks[AUTOENCODER] < self.n_flagged
        classical = self.ranks[name] < self.top_n
        groups = np.zeros(len(autoencoder), dtype=np.int8)
        groups[autoencoder & classical] = 1
        groups[classical & ~autoencoder] = 2
        groups[autoencoder & ~classical] = 3
        return groups


@dataclass(frozen=True, eq=False)
class ClassicalScores:
    """Every row's autoencoder score and classical scores (higher = more anomalous), their
    ranks and percentiles, and the Spearman rank correlations: what does not depend on the
    threshold, computed once by ``fit_classical``."""

    autoencoder: np.ndarray
    scores: dict[str, np.ndarray]
    ranks: dict[str, np.ndarray]  # 0 = the highest score (ties in row order)
    percentiles: dict[str, np.ndarray]  # 100 = the highest score
    spearman: dict[str, float]
    fit_note: str

    @property
    def n_rows(self) -> int:
        return int(len(self.autoencoder))

    def compare(self, threshold: float, *, table_rows: int = TABLE_ROWS) -> DetectorComparison:
        """The comparison at ``threshold`` (a row is flagged when its error is above it)."""
        threshold = float(threshold)
        n_flagged = int(np.count_nonzero(self.autoencoder > threshold))
        top_n = max(n_flagged, 1)
        # The n_flagged highest errors are exactly the flagged rows (a flagged row's error is
        # above every other row's).
        flagged = self.ranks[AUTOENCODER] < n_flagged
        in_top = {name: self.ranks[name] < top_n for name in DETECTORS}
        overlap, only_classical, only_autoencoder, n_classical, n_autoencoder = {}, {}, {}, {}, {}
        for name in DETECTORS:
            shared = np.count_nonzero(flagged & in_top[name])
            overlap[name] = float(shared / n_flagged) if n_flagged else float("nan")
            classical_rows = np.flatnonzero(in_top[name] & ~flagged)
            autoencoder_rows = np.flatnonzero(flagged & ~in_top[name])
            n_classical[name], n_autoencoder[name] = len(classical_rows), len(autoencoder_rows)
            only_classical[name] = self._table(name, classical_rows, by=name, limit=table_rows)
            only_autoencoder[name] = self._table(
                name, autoencoder_rows, by=AUTOENCODER, limit=table_rows
            )
        comparison = DetectorComparison(
            autoencoder=self.autoencoder,
            isolation_forest=self.scores["isolation_forest"],
            knn=self.scores["knn"],
            threshold=threshold,
            n_flagged=n_flagged,
            top_n=top_n,
            spearman=dict(self.spearman),
            overlap=overlap,
            chance_overlap=top_n / self.n_rows,
            only_classical=only_classical,
            only_autoencoder=only_autoencoder,
            n_only_classical=n_classical,
            n_only_autoencoder=n_autoencoder,
            ranks=self.ranks,
            percentiles=self.percentiles,
            fit_note=self.fit_note,
            summary="",
        )
        return _with_summary(comparison)

    def _table(self, name: str, rows: np.ndarray, *, by: str, limit: int) -> pd.DataFrame:
        """``rows`` sorted by the ``by`` detector's rank (first ``limit``), with each row's
        score, rank and percentile under the autoencoder and the detector ``name``."""
        rows = rows[np.argsort(self.ranks[by][rows], kind="stable")][:limit]
        columns = {}
        for key, title in ((AUTOENCODER, "autoencoder"), (name, DETECTORS[name])):
            columns[f"{title} score"] = self.scores[key][rows]
            columns[f"{title} rank"] = self.ranks[key][rows] + 1
            columns[f"{title} percentile"] = self.percentiles[key][rows]
        return pd.DataFrame(columns, index=pd.Index(rows, name="position"))


def fit_classical(
    detector,
    frame: pd.DataFrame,
    *,
    autoencoder_scores: np.ndarray | None = None,
    trained_on_frame: bool = True,
    random_state: int = 0,
    max_fit_rows: int = MAX_FIT_ROWS,
) -> ClassicalScores:
    """Fit an IsolationForest and a k-NN distance on the detector's standardised inputs
    (``detector.transform_inputs``) and score every row of ``frame``.

    Both are fitted on the rows the autoencoder trained on (``detector.split_.train``) when
    the detector was trained on ``frame`` (``trained_on_frame``), else on every row of
    ``frame``; the k-NN distance on a seeded sample of at most ``max_fit_rows`` of them. A
    row's k-NN score is its distance to its ``KNN_NEIGHBOURS``-th nearest fitted row, a fitted
    row not counting as its own neighbour. ``autoencoder_scores`` (one per row, e.g. from a
    scoring pass already made) saves scoring again; by default ``decision_function``."""
    _check_detector(detector)
    if not isinstance(frame, pd.DataFrame):
        raise AecoreError("The comparison needs the scored data as a table (a DataFrame).")
    n_rows = len(frame)
    if n_rows < MIN_ROWS:
        raise AecoreError(
            f"The comparison with classical detectors needs at least {MIN_ROWS} rows; the "
            f"data has {n_rows:,}."
        )
    if int(max_fit_rows) < MIN_ROWS:
        raise AecoreError(f"max_fit_rows must be at least {MIN_ROWS}; got {max_fit_rows}.")
    inputs = np.asarray(detector.transform_inputs(frame), dtype=np.float32)
    if autoencoder_scores is None:
        autoencoder_scores = detector.decision_function(frame)
    autoencoder_scores = np.asarray(autoencoder_scores, dtype=np.float64)
    if autoencoder_scores.shape != (n_rows,):
        raise AecoreError(
            f"Expected one autoencoder score per row ({n_rows:,}); got "
            f"{autoencoder_scores.size:,}: score the data again."
        )
    fit_rows, where = _fit_rows(detector, n_rows, trained_on_frame)
    if len(fit_rows) < MIN_ROWS:
        raise AecoreError(
            f"The classical detectors need at least {MIN_ROWS} rows to fit on; {where} has "
            f"{len(fit_rows):,}."
        )
    forest = IsolationForest(random_state=random_state).fit(inputs[fit_rows])
    scores = {AUTOENCODER: autoencoder_scores, "isolation_forest": -forest.score_samples(inputs)}
    knn_rows = fit_rows
    if len(fit_rows) > max_fit_rows:
        rng = np.random.default_rng(random_state)
        knn_rows = np.sort(rng.choice(fit_rows, int(max_fit_rows), replace=False))
    scores["knn"] = knn_distance(inputs, knn_rows)
    ranks = {name: np.argsort(np.argsort(-s, kind="stable"), kind="stable")
             for name, s in scores.items()}  # fmt: skip
    percentiles = {name: 100.0 * rankdata(s, method="average") / n_rows
                   for name, s in scores.items()}  # fmt: skip
    spearman = {name: _correlation(percentiles[AUTOENCODER], percentiles[name])
                for name in DETECTORS}  # fmt: skip
    note = f"IsolationForest fitted on {len(fit_rows):,} rows ({where})"
    if len(knn_rows) < len(fit_rows):
        note += (
            f"; k-NN distances measured to a random sample of {len(knn_rows):,} of them (to "
            "keep it fast)"
        )
    else:
        note += "; k-NN distances measured to the same rows"
    return ClassicalScores(autoencoder_scores, scores, ranks, percentiles, spearman, note)


def compare_detectors(
    detector,
    frame: pd.DataFrame,
    *,
    threshold: float | None = None,
    random_state: int = 0,
    max_fit_rows: int = MAX_FIT_ROWS,
    trained_on_frame: bool = True,
    autoencoder_scores: np.ndarray | None = None,
) -> DetectorComparison:
    """``fit_classical`` then ``compare`` at ``threshold`` (the detector's ``threshold_`` by
    default): the autoencoder beside an IsolationForest and a k-NN distance on ``frame``."""
    classical = fit_classical(
        detector, frame, autoencoder_scores=autoencoder_scores, trained_on_frame=trained_on_frame,
        random_state=random_state, max_fit_rows=max_fit_rows,
    )  # fmt: skip
    return classical.compare(detector.threshold_ if threshold is None else threshold)


def knn_distance(inputs: np.ndarray, fit_rows: np.ndarray) -> np.ndarray:
    """Each row's distance to its ``KNN_NEIGHBOURS``-th nearest row among ``fit_rows`` (fewer
    neighbours when there are few rows); a fitted row is not its own neighbour."""
    k = min(KNN_NEIGHBOURS, len(fit_rows) - 1)
    neighbours = NearestNeighbors(n_neighbors=k).fit(inputs[fit_rows])
    distances = neighbours.kneighbors(inputs, n_neighbors=k)[0][:, -1].astype(np.float64)
    distances[fit_rows] = neighbours.kneighbors()[0][:, -1]  # without each row itself
    return distances


def _check_detector(detector) -> None:
    if not all(hasattr(detector, name) for name in ("transform_inputs", "decision_function")):
        raise AecoreError("The comparison needs a fitted AnomalyDetector.")
    check = getattr(detector, "check_fitted", None)
    if check is not None:
        check()  # NotFittedError, an AecoreError, with its own message
    if not hasattr(detector, "threshold_"):
        raise AecoreError("The comparison needs a fitted AnomalyDetector (it has no threshold).")


def _fit_rows(detector, n_rows: int, trained_on_frame: bool) -> tuple[np.ndarray, str]:
    """The rows the classical detectors learn from, and how to name them."""
    split = getattr(detector, "split_", None)
    train = None if split is None else np.asarray(split.train, dtype=np.int64)
    if trained_on_frame and train is not None and len(train) and int(train.max()) < n_rows:
        return train, "the rows the autoencoder trained on"
    return np.arange(n_rows), "every row of this data; the model's training rows are not known"


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two rank vectors (Spearman's), NaN when one is constant."""
    if np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def agreement_word(rho: float) -> str:
    """How far a classical detector's ranking agrees with the autoencoder's, in words, from
    their Spearman correlation (a verb phrase: "agrees closely")."""
    if not math.isfinite(rho):
        return "cannot be compared (one of the scores is the same on every row)"
    if rho >= 0.8:
        return "agrees closely"
    if rho >= 0.5:
        return "broadly agrees"
    if rho >= 0.2:
        return "agrees only weakly"
    return "ranks the rows differently"


def _with_summary(comparison: DetectorComparison) -> DetectorComparison:
    return replace(comparison, summary=summary_text(comparison))


def _rho(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "n/a"


def summary_text(comparison: DetectorComparison) -> str:
    """One plain paragraph for the analyst: how far the detectors agree, and what the
    disagreement means."""
    c = comparison
    forest, knn = c.spearman["isolation_forest"], c.spearman["knn"]
    text = (
        f"Over all {len(c.autoencoder):,} rows, the IsolationForest {agreement_word(forest)} "
        f"with the autoencoder on which rows are more unusual (rank correlation {_rho(forest)}; "
        f"1 is the same order, 0 no relation) and the k-NN distance {agreement_word(knn)} "
        f"({_rho(knn)}). "
    )
    if c.n_flagged:
        shared = {name: c.top_n - c.n_only_autoencoder[name] for name in DETECTORS}
        text += (
            f"Of the {c.n_flagged:,} rows the autoencoder flags, the IsolationForest also has "
            f"{shared['isolation_forest']:,} ({c.overlap['isolation_forest']:.0%}) among its "
            f"{c.top_n:,} highest scores and the k-NN distance {shared['knn']:,} "
            f"({c.overlap['knn']:.0%}); a random ranking would share about "
            f"{c.chance_overlap:.0%}. "
        )
    else:
        text += (
            "No row is flagged at this threshold, so there are no flags to compare: lower the "
            "threshold to see which rows the detectors share. "
        )
    if any(c.n_only_classical.values()):
        text += (
            f"Rows a classical detector ranks that high but the autoencoder does not flag "
            f"({c.n_only_classical['isolation_forest']:,} for the IsolationForest, "
            f"{c.n_only_classical['knn']:,} for the k-NN distance) are worth a look: they may "
            "be anomalies the autoencoder learned to rebuild, such as a group of similar "
            "unusual rows. "
        )
    else:
        text += "Every row the classical detectors rank that high is flagged by the autoencoder. "
    text += (
        "A row only the autoencoder flags is one it cannot rebuild from what it learned "
        "of the normal rows; the Explain page shows which features carry each of its flags, "
        "which a classical score cannot. The classical scores are a comparison only: they do "
        "not change the autoencoder's score or its flags."
    )
    return text
