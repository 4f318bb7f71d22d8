"""The memory of normal prototypes (``AnomalyDetector(memory=...)``, ``aecore.model.memory``):
a row's nearest prototype is one more reconstruction, so a row the network rebuilds well but
that lies far from every normal row still scores high, and its errors still add up."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from aecore import AnomalyDetector, store
from aecore.errors import AecoreError
from aecore.evaluation.explain import row_detail
from aecore.model.memory import build_memory, nearest_prototypes

FAST = {"epochs": 30, "batch_size": 32, "patience": 5, "random_state": 0}


def _between_the_modes(seed=0, n_normal=800, n_anomalies=30):
    """Normal rows in two tight modes on a plane in 8 columns; anomalies on the same plane,
    halfway between the modes: the network rebuilds them (they lie in its subspace), but no
    normal row is near them."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.normal(size=(8, 2)))[0].T
    side = rng.choice([-1.0, 1.0], size=n_normal)
    normal = np.c_[3 * side + 0.4 * rng.normal(size=n_normal), rng.normal(size=n_normal)]
    odd = np.c_[0.4 * rng.normal(size=n_anomalies), rng.normal(size=n_anomalies)]
    values = np.vstack([normal, odd]) @ basis + 0.05 * rng.normal(size=(n_normal + n_anomalies, 8))
    frame = pd.DataFrame(values, columns=[f"m{i}" for i in range(8)])
    return frame.assign(label=np.r_[np.zeros(n_normal), np.ones(n_anomalies)].astype(int))


@pytest.fixture(scope="module")
def detectors():
    frame = _between_the_modes()
    with_memory = AnomalyDetector(code_size=2, **FAST).fit(frame)
    without = AnomalyDetector(code_size=2, memory=None, **FAST).fit(frame)
    return frame, with_memory, without


def test_rows_between_the_normal_modes_score_high_with_the_memory(detectors):
    frame, with_memory, without = detectors
    assert with_memory.trained_on_ == "normal"  # labelled: trained on normal rows only
    assert "memory" in with_memory.score_calibration_
    assert "memory" not in (without.score_calibration_ or {})
    labels = frame["label"].to_numpy()
    found = roc_auc_score(labels, with_memory.decision_function(frame))
    missed = roc_auc_score(labels, without.decision_function(frame))
    assert found > 0.95
    assert found > missed + 0.05
    assert "normal prototypes" in with_memory.memory_summary()
    # Known normal rows (a label column): the prototype's error counts for 3/4 of the score.
    assert with_memory.score_calibration_["memory"]["share"] == 0.75
    assert "counts for 75% of the score and the network's for 25%" in (
        with_memory.memory_summary()
    )
    assert without.memory_summary() is None


def test_the_memory_keeps_each_rows_errors_adding_up_to_its_score(detectors):
    frame, detector, _ = detectors
    scores = detector.score_rows(frame, reconstruction=True)
    assert scores.feature_errors.sum(axis=1).to_numpy() == pytest.approx(
        scores.row_error, rel=1e-4
    )
    # Known normal rows: a quarter of the network's error and 3/4 of the nearest prototype's.
    x = detector.transform_inputs(frame)
    memory = detector.score_calibration_["memory"]
    prototypes = np.asarray(memory["prototypes"])
    nearest = nearest_prototypes(x, prototypes, np.ones(x.shape[1]))  # plain distances
    remembered = memory["scale"] * np.mean((x - nearest) ** 2, axis=1)
    settings = {k: v for k, v in detector.score_calibration_.items() if k != "memory"}
    alone = AnomalyDetector.from_state(
        {**detector.get_state(), "score_calibration": settings}, detector.network()
    ).reconstruction_error(frame)  # the network's own (calibrated) error
    assert scores.row_error == pytest.approx(
        0.25 * alone + 0.75 * remembered, rel=1e-3, abs=1e-6
    )
    row = int(np.argmax(scores.row_error))
    detail = row_detail(detector, frame, row)
    parts = sum(
        share * detail[f"weight, {name}"] * detail[f"squared difference, {name}"]
        for name, share in (("model 1", 0.25), ("nearest prototype", 0.75))
    )
    assert parts.to_numpy() == pytest.approx(detail["error"].to_numpy(), rel=1e-5, abs=1e-9)
    # A bundle saved before the memory had a share of its own scores as it did then: every
    # reconstruction counts the same.
    calibration = {**detector.score_calibration_}
    calibration["memory"] = {k: v for k, v in calibration["memory"].items() if k != "share"}
    older = AnomalyDetector.from_state(
        {**detector.get_state(), "score_calibration": calibration}, detector.network()
    )
    assert older.decision_function(frame) == pytest.approx(
        0.5 * (alone + remembered), rel=1e-3, abs=1e-6
    )
    assert "the network's and the nearest prototype's" in older.memory_summary()


def test_without_labels_every_reconstruction_counts_the_same(detectors):
    # Unlabelled rows may hide anomalies that become prototypes: no share of its own.
    frame, _, _ = detectors
    unlabelled = AnomalyDetector(code_size=2, **FAST).fit(frame.drop(columns="label"))
    assert unlabelled.trained_on_ == "all"
    assert "share" not in unlabelled.score_calibration_["memory"]
    assert "the two networks' and the nearest prototype's" in unlabelled.memory_summary()
    members = unlabelled.member_reconstructions(frame.head(5))
    assert [m["share"] for m in members] == pytest.approx([1 / 3] * 3)


def test_a_saved_detector_keeps_its_memory(detectors, tmp_path):
    frame, detector, _ = detectors
    store.save(detector, "prototypes", models_dir=tmp_path)
    loaded = AnomalyDetector.load("prototypes", models_dir=tmp_path)
    assert len(loaded.score_calibration_["memory"]["prototypes"]) == len(
        detector.score_calibration_["memory"]["prototypes"]
    )
    np.testing.assert_allclose(
        loaded.decision_function(frame), detector.decision_function(frame), rtol=1e-5
    )
    assert loaded.score_calibration_["memory"]["share"] == 0.75


def test_the_memory_leaves_out_training_rows_that_stand_out():
    rng = np.random.default_rng(1)
    rows = rng.normal(size=(500, 4))
    memory = build_memory(rows, np.ones(4), np.ones(500))
    assert memory is not None and 2 <= len(memory["prototypes"]) <= 125
    assert build_memory(rows[:10], np.ones(4), np.ones(10)) is None  # too few rows


def test_linear_and_variational_models_keep_no_memory_unless_asked():
    frame = _between_the_modes(n_normal=200, n_anomalies=5)
    linear = AnomalyDetector(architecture="linear", code_size=2, epochs=3).fit(frame)
    assert "memory" not in (linear.score_calibration_ or {})
    with pytest.raises(AecoreError, match="memory must be"):
        AnomalyDetector(memory="sometimes").fit(frame)
    with pytest.raises(AecoreError, match="single-row, non-variational"):
        AnomalyDetector(architecture="variational", memory=True, epochs=2).fit(frame)
