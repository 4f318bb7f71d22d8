"""Explain: which features carry the error of each flagged row."""

import numpy as np
import streamlit as st

from aecore.errors import AecoreError
from aecore.evaluation.explain import row_detail, why_small_error
from aecore.viz import charts
from aecore.workflows.export import id_columns
from ui import session, state, widgets

ROW_CHOICES = 500

scored, model = widgets.scored_page("Explain the flagged rows")

threshold = session.threshold()
ranked = scored.ranked_flagged(threshold)
ids = id_columns(scored.frame.columns, model.detector.roles_, state.get(state.ROLES))
if len(ranked) == 0:
    st.info(f"No row has an error above the threshold ({threshold:.4g}): nothing to explain.")
    st.page_link(session.THRESHOLD_PAGE, label="Lower the threshold", icon=":material/tune:")
    st.stop()

feature_errors = scored.scores.feature_errors
mean_errors = scored.mean_feature_errors(threshold)
pair = getattr(model.detector, "second_autoencoder_", None) is not None
remembered = model.detector.memory_summary() is not None
st.caption(
    f"{len(ranked):,} rows are flagged at threshold {threshold:.4g}. Errors are squared "
    "differences between a row and its reconstruction, in the model's standardised units"
    + (
        ", weighted per column and averaged over the model's two autoencoders"
        if pair
        else ""
    )
    + (
        ", averaged with the squared differences to the row's nearest normal prototype (a "
        "typical training row)" if remembered else ""
    )
    + (" (the reconstruction shown is their mean)." if pair or remembered else ".")
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
names = [f"{scored.row_name(row)} ({scored.errors[row]:.3g})" for row in top_rows]
st.plotly_chart(
    charts.feature_heatmap(values, names, features), key="explain_heatmap"
)
st.caption(
    f"The heatmap shows the {len(top_rows):,} flagged rows with the highest error (of "
    f"{len(ranked):,}; at most {charts.HEATMAP_MAX_ROWS} are shown) and {len(features)} of "
    f"{n_features_total} features. Rows are named by their number in the file (header = row "
    "1), as in the export's `source_row`, with their total error."
)
bar_column, note_column = st.columns([3, 2], gap="medium")
with bar_column:
    st.plotly_chart(
        charts.feature_bars(
            mean_errors,
            title=f"Mean error per feature over the {len(ranked):,} flagged rows",
            x_title="mean error (part of the row's score)",
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
    top = ", ".join(f"**{widgets.plain(name)}**" for name in mean_errors.index[:3])
    st.markdown(f"Largest: {top}.")

st.subheader("One row in detail")
choices = ranked[:ROW_CHOICES]
tops = scored.top_features_text(choices, k=2)
labels = {int(row): f"{scored.row_name(row, ids)} · error {scored.errors[row]:.4g} · {top}"
          for row, top in zip(choices, tops, strict=True)}  # fmt: skip
row = st.selectbox(
    f"Flagged row (the {len(choices):,} highest errors)",
    list(labels),
    format_func=labels.get,
    key="explain_row",
)
try:
    detail = row_detail(model.detector, scored.frame, int(row))
except AecoreError as error:
    st.error(str(error))
    st.stop()
name = scored.row_name(int(row), ids)
left, right = st.columns([3, 2], gap="medium")
with left:
    st.plotly_chart(
        charts.feature_bars(detail["error"], title=f"Per-feature error of {name}", max_bars=20),
        key="explain_row_bars",
    )
with right:
    st.markdown("**Why a difference can carry a small error**")
    st.markdown(why_small_error(detail), help="Model units: the value after the log transform "
                "(if the column has one), minus the column's centre, divided by its scale "
                "(its training spread). The error is the squared difference in model units "
                "times the column's weight.")  # fmt: skip

st.markdown(
    f"**Input → reconstruction of {widgets.plain(name)}, in original and in model units**"
)


def pairs(inputs, rebuilt) -> list[str]:
    def text(v) -> str:
        return f"{v:.3g}" if isinstance(v, (int, float, np.integer, np.floating)) else str(v)

    return [f"{text(a)} → {text(b)}" for a, b in zip(inputs, rebuilt, strict=True)]


shown = detail[["squared difference", "weight", "error", "share of row error"]].copy()
shown.insert(0, "in model units", pairs(detail["input (model units)"],
                                        detail["reconstruction (model units)"]))  # fmt: skip
shown.insert(0, "in original units", pairs(detail["input"], detail["reconstruction"]))
shown["share of row error"] *= 100  # shown as "5.1%": narrower than the percent format
number = st.column_config.NumberColumn
st.dataframe(
    shown,
    height=min(420, 38 + 35 * len(shown)),
    width="stretch",
    column_config={
        "feature": st.column_config.TextColumn("feature", pinned=True),
        "in original units": st.column_config.TextColumn(
            "original units", help="Input → reconstruction, in the file's units (the most "
            "likely category for a categorical column)."),
        "in model units": st.column_config.TextColumn(
            "model units", help="Input → reconstruction after the log transform (if the "
            "column has one), minus the column's centre, divided by its scale (its training "
            "spread); for a categorical column, the one-hot value of the input's category."),
        "squared difference": number("sq. diff.", format="%.4g", width=66, help="(input − "
            "reconstruction)² in model units, summed over a categorical column's one-hot "
            "columns."),
        "weight": number("weight", format="%.3g", width=58, help="What one unit of squared "
            "difference adds to the row's error: the column's weight (columns the model "
            "rebuilds loosely on training rows count less) divided by the number of model "
            "columns, since the row's error is their mean."),
        "error": number("error", format="%.4g", width=58, help="weight × squared difference"),
        "share of row error": number("share", format="%.1f%%", width=54, help="Share of the row's "
            "error."),
    },
)  # fmt: skip
n_columns = int(model.detector.preprocessor_.n_encoded)
st.caption(
    "Features sorted by error, largest first. In model units, **error = weight × squared "
    "difference** for every feature; categorical columns show the most likely category. "
    f"The feature errors add up to the row's error ({scored.errors[int(row)]:.4g}), the mean "
    f"over the model's {n_columns} input columns (a categorical column counts one per "
    "category)."
)
members = [m for m in ("model 1", "model 2", "nearest prototype") if f"weight, {m}" in detail]
if len(members) > 1:
    two = "model 2" in members
    remembered = "nearest prototype" in members
    with st.expander(
        "The two autoencoders, column by column" if two and not remembered
        else "The reconstructions, column by column"
    ):
        if remembered:
            network = "the two autoencoders' errors" if two else "the autoencoder's error"
            share = ((model.detector.score_calibration_ or {}).get("memory") or {}).get("share")
            if share is not None:  # known normal rows: the prototype has a share of its own
                rest = 1.0 - float(share)
                formula = (
                    f"error = {rest:.0%} × weight 1 × squared diff. 1 + {float(share):.0%} × "
                    "weight p × squared diff. p"
                )
                said = (
                    f"{rest:.0%} {network} and {float(share):.0%} the error of the row's "
                    "nearest **normal prototype** (a typical training row; *p* below; the "
                    "training rows were known to be normal)"
                )
                mean = "the reconstructions' mean weighted by those shares"
            else:
                formula = (
                    "error = (weight 1 × squared diff. 1 + weight 2 × squared diff. 2 + "
                    "weight p × squared diff. p) / 3" if two
                    else "error = (weight 1 × squared diff. 1 + weight p × squared diff. p) / 2"
                )
                said = (
                    f"the mean of {network} and the error of the row's nearest **normal "
                    "prototype** (a typical training row; *p* below)"
                )
                mean = "the mean of the reconstructions"
            st.caption(
                f"This model's score is {said}: a row far from every prototype scores high "
                f"even when the network rebuilds it well. {formula}, all in the first model's "
                f"units. In the table above, *reconstruction* is {mean}, *weight* their "
                "weighted mean weight and *squared difference* their squared differences' "
                "mean weighted by those weights."
            )
        else:
            st.caption(
                "This model scores every row with two autoencoders and averages them: error = "
                "(weight 1 × squared difference 1 + weight 2 × squared difference 2) / 2, all in "
                "the first model's units. In the table above, *reconstruction* is their mean, "
                "*weight* the mean of their weights and *squared difference* their squared "
                "differences' mean weighted by those weights."
            )
        pair = {}
        for k, member in enumerate(members, start=1):
            short = "p" if member == "nearest prototype" else str(k)
            pair[f"reconstruction (model units), {member}"] = number(
                f"reconstr. {short}", format="%.4g")
            pair[f"squared difference, {member}"] = number(
                f"squared diff. {short}", format="%.4g")
            pair[f"weight, {member}"] = number(f"weight {short}", format="%.3g")
        st.dataframe(
            detail[["input (model units)", *pair, "error"]],
            width="stretch",
            column_config={
                "input (model units)": number("input, model units", format="%.4g"),
                "error": number("error", format="%.4g"),
                **pair,
            },
        )
