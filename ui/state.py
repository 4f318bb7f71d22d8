"""Every session-state key the dashboard uses, with its default, initialised in one place.

Session state is per browser session: one analyst's data, models and threshold are never
visible to another session.
"""

from __future__ import annotations

import copy
from typing import Any

import streamlit as st

DATA_FRAME = "data_frame"  # the current DataFrame
DATA_KEY = "data_key"  # content fingerprint of the current data (cache key)
DATA_NAME = "data_name"  # file name shown to the analyst
DATA_SOURCE = "data_source"  # "sample", "upload" or "models page"
ROLES = "roles"  # ColumnRoles of the current data
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
SCORED = "scored_cache"  # (key, aecore.analysis.ScoredData) for the current model and data
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
DRIFT_REPORT = "drift_report"  # (key, aecore.drift.DriftReport) for the chosen model and batch
DRIFT_TASK = "drift_task"  # ui.background.Task retraining a model
DRIFT_RETRAINED = "drift_retrained"  # what the last retraining produced, for the page to say

DEFAULTS: dict[str, Any] = {
    DATA_FRAME: None,
    DATA_KEY: None,
    DATA_NAME: "",
    DATA_SOURCE: "",
    ROLES: None,
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
}

# Widget keys that pages share (set from code before the widget is drawn).
THRESHOLD_SLIDER = "threshold_slider"
THRESHOLD_INPUT = "threshold_input"


def init() -> None:
    """Give every key its default (a fresh copy) unless this session already has it, then set
    up the embedded default (server-metrics sample + demo model) once per session."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = copy.copy(value)
    if not st.session_state[DEFAULT_LOADED]:
        st.session_state[DEFAULT_LOADED] = True
        from . import session

        session.load_default()


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
