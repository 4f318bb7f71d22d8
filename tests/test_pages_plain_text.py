"""Follow-ups of issues 13 and 14 on the dashboard: user-chosen names never run as Markdown
(widgets.plain), the Models page says which rows its metrics were measured on (a drift
fine-tune too), and the training notes on infinite and sentinel cells are shown (Data page
notes, Train page)."""

import re

import numpy as np
import pandas as pd
import pytest

import aecore
from aecore import store
from aecore.evaluation.metrics import evaluation_scope_text
from aecore.io import inference, reader
from aecore.workflows import retraining
from tests.pages_support import DEMO, ROOT, no_exception, open_app, wait_for, widget
from ui import cache, state
from ui.widgets import plain

HOSTILE = "[click](http://evil.invalid) ![x](http://evil.invalid/a.png) :red[alarm] *now*.csv"


def live_link(text: str) -> bool:
    """Whether Markdown ``text`` holds a link or image that would render (``](`` not escaped)."""
    return re.search(r"(?<!\\)\]\(", text) is not None


def rendered(at) -> list[str]:
    """Every Markdown body the page drew (markdown, captions, alerts, headers)."""
    groups = (at.markdown, at.caption, at.info, at.success, at.warning, at.error, at.subheader)
    return [element.value for group in groups for element in group]


def test_plain_escapes_markdown_and_leaves_ordinary_names_alone():
    escaped = plain(HOSTILE + "\n# heading")
    assert not live_link(escaped) and live_link(HOSTILE) and "\\[click\\]" in escaped
    assert "\\:red\\[alarm\\]" in escaped and "\\*now\\*" in escaped
    assert "\n" not in escaped
    assert plain("- item") == "\\- item" and plain("1. first") == "1\\. first"
    for ordinary in ("server_metrics_drift.csv", "Trained on 1,200 rows (normal) at 15:43 UTC."):
        assert plain(ordinary) == ordinary


def test_a_retrained_model_named_after_a_hostile_batch_shows_it_as_text(models_dir):
    """describe_training's sentence names the batch file; the Models page drew it as Markdown,
    so a file name could put a link or a remote image on everyone's Models page."""
    detector = aecore.load(DEMO, models_dir=models_dir)
    detector.retraining_ = {
        "mode": "fine_tune", "rows": 900, "left_out": 100, "window_rows": 1000,
        "rule": "labelled", "batch": HOSTILE, "from_model": DEMO,
    }  # fmt: skip
    detector.evaluation_ = {**detector.evaluation_, "scope": "batch"}
    store.save(detector, "hostile-batch", models_dir=models_dir)
    cache.clear_model_caches()
    try:
        at = open_app("models")
        at.selectbox(key="models_name").set_value("hostile-batch").run()
        no_exception(at)
        shown = [m for m in at.markdown if "How it was trained" in m.value]
        assert shown and plain(HOSTILE) in shown[0].value
        assert not any(live_link(text) for text in rendered(at)), rendered(at)
        # The metrics say which rows they were measured on.
        assert any(
            "Against the labels" in c.value and "the rows it was retrained on included" in c.value
            for c in at.caption
        ), [c.value for c in at.caption]
    finally:
        store.delete_model("hostile-batch", models_dir=models_dir)
        cache.clear_model_caches()


def test_the_models_page_says_its_metrics_were_measured_on_held_out_rows(models_dir):
    meta = store.read_meta(DEMO, models_dir=models_dir)
    at = open_app("models")
    at.selectbox(key="models_name").set_value(DEMO).run()
    no_exception(at)
    held = int(meta["evaluation"]["n_rows"])
    assert any(
        "Against the labels" in c.value
        and f"measured on {held:,} held-out rows the model never trained on" in c.value
        for c in at.caption
    ), [c.value for c in at.caption]


def test_a_drift_fine_tune_says_its_metrics_include_the_rows_it_trained_on(models_dir):
    """The fine-tune measured its metrics on every row of the batch, its own training rows
    among them, but called that scope "all rows" (read as: the whole training data)."""
    detector = aecore.load(DEMO, models_dir=models_dir)
    batch = reader.read_csv(ROOT / "sample_data" / "server_metrics_drift.csv")
    new = retraining.retrain(detector, batch, mode="fine_tune", epochs=1)
    assert new.evaluation_["n_rows"] == len(batch)
    assert "measured on the batch's" in evaluation_scope_text(new.evaluation_)
    assert "retrained on included" in evaluation_scope_text(new.evaluation_)


def test_an_upload_error_shows_the_file_name_as_text(models_dir):
    at = open_app("data")
    at.file_uploader(key="data_upload").set_value((HOSTILE, b"\x00\x01\x02binary", "text/csv"))
    at.run()
    no_exception(at)
    assert any("could not be loaded" in e.value for e in at.error)
    assert not any(live_link(text) for text in rendered(at)), rendered(at)


@pytest.fixture(scope="module")
def extreme_csv() -> bytes:
    """400 server-metrics rows with two infinite cells and a float sentinel (3.4e38)."""
    frame = pd.read_csv(ROOT / "sample_data" / "server_metrics.csv").iloc[:400].copy()
    frame.loc[5, "srv1_cpu_temp_c"] = np.inf
    frame.loc[7, "srv1_cpu_temp_c"] = -np.inf
    frame.loc[9, "srv1_power_w"] = 3.4e38
    return frame.to_csv(index=False).encode()


def test_the_data_notes_count_infinite_cells_and_sentinels(extreme_csv):
    frame = reader.read_csv(extreme_csv)
    notes = inference.role_notes(frame, inference.infer_roles(frame))
    assert "2 infinite value(s)" in notes["srv1_cpu_temp_c"]
    assert "1 far out of range value(s) (e.g. 3.4e+38)" in notes["srv1_power_w"]
    assert "imputed with the median in training" in notes["srv1_power_w"]
    assert "infinite" not in notes["srv1_inlet_temp_c"]  # an ordinary column says nothing
    mostly = frame.assign(srv1_inlet_temp_c=np.where(np.arange(len(frame)) % 3, np.inf, 20.0))
    assert "training refuses it" in inference.role_notes(mostly, inference.infer_roles(mostly))[
        "srv1_inlet_temp_c"
    ]


def test_the_train_page_shows_the_notes_on_infinite_and_sentinel_cells(models_dir, extreme_csv):
    at = open_app("data")
    at.file_uploader(key="data_upload").set_value(("extreme.csv", extreme_csv, "text/csv")).run()
    no_exception(at)
    at.switch_page("app_pages/train.py").run()
    widget(at.number_input, "Epochs (at most)").set_value(1)
    widget(at.number_input, "Batch size").set_value(512)
    widget(at.text_input, "Hidden layer widths").set_value("8")
    at.button(key="train_submit").click().run()
    job = wait_for(at, state.JOB)
    no_exception(at)
    notes = job.detector.preprocessor_.notes_
    assert len(notes) == 2
    shown = [i.value for i in at.info if "In the training data" in i.value]
    assert shown, [i.value for i in at.info]
    assert "srv1_cpu_temp_c" in shown[0] and "srv1_power_w" in shown[0]
    assert "2 infinite or far out of range value(s)" in shown[0]
