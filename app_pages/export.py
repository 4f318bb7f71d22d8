"""Export: download the flagged rows (or all rows) as a spreadsheet-safe CSV, and the model."""

import dataclasses
import re

import numpy as np
import streamlit as st

from aecore import store
from aecore.errors import AecoreError
from aecore.workflows import export
from ui import cache, session, state, widgets

PREVIEW_ROWS = 20
BUILD_PREVIEW_LIMIT = 100_000
EAGER_EXPORT_ROWS = 200_000

scored, model = widgets.scored_page("Export")

threshold = session.threshold()
flags = scored.flags(threshold)
n_flagged = int(flags.sum())
model_name = model.saved_as or model.name
st.caption(
    f"Model **{model.label}** on **{widgets.data_caption()}**; threshold {threshold:.4g} "
    f"(set on the Threshold page) flags **{n_flagged:,}** rows ({n_flagged / scored.n_rows:.2%})."
)

scope = st.radio(
    "Rows to export",
    ["flagged", "all"],
    format_func={
        "flagged": f"flagged rows only ({n_flagged:,})",
        "all": f"all rows ({scored.n_rows:,})",
    }.get,
    horizontal=True,
    key="export_scope",
)
all_rows = scope == "all"
scores = dataclasses.replace(
    scored.scores, flags=flags.astype(np.int8), threshold=float(threshold)
)
ids = export.id_columns(scored.frame.columns, model.detector.roles_, state.get(state.ROLES))
try:
    book = session.reviews_if_any()
except AecoreError as error:
    book = None
    st.warning(f"The review marks are left out of the export: {error}")
reviews = book if book is not None and book.has_marks else None


def build_csv() -> bytes:
    """The export table as formula-safe CSV (built only when the button is pressed)."""
    table = export.export_frame(
        scored.frame, scores, model_name=model_name, all_rows=all_rows, id_columns=ids,
        reviews=reviews,
    )
    return export.to_safe_csv(table)


stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", state.get(state.DATA_NAME).rsplit(".", 1)[0]) or "data"
n_export = scored.n_rows if all_rows else n_flagged
id_text = f", then the id column{'s' if len(ids) > 1 else ''} " + ", ".join(
    f"`{c}`" for c in ids
) if ids else ""
st.markdown(
    f"**{n_export:,} rows**, sorted by error (rank 1 = most anomalous). Each row starts with "
    f"`source_row`, its row number in the file as a spreadsheet shows it (the header is row 1, "
    f"so the first data row is 2){id_text}, so every row can be found in the input file; then "
    "every other original column plus `reconstruction_error`, `rank`, `flag`, the top 3 "
    "features with their share of the row's error, `model` and `threshold`"
    + (", then `review_status` and `review_note` (your marks from the Review page)"
       if reviews is not None else "")
    + ". Text that a spreadsheet would run as a formula is prefixed with `'`."
)
if n_export == 0:
    st.info("No row is flagged at this threshold.")
    st.page_link(session.THRESHOLD_PAGE, label="Lower the threshold", icon=":material/tune:")
else:
    # Up to EAGER_EXPORT_ROWS rows the file is built here (once, cached) and handed to the
    # button: Streamlit's deferred downloads (a callable run on click) were dropped under load
    # when other sessions' runs cleaned up files ("Download canceled" in bench/load_sessions.py
    # with four sessions at once). Larger exports are still built only when clicked.
    eager = n_export <= EAGER_EXPORT_ROWS
    marks_key = None if reviews is None else reviews.table().to_json()
    export_key = "|".join(map(str, (model.key, state.get(state.DATA_KEY), float(threshold),
                                    all_rows, ids, model_name, marks_key)))  # fmt: skip
    st.download_button(
        f"Download {n_export:,} rows as CSV",
        data=cache.export_csv(export_key, build_csv) if eager else build_csv,
        file_name=f"{stem}-{model_name}-{'all' if all_rows else 'flagged'}.csv",
        mime="text/csv",
        icon=":material/download:",
        type="primary",
        key="download_csv",
        on_click="ignore",
    )
    ranked = scored.ranked_flagged(threshold, PREVIEW_ROWS)
    if n_export <= BUILD_PREVIEW_LIMIT:
        preview = export.export_frame(
            scored.frame, scores, model_name=model_name, all_rows=all_rows, id_columns=ids,
            reviews=reviews,
        ).head(PREVIEW_ROWS)
        first = [export.SOURCE_ROW, *ids]
        # The analyst's marks next to the row's number, where they are seen without scrolling.
        marks = [c for c in export.REVIEW_COLUMNS if c in preview.columns]
        added = [c for c in export.export_column_names() if c in preview.columns]
        front = first + marks + added
        preview = preview[front + [c for c in preview.columns if c not in set(front)]]
    else:
        rows = ranked if len(ranked) else np.argsort(-scored.errors)[:PREVIEW_ROWS]
        preview = scored.rows_table(rows, threshold, ids=ids)
    st.caption(
        f"The first {min(PREVIEW_ROWS, n_export)} rows of the file (the added columns are shown "
        "after `source_row` here; in the file they follow the original columns):"
    )
    st.dataframe(preview, hide_index=True, height=300)

st.subheader("Report")
st.caption(
    "One self-contained HTML file to attach to a ticket: the data summary, a model card, the "
    "error histogram with this threshold, the top flagged rows with their top features and "
    "review marks, the review summary and the latest drift verdict. It opens in any browser, "
    "offline (Plotly's JavaScript is inside)."
)
marks_json = None if reviews is None else reviews.table().to_json()
report_key = "|".join(map(str, (model.key, state.get(state.DATA_KEY), float(threshold),
                                marks_json)))  # fmt: skip
built = state.get(state.REPORT)
if built is None or built[0] != report_key:
    if st.button("Build the report", icon=":material/description:", key="build_report"):
        from aecore.workflows import report as reporting

        drift = None
        latest = state.get(state.DRIFT_REPORT)
        batch = state.get(state.DRIFT_BATCH)
        if latest is not None and latest[0][0] == model.key:
            drift = {"verdict": latest[1].verdict, "headline": latest[1].headline,
                     "n_rows": latest[1].n_rows,
                     "batch": batch["name"] if batch else ""}  # fmt: skip
        elif model.kind == "bundle":
            drift = reporting.latest_drift_verdict(model.name, models_dir=session.models_dir())
        meta = None
        if model.kind == "bundle":
            meta = cache.bundle_meta(model.name, model.version, session.models_dir())
        try:
            with st.spinner("Building the report…"):
                html = reporting.build_report(
                    model.detector, scored.frame, model_name=model_name,
                    data_name=state.get(state.DATA_NAME), threshold=float(threshold),
                    reviews=book, drift=drift, model_meta=meta, scores=scored.scores,
                )  # fmt: skip
        except AecoreError as error:
            st.error(str(error))
        else:
            state.put(state.REPORT, (report_key, html.encode("utf-8")))
            st.rerun()
else:
    st.download_button(
        "Download the report (HTML)", data=built[1], file_name=f"{stem}-{model_name}-report.html",
        mime="text/html", icon=":material/download:", key="download_report", on_click="ignore",
    )  # fmt: skip
    st.caption(f"{len(built[1]) / 1e6:.1f} MB, built for this model, data, threshold and marks.")

st.subheader("The model")
bundle = model.name if model.kind == "bundle" else model.saved_as
if bundle:
    st.download_button(
        f"Download the model bundle `{bundle}` (.zip)",
        data=lambda: store.bundle_zip(bundle, models_dir=session.models_dir()),
        file_name=f"{bundle}.zip",
        mime="application/zip",
        icon=":material/inventory_2:",
        key="download_bundle",
        on_click="ignore",
    )
    st.caption(
        "`model.keras` (the network) and `meta.json` (columns, preprocessing, threshold, "
        "training history); load it on the Models page or with `aecore.store.load`. "
        "The bundle keeps the threshold it was saved with."
    )
else:
    st.info("This model was trained in this session and is not saved yet.")
    st.page_link(session.TRAIN_PAGE, label="Save it on the Train page", icon=":material/save:")
