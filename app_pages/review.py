"""Review: step through flagged rows, mark each as a confirmed anomaly, a false alarm or unsure,
and let the marks set the threshold, retrain the model and travel with the exports."""

import numpy as np
import pandas as pd
import streamlit as st

from aecore.errors import AecoreError
from aecore.evaluation.explain import row_detail
from aecore.viz import charts
from aecore.workflows.export import SOURCE_ROW, id_columns
from aecore.workflows.feedback import FEEDBACK_WEIGHT, suggest_rows
from aecore.workflows.review import STATUS_TEXT
from ui import background, session, state, widgets

SUGGESTIONS = 20
QUEUE_LIMIT = 2_000
ORDERS = {
    "highest": "Highest error first",
    "suggested": "Suggested: what would teach the model most",
}
BUTTONS = (  # status, label, shortcut, icon
    ("anomaly", "Confirmed anomaly", "A", ":material/report:"),
    ("normal", "False alarm", "N", ":material/check_circle:"),
    ("unsure", "Unsure", "U", ":material/help:"),
)

scored, model = widgets.scored_page("Review flagged rows")
threshold = session.threshold()
data_key = state.get(state.DATA_KEY)
try:
    book = session.reviews().reload()
except AecoreError as error:
    st.error(str(error))
    st.stop()
ids = id_columns(scored.frame.columns, model.detector.roles_, state.get(state.ROLES))
flagged = scored.ranked_flagged(threshold)
statuses = book.statuses()
counts = book.counts()

# ---------------------------------------------------------------- progress
reviewed_flagged = int((statuses[flagged] != "").sum()) if len(flagged) else 0
tiles = st.columns([1.25, 1, 1, 0.75])  # room for "Flagged rows reviewed" at 1024 px
tiles[0].metric("Flagged rows reviewed", f"{reviewed_flagged:,} of {len(flagged):,}")
tiles[1].metric("Confirmed anomalies", f"{counts['anomaly']:,}")
tiles[2].metric("False alarms", f"{counts['normal']:,}")
tiles[3].metric("Unsure", f"{counts['unsure']:,}")
if len(flagged):
    st.progress(reviewed_flagged / len(flagged))
saved_where = (
    "Marks are kept for this session only: the models folder is read-only."
    if not book.persist
    else "Marks are saved at once in the models folder, for this data set (files with these "
    "columns), so they come back after a restart or a new upload of the file, and every model "
    "of this data sees them."
)
other = f" {book.unmatched:,} more marks of this data set belong to rows not in this file." \
    if book.unmatched else ""  # fmt: skip
st.caption(
    f"Model **{widgets.plain(model.label)}** on **{widgets.data_caption()}**, threshold "
    f"{threshold:.4g}. {saved_where}{other} Keys: **A** confirmed anomaly, **N** false alarm, "
    "**U** unsure, **J** / **K** next / previous row (click the page first; typing in the note "
    "box does not trigger them)."
)

# ---------------------------------------------------------------- which rows, in what order
order = st.radio("Order", list(ORDERS), format_func=ORDERS.get, horizontal=True,
                 key="review_order")  # fmt: skip
middle, right = st.columns([3, 2], gap="medium", vertical_alignment="center")
hide_done = middle.toggle("Hide rows already reviewed", value=True, key="review_hide_done")
suggestion_key = (model.key, data_key, float(threshold))


def new_suggestions() -> None:
    state.put(state.REVIEW_SUGGESTIONS, None)


reasons: dict[int, str] = {}
if order == "suggested":
    right.button("Suggest again", icon=":material/refresh:", key="review_resuggest",
                 on_click=new_suggestions,
                 help="A new batch that takes the marks made since into account.")  # fmt: skip
    cached = state.get(state.REVIEW_SUGGESTIONS)
    if cached is None or cached[0] != suggestion_key:
        frame = scored.frame
        detector = model.detector
        with st.spinner("Choosing the rows to review next…"):
            suggestions = suggest_rows(
                scored.errors, threshold,
                lambda rows: detector.transform_inputs(frame.iloc[rows]),
                reviewed=book.positions(), n=SUGGESTIONS,
            )  # fmt: skip
        state.put(state.REVIEW_SUGGESTIONS, (suggestion_key, suggestions))
    else:
        suggestions = cached[1]
    queue = suggestions.positions
    reasons = dict(zip(suggestions.positions.tolist(), suggestions.reasons, strict=True))
    st.caption(
        "Suggestions straddle the threshold, where the model is least sure, and each is unlike "
        "the rows reviewed or suggested before it, so every verdict teaches something new. "
        "Unflagged rows among them are possible missed anomalies."
    )
else:
    queue = flagged[:QUEUE_LIMIT]
if hide_done:
    queue = np.asarray([p for p in queue if statuses[p] == ""], dtype=np.int64)
queue = np.asarray(queue, dtype=np.int64)

if len(queue) == 0:
    if len(flagged) == 0 and order == "highest":
        st.info(f"No row has an error above the threshold ({threshold:.4g}): nothing to review.")
        st.page_link(session.THRESHOLD_PAGE, label="Lower the threshold", icon=":material/tune:")
    else:
        st.success("Every row in this list is reviewed.")
        if order == "suggested":
            st.caption("Press *Suggest again* for a new batch.")
current = None
if len(queue):
    cursor = state.get(state.REVIEW_CURSOR)
    here = cursor[1] if cursor is not None and cursor[0] == data_key else None
    index = int(np.flatnonzero(queue == here)[0]) if here is not None and here in queue else 0
    current = int(queue[index])
    state.put(state.REVIEW_CURSOR, (data_key, current))
    after = int(queue[index + 1]) if index + 1 < len(queue) else None
    before = int(queue[index - 1]) if index > 0 else None


def go(position) -> None:
    if position is not None:
        state.put(state.REVIEW_CURSOR, (data_key, int(position)))


def record(position: int, status: str | None, next_position) -> None:
    """Save the verdict (with the note typed), then show the next row."""
    note = st.session_state.get(f"review_note_{position}", "")
    try:
        if status is None:
            book.clear(position)
        else:
            book.mark(position, status, note)
    except AecoreError as error:
        state.put(state.NOTICE, ("warning", str(error)))
        return
    if status is not None:
        go(next_position)


# ---------------------------------------------------------------- the row
if current is not None:
    st.subheader(f"{scored.row_name(current, ids)}")
    mark = book.get(current)
    rank = scored.count_above(float(scored.errors[current])) + 1
    where = "flagged" if scored.errors[current] > threshold else "not flagged"
    line = (
        f"Error **{scored.errors[current]:.4g}** ({scored.errors[current] / threshold:.2g}x the "
        f"threshold, {where}); rank {rank:,} of {scored.n_rows:,}. Row {index + 1} of "
        f"{len(queue):,} in this list."
    )
    if current in reasons:
        line += f" Suggested because: {reasons[current]}."
    st.markdown(line)
    if mark is not None:
        said = f": {widgets.plain(mark.note)}" if mark.note else ""
        st.info(f"Marked **{STATUS_TEXT[mark.status]}**{said} ({mark.updated}).",
                icon=":material/bookmark:")  # fmt: skip
    note_key = f"review_note_{current}"
    if note_key not in st.session_state:
        st.session_state[note_key] = mark.note if mark is not None else ""
    st.text_input("Note (optional, saved with the verdict)", key=note_key, max_chars=500,
                  placeholder="e.g. known backup job; ticket INC-1234")  # fmt: skip
    # Streamlit shows each button's shortcut key on it; the row wraps rather than cut a label.
    buttons = st.container(horizontal=True, gap="small")
    for status, label, key, icon in BUTTONS:
        buttons.button(
            label, key=f"review_mark_{status}", icon=icon, shortcut=key,
            type="primary" if status == "anomaly" else "secondary",
            on_click=record, args=(current, status, after),
        )  # fmt: skip
    buttons.button("Clear", key="review_clear", on_click=record, args=(current, None, None),
                   disabled=mark is None)  # fmt: skip
    buttons.button("Previous", key="review_previous", shortcut="K", on_click=go,
                   icon=":material/arrow_upward:", args=(before,),
                   disabled=before is None)  # fmt: skip
    buttons.button("Next", key="review_next", shortcut="J", on_click=go, args=(after,),
                   icon=":material/arrow_downward:", disabled=after is None)  # fmt: skip
    try:
        detail = row_detail(model.detector, scored.frame, current)
    except AecoreError as error:
        st.error(str(error))
        st.stop()
    chart_column, table_column = st.columns(2, gap="medium")
    with chart_column:
        st.plotly_chart(
            charts.feature_bars(detail["error"], title="Per-feature error",
                                max_bars=12),
            key="review_bars",
        )  # fmt: skip
    with table_column:
        top = detail.head(8)
        shown = pd.DataFrame({
            "feature": top.index.astype(str),
            "share": top["share of row error"].to_numpy() * 100,
            "value": [str(v) for v in top["input"]],
            "expected": [f"{v:.4g}" if isinstance(v, (int, float, np.number)) else str(v)
                         for v in top["reconstruction"]],
        })  # fmt: skip
        st.dataframe(shown, hide_index=True, width="stretch", column_config={
            "share": st.column_config.NumberColumn("share", format="%.0f%%"),
            "expected": st.column_config.TextColumn("rebuilt as", help="The model's "
                                                    "reconstruction, in the file's units."),
        })  # fmt: skip
        st.caption("The features carrying most of the row's error: their share of it, the "
                   "row's value and what the model rebuilt (Explain shows every feature).")
# ---------------------------------------------------------------- the marks so far
st.subheader("Reviewed rows")
marked = book.positions()
if len(marked) == 0:
    st.caption("No row of this data is reviewed yet.")
else:
    table = scored.rows_table(marked, threshold, k=2, ids=ids)
    table.insert(1, "review", [STATUS_TEXT[s] for s in statuses[marked]])
    table.insert(2, "note", book.notes()[marked])
    table = table.iloc[np.argsort(-scored.errors[marked], kind="stable")]
    st.dataframe(table, hide_index=True, height=min(360, 38 + 35 * len(table)),
                 column_config={SOURCE_ROW: st.column_config.NumberColumn(
                     SOURCE_ROW, format="%d", pinned=True),
                     "note": st.column_config.TextColumn("note", width="medium")})  # fmt: skip
stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in
               state.get(state.DATA_NAME).rsplit(".", 1)[0]) or "data"  # fmt: skip
move = st.columns([1, 1.3], gap="medium")  # the download label whole at 1024 px
move[0].download_button(
    "Download the marks (CSV)", data=book.to_csv(), file_name=f"{stem}-reviews.csv",
    mime="text/csv", icon=":material/download:", key="review_download",
    disabled=len(marked) == 0, on_click="ignore",
)  # fmt: skip
upload = move[1].file_uploader(
    "Import marks (CSV with row, status, note)", type=["csv"], key="review_import",
    help="row = the row's number in the data file (header = row 1), as in every export's "
    "source_row; status = anomaly, normal (false alarm) or unsure.",
)  # fmt: skip
if upload is not None:
    seen = st.session_state.get("review_import_seen")
    if seen != upload.file_id:
        st.session_state["review_import_seen"] = upload.file_id
        try:
            result = book.import_csv(upload.getvalue())
        except AecoreError as error:
            state.put(state.NOTICE, ("warning", f"{upload.name}: {error}"))
        else:
            skipped = result["skipped"]
            text = f"{result['imported']:,} marks imported from {upload.name}."
            if skipped:
                text += f" {len(skipped):,} rows skipped (first: row {skipped[0][0]}, " \
                    f"{skipped[0][1]})."  # fmt: skip
            state.put(state.NOTICE, ("success", text))
        st.rerun()

# ---------------------------------------------------------------- what the marks change
st.subheader("Use the marks")
st.markdown(
    "- **Threshold:** the Threshold page can set it from the reviewed rows (best F1 or lowest "
    "cost on them).\n"
    "- **Few labels:** choose *Review marks* as the label column there.\n"
    "- **Export and report:** every export and the HTML report carry each row's review status "
    "and note."
)
st.page_link(session.THRESHOLD_PAGE, label="Set the threshold from the reviews",
             icon=":material/tune:")  # fmt: skip
labels = book.labels()
task = state.get(state.REVIEW_TASK)


@st.fragment(run_every=background.POLL_SECONDS)
def live_panel() -> None:
    """Epoch progress of the retraining, and Cancel."""
    widgets.task_panel(state.get(state.REVIEW_TASK), cancel_label="Cancel retraining",
                       cancel_key="review_cancel",
                       stopping="Stopping after the current batch.")  # fmt: skip


st.markdown("**Retrain with the reviews**")
st.caption(
    "Training goes on without the rows you confirmed as anomalies (and the unreviewed rows "
    "close to one of them, nearer than to any false alarm), with your false alarms counted "
    f"{FEEDBACK_WEIGHT} times, so that the model learns they are normal. A third of the "
    "reviewed rows is held out, when there are enough, to measure the change. The current "
    "model is not changed: you choose whether to use the new one."
)
RETRAIN_MODES = {
    "fine_tune": "Fine-tune the current model (measured best)",
    "scratch": "Train a new model from scratch",
}
retrain_mode = st.radio("How", list(RETRAIN_MODES), format_func=RETRAIN_MODES.get,
                        horizontal=True, key="review_retrain_mode",
                        help="Fine-tuning continues the current networks at a tenth of their "
                        "learning rate: on the network-flow sample it gained far more than "
                        "training from scratch (bench/RESULTS.md).")  # fmt: skip
if task is not None and task.running:
    live_panel()
    st.stop()
if task is not None and task.collect():
    if task.status == "done":
        result = task.result
        state.put(state.REVIEW_FEEDBACK, ((model.key, data_key), {
            "result": result, "model_name": task.params["model_name"]}))  # fmt: skip
        st.rerun()
if task is not None and task.status == "failed":
    st.error(task.error)
elif task is not None and task.status == "cancelled":
    st.warning("Retraining was cancelled; the current model is unchanged.")
enough = counts["anomaly"] + counts["normal"] > 0
if st.button("Retrain with the reviews", icon=":material/autorenew:", key="review_retrain",
             disabled=not enough,
             help=None if enough else "Mark at least one row as a confirmed anomaly or a "
             "false alarm first."):  # fmt: skip
    work = background.feedback_work(model.detector, scored.frame, labels, mode=retrain_mode)
    state.put(state.REVIEW_TASK, background.start(
        "feedback", f"Retraining {model.name} with the reviews", work,
        params={"model_name": model.name}))  # fmt: skip
    st.rerun()

done = state.get(state.REVIEW_FEEDBACK)
if done is not None and done[0][1] == data_key:
    result, name = done[1]["result"], done[1]["model_name"]
    st.success(widgets.plain(result.sentence()))
    if result.warning():
        st.warning(widgets.plain(result.warning()), icon=":material/warning:")
    held = result.held_out
    if held.get("rows"):
        metric = st.columns(2)
        for column, key, text in zip(metric, ("pr_auc", "roc_auc"), ("PR-AUC", "ROC-AUC"),
                                     strict=True):  # fmt: skip
            column.metric(
                f"{text} on {held['rows']} held-out reviewed rows",
                f"{held['after'][key]:.3f}",
                f"{held['after'][key] - held['before'][key]:+.3f} against {name}",
            )
        st.caption(
            f"{held['anomalies']} of the held-out rows are confirmed anomalies. They trained as "
            "unreviewed rows, so this is how the retrained model does on verdicts it did not "
            "see; with this few rows, read it as a direction, not a figure."
        )
    else:
        st.caption(widgets.plain(held.get("reason", "")))
    st.plotly_chart(charts.review_ranks(result.table), key="review_ranks_chart")
    st.caption("Each reviewed row's rank (1 = highest error) under the current model and the "
               "retrained one: confirmed anomalies should move up, false alarms down.")  # fmt: skip
    if st.button("Use the retrained model", type="primary", icon=":material/check:",
                 key="review_use_retrained"):  # fmt: skip
        session.add_session_model(result.detector, f"{name}-reviewed"[:64], data_key,
                                  state.get(state.DATA_NAME))  # fmt: skip
        state.put(state.REVIEW_FEEDBACK, None)
        state.put(state.NOTICE, ("success", f"{name}-reviewed is now the current model (trained "
                                 "in this session; save it on the Train page)."))  # fmt: skip
        st.rerun()
