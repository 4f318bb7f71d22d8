"""Latent space & PCA: the rows as the model's code sees them, beside PCA of the inputs."""

import numpy as np
import streamlit as st

from aecore.evaluation.pca import comparison_table, projection_problem
from aecore.viz import charts
from aecore.workflows.export import id_columns
from ui import cache, session, state, widgets

MAX_SELECTED_ROWS = 1_000

scored, model = widgets.scored_page("Latent space & PCA")
too_few = projection_problem(scored.n_rows)
if too_few:
    st.info(too_few)
    st.stop()

threshold = session.threshold()
flags = scored.flags(threshold)
choices = ["error", "flag"] + (["label"] if scored.labels is not None else [])
color_by = st.radio(
    "Colour the points by",
    choices,
    index=1,
    horizontal=True,
    key="latent_color",
    format_func={
        "error": "reconstruction error",
        "flag": f"flag (threshold {threshold:.4g})",
        "label": f"label ({scored.label_column})",
    }.get,
)

rows = charts.downsample(flags, priority=scored.errors)
row_flags = flags[rows]
hover = np.full(len(rows), "", dtype=object)
hover[row_flags] = ["top features: " + text for text in scored.top_features_text(rows[row_flags])]
ids = id_columns(scored.frame.columns, model.detector.roles_, state.get(state.ROLES))
if ids:  # the analyst's id columns, so a point can be found in the source
    named = scored.frame.iloc[rows][ids].astype(str).to_numpy()
    hover = np.asarray(
        [", ".join(f"{c}={v}" for c, v in zip(ids, values, strict=True)) + ("<br>" + h if h else "")
         for values, h in zip(named, hover, strict=True)], dtype=object,
    )  # fmt: skip
numbers = scored.source_rows[rows]  # "row N" on hover = source_row N in the export
labels = None if scored.labels is None else scored.labels[rows]
n_flagged = int(flags.sum())
n_other = len(rows) - int(row_flags.sum())
if len(rows) < scored.n_rows:
    kept = (
        f"every flagged row ({n_flagged:,})"
        if n_flagged <= charts.MAX_FLAGGED_POINTS
        else f"the {charts.MAX_FLAGGED_POINTS:,} flagged rows with the highest error "
        f"(of {n_flagged:,})"
    )
    sample_note = (
        f"{len(rows):,} of {scored.n_rows:,} rows drawn: {kept} plus a random sample of "
        f"{n_other:,} of the others, so flagged rows look more common here than they are."
    )
else:
    sample_note = f"All {scored.n_rows:,} rows drawn."

latent_xy, latent_note = scored.latent_2d()
code_size = scored.scores.latent.shape[1]
axis = "code unit" if code_size <= 2 else "PC {} of the codes"
inputs_xy = scored.inputs_2d(model.detector)

left, right = st.columns(2, gap="medium")
with left:
    figure, latent_traces = charts.scatter_2d(
        latent_xy[rows], numbers, scored.errors[rows], row_flags, color_by=color_by, labels=labels,
        hover=hover, title=f"Latent space (code size {code_size})", note=latent_note,
        x_title=axis.format(1) if "{}" in axis else f"{axis} 1",
        y_title=axis.format(2) if "{}" in axis else f"{axis} 2",
    )  # fmt: skip
    latent_event = st.plotly_chart(
        figure, key="latent_scatter", on_select="rerun", selection_mode=("box", "lasso")
    )
with right:
    figure, input_traces = charts.scatter_2d(
        inputs_xy[rows], numbers, scored.errors[rows], row_flags, color_by=color_by, labels=labels,
        hover=hover, title="PCA of the model's inputs",
        note="First 2 principal components of the scaled input columns.",
        x_title="PC 1 of the inputs", y_title="PC 2 of the inputs",
    )  # fmt: skip
    input_event = st.plotly_chart(
        figure, key="inputs_scatter", on_select="rerun", selection_mode=("box", "lasso")
    )
st.caption(
    sample_note + " Drag a box (or pick the lasso in the chart's toolbar) to list rows below; "
    "hover a point for its row, error and (if flagged) its top features."
)


def selected(event, traces) -> list[int]:
    points = (event or {}).get("selection", {}).get("points", []) if event else []
    chosen = []
    for point in points:
        curve, index = point.get("curve_number"), point.get("point_index")
        if curve is not None and index is not None and curve < len(traces):
            chosen.append(int(traces[curve][index]))
    return chosen


picked = sorted(set(selected(latent_event, latent_traces) + selected(input_event, input_traces)))
picked = scored.positions_of(picked).tolist()  # the traces hold source_row numbers
st.subheader("Selected rows")
if picked:
    shown = np.asarray(picked[:MAX_SELECTED_ROWS])
    st.caption(
        f"{len(picked):,} rows selected"
        + (f"; the first {MAX_SELECTED_ROWS:,} are listed." if len(picked) > len(shown) else ".")
    )
    st.dataframe(scored.rows_table(shown, threshold, ids=ids), hide_index=True, height=300)
    st.caption("`source_row` is the row's number in the file (header = row 1), as in the export.")
else:
    st.caption("Nothing selected yet.")

st.subheader("Autoencoder vs PCA at the same size")
trained_here = model.kind == "session" and model.data_key == state.get(state.DATA_KEY)
result, note = cache.pca_table(
    model.key, state.get(state.DATA_KEY), trained_here, model.detector, scored.frame
)
table = comparison_table(result, text=True)
if not trained_here:
    table = table.rename(
        index={
            "Train reconstruction MSE": "Reconstruction MSE (current data)",
            "Explained variance (train)": "Explained variance (current data)",
        }
    )
st.dataframe(table)
st.caption(
    note + ". Reconstruction MSE in the model's standardised units; PCA keeps as many "
    "components as the code has units. Explained variance is the share of the rows' variance "
    "the reconstruction keeps: for the autoencoder, 1 − its MSE / the inputs' mean variance, "
    "PCA's own measure. An autoencoder that does no better than PCA has learned little beyond "
    "a linear subspace."
)
if result.get("principal_angles_deg"):
    angles = ", ".join(f"{a:.1f}°" for a in result["principal_angles_deg"])
    st.caption(
        f"Principal angles between the linear decoder's subspace and PCA's: {angles} "
        "(near 0° = the autoencoder found PCA's subspace)."
    )
