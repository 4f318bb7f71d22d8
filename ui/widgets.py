"""Small pieces of UI every page uses: the "what is missing" box, notices, the sidebar."""

from __future__ import annotations

import streamlit as st

from aecore.errors import AecoreError

from . import jobs, runtime, session, state
from .text import plain  # noqa: F401  (pages call widgets.plain)


def page_setup() -> None:
    """Wide layout and session state ready: called once per run by ``app.py``, before
    ``st.navigation`` runs the page (the pages live in ``app_pages/``, not ``pages/``, so
    Streamlit's legacy discovery never runs a page without ``app.py``, deep links included)."""
    st.set_page_config(
        page_title="Autoencoder anomaly finder", page_icon=":material/troubleshoot:", layout="wide"
    )
    runtime.keep_keras_session()
    session.start()


def show_problem(problem: session.Problem) -> None:
    """Say what is missing and link to the page that fixes it."""
    show = {"info": st.info, "warning": st.warning, "error": st.error}[problem.level]
    show(problem.message)
    if problem.reload_sample and st.button(
        "Reload the data", icon=":material/refresh:", key="reload_released"
    ):
        try:
            session.load_sample(problem.reload_sample)
        except AecoreError as error:
            st.error(str(error))
        else:
            st.rerun()
    st.page_link(problem.page, label=f"Go to {problem.link_label}", icon=":material/arrow_forward:")


def show_notice() -> None:
    """Show (once) the message a previous run left, e.g. after a save."""
    notice = state.get(state.NOTICE)
    if notice:
        level, message = notice
        {"success": st.success, "warning": st.warning, "info": st.info}.get(level, st.info)(message)
        state.put(state.NOTICE, None)


def scored_page(title: str):
    """Open a page that needs scored data: title, notice, then the cached scores and model;
    when something is missing, say what and stop the page there."""
    st.title(title)
    show_notice()
    scored, model, problem = session.scored()
    if problem:
        show_problem(problem)
        st.stop()
    return scored, model


def data_caption() -> str:
    frame = state.get(state.DATA_FRAME)
    if frame is None:
        return "no data loaded"
    return f"{plain(state.get(state.DATA_NAME))} · {len(frame):,} rows × {frame.shape[1]} columns"


def model_caption() -> str:
    ref = state.get(state.MODEL_REF)
    if ref is None:
        return "no model"
    if ref["kind"] == "bundle":
        return f"{ref['name']} (saved)"
    entry = state.get(state.SESSION_MODELS).get(ref["id"])
    if entry is None:
        return "no model"
    saved = f"saved as {entry['saved_as']}" if entry.get("saved_as") else "not saved"
    return f"{entry['name']} (this session, {saved})"


def sidebar_status() -> None:
    """What this session is working on, shown on every page."""
    with st.sidebar:
        st.caption("**This session**")
        st.caption(f":material/table: {data_caption()}")
        st.caption(f":material/model_training: {model_caption()}")
        job = state.get(state.JOB)
        if job is not None and job.running:
            doing = "is queued for training" if job.queued else "is training"
            st.caption(f":material/hourglass_top: a model {doing} (see the Train page)")


def fmt_threshold(value: float) -> str:
    """A threshold as shown everywhere: 4 significant digits."""
    return f"{value:.4g}"


def queued_panel(task, *, cancel_label: str, cancel_key: str) -> bool:
    """While ``task`` waits for a worker (``ui.jobs.WorkerPool``): its place in the line and a
    Cancel button that takes it out at once. False (nothing drawn) once it runs."""
    text = jobs.queue_text(task)
    if text is None:
        return False
    st.info(text, icon=":material/hourglass_top:")
    if st.button(cancel_label, icon=":material/stop_circle:", key=cancel_key):
        task.cancel()
        st.rerun()
    return True


def task_panel(task, *, cancel_label: str, cancel_key: str, stopping: str) -> None:
    """The live part of a background task (``ui.jobs.Task``), drawn from a polling fragment:
    the current step with an epoch bar while a network trains (else the share of steps done,
    when the task's params give ``steps``), and a Cancel button. Reruns the page once the task
    has ended."""
    if task is None:
        return
    if not task.running:
        st.rerun()
    if queued_panel(task, cancel_label=cancel_label, cancel_key=cancel_key):
        return
    step = task.messages[-1] if task.messages else "Starting"
    status = jobs.epoch_status(list(task.progress))  # the model training now: first or second
    if status is not None:
        st.progress(
            min(status.done / status.total, 1.0),
            text=f"{step}: {status.text()} · {task.seconds:.0f} s",
        )
    else:
        steps = task.params.get("steps")
        share = min(len(task.messages) / steps, 1.0) if steps else 0.0
        st.progress(share, text=f"{step}… · {task.seconds:.0f} s")
    if task.cancelling:
        st.caption(stopping)
    elif st.button(cancel_label, icon=":material/stop_circle:", key=cancel_key):
        task.cancel()
        st.caption(stopping)
