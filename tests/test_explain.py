import numpy as np
import pandas as pd
import pytest

from aecore.evaluation.explain import (
    error_shares,
    mean_feature_errors,
    row_detail,
    top_features,
    why_small_error,
)
from tests.helpers import mixed_frame


def test_top_features_orders_by_error_and_reports_shares():
    errors = pd.DataFrame(
        {"a": [1.0, 0.0, 5.0], "b": [3.0, 1.0, 0.0], "c": [6.0, 0.0, 5.0], "d": [0.0, 0.0, 0.0]}
    )
    top = top_features(errors, k=3)
    assert list(top.loc[0, ["top1_feature", "top2_feature", "top3_feature"]]) == ["c", "b", "a"]
    assert top.loc[0, "top1_share"] == 0.6
    assert top.loc[1, "top1_feature"] == "b" and top.loc[1, "top1_share"] == 1.0
    assert {top.loc[2, "top1_feature"], top.loc[2, "top2_feature"]} == {"a", "c"}


def test_top_features_matches_a_full_sort_on_random_data():
    rng = np.random.default_rng(0)
    errors = pd.DataFrame(rng.random((500, 12)), columns=[f"f{i}" for i in range(12)])
    top = top_features(errors, k=3)
    expected = np.argsort(-errors.to_numpy(), axis=1)[:, :3]
    for j in range(3):
        assert (top[f"top{j + 1}_feature"].to_numpy() == errors.columns[expected[:, j]]).all()


def test_mean_errors_sorted_and_shares_sum_to_one():
    errors = pd.DataFrame({"a": [1.0, 3.0], "b": [4.0, 4.0]})
    means = mean_feature_errors(errors)
    assert list(means.index) == ["b", "a"] and means["a"] == 2.0
    np.testing.assert_allclose(error_shares(errors).sum(axis=1), 1.0)
    assert mean_feature_errors(errors, rows=np.array([True, False]))["a"] == 1.0


# ---------------------------------------------------------------------------- one row in detail

def _sensor_like(seed=5):
    """Numbers, a skewed (log-transformed) column and a categorical one; a few labels."""
    frame = mixed_frame(260, seed=seed)
    frame["volume"] = np.random.default_rng(seed).lognormal(3.0, 1.2, len(frame))
    frame.loc[[11, 40], "packets"] *= 4  # rows far off
    return frame


@pytest.fixture(scope="module")
def detectors():
    from aecore.detector import AnomalyDetector
    from aecore.io.roles import ColumnRoles

    frame = _sensor_like()
    features = ["bytes", "packets", "duration", "volume"]
    unlabelled = AnomalyDetector(  # trained on every row: two autoencoders, weighted columns
        epochs=3, code_size=2, hidden_sizes=[8],
        roles=ColumnRoles(features=features, categorical=["protocol"]),
    ).fit(frame)  # fmt: skip
    labelled = frame.assign(label=(frame.index.isin([11, 40])).astype(int))
    single = AnomalyDetector(  # one autoencoder, no memory of prototypes
        epochs=3, code_size=2, hidden_sizes=[8], memory=None,
        roles=ColumnRoles(features=features, categorical=["protocol"], label="label"),
    ).fit(labelled)  # fmt: skip
    return frame, unlabelled, labelled, single


def test_model_unit_columns_reproduce_each_features_error_exactly(detectors):
    frame, pair, labelled, single = detectors
    assert pair.second_autoencoder_ is not None and single.second_autoencoder_ is None
    assert pair.preprocessor_.numeric_[3]["log"], "volume is log-transformed"
    for detector, data in ((pair, frame), (single, labelled)):
        errors = detector.feature_errors(data)
        x = detector.transform_inputs(data)
        for row in (11, 100):
            detail = row_detail(detector, data, row)
            expected = errors.iloc[row][detail.index]
            assert detail["error"].to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-6)
            weighted = detail["weight"] * detail["squared difference"]
            assert weighted.to_numpy() == pytest.approx(expected.to_numpy(), rel=1e-5, abs=1e-9)
            for j, column in enumerate(["bytes", "packets", "duration", "volume"]):
                assert detail.loc[column, "input (model units)"] == pytest.approx(x[row, j])
            assert detail.loc["protocol", "input (model units)"] == 1.0
            assert detail["share of row error"].sum() == pytest.approx(1.0)
    numeric = ["bytes", "packets", "duration", "volume"]
    detail = row_detail(single, labelled, 11).loc[numeric]
    difference = detail["input (model units)"] - detail["reconstruction (model units)"]
    assert (detail["weight"] * difference**2).to_numpy() == pytest.approx(
        detail["error"].to_numpy(), rel=1e-5, abs=1e-9
    )  # one model: error = weight * (input - reconstruction)^2 in model units
    # Two autoencoders and the nearest prototype: a third of the score each.
    assert pair.memory_summary() is not None
    detail = row_detail(pair, frame, 11)
    parts = sum(
        share * detail[f"weight, {name}"] * detail[f"squared difference, {name}"]
        for name, share in (("model 1", 1 / 3), ("model 2", 1 / 3), ("nearest prototype", 1 / 3))
    )
    assert parts.to_numpy() == pytest.approx(detail["error"].to_numpy(), rel=1e-5, abs=1e-9)


def test_why_a_large_difference_carries_a_small_error_names_the_reasons():
    detail = pd.DataFrame(
        {
            "input": [5.0, 21.0, 1.0],
            "reconstruction": [0.0, 85.63, 1.1],
            "difference": [-5.0, 64.63, 0.1],
            "input (model units)": [3.0, 0.1, 0.0],
            "reconstruction (model units)": [0.0, 0.4, 0.05],
            "squared difference": [9.0, 0.09, 0.0025],
            "weight": [1.0, 0.05, 1.0],
            "error": [9.0, 0.0045, 0.0025],
            "share of row error": [0.9992, 0.0005, 0.0003],
            "log transformed": [False, True, False],
            "scale": [1.0, 3.2, 1.0],
        },
        index=pd.Index(["a", "sensor", "c"], name="feature"),
    )
    line = why_small_error(detail)
    assert line.startswith("Why **sensor** differs by 64.63")
    for fact in ("log-transformed", "3.09", "4.46", "3.2", "weight is low", "0.05 × 0.09"):
        assert fact in line, fact
    calm = detail.assign(difference=[-5.0, 0.0, 0.1], reconstruction=[0.0, 21.0, 1.1])
    assert why_small_error(calm).startswith("A large difference in original units")
