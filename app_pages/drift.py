"""Drift: has normal behaviour changed since the model was trained? Check a new batch against
the errors kept at training time, and retrain with one action when it has."""

import pandas as pd
import streamlit as st

from aecore.datasets import SAMPLES
from aecore.errors import AecoreError
from aecore.viz import charts
from aecore.workflows.retraining import RETRAIN_MODES, describe_training
from ui import background, cache, session, state, widgets

CURRENT = "current"
BATCH_SOURCES = {
    "sample": f"Sample: {SAMPLES[session.DRIFT_SAMPLE].filename} (the rack after a new workload)",
    "upload": "Upload a CSV",
    "data": "The current data",
}
VERDICT_STYLE = {
    "stable": ("green", ":material/check_circle:", st.success),
    "drifting": ("orange", ":material/warning:", st.warning),
    "drifted": ("red", ":material/error:", st.error),
}
MODE_TEXT = {
    "scratch": "From scratch, on the normal rows of a recent window of the new batch (same "
    "settings and columns)",
    "fine_tune": "Fine-tune the model on the new batch's normal rows (low learning rate)",
}



def fmt_or_na(value: float, spec: str, suffix: str = "") -> str:
    """A measure of the normal rows, or "n/a" when too few rows look normal to measure it."""
    return "n/a" if value != value else f"{value:{spec}}{suffix}"


st.title("Drift")
widgets.show_notice()
st.markdown(
    "Has normal behaviour changed since the model was trained? The new batch's reconstruction "
    "errors are compared with the errors of held-out rows kept with the model at training "
    "time: if normal rows now look unusual to the model, it raises false alarms and needs "
    "retraining. Drift is judged on the batch's normal rows (labelled normal, or else those in "
    "the normal error range); its share of anomalies is reported apart, since a batch full of "
    "anomalies is not a reason to retrain."
)

# ---------------------------------------------------------------- the model
current, current_error = None, None
try:
    current = session.current_model()
except AecoreError as error:
    current_error = str(error)
saved = session.detector_bundles()
options = ([CURRENT] if current is not None else []) + saved
if not options:
    if current_error:
        st.error(f"The current model could not be loaded: {current_error}")
    widgets.show_problem(session.missing_model())
    st.stop()

model_column, batch_column = st.columns(2, gap="large")
with model_column:
    choice = st.selectbox(
        "Model",
        options,
        help="The model this session uses now, or a saved one (its newest version).",
        format_func=lambda o: f"Current: {current.label}" if o == CURRENT else (
            f"{o} (saved, newest)"
        ),
        key="drift_model",
    )  # fmt: skip
    if current_error:
        st.caption(f"The current model could not be loaded: {current_error}")
    try:
        model = current if choice == CURRENT else session.bundle_model(choice)
    except AecoreError as error:
        st.error(f"**{choice}** could not be loaded: {error}")
        st.stop()
    detector = model.detector
    st.caption(
        f"Threshold {widgets.fmt_threshold(detector.threshold_)}, "
        f"{len(getattr(detector, 'reference_errors_', [])):,} reference errors from training, "
        f"{detector.n_features_in_} input columns."
    )

# ---------------------------------------------------------------- the new batch
with batch_column:
    source = st.radio(
        "New batch", list(BATCH_SOURCES), format_func=BATCH_SOURCES.get, key="drift_source"
    )
    batch = None
    if source == "sample":
        try:
            batch = session.drift_sample()
        except (AecoreError, OSError) as error:
            st.error(f"The drift sample could not be loaded: {error}")
    elif source == "data":
        frame = state.get(state.DATA_FRAME)
        if frame is None:
            widgets.show_problem(session.missing_data())
        else:
            batch = {
                "frame": frame, "key": state.get(state.DATA_KEY),
                "name": state.get(state.DATA_NAME),
            }  # fmt: skip
    else:
        uploaded = st.file_uploader(
            f"CSV with the model's columns (up to {session.max_upload_bytes() >> 20:,} MB)",
            type=["csv", "tsv", "txt"],
            key="drift_upload",
            help="Rows recorded after the model was trained. Columns are matched by name; "
            "extra columns are ignored. A label column, if any, is used to count false alarms.",
        )
        if uploaded is not None and uploaded.file_id != state.get(state.DRIFT_UPLOAD_SEEN):
            state.put(state.DRIFT_UPLOAD_SEEN, uploaded.file_id)
            try:
                frame, key = session.read_upload(uploaded.getvalue())
            except AecoreError as error:
                state.put(state.DRIFT_UPLOAD_ERROR, (uploaded.file_id, str(error)))
            else:
                state.put(state.DRIFT_UPLOAD_ERROR, None)
                session.set_drift_batch(frame, key, uploaded.name)
        failed = state.get(state.DRIFT_UPLOAD_ERROR)
        batch = state.get(state.DRIFT_BATCH)
        if failed and uploaded is not None and failed[0] == uploaded.file_id:
            st.error(
                f"**{widgets.plain(uploaded.name)}** could not be loaded. "
                f"{widgets.plain(failed[1])}"
            )
            if batch is not None:
                st.caption(
                    f"The batch loaded before is still used: {widgets.plain(batch['name'])}."
                )
    if batch is not None:
        st.caption(
            f"{widgets.plain(batch['name'])}: {len(batch['frame']):,} rows × "
            f"{batch['frame'].shape[1]} columns."
        )

if batch is None:
    if source == "upload":
        st.info("Upload a CSV of new rows, or pick the drift sample, to check for drift.")
    st.stop()

# ---------------------------------------------------------------- the verdict
reference = None
if getattr(detector, "reference_feature_errors_", None) is None:
    frame = state.get(state.DATA_FRAME)
    if frame is not None and state.get(state.DATA_KEY) != batch["key"]:
        try:
            from aecore.workflows.export import check_columns

            check_columns(frame, detector)
            reference = (f"data:{state.get(state.DATA_KEY)}", frame)
        except AecoreError:
            reference = None
try:
    report = cache.drift_report_for(model.key, batch["key"], detector, batch["frame"], reference)
except AecoreError as error:
    st.error(
        f"**{widgets.plain(batch['name'])}** cannot be checked with **{model.name}**: "
        f"{widgets.plain(error)}"
    )
    st.stop()

if model.kind == "bundle" and not session.models_read_only():
    # The latest verdict on a saved model, for its HTML report (once per model and batch).
    recorded = (model.key, batch["key"])
    if st.session_state.get("drift_recorded") != recorded:
        from aecore.workflows.report import record_drift_verdict

        try:
            record_drift_verdict(model.name, report, batch_name=batch["name"],
                                 models_dir=session.models_dir())  # fmt: skip
            st.session_state["drift_recorded"] = recorded
        except (AecoreError, OSError):
            pass  # the verdict is shown either way; only the report's copy is missed
color, icon, box = VERDICT_STYLE[report.verdict]
verdict_text = report.verdict
if report.many_anomalies:
    color, icon, box = "orange", ":material/warning:", st.warning
    verdict_text += ", many anomalies"
st.header(f"Verdict: :{color}[{verdict_text}]", anchor=False)
box(f"**{report.headline}**", icon=icon)
# Two rows of three: five tiles side by side cut their values off at 1024 px ('100.…').
tiles = [*st.columns(3), *st.columns(3)]
tiles[0].metric(
    "Rows above the threshold",
    f"{report.alarm_share:.1%}",
    f"expected {report.expected_alarm_share:.1%}",
    delta_color="off",
    delta_arrow="off",
)
part = "labelled normal" if report.normal_basis == "labelled" else "in the normal error range"
tiles[1].metric("KS statistic D", fmt_or_na(report.ks_statistic, ".3f"),
                help="Largest gap between the error distributions of the batch's normal rows "
                f"({part}) and the reference rows (one-sided: are the new errors "
                "larger?).")  # fmt: skip
tiles[2].metric("Stability index (PSI)", fmt_or_na(report.psi, ".3f"),
                help="Population stability index of the normal rows' errors. Below 0.1 stable, "
                "0.1 to 0.25 drifting, above 0.25 drifted.")  # fmt: skip
tiles[3].metric("Median error vs reference", fmt_or_na(report.median_ratio, ".2f", "×"),
                help=f"The median error of the batch's {report.n_normal_part:,} normal rows "
                f"({part}) over the reference median.")  # fmt: skip
if report.false_alarm_share is not None:
    tiles[4].metric("False alarms", f"{report.false_alarm_share:.1%}",
                    help="Share of the rows labelled normal in the batch that are above the "
                    "threshold.")  # fmt: skip
st.markdown("**Evidence**\n" + "\n".join(f"- {sentence}" for sentence in report.evidence))
if reference is not None and report.feature_changes is not None:
    st.caption(
        "This model was saved without per-feature reference errors, so the current data "
        f"(**{widgets.plain(state.get(state.DATA_NAME))}**) serves as the reference for the "
        "per-feature errors."
    )

# One above the other: side by side, the feature bars got a column too narrow to read.
chart_column, feature_column = st.container(), st.container()
with chart_column:
    log_x = st.toggle("Log-scale errors", value=True, key="drift_log_x")
    st.plotly_chart(
        charts.drift_histograms(
            report.reference_errors, report.new_errors, report.threshold, log_x=log_x
        ),
        key="drift_histogram",
    )
with feature_column:
    changes = report.feature_changes
    if changes is None:
        st.info("This model has no per-feature reference errors, so the features that changed "
                "cannot be named.")  # fmt: skip
    else:
        grown = changes[changes["increase"] > 0].head(10)
        if grown.empty:
            st.caption("No feature's mean error grew.")
        else:
            place = (
                st.expander("Per-feature changes (small: the verdict is stable)")
                if report.verdict == "stable"
                else st.container()
            )
            place.plotly_chart(
                charts.feature_bars(
                    pd.Series(grown["increase"].to_numpy(), index=grown["feature"]),
                    title="Features whose errors grew most",
                    x_title="increase in mean error (standardised units)",
                ),
                key="drift_features",
            )
            place.dataframe(
                grown[["feature", "reference_error", "new_error", "ratio"]],
                hide_index=True,
                column_config={
                    "reference_error": st.column_config.NumberColumn("reference", format="%.3g"),
                    "new_error": st.column_config.NumberColumn("new batch", format="%.3g"),
                    "ratio": st.column_config.NumberColumn("× reference", format="%.1f"),
                },
            )

# ---------------------------------------------------------------- retraining
st.subheader("Retrain")
task = state.get(state.DRIFT_TASK)


@st.fragment(run_every=background.POLL_SECONDS)
def live_panel() -> None:
    """Epoch progress of the retraining, and Cancel."""
    widgets.task_panel(
        state.get(state.DRIFT_TASK),
        cancel_label="Cancel retraining",
        cancel_key="drift_cancel",
        stopping="Stopping after the current batch; nothing will be saved.",
    )


if task is not None and task.running:
    st.caption(task.title)
    live_panel()
    st.stop()

if task is not None and task.collect():
    if task.status == "done":
        cache.clear_model_caches()
        params = task.params
        if params["make_current"]:
            session.use_bundle(params["save_as"], task.result["version"])
        retrained = task.result["detector"].retraining_
        state.put(
            state.DRIFT_RETRAINED,
            {**params, **task.result, "retraining": retrained,
             "description": describe_training(task.result["meta"])},
        )  # fmt: skip
        st.rerun()
if task is not None and task.status == "failed":
    st.error(task.error)
elif task is not None and task.status == "cancelled":
    st.warning("Retraining was cancelled; nothing was saved.")

done = state.get(state.DRIFT_RETRAINED)
if done is not None and task is not None and task.status == "done":
    kept = (
        "the previous version is kept and listed on the Models page"
        if done["replaces"]
        else "a new saved model"
    )
    st.success(
        f"{widgets.plain(done['description'])} Threshold "
        f"{widgets.fmt_threshold(done['retraining']['previous_threshold'])} → "
        f"{widgets.fmt_threshold(done['retraining']['threshold'])}. Saved as **{done['save_as']}** "
        f"({kept}). Before retraining, {done['before_alarm_share']:.1%} of the batch was above "
        f"the threshold ({done['before_verdict']}); the check above now uses the retrained model"
        + (" (it is now the current model)." if done["make_current"] else ".")
    )
    if done["batch_key"] == batch["key"]:
        st.caption(
            "The retrained model learnt from this batch, so this check is optimistic: judge it "
            "on the next batch."
        )
    st.page_link(session.MODELS_PAGE, label="See every version on the Models page",
                 icon=":material/inventory_2:")  # fmt: skip

if report.verdict == "stable" and report.many_anomalies:
    st.caption("The batch holds many anomalies, but its normal rows look like the training data: "
               "retraining is not needed, but you can (only its normal rows would be "
               "used).")  # fmt: skip
elif report.verdict == "stable":
    st.caption("The batch looks like the training data: retraining is not needed, but you can.")
with st.form("drift_retrain"):
    mode = st.radio("How", RETRAIN_MODES, format_func=MODE_TEXT.get, key="drift_mode")
    st.caption(
        "Only rows believed normal are learnt from: those labelled normal when the batch has "
        "the model's label column, else those at or below the current threshold (when the "
        "batch has drifted, the threshold carried over to its changed errors). The result says "
        "how many rows were used and left out."
    )
    left, right = st.columns(2)
    window_text = left.text_input(
        "Window of recent rows (empty = the whole batch)",
        placeholder="e.g. 1000 (rows) or 12h, 7D (time span)",
        key="drift_window",
        help="A number keeps that many of the latest rows; a duration keeps the rows within "
        "that span before the batch's latest time (needs a time column).",
    )
    epochs = right.number_input(
        "Epochs (at most; 0 = the model's own schedule)", 0, 1000, 0, key="drift_epochs"
    )
    if model.kind == "bundle":
        save_as = model.name
        st.caption(
            f"Saved as a new version of **{model.name}**; the version in use now is kept and "
            "listed on the Models page. The original model is never changed."
        )
    else:
        save_as = st.text_input(
            "Save as", value=f"{model.name}-retrained"[:64], max_chars=64, key="drift_save_as"
        )
    if session.models_read_only():
        st.caption(session.READ_ONLY_NOTE + " Retraining saves a new version, so it is off.")
    submitted = st.form_submit_button("Retrain", type="primary", icon=":material/autorenew:",
                                      key="drift_retrain_submit",
                                      disabled=session.models_read_only())  # fmt: skip
if submitted and not session.models_read_only():
    text = window_text.strip()
    window = int(text.replace(",", "")) if text.replace(",", "").isdigit() else (text or None)
    source = {"model": model.name, "version": model.version, "batch": batch["name"]}
    if model.kind == "bundle":
        source["created"] = cache.bundle_meta(model.name, model.version,
                                              session.models_dir()).get("created")  # fmt: skip
    work = background.retrain_work(
        detector, batch["frame"], mode=mode, window=window, epochs=int(epochs) or None,
        save_as=save_as.strip(), models_dir=session.models_dir(), source=source,
    )  # fmt: skip
    params = {
        "mode": mode,
        "save_as": save_as.strip(),
        "replaces": model.kind == "bundle",
        "make_current": choice == CURRENT,
        "batch_name": batch["name"],
        "batch_key": batch["key"],
        "before_alarm_share": report.alarm_share,
        "before_verdict": report.verdict,
    }
    how = "fine-tuning" if mode == "fine_tune" else "from scratch"
    title = f"Retraining {model.name} on {batch['name']} ({how})"
    state.put(state.DRIFT_TASK, background.start("retrain", title, work, params=params))
    st.rerun()
