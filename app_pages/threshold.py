"""Threshold: drag the cut over the error histogram; counts, metrics and cost follow at once.

Everything under the slider is one fragment: a move reruns only it, and it works from the
errors scored once (sorted once, ``ErrorIndex``; metrics from a one-pass ``Sweep``), so a move
never re-scores.
"""

import math
import time

import streamlit as st
from streamlit.logger import get_logger

from aecore.errors import AecoreError
from aecore.evaluation.compare import AUTOENCODER, DETECTORS
from aecore.evaluation.metrics import low_recall_note
from aecore.viz import charts
from aecore.workflows.export import SOURCE_ROW, id_columns
from aecore.workflows.feedback import threshold_from_marks
from ui import cache, session, state, widgets

log = get_logger("dashboard.threshold")  # `--logger.level debug` shows the panel's time
TOP_ROWS = 20
scored, model = widgets.scored_page("Threshold")
ids = id_columns(scored.frame.columns, model.detector.roles_, state.get(state.ROLES))
st.caption(
    f"Model **{model.label}** on **{widgets.data_caption()}**. A row is flagged when its "
    "reconstruction error is **above** the threshold. Moving the threshold never scores the "
    "rows again."
)
model_threshold = float(model.detector.threshold_)
typical = float(scored.index.sorted_errors[scored.n_rows // 2]) or 1.0
input_step = 10 ** math.floor(math.log10(abs(typical))) / 10


def use_slider() -> None:
    session.set_threshold(st.session_state[state.THRESHOLD_SLIDER])


def use_input() -> None:
    value = st.session_state[state.THRESHOLD_INPUT]
    if value is not None and math.isfinite(value):
        session.set_threshold(value)


def use_method(method: str) -> None:
    """Set the threshold by a method, with the parameters typed next to its button."""
    params: dict = {}
    basis = "model" if st.session_state.get("method_basis", "").startswith("the model") else "data"
    if method == "percentile":
        params = {"percentile": float(st.session_state["method_percentile"])}
    elif method == "mean_std":
        params = {"k": float(st.session_state["method_k"])}
    elif method in ("best_f1", "min_cost"):
        params = {"tolerance": int(st.session_state.get("method_tolerance", 0))}
        if method == "min_cost":
            params["c_alarm"] = float(st.session_state.get("method_c_alarm", 1.0))
            params["c_missed"] = float(st.session_state.get("method_c_missed", 1.0))
    try:
        if method == "model":
            value = model_threshold
        else:
            value = scored.choose(method, basis=basis, **params)
    except AecoreError as error:
        state.put(state.THRESHOLD_MESSAGE, str(error))
    else:
        session.set_threshold(value)
        state.put(state.THRESHOLD_MESSAGE, None)


def review_labels():
    """The marks on this data as labels (1 confirmed, 0 false alarm, -1 other), or None."""
    try:
        book = session.reviews_if_any()
    except AecoreError:
        return None
    return None if book is None else book.labels()


def use_marks(method: str) -> None:
    """Set the threshold from the reviewed rows (best F1 or minimum cost on them)."""
    labels = review_labels()
    try:
        if labels is None:
            raise AecoreError("The review marks of this data could not be read.")
        chosen = threshold_from_marks(
            scored.errors, labels, method=method,
            c_alarm=float(st.session_state.get("review_c_alarm", 1.0)),
            c_missed=float(st.session_state.get("review_c_missed", 1.0)),
        )  # fmt: skip
    except AecoreError as error:
        state.put(state.THRESHOLD_MESSAGE, str(error))
        return
    session.set_threshold(chosen.value)
    state.put(state.THRESHOLD_MESSAGE, None)
    state.put(state.REVIEW_THRESHOLD, ((model.key, state.get(state.DATA_KEY)), chosen))


def review_controls(threshold: float) -> None:
    """The threshold from the analyst's marks, and what it rests on."""
    st.markdown("**From your reviews**")
    labels = review_labels()
    n_anomalies = 0 if labels is None else int((labels == 1).sum())
    n_normal = 0 if labels is None else int((labels == 0).sum())
    if n_anomalies == 0 or n_normal == 0:
        st.caption(
            f"{n_anomalies} confirmed anomalies and {n_normal} false alarms are marked on this "
            "data: mark at least one of each on the Review page to set the threshold from them."
        )
        st.page_link(session.REVIEW_PAGE, label="Review flagged rows", icon=":material/rule:")
        return
    # One control a line: this column is about 170 px wide at 1024 px.
    st.button("Best F1 on the reviewed rows", on_click=use_marks, args=("best_f1",),
              key="set_review_f1", width="stretch")  # fmt: skip
    st.number_input("Cost of a false alarm", 0.0, 1e9, 1.0, key="review_c_alarm")
    st.number_input("Cost of a missed anomaly", 0.0, 1e9, 1.0, key="review_c_missed")
    st.button("Lowest cost on the reviewed rows", on_click=use_marks, args=("min_cost",),
              key="set_review_cost", width="stretch")  # fmt: skip
    chosen = state.get(state.REVIEW_THRESHOLD)
    if chosen is not None and chosen[0] == (model.key, state.get(state.DATA_KEY)) and math.isclose(
        chosen[1].value, threshold
    ):
        marks = chosen[1]
        alarms = marks.metrics["false_alarms"]
        plural = "s" if alarms != 1 else ""
        st.caption(
            f"{marks.sentence()} On them it catches {marks.metrics['caught']}, misses "
            f"{marks.metrics['missed']} and raises {alarms} false alarm{plural}."
        )
        if marks.warning:
            st.warning(marks.warning, icon=":material/warning:")
    else:
        st.caption(f"{n_anomalies + n_normal} reviewed rows ({n_anomalies} confirmed anomalies, "
                   f"{n_normal} false alarms) can set it.")  # fmt: skip


@st.fragment
def threshold_panel() -> None:
    """The slider, its live counts and metrics, and every chart that shows the threshold."""
    started = time.perf_counter()
    threshold = session.threshold()
    options = scored.options(threshold, model_threshold)
    st.session_state[state.THRESHOLD_SLIDER] = threshold
    st.session_state[state.THRESHOLD_INPUT] = threshold

    slider_column, input_column = st.columns([2, 1])
    slider_column.select_slider(
        "Threshold (drag it)",
        options=options,
        format_func=widgets.fmt_threshold,
        key=state.THRESHOLD_SLIDER,
        on_change=use_slider,
    )
    input_column.number_input(
        "Exact value", value=None, key=state.THRESHOLD_INPUT, on_change=use_input,
        format="%.6g", step=input_step,
    )  # fmt: skip

    flagged = scored.count_above(threshold)
    # Two rows of three: six tiles in a row cut their values off at 1024 px ("3.1…").
    tiles = [*st.columns(3), *st.columns(3)] if scored.has_labels else st.columns(3)
    tiles[0].metric("Flagged rows", f"{flagged:,}")
    tiles[1].metric("Share flagged", f"{flagged / scored.n_rows:.2%}")
    sweep = None
    if scored.has_labels:
        tolerance = int(st.session_state.get("method_tolerance", 0))
        c_alarm = float(st.session_state.get("method_c_alarm", 1.0))
        c_missed = float(st.session_state.get("method_c_missed", 1.0))
        sweep = scored.sweep(tolerance=tolerance, c_alarm=c_alarm, c_missed=c_missed)
        at = sweep.at(threshold)
        tiles[2].metric("Cost", f"{at['cost']:,.4g}")
        tiles[3].metric("Precision", f"{at['precision']:.3f}")
        tiles[4].metric("Recall", f"{at['recall']:.3f}")
        tiles[5].metric("F1", f"{at['f1']:.3f}")
        st.caption(
            f"{at['false_alarms']:,} false alarms and {at['missed']:,} missed anomalies "
            f"(tolerance {tolerance} rows); cost = {c_alarm:g} × false alarms + {c_missed:g} × "
            "missed."
        )
        note = low_recall_note(at)
        if note:
            st.warning(note, icon=":material/troubleshoot:")
    else:
        tiles[2].caption("No label column with both normal rows and anomalies: precision, "
                         "recall and cost need one (set a *label* role on the Data page).")

    chart_column, control_column = st.columns([2, 1], gap="medium")
    with control_column:
        log_x = st.toggle("Log-scale errors", value=True, key="threshold_log_x")
        log_y = st.toggle("Log-scale counts", value=False, key="threshold_log_y")
        st.markdown("**Set the threshold by a method**")
        st.radio(
            "Percentile and mean + k std use",
            ["this data's errors", "the model's held-out errors"],
            key="method_basis",
            help="The model's held-out errors come from normal validation rows at training "
            "time: a cut at their 99th percentile flags about 1% of normal rows.",
        )
        row = st.columns(2)
        row[0].number_input(
            "Percentile", 50.0, 99.999, 99.0, key="method_percentile", format="%.2f"
        )
        row[1].number_input("k (std)", 0.0, 20.0, 3.0, key="method_k")
        st.button(
            "Cut at this percentile", on_click=use_method, args=("percentile",),
            key="set_percentile", width="stretch",
        )  # fmt: skip
        st.button(
            "Cut at mean + k std", on_click=use_method, args=("mean_std",), key="set_mean_std",
            width="stretch",
        )  # fmt: skip
        if scored.has_labels:
            st.number_input(
                "Tolerance (rows)", 0, 10_000, 0, key="method_tolerance",
                help="An alarm within this many rows (in time order) of a labelled anomaly "
                "counts as correct, and catches it.",
            )  # fmt: skip
            row = st.columns(2)
            row[0].number_input("Cost: false alarm", 0.0, 1e9, 1.0, key="method_c_alarm")
            row[1].number_input("Cost: missed", 0.0, 1e9, 1.0, key="method_c_missed")
            st.button(
                "Best F1", on_click=use_method, args=("best_f1",), key="set_best_f1",
                width="stretch",
            )  # fmt: skip
            st.button(
                "Minimum cost", on_click=use_method, args=("min_cost",), key="set_min_cost",
                width="stretch",
            )  # fmt: skip
        review_controls(threshold)
        st.button(
            "The model's threshold", on_click=use_method, args=("model",), key="set_model",
            width="stretch", help=f"{model_threshold:.4g}, chosen when the model was trained.",
        )  # fmt: skip
        message = state.get(state.THRESHOLD_MESSAGE)
        if message:
            st.error(message)

    with chart_column:
        counts, edges = scored.histogram(log=log_x)
        st.plotly_chart(
            charts.error_histogram(
                counts, edges, threshold, log_x=log_x, log_y=log_y, n_flagged=flagged
            ),
            key="threshold_histogram",
        )
        st.caption(
            f"{scored.n_rows:,} rows in {len(counts)} bins"
            + (" (log-spaced over the positive errors)." if log_x else ".")
        )

    if sweep is not None:
        curve = scored.curve(tolerance=tolerance, c_alarm=c_alarm, c_missed=c_missed)
        left, right = st.columns(2)
        left.plotly_chart(
            charts.cost_curve(
                curve, threshold, at["cost"], c_alarm=c_alarm, c_missed=c_missed, log_x=log_x
            ),
            key="threshold_cost",
        )
        right.plotly_chart(
            charts.metric_curves(curve, threshold, log_x=log_x), key="threshold_metrics"
        )

    timeline = scored.timeline()
    st.plotly_chart(
        charts.error_timeline(timeline, threshold, log_y=log_x), key="threshold_timeline"
    )
    if timeline.x_title == "row":
        st.caption(
            "No time column: rows are shown in file order, numbered as in the file (header = "
            "row 1) and as in the export's `source_row`."
        )

    top = scored.ranked_flagged(threshold, TOP_ROWS)
    st.markdown(f"**Flagged rows, highest error first** ({len(top):,} of {flagged:,} shown)")
    if len(top):
        st.dataframe(
            scored.rows_table(top, threshold, ids=ids), hide_index=True, height=240,
            column_config={"error": st.column_config.NumberColumn(format="%.4g")},
        )  # fmt: skip
        st.caption(
            "`source_row` is each row's number in the file (header = row 1), the same number "
            "the Explain page and the export use."
        )
    else:
        st.caption("No row is above the threshold.")
    classical_panel(threshold)
    log.debug(
        "threshold panel: %d rows in %.1f ms", scored.n_rows, 1e3 * (time.perf_counter() - started)
    )


def disagreement_table(table, name: str, heading: str, shown_of: int) -> None:
    """Rows one detector ranks high and the other does not, named by ``source_row``, beside
    the classical detector ``name``."""
    st.markdown(f"**{heading}** ({len(table):,} of {shown_of:,} shown)")
    if not len(table):
        st.caption("None.")
        return
    positions = table.index.to_numpy()
    shown = table[[c for c in table.columns if not c.endswith(" percentile")]]
    shown = shown.reset_index(drop=True)
    shown.insert(0, SOURCE_ROW, scored.source_rows[positions])
    for offset, column in enumerate(ids, start=1):
        shown.insert(offset, column, scored.frame[column].iloc[positions].to_numpy())
    number = st.column_config.NumberColumn
    title, short = DETECTORS[name], "k-NN" if name == "knn" else "forest"
    config = {
        "autoencoder score": number("error", format="%.4g", help="The autoencoder's "
                                    "reconstruction error."),
        "autoencoder rank": number("error rank", format="%d", help="Rank by the autoencoder's "
                                   f"error: 1 = the highest of the {scored.n_rows:,} rows."),
        f"{title} score": number(f"{short} score", format="%.4g", help=f"The {title}'s score "
                                 "(higher = more unusual)."),
        f"{title} rank": number(f"{short} rank", format="%d", help=f"Rank by the {title}'s "
                                f"score: 1 = the highest of the {scored.n_rows:,} rows."),
    }  # fmt: skip
    st.dataframe(shown, hide_index=True, height=min(320, 38 + 35 * len(shown)),
                 column_config=config)  # fmt: skip


def classical_panel(threshold: float) -> None:
    """The autoencoder beside an IsolationForest and a k-NN distance, fitted on demand."""
    st.subheader("Beside classical detectors")
    st.caption(
        "An IsolationForest and the k-nearest-neighbours distance learn from the same rows as "
        "the autoencoder and score the same rows. They are a comparison only: the "
        "autoencoder's error, threshold and flags stay as they are."
    )
    trained_here = model.kind == "session" and model.data_key == state.get(state.DATA_KEY)
    args = (model.key, state.get(state.DATA_KEY), model.detector, scored.frame, scored.errors)
    classical = cache.classical_scores_for(*args, trained_on_frame=trained_here, fit=False)
    if classical is None:
        slot = st.empty()
        if not slot.button("Compare with classical detectors", key="compare_classical",
                           icon=":material/compare_arrows:"):  # fmt: skip
            st.caption("Fitting them takes a few seconds on large data.")
            return
        slot.empty()
        try:
            classical = cache.classical_scores_for(*args, trained_on_frame=trained_here, fit=True)
        except AecoreError as error:
            st.warning(str(error))
            return
    comparison = classical.compare(threshold)
    flags = (
        f"the {comparison.n_flagged:,} rows the autoencoder flags"
        if comparison.n_flagged
        else "the autoencoder's highest row (none is flagged)"
    )
    for column, (name, title) in zip(st.columns(2, gap="medium"), DETECTORS.items(), strict=True):
        rho = comparison.spearman[name]
        column.markdown(f"**{title}**")
        left, right = column.columns(2)
        left.metric("Rank correlation", "n/a" if math.isnan(rho) else f"{rho:.2f}",
                    help="Spearman's, over all rows: 1 = both rank "
                    "every row in the same order, 0 = no relation.")  # fmt: skip
        shared = comparison.overlap[name]
        right.metric("Shared flags", "n/a" if math.isnan(shared) else f"{shared:.0%}",
                     help=f"Share of {flags} that the {title} "
                     f"also ranks among its {comparison.top_n:,} highest; a random ranking would "
                     f"share about {comparison.chance_overlap:.1%}.")  # fmt: skip
    st.markdown(comparison.summary)
    st.caption(comparison.fit_note + ".")
    name = st.radio("Compare the autoencoder with", list(DETECTORS), format_func=DETECTORS.get,
                    horizontal=True, key="classical_detector")  # fmt: skip
    title = DETECTORS[name]
    groups = comparison.groups(name)
    rows = charts.downsample(groups > 0)
    scores = comparison.knn if name == "knn" else comparison.isolation_forest
    st.plotly_chart(
        charts.detector_agreement(
            comparison.ranks[AUTOENCODER][rows] + 1, comparison.ranks[name][rows] + 1,
            scored.source_rows[rows], groups[rows], comparison.autoencoder[rows], scores[rows],
            detector=title, n_flagged=comparison.n_flagged, top_n=comparison.top_n,
            n_rows=scored.n_rows,
        ),
        key="classical_chart",
    )  # fmt: skip
    disagreement_table(
        comparison.only_classical[name], name,
        f"Ranked in the {title}'s top {comparison.top_n:,}, not flagged by the autoencoder",
        comparison.n_only_classical[name],
    )  # fmt: skip
    if comparison.n_flagged:
        disagreement_table(
            comparison.only_autoencoder[name], name,
            f"Flagged by the autoencoder, outside the {title}'s top {comparison.top_n:,}",
            comparison.n_only_autoencoder[name],
        )  # fmt: skip
    st.caption(
        f"Rank 1 is the row each detector finds the most unusual of the {scored.n_rows:,}. "
        "`source_row` is the row's number in the file (header = row 1), as in the table above "
        "and the export."
    )


threshold_panel()
