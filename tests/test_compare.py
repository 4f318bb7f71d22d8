"""Classical detectors beside the autoencoder (``aecore.evaluation.compare``): they agree where
both find the same anomalies, the rows only one of them ranks high are listed, and the
autoencoder's own score and flags never change. Small seeded data, a few epochs."""

import numpy as np
import pandas as pd
import pytest

from aecore.detector import AnomalyDetector
from aecore.errors import AecoreError
from aecore.evaluation.compare import (
    DETECTORS,
    compare_detectors,
    fit_classical,
    knn_distance,
)
from tests.helpers import numeric_frame

PLANTED = np.array([50, 100, 150, 200, 250])
GAP = np.arange(300, 306)


@pytest.fixture(scope="module")
def planted():
    """300 correlated rows, 5 of them far off in random directions; unlabelled."""
    frame = numeric_frame(300, 6, seed=0)
    rng = np.random.default_rng(5)
    far = rng.choice([-1, 1], size=(len(PLANTED), 6)) * rng.uniform(6, 9, size=(len(PLANTED), 6))
    frame.iloc[PLANTED] = far
    detector = AnomalyDetector(code_size=2, hidden_sizes=[8], epochs=10, random_state=0)
    return detector.fit(frame), frame


@pytest.fixture(scope="module")
def gap():
    """Two tight clusters along one direction and a few labelled rows in the empty gap between
    them: on the line the linear autoencoder rebuilds, so their error is small, but far from
    every training row, so their k-NN distance is large."""
    rng = np.random.default_rng(1)
    t = np.where(rng.random(300) < 0.5, -3.0, 3.0) + 0.3 * rng.normal(size=300)
    t = np.concatenate([t, np.linspace(-0.4, 0.4, len(GAP))])
    values = np.outer(t, rng.normal(size=5))
    values[:300] += 0.3 * rng.normal(size=(300, 5))  # the gap rows lie exactly on the line
    frame = pd.DataFrame(values, columns=[f"f{i}" for i in range(5)])
    frame["label"] = np.r_[np.zeros(300, dtype=int), np.ones(len(GAP), dtype=int)]
    detector = AnomalyDetector(architecture="linear", code_size=1, epochs=15, random_state=0)
    return detector.fit(frame), frame


def test_planted_anomalies_found_by_all_three_make_them_agree(planted):
    detector, frame = planted
    comparison = compare_detectors(detector, frame)
    flagged = np.flatnonzero(detector.predict(frame))
    assert set(PLANTED) <= set(flagged)
    assert comparison.n_flagged == comparison.top_n == len(flagged)
    for name in DETECTORS:
        assert (comparison.ranks[name][PLANTED] < comparison.top_n).all(), name
        assert comparison.overlap[name] >= 0.8
        assert comparison.spearman[name] > 0.5
        assert not set(PLANTED) & set(comparison.only_classical[name].index)
        assert not set(PLANTED) & set(comparison.only_autoencoder[name].index)
    assert comparison.chance_overlap == pytest.approx(len(flagged) / len(frame))
    assert "agrees" in comparison.summary and "comparison only" in comparison.summary


def test_rows_only_the_knn_distance_ranks_high_are_listed(gap):
    detector, frame = gap
    comparison = compare_detectors(detector, frame)
    assert not detector.predict(frame)[GAP].any()  # the autoencoder rebuilds them
    table = comparison.only_classical["knn"]
    assert set(GAP) <= set(table.index)
    shown = table.loc[GAP]
    assert (shown["k-NN distance rank"] <= comparison.top_n).all()
    assert (shown["autoencoder score"] <= detector.threshold_).all()
    assert (shown["autoencoder rank"] > comparison.top_n).all()
    assert (shown["k-NN distance percentile"] > 90).all()
    assert comparison.n_only_classical["knn"] >= len(GAP)
    assert "worth a look" in comparison.summary
    # Both detectors learned from the normal rows only, as the autoencoder did.
    assert "the rows the autoencoder trained on" in comparison.fit_note
    assert np.isin(detector.split_.train, GAP).sum() == 0


def test_the_autoencoder_score_and_flags_are_left_as_they_are(planted):
    detector, frame = planted
    before, threshold = detector.decision_function(frame), detector.threshold_
    classical = fit_classical(detector, frame)
    comparison = classical.compare(threshold)
    np.testing.assert_array_equal(comparison.autoencoder, before)
    assert detector.threshold_ == threshold
    np.testing.assert_array_equal(detector.decision_function(frame), before)
    # At a threshold above every error nothing is flagged: the single highest row is compared.
    none = classical.compare(float(before.max()) + 1.0)
    assert none.n_flagged == 0 and none.top_n == 1
    assert all(np.isnan(share) for share in none.overlap.values())
    assert all(len(table) == 0 for table in none.only_autoencoder.values())
    assert all(len(none.only_classical[name]) == 1 for name in DETECTORS)
    assert not (none.groups("knn") % 2).any()  # no row counts as flagged
    assert "No row is flagged" in none.summary


def test_a_given_scoring_pass_is_used_and_large_data_subsamples_the_knn_rows(planted):
    detector, frame = planted
    errors = detector.decision_function(frame)
    classical = fit_classical(detector, frame, autoencoder_scores=errors, max_fit_rows=50)
    assert "random sample of 50" in classical.fit_note
    assert classical.n_rows == len(frame)
    with pytest.raises(AecoreError, match="one autoencoder score per row"):
        fit_classical(detector, frame, autoencoder_scores=errors[:10])


def test_a_saved_model_on_other_data_learns_from_every_row_of_it(planted):
    detector, frame = planted
    classical = fit_classical(detector, frame.iloc[:120], trained_on_frame=False)
    assert "every row of this data" in classical.fit_note
    assert all(len(scores) == 120 for scores in classical.scores.values())


def test_knn_distance_is_to_the_fifth_neighbour_without_the_row_itself():
    points = np.arange(12, dtype=np.float32)[:, None]
    distances = knn_distance(points, np.arange(10))
    assert distances[0] == 5  # neighbours 1..5, not itself
    assert distances[4] == 3  # 3, 5, 2, 6 and then 1 or 7
    assert distances[10] == 5 and distances[11] == 6  # not fitted: 9..5 and 9..5 + 1


def test_bad_input_gets_one_clear_message(planted):
    detector, frame = planted
    with pytest.raises(AecoreError, match="at least 10 rows"):
        compare_detectors(detector, frame.head(5))
    with pytest.raises(AecoreError, match="not fitted"):
        compare_detectors(AnomalyDetector(), frame)
    with pytest.raises(AecoreError, match="fitted AnomalyDetector"):
        compare_detectors(object(), frame)
