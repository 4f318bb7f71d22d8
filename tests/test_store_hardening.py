"""Issue 14: a damaged ``meta.json`` is listed as broken and never hides the other bundles;
saves under one name are serialised; PCA views refuse too few rows; one-line ``list`` warnings
and a second-model summary that never reads "the 0.0% of training rows"."""

import json
import re
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import aecore
from aecore import AecoreError, AnomalyDetector, cli, store
from aecore.evaluation.pca import compare_with_pca, project_2d, projection_problem
from tests.helpers import numeric_frame

ROOT = Path(__file__).resolve().parents[1]
FAST = {"epochs": 2, "batch_size": 64}


@pytest.fixture(scope="module")
def detector():
    return AnomalyDetector(second_model=None, **FAST).fit(numeric_frame(200, 4))


@pytest.fixture(scope="module")
def saved(detector, tmp_path_factory):
    """A models folder with one good bundle; tests copy it and damage the copy."""
    folder = tmp_path_factory.mktemp("store")
    detector.save("good", models_dir=folder)
    return folder


def damaged_copy(saved: Path, tmp_path: Path, change) -> Path:
    """``tmp_path`` holding "good" and "bad": a copy of "good" whose meta.json ``change`` edits."""
    shutil.copytree(saved / "good", tmp_path / "good")
    shutil.copytree(saved / "good", tmp_path / "bad")
    path = tmp_path / "bad" / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    change(meta)
    path.write_text(json.dumps(meta), encoding="utf-8")
    return tmp_path


DAMAGES = {
    "features": (lambda m: m.update(features=5), "'features' should be a list, not a number"),
    "threshold.value": (
        lambda m: m["threshold"].update(value="high"),
        "'threshold.value' should be a number, not text",
    ),
    "roles": (lambda m: m.pop("roles"), "'roles' is missing"),
    "features[1].name": (
        lambda m: m["features"][1].update(name=7),
        "'features[1].name' should be text, not a number",
    ),
    "preprocessing.numeric[0].scale": (
        lambda m: m["preprocessing"]["numeric"][0].update(scale=None),
        "'preprocessing.numeric[0].scale' should be a number, not null",
    ),
    "architecture": (
        lambda m: m.update(architecture=["dense"]),
        "'architecture' should be an object, not a list",
    ),
}


@pytest.mark.parametrize("field", list(DAMAGES))
def test_a_damaged_meta_is_listed_as_broken_and_the_others_stay_usable(
    saved, tmp_path, field
):
    change, reason = DAMAGES[field]
    folder = damaged_copy(saved, tmp_path, change)
    models = store.list_models(folder).set_index("name")
    assert list(models.index) == ["bad", "good"]
    assert models.loc["good", "problem"] == "" and models.loc["good", "n_features"] == 4
    problem = models.loc["bad", "problem"]
    assert reason in problem and "meta.json" in problem and "\n" not in problem
    for call in (aecore.load, store.read_meta):
        with pytest.raises(AecoreError, match=f"Model 'bad' is damaged.*{re.escape(field)}"):
            call("bad", models_dir=folder)
    assert store.read_meta("good", models_dir=folder)["name"] == "good"


def test_loading_the_good_bundle_beside_a_damaged_one_works(saved, tmp_path, detector):
    folder = damaged_copy(saved, tmp_path, DAMAGES["features"][0])
    frame = numeric_frame(50, 4, seed=3)
    loaded = aecore.load("good", models_dir=folder)
    np.testing.assert_allclose(
        loaded.reconstruction_error(frame), detector.reconstruction_error(frame), atol=1e-6
    )


def test_unreadable_json_is_listed_as_broken_too(saved, tmp_path):
    shutil.copytree(saved / "good", tmp_path / "good")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "meta.json").write_text("{not json", encoding="utf-8")
    models = store.list_models(tmp_path).set_index("name")
    assert "not valid JSON" in models.loc["junk", "problem"]
    assert models.loc["good", "problem"] == ""


def test_the_shipped_demo_bundle_and_optional_new_fields_validate(saved, tmp_path):
    demo = json.loads((ROOT / "models" / "server-metrics-demo" / "meta.json").read_text())
    assert store.meta_problem(demo) is None
    listed = store.list_models(ROOT / "models").set_index("name")
    assert listed.loc["server-metrics-demo", "problem"] == ""

    def newer(meta):  # fields a later aecore may add: allowed, and loads
        meta["roles"]["ids"] = ["row_id"]
        meta["retraining"] = {"mode": "fine_tune", "rows": 10}
        meta["something_new"] = {"any": ["shape", 1]}

    folder = damaged_copy(saved, tmp_path, newer)
    assert store.list_models(folder).set_index("name").loc["bad", "problem"] == ""
    assert aecore.load("bad", models_dir=folder).roles_.ids == ["row_id"]


def test_cli_list_prints_one_warning_line_per_damaged_bundle(saved, tmp_path, capsys):
    folder = damaged_copy(saved, tmp_path, DAMAGES["features"][0])
    (folder / "junk").mkdir()
    (folder / "junk" / "meta.json").write_text("{not json", encoding="utf-8")
    assert cli.main(["list", "--models-dir", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "good" in captured.out and "bad" not in captured.out
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert lines[0].startswith("warning: model 'bad' cannot be used:")
    assert "'features' should be a list" in lines[0]
    assert lines[1].startswith("warning: model 'junk' cannot be used:")


# ---------------------------------------------------------------------------- concurrent saves


def test_concurrent_saves_under_one_name_all_succeed_and_keep_every_version(
    detector, tmp_path, monkeypatch
):
    n = 6
    model_bytes = (detector.save("seed", models_dir=tmp_path / "seed") / "model.keras").read_bytes()
    arrived = threading.Barrier(n, timeout=120)

    def write_model(model, folder):  # the real file, then every thread publishes at once
        path = folder / store.MODEL_FILE
        path.write_bytes(model_bytes)
        arrived.wait()
        return path

    monkeypatch.setattr(store, "_write_model", write_model)
    outcomes = []

    def save():
        try:
            detector.save("shared", models_dir=tmp_path)
            outcomes.append("saved")
        except AecoreError as error:
            outcomes.append(f"refused: {error}")
        except Exception as error:  # what the issue saw: a raw OSError
            outcomes.append(f"raw {type(error).__name__}: {error}")

    threads = [threading.Thread(target=save) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.undo()
    assert outcomes == ["saved"] * n
    assert len(store.list_versions("shared", models_dir=tmp_path)) == n
    assert aecore.load("shared", models_dir=tmp_path).threshold_ == detector.threshold_
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_a_save_that_cannot_get_the_lock_gets_a_clear_error(detector, tmp_path, monkeypatch):
    detector.save("busy", models_dir=tmp_path)
    monkeypatch.setattr(store, "LOCK_TIMEOUT_SECONDS", 0.0)
    with store.name_lock("busy", models_dir=tmp_path):  # someone else is saving
        with pytest.raises(AecoreError, match="being saved or deleted by another user"):
            detector.save("busy", models_dir=tmp_path)
        with pytest.raises(AecoreError, match="being saved or deleted"):
            store.delete_model("busy", models_dir=tmp_path)
    assert len(store.list_versions("busy", models_dir=tmp_path)) == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    detector.save("busy", models_dir=tmp_path)  # free again
    assert len(store.list_versions("busy", models_dir=tmp_path)) == 2


# ---------------------------------------------------------------------------- PCA on few rows


def test_pca_views_refuse_one_row_with_a_clear_message(detector):
    one = numeric_frame(1, 4, seed=5)
    assert "at least 2 rows" in projection_problem(1)
    assert projection_problem(2) is None
    with pytest.raises(AecoreError, match="at least 2 rows; the data has 1"):
        project_2d(np.ones((1, 5)))
    with pytest.raises(AecoreError, match="at least 2 rows; the data has 1"):
        compare_with_pca(detector, one)
    assert project_2d(np.random.default_rng(0).normal(size=(2, 5))).shape == (2, 2)


# ---------------------------------------------------------------------------- second model text


def test_the_second_model_summary_says_when_it_left_out_no_rows():
    detector = AnomalyDetector(**FAST).fit(numeric_frame(200, 4))
    assert detector.second_autoencoder_ is not None
    second = detector.score_calibration_["second"]
    second["left_out"] = 0.0  # no row stood out: the rule can leave none out
    text = detector.second_model_summary()
    assert "0.0%" not in text and "left out no training rows" in text
    second["left_out"] = 0.0004
    text = detector.second_model_summary()
    assert "0.0%" not in text and "under 0.1%" in text
    second["left_out"] = 0.05
    assert "without the 5.0% of training rows" in detector.second_model_summary()
