"""The second model (``AnomalyDetector(second_model=...)``): without labels, a second autoencoder
learns the training rows less those the first scores far above the rest (at most a tenth), and
every score is the mean of the two models' calibrated scores."""

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score

import aecore
from aecore import AnomalyDetector, store
from aecore.errors import AecoreError
from aecore.io import reader
from aecore.workflows.retraining import retrain

FAST = {"epochs": 40, "batch_size": 32, "patience": 5}


def _hidden_group(seed=0, n_normal=1000, n_hidden=50):
    """Unlabelled rows: normal rows near a 3-dimensional plane in 12 columns, and a tight group
    of anomalies (5%) off it, close enough that a network trained on every row learns to rebuild
    them fairly well."""
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(3, 12))
    normal = rng.normal(size=(n_normal, 3)) @ basis + 0.3 * rng.normal(size=(n_normal, 12))
    center = rng.normal(size=3) @ basis + 1.5 * rng.normal(size=12)
    hidden = center + 0.3 * rng.normal(size=(n_hidden, 12))
    order = rng.permutation(n_normal + n_hidden)
    x = np.vstack([normal, hidden])[order]
    y = np.r_[np.zeros(n_normal), np.ones(n_hidden)][order]
    return pd.DataFrame(x, columns=[f"c{i}" for i in range(12)]), y


@pytest.fixture(scope="module")
def pair():
    """The default (two models) and the same settings with one model (and no memory of
    prototypes: the first model's score alone); the first models are the same network (same
    seed, rows and split)."""
    frame, labels = _hidden_group()
    both = AnomalyDetector(random_state=0, **FAST).fit(frame)
    one = AnomalyDetector(random_state=0, second_model=None, memory=None, **FAST).fit(frame)
    return frame, labels, both, one


def test_unlabelled_rows_train_a_second_model_without_the_rows_that_stand_out(pair):
    frame, labels, detector, one = pair
    assert detector.second_autoencoder_ is not None
    second = detector.score_calibration_["second"]
    assert second["share"] == pytest.approx(0.1)
    left_out = second["left_out"]
    assert 0.03 < left_out <= 0.1 + 1e-9  # the hidden group is 5% of the rows
    assert second["n_train_rows"] == round((1 - left_out) * detector.n_train_rows_)
    assert f"without the {left_out:.1%} of training rows" in detector.second_model_summary()
    # The cut is on the first model's scores (the first model alone is the same network), and
    # most rows above it are the hidden anomalies.
    train = detector.split_.train
    first = one.reconstruction_error(frame.iloc[train])
    above = first > second["cut"]
    assert np.mean(above) == pytest.approx(left_out, abs=0.01)
    assert np.mean(above[labels[train] == 1]) > 0.9  # the hidden group is left out
    assert np.mean(labels[train][above]) > 0.5  # and is most of what is left out


def test_the_second_models_cut_leaves_out_rows_that_stand_out_and_at_most_the_share():
    from aecore.model.calibration import second_model_cut

    rng = np.random.default_rng(0)
    normal = np.exp(rng.normal(size=10_000))  # clean training rows: log scores near Gaussian

    def left_out(scores):
        return float(np.mean(scores > second_model_cut(scores, 0.1)))

    assert left_out(normal) < 0.01  # a fixed tenth would drop 1,000 normal rows
    far = math.exp(6)  # six standard deviations of the log scores
    hidden = np.r_[normal[:9_500], far * normal[9_500:]]  # 5% scored far above the rest
    assert 0.045 <= left_out(hidden) <= 0.06
    many = np.r_[normal[:7_000], far * normal[7_000:]]  # 30%: never more than the share
    assert left_out(many) == pytest.approx(0.1, abs=0.001)
    assert left_out(np.ones(100)) == 0.0


def test_a_hidden_group_of_anomalies_stands_out_more_with_the_second_model(pair):
    frame, labels, detector, one = pair
    both = average_precision_score(labels, detector.decision_function(frame))
    alone = average_precision_score(labels, one.decision_function(frame))
    assert both > alone + 0.05, (both, alone)


def test_explanations_stay_exact_with_two_models(pair):
    frame, _, detector, _ = pair
    scores = detector.score_rows(frame.iloc[:200], reconstruction=True)
    np.testing.assert_allclose(
        scores.feature_errors.sum(axis=1).to_numpy(), scores.row_error, rtol=1e-4
    )
    assert scores.latent.shape[1] == detector.code_size_  # the first model's code
    assert scores.reconstruction.shape == (200, 12)
    assert np.isfinite(scores.reconstruction.to_numpy()).all()


def test_both_models_are_saved_in_one_bundle_and_score_identically(pair, tmp_path):
    frame, _, detector, _ = pair
    store.save(detector, "pair", models_dir=tmp_path)
    loaded = aecore.load("pair", models_dir=tmp_path)
    assert loaded.second_autoencoder_ is not None
    np.testing.assert_allclose(
        loaded.decision_function(frame), detector.decision_function(frame), rtol=1e-5
    )
    np.testing.assert_allclose(loaded.encode(frame), detector.encode(frame), atol=1e-5)


def test_labelled_normal_rows_and_second_model_none_train_one_model():
    frame, labels = _hidden_group(n_normal=300, n_hidden=15)
    labelled = frame.assign(label=labels.astype(int))
    assert AnomalyDetector(epochs=2).fit(labelled).second_autoencoder_ is None
    single = AnomalyDetector(epochs=2, second_model=None).fit(frame)
    assert single.second_autoencoder_ is None
    assert "second" not in single.score_calibration_
    assert single.second_model_summary() is None
    with pytest.raises(AecoreError, match="second_model"):
        AnomalyDetector(epochs=1, second_model=1.5).fit(frame)
    with pytest.raises(AecoreError, match="single-row"):
        AnomalyDetector(epochs=1, architecture="variational", second_model=0.1).fit(frame)


def test_progress_reports_the_second_model_as_its_own_stage():
    frame, _ = _hidden_group(n_normal=300, n_hidden=15)
    seen = []
    detector = AnomalyDetector(epochs=3, patience=10).fit(frame, progress=seen.append)
    stages = [report.stage for report in seen]
    assert stages == ["first"] * 3 + ["second"] * 3
    assert detector.score_calibration_["second"]["epochs_run"] == 3


def test_fine_tuning_keeps_and_recalibrates_the_second_model(pair):
    frame, _, detector, _ = pair
    before = detector.decision_function(frame)
    shifted = frame.iloc[:600] + 0.5
    tuned = retrain(detector, shifted, mode="fine_tune", epochs=2)
    assert tuned.second_autoencoder_ is not None
    assert tuned.second_autoencoder_ is not detector.second_autoencoder_
    second = tuned.score_calibration_["second"]
    assert second["input_scale"] == detector.score_calibration_["second"]["input_scale"]
    assert second["feature_weights"] != detector.score_calibration_["second"]["feature_weights"]
    # The original detector is untouched.
    np.testing.assert_array_equal(detector.decision_function(frame), before)


def test_a_saved_pair_is_used_and_explained_in_the_dashboard(models_dir):
    """Pick a saved two-model bundle on the Models page; Explain says what its errors are."""
    from tests.pages_support import ROOT, no_exception, open_app

    frame = reader.read_csv(ROOT / "sample_data" / "server_metrics.csv").drop(columns="label")
    detector = AnomalyDetector(
        epochs=2, batch_size=256, code_size=3, hidden_sizes=[16], roles={"timestamp": "time"}
    ).fit(frame)
    assert detector.second_autoencoder_ is not None
    store.save(detector, "unlabelled-pair", models_dir=models_dir)
    at = open_app("models")
    at.selectbox(key="models_name").set_value("unlabelled-pair").run()
    at.button(key="use_model").click().run()
    no_exception(at)
    at.switch_page("app_pages/explain.py").run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert any("two autoencoders" in caption.value for caption in at.caption)
    assert len(at.get("plotly_chart")) >= 3


def test_an_untouched_epoch_field_lets_two_models_share_the_training_budget(
    models_dir, monkeypatch
):
    """The Train page shows one model's epoch cap for labelled data; training on all rows then
    trains two models, and with the field left as shown each gets its share of the budget (not
    the whole cap twice). The budget is shrunk so that the cap binds on the sample."""
    from aecore.model import defaults
    from tests.pages_support import no_exception, open_app, wait_for, widget
    from ui import state

    n_train = int(4000 * 0.8)  # the sample's rows less the 20% validation share
    monkeypatch.setattr(defaults, "MIN_EPOCHS", 1)
    monkeypatch.setattr(defaults, "MAX_ROWS_SEEN", 4 * n_train)
    from ui import jobs

    monkeypatch.setattr(jobs, "_PLANS", {})  # plans made under the real budget by other tests
    at = open_app("train")
    shown = widget(at.number_input, "Epochs (at most)")
    assert shown.value is None  # automatic: the note says what the detector will use

    def planned() -> tuple[str, int]:
        """The schedule note under the fields, and the training rows it counts."""
        note = next(c.value for c in at.caption if c.value.startswith("Will train on"))
        return note, int(note.split()[3].replace(",", ""))

    note, rows = planned()
    assert "normal rows only" in note  # labelled: one model, for its normal training rows
    assert f"at most {defaults.MAX_ROWS_SEEN // rows} epochs" in note
    widget(at.selectbox, "Train on").set_value("all").run()
    note, rows = planned()
    cap = defaults.MAX_ROWS_SEEN // 2 // rows
    assert f"at most {cap} epochs" in note and "A second model" in note  # two share the budget
    widget(at.number_input, "Code size (0 = automatic)").set_value(2)
    widget(at.text_input, "Hidden layer widths").set_value("8")
    widget(at.number_input, "Early-stopping patience").set_value(20)
    at.button(key="train_submit").click().run()
    job = wait_for(at, state.JOB)
    no_exception(at)
    detector = job.detector
    assert detector.second_autoencoder_ is not None
    assert detector.training_["epochs"] == cap == 2
    assert [report.stage for report in job.progress] == ["first"] * 2 + ["second"] * 2
    assert detector.score_calibration_["second"]["epochs_run"] == 2

    at.switch_page("app_pages/train.py").run()  # a field set by hand is a cap for each model
    widget(at.number_input, "Epochs (at most)").set_value(3)
    widget(at.selectbox, "Train on").set_value("all")
    at.button(key="train_submit").click().run()
    job = wait_for(at, state.JOB)
    assert [report.stage for report in job.progress] == ["first"] * 3 + ["second"] * 3


def test_the_passes_traced_while_the_second_model_trains_are_the_ones_the_fit_scores_with(pair):
    # While the second network trains, the fit traces the scoring passes it will need next
    # (scoring.trace_ahead). Had a placeholder differed in structure from the real scorer, the
    # fit would have traced a pass of its own as well, and kept an unused one.
    frame, labels, detector, one = pair
    first, second = detector.autoencoder_, detector.second_autoencoder_
    # The first network alone (calibration), the pair, and the pair with the memory; the
    # second network alone (its calibration).
    assert len(first.scoring_passes) == 3
    assert len(second.scoring_passes) == 1
    passes = [*first.scoring_passes.values(), *second.scoring_passes.values()]
    assert all(p.experimental_get_tracing_count() == 1 for p in passes)
    assert detector.scorer_._pass in first.scoring_passes.values()
