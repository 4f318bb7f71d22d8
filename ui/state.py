"""Every session-state key the dashboard uses, with its default, initialised in one place.

Session state is per browser session: one analyst's data, models and threshold are never
visible to another session.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import MutableMapping
from typing import Any

import streamlit as st

DATA_FRAME = "data_frame"  # the current DataFrame
DATA_KEY = "data_key"  # content fingerprint of the current data (cache key)
DATA_NAME = "data_name"  # file name shown to the analyst
DATA_SOURCE = "data_source"  # "sample", "upload" or "models page"
ROLES = "roles"  # ColumnRoles of the current data
ROLES_MEMORY = "roles_memory"  # {data key: roles dict}: roles the analyst chose, per file content
UPLOAD_SEEN = "upload_seen"  # file id of the last upload processed (each is read once)
UPLOAD_ERROR = "upload_error"  # (file id, message) of the last upload that failed
MODEL_REF = "model_ref"  # {"kind": "bundle", "name", "version"} or {"kind": "session", "id"}
# Every piece of state below that depends on the data says which data it came from (a data
# key, or a key that contains it) and is never shown as current for other data.
SESSION_MODELS = "session_models"  # id -> {"detector", "name", "data_key", "data_name", ...}
THRESHOLD = "threshold"  # the analyst's threshold (the models are never changed by it)
THRESHOLD_FOR = "threshold_for"  # which (model, data) the threshold belongs to
JOB = "training_job"  # ui.jobs.TrainingJob, running or finished (data_key: its data)
DEFAULT_LOADED = "default_loaded"  # the embedded sample + demo model were set up
SCORES = "scores_cache"  # {(model_key, data_key): Scores}, this session's scoring results
SCORED = "scored_cache"  # (key, aecore.scored.ScoredData) for the current model and data
NOTICE = "notice"  # one message to show once on the next run (e.g. "model saved")
THRESHOLD_MESSAGE = "threshold_message"  # why a threshold method could not be applied
MODELS_UPLOAD_SEEN = "models_upload_seen"  # file id of the last CSV scored on the Models page
MODELS_UPLOAD_RESULT = "models_upload_result"  # ("ok"|"error", file name, report or message)
FEW_LABELS_TASK = "few_labels_task"  # ui.background.Task: the comparison or the final classifier
FEW_LABELS_COMPARISON = "few_labels_comparison"  # {"table", "detector", "setup"} of the last run
FEW_LABELS_CLASSIFIER = "few_labels_classifier"  # {"classifier", "predictions", "setup", ...}
FEW_LABELS_KEEP = "few_labels_keep"  # (data key, column, n): labels kept to practise, or None
DRIFT_BATCH = "drift_batch"  # {"frame", "key", "name", "source"}: the new batch to check
DRIFT_UPLOAD_SEEN = "drift_upload_seen"  # file id of the last batch upload processed
DRIFT_UPLOAD_ERROR = "drift_upload_error"  # (file id, message) of the last batch that failed
# (key, aecore.evaluation.drift.DriftReport) for the chosen model and batch
DRIFT_REPORT = "drift_report"
DRIFT_TASK = "drift_task"  # ui.background.Task retraining a model
DRIFT_RETRAINED = "drift_retrained"  # what the last retraining produced, for the page to say
# (key, aecore.evaluation.compare.ClassicalScores) for the current model and data, once asked for
CLASSICAL = "classical_scores"
REVIEWS = "reviews"  # (data key, aecore.workflows.review.ReviewBook) for the current data
REVIEW_CURSOR = "review_cursor"  # (data key, position) of the row shown on the Review page
REVIEW_SUGGESTIONS = "review_suggestions"  # (key, feedback.Suggestions): the current batch
REVIEW_TASK = "review_task"  # ui.background.Task retraining the model with the marks
REVIEW_FEEDBACK = "review_feedback"  # (key, dict): what the last retraining with marks changed
# ((model key, data key), MarksThreshold): the threshold last set from the marks, for its note
REVIEW_THRESHOLD = "review_threshold"
REPORT = "report"  # (key, bytes): the HTML report last built on the Export page
REVIEW_LABELS = "review_labels"  # (key, frame): the data with the marks as a label column
LAST_ACTIVITY = "last_activity"  # time.time() of this session's last page run (idle release)
RELEASED = "released"  # {"name", "source", "rows", "minutes"}: the data released while idle

DEFAULTS: dict[str, Any] = {
    DATA_FRAME: None,
    DATA_KEY: None,
    DATA_NAME: "",
    DATA_SOURCE: "",
    ROLES: None,
    ROLES_MEMORY: {},
    UPLOAD_SEEN: None,
    UPLOAD_ERROR: None,
    MODEL_REF: None,
    SESSION_MODELS: {},
    THRESHOLD: None,
    THRESHOLD_FOR: None,
    JOB: None,
    DEFAULT_LOADED: False,
    SCORES: {},
    SCORED: None,
    NOTICE: None,
    THRESHOLD_MESSAGE: None,
    MODELS_UPLOAD_SEEN: None,
    MODELS_UPLOAD_RESULT: None,
    FEW_LABELS_TASK: None,
    FEW_LABELS_COMPARISON: None,
    FEW_LABELS_CLASSIFIER: None,
    FEW_LABELS_KEEP: None,
    DRIFT_BATCH: None,
    DRIFT_UPLOAD_SEEN: None,
    DRIFT_UPLOAD_ERROR: None,
    DRIFT_REPORT: None,
    DRIFT_TASK: None,
    DRIFT_RETRAINED: None,
    CLASSICAL: None,
    REVIEWS: None,
    REVIEW_CURSOR: None,
    REVIEW_SUGGESTIONS: None,
    REVIEW_TASK: None,
    REVIEW_FEEDBACK: None,
    REVIEW_THRESHOLD: None,
    REPORT: None,
    REVIEW_LABELS: None,
    LAST_ACTIVITY: None,
    RELEASED: None,
}

# Idle release: a session that runs no page for this long gives back its data (the frame, its
# scores, the drift batch and the few-label results); its models and settings are kept.
IDLE_ENV = "AECORE_IDLE_RELEASE_MINUTES"
DEFAULT_IDLE_RELEASE_MINUTES = 30
RELEASED_KEYS = (
    DATA_FRAME, DATA_KEY, ROLES, SCORES, SCORED, DRIFT_BATCH, DRIFT_REPORT,
    FEW_LABELS_COMPARISON, FEW_LABELS_CLASSIFIER, CLASSICAL, REVIEW_SUGGESTIONS,
    REVIEW_FEEDBACK, REPORT, REVIEW_LABELS,
)  # fmt: skip
SWEEP_SECONDS = 60
_TASK_KEYS = (JOB, FEW_LABELS_TASK, DRIFT_TASK, REVIEW_TASK)
_IDLE_LOCK = threading.Lock()
_sweeper: threading.Thread | None = None
log = logging.getLogger(__name__)

# Widget keys that pages share (set from code before the widget is drawn).
THRESHOLD_SLIDER = "threshold_slider"
THRESHOLD_INPUT = "threshold_input"


def init() -> None:
    """Give every key its default (a fresh copy) unless this session already has it, and note
    the session's activity (idle release). Keys and access only: the embedded default data and
    model are set up by ``ui.session.start``."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = copy.copy(value)
    with _IDLE_LOCK:
        release_if_idle(st.session_state)
        st.session_state[LAST_ACTIVITY] = time.time()
    _start_sweeper()


def get(key: str) -> Any:
    """The value of a known key (initialising the session if needed)."""
    if key not in DEFAULTS:
        raise KeyError(f"Unknown session key {key!r}: add it to ui.state.DEFAULTS.")
    if key not in st.session_state:
        init()
    return st.session_state[key]


def put(key: str, value: Any) -> None:
    """Set a known key."""
    if key not in DEFAULTS:
        raise KeyError(f"Unknown session key {key!r}: add it to ui.state.DEFAULTS.")
    st.session_state[key] = value


# ---------------------------------------------------------------- idle release


def idle_release_minutes() -> float | None:
    """``$AECORE_IDLE_RELEASE_MINUTES`` (default 30); None when 0 (never release)."""
    text = os.environ.get(IDLE_ENV, "").strip()
    try:
        minutes = float(text) if text else DEFAULT_IDLE_RELEASE_MINUTES
    except ValueError:
        minutes = DEFAULT_IDLE_RELEASE_MINUTES
    return minutes if minutes > 0 else None


def release_if_idle(session: MutableMapping, now: float | None = None) -> bool:
    """Drop ``session``'s data (``RELEASED_KEYS``) when it ran no page for the idle time and
    runs no background task; records what was released under ``RELEASED`` for the note the
    analyst sees on return. True when something was released."""
    minutes = idle_release_minutes()
    last = session[LAST_ACTIVITY] if LAST_ACTIVITY in session else None
    now = time.time() if now is None else now
    if minutes is None or last is None or now - last < minutes * 60:
        return False
    if any(k in session and getattr(session[k], "running", False) for k in _TASK_KEYS):
        return False
    frame = session[DATA_FRAME] if DATA_FRAME in session else None
    if frame is None:
        return False
    session[RELEASED] = {
        "name": session[DATA_NAME] if DATA_NAME in session else "",
        "source": session[DATA_SOURCE] if DATA_SOURCE in session else "",
        "rows": int(len(frame)),
        "minutes": int(round(minutes)) if float(minutes).is_integer() else minutes,
    }
    for key in RELEASED_KEYS:
        if key in session:
            del session[key]  # the old value goes at once, not at the session's next run
        session[key] = copy.copy(DEFAULTS[key])
    return True


def sweep_idle_sessions(now: float | None = None) -> int:
    """Release the data of every idle session of this server (see ``release_if_idle``), also
    while nobody looks at it; returns how many were released. Nothing outside a running
    Streamlit server (tests, scripts)."""
    from . import runtime

    released = 0
    for session_state in runtime.active_session_states():
        try:
            with _IDLE_LOCK:
                released += release_if_idle(session_state, now)
        except Exception:
            log.exception("Idle release failed for a session")
    return released


def _start_sweeper() -> None:
    global _sweeper
    with _IDLE_LOCK:
        if _sweeper is not None or idle_release_minutes() is None:
            return

        def sweep_forever() -> None:
            while True:
                time.sleep(SWEEP_SECONDS)
                sweep_idle_sessions()

        _sweeper = threading.Thread(target=sweep_forever, name="idle-release", daemon=True)
        _sweeper.start()
