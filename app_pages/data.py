"""Data: upload a CSV or pick a sample, preview it, and check or edit each column's role."""

import pandas as pd
import streamlit as st

from aecore.datasets import SAMPLES
from aecore.errors import AecoreError
from aecore.io import inference
from aecore.io.roles import ROLE_NAMES, ColumnRoles
from ui import cache, session, state, widgets

PREVIEW_ROWS = 1_000

st.title("Data")
widgets.show_notice()
limit_mb = int(st.get_option("server.maxUploadSize"))

upload_column, sample_column = st.columns([3, 2], gap="large")
with upload_column:
    uploaded = st.file_uploader(
        f"Upload a CSV or Parquet file (up to {limit_mb:,} MB)",
        type=["csv", "tsv", "txt", "parquet", "pq"],
        key="data_upload",
        help="CSV: comma, semicolon, tab or pipe separated; UTF-8, Windows-1252 or Latin-1; "
        "the first line names the columns. Parquet: flat columns (no nested or binary ones).",
    )
    if uploaded is not None and uploaded.file_id != state.get(state.UPLOAD_SEEN):
        state.put(state.UPLOAD_SEEN, uploaded.file_id)
        try:
            frame, key = session.read_upload(uploaded.getvalue())
            session.set_data(frame, key, uploaded.name, "upload")
        except AecoreError as error:
            state.put(state.UPLOAD_ERROR, (uploaded.file_id, str(error)))
        else:
            state.put(state.UPLOAD_ERROR, None)
            st.rerun()
    failed = state.get(state.UPLOAD_ERROR)
    if failed and uploaded is not None and failed[0] == uploaded.file_id:
        st.error(
            f"**{widgets.plain(uploaded.name)}** could not be loaded. {widgets.plain(failed[1])}"
        )
        if state.get(state.DATA_FRAME) is not None:
            st.caption(f"The data loaded before is still in use: {widgets.data_caption()}.")

with sample_column:
    names = list(SAMPLES)
    choice = st.selectbox(
        "…or pick a sample",
        names,
        index=names.index(session.DEFAULT_SAMPLE),
        format_func=lambda name: SAMPLES[name].filename,
    )
    st.caption(SAMPLES[choice].description)
    if st.button("Load this sample", icon=":material/dataset:"):
        try:
            session.load_sample(choice)
        except AecoreError as error:
            st.error(str(error))
        else:
            st.rerun()

problem = session.missing_data()
if problem:
    widgets.show_problem(problem)
    st.stop()

frame: pd.DataFrame = state.get(state.DATA_FRAME)
data_key: str = state.get(state.DATA_KEY)
roles: ColumnRoles = state.get(state.ROLES)
columns = list(frame.columns)

st.subheader(f"Preview: {widgets.plain(state.get(state.DATA_NAME))}")
shown = min(len(frame), PREVIEW_ROWS)
st.caption(f"{len(frame):,} rows × {frame.shape[1]} columns; the first {shown:,} rows are shown.")
st.dataframe(frame.head(PREVIEW_ROWS), height=260)

st.subheader("Column roles")
st.caption(
    "**feature**: a numeric model input · **categorical**: a text input, one-hot encoded · "
    "**time**: orders the rows (never an input) · **label**: known anomalies, used only to "
    "evaluate (1 or text such as 'attack' = anomaly) · **id**: identifies rows, carried into "
    "scored views and exports (never an input) · **ignore**: not used. Pre-filled by "
    "inference; change a role in the table. Roles you change are remembered for this file "
    "while the session lasts."
)
notes = cache.role_notes(data_key, cache.roles_json(roles), frame, roles)
table = pd.DataFrame(
    {
        "column": columns,
        "role": [roles.role_of(c) for c in columns],
        "why": [notes[c] for c in columns],
    }
)
edited = st.data_editor(
    table,
    key=f"roles_editor_{data_key}",
    hide_index=True,
    disabled=["column", "why"],
    height=min(38 + 35 * len(columns), 420),
    column_config={
        "column": st.column_config.TextColumn("column", width="medium"),
        "role": st.column_config.SelectboxColumn(
            "role", options=list(ROLE_NAMES), required=True, width="small"
        ),
        "why": st.column_config.TextColumn("why this role / what happens", width="large"),
    },
)
mapping = dict(zip(edited["column"], edited["role"], strict=True))
if mapping != roles.as_mapping(columns):
    try:
        roles = ColumnRoles.from_mapping(mapping)
    except AecoreError as error:
        st.error(f"These roles cannot be used: {error}")
    else:
        session.set_roles(roles)
        st.rerun()

label_like = inference.label_like_message(
    cache.label_like_inputs(data_key, cache.roles_json(roles), frame, roles)
)
if label_like:
    st.warning(label_like, icon=":material/warning:")

dropped = list(roles.ignore)
imputed = [c for c in roles.inputs if "imputed" in notes.get(c, "")]
if dropped:
    st.warning(
        "Dropped (role *ignore*, not used by the model): "
        f"{', '.join(map(widgets.plain, dropped))}."
    )
if imputed:
    st.info(
        "Missing values will be imputed (numbers: the median; text: a 'missing' category) in: "
        + ", ".join(map(widgets.plain, imputed))
        + "."
    )
try:
    inference.check_trainable(frame, roles)
except AecoreError as error:
    st.warning(f"Not trainable yet: {error}")
else:
    parts = [f"{len(roles.features)} numeric", f"{len(roles.categorical)} categorical"]
    extra = []
    if roles.label:
        extra.append(f"label **{roles.label}**")
    if roles.time:
        extra.append(f"time **{roles.time}**")
    if roles.ids:
        extra.append(f"{'ids' if len(roles.ids) > 1 else 'id'} **{', '.join(roles.ids)}**")
    st.success(
        f"Ready to train on {len(roles.inputs)} input columns ({', '.join(parts)})"
        + (f"; {', '.join(extra)}." if extra else ".")
    )
    st.page_link(
        session.TRAIN_PAGE, label="Train a model on this data", icon=":material/arrow_forward:"
    )

try:
    current = session.current_model()
except AecoreError:
    current = None
if current is not None:
    from aecore.workflows.export import check_columns

    try:
        check_columns(frame, current.detector)
    except AecoreError as error:
        st.warning(
            f"The current model **{current.name}** cannot score this data: {error} "
            "Train a model on this data, or load one trained on these columns."
        )

st.subheader("Summary per column")
summary = cache.column_summary(data_key, cache.roles_json(roles), frame, roles)
stats = [c for c in ("min", "max", "mean", "std") if c in summary.columns]
st.dataframe(
    # Text columns have no min, max, mean or spread: a dash, not a literal "None".
    summary.style.format("{:.4g}", subset=stats, na_rep="–"),
    hide_index=True,
    column_config={
        "missing_share": st.column_config.NumberColumn("missing share", format="percent"),
        "note": st.column_config.TextColumn("note", width="large"),
    },
)
