"""Drift monitoring and retraining on the server-metrics rack (srv5-srv8 change workload)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aecore import drift, persistence, samples
from aecore.detector import AnomalyDetector
from aecore.errors import AecoreError

ROLES = samples.SAMPLES["server_metrics"].roles()
SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"


@pytest.fixture(scope="module")
def rack():
    """A detector trained on the original rack, a fresh batch from the same rack, the shifted
    rack (the committed drift sample) and more shifted data to retrain on."""
    training = samples.server_metrics(seed=0, n_rows=3000)
    detector = AnomalyDetector(roles=ROLES, split="chronological", epochs=30, random_state=0)
    detector.fit(training)  # fit keeps the per-feature reference errors too
    start = samples.day_after(training)
    return {
        "training": training,
        "detector": detector,
        "fresh": samples.server_metrics(seed=2, n_rows=1000, start=start),
        "shifted": pd.read_csv(SAMPLE_DATA / "server_metrics_drift.csv"),
        "shifted_later": samples.server_metrics(seed=3, n_rows=2000, start=start, drift=True),
    }


def test_shifted_rack_is_drifted_and_the_moved_servers_are_named(rack):
    report = drift.monitor(rack["detector"], rack["shifted"])
    assert report.verdict in ("drifting", "drifted")
    assert report.alarm_share > 10 * report.expected_alarm_share
    assert report.ks_statistic > 0.2 and report.psi > 0.25
    top = report.feature_changes["feature"].head(5)
    assert all(name.split("_")[0] in samples.DRIFTED_SERVERS for name in top)
    assert any("grew most" in sentence for sentence in report.evidence)
    assert "Retrain" in report.evidence[-1]


def test_fresh_batch_from_the_original_rack_is_stable(rack):
    report = drift.monitor(rack["detector"], rack["fresh"])
    assert report.verdict == "stable", report.evidence
    assert report.signals == {"ks": 0, "psi": 0, "alarm_rate": 0}
    assert report.false_alarm_share < 0.05
    assert report.evidence[-1] == "No action needed."


@pytest.mark.parametrize("mode", ["fine_tune", "scratch"])
def test_retraining_on_shifted_normal_data_brings_false_alarms_back(rack, mode):
    old = rack["detector"]
    before = drift.monitor(old, rack["shifted"])
    assert before.false_alarm_share > 0.5

    new = drift.retrain(old, rack["shifted_later"], mode=mode)
    after = drift.monitor(new, rack["shifted"])
    target = 1 - 0.99  # the default threshold: 99th percentile of held-out errors
    assert after.false_alarm_share < 3 * target
    assert after.verdict == "stable", after.evidence
    assert new is not old and old.threshold_ == before.threshold
    assert new.retraining_["mode"] == mode
    assert list(new.reference_feature_errors_.index) == list(old.feature_names_in_)


def test_window_keeps_the_most_recent_rows(rack):
    frame = rack["shifted_later"].sample(frac=1.0, random_state=0)  # out of time order
    by_rows = drift.recent_rows(frame, 100, "timestamp")
    assert len(by_rows) == 100
    assert by_rows["timestamp"].min() > frame["timestamp"].sort_values().iloc[-101]
    by_time = drift.recent_rows(frame, "2h", "timestamp")
    assert len(by_time) == 120
    with pytest.raises(AecoreError, match="duration"):
        drift.recent_rows(frame, "last week", "timestamp")
    with pytest.raises(AecoreError, match="time column"):
        drift.recent_rows(frame.drop(columns="timestamp"), "2h", None)


def test_retrain_saved_adds_a_version_and_keeps_the_old_one(rack, tmp_path):
    old = rack["detector"]
    persistence.save(old, "rack", models_dir=tmp_path)
    new, path = drift.retrain_saved(
        "rack", rack["shifted_later"], mode="fine_tune", window=1500, models_dir=tmp_path
    )
    versions = persistence.list_versions("rack", models_dir=tmp_path)
    assert len(versions) == 2 and versions[0]["current"]
    loaded = persistence.load("rack", models_dir=tmp_path)
    assert loaded.threshold_ == pytest.approx(new.threshold_)
    assert loaded.retraining_ == new.retraining_ and loaded.retraining_["rows"] == 1500
    assert list(loaded.reference_feature_errors_.index) == list(old.feature_names_in_)
    previous = persistence.load("rack", models_dir=tmp_path, version=versions[1]["version"])
    assert previous.threshold_ == pytest.approx(old.threshold_)
    assert "Fine-tuned on 1,500" in persistence.read_meta("rack", models_dir=tmp_path)[
        "description"
    ]


def test_a_loaded_model_names_the_features_that_grew_without_a_reference_frame(rack, tmp_path):
    persistence.save(rack["detector"], "rack", models_dir=tmp_path)
    loaded = persistence.load("rack", models_dir=tmp_path)
    report = drift.monitor(loaded, rack["shifted"])
    assert report.verdict in ("drifting", "drifted")
    top = report.feature_changes["feature"].head(5)
    assert all(name.split("_")[0] in samples.DRIFTED_SERVERS for name in top)
    assert any("grew most" in sentence for sentence in report.evidence)
    assert not any("cannot be named" in sentence for sentence in report.evidence)
    original = drift.monitor(rack["detector"], rack["shifted"]).feature_changes
    pd.testing.assert_frame_equal(report.feature_changes, original, atol=1e-6)


def test_loaded_model_without_feature_profile_still_monitors(rack, tmp_path):
    persistence.save(rack["detector"], "plain", models_dir=tmp_path)
    loaded = persistence.load("plain", models_dir=tmp_path)
    if hasattr(loaded, "reference_feature_errors_"):  # a model saved before the profile
        del loaded.reference_feature_errors_
    report = drift.monitor(loaded, rack["shifted"])
    assert report.verdict == "drifted" and report.feature_changes is None
    assert any("cannot be named" in sentence for sentence in report.evidence)
    named = drift.monitor(loaded, rack["shifted"], reference_frame=rack["training"])
    assert named.feature_changes["feature"].iloc[0].split("_")[0] in samples.DRIFTED_SERVERS


def test_population_stability_index():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=5000)
    assert drift.population_stability_index(reference, rng.normal(size=5000)) < 0.02
    assert drift.population_stability_index(reference, rng.normal(1.0, 1.0, 5000)) > 0.25


def test_too_small_batch_is_refused(rack):
    with pytest.raises(AecoreError, match="at least 30"):
        drift.monitor(rack["detector"], rack["fresh"].head(10))
    with pytest.raises(AecoreError, match="scratch"):
        drift.retrain(rack["detector"], rack["fresh"], mode="warm")


def test_fine_tuned_model_keeps_a_calibrated_score():
    from aecore import AnomalyDetector
    from aecore.drift import retrain
    from aecore.samples import server_metrics

    frame = server_metrics(n_rows=400).drop(columns="label")
    detector = AnomalyDetector(epochs=3).fit(frame)
    assert detector.score_calibration_ is not None
    tuned = retrain(detector, server_metrics(seed=2, n_rows=300).drop(columns="label"),
                    mode="fine_tune", epochs=2)
    assert tuned.score_calibration_ is not None
    assert tuned.score_calibration_["code_limit"] is not None
