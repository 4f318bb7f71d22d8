import numpy as np
import pandas as pd

from aecore.explain import error_shares, mean_feature_errors, top_features


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
