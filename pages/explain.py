"""Explain: which features carry the error of each flagged row."""

import numpy as np
import streamlit as st

from aecore import charts
from aecore.analysis import reconstruct_row
from aecore.errors import AecoreError
from ui import session, widgets

ROW_CHOICES = 500

scored, model = widgets.scored_page("Explain the flagged rows")

threshold = session.threshold()
ranked = scored.ranked_flagged(threshold)
if len(ranked) == 0:
    st.info(f"No row has an error above the threshold ({threshold:.4g}): nothing to explain.")
    st.page_link(session.THRESHOLD_PAGE, label="Lower the threshold", icon=":material/tune:")
    st.stop()

feature_errors = scored.scores.feature_errors
mean_errors = scored.mean_feature_errors(threshold)
pair = getattr(model.detector, "second_autoencoder_", None) is not None
st.caption(
    f"{len(ranked):,} rows are flagged at threshold {threshold:.4g}. Errors are squared "
    "differences between a row and its reconstruction, in the model's standardised units"
    + (
        ", weighted per column and averaged over the model's two autoencoders (the "
        "reconstruction shown is their mean)."
        if pair
        else "."
    )
)

controls = st.columns(2)
max_rows = min(len(ranked), charts.HEATMAP_MAX_ROWS)
n_rows = controls[0].slider(
    f"Rows (highest error first, at most {charts.HEATMAP_MAX_ROWS})",
    1, max(max_rows, 2), min(40, max_rows), disabled=max_rows < 2,
)  # fmt: skip
n_features_total = feature_errors.shape[1]
max_features = min(n_features_total, charts.HEATMAP_MAX_FEATURES)
n_features = controls[1].slider(
    f"Features (largest mean error first, at most {charts.HEATMAP_MAX_FEATURES})",
    1, max(max_features, 2), min(25, max_features), disabled=max_features < 2,
)  # fmt: skip
top_rows = ranked[:n_rows]
features = list(mean_errors.index[:n_features])
values = feature_errors.iloc[top_rows][features].to_numpy()
names = [f"row {row} ({scored.errors[row]:.3g})" for row in top_rows]
st.plotly_chart(
    charts.feature_heatmap(values, names, features), key="explain_heatmap"
)
st.caption(
    f"The heatmap shows the {len(top_rows):,} flagged rows with the highest error (of "
    f"{len(ranked):,}; at most {charts.HEATMAP_MAX_ROWS} are shown) and {len(features)} of "
    f"{n_features_total} features. Rows are labelled with their total error."
)
bar_column, note_column = st.columns([3, 2], gap="medium")
with bar_column:
    st.plotly_chart(
        charts.feature_bars(
            mean_errors,
            title=f"Mean error per feature over the {len(ranked):,} flagged rows",
            x_title="mean squared error (standardised units)",
        ),
        key="explain_mean_bars",
    )
with note_column:
    top_share = mean_errors.head(3).sum() / max(mean_errors.sum(), 1e-300)
    st.markdown("**Where the error concentrates**")
    st.caption(
        f"The 3 features with the largest mean error carry {top_share:.0%} of the flagged rows' "
        f"error ({len(mean_errors)} features in all). Errors concentrated on a few features "
        "(one server, one kind of sensor) are the clue to the anomaly's nature; errors spread "
        "evenly suggest the row is unusual as a whole."
    )
    top = ", ".join(f"**{name}**" for name in mean_errors.index[:3])
    st.markdown(f"Largest: {top}.")

st.subheader("One row in detail")
choices = ranked[:ROW_CHOICES]
tops = scored.top_features_text(choices, k=2)
labels = {int(row): f"row {row} · error {scored.errors[row]:.4g} · {top}"
          for row, top in zip(choices, tops, strict=True)}  # fmt: skip
row = st.selectbox(
    f"Flagged row (the {len(choices):,} highest errors)",
    list(labels),
    format_func=labels.get,
    key="explain_row",
)
try:
    detail = reconstruct_row(model.detector, scored.frame, int(row))
except AecoreError as error:
    st.error(str(error))
    st.stop()
left, right = st.columns([2, 3], gap="medium")
with left:
    st.plotly_chart(
        charts.feature_bars(
            detail["error"], title=f"Per-feature error of row {row}", max_bars=20
        ),
        key="explain_row_bars",
    )
with right:
    st.markdown(f"**Input vs reconstruction of row {row}, in original units**")
    shown = detail.copy()
    for column in ("input", "reconstruction"):
        shown[column] = [
            f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v) for v in shown[column]
        ]
    st.dataframe(
        shown[["input", "reconstruction", "difference", "error", "share of row error"]],
        height=420,
        column_config={
            "difference": st.column_config.NumberColumn(format="%.4g"),
            "error": st.column_config.NumberColumn(format="%.4g"),
            "share of row error": st.column_config.NumberColumn(format="percent"),
        },
    )
    st.caption("Features sorted by error, largest first; categorical columns show the most "
               "likely category.")
