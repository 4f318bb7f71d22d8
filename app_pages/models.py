"""Models: the saved bundles and their metadata; use one, score a new CSV with it, delete one."""

import pandas as pd
import streamlit as st

from aecore import store
from aecore.errors import AecoreError
from aecore.evaluation.metrics import evaluation_scope_text
from aecore.io import inference
from aecore.workflows.export import check_columns
from aecore.workflows.retraining import describe_training
from ui import cache, session, state, widgets

st.title("Saved models")
widgets.show_notice()
folder = session.models_dir()
models = cache.model_list(folder)
st.caption(f"Bundles in `{folder}`: each is `model.keras` + `meta.json`.")
if models.empty:
    st.info("No saved model yet.")
    st.page_link(session.TRAIN_PAGE, label="Train one and save it", icon=":material/arrow_forward:")
    st.stop()

broken = models[models["problem"] != ""]
if len(broken):
    st.warning(
        f"{len(broken)} saved model(s) cannot be used: their files are damaged (the reason is "
        "listed below). The other models are not affected; a damaged one can still be deleted."
    )
    st.dataframe(broken[["name", "problem"]], hide_index=True)
st.dataframe(
    models[models["problem"] == ""].drop(columns="problem"),
    hide_index=True,
    column_config={
        "threshold": st.column_config.NumberColumn(format="%.4g"),
        "features": st.column_config.TextColumn(width="medium"),
        "n_train_rows": st.column_config.NumberColumn("training rows", format="%d"),
        "n_features": st.column_config.NumberColumn("inputs"),
    },
)



def delete_section(name: str, versions: list) -> None:
    """Delete bundle ``name`` and all its versions, after a confirmation (not when the model
    store is read-only)."""
    st.subheader("Delete")
    with st.expander(f"Delete {name}"):
        if session.models_read_only():
            st.caption(session.READ_ONLY_NOTE)
            st.button("Delete", disabled=True, icon=":material/delete:", key="delete_model")
            return
        confirmed = st.checkbox(
            f"Yes, delete **{name}** and all its {len(versions)} saved version(s) for good",
            key="confirm_delete",
        )
        if st.button(
            "Delete", disabled=not confirmed, icon=":material/delete:", key="delete_model"
        ):
            try:
                session.check_models_writable()
                store.delete_model(name, models_dir=folder)
            except AecoreError as error:
                st.error(str(error))
            else:
                cache.clear_model_caches()
                if ref is not None and ref["kind"] == "bundle" and ref["name"] == name:
                    state.put(state.MODEL_REF, None)
                state.put(state.NOTICE, ("success", f"Deleted {name}."))
                del st.session_state["confirm_delete"]
                st.rerun()


names = list(models["name"])
damaged = set(broken["name"])
ref = state.get(state.MODEL_REF)
usable = [n for n in names if n not in damaged] or names
current = ref["name"] if ref and ref["kind"] == "bundle" and ref["name"] in names else usable[0]
pick_name, pick_version = st.columns(2)
name = pick_name.selectbox(
    "Model",
    names,
    index=names.index(current),
    key="models_name",
    format_func=lambda n: f"{n} (damaged)" if n in damaged else n,
)
try:
    versions = store.list_versions(name, models_dir=folder)
except AecoreError as error:
    st.error(str(error))
    st.stop()
created = {
    item["version"]: item["created"] + (" (newest)" if item["current"] else "") for item in versions
}
version = pick_version.selectbox(
    "Version", list(created), format_func=lambda v: created.get(v, v), key=f"version_{name}"
)
try:
    meta = cache.bundle_meta(name, version, folder)
except AecoreError as error:
    st.error(f"{error} Pick another model or version, or delete this one.")
    delete_section(name, versions)
    st.stop()
in_use = ref is not None and ref["kind"] == "bundle" and (ref["name"], ref["version"]) == (
    name,
    version,
)
is_classifier = meta.get("kind") == "classifier"
# Whether the picked model can score the data loaded now: said here, before it is used.
mismatch = None
current_frame = state.get(state.DATA_FRAME)
if not is_classifier and current_frame is not None:
    try:
        check_columns(current_frame, cache.load_bundle(name, version, folder))
    except AecoreError as error:
        mismatch = str(error)

# The description and training sentence are prose: the wider side, readable at 1024 px.
left, right = st.columns([3, 2], gap="large")
with left:
    if mismatch:
        st.warning(
            f"**{name}** cannot score the data loaded now "
            f"(**{widgets.plain(state.get(state.DATA_NAME))}**): {widgets.plain(mismatch)} "
            "Load data with its columns, or pick another model."
        )
    if is_classifier:
        st.info(
            "A classifier trained on a few labels, not an anomaly detector: it does not score "
            "rows by reconstruction error here. Train and use classifiers on the Few labels page."
        )
        st.page_link(session.FEW_LABELS_PAGE, label="Few labels", icon=":material/label:")
    elif in_use:
        st.success("This is the current model.")
    elif st.button("Use this model", type="primary", icon=":material/check:", key="use_model"):
        session.use_bundle(name, version)
        st.rerun()
    training = None if is_classifier else describe_training(meta)
    if meta.get("description") and not (training or "").startswith(meta["description"]):
        st.text(meta["description"])  # plain text: a description is never run as Markdown
    if training:
        st.markdown(f"**How it was trained:** {widgets.plain(training)}")
    architecture = meta.get("architecture") or {}
    threshold = meta.get("threshold") or {}
    st.markdown(
        f"- architecture **{architecture.get('name', '?')}**, code size "
        f"{architecture.get('code_size', '?')}, {architecture.get('parameters', 0):,} weights\n"
        f"- threshold **{threshold.get('value', float('nan')):.4g}** "
        f"({threshold.get('method', '?')})\n"
        f"- saved {meta.get('created', '?')}"
    )
    metrics = store.metrics_text(meta.get("evaluation"))
    if metrics:
        scope = evaluation_scope_text(meta.get("evaluation"))
        st.caption(f"Against the labels: {metrics}" + (f", {scope}." if scope else "."))
with right:
    features = pd.DataFrame(meta.get("features") or [])
    st.markdown(f"**{len(features)} input columns**")
    st.dataframe(features, hide_index=True, height=220)

if not is_classifier:
    st.subheader("Score a new CSV with this model")
    upload = st.file_uploader(
        f"CSV with the model's columns (up to {int(st.get_option('server.maxUploadSize')):,} MB)",
        type=["csv", "tsv", "txt"],
        key="models_upload",
        help="Columns are matched by name; extra columns are ignored.",
    )
    if upload is not None and upload.file_id != state.get(state.MODELS_UPLOAD_SEEN):
        state.put(state.MODELS_UPLOAD_SEEN, upload.file_id)
        try:
            frame, key = session.read_upload(upload.getvalue())
            detector = cache.load_bundle(name, version, folder)
            report = check_columns(frame, detector)
            named = detector.roles_
            overrides = {c: named.role_of(c) for c in named.named if c in frame.columns}
            roles = inference.infer_roles(frame, overrides=overrides)
        except AecoreError as error:
            state.put(state.MODELS_UPLOAD_RESULT, ("error", upload.name, str(error)))
        else:
            session.set_data(frame, key, upload.name, "models page", roles)
            session.use_bundle(name, version)
            state.put(state.MODELS_UPLOAD_RESULT, ("ok", upload.name, report))
            st.rerun()
    result = state.get(state.MODELS_UPLOAD_RESULT)
    if upload is not None and result is not None and result[1] == upload.name:
        if result[0] == "error":
            st.error(
                f"**{widgets.plain(upload.name)}** cannot be scored by **{name}**: "
                f"{widgets.plain(result[2])} The data loaded "
                "before is still in use."
            )
        else:
            report = result[2]
            scored, model, problem = session.scored()
            if problem:
                widgets.show_problem(problem)
            else:
                flagged = scored.count_above(session.threshold())
                st.success(
                    f"**{widgets.plain(upload.name)}** is now the current data, scored by "
                    f"**{name}**: {flagged:,} "
                    f"of {scored.n_rows:,} rows are above the model's threshold."
                )
            notes = []
            if report["extra_columns"]:
                notes.append(
                    "ignored (not model inputs): "
                    + ", ".join(map(widgets.plain, report["extra_columns"]))
                )
            if report["reordered"]:
                notes.append("columns are in another order than at training (matched by name)")
            for column, values in report["unseen_categories"].items():
                shown = ", ".join(map(widgets.plain, values[:5]))
                shown += " …" if len(values) > 5 else ""
                notes.append(
                    f"{widgets.plain(column)}: categories not seen in training ({shown}) encode "
                    "as zeros"
                )
            for note in notes:
                st.caption(f"- {note}")
            links = st.columns(3)
            links[0].page_link(session.THRESHOLD_PAGE, label="Threshold", icon=":material/tune:")
            links[1].page_link(
                session.EXPLAIN_PAGE, label="Explain", icon=":material/search_insights:"
            )
            links[2].page_link(session.EXPORT_PAGE, label="Export", icon=":material/download:")

delete_section(name, versions)
