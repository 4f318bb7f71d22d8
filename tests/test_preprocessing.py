import json

import numpy as np
import pandas as pd
import pytest

import aecore
from aecore import AecoreError, ColumnRoles
from aecore.model.preprocessing import Preprocessor

ROLES = ColumnRoles(features=["x", "skewed", "const"], categorical=["colour"])


def _frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "x": rng.normal(10, 2, 200),
            "skewed": rng.lognormal(0, 2, 200),
            "const": np.full(200, 7.0),
            "colour": rng.choice(["red", "green", "blue"], 200),
        }
    )


@pytest.mark.parametrize("scaling", ["standard", "minmax", "robust"])
def test_scalings_are_finite_and_round_trip_through_json(scaling):
    frame = _frame()
    frame.loc[3, "x"] = np.nan
    pre = Preprocessor(scaling=scaling).fit(frame, ROLES)
    x = pre.transform(frame)
    assert x.dtype == np.float32 and np.isfinite(x).all()
    assert np.all(x[:, 2] == 0)  # constant column: zeros, no NaN
    clone = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(clone.transform(frame), x)


def test_standard_scaling_uses_training_statistics_and_imputes_median():
    frame = _frame()
    pre = Preprocessor(log_transform=False).fit(frame.iloc[:100], ROLES)
    x = pre.transform(frame.iloc[:100])
    np.testing.assert_allclose(x[:, 0].mean(), 0, atol=1e-5)
    np.testing.assert_allclose(x[:, 0].std(), 1, atol=1e-4)
    missing = frame.iloc[:1].assign(x=np.nan)
    assert pre.transform(missing)[0, 0] == pytest.approx(
        (frame["x"][:100].median() - frame["x"][:100].mean()) / frame["x"][:100].std(ddof=0),
        abs=1e-5,
    )


def test_log_transform_is_chosen_for_skewed_non_negative_columns_and_inverts():
    frame = _frame()
    pre = Preprocessor().fit(frame, ROLES)
    logged = {p["name"]: p["log"] for p in pre.numeric_}
    assert logged == {"x": False, "skewed": True, "const": False}
    back = pre.inverse_transform(pre.transform(frame))
    np.testing.assert_allclose(back["skewed"], frame["skewed"], rtol=1e-4)
    assert (back["colour"] == frame["colour"]).all()
    # A negative value at scoring time in a logged column gives a number, not NaN.
    assert np.isfinite(pre.transform(frame.iloc[:1].assign(skewed=-3.0))).all()


def test_one_hot_groups_and_unseen_categories():
    frame = _frame()
    pre = Preprocessor().fit(frame, ROLES)
    assert pre.encoded_names[3:] == ["colour=blue", "colour=green", "colour=red"]
    assert pre.group_matrix().sum(axis=0).tolist() == [1, 1, 1, 3]
    new = frame.iloc[:2].assign(colour=["purple", "red"])
    x = pre.transform(new)
    assert x[0, 3:].sum() == 0 and x[1, 3:].sum() == 1
    assert pre.unseen_categories(new) == {"colour": ["purple"]}


def test_text_in_a_numeric_column_is_named():
    pre = Preprocessor().fit(_frame(), ROLES)
    bad = _frame().head(3).astype({"x": object})
    bad.loc[1, "x"] = "n/a?"
    with pytest.raises(AecoreError, match="'x' should hold numbers.*n/a"):
        pre.transform(bad)


def _many_services(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """A `service` column with 66 values: a few common, a long tail of rare ones."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, 67) ** 1.2
    service = rng.choice([f"s{k:02d}" for k in range(66)], rows, p=weights / weights.sum())
    return pd.DataFrame({"x": rng.normal(size=rows), "service": service})


def test_a_column_with_many_values_keeps_the_most_frequent_and_one_other_column():
    from aecore.model.preprocessing import MAX_CATEGORIES, OTHER_CATEGORY

    frame = _many_services()
    roles = ColumnRoles(features=["x"], categorical=["service"])
    pre = Preprocessor().fit(frame, roles)
    counts = frame["service"].value_counts()
    assert counts.size > MAX_CATEGORIES
    names = pre.encoded_names
    assert len(names) == 1 + MAX_CATEGORIES + 1 and names[-1] == f"service={OTHER_CATEGORY}"
    kept = {name.split("=", 1)[1] for name in names[1:-1]}
    assert kept == set(counts.index[:MAX_CATEGORIES])  # the most frequent values
    rare = counts.index[-1]
    rows = pd.DataFrame({"x": [0.0] * 3, "service": [counts.index[0], rare, "never-seen"]})
    x = pre.transform(rows)[:, 1:]
    assert x.sum(axis=1).tolist() == [1.0, 1.0, 1.0]  # every row: exactly one column set
    assert x[1, -1] == 1.0 and x[2, -1] == 1.0  # rare and unseen values share "(other)"
    assert pre.inverse_transform(pre.transform(rows))["service"].tolist() == [
        counts.index[0], OTHER_CATEGORY, OTHER_CATEGORY
    ]  # fmt: skip
    assert pre.group_matrix().sum(axis=0).tolist() == [1, MAX_CATEGORIES + 1]
    clone = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(clone.transform(frame), pre.transform(frame))


def test_parameters_saved_before_the_other_column_still_encode_as_before():
    frame = _frame()
    pre = Preprocessor().fit(frame, ROLES)
    old = pre.to_dict()
    for params in old["categorical"]:
        params.pop("other")  # bundles written before the "(other)" column existed
    clone = Preprocessor.from_dict(json.loads(json.dumps(old)))
    np.testing.assert_array_equal(clone.transform(frame), pre.transform(frame))
    assert clone.encoded_names == pre.encoded_names
    unseen = clone.transform(frame.iloc[:1].assign(colour="purple"))
    assert unseen[0, 3:].sum() == 0


def test_a_detector_with_a_66_value_column_saves_loads_and_scores_the_same(tmp_path):
    from aecore import AnomalyDetector

    frame = _many_services(600)
    roles = {"x": "feature", "service": "categorical"}
    detector = AnomalyDetector(epochs=2, batch_size=64, roles=roles).fit(frame)
    assert detector.preprocessor_.n_encoded == 52
    detector.save("services", models_dir=tmp_path)
    loaded = aecore.load("services", models_dir=tmp_path)
    np.testing.assert_allclose(
        loaded.reconstruction_error(frame), detector.reconstruction_error(frame), atol=1e-6
    )


def test_data_lacking_many_input_columns_gets_a_short_error_with_the_count():
    frame = pd.DataFrame({f"s{i:03d}": np.arange(5.0) + i for i in range(107)})
    pre = Preprocessor().fit(frame, ColumnRoles(features=list(frame.columns)))
    with pytest.raises(AecoreError) as error:
        pre.transform(pd.DataFrame({"other": [1.0]}))
    message = str(error.value)
    assert "lacks 107 of the 107 feature columns" in message
    assert "'s000'" in message and "'s007'" in message and "'s008'" not in message
    assert "99 more" in message and len(message) < 300
