"""The Few-labels and Drift pages, driven headless with Streamlit's AppTest.

Like ``tests/test_pages.py``: a tiny demo model trained here (2 epochs) in a temporary models
folder (``AECORE_MODELS_DIR``), background work in the pages' real threads, the test rerunning
the page until it ends. Budgets and epochs are tiny so the file runs in well under a minute.
"""

import io
import time

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import aecore
from aecore import store
from aecore.errors import AecoreError
from aecore.io import reader
from tests.pages_support import APP, DEMO, ROOT, metric, no_exception, open_app, wait_for, widget
from ui import state


@pytest.fixture(scope="module")
def flows_slice() -> bytes:
    """Every sixth network flow (1,000 rows, about 45 attacks of four kinds) as CSV bytes."""
    frame = pd.read_csv(ROOT / "sample_data" / "network_flows.csv").iloc[::6]
    return frame.to_csv(index=False).encode()


def charts(at: AppTest) -> list:
    return at.get("plotly_chart")


# ---------------------------------------------------------------- few labels


def test_few_labels_renders_on_the_default_data(models_dir):
    at = open_app("few_labels")
    no_exception(at)
    assert not at.error
    assert metric(at, "Labelled rows") == "4,000" and metric(at, "Classes") == "2"
    assert metric(at, "Unlabelled rows") == "0"
    assert any("Every row is labelled" in e.label for e in at.expander)
    assert at.button(key="few_label_train").disabled


def test_few_labels_says_what_it_needs_without_data(models_dir):
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[state.DEFAULT_LOADED] = True  # a session with nothing loaded
    at.run()
    at.switch_page("app_pages/few_labels.py").run()
    no_exception(at)
    assert any("No data is loaded" in i.value for i in at.info)
    assert at.get("page_link")


def test_few_labels_refuses_a_column_that_is_not_a_label(models_dir):
    at = open_app("few_labels")
    at.selectbox(key="few_label_column").set_value("timestamp").run()
    no_exception(at)
    assert any("not a label" in w.value for w in at.warning)
    assert not at.get("plotly_chart")


def test_few_labels_compares_budgets_and_exports_predictions(models_dir, flows_slice):
    at = open_app("data")
    at.file_uploader(key="data_upload").set_value(("flows.csv", flows_slice, "text/csv")).run()
    at.switch_page("app_pages/few_labels.py").run()
    no_exception(at)
    assert metric(at, "Unlabelled rows") == "0"
    widget(at.number_input, "Labels to keep").set_value(300)
    at.button(key="FormSubmitter:few_label_practice-Hide the other labels").click().run()
    assert metric(at, "Labelled rows") == "300" and metric(at, "Unlabelled rows") == "700"

    at.multiselect(key="few_label_budgets").set_value([10, 50])
    at.number_input(key="few_label_pretrain_epochs").set_value(2)
    at.number_input(key="few_label_classifier_epochs").set_value(5)
    at.button(key="few_label_run").click().run()
    no_exception(at)
    wait_for(at, state.FEW_LABELS_TASK)
    no_exception(at)
    figure = charts(at)[0].proto.spec
    assert "F1 by the number of labelled rows used" in figure
    table = at.session_state[state.FEW_LABELS_COMPARISON]["table"]
    assert sorted(set(table["budget"])) == [10, 50] and len(table) == 6
    shown = at.dataframe[0].value
    assert {"F1", "PR-AUC"} <= set(shown.columns) or {"f1", "pr_auc"} <= set(shown.columns)
    assert any("Which approach won" in m.value for m in at.markdown)

    at.button(key="few_label_train").click().run()
    wait_for(at, state.FEW_LABELS_TASK)
    no_exception(at)
    result = at.session_state[state.FEW_LABELS_CLASSIFIER]
    exported = pd.read_csv(io.BytesIO(result["csv"]), encoding="utf-8-sig")
    assert len(exported) == 700 and exported["label"].isna().all()
    # Rows are numbered as the export numbers them (header = row 1), the id column beside.
    assert list(exported.columns[:2]) == ["source_row", "flow_id"]
    source = pd.read_csv(io.BytesIO(flows_slice))
    back = source.iloc[exported["source_row"].to_numpy() - 2]
    assert back["flow_id"].tolist() == exported["flow_id"].tolist()
    assert (back["src_bytes"].to_numpy() == exported["src_bytes"].to_numpy()).all()
    probabilities = [c for c in exported.columns if c.startswith("p_") and c != "p_anomaly"]
    assert len(probabilities) == len(result["classifier"].classes_) >= 2
    assert (exported[probabilities].sum(axis=1) - 1).abs().max() < 1e-4
    assert at.get("download_button"), "the predictions are offered for download"

    widget(at.text_input, "Name").set_value("flows-classifier")
    at.button(key="FormSubmitter:few_label_save-Save").click().run()
    no_exception(at)
    meta = store.read_meta("flows-classifier", models_dir=models_dir)
    assert meta["kind"] == "classifier"


# ---------------------------------------------------------------- drift


def test_drift_renders_on_the_default_data_and_the_drift_sample_has_drifted(models_dir):
    at = open_app("drift")
    no_exception(at)
    report = at.session_state[state.DRIFT_REPORT][1]
    assert report.verdict in ("drifting", "drifted")
    assert any(report.verdict in h.value for h in at.header), "the verdict is shown prominently"
    assert any(report.evidence[0] in m.value for m in at.markdown)
    assert len(charts(at)) >= 1


def test_drift_on_the_current_data_is_stable(models_dir):
    at = open_app("drift")
    at.radio(key="drift_source").set_value("data").run()
    no_exception(at)
    report = at.session_state[state.DRIFT_REPORT][1]
    assert report.n_rows == 4000
    assert report.verdict == "stable", report.evidence


def test_drift_bad_upload_shows_the_message_and_keeps_the_batch(models_dir):
    at = open_app("drift")
    at.radio(key="drift_source").set_value("upload").run()
    assert any("Upload a CSV" in i.value for i in at.info)
    good = (ROOT / "sample_data" / "server_metrics_drift.csv").read_bytes()
    at.file_uploader(key="drift_upload").set_value(("later.csv", good, "text/csv")).run()
    no_exception(at)
    assert at.session_state[state.DRIFT_BATCH]["name"] == "later.csv"

    bad = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR binary"
    with pytest.raises(AecoreError) as expected:
        reader.read_csv(bad)
    at.file_uploader(key="drift_upload").set_value(("bad.csv", bad, "text/csv")).run()
    no_exception(at)
    assert any(str(expected.value) in e.value for e in at.error)
    assert at.session_state[state.DRIFT_BATCH]["name"] == "later.csv"
    assert at.session_state[state.DATA_NAME] == "server_metrics.csv", "the session's data stays"

    other = b"x,y\n" + b"".join(f"{i},{i % 7}\n".encode() for i in range(60))
    at.file_uploader(key="drift_upload").set_value(("other.csv", other, "text/csv")).run()
    no_exception(at)
    assert any("cannot be checked" in e.value and "srv1_cpu_temp_c" in e.value for e in at.error)


def test_drift_without_any_model_says_what_to_do(tmp_path):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AECORE_MODELS_DIR", str(tmp_path))
        at = open_app("drift")
        no_exception(at)
        assert any("No model yet" in i.value for i in at.info)
        assert at.get("page_link")


def test_retraining_saves_a_new_version_and_keeps_the_old_one(models_dir):
    before = store.list_versions(DEMO, models_dir=models_dir)
    cached = aecore.load(DEMO, models_dir=models_dir)
    at = open_app("drift")
    old_report = at.session_state[state.DRIFT_REPORT][1]
    at.radio(key="drift_mode").set_value("scratch")
    at.number_input(key="drift_epochs").set_value(2)
    at.button(key="drift_retrain_submit").click().run()
    no_exception(at)
    wait_for(at, state.DRIFT_TASK)
    no_exception(at)

    versions = store.list_versions(DEMO, models_dir=models_dir)
    assert len(versions) == len(before) + 1
    assert before[0]["version"] in [v["version"] for v in versions[1:]], "the old one is kept"
    ref = at.session_state[state.MODEL_REF]
    assert ref["version"] == versions[0]["version"], "the retrained version is now current"
    assert any("Saved as" in s.value for s in at.success)
    new_report = at.session_state[state.DRIFT_REPORT][1]
    assert new_report.alarm_share < old_report.alarm_share
    old = aecore.load(DEMO, models_dir=models_dir, version=before[0]["version"])
    assert old.threshold_ == cached.threshold_, "the saved old version is unchanged"

    at.switch_page("app_pages/models.py").run()
    no_exception(at)
    versions_shown = at.selectbox(key=f"version_{DEMO}").options
    assert len(versions_shown) == len(versions)


def test_cancel_ends_a_background_task_at_its_next_step():
    from ui import background

    started = []

    def work(task):
        while True:  # a long run of steps, as compare_label_budgets reports them
            task.say("step")
            started.append(1)
            time.sleep(0.01)

    task = background.start("compare", "Endless", work)
    while len(started) < 3:
        time.sleep(0.01)
    task.cancel()
    assert task.wait(10)
    assert task.status == "cancelled" and task.result is None
