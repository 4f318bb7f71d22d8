"""The estimator: fits, scores, thresholds and explains, on small seeded data."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from aecore import AecoreError, AnomalyDetector, NotFittedError
from aecore.datasets import gaussian
from aecore.model.architectures import ARCHITECTURES
from tests.helpers import mixed_frame, numeric_frame

FAST = {"epochs": 4, "batch_size": 64}


def test_default_detector_ranks_planted_gaussian_anomalies_first():
    frame = gaussian()
    detector = AnomalyDetector().fit(frame)
    errors = detector.reconstruction_error(frame)
    labels = (frame["label"] == 1).to_numpy()
    assert roc_auc_score(labels, errors) >= 0.99
    assert detector.trained_on_ == "normal"  # the label column was used to train on normals
    # The default cut flags the planted anomalies and few normal rows.
    flags = detector.predict(frame)
    assert flags[labels].mean() > 0.9
    assert flags[~labels].mean() < 0.05


def test_default_detector_needs_no_arguments_on_a_numeric_frame():
    frame = numeric_frame(400, 8)
    detector = AnomalyDetector().fit(frame)
    assert detector.threshold_ > 0
    assert detector.history_["epochs_run"] >= 1
    assert 1 <= detector.code_size_ <= 4


def test_works_with_a_plain_numpy_array_and_y():
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(300, 5)), rng.normal(6, 1, size=(10, 5))])
    y = np.r_[np.zeros(300), np.ones(10)]
    detector = AnomalyDetector(**FAST).fit(X, y)
    assert roc_auc_score(y, detector.decision_function(X)) > 0.95
    # Measured on the held-out 20 % of each class: 2 of the 10 anomalies.
    assert detector.evaluation_["n_anomalies"] == 2


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_fits_and_scores(architecture):
    frame = numeric_frame(200, 7)  # an odd feature count, for the convolutional padding
    detector = AnomalyDetector(architecture=architecture, code_size=2, **FAST).fit(frame)
    scores = detector.score_rows(frame, reconstruction=True)
    assert scores.row_error.shape == (200,)
    assert np.isfinite(scores.row_error).all()
    assert scores.feature_errors.shape == (200, 7)
    assert scores.latent.shape == (200, 2)
    assert list(scores.reconstruction.columns) == list(frame.columns)
    # The per-feature errors add up to the row error.
    np.testing.assert_allclose(
        scores.feature_errors.to_numpy().sum(axis=1), scores.row_error, rtol=1e-4, atol=1e-6
    )


def test_convolutional_windows_of_consecutive_rows():
    frame = numeric_frame(160, 5)
    detector = AnomalyDetector(architecture="conv", window=6, code_size=3, **FAST).fit(frame)
    errors = detector.reconstruction_error(frame)
    assert errors.shape == (160,)
    # A row's score does not depend on how the frame was shuffled: windows follow the row order
    # of the frame given (here the same), and results come back aligned with input rows.
    assert np.isfinite(errors).all()


def test_same_seed_same_scores_and_different_seed_differs():
    frame = numeric_frame(200, 6)
    a = AnomalyDetector(random_state=3, **FAST).fit(frame).reconstruction_error(frame)
    b = AnomalyDetector(random_state=3, **FAST).fit(frame).reconstruction_error(frame)
    c = AnomalyDetector(random_state=4, **FAST).fit(frame).reconstruction_error(frame)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_unseen_category_scores_without_error_and_groups_add_back():
    frame = mixed_frame(300)
    detector = AnomalyDetector(**FAST).fit(frame)
    new = frame.head(5).copy()
    new.loc[new.index[0], "protocol"] = "quic"  # never seen in training
    scores = detector.score_rows(new)
    assert np.isfinite(scores.row_error).all()
    assert list(scores.feature_errors.columns) == ["bytes", "packets", "duration", "protocol"]
    np.testing.assert_allclose(
        scores.feature_errors.sum(axis=1).to_numpy(), scores.row_error, rtol=1e-4
    )


def test_reordered_and_extra_columns_score_identically():
    frame = mixed_frame(200)
    detector = AnomalyDetector(**FAST).fit(frame)
    shuffled = frame[["protocol", "duration", "bytes", "packets"]].assign(extra=1.0)
    np.testing.assert_allclose(
        detector.reconstruction_error(frame), detector.reconstruction_error(shuffled), rtol=1e-6
    )


def test_missing_feature_columns_are_all_named():
    detector = AnomalyDetector(**FAST).fit(mixed_frame(200))
    with pytest.raises(AecoreError, match="'bytes'.*'packets'"):
        detector.score_rows(mixed_frame(20).drop(columns=["bytes", "packets"]))


def test_methods_before_fit_raise_a_clear_error():
    detector = AnomalyDetector()
    for method in ("reconstruction_error", "feature_errors", "encode", "reconstruct", "predict"):
        with pytest.raises(NotFittedError, match="not fitted"):
            getattr(detector, method)(numeric_frame(10))


def test_constructor_only_stores_arguments():
    detector = AnomalyDetector(architecture="nonsense", code_size=-5)
    assert detector.get_params()["architecture"] == "nonsense"
    with pytest.raises(AecoreError, match="Unknown architecture"):
        detector.fit(numeric_frame(100))


def test_progress_hook_reports_every_epoch_and_cancel_stops_early():
    frame = numeric_frame(300)
    seen = []
    AnomalyDetector(epochs=5, patience=10, batch_size=32).fit(frame, progress=seen.append)
    # Unlabelled rows: the first model's epochs, then the second model's (see second_model).
    assert [p.epoch for p in seen if p.stage == "first"] == [1, 2, 3, 4, 5]
    assert [p.epoch for p in seen if p.stage == "second"] == [1, 2, 3, 4, 5]
    assert all(p.val_loss is not None and p.elapsed >= 0 for p in seen)

    calls = []

    def stop_after_two_epochs():
        return len(calls) >= 2

    detector = AnomalyDetector(epochs=50, patience=50, batch_size=32).fit(
        frame, progress=calls.append, should_stop=stop_after_two_epochs
    )
    assert detector.history_["cancelled"]
    assert detector.history_["epochs_run"] <= 3
    assert detector.second_autoencoder_ is None  # cancelled: no second model is started
    assert np.isfinite(detector.reconstruction_error(frame)).all()  # still usable


def test_early_stopping_restores_the_best_epoch():
    frame = numeric_frame(300)
    detector = AnomalyDetector(
        epochs=40, patience=2, learning_rate=0.05, batch_size=16, memory=None
    ).fit(frame)  # the score without the prototypes' half: the network's loss
    history = detector.history_
    best = history["best_epoch"]
    assert min(history["val_loss"]) == pytest.approx(history["val_loss"][best - 1])
    validation = frame.iloc[detector.split_.validation]
    restored = float(np.mean(detector.reconstruction_error(validation)))
    assert restored == pytest.approx(history["best_val_loss"], rel=0.05)


def test_chronological_split_trains_on_the_earliest_rows():
    frame = numeric_frame(200).assign(
        timestamp=pd.date_range("2026-01-01", periods=200, freq="min").astype(str)[::-1]
    )
    detector = AnomalyDetector(split="chronological", test_share=0.2, **FAST).fit(frame)
    assert detector.roles_.time == "timestamp"
    # The file is in reverse time order: the earliest rows are at the end.
    assert detector.split_.train.min() >= 80
    assert detector.split_.test.max() < 40


def test_threshold_methods_and_moving_the_threshold():
    frame = gaussian()
    for method in ("percentile", "mean_std", "best_f1", "min_cost"):
        detector = AnomalyDetector(threshold_method=method, epochs=5).fit(frame)
        assert detector.threshold_choice_.method == method
        assert np.isfinite(detector.threshold_)
    errors = detector.reconstruction_error(frame)
    detector.set_threshold(float(np.median(errors)))
    assert detector.predict(frame).mean() == pytest.approx(0.5, abs=0.01)
    with pytest.raises(AecoreError):
        AnomalyDetector(threshold_method="best_f1", epochs=2).fit(frame.drop(columns="label"))


def test_with_labels_metrics_are_measured_on_held_out_rows_only():
    """Issue 13 #8: with labels, a stratified share of the rows is held out of training and of
    the threshold by default, and the metrics are measured on those rows alone."""
    from aecore.evaluation.metrics import evaluation_scope_text

    frame = gaussian(seed=3, n_normal=400, n_anomalies=40)
    detector = AnomalyDetector(**FAST).fit(frame)
    split, evaluation = detector.split_, detector.evaluation_
    held = split.held_out
    assert len(held) == 88  # 20 % of each class: 80 normal rows and 8 anomalies
    labels = frame["label"].to_numpy()
    assert labels[held].sum() == 8
    assert not set(held) & (set(split.train) | set(split.validation))
    assert evaluation["scope"] == "held-out"
    assert evaluation["n_rows"] == 88 and evaluation["n_anomalies"] == 8
    assert evaluation_scope_text(evaluation) == (
        "measured on 88 held-out rows the model never trained on"
    )
    # An explicit share of 0 measures on the rows that did not train, and says so.
    none_held = AnomalyDetector(test_share=0.0, **FAST).fit(frame)
    assert none_held.evaluation_["scope"] == "not trained on"
    assert "did not train on" in evaluation_scope_text(none_held.evaluation_)
    # Without labels nothing is held out: every row may train.
    unlabelled = AnomalyDetector(**FAST).fit(frame.drop(columns="label"))
    assert unlabelled.split_.sizes()["test"] == 0 and unlabelled.evaluation_ is None


def test_held_out_rows_are_the_latest_with_a_time_column_and_never_set_the_threshold():
    frame = gaussian(seed=4, n_normal=300, n_anomalies=30)
    frame["timestamp"] = pd.date_range("2026-01-01", periods=len(frame), freq="min").astype(str)
    detector = AnomalyDetector(threshold_method="best_f1", **FAST).fit(frame)
    held = detector.split_.held_out
    assert sorted(held) == list(range(len(frame) - 66, len(frame)))  # the last 20 %
    assert detector.evaluation_["scope"] == "held-out"
    # The held-out labels play no part in the threshold: flipping them changes nothing else.
    flipped = frame.copy()
    flipped.loc[held, "label"] = 1 - flipped.loc[held, "label"]
    again = AnomalyDetector(threshold_method="best_f1", **FAST).fit(flipped)
    assert again.threshold_ == pytest.approx(detector.threshold_, rel=1e-6)
    assert again.evaluation_["n_anomalies"] != detector.evaluation_["n_anomalies"]
