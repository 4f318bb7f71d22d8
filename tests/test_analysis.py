"""aecore.scored: the scored data behind the dashboard (counts, grids, sweeps, views)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from aecore.errors import AecoreError
from aecore.evaluation.thresholds import sweep
from aecore.scored import (
    ScoredData,
    content_key,
    labels_of,
    pca_comparison,
    reconstruct_row,
    threshold_grid,
    time_axis,
)
from tests.helpers import numeric_frame


def _scored(errors, frame=None, **kwargs) -> ScoredData:
    errors = np.asarray(errors, dtype=np.float32)
    frame = pd.DataFrame(index=range(len(errors))) if frame is None else frame
    features = pd.DataFrame({"a": errors, "b": errors / 2}, index=frame.index)
    scores = SimpleNamespace(row_error=errors, feature_errors=features, latent=None)
    return ScoredData(frame, scores, **kwargs)


def test_content_key_identifies_bytes():
    assert content_key(b"a,b\n1,2\n") == content_key(b"a,b\n1,2\n")
    assert content_key(b"a,b\n1,2\n") != content_key(b"a,b\n1,3\n")


def test_counts_match_a_direct_comparison():
    errors = np.random.default_rng(0).lognormal(size=10_000)
    scored = _scored(errors)
    for threshold in (0.1, 1.0, float(scored.errors[17]), 50.0):
        assert scored.count_above(threshold) == int((scored.errors > threshold).sum())
        assert scored.flags(threshold).sum() == scored.count_above(threshold)


def test_threshold_grid_holds_the_extras_exactly_and_one_value_per_label():
    errors = np.sort(np.random.default_rng(1).lognormal(size=5_000))
    exact = 0.123456789
    grid = threshold_grid(errors, (exact,))
    assert exact in grid
    assert grid == sorted(grid)
    labels = [f"{v:.4g}" for v in grid]
    assert len(labels) == len(set(labels))
    assert grid[0] < errors[0] and grid[-1] >= errors[-1]  # every row / no row flagged
    round_ends = threshold_grid(np.array([0.5, 1.0, 2.0]))
    assert round_ends[0] < 0.5 and round_ends[-1] == 2.0


def test_options_memoise_the_grid_and_add_the_current_threshold():
    scored = _scored(np.linspace(0.0, 2.0, 1_000))
    assert 0.7777777 in scored.options(0.7777777)
    assert 0.7777777 not in scored.options()


def test_labels_and_time_order():
    frame = pd.DataFrame(
        {
            "timestamp": ["2026-01-01T00:02:00", "2026-01-01T00:00:00", "2026-01-01T00:01:00"],
            "label": ["attack", "normal", "normal"],
        }
    )
    assert labels_of(frame, "label").tolist() == [1, 0, 0]
    assert labels_of(frame, None) is None
    order, x, title = time_axis(frame, "timestamp")
    assert order.tolist() == [1, 2, 0]
    assert title == "timestamp" and x[0] < x[-1]
    order, x, title = time_axis(frame, None)
    assert order.tolist() == [0, 1, 2] and title == "row"
    assert x.tolist() == [2, 3, 4], "rows are numbered as in the file (header = row 1)"


def test_sweep_runs_in_time_order_and_choose_uses_it():
    rng = np.random.default_rng(2)
    n = 2_000
    labels = (rng.random(n) < 0.05).astype(int)
    errors = rng.normal(size=n) + 3 * labels
    shuffled = rng.permutation(n)
    frame = pd.DataFrame(
        {"t": pd.date_range("2026-01-01", periods=n, freq="min")[shuffled], "label": labels}
    )
    errors_shuffled = errors.copy()
    scored = _scored(errors_shuffled, frame, label_column="label", time_column="t")
    ordered = np.argsort(frame["t"].to_numpy())
    expected = sweep(errors_shuffled[ordered].astype(np.float32), labels[ordered], tolerance=2)
    assert scored.sweep(tolerance=2).min_cost().value == expected.min_cost().value
    best = sweep(errors_shuffled.astype(np.float32), labels).best_f1().value
    assert scored.choose("best_f1") == best
    assert scored.sweep(tolerance=2) is scored.sweep(tolerance=2)  # memoised
    curve = scored.curve(tolerance=2)
    assert curve.cost[curve.best_cost] == expected.cost.min()


def test_choose_percentile_on_data_or_on_the_model_reference():
    errors = np.arange(1, 101, dtype=float)
    scored = _scored(errors, reference_errors=np.full(50, 7.0))
    assert scored.choose("percentile", percentile=90.0) == pytest.approx(np.percentile(errors, 90))
    assert scored.choose("percentile", basis="model", percentile=90.0) == pytest.approx(7.0)
    with pytest.raises(AecoreError, match="label"):
        scored.choose("min_cost")


def test_ranked_flagged_rows_and_tables():
    errors = np.array([0.5, 3.0, 0.1, 2.0])
    scored = _scored(errors, pd.DataFrame({"x": [10, 20, 30, 40]}))
    assert scored.ranked_flagged(1.0).tolist() == [1, 3]
    assert scored.ranked_flagged(1.0, limit=1).tolist() == [1]
    table = scored.rows_table(np.array([3]), threshold=1.0)
    assert table["source_row"].tolist() == [5] and bool(table["flagged"].iloc[0])
    assert table["x"].tolist() == [40]
    assert scored.top_features_text(np.array([1]), k=2) == ["a 67%, b 33%"]
    assert scored.mean_feature_errors(1.0).index.tolist() == ["a", "b"]


def test_timeline_and_histogram_are_memoised():
    scored = _scored(np.random.default_rng(3).lognormal(size=3_000))
    assert scored.timeline() is scored.timeline()
    counts, edges = scored.histogram(log=True)
    assert counts.sum() == 3_000 and len(counts) == 100
    assert scored.histogram(log=True)[0] is counts


def test_scores_must_cover_the_rows():
    scores = SimpleNamespace(row_error=np.ones(3, np.float32), feature_errors=None, latent=None)
    with pytest.raises(AecoreError, match="score it again"):
        ScoredData(pd.DataFrame(index=range(4)), scores)


@pytest.fixture(scope="module")
def small_detector():
    from aecore.detector import AnomalyDetector

    frame = numeric_frame(n_rows=300, n_features=5, seed=4)
    return AnomalyDetector(epochs=3, code_size=2, hidden_sizes=[8]).fit(frame), frame


def test_reconstruct_row_matches_the_scoring_pass(small_detector):
    detector, frame = small_detector
    row = 7
    detail = reconstruct_row(detector, frame, row)
    scores = detector.score_rows(frame, reconstruction=True)
    assert detail["error"].sum() == pytest.approx(scores.feature_errors.iloc[row].sum(), rel=1e-4)
    assert list(detail["error"]) == sorted(detail["error"], reverse=True)
    for feature in frame.columns:
        assert detail.loc[feature, "input"] == frame[feature].iloc[row]
        assert detail.loc[feature, "reconstruction"] == pytest.approx(
            scores.reconstruction[feature].iloc[row], rel=1e-4, abs=1e-5
        )
        assert detail.loc[feature, "difference"] == pytest.approx(
            detail.loc[feature, "reconstruction"] - detail.loc[feature, "input"]
        )
    assert detail["share of row error"].sum() == pytest.approx(1.0)


def test_pca_comparison_says_which_rows_it_used(small_detector):
    detector, frame = small_detector
    result, note = pca_comparison(detector, frame, trained_on_frame=True)
    assert "training rows" in note and "pca_test_mse" in result
    result, note = pca_comparison(detector, frame)
    assert "current data" in note and result["code_size"] == 2
