"""The Review page, driven with Streamlit's AppTest on the embedded default data and the tiny
demo model of ``tests/conftest.py``: marks saved and restored in a new session, the threshold
set from them, retraining with them, and the exports and Few-labels page using them."""

from tests.pages_support import metric, no_exception, open_app, wait_for
from ui import state


def current_row(at) -> int:
    return at.session_state[state.REVIEW_CURSOR][1]


def test_review_marks_last_across_sessions_and_move_the_cursor(models_dir):
    at = open_app("review")
    no_exception(at)
    first = current_row(at)
    scored = at.session_state[state.SCORED][1]
    assert first == int(scored.ranked_flagged(at.session_state[state.THRESHOLD])[0])
    at.text_input(key=f"review_note_{first}").set_value("disk full on db-2").run()
    at.button(key="review_mark_anomaly").click().run()
    no_exception(at)
    second = current_row(at)
    assert second != first  # the next flagged row is shown
    at.button(key="review_mark_normal").click().run()
    assert metric(at, "Confirmed anomalies") == "1" and metric(at, "False alarms") == "1"
    assert (models_dir / ".reviews").is_dir()

    again = open_app("review")  # a new browser session: the marks come back from disk
    no_exception(again)
    assert metric(again, "Confirmed anomalies") == "1"
    table = next(d.value for d in again.dataframe if "review" in d.value.columns)
    by_row = table.set_index("source_row")
    assert by_row.loc[first + 2, "review"] == "confirmed anomaly"
    assert by_row.loc[first + 2, "note"] == "disk full on db-2"
    assert by_row.loc[second + 2, "review"] == "normal (false alarm)"

    # Suggested order: a batch that is not just the top of the ranking.
    again.radio(key="review_order").set_value("suggested").run()
    no_exception(again)
    suggestions = again.session_state[state.REVIEW_SUGGESTIONS][1]
    top = set(scored.ranked_flagged(0.0, 20).tolist())
    assert len(suggestions) == 20 and set(suggestions.positions.tolist()) != top
    assert first not in suggestions.positions and second not in suggestions.positions

    # The threshold from the two marks, with a warning that two rows are few.
    again.switch_page("app_pages/threshold.py").run()
    no_exception(again)
    again.button(key="set_review_f1").click().run()
    no_exception(again)
    errors = scored.errors
    threshold = again.session_state[state.THRESHOLD]
    assert errors[second] <= threshold < errors[first]
    assert any("Only 2 reviewed rows" in w.value for w in again.warning)

    # The export carries the marks.
    again.switch_page("app_pages/export.py").run()
    no_exception(again)
    preview = next(d.value for d in again.dataframe if "review_status" in d.value.columns)
    assert "anomaly" in set(preview["review_status"])
    # So does the HTML report, built on demand.
    again.button(key="build_report").click().run()
    no_exception(again)
    html = again.session_state[state.REPORT][1].decode()
    assert "disk full on db-2" in html and "server-metrics-demo" in html
    assert any(b.proto.label.startswith("Download the report")
               for b in again.get("download_button"))  # fmt: skip


def test_review_retraining_with_the_marks_shows_what_changed(models_dir):
    at = open_app("review")
    scored = at.session_state[state.SCORED][1]
    flagged = scored.ranked_flagged(at.session_state[state.THRESHOLD])
    confirmed = int(metric(at, "Confirmed anomalies"))  # marks other tests left, if any
    for _ in range(4):
        at.button(key="review_mark_anomaly").click().run()
    for _ in range(4):
        at.button(key="review_mark_normal").click().run()
    no_exception(at)
    assert int(metric(at, "Confirmed anomalies")) == confirmed + 4
    at.button(key="review_retrain").click().run()
    wait_for(at, state.REVIEW_TASK)
    no_exception(at)
    assert any(s.value.startswith("Fine-tuned without") for s in at.success)
    assert any(c.proto.id and "review_ranks_chart" in c.proto.id for c in at.get("plotly_chart"))
    before = at.session_state[state.MODEL_REF]
    at.button(key="review_use_retrained").click().run()
    no_exception(at)
    assert at.session_state[state.MODEL_REF] != before
    assert at.session_state[state.MODEL_REF]["kind"] == "session"
    # The marks belong to the data, not the model.
    assert int(metric(at, "Confirmed anomalies")) == confirmed + 4
    assert len(flagged)


def test_review_marks_are_labels_on_the_few_labels_page(models_dir):
    at = open_app("review")
    at.button(key="review_mark_anomaly").click().run()
    at.button(key="review_mark_normal").click().run()
    at.button(key="review_mark_unsure").click().run()
    book = at.session_state[state.REVIEWS][1]
    expected = book.counts()["anomaly"] + book.counts()["normal"]  # unsure rows are unlabelled
    at.switch_page("app_pages/few_labels.py").run()
    at.selectbox(key="few_label_column").set_value("Your review marks (Review page)").run()
    no_exception(at)
    assert any("Labels from your review marks" in c.value for c in at.caption)
    assert int(metric(at, "Labelled rows").replace(",", "")) == expected >= 2
