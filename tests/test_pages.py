"""Every dashboard page, driven headless with Streamlit's AppTest on the embedded default data.

The demo model is replaced by a tiny one trained here (2 epochs) and saved to a temporary
models folder (``AECORE_MODELS_DIR``), so the tests neither need nor touch ``models/``.
Training runs in the page's real background thread; the test reruns the page until it ends.
"""

import os

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from aecore import store
from aecore.errors import AecoreError
from aecore.io import reader
from tests.pages_support import DEMO, ROOT, metric, no_exception, open_app, wait_for, widget
from ui import cache, state

PAGES = ["data", "train", "threshold", "latent", "explain", "export", "models"]


def scored(at: AppTest):
    return at.session_state[state.SCORED][1]


def test_a_new_session_opens_with_the_sample_scored_by_the_demo_model(models_dir):
    at = open_app()
    no_exception(at)
    assert any(m.value.endswith(f"#### {DEMO}") for m in at.markdown)  # its name, in full
    assert metric(at, "Rows in the data") == "4,000"
    flagged = int(metric(at, "Flagged rows").replace(",", ""))
    result = scored(at)
    assert flagged == int((result.errors > at.session_state[state.THRESHOLD]).sum()) > 0


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_the_default_data(models_dir, page):
    at = open_app(page)
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    assert at.title, "every page has a title"
    charts = at.get("plotly_chart")
    expected = {"threshold": 4, "latent": 2, "explain": 3}.get(page, 0)
    assert len(charts) >= expected


def test_moving_the_threshold_changes_the_count_and_never_scores_again(models_dir):
    at = open_app("threshold")
    calls = cache.SCORING_CALLS
    before = int(metric(at, "Flagged rows").replace(",", ""))
    slider = at.select_slider(key=state.THRESHOLD_SLIDER)
    low = float(slider.options[len(slider.options) // 4])
    slider.set_value(low).run()
    no_exception(at)
    after = int(metric(at, "Flagged rows").replace(",", ""))
    threshold = at.session_state[state.THRESHOLD]
    assert f"{threshold:.4g}" == f"{low:.4g}"
    assert after == int((scored(at).errors > threshold).sum())
    assert after != before
    assert cache.SCORING_CALLS == calls, "a slider move must not score the rows again"


def test_method_buttons_set_the_threshold(models_dir):
    at = open_app("threshold")
    calls = cache.SCORING_CALLS
    widget(at.number_input, "Percentile").set_value(90.0)
    at.button(key="set_percentile").click().run()
    errors = scored(at).errors
    assert at.session_state[state.THRESHOLD] == pytest.approx(np.percentile(errors, 90.0))
    at.button(key="set_best_f1").click().run()
    result = scored(at)
    best = result.sweep().best_f1().value
    assert at.session_state[state.THRESHOLD] == best
    assert metric(at, "F1") == f"{result.sweep().at(best)['f1']:.3f}"
    assert cache.SCORING_CALLS == calls
    no_exception(at)


def test_training_without_the_prototypes_when_the_analyst_unticks_them(models_dir):
    at = open_app("train")
    widget(at.number_input, "Epochs (at most)").set_value(2)
    widget(at.number_input, "Batch size").set_value(512)
    widget(at.checkbox, "Compare with normal prototypes").uncheck()
    at.button(key="train_submit").click().run()
    no_exception(at)
    job = wait_for(at, state.JOB)
    assert job.detector.memory_summary() is None
    assert "memory" not in (job.detector.score_calibration_ or {})


def test_a_short_training_run_completes_and_its_model_is_used_and_saved(models_dir):
    at = open_app("train")
    widget(at.number_input, "Epochs (at most)").set_value(2)
    widget(at.number_input, "Batch size").set_value(512)
    widget(at.number_input, "Code size (0 = automatic)").set_value(2)
    widget(at.text_input, "Hidden layer widths").set_value("8")
    at.button(key="train_submit").click().run()
    no_exception(at)
    job = wait_for(at, state.JOB)
    no_exception(at)
    assert len(job.progress) == 2 and job.progress[-1].epochs == 2
    assert any("Trained in" in s.value for s in at.success)
    ref = at.session_state[state.MODEL_REF]
    assert ref["kind"] == "session"
    assert job.detector.code_size_ == 2
    assert any("normal prototypes" in c.value for c in at.caption)  # the memory, said
    held_out = len(job.detector.split_.held_out)  # the sample has labels: 20 % held out
    assert any(
        f"measured on {held_out:,} held-out rows the model never trained on" in c.value
        for c in at.caption
    )

    at.switch_page("app_pages/threshold.py").run()  # the new model scores the data
    no_exception(at)
    assert "trained in this session" in at.caption[0].value

    at.switch_page("app_pages/train.py").run()
    widget(at.text_input, "Name").set_value("pytest-small")
    at.button(key="FormSubmitter:save_model-Save").click().run()
    no_exception(at)
    assert "pytest-small" in set(store.list_models(models_dir)["name"])
    at.switch_page("app_pages/models.py").run()
    assert "pytest-small" in set(at.dataframe[0].value["name"])


def test_a_bad_upload_shows_the_message_and_keeps_the_previous_data(models_dir):
    at = open_app("data")
    bad = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR binary"
    with pytest.raises(AecoreError) as expected:
        reader.read_csv(bad)
    at.file_uploader(key="data_upload").set_value(("bad.csv", bad, "text/csv")).run()
    no_exception(at)
    assert any(str(expected.value) in e.value for e in at.error)
    assert at.session_state[state.DATA_NAME] == "server_metrics.csv"
    assert len(at.session_state[state.DATA_FRAME]) == 4000

    good = b"a,b,c\n" + b"".join(f"{i},{i % 7},{i % 3}\n".encode() for i in range(60))
    at.file_uploader(key="data_upload").set_value(("good.csv", good, "text/csv")).run()
    no_exception(at)
    assert at.session_state[state.DATA_NAME] == "good.csv"
    assert not at.error

    at.switch_page("app_pages/threshold.py").run()  # the demo model cannot score these columns
    no_exception(at)
    assert any("cannot score" in e.value for e in at.error)
    assert at.get("page_link"), "the message links to the page that fixes it"


def test_models_page_explains_a_column_mismatch_and_keeps_the_data(models_dir):
    at = open_app("models")
    other = b"x,y\n1,2\n3,4\n"
    at.file_uploader(key="models_upload").set_value(("other.csv", other, "text/csv")).run()
    no_exception(at)
    assert any("cannot be scored" in e.value and "srv1_cpu_temp_c" in e.value for e in at.error)
    assert at.session_state[state.DATA_NAME] == "server_metrics.csv"


def test_models_page_scores_a_new_csv_with_the_chosen_model(models_dir):
    at = open_app("models")
    payload = (ROOT / "sample_data" / "server_metrics_drift.csv").read_bytes()
    at.file_uploader(key="models_upload").set_value(("drift.csv", payload, "text/csv")).run()
    no_exception(at)
    assert at.session_state[state.DATA_NAME] == "drift.csv"
    assert any("is now the current data" in s.value for s in at.success)


def test_deleting_a_model_needs_confirmation(models_dir):
    at = open_app("models")
    at.selectbox(key="models_name").set_value("spare-model").run()
    delete = at.button(key="delete_model")
    assert delete.disabled
    at.checkbox(key="confirm_delete").check().run()
    at.button(key="delete_model").click().run()
    no_exception(at)
    assert "spare-model" not in set(store.list_models(models_dir)["name"])
    assert DEMO in set(store.list_models(models_dir)["name"])


def test_without_any_model_every_page_says_what_to_do(tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AECORE_MODELS_DIR", str(tmp_path))
        at = open_app()
        no_exception(at)
        assert any("No model yet" in i.value for i in at.info)
        assert any("build_demo.py" in i.value for i in at.info)
        for page in ("threshold", "latent", "explain", "export"):
            at.switch_page(f"app_pages/{page}.py").run()
            no_exception(at)
            assert any("No model yet" in i.value for i in at.info), page
            assert at.get("page_link")
        at.switch_page("app_pages/models.py").run()
        assert any("No saved model" in i.value for i in at.info)
    assert os.environ.get("AECORE_MODELS_DIR") != str(tmp_path)


def test_a_threshold_that_misses_most_labelled_anomalies_points_to_the_label_methods(models_dir):
    at = open_app("threshold")
    errors = scored(at).errors
    at.number_input(key=state.THRESHOLD_INPUT).set_value(float(errors.max())).run()
    no_exception(at)
    warned = [w.value for w in at.warning if "labelled anomalies" in w.value]
    assert len(warned) == 1 and "recall 0.00" in warned[0]
    assert "Best F1" in warned[0] and "Minimum cost" in warned[0]
    at.number_input(key=state.THRESHOLD_INPUT).set_value(float(errors.min()) / 2).run()
    assert not [w.value for w in at.warning if "labelled anomalies" in w.value]


def test_the_latent_page_never_shows_a_bare_none(models_dir):
    """Issue 13 #8: the comparison table showed a literal "None" for the autoencoder's
    explained variance; now it is the autoencoder's own share, and "n/a" where none applies."""
    at = open_app("latent")
    no_exception(at)
    (table,) = [d.value for d in at.dataframe if "pca" in d.value.columns]
    cells = table.astype(str).to_numpy().ravel().tolist()
    assert not [c for c in cells if c in ("None", "nan", "NaN", "<NA>")], table
    explained = table.loc[[i for i in table.index if i.startswith("Explained variance")][0]]
    assert 0 < float(explained["autoencoder"]) <= 1 and 0 < float(explained["pca"]) <= 1
    texts = [e.value for e in (*at.markdown, *at.caption, *at.info)]
    assert not [t for t in texts if "None" in t]
