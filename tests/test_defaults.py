"""The default score: column weights from held-out errors, a limit on codes, JSON calibration."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from aecore import AnomalyDetector
from aecore.model.calibration import code_limit, feature_weights
from aecore.model.defaults import default_code_size, default_training

FAST = {"epochs": 30, "batch_size": 32, "patience": 5}
PLAIN = {"normalise_errors": False, "code_limit": None, "second_model": None, "memory": None}


def _factor_data(n_rows=600, seed=0, noise=0.05):
    """Four columns driven by one factor (rebuilt almost exactly) and one loud column of pure,
    independent noise (never rebuilt); normal rows only."""
    rng = np.random.default_rng(seed)
    factor = rng.normal(size=n_rows)
    values = {f"f{i}": (i + 1) * factor + noise * rng.normal(size=n_rows) for i in range(4)}
    values["noise"] = rng.normal(scale=3.0, size=n_rows)
    return pd.DataFrame(values)


def test_feature_weights_favour_closely_rebuilt_columns_and_cap_the_ratio():
    rng = np.random.default_rng(0)
    errors = np.column_stack(
        [
            rng.chisquare(1, 500) * 0.01,  # rebuilt closely
            rng.chisquare(1, 500) * 0.1,
            rng.chisquare(1, 500) * 1.0,  # naturally noisy
            np.zeros(500),  # always rebuilt exactly: capped, not infinite
        ]
    )
    weights = feature_weights(errors)
    assert weights.mean() == pytest.approx(1.0)
    assert weights[0] > weights[1] > weights[2]
    assert weights[0] / weights[2] == pytest.approx(100, rel=0.3)
    assert np.isfinite(weights).all()
    assert weights[3] / np.median(weights) <= 10.0 + 1e-9


def test_feature_weights_ignore_a_contaminated_minority_of_held_out_rows():
    rng = np.random.default_rng(1)
    errors = rng.chisquare(1, size=(400, 3)) * 0.1
    contaminated = errors.copy()
    contaminated[:20, 0] += 50.0  # 5% of held-out rows are anomalies in column 0
    np.testing.assert_allclose(feature_weights(contaminated), feature_weights(errors), rtol=0.1)


def test_code_limit_holds_the_requested_share_of_gaussian_codes():
    codes = np.random.default_rng(2).normal(size=(4000, 3)) * [3.0, 1.0, 0.5]
    limit = code_limit(codes, 0.75)
    diff = codes - np.asarray(limit["center"])
    distance = np.sqrt(np.einsum("ij,jk,ik->i", diff, np.asarray(limit["precision"]), diff))
    assert np.mean(distance <= limit["radius"]) == pytest.approx(0.75, abs=0.03)
    json.dumps(limit)  # plain JSON
    assert code_limit(codes[:3], 0.75) is None  # too few rows to define a region


def test_a_loud_noisy_column_no_longer_hides_anomalies_in_quiet_columns():
    train = _factor_data(600, seed=0)
    test = _factor_data(300, seed=1)
    planted = np.arange(0, 300, 10)
    test.loc[planted, "f0"] += 0.6  # breaks f0's tie to the factor; small next to the noise
    labels = np.isin(np.arange(len(test)), planted)

    weighted = AnomalyDetector(code_size=1, code_limit=None, memory=None, **FAST).fit(train)
    plain = AnomalyDetector(code_size=1, **FAST, **PLAIN).fit(train)
    assert roc_auc_score(labels, weighted.reconstruction_error(test)) > 0.95
    assert roc_auc_score(labels, plain.reconstruction_error(test)) < 0.8
    # The loud column's weight is far below the quiet ones'.
    names = list(weighted.feature_names_in_)
    weights = dict(zip(names, weighted.score_calibration_["feature_weights"], strict=True))
    assert weights["noise"] < 0.1 * weights["f0"]


def test_the_code_limit_flags_rows_extreme_along_the_main_direction():
    train = _factor_data(600, seed=0, noise=0.3).drop(columns="noise")
    test = _factor_data(300, seed=1, noise=0.3).drop(columns="noise")
    planted = np.arange(0, 300, 10)
    # Consistent with the factor (on the data's main direction), but 2.5 standard deviations out
    # along it: rebuilt well without a limit, since normal rows reach that far too.
    test.loc[planted, [f"f{i}" for i in range(4)]] = 2.5 * np.arange(1, 5)
    labels = np.isin(np.arange(len(test)), planted)

    limited = AnomalyDetector(code_size=1, **FAST).fit(train)
    unlimited = AnomalyDetector(code_size=1, code_limit=None, memory=None, **FAST).fit(train)
    assert roc_auc_score(labels, limited.reconstruction_error(test)) > 0.97
    assert roc_auc_score(labels, unlimited.reconstruction_error(test)) < 0.8
    # The reconstruction shown is the limited one the score is based on: it stays in range.
    rebuilt = limited.reconstruct(test.loc[planted])
    assert rebuilt["f0"].max() < train["f0"].max()


def test_held_out_rows_score_their_plain_mse_on_average():
    # The network's calibrated error; with the memory of prototypes (the default), the score
    # is its mean with the prototype's error, scaled to the same median on training rows.
    frame = _factor_data(400, seed=3)
    detector = AnomalyDetector(code_size=1, memory=None, **FAST).fit(frame)
    held_out = frame.iloc[detector.split_.validation]
    plain = AnomalyDetector(code_size=1, **FAST, **PLAIN).fit(frame)
    # Same seed, same split, same network: only the score's calibration differs.
    np.testing.assert_allclose(
        np.mean(detector.reconstruction_error(held_out)),
        np.mean(plain.reconstruction_error(held_out)),
        rtol=1e-3,
    )


def test_calibration_is_json_and_restores_identical_scores():
    frame = _factor_data(300, seed=4)
    detector = AnomalyDetector(code_size=2, **FAST).fit(frame)
    stored = json.loads(json.dumps(detector.score_calibration_))
    restored = AnomalyDetector(code_size=2, **FAST)
    for name in ("roles_", "preprocessor_", "autoencoder_", "second_autoencoder_", "threshold_"):
        setattr(restored, name, getattr(detector, name))
    restored.feature_names_in_ = detector.feature_names_in_
    restored.score_calibration_ = stored
    np.testing.assert_allclose(
        restored.reconstruction_error(frame), detector.reconstruction_error(frame), rtol=1e-5
    )
    # A bundle saved before calibration existed scores with the plain MSE (of its one model).
    del restored.score_calibration_
    restored.second_autoencoder_ = None
    restored._scorer = None
    np.testing.assert_allclose(
        restored.reconstruction_error(frame),
        AnomalyDetector(code_size=2, **FAST, **PLAIN).fit(frame).reconstruction_error(frame),
        rtol=1e-4,
    )


def test_labelled_normal_rows_get_the_code_limit_but_no_column_weights():
    frame = _factor_data(200, seed=5)
    unlabelled = AnomalyDetector(code_size=1, epochs=3).fit(frame)
    assert unlabelled.score_calibration_["code_limit"] is not None
    labelled = frame.assign(label=np.r_[np.ones(10, dtype=int), np.zeros(190, dtype=int)])
    normal_only = AnomalyDetector(code_size=1, epochs=3).fit(labelled)
    assert normal_only.trained_on_ == "normal"
    assert normal_only.score_calibration_["code_limit"] is not None
    assert len(set(normal_only.score_calibration_["feature_weights"])) == 1  # one scale for all
    # The linear model stays equivalent to PCA: no code limit.
    linear = AnomalyDetector(architecture="linear", code_size=1, epochs=3).fit(frame)
    assert linear.score_calibration_["code_limit"] is None
    with pytest.raises(ValueError, match="code_limit"):
        AnomalyDetector(code_limit=1.5, epochs=1).fit(frame)
    with pytest.raises(ValueError, match="normalise_errors"):
        AnomalyDetector(normalise_errors="yes", epochs=1).fit(frame)


def test_code_size_follows_the_data_dimension():
    rng = np.random.default_rng(6)
    factors = rng.normal(size=(500, 3))
    x = factors @ rng.normal(size=(3, 12)) + 0.05 * rng.normal(size=(500, 12))
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    assert default_code_size(x) == 3


def test_a_second_model_shares_the_time_budget_only_where_it_binds():
    # 80,000 training rows: about 960,000 rows seen in all, whether by one model or two.
    one, two = default_training(80_000, 30), default_training(80_000, 30, models=2)
    assert one["epochs"] == 12 and two["epochs"] == 6
    # Past the cap, the floor: 12 epochs in all, 6 a model.
    assert default_training(800_000, 30)["epochs"] == 12
    assert default_training(800_000, 30, models=2)["epochs"] == 6
    # Small data keep the cap of 200 epochs per model (early stopping ends long before it).
    assert default_training(2_000, 30, models=2) == default_training(2_000, 30)
