"""Few labels: pre-train on every row, compare with training from scratch and with the plain
error threshold at several label budgets, then classify the unlabelled rows."""

import streamlit as st

from aecore.classifier import ANOMALY_COLUMN, CLASS_MODES, MIN_LABELLED, save_classifier
from aecore.errors import AecoreError
from aecore.viz import charts
from aecore.workflows.export import SOURCE_ROW_NOTE
from ui import background, cache, session, state, widgets

MAX_CLASSES = 50
REVIEW_MARKS = "Your review marks (Review page)"
BUDGET_CHOICES = [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
DEFAULT_BUDGETS = [10, 50, 200, 1000]
FINAL_APPROACHES = {
    "pretrained": "Pre-trained encoder (frozen) + head",
    "fine_tune": "Pre-trained encoder + head, then the encoder fine-tuned at a low learning rate",
    "scratch": "Same network trained from scratch",
}
SHORT = {
    "pretrained": "the pre-trained encoder",
    "scratch": "training from scratch",
    "unsupervised": "the reconstruction-error threshold",
}
CLASS_MODE_TEXT = {
    "auto": "auto (one class per attack type when the labels name several)",
    "binary": "normal vs anomaly",
    "multiclass": "one class per label value",
}

st.title("Few labels")
widgets.show_notice()
st.markdown(
    "**Pre-training** first trains an autoencoder on every row, labelled or not, so that its "
    "encoder learns what typical rows look like without a single label; a small classifier is "
    "then trained on the encoder's output with only the labelled rows. It helps most when "
    "labels are few and what the encoder learned also separates the classes, but it does not "
    "always win, so the comparison below measures it against the same network trained from "
    "scratch and against the plain reconstruction-error threshold, on your data."
)

problem = session.missing_data()
if problem:
    widgets.show_problem(problem)
    st.stop()
st.caption(f"Data: {widgets.data_caption()}")

roles = state.get(state.ROLES)
columns = [str(c) for c in state.get(state.DATA_FRAME).columns]

# ---------------------------------------------------------------- 1. which column holds labels
st.subheader("1. The labels")
left, right = st.columns([2, 3], gap="large")
with left:
    column = st.selectbox(
        "Column holding the (partial) labels",
        [*columns, REVIEW_MARKS],
        index=columns.index(roles.label) if roles.label in columns else None,
        placeholder="Choose a column",
        key="few_label_column",
        help="An empty cell means the row is not labelled. Labels such as 0/1, 'normal'/"
        "'attack' or attack names ('dos', 'portscan', …) are understood. *Your review marks* "
        "uses the verdicts of the Review page: confirmed anomalies and false alarms.",
    )
    class_mode = st.radio(
        "Classes", CLASS_MODES, format_func=CLASS_MODE_TEXT.get, key="few_label_class_mode"
    )
if column is None:
    st.info("Choose the column that holds the labels (empty cells = unlabelled rows).")
    st.stop()

if column == REVIEW_MARKS:
    try:
        frame, data_key, column = session.review_label_data()
    except AecoreError as error:
        st.error(str(error))
        st.stop()
    practice_note = None
    st.caption(
        "Labels from your review marks: *anomaly* for confirmed anomalies, *normal* for false "
        "alarms; unsure and unreviewed rows are unlabelled."
    )
else:
    frame, data_key, practice_note = session.few_label_data(column)
summary = cache.label_summary(data_key, column, class_mode, frame)
with right:
    # Two a row: three tiles in this column cut "Unlabelled rows" off at 1024 px.
    tiles = [*st.columns(2), *st.columns(2)]
    tiles[0].metric("Labelled rows", f"{summary['labelled']:,}")
    tiles[1].metric("Unlabelled rows", f"{summary['unlabelled']:,}")
    tiles[2].metric("Classes", len(summary["classes"]))
    st.caption(
        " · ".join(
            f"class **{widgets.plain(name)}**: {count:,} rows"
            + (" (normal)" if name in summary["normal"] else "")
            for name, count in summary["classes"].items()
        )
        or "no labelled rows"
    )
if len(summary["classes"]) < 2 or summary["labelled"] < MIN_LABELLED:
    st.warning(
        f"**{widgets.plain(column)}** needs at least {MIN_LABELLED} labelled rows and two "
        "classes (some normal rows and some anomalies) to train a classifier. Choose another "
        "column, or label more rows in the file and load it again on the Data page."
    )
    st.page_link(session.DATA_PAGE, label="Go to Data", icon=":material/arrow_forward:")
    st.stop()

if len(summary["classes"]) > MAX_CLASSES:
    st.warning(
        f"**{widgets.plain(column)}** has {len(summary['classes']):,} different values: that "
        "looks like a measurement or an identifier, not a label. Choose the column that says "
        "which rows are normal and which are anomalies (or which kind of anomaly)."
    )
    st.stop()

if practice_note:
    note_column, button_column = st.columns([4, 1])
    note_column.info(practice_note)
    if button_column.button("Use every label again", key="few_label_all"):
        session.keep_few_labels(column, None)
        st.rerun()
elif summary["unlabelled"] == 0:
    with st.expander(
        "Every row is labelled, so there are no rows to predict. Try the workflow by hiding "
        "most labels?",
        expanded=True,
    ):
        with st.form("few_label_practice", border=False):
            keep = st.columns([1, 2])[0].number_input(
                "Labels to keep (the others are emptied, in this page only)",
                min_value=MIN_LABELLED,
                max_value=summary["labelled"],
                value=min(300, summary["labelled"]),
                step=50,
            )
            if st.form_submit_button("Hide the other labels", icon=":material/visibility_off:"):
                session.keep_few_labels(column, int(keep))
                st.rerun()

setup = {"data_key": data_key, "column": column, "class_mode": class_mode}
task = state.get(state.FEW_LABELS_TASK)


@st.fragment(run_every=background.POLL_SECONDS)
def live_panel() -> None:
    """The running step, an epoch bar while the autoencoder pre-trains, and Cancel."""
    widgets.task_panel(
        state.get(state.FEW_LABELS_TASK),
        cancel_label="Cancel",
        cancel_key="few_label_cancel",
        stopping="Stopping after the current step…",
    )


if task is not None and task.running:
    st.subheader(task.title)
    live_panel()
    st.stop()

if task is not None and task.collect():
    if task.status == "done" and task.kind == "compare":
        state.put(state.FEW_LABELS_COMPARISON, {**task.result, "setup": task.params["setup"]})
    elif task.status == "done" and task.kind == "classifier":
        state.put(state.FEW_LABELS_CLASSIFIER, {**task.result, "setup": task.params["setup"]})
if task is not None and task.status in ("failed", "cancelled"):
    if task.status == "failed":
        st.error(task.error)
    else:
        st.warning(f"{task.title}: cancelled after {task.seconds:.0f} s; nothing was kept.")

# ---------------------------------------------------------------- 2. compare label budgets
st.subheader("2. Compare three approaches at several label budgets")
st.caption(
    "A share of the labelled rows is held out once; at each budget that many of the other "
    "labelled rows train (a) the pre-trained encoder, frozen, plus a small head, (b) the same "
    "network from scratch, and (c) set the threshold on the unsupervised reconstruction error. "
    "All three are scored on the same held-out rows, as normal vs anomaly."
)
pool = int(summary["labelled"] * 0.7)
choices = [b for b in BUDGET_CHOICES if MIN_LABELLED <= b <= pool] or [min(pool, MIN_LABELLED)]
with st.form("few_label_compare"):
    budgets = st.multiselect(
        "Label budgets (labelled rows used to train)",
        choices,
        default=[b for b in DEFAULT_BUDGETS if b in choices] or choices[:1],
        help=f"About {pool:,} labelled rows are left for training once 30% are held out.",
        key="few_label_budgets",
    )
    settings = st.columns(4)
    pretrain_epochs = settings[0].number_input(
        "Pre-training epochs (0 = automatic)", 0, 1000, 0, key="few_label_pretrain_epochs"
    )
    classifier_epochs = settings[1].number_input(
        "Classifier epochs (at most)", 1, 1000, 150, key="few_label_classifier_epochs",
        help="Early stopping on a labelled validation part usually ends it sooner.",
    )  # fmt: skip
    repeats = settings[2].number_input(
        "Draws per budget", 1, 10, 1, key="few_label_repeats",
        help="Each draw picks other labelled rows; more draws give a steadier average (and "
        "error bars) at the cost of time.",
    )  # fmt: skip
    fine_tune = settings[3].checkbox(
        "Fine-tune the encoder", key="few_label_fine_tune",
        help="After training the head, unfreeze the encoder and train on at a low learning rate.",
    )  # fmt: skip
    run = st.form_submit_button("Run the comparison", type="primary", key="few_label_run")
if run:
    if not budgets:
        st.error("Choose at least one label budget.")
        st.stop()
    work = background.compare_work(
        frame, column, sorted(budgets), roles=roles, class_mode=class_mode, fine_tune=fine_tune,
        repeats=int(repeats), pretrain_epochs=int(pretrain_epochs) or None,
        classifier_epochs=int(classifier_epochs),
    )  # fmt: skip
    steps = 1 + 2 * len(budgets) * int(repeats)
    state.put(
        state.FEW_LABELS_TASK,
        background.start(
            "compare",
            f"Comparing at {len(budgets)} label budget(s)",
            work,
            params={"setup": setup, "steps": steps},
        ),
    )
    st.rerun()

comparison = state.get(state.FEW_LABELS_COMPARISON)
if comparison is not None and comparison["setup"] == setup:
    table = comparison["table"]
    for note in table.attrs.get("notes", []):
        st.info(note, icon=":material/info:")
    if table.empty:
        st.warning("No budget could be compared: choose smaller budgets.")
    else:
        lines = []
        for budget, rows in table.groupby("budget"):
            ranked = rows.sort_values("f1", ascending=False)
            best, second = ranked.iloc[0], ranked.iloc[1]
            if best["f1"] - second["f1"] < 0.02:
                said = (
                    f"{SHORT[best['approach']]} and {SHORT[second['approach']]} about equal "
                    f"(F1 {best['f1']:.2f} and {second['f1']:.2f})"
                )
            else:
                said = (
                    f"**{SHORT[best['approach']]}** did best (F1 {best['f1']:.2f}), then "
                    f"{SHORT[second['approach']]} ({second['f1']:.2f})"
                )
            lines.append(f"- {int(budget):,} labels: {said}")
        chart_column, summary_column = st.columns([3, 2], gap="medium")
        chart_column.plotly_chart(charts.label_budget_curves(table), key="few_label_chart")
        with summary_column:
            st.markdown("**Which approach won**\n" + "\n".join(lines))
            repeats = int(table["repeats"].iloc[0])
            st.caption(
                f"Scored on {int(table['n_test'].iloc[0]):,} held-out labelled rows, "
                f"{repeats} draw(s) of labelled rows per budget."
                + (
                    " With one draw, which rows happen to be labelled moves F1 a lot: more "
                    "draws give a steadier answer (and error bars)."
                    if repeats == 1
                    else " Error bars: the spread over the draws."
                )
            )
        shown = table[["budget", "approach_label", "f1", "pr_auc", "precision", "recall"]]
        st.dataframe(
            shown.rename(columns={"approach_label": "approach"}),
            hide_index=True,
            column_config={
                "budget": st.column_config.NumberColumn("labels used", format="%d"),
                "approach": st.column_config.TextColumn(width="large"),
                "f1": st.column_config.NumberColumn("F1", format="%.3f"),
                "pr_auc": st.column_config.NumberColumn(
                    "PR-AUC", format="%.3f",
                    help="Area under the precision-recall curve: how well the scores rank "
                    "anomalies above normal rows, whatever the cut.",
                ),  # fmt: skip
                "precision": st.column_config.NumberColumn(format="%.3f"),
                "recall": st.column_config.NumberColumn(format="%.3f"),
            },
        )
elif comparison is not None:
    st.caption("The last comparison was run on other data or another label column.")

# ---------------------------------------------------------------- 3. the final classifier
st.subheader("3. Classify the unlabelled rows")
default_approach = "pretrained"
if comparison is not None and comparison["setup"] == setup and not comparison["table"].empty:
    table = comparison["table"]
    last = table[(table["budget"] == table["budget"].max()) & (table["approach"] != "unsupervised")]
    default_approach = str(last.sort_values("f1", ascending=False)["approach"].iloc[0])
with st.form("few_label_final"):
    approach = st.radio(
        "Classifier",
        list(FINAL_APPROACHES),
        index=list(FINAL_APPROACHES).index(default_approach),
        format_func=FINAL_APPROACHES.get,
        key="few_label_approach",
        help="Pre-selected: the classifier with the better F1 at the largest budget compared.",
    )
    st.caption(
        f"Trains on all {summary['labelled']:,} labelled rows (with class weights for "
        f"imbalance) and gives every one of the {summary['unlabelled']:,} unlabelled rows its "
        "class probabilities, weighed by how common each class is among the labelled rows (so "
        "a rare attack class does not raise a flood of false alarms)."
        + (
            ""
            if comparison is not None and comparison["setup"] == setup
            else " Without a comparison run first, the autoencoder is pre-trained here too."
        )
    )
    final = st.form_submit_button(
        "Train and predict", type="primary", key="few_label_train",
        disabled=summary["unlabelled"] == 0,
    )  # fmt: skip
if summary["unlabelled"] == 0:
    st.caption("No unlabelled rows to predict (see the option above to hide most labels).")
if final:
    reuse = comparison["detector"] if comparison and comparison["setup"] == setup else None
    work = background.classifier_work(
        frame, column, detector=reuse, roles=roles, approach=approach, class_mode=class_mode,
        classifier_epochs=int(st.session_state.get("few_label_classifier_epochs", 150)),
        pretrain_epochs=int(st.session_state.get("few_label_pretrain_epochs", 0)) or None,
    )  # fmt: skip
    state.put(
        state.FEW_LABELS_TASK,
        background.start(
            "classifier",
            "Training the classifier",
            work,
            params={"setup": {**setup, "approach": approach}, "steps": 3},
        ),
    )
    st.rerun()

result = state.get(state.FEW_LABELS_CLASSIFIER)
if result is not None and {k: result["setup"][k] for k in setup} == setup:
    classifier, predictions = result["classifier"], result["predictions"]
    history = classifier.history_.get("head") or {}
    st.success(
        f"{FINAL_APPROACHES[result['setup']['approach']]}: trained on "
        f"{classifier.n_labelled_:,} labelled rows ({history.get('epochs_run', 0)} epochs), "
        f"classes {', '.join(map(str, classifier.classes_))}."
    )
    likely = int((~predictions["predicted_class"].isin(classifier.normal_classes_)).sum())
    st.markdown(
        f"**{likely:,}** of the {len(predictions):,} unlabelled rows are predicted as an "
        "anomaly class. Rows are sorted by `p_anomaly` (the probability of not being normal), "
        f"highest first. {SOURCE_ROW_NOTE}"
    )
    st.dataframe(
        predictions.head(1000),
        hide_index=True,
        height=300,
        column_config={
            c: st.column_config.NumberColumn(format="%.3f")
            for c in [ANOMALY_COLUMN, *(f"p_{name}" for name in classifier.classes_)]
            if c in predictions.columns
        },
    )
    if len(predictions) > 1000:
        st.caption(f"The first 1,000 of {len(predictions):,} rows are shown; the file has all.")
    st.download_button(
        f"Download the {len(predictions):,} predictions as CSV",
        data=result["csv"],
        file_name=f"{column}-predictions.csv",
        mime="text/csv",
        icon=":material/download:",
        key="few_label_download",
    )
    with st.form("few_label_save"):
        st.markdown("**Save this classifier** to `models/` (kind *classifier*; a name already "
                    "used keeps the old one as a previous version).")
        name = st.text_input("Name", value=f"{column}-classifier"[:64], max_chars=64)
        description = st.text_input("Description (optional)")
        if session.models_read_only():
            st.caption(session.READ_ONLY_NOTE)
        if st.form_submit_button(
            "Save", icon=":material/save:", disabled=session.models_read_only()
        ):
            try:
                session.check_models_writable()
                folder = save_classifier(
                    classifier, name, models_dir=session.models_dir(), description=description
                )
            except AecoreError as error:
                st.error(str(error))
            else:
                cache.clear_model_caches()
                st.success(f"Saved as `{folder}`.")
