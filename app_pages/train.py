"""Train: choose an architecture and its settings, watch it train live, then save it."""

import re

import streamlit as st

from aecore import store
from aecore.detector import default_test_share
from aecore.errors import AecoreError
from aecore.evaluation.metrics import evaluation_scope_text
from aecore.io import inference
from aecore.model.architectures import ARCHITECTURES
from aecore.model.preprocessing import SCALINGS
from aecore.scored import labels_of
from aecore.viz import charts
from ui import cache, jobs, session, state, widgets

st.title("Train a model")
widgets.show_notice()

problem = session.missing_data()
if problem:
    widgets.show_problem(problem)
    st.stop()
frame = state.get(state.DATA_FRAME)
roles = state.get(state.ROLES)
data_name = state.get(state.DATA_NAME)
st.caption(f"Data: {widgets.data_caption()}")
label_like = inference.label_like_message(
    cache.label_like_inputs(state.get(state.DATA_KEY), cache.roles_json(roles), frame, roles)
)
if label_like:  # an input that looks like the answer: say so before anything is trained
    st.warning(label_like, icon=":material/warning:")
    st.page_link(session.DATA_PAGE, label="Change the roles on the Data page",
                 icon=":material/table_view:")  # fmt: skip


@st.fragment(run_every=jobs.POLL_SECONDS)
def live_panel() -> None:
    """Progress bar, loss curve and Cancel, redrawn every half second while training runs."""
    job = state.get(state.JOB)
    if job is None:
        return
    if not job.running:
        st.rerun()
    if widgets.queued_panel(job, cancel_label="Cancel training", cancel_key="cancel_training"):
        return
    progress = list(job.progress)
    status = jobs.epoch_status(progress)
    if status is not None:
        if status.second:  # the second model's epochs only (see AnomalyDetector.second_model)
            progress = [p for p in progress if p.stage == "second"]
        done, total = status.done, status.total
        text = f"Epoch {done} of at most {total} (early stopping may end it sooner)"
        if status.second:
            text = (
                "Second model (trained without the rows the first finds most unusual): "
                + text[0].lower()
                + text[1:]
            )
        text += f" · {job.seconds:.0f} s"
        st.progress(min(done / total, 1.0), text=text)
        figure = charts.loss_curve(
            [p.loss for p in progress],
            [p.val_loss for p in progress if p.val_loss is not None],
            best_epoch=progress[-1].best_epoch,
            total_epochs=total,
        )
        st.plotly_chart(figure, key="live_loss")
    else:
        st.progress(0.0, text=f"Preparing the data and building the model… {job.seconds:.0f} s")
    if job.cancelling:
        st.caption("Stopping after the current batch…")
    elif st.button("Cancel training", icon=":material/stop_circle:", key="cancel_training"):
        job.cancel()
        st.caption("Stopping after the current batch…")


def default_name(architecture: str, trained_on_data: str) -> str:
    """A save name from the data the model was trained on (never the data loaded since)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", trained_on_data.rsplit(".", 1)[0]).strip("-") or "data"
    return f"{stem}-{architecture}"[:64]


job = state.get(state.JOB)
if job is not None and job.running:
    st.subheader(f"Training a {job.params['architecture']} autoencoder on {job.data_name}")
    live_panel()
    st.stop()

if job is not None and job.collect():
    if job.detector is not None:
        name = default_name(job.params["architecture"], job.data_name)
        job.model_id = session.add_session_model(
            job.detector, name, job.data_key, job.data_name
        )
    st.rerun()

# ---------------------------------------------------------------- result of the last training
if job is not None:
    st.subheader("Last training")
    history = job.detector.history_ if job.detector is not None else {}
    # The job says which data it trained on; a model trained on other data is never presented
    # as this data's model.
    other_data = job.data_key != state.get(state.DATA_KEY)
    try:
        current = session.current_model()
    except AecoreError:
        current = None
    is_current = (
        current is not None and job.model_id is not None and current.session_id == job.model_id
    )
    if job.status == "failed":
        st.error(job.error)
    elif job.status == "cancelled" and job.detector is None:
        st.warning("Training was cancelled before it started; nothing was trained.")
    elif job.status == "cancelled":
        st.warning(
            f"Training was cancelled after {history.get('epochs_run', 0)} epoch(s). The model "
            f"keeps the weights of its best epoch ({history.get('best_epoch', 0)}) and can be used."
        )
    else:
        stopped = "stopped early" if history.get("stopped_early") else "ran every epoch"
        st.success(
            f"Trained in {job.seconds:.0f} s on **{job.data_name}**: "
            f"{history.get('epochs_run', 0)} epochs ({stopped}), best epoch "
            f"{history.get('best_epoch', 0)}."
            + (" It is now the current model." if is_current and not other_data else "")
        )
    if other_data:
        st.info(
            f"This model was trained on **{job.data_name}**, not on the data loaded now "
            f"(**{data_name}**)."
            + (
                f" It is still the current model: the pages score **{data_name}** with it."
                if is_current
                else ""
            )
            + " Train a new model below for the current data."
        )
    detector = job.detector
    if detector is not None:
        cols = st.columns(5)
        cols[0].metric("Architecture", detector.architecture)
        cols[1].metric("Code size", detector.code_size_)
        cols[2].metric("Input columns", f"{detector.n_features_in_}")
        cols[3].metric("Training rows", f"{detector.n_train_rows_:,}")
        best = history.get("best_val_loss")
        cols[4].metric(
            "Best val. loss", "–" if best is None else f"{best:.4g}",
            help="The lowest validation loss (MSE in standardised units) of the epochs run.",
        )  # fmt: skip
        choice = detector.threshold_choice_
        how = ", ".join(
            f"{key} {value:g}" for key, value in choice.params.items() if key in ("percentile", "k")
        )
        st.caption(
            f"Threshold {detector.threshold_:.4g} ({choice.method}{', ' + how if how else ''}); "
            f"trained on {detector.trained_on_} rows."
        )
        used = detector.training_
        st.caption(
            f"Schedule: at most {used['epochs']} epochs, batches of "
            f"{min(int(used['batch_size']), detector.n_train_rows_):,}, learning rate "
            f"{used['learning_rate']:.4g}, early-stopping patience {used['patience']}."
        )
        for summary in (detector.second_model_summary(), detector.memory_summary()):
            if summary:
                st.caption(summary)
        # Infinite cells and sentinels (3.4e38) in the training rows: imputed, one note a column.
        notes = getattr(detector.preprocessor_, "notes_", None) or []
        if notes:
            st.info(
                "**In the training data:**\n" + "\n".join(f"- {widgets.plain(n)}" for n in notes),
                icon=":material/info:",
            )
        evaluation = getattr(detector, "evaluation_", None)
        if evaluation:
            cols = st.columns(4)
            cols[0].metric("Precision", f"{evaluation['precision']:.2f}")
            cols[1].metric("Recall", f"{evaluation['recall']:.2f}")
            cols[2].metric("F1", f"{evaluation['f1']:.2f}")
            cols[3].metric("ROC AUC", f"{evaluation['roc_auc']:.3f}")
            st.caption(f"Against the labels, {evaluation_scope_text(evaluation)}.")
        st.plotly_chart(
            charts.loss_curve(
                history.get("loss", []),
                history.get("val_loss", []),
                best_epoch=history.get("best_epoch"),
            ),
            key="final_loss",
        )
        st.page_link(session.THRESHOLD_PAGE, label="Set its threshold", icon=":material/tune:")

        model_id = job.model_id
        with st.form("save_model"):
            st.markdown("**Save this model** to `models/` (a name already used keeps the old "
                        "model as a previous version).")
            name = st.text_input(
                "Name", value=default_name(detector.architecture, job.data_name), max_chars=64
            )
            description = st.text_input("Description (optional)")
            own_threshold = None
            if current is not None and current.session_id == model_id:
                chosen = state.get(state.THRESHOLD)
                if chosen is not None and state.get(state.THRESHOLD_FOR) and (
                    state.get(state.THRESHOLD_FOR)[0] == current.key
                ) and abs(chosen - detector.threshold_) > 1e-12:
                    own_threshold = chosen
            keep_threshold = False
            if own_threshold is not None:
                keep_threshold = st.checkbox(
                    f"Save with the threshold set on the Threshold page ({own_threshold:.4g}) "
                    f"instead of {detector.threshold_:.4g}",
                    value=True,
                )
            if session.models_read_only():
                st.caption(session.READ_ONLY_NOTE)
            if st.form_submit_button(
                "Save", icon=":material/save:", disabled=session.models_read_only()
            ):
                try:
                    session.check_models_writable()
                    if keep_threshold:
                        detector.set_threshold(own_threshold)  # this session's own model
                    folder = store.save(detector, name, description=description)
                except AecoreError as error:
                    st.error(str(error))
                else:
                    cache.clear_model_caches()
                    session.mark_saved(model_id, name)
                    st.success(f"Saved as `{folder}`.")

# ---------------------------------------------------------------- a new training
st.subheader("Train a new model")
try:
    inference.check_trainable(frame, roles)
except AecoreError as error:
    st.warning(f"This data cannot be trained on yet: {error}")
    st.page_link(session.DATA_PAGE, label="Fix the column roles", icon=":material/table:")
    st.stop()

labelled = labels_of(frame, roles.label) is not None

architecture = st.radio(
    "Architecture",
    list(ARCHITECTURES),
    index=list(ARCHITECTURES).index("dense"),
    captions=list(ARCHITECTURES.values()),
    horizontal=False,
    key="train_architecture",
)

# Not a form: the schedule note below follows every setting as it changes.
with st.container(border=True):
    # Two columns a row: in three, drop-down and checkbox labels were cut off at 1024 px.
    left, middle = st.columns(2)
    with left:
        st.markdown("**Network**")
        code_size = st.number_input(
            "Code size (0 = automatic)", min_value=0, max_value=256, value=0,
            help="Automatic: the number of principal components that explain 80% of the "
            "training rows' variance (between 2 and half the number of inputs).",
        )  # fmt: skip
        hidden_text = st.text_input(
            "Hidden layer widths", value="auto",
            help="Encoder side, e.g. '64, 16' (the decoder mirrors it). 'auto': about twice "
            "the inputs, narrowing towards the code.",
        )  # fmt: skip
        activation = st.selectbox("Activation", ["relu", "tanh", "elu", "selu"])
        scaling = st.selectbox("Scaling", list(SCALINGS), help="How numeric inputs are scaled.")
    with middle:
        st.markdown("**Training**")
        # Empty = automatic: the detector picks the value for the rows that will train (as
        # the CLI and Python do); the note below the fields says which values that gives.
        epochs = st.number_input(
            "Epochs (at most)", 1, 1000, None, placeholder="auto", key="train_epochs"
        )
        batch_size = st.number_input(
            "Batch size", 1, 65536, None, placeholder="auto", key="train_batch_size"
        )
        learning_rate = st.number_input(
            "Learning rate", 1e-6, 1.0, None, format="%.5f", placeholder="auto",
            key="train_learning_rate",
        )  # fmt: skip
        patience = st.number_input(
            "Early-stopping patience (epochs)", 1, 100, None, placeholder="auto",
            key="train_patience",
        )  # fmt: skip
        schedule_note = st.empty()
        seed = st.number_input("Random seed", 0, 2**31 - 1, 0)
    right, threshold_column = st.columns(2)
    with right:
        st.markdown("**Rows**")
        split = st.radio(
            "Split", ["random", "chronological"], horizontal=True,
            index=1 if roles.time else 0,
            help="Chronological keeps the earliest rows (by the time column, else row order) "
            "for training: no future row leaks into training.",
        )  # fmt: skip
        validation_share = st.slider("Validation share", 0.05, 0.5, 0.2, 0.05)
        auto_test_share = default_test_share(labels_of(frame, roles.label))
        test_share = st.slider(
            "Test share", 0.0, 0.5, auto_test_share, 0.05,
            help="Rows held out of training and of the threshold; the metrics after training "
            "are measured on them alone. With labels of both kinds, 20% by default (the latest "
            "rows with a time column, else drawn stratified by label).",
        )  # fmt: skip
        train_on = st.selectbox(
            "Train on",
            ["auto", "all", "normal"],
            format_func={
                "auto": "auto (normal rows if labelled)",
                "all": "all rows",
                "normal": "normal rows only (needs labels)",
            }.get,
            help="With labels, training on normal rows only is the classic novelty setting.",
        )
        second_model = st.checkbox(
            "Second model without outliers",
            value=True,
            help="When training on unlabelled rows, which may hide anomalies that the network "
            "learns to rebuild: a second autoencoder learns the rows less those the first "
            "scores far above the rest (more than three robust standard deviations above the "
            "median, at most 10% of them), and every score is the mean of the two. About twice "
            "the training time. Not used with labelled normal rows, windows or the variational "
            "model. Turn it off when you know every training row is normal.",
        )
        memory = st.checkbox(
            "Compare with normal prototypes",
            value=True,
            help="Keep up to 256 typical training rows (k-means centres) and score each row "
            "also by its difference from the nearest one: a row unlike every normal row scores "
            "high even when the network rebuilds it well, and Explain shows which columns "
            "differ from that prototype. Not used with the linear or variational model. It "
            "helps most when the training rows are normal; when they hide a whole group of "
            "anomalies, the group gets prototypes of its own (bench/RESULTS.md).",
        )
    with threshold_column:
        st.markdown("**Threshold**")
        methods = ["percentile", "mean_std"] + (["best_f1", "min_cost"] if labelled else [])
        threshold_method = st.selectbox(
            "Initial threshold", methods,
            format_func={
                "percentile": "percentile of held-out errors",
                "mean_std": "mean + k std of held-out errors",
                "best_f1": "best F1 against the labels",
                "min_cost": "minimum cost against the labels",
            }.get,
        )  # fmt: skip
        percentile = st.number_input("Percentile (percentile method)", 50.0, 99.999, 99.0)
        k_std = st.number_input("k (mean + k std method)", 0.0, 20.0, 3.0)
    extra: dict = {}
    if architecture == "sparse":
        extra["l1"] = st.number_input("L1 penalty on the code", 0.0, 1.0, 1e-4, format="%.5f")
    elif architecture == "denoising":
        extra["noise_std"] = st.number_input(
            "Input noise (std)", 0.0, 1.0, 0.1,
            help="Inputs are standardised: 1 is as much noise as signal.",
        )  # fmt: skip
        extra["dropout"] = st.number_input("Input dropout", 0.0, 0.9, 0.0)
    elif architecture == "conv":
        extra["window"] = st.number_input(
            "Window of consecutive rows (1 = convolve over the features of one row)", 1, 256, 1
        )
    elif architecture == "variational":
        kl = st.number_input("KL weight (0 = automatic: 1 / inputs)", 0.0, 10.0, 0.0)
        extra["kl_weight"] = kl or None
        extra["score_kl"] = st.checkbox("Add the KL term to the anomaly score")
    hidden, hidden_error = None, False
    if hidden_text.strip().lower() not in ("", "auto"):
        try:
            hidden = [int(part) for part in re.split(r"[,\s]+", hidden_text.strip()) if part]
            if not hidden or min(hidden) < 1:
                raise ValueError
        except ValueError:
            hidden, hidden_error = None, True
    params = {
        "architecture": architecture,
        "code_size": int(code_size) or None,
        "hidden_sizes": hidden,
        "activation": activation,
        "scaling": scaling,
        # An empty schedule field is None: the detector decides, knowing how many rows train
        # and how many models share the time budget (the same values the note shows).
        "epochs": None if epochs is None else int(epochs),
        "batch_size": None if batch_size is None else int(batch_size),
        "learning_rate": None if learning_rate is None else float(learning_rate),
        "patience": None if patience is None else int(patience),
        "split": split,
        "validation_share": float(validation_share),
        # Untouched, the detector decides (held out only when there are labels to measure).
        "test_share": "auto" if test_share == auto_test_share else float(test_share),
        "train_on": train_on,
        "second_model": "auto" if second_model else None,
        "memory": "auto" if memory else None,
        "threshold_method": threshold_method,
        "threshold_params": (
            {"percentile": float(percentile)} if threshold_method == "percentile"
            else {"k": float(k_std)} if threshold_method == "mean_std"
            else None
        ),
        "roles": roles,
        "random_state": int(seed),
        **extra,
    }  # fmt: skip
    plan_error = None
    try:
        plan = jobs.planned_schedule(frame, params, state.get(state.DATA_KEY))
    except AecoreError as error:
        plan_error = str(error)
        schedule_note.warning(plan_error)
    else:
        schedule_note.caption(jobs.schedule_text(plan))
    submitted = st.button("Start training", type="primary", key="train_submit")

if submitted:
    if hidden_error:
        st.error("Hidden layer widths must be whole numbers such as '64, 16', or 'auto'.")
        st.stop()
    if plan_error:  # e.g. a setting out of range or a network over the memory budget
        st.error(plan_error)
        st.stop()
    state.put(
        state.JOB,
        jobs.start(frame, params, data_name=data_name, data_key=state.get(state.DATA_KEY)),
    )
    st.rerun()
