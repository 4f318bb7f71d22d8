"""Drift monitoring and retraining on the server-metrics rack (srv5-srv8 change workload)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aecore
from aecore import datasets, store
from aecore.detector import AnomalyDetector
from aecore.errors import AecoreError
from aecore.evaluation import drift
from aecore.io import inference
from aecore.workflows import retraining

ROLES = datasets.SAMPLES["server_metrics"].roles()
SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="module")
def rack():
    """A detector trained on the original rack, a fresh batch from the same rack, the shifted
    rack (the committed drift sample) and more shifted data to retrain on."""
    training = datasets.server_metrics(seed=0, n_rows=3000)
    detector = AnomalyDetector(roles=ROLES, split="chronological", epochs=30, random_state=0)
    detector.fit(training)  # fit keeps the per-feature reference errors too
    start = datasets.day_after(training)
    return {
        "training": training,
        "detector": detector,
        "fresh": datasets.server_metrics(seed=2, n_rows=1000, start=start),
        "shifted": pd.read_csv(SAMPLE_DATA / "server_metrics_drift.csv"),
        "shifted_later": datasets.server_metrics(seed=3, n_rows=2000, start=start, drift=True),
    }


def test_shifted_rack_is_drifted_and_the_moved_servers_are_named(rack):
    report = drift.monitor(rack["detector"], rack["shifted"])
    assert report.verdict in ("drifting", "drifted")
    assert report.alarm_share > 10 * report.expected_alarm_share
    assert report.ks_statistic > 0.2 and report.psi > 0.25
    top = report.feature_changes["feature"].head(5)
    assert all(name.split("_")[0] in datasets.DRIFTED_SERVERS for name in top)
    assert any("grew most" in sentence for sentence in report.evidence)
    assert "Retrain" in report.evidence[-1]


def test_fresh_batch_from_the_original_rack_is_stable(rack):
    report = drift.monitor(rack["detector"], rack["fresh"])
    assert report.verdict == "stable", report.evidence
    # Drift is graded on the batch's normal rows (issue 13): no signal is raised on them.
    assert set(report.signals.values()) == {0} and not report.many_anomalies
    assert report.false_alarm_share < 0.05
    assert report.evidence[-1] == "No action needed."


@pytest.mark.parametrize("mode", ["fine_tune", "scratch"])
def test_retraining_on_shifted_normal_data_brings_false_alarms_back(rack, mode):
    old = rack["detector"]
    before = drift.monitor(old, rack["shifted"])
    assert before.false_alarm_share > 0.5

    new = retraining.retrain(old, rack["shifted_later"], mode=mode)
    after = drift.monitor(new, rack["shifted"])
    target = 1 - 0.99  # the default threshold: 99th percentile of held-out errors
    assert after.false_alarm_share < 3 * target
    assert after.verdict == "stable", after.evidence
    assert new is not old and old.threshold_ == before.threshold
    assert new.retraining_["mode"] == mode
    assert list(new.reference_feature_errors_.index) == list(old.feature_names_in_)


def test_window_keeps_the_most_recent_rows(rack):
    frame = rack["shifted_later"].sample(frac=1.0, random_state=0)  # out of time order
    by_rows = retraining.recent_rows(frame, 100, "timestamp")
    assert len(by_rows) == 100
    assert by_rows["timestamp"].min() > frame["timestamp"].sort_values().iloc[-101]
    by_time = retraining.recent_rows(frame, "2h", "timestamp")
    assert len(by_time) == 120
    with pytest.raises(AecoreError, match="duration"):
        retraining.recent_rows(frame, "last week", "timestamp")
    with pytest.raises(AecoreError, match="time column"):
        retraining.recent_rows(frame.drop(columns="timestamp"), "2h", None)


def test_retrain_saved_adds_a_version_and_keeps_the_old_one(rack, tmp_path):
    old = rack["detector"]
    store.save(old, "rack", models_dir=tmp_path)
    new, path = retraining.retrain_saved(
        "rack", rack["shifted_later"], mode="fine_tune", window=1500, models_dir=tmp_path
    )
    versions = store.list_versions("rack", models_dir=tmp_path)
    assert len(versions) == 2 and versions[0]["current"]
    loaded = aecore.load("rack", models_dir=tmp_path)
    assert loaded.threshold_ == pytest.approx(new.threshold_)
    assert loaded.retraining_ == new.retraining_ and loaded.retraining_["window_rows"] == 1500
    # Only the rows labelled normal are learnt from (issue 13); the rest are counted apart.
    labels = rack["shifted_later"]["label"].tail(1500)
    assert loaded.retraining_["rows"] == int((labels == 0).sum()) < 1500
    assert loaded.retraining_["left_out"] == int((labels == 1).sum())
    assert list(loaded.reference_feature_errors_.index) == list(old.feature_names_in_)
    previous = aecore.load("rack", models_dir=tmp_path, version=versions[1]["version"])
    assert previous.threshold_ == pytest.approx(old.threshold_)
    description = store.read_meta("rack", models_dir=tmp_path)["description"]
    assert description.startswith("Fine-tuned from rack (the version saved ")
    used = f"on {loaded.retraining_['rows']:,} rows (window: 1500), normal rows only"
    assert used in description


def test_a_loaded_model_names_the_features_that_grew_without_a_reference_frame(rack, tmp_path):
    store.save(rack["detector"], "rack", models_dir=tmp_path)
    loaded = aecore.load("rack", models_dir=tmp_path)
    report = drift.monitor(loaded, rack["shifted"])
    assert report.verdict in ("drifting", "drifted")
    top = report.feature_changes["feature"].head(5)
    assert all(name.split("_")[0] in datasets.DRIFTED_SERVERS for name in top)
    assert any("grew most" in sentence for sentence in report.evidence)
    assert not any("cannot be named" in sentence for sentence in report.evidence)
    original = drift.monitor(rack["detector"], rack["shifted"]).feature_changes
    pd.testing.assert_frame_equal(report.feature_changes, original, atol=1e-6)


def test_loaded_model_without_feature_profile_still_monitors(rack, tmp_path):
    store.save(rack["detector"], "plain", models_dir=tmp_path)
    loaded = aecore.load("plain", models_dir=tmp_path)
    if hasattr(loaded, "reference_feature_errors_"):  # a model saved before the profile
        del loaded.reference_feature_errors_
    report = drift.monitor(loaded, rack["shifted"])
    assert report.verdict == "drifted" and report.feature_changes is None
    assert any("cannot be named" in sentence for sentence in report.evidence)
    named = drift.monitor(loaded, rack["shifted"], reference_frame=rack["training"])
    assert named.feature_changes["feature"].iloc[0].split("_")[0] in datasets.DRIFTED_SERVERS


def test_population_stability_index():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5000)
    assert drift.population_stability_index(reference, rng.normal(size=5000)) < 0.02
    assert drift.population_stability_index(reference, rng.normal(1.0, 1.0, 5000)) > 0.25


def test_too_small_batch_is_refused(rack):
    with pytest.raises(AecoreError, match="at least 30"):
        drift.monitor(rack["detector"], rack["fresh"].head(10))
    with pytest.raises(AecoreError, match="scratch"):
        retraining.retrain(rack["detector"], rack["fresh"], mode="warm")


def test_fine_tuned_model_keeps_a_calibrated_score():
    from aecore import AnomalyDetector
    from aecore.datasets import server_metrics
    from aecore.workflows.retraining import retrain

    frame = server_metrics(n_rows=400).drop(columns="label")
    detector = AnomalyDetector(epochs=3).fit(frame)
    assert detector.score_calibration_ is not None
    tuned = retrain(detector, server_metrics(seed=2, n_rows=300).drop(columns="label"),
                    mode="fine_tune", epochs=2)
    assert tuned.score_calibration_ is not None
    assert tuned.score_calibration_["code_limit"] is not None


# ---------------------------------------------------------------- issue 13: anomalies are not drift


def _with_attacks(frame: pd.DataFrame, share: float, seed: int = 0) -> pd.DataFrame:
    """``frame``'s normal rows, with ``share`` of them turned into attacks: eight srv3/srv4
    sensors pushed six standard deviations up, labelled 1. The other rows are left as they are,
    so the batch's normal behaviour is the training data's."""
    normal = frame[frame["label"] == 0].reset_index(drop=True)
    columns = [c for c in normal.columns if c.startswith(("srv3_", "srv4_"))][:8]
    batch = normal.astype({c: float for c in columns})
    rng = np.random.default_rng(seed)
    attacked = rng.choice(len(batch), int(share * len(batch)), replace=False)
    for column in columns:
        batch.loc[attacked, column] += 6 * batch[column].std()
    batch.loc[attacked, "label"] = 1
    return batch


@pytest.mark.parametrize("labelled", [True, False])
def test_attack_heavy_batch_with_unchanged_normal_rows_is_not_drift(rack, labelled):
    batch = _with_attacks(rack["fresh"], 0.45)
    if not labelled:
        batch = batch.drop(columns="label")
    report = drift.monitor(rack["detector"], batch)
    assert report.verdict == "stable", report.evidence
    assert report.many_anomalies and report.alarm_share > 0.35
    assert report.normal_basis == ("labelled" if labelled else "normal_range")
    assert "many anomalies" in report.headline and "no retraining is needed" in report.headline
    assert any("holds many anomalies" in sentence for sentence in report.evidence)
    assert "Retrain" not in report.evidence[-1]


@pytest.mark.parametrize("labelled", [True, False])
def test_shifted_batch_with_attacks_is_still_drifted(rack, labelled):
    """The shifted rack with a third of its rows attacked: its normal rows changed, so the
    verdict is drifted whether they are known by their labels or by the threshold."""
    batch = _with_attacks(rack["shifted_later"], 0.3)
    if not labelled:
        batch = batch.drop(columns="label")
    report = drift.monitor(rack["detector"], batch)
    assert report.verdict == "drifted", report.evidence
    assert not report.many_anomalies and "normal behaviour has changed" in report.headline
    assert "Retrain" in report.evidence[-1]


@pytest.mark.parametrize("mode", ["fine_tune", "scratch"])
def test_retraining_learns_only_from_rows_believed_normal(rack, mode):
    old = rack["detector"]
    batch = _with_attacks(rack["fresh"], 0.45).drop(columns="label")
    below = old.reconstruction_error(batch) <= old.threshold_
    new = retraining.retrain(old, batch, mode=mode, epochs=2, source={"batch": "attacks.csv"})
    record = new.retraining_
    assert record["rule"] == "threshold"
    assert record["rows"] == int(below.sum()) and record["left_out"] == int((~below).sum())
    assert record["rows"] + record["left_out"] == len(batch) and record["left_out"] > 0
    trained = len(new.split_.train) + len(new.split_.validation)
    assert trained == record["rows"], "the rows above the threshold neither train nor set it"
    sentence = retraining.describe_retraining(record)
    assert f"on {record['rows']:,} rows of attacks.csv, normal rows only" in sentence
    assert f"{record['left_out']:,} rows left out" in sentence


def test_retraining_with_labels_keeps_to_the_rows_labelled_normal(rack):
    batch = _with_attacks(rack["fresh"], 0.45)
    new = retraining.retrain(rack["detector"], batch, mode="fine_tune", epochs=2)
    normal = int((batch["label"] == 0).sum())
    assert new.retraining_["rule"] == "labelled"
    assert new.retraining_["rows"] == normal and new.retraining_["left_out"] == len(batch) - normal
    assert sum(new.split_.sizes().values()) == len(batch)  # anomalies only score, never train
    assert len(new.split_.train) + len(new.split_.validation) == normal


def test_a_retrained_bundle_records_how_it_was_retrained(rack, tmp_path):
    store.save(rack["detector"], "rack", models_dir=tmp_path)
    first = store.read_meta("rack", models_dir=tmp_path)
    batch = _with_attacks(rack["fresh"], 0.4).drop(columns="label")
    new, _ = retraining.retrain_saved(
        "rack", batch, mode="fine_tune", models_dir=tmp_path, batch_name="attacks.csv"
    )
    meta = store.read_meta("rack", models_dir=tmp_path)
    record = meta["retraining"]
    assert record["from_model"] == "rack" and record["from_version"] == first["version"]
    assert record["batch"] == "attacks.csv" and record["rule"] == "threshold"
    assert record["rows"] + record["left_out"] == len(batch)
    sentence = retraining.describe_training(meta)
    assert sentence.startswith(meta["description"])
    assert "normal rows only" in sentence and "left out" in sentence
    assert f"{meta['split_sizes']['train']:,} trained" in sentence
    assert retraining.describe_training(first).startswith("Trained on ")


def test_without_labels_a_drifted_batch_keeps_its_new_normal_rows_to_retrain_on(rack):
    """Every row of the shifted rack is above the old threshold: keeping to the rows below it
    would leave nothing to learn the new normal from, so the threshold is carried over to the
    batch's errors and only its most unusual rows are left out."""
    old = rack["detector"]
    batch = rack["shifted_later"].drop(columns="label")
    assert (old.reconstruction_error(batch) > old.threshold_).mean() > 0.9
    normal, rule = retraining.believed_normal(old, batch)
    assert rule == "carried_threshold"
    assert 0.9 < normal.mean() < 1.0
    heavy = _with_attacks(rack["fresh"], 0.45).drop(columns="label")
    assert retraining.believed_normal(old, heavy)[1] == "threshold"


def test_intrusion_log_later_file_holds_attacks_not_drift():
    """The committed intrusion sample: the later file is 70% attacks over the same normal
    traffic, many of the milder attacks below the threshold. With or without its label column,
    the verdict says it holds many anomalies, not that normal behaviour changed."""
    from aecore.evaluation import drift

    training = pd.read_csv(SAMPLE_DATA / "intrusion_train.csv")
    later = pd.read_csv(SAMPLE_DATA / "intrusion_test.csv")
    roles = inference.infer_roles(training)
    assert roles.label == "attack"
    detector = AnomalyDetector(roles=roles, epochs=10, random_state=0).fit(training)
    for batch in (later, later.drop(columns="attack")):
        report = drift.monitor(detector, batch)
        assert report.verdict == "stable" and report.many_anomalies, report.evidence
