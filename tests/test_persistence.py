"""Model bundles: save, load and score identically; never destroy; refuse what is unsafe."""

import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aecore
from aecore import AecoreError, AnomalyDetector, store
from aecore.io import reader
from aecore.model import state
from aecore.store import BundleVersionWarning
from tests.helpers import mixed_frame, numeric_frame

ROOT = Path(__file__).resolve().parents[1]
FAST = {"epochs": 3, "batch_size": 64}


def labelled_frame(n_rows=240, seed=0) -> pd.DataFrame:
    """The mixed frame (3 numeric columns, 1 categorical) with 8 planted, labelled anomalies."""
    frame = mixed_frame(n_rows, seed=seed)
    frame["label"] = 0
    planted = np.arange(10, n_rows, n_rows // 8)[:8]
    frame.loc[planted, "bytes"] *= 4
    frame.loc[planted, "label"] = 1
    return frame


@pytest.fixture(scope="module")
def frame():
    return labelled_frame()


@pytest.fixture(scope="module")
def detector(frame):
    return AnomalyDetector(**FAST).fit(frame)


def edit_meta(folder: Path, change) -> None:
    path = folder / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    change(meta)
    path.write_text(json.dumps(meta), encoding="utf-8")


def test_a_loaded_model_scores_identically(detector, frame, tmp_path):
    folder = detector.save("net-1", models_dir=tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "model.keras"]
    loaded = aecore.load("net-1", models_dir=tmp_path)
    before, after = detector.score_rows(frame), loaded.score_rows(frame)
    np.testing.assert_allclose(after.row_error, before.row_error, rtol=0, atol=1e-6)
    np.testing.assert_allclose(after.feature_errors, before.feature_errors, rtol=0, atol=1e-6)
    np.testing.assert_allclose(after.latent, before.latent, rtol=0, atol=1e-6)
    assert loaded.threshold_ == detector.threshold_
    assert (after.flags == before.flags).all()
    assert (loaded.predict(frame) == detector.predict(frame)).all()
    pd.testing.assert_frame_equal(loaded.reconstruct(frame), detector.reconstruct(frame))
    # Every fitted attribute the detector's methods and the dashboard need is back.
    assert list(loaded.feature_names_in_) == list(detector.feature_names_in_)
    assert loaded.n_features_in_ == 4 and loaded.roles_ == detector.roles_
    assert loaded.code_size_ == detector.code_size_ and loaded.trained_on_ == "normal"
    assert loaded.n_train_rows_ == detector.n_train_rows_
    assert loaded.history_["epochs_run"] == detector.history_["epochs_run"]
    assert loaded.training_ == detector.training_
    assert loaded.threshold_choice_ == detector.threshold_choice_
    assert loaded.evaluation_["f1"] == detector.evaluation_["f1"]
    np.testing.assert_allclose(loaded.reference_errors_, detector.reference_errors_)
    assert loaded.get_params() == detector.get_params()
    assert loaded.split_ is None
    # The threshold can still be moved on a loaded model.
    assert loaded.set_threshold(0.0).predict(frame).all()


def test_meta_holds_what_the_issue_lists_as_plain_json(detector, tmp_path):
    folder = detector.save("net-1", models_dir=tmp_path, description="first try")
    text = (folder / "meta.json").read_text(encoding="utf-8")
    meta = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in meta.json"))
    assert meta["schema_version"] == store.SCHEMA_VERSION
    assert meta["kind"] == "detector"
    assert set(meta["libraries"]) >= {"keras", "tensorflow", "numpy", "pandas", "scikit-learn"}
    assert [f["name"] for f in meta["features"]] == ["bytes", "packets", "duration", "protocol"]
    assert [f["kind"] for f in meta["features"]][-1] == "categorical"
    assert meta["roles"]["label"] == "label"
    assert meta["preprocessing"]["categorical"][0]["categories"] == ["icmp", "tcp", "udp"]
    assert meta["architecture"]["name"] == "dense" and meta["architecture"]["window"] == 1
    assert meta["params"]["epochs"] == 3 and meta["history"]["epochs_run"] >= 1
    assert meta["threshold"] == {"value": detector.threshold_, "method": "percentile",
                                 "params": {"percentile": 99.0}}  # fmt: skip
    # Measured on the held-out 20 % (stratified): 2 of the 8 planted anomalies.
    assert meta["evaluation"]["n_anomalies"] == 2 and meta["evaluation"]["scope"] == "held-out"
    assert meta["n_train_rows"] == detector.n_train_rows_
    assert meta["description"] == "first try"
    assert len(meta["reference_errors"]) == len(detector.reference_errors_)
    profile = meta["reference_feature_errors"]
    assert list(profile) == ["bytes", "packets", "duration", "protocol"]
    assert profile == pytest.approx(detector.reference_feature_errors_.to_dict())
    import hashlib

    digest = hashlib.sha256((folder / "model.keras").read_bytes()).hexdigest()
    assert meta["model_sha256"] == digest


def test_many_reference_errors_are_kept_as_evenly_spaced_quantiles(detector, tmp_path, monkeypatch):
    monkeypatch.setattr(state, "MAX_REFERENCE_ERRORS", 20)
    detector.save("net-1", models_dir=tmp_path)
    stored = store.read_meta("net-1", models_dir=tmp_path)["reference_errors"]
    errors = detector.reference_errors_
    assert len(errors) > 20 and len(stored) == 20
    assert stored[0] == pytest.approx(errors.min()) and stored[-1] == pytest.approx(errors.max())
    assert stored == sorted(stored)


def test_saving_again_keeps_the_previous_version(detector, frame, tmp_path):
    first = detector.threshold_
    detector.save("net-1", models_dir=tmp_path)
    moved = aecore.load("net-1", models_dir=tmp_path).set_threshold(first * 2)
    moved.save("net-1", models_dir=tmp_path)
    versions = store.list_versions("net-1", models_dir=tmp_path)
    assert len(versions) == 2 and versions[0]["current"] and not versions[1]["current"]
    assert versions[0]["version"] > versions[1]["version"]
    assert aecore.load("net-1", models_dir=tmp_path).threshold_ == first * 2
    old = aecore.load("net-1", models_dir=tmp_path, version=versions[1]["version"])
    assert old.threshold_ == first
    assert store.list_models(tmp_path)["versions"].tolist() == [2]


def test_a_save_that_fails_after_the_model_file_leaves_the_old_bundle(
    detector, frame, tmp_path, monkeypatch
):
    detector.save("net-1", models_dir=tmp_path)
    expected = detector.reconstruction_error(frame)

    def disk_full(meta, folder):
        assert (folder / "model.keras").is_file()  # the model file was written first
        raise OSError(28, "No space left on device")

    changed = aecore.load("net-1", models_dir=tmp_path).set_threshold(123.0)
    monkeypatch.setattr(store, "_write_meta", disk_full)
    with pytest.raises(OSError):
        changed.save("net-1", models_dir=tmp_path)
    monkeypatch.undo()
    loaded = aecore.load("net-1", models_dir=tmp_path)
    np.testing.assert_allclose(loaded.reconstruction_error(frame), expected, atol=1e-6)
    assert loaded.threshold_ != 123.0
    assert len(store.list_versions("net-1", models_dir=tmp_path)) == 1
    left = [p.name for p in tmp_path.iterdir() if p.name != store.LOCKS_DIR]
    assert left == ["net-1"]  # the temporary folder is gone


def test_a_save_killed_midway_is_never_listed_and_the_old_bundle_loads(
    detector, tmp_path, monkeypatch
):
    detector.save("net-1", models_dir=tmp_path)
    threshold = detector.threshold_
    # Killed while writing: no clean-up runs, the half-written folder stays behind.
    monkeypatch.setattr(store.shutil, "rmtree", lambda *a, **k: None)
    monkeypatch.setattr(store, "_write_meta", lambda meta, folder: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        detector.save("net-1", models_dir=tmp_path)
    monkeypatch.undo()
    left = [p for p in tmp_path.iterdir() if p.name != store.LOCKS_DIR]
    assert len(left) == 2  # the bundle and the leftover
    listed = store.list_models(tmp_path)
    assert listed["name"].tolist() == ["net-1"] and listed["versions"].tolist() == [1]
    assert aecore.load("net-1", models_dir=tmp_path).threshold_ == threshold


def test_killed_between_the_two_renames_the_previous_version_still_loads(
    detector, tmp_path, monkeypatch
):
    detector.save("net-1", models_dir=tmp_path)
    threshold = detector.threshold_
    real_replace = store.os.replace
    calls = []

    def replace(source, target):
        calls.append(target)
        if len(calls) == 2:  # the old bundle has moved away; the new one never arrives
            raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr(store.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        detector.save("net-1", models_dir=tmp_path)
    monkeypatch.undo()
    assert not (tmp_path / "net-1").exists()
    assert aecore.load("net-1", models_dir=tmp_path).threshold_ == threshold
    assert store.list_models(tmp_path)["name"].tolist() == ["net-1"]
    detector.save("net-1", models_dir=tmp_path)  # and the next save works
    assert len(store.list_versions("net-1", models_dir=tmp_path)) == 2


def test_a_tampered_model_file_is_refused(detector, tmp_path):
    folder = detector.save("net-1", models_dir=tmp_path)
    data = bytearray((folder / "model.keras").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "model.keras").write_bytes(bytes(data))
    with pytest.raises(AecoreError, match="does not match the SHA-256"):
        aecore.load("net-1", models_dir=tmp_path)


def test_an_unknown_schema_version_is_refused(detector, tmp_path):
    folder = detector.save("net-1", models_dir=tmp_path)
    edit_meta(folder, lambda meta: meta.update(schema_version=99))
    with pytest.raises(AecoreError, match="schema version 99"):
        aecore.load("net-1", models_dir=tmp_path)


def test_h5_model_files_are_refused(detector, tmp_path):
    folder = detector.save("net-1", models_dir=tmp_path)
    (folder / "model.keras").rename(folder / "model.h5")
    edit_meta(folder, lambda meta: meta.update(model_file="model.h5"))
    with pytest.raises(AecoreError, match=r"HDF5 \(\.h5\)"):
        aecore.load("net-1", models_dir=tmp_path)

    folder = detector.save("net-2", models_dir=tmp_path)  # an HDF5 file named model.keras
    fake = b"\x89HDF\r\n\x1a\n" + b"\x00" * 64
    (folder / "model.keras").write_bytes(fake)
    import hashlib

    edit_meta(folder, lambda meta: meta.update(model_sha256=hashlib.sha256(fake).hexdigest()))
    with pytest.raises(AecoreError, match="HDF5"):
        aecore.load("net-2", models_dir=tmp_path)


@pytest.mark.parametrize(
    "name", ["../x", "a/b", "..", ".hidden", "", "a b", "a\\b", "/etc", "x" * 65, "naïve", None]
)
def test_unsafe_names_are_refused_everywhere(detector, tmp_path, name):
    for call in (
        lambda: detector.save(name, models_dir=tmp_path),
        lambda: aecore.load(name, models_dir=tmp_path),
        lambda: store.read_meta(name, models_dir=tmp_path),
        lambda: store.delete_model(name, models_dir=tmp_path),
        lambda: store.bundle_zip(name, models_dir=tmp_path),
    ):
        with pytest.raises(AecoreError, match="not a valid model name"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_accepted_names(detector, tmp_path):
    for name in ("a", "net-1_v2.0", "X" * 64):
        detector.save(name, models_dir=tmp_path)
    assert store.list_models(tmp_path)["name"].tolist() == ["a", "net-1_v2.0", "X" * 64]


def test_other_library_versions_give_a_warning_but_load(detector, frame, tmp_path):
    folder = detector.save("net-1", models_dir=tmp_path)
    edit_meta(folder, lambda meta: meta["libraries"].update(numpy="1.0.0"))
    with pytest.warns(BundleVersionWarning, match="numpy 1.0.0"):
        loaded = aecore.load("net-1", models_dir=tmp_path)
    assert loaded.threshold_ == detector.threshold_


def test_listing_for_a_models_page(detector, tmp_path):
    empty = store.list_models(tmp_path / "nothing-here")
    assert empty.empty and list(empty.columns) == store.LIST_COLUMNS
    detector.save("net-1", models_dir=tmp_path)
    AnomalyDetector(architecture="linear", **FAST).fit(numeric_frame(120, 4)).save(
        "plain", models_dir=tmp_path
    )
    models = store.list_models(tmp_path).set_index("name")
    assert list(models.index) == ["net-1", "plain"]
    row = models.loc["net-1"]
    assert row["architecture"] == "dense" and row["n_features"] == 4
    assert row["features"] == "bytes, packets, duration, protocol"
    assert row["threshold"] == detector.threshold_ and row["threshold_method"] == "percentile"
    assert row["metrics"].startswith("F1 ") and "ROC-AUC" in row["metrics"]
    assert row["n_train_rows"] == detector.n_train_rows_ and row["versions"] == 1
    assert row["created"].startswith("20") and row["kind"] == "detector"
    assert models.loc["plain", "metrics"] == "" and models.loc["plain", "architecture"] == "linear"


def test_delete_removes_every_version(detector, tmp_path):
    detector.save("net-1", models_dir=tmp_path)
    detector.save("net-1", models_dir=tmp_path)
    detector.save("keep", models_dir=tmp_path)
    store.delete_model("net-1", models_dir=tmp_path)
    assert store.list_models(tmp_path)["name"].tolist() == ["keep"]
    with pytest.raises(AecoreError, match="No saved model named 'net-1'"):
        aecore.load("net-1", models_dir=tmp_path)
    with pytest.raises(AecoreError, match="No saved model"):
        store.delete_model("net-1", models_dir=tmp_path)


def test_bundle_zip_holds_the_model_and_its_meta(detector, tmp_path):
    folder = detector.save("net-1", models_dir=tmp_path)
    archive = zipfile.ZipFile(io.BytesIO(store.bundle_zip("net-1", models_dir=tmp_path)))
    assert sorted(archive.namelist()) == ["net-1/meta.json", "net-1/model.keras"]
    assert archive.read("net-1/model.keras") == (folder / "model.keras").read_bytes()


def test_the_models_folder_can_be_set_by_environment(detector, tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_MODELS_DIR", str(tmp_path))
    detector.save("net-1")
    assert (tmp_path / "net-1" / "model.keras").is_file()
    assert store.list_models()["name"].tolist() == ["net-1"]


@pytest.mark.parametrize(
    "params", [{"architecture": "conv", "window": 3}, {"architecture": "variational"}]
)
def test_windowed_and_variational_models_round_trip(params, tmp_path):
    frame = numeric_frame(150, 5)
    frame["time"] = pd.date_range("2026-01-01", periods=150, freq="min")[::-1].astype(str)
    detector = AnomalyDetector(code_size=2, **params, **FAST).fit(frame)
    detector.save("net", models_dir=tmp_path)
    loaded = aecore.load("net", models_dir=tmp_path)
    assert loaded.autoencoder_.window == params.get("window", 1)
    np.testing.assert_allclose(
        loaded.reconstruction_error(frame), detector.reconstruction_error(frame), atol=1e-6
    )


def test_the_bundled_demo_model_flags_the_sample_incidents(monkeypatch):
    monkeypatch.delenv("AECORE_MODELS_DIR", raising=False)
    from aecore import datasets

    assert "server-metrics-demo" in store.list_models(ROOT / "models")["name"].tolist()
    detector = aecore.load("server-metrics-demo", models_dir=ROOT / "models")
    sample = ROOT / "sample_data" / "server_metrics.csv"
    frame = reader.read_csv(sample) if sample.is_file() else datasets.server_metrics(seed=0)
    flags = detector.predict(frame)
    incident = frame["label"].to_numpy() == 1
    assert flags[incident].mean() > 0.3
    assert flags[incident].mean() > 10 * flags[~incident].mean()


def test_fit_profiles_the_held_out_errors_of_each_column_and_loading_restores_it(
    detector, frame, tmp_path
):
    profile = detector.reference_feature_errors_
    assert list(profile.index) == list(detector.feature_names_in_)
    held_out = frame.iloc[detector.split_.validation]
    np.testing.assert_allclose(profile, detector.feature_errors(held_out).mean(), rtol=1e-6)
    retrained = AnomalyDetector(**FAST).fit(frame)
    retrained.retraining_ = {"mode": "scratch", "rows": 240, "window": None}
    retrained.save("net-1", models_dir=tmp_path)
    loaded = aecore.load("net-1", models_dir=tmp_path)
    assert loaded.reference_feature_errors_.dtype == np.float64
    pd.testing.assert_series_equal(
        loaded.reference_feature_errors_, retrained.reference_feature_errors_, check_names=False
    )
    assert loaded.retraining_ == retrained.retraining_


def test_a_loaded_network_takes_a_plain_array_without_a_structure_warning(detector, tmp_path):
    detector.save("net-1", models_dir=tmp_path)
    network = aecore.load("net-1", models_dir=tmp_path).autoencoder_.model
    rows = np.zeros((3, detector.preprocessor_.n_encoded), dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.asarray(network(rows, training=False)).shape == rows.shape


def test_bundles_saved_before_kinds_existed_load_as_detectors(detector, frame, tmp_path):
    folder = detector.save("old", models_dir=tmp_path)

    def as_before(meta):
        del meta["kind"], meta["reference_feature_errors"]

    edit_meta(folder, as_before)
    loaded = aecore.load("old", models_dir=tmp_path)
    np.testing.assert_allclose(
        loaded.reconstruction_error(frame), detector.reconstruction_error(frame), atol=1e-6
    )
    assert not hasattr(loaded, "reference_feature_errors_")
    assert store.list_models(tmp_path)["kind"].tolist() == ["detector"]


def tiny_network():
    import keras

    inputs = keras.Input(shape=(3,))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))


def classifier_meta(name="labels") -> dict:
    meta = store.new_meta(name, kind="classifier", description="few labels")
    meta.update(classes=np.array(["benign", "dos"]), weight=np.float32(0.5), spread=float("nan"))
    return meta


def test_bundle_helpers_write_and_check_any_kind_and_load_refuses_a_classifier(tmp_path):
    for _ in range(2):
        store.write_bundle(tiny_network(), classifier_meta(), "labels", models_dir=tmp_path)
    assert len(store.list_versions("labels", models_dir=tmp_path)) == 2

    bundle = store.read_bundle(
        "labels", kind="classifier", required=("classes",), models_dir=tmp_path
    )
    assert bundle.meta["classes"] == ["benign", "dos"] and bundle.meta["spread"] is None
    assert bundle.meta["weight"] == 0.5 and bundle.meta["description"] == "few labels"
    assert bundle.model.predict(np.ones((4, 3)), verbose=0).shape == (4, 2)
    with pytest.raises(AecoreError, match="lacks threshold"):
        store.read_bundle(
            "labels", kind="classifier", required=("threshold",), models_dir=tmp_path
        )
    with pytest.raises(AecoreError, match=r"is a classifier.*FewLabelClassifier\.load"):
        aecore.load("labels", models_dir=tmp_path)
    listed = store.list_models(tmp_path)
    assert listed["kind"].tolist() == ["classifier"] and list(listed.columns) == (
        store.LIST_COLUMNS
    )

    (bundle.folder / "model.keras").write_bytes(b"PK\x03\x04 not the saved model")
    with pytest.raises(AecoreError, match="does not match the SHA-256"):
        store.read_bundle("labels", kind="classifier", models_dir=tmp_path)
    edit_meta(bundle.folder, lambda meta: meta.update(kind="forecaster"))
    with pytest.raises(AecoreError, match="unknown kind 'forecaster'"):
        aecore.load("labels", models_dir=tmp_path)
    with pytest.raises(AecoreError, match="same name"):
        store.write_bundle(tiny_network(), classifier_meta(), "other", models_dir=tmp_path)
