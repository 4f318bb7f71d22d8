"""Few labels: a classifier on a pre-trained encoder, the label-budget comparison, bundles."""

import numpy as np
import pandas as pd
import pytest

import aecore
from aecore import datasets, store
from aecore.classifier import (
    ANOMALY_COLUMN,
    FewLabelClassifier,
    encode_labels,
    load_classifier,
    pretrain,
)
from aecore.errors import AecoreError
from aecore.workflows.label_budgets import compare_label_budgets, hide_labels, predict_unlabelled

ROLES = datasets.SAMPLES["network_flows"].roles()


@pytest.fixture(scope="module")
def flows():
    return datasets.network_flows(seed=0, n_rows=2000)


@pytest.fixture(scope="module")
def detector(flows):
    return pretrain(flows, "label", roles=ROLES, epochs=20)


@pytest.fixture(scope="module")
def partial(flows):
    """The flows with all but 10 % of the labels blanked, plus the true labels."""
    rng = np.random.default_rng(1)
    truth = flows["label"].to_numpy(dtype=object)
    labels = truth.copy()
    labels[rng.random(len(flows)) > 0.1] = ""
    return flows.assign(label=labels), truth


@pytest.fixture(scope="module")
def classifier(partial, detector):
    frame, _ = partial
    return FewLabelClassifier(label_column="label").fit(frame, detector=detector)


def test_budget_comparison_on_shared_held_out_rows(flows, detector):
    result = compare_label_budgets(
        flows, "label", budgets=(200, 5000), detector=detector, roles=ROLES
    )
    assert list(result["approach"]) == ["pretrained", "scratch", "unsupervised"]
    assert result["budget"].eq(200).all() and result["n_test"].nunique() == 1
    assert any("5000 skipped" in note for note in result.attrs["notes"])
    anomaly_share = (flows["label"] != "benign").mean()
    classifiers = result[result["approach"] != "unsupervised"]
    assert (classifiers["pr_auc"] > 5 * anomaly_share).all()  # far better than guessing
    assert result[["f1", "pr_auc", "precision", "recall"]].notna().all().all()


def test_unlabelled_rows_get_class_probabilities_attacks_first(partial, classifier):
    frame, truth = partial
    out = predict_unlabelled(classifier, frame)
    unlabelled = (frame["label"] == "").to_numpy()
    assert len(out) == unlabelled.sum()
    # source_row numbers rows as the export does (header = row 1), id columns follow it.
    assert list(out.columns[:2]) == ["source_row", "flow_id"]
    assert set(out["source_row"] - 2) == set(np.flatnonzero(unlabelled))
    back = frame.iloc[out["source_row"].to_numpy() - 2]
    assert back["flow_id"].tolist() == out["flow_id"].tolist()
    assert back["label"].eq("").all()
    classes = list(classifier.classes_)
    labelled = set(frame["label"]) - {""}
    assert classes[0] == "benign" and set(classes) == labelled and len(classes) >= 4
    probabilities = out[[f"p_{name}" for name in classes]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out[ANOMALY_COLUMN], 1.0 - out["p_benign"], atol=1e-5)
    assert out[ANOMALY_COLUMN].is_monotonic_decreasing
    n_attacks = int((truth[unlabelled] != "benign").sum())
    top = truth[out["source_row"].to_numpy()[:n_attacks] - 2]
    assert (top != "benign").mean() > 0.5  # 12 times the 4 % base rate
    assert out["label"].eq("").all()
    clashing = predict_unlabelled(classifier, frame.assign(source_row=7))
    assert clashing["source_row_input"].eq(7).all()
    assert clashing["source_row"].equals(out["source_row"])


def test_decisions_use_the_labelled_class_mix_and_raise_fewer_false_alarms(
    partial, classifier
):
    """Trained with balanced class weights, the head overstates rare attack classes; deciding
    with the labelled rows' class mix (the default) flags fewer benign rows, for a better F1."""
    from sklearn.metrics import f1_score

    frame, truth = partial
    unlabelled = (frame["label"] == "").to_numpy()
    rows = frame[unlabelled]
    attack = truth[unlabelled] != "benign"
    balanced = clone_with(classifier, class_prior="balanced")
    flags = {
        "labelled": classifier.predict_anomaly(rows),
        "balanced": balanced.predict_anomaly(rows),
    }
    false_alarms = {k: int((f[~attack] == 1).sum()) for k, f in flags.items()}
    caught = {k: int((f[attack] == 1).sum()) for k, f in flags.items()}
    assert false_alarms["labelled"] < false_alarms["balanced"], (false_alarms, caught)
    f1 = {k: f1_score(attack, f) for k, f in flags.items()}
    assert f1["labelled"] > f1["balanced"], (f1, false_alarms, caught)
    probabilities = classifier.predict_proba(rows).to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    with pytest.raises(AecoreError, match="Unknown class prior"):
        FewLabelClassifier(label_column="label", class_prior="uniform").fit(frame)


def clone_with(classifier, **params):
    """The same fitted network with other decision parameters (no refit)."""
    import copy

    other = copy.copy(classifier)
    other.set_params(**params)
    return other


def first_kernel(model):
    """The kernel of the encoder's first layer, wherever the model nests it."""
    for layer in model.layers:
        if layer.name == "encode_0":
            return layer.get_weights()[0]
        if hasattr(layer, "layers"):
            found = first_kernel(layer)
            if found is not None:
                return found
    return None


def test_frozen_encoder_keeps_the_pretrained_weights(partial, detector, classifier):
    frame, _ = partial
    pretrained = detector.autoencoder_.encoder.get_weights()

    np.testing.assert_array_equal(first_kernel(classifier.model_), pretrained[0])
    tuned = FewLabelClassifier(label_column="label", fine_tune=True, fine_tune_epochs=5)
    tuned.fit(frame, detector=detector)
    assert not np.array_equal(first_kernel(tuned.model_), pretrained[0])
    assert tuned.history_["fine_tune"]["epochs_run"] >= 1
    scratch = FewLabelClassifier(label_column="label", pretrained=False)
    scratch.fit(frame, detector=detector)
    assert not np.array_equal(first_kernel(scratch.model_), pretrained[0])
    np.testing.assert_array_equal(detector.autoencoder_.encoder.get_weights()[0], pretrained[0])


def test_bundle_round_trip_and_versions(partial, classifier, detector, tmp_path):
    frame, _ = partial
    classifier.save("flows-labels", models_dir=tmp_path)
    classifier.save("flows-labels", models_dir=tmp_path)
    assert len(store.list_versions("flows-labels", models_dir=tmp_path)) == 2
    meta = store.read_meta("flows-labels", models_dir=tmp_path)
    assert meta["kind"] == "classifier" and meta["classes"] == list(classifier.classes_)
    assert not list(tmp_path.rglob("*.pkl"))
    loaded = FewLabelClassifier.load("flows-labels", models_dir=tmp_path)
    pd.testing.assert_frame_equal(loaded.predict_proba(frame), classifier.predict_proba(frame))
    assert loaded.detector_ is None
    store.save(detector, "flows-detector", models_dir=tmp_path)
    with pytest.raises(AecoreError, match="not a classifier"):
        load_classifier("flows-detector", models_dir=tmp_path)
    with pytest.raises(AecoreError, match=r"load it with FewLabelClassifier\.load"):
        aecore.load("flows-labels", models_dir=tmp_path)
    kinds = store.list_models(tmp_path).set_index("name")["kind"]
    assert kinds.to_dict() == {"flows-detector": "detector", "flows-labels": "classifier"}


def test_binary_mode_and_partial_labels():
    values = pd.Series(["benign", "", None, "dos", "portscan", "benign"])
    codes, classes, normal = encode_labels(values, "binary")
    assert codes.tolist() == [0, -1, -1, 1, 1, 0] and classes == ["benign", "anomaly"]
    codes, classes, normal = encode_labels(values, "auto")
    assert classes == ["benign", "dos", "portscan"] and normal == {"benign"}
    assert codes.tolist() == [0, -1, -1, 1, 2, 0]
    codes, classes, _ = encode_labels(pd.Series([0, 1, None, 0]), "auto")
    assert classes == ["0", "1"] and codes.tolist() == [0, 1, -1, 0]


def test_clear_errors(partial, detector, flows):
    frame, _ = partial
    only_benign = frame.assign(label=np.where(frame["label"] == "benign", "benign", ""))
    with pytest.raises(AecoreError, match="single class"):
        FewLabelClassifier(label_column="label").fit(only_benign, detector=detector)
    few = frame.assign(label=[""] * (len(frame) - 3) + ["benign", "dos", "benign"])
    with pytest.raises(AecoreError, match="at least 4"):
        FewLabelClassifier(label_column="label").fit(few, detector=detector)
    with pytest.raises(AecoreError, match="not fitted"):
        FewLabelClassifier().predict(frame)
    with pytest.raises(AecoreError, match="not in the data"):
        compare_label_budgets(flows, "verdict")


def many_attack_names(n_rows=600, n_attacks=30, seed=0):
    """A fully labelled table shaped like an intrusion log: one normal class and many attack
    names, every attack class a few rows, normal about a third of the rows."""
    rng = np.random.default_rng(seed)
    attacks = [f"attack{index:02d}" for index in range(n_attacks)]
    labels = np.where(rng.random(n_rows) < 0.35, "normal", rng.choice(attacks, size=n_rows))
    shift = np.where(labels == "normal", 0.0, 3.0)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n_rows) + shift,
            "b": rng.normal(size=n_rows),
            "c": rng.normal(size=n_rows) - shift,
            "attack": labels,
        }
    )


def test_small_budget_draw_holds_normal_rows_among_many_attack_classes():
    """Issue 13 #7: with many attack names, a draw of 10 that takes one row of 10 random
    classes can hold no normal row at all; the whole comparison then failed on best_f1."""
    from aecore.workflows.label_budgets import draw_labelled

    frame = many_attack_names()
    codes, _, _ = encode_labels(frame["attack"], "auto")
    binary = (frame["attack"] != "normal").to_numpy().astype(int)
    for seed in range(40):
        chosen = draw_labelled(codes, 10, np.random.default_rng(seed), binary=binary)
        assert len(chosen) == 10 and len(set(chosen)) == 10
        assert set(binary[chosen]) == {0, 1}, seed


def test_practice_mode_keeps_a_normal_and_an_anomalous_label_with_fewer_labels_than_classes():
    """Practice mode (Few labels page: keep only N labels) drew one row of N random classes;
    with 31 classes and 10 labels kept, no normal row was left labelled."""
    from ui import cache

    frame = many_attack_names()
    for keep in (4, 10, 15):
        kept = cache.keep_labels(f"test-{keep}", "attack", keep, frame)["attack"].dropna()
        assert len(kept) == keep
        assert (kept == "normal").any() and (kept != "normal").any(), keep
        assert frame.loc[kept.index, "attack"].tolist() == kept.tolist()  # kept as they were
    for seed in range(20):
        kept = hide_labels(frame, "attack", 4, random_state=seed)["attack"].dropna()
        assert set(kept == "normal") == {True, False}, seed


@pytest.fixture(scope="module")
def attack_log():
    frame = many_attack_names()
    return frame, pretrain(frame, "attack", epochs=2)


def test_comparison_keeps_every_budget_when_a_random_draw_lacks_normal_rows(attack_log):
    frame, detector = attack_log
    result = compare_label_budgets(
        frame,
        "attack",
        budgets=(10, 50, 200),
        detector=detector,
        classifier_params={"epochs": 3},
    )
    assert sorted(set(result["budget"])) == [10, 50, 200]
    assert len(result) == 9 and result[["f1", "pr_auc"]].notna().all().all()
    at_ten = result[result["budget"] == 10]
    assert (at_ten["labelled_anomalies"] < 10).all()  # the draw of 10 held normal rows


def test_a_budget_that_cannot_be_scored_is_skipped_with_a_note(attack_log, monkeypatch):
    """Whatever stops one budget (here the threshold search failing on 10 rows), the other
    budgets are still compared and the note says which budget was left out and why."""
    from aecore.evaluation import thresholds

    frame, detector = attack_log
    real = thresholds.choose_threshold

    def failing_on_ten(errors, method, **kwargs):
        if len(errors) == 10:
            raise AecoreError("no threshold for these 10 rows")
        return real(errors, method, **kwargs)

    monkeypatch.setattr(thresholds, "choose_threshold", failing_on_ten)
    result = compare_label_budgets(
        frame, "attack", budgets=(10, 50), detector=detector, classifier_params={"epochs": 2}
    )
    assert set(result["budget"]) == {50} and len(result) == 3
    assert result.attrs["notes"] == ["Budget 10 skipped: no threshold for these 10 rows"]


def test_cancel_stops_the_head_after_its_current_epoch_with_a_usable_classifier(partial, detector):
    frame, _ = partial
    stopped = FewLabelClassifier(label_column="label", epochs=50).fit(
        frame, detector=detector, should_stop=lambda: True
    )
    assert stopped.history_["head"]["epochs_run"] == 1
    assert stopped.predict_proba(frame.head(5)).shape == (5, len(stopped.classes_))
