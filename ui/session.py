"""What this session works on: its data, its model, their scores and the threshold.

Pages ask here for the current data / model / scored data; when a step is missing they get a
``Problem`` that says what to do and on which page.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from aecore import store
from aecore.datasets import SAMPLES
from aecore.errors import AecoreError
from aecore.io import inference
from aecore.io.roles import ColumnRoles
from aecore.scored import ScoredData, content_key

from . import cache, state
from .text import plain

DEMO_MODEL = "server-metrics-demo"
DEFAULT_SAMPLE = "server_metrics"
MAX_SESSION_MODELS = 3
MAX_REMEMBERED_ROLES = 20  # files whose chosen roles this session remembers (the latest)
ROLES_RESTORED = "The column roles you chose for this file earlier in this session are restored."

DATA_PAGE = "app_pages/data.py"
TRAIN_PAGE = "app_pages/train.py"
THRESHOLD_PAGE = "app_pages/threshold.py"
LATENT_PAGE = "app_pages/latent.py"
EXPLAIN_PAGE = "app_pages/explain.py"
EXPORT_PAGE = "app_pages/export.py"
MODELS_PAGE = "app_pages/models.py"
FEW_LABELS_PAGE = "app_pages/few_labels.py"
DRIFT_PAGE = "app_pages/drift.py"
REVIEW_PAGE = "app_pages/review.py"
DRIFT_SAMPLE = "server_metrics_drift"


@dataclass
class Problem:
    """Why a page cannot show its content yet, and where to go to fix it."""

    message: str
    page: str
    link_label: str
    level: str = "info"  # info, warning or error
    reload_sample: str | None = None  # a sample the page offers to load again (idle release)


@dataclass
class Model:
    """The current model: the detector, its identity for caches, and how to describe it."""

    detector: Any
    key: str
    label: str
    kind: str  # "bundle" or "session"
    name: str
    version: str | None = None
    data_key: str | None = None  # for a session model: the data it was trained on
    saved_as: str | None = None  # for a session model saved to models/: the bundle's name
    session_id: str | None = None  # for a session model: its id in SESSION_MODELS


def max_upload_bytes() -> int:
    """The upload limit from ``.streamlit/config.toml`` (``server.maxUploadSize``, in MB)."""
    return int(st.get_option("server.maxUploadSize")) * 1024 * 1024


def models_dir() -> str:
    return str(store.models_dir_path())


READ_ONLY_VARIABLE = "AECORE_READ_ONLY_MODELS"
READ_ONLY_NOTE = (
    "The model store is read-only on this dashboard: saved models can be used and score data, "
    "but nothing can be saved, overwritten or deleted here."
)


def models_read_only() -> bool:
    """Is the model store read-only from the dashboard? Set ``AECORE_READ_ONLY_MODELS=1`` (or
    true/yes/on) in the server's environment: loading and scoring stay allowed; saving,
    retraining into a bundle and deleting are refused (their buttons are disabled)."""
    return os.environ.get(READ_ONLY_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def login_required() -> bool:
    """Must this visitor log in first? Only when Streamlit's built-in OIDC login is configured
    (an ``[auth]`` section in ``.streamlit/secrets.toml``) and the visitor is not logged in."""
    try:
        configured = "auth" in st.secrets
    except FileNotFoundError:  # no secrets.toml at all (Streamlit's error is one of these)
        return False
    return configured and not st.user.get("is_logged_in", False)


def check_models_writable() -> None:
    """Raise ``AecoreError`` (with ``READ_ONLY_NOTE``) when the model store is read-only."""
    if models_read_only():
        raise AecoreError(READ_ONLY_NOTE)


# ---------------------------------------------------------------- data


def set_data(frame: pd.DataFrame, key: str, name: str, source: str, roles=None) -> None:
    """Make ``frame`` the session's data (roles inferred unless given).

    Without given roles, the roles the analyst chose for the same content earlier in this
    session come back (see ``set_roles``), with a notice saying so.
    """
    if roles is None:
        roles = remembered_roles(key, frame)
        if roles is not None:
            state.put(state.NOTICE, ("info", ROLES_RESTORED))
        else:
            roles = inference.infer_roles(frame)
    if key != state.get(state.DATA_KEY):
        # Messages about the previous data must not read as if about this one.
        state.put(state.THRESHOLD_MESSAGE, None)
    state.put(state.RELEASED, None)
    state.put(state.DATA_FRAME, frame)
    state.put(state.DATA_KEY, key)
    state.put(state.DATA_NAME, name)
    state.put(state.DATA_SOURCE, source)
    state.put(state.ROLES, roles)


def set_roles(roles: ColumnRoles) -> None:
    """The analyst's roles for the current data, remembered for this file's content (the last
    ``MAX_REMEMBERED_ROLES`` files): loading the same content again restores them."""
    state.put(state.ROLES, roles)
    key = state.get(state.DATA_KEY)
    if key is None:
        return
    memory = state.get(state.ROLES_MEMORY)
    memory.pop(key, None)
    memory[key] = roles.to_dict()
    while len(memory) > MAX_REMEMBERED_ROLES:
        memory.pop(next(iter(memory)))


def remembered_roles(key: str, frame: pd.DataFrame) -> ColumnRoles | None:
    """The roles chosen earlier in this session for content ``key``, if they fit ``frame``."""
    saved = state.get(state.ROLES_MEMORY).get(key)
    if saved is None:
        return None
    roles = ColumnRoles.from_dict(saved)
    if sorted(roles.named) != sorted(map(str, frame.columns)):
        return None
    return roles


def sample_roles(name: str, frame: pd.DataFrame) -> ColumnRoles:
    """The documented roles of a sample, with any column it does not name inferred."""
    roles = SAMPLES[name].roles()
    given = {c: roles.role_of(c) for c in roles.named if c in frame.columns}
    return inference.infer_roles(frame, overrides=given)


def load_sample(name: str) -> None:
    """Load a committed sample CSV (raises ``AecoreError`` if it cannot be read)."""
    frame, key = cache.read_sample(name, cache.sample_modified(name))
    roles = remembered_roles(key, frame)
    if roles is not None:
        state.put(state.NOTICE, ("info", ROLES_RESTORED))
    set_data(frame, key, SAMPLES[name].filename, "sample", roles or sample_roles(name, frame))


def read_upload(payload: bytes) -> tuple[pd.DataFrame, str]:
    """Read uploaded bytes (raises ``AecoreError`` with the message to show)."""
    key = content_key(payload)
    return cache.read_csv(key, payload, max_upload_bytes()), key


def start() -> None:
    """Session state ready (``state.init``), and once per session the embedded default (the
    server-metrics sample, scored by the demo model) loaded."""
    state.init()
    if not state.get(state.DEFAULT_LOADED):
        state.put(state.DEFAULT_LOADED, True)
        load_default()


def load_default() -> None:
    """The embedded default: the server-metrics sample, scored by the demo model."""
    try:
        load_sample(DEFAULT_SAMPLE)
    except (AecoreError, OSError) as error:
        state.put(state.NOTICE, ("warning", f"The default sample could not be loaded: {error}"))
    if demo_available():
        try:
            use_bundle(DEMO_MODEL)
        except AecoreError as error:
            state.put(state.NOTICE, ("warning", f"The demo model could not be used: {error}"))


def demo_available() -> bool:
    """Is the demo bundle ``models/server-metrics-demo/`` there?"""
    try:
        return bool(store.list_versions(DEMO_MODEL, models_dir=models_dir()))
    except AecoreError:
        return False


# ---------------------------------------------------------------- models


def use_bundle(name: str, version: str | None = None) -> None:
    """Make saved model ``name`` (its newest version unless given) the current model."""
    if version is None:
        version = str(store.read_meta(name, models_dir=models_dir())["version"])
    state.put(state.MODEL_REF, {"kind": "bundle", "name": name, "version": version})


def add_session_model(
    detector, name: str, data_key: str | None, data_name: str | None = None
) -> str:
    """Keep a model trained in this session (the last few) and make it current; it remembers
    the data it was trained on (``data_key``, ``data_name``)."""
    models = state.get(state.SESSION_MODELS)
    model_id = f"{int(time.time() * 1000):x}-{len(models)}"
    models[model_id] = {
        "detector": detector, "name": name, "data_key": data_key, "data_name": data_name
    }  # fmt: skip
    while len(models) > MAX_SESSION_MODELS:
        models.pop(next(iter(models)))
    state.put(state.MODEL_REF, {"kind": "session", "id": model_id})
    return model_id


def mark_saved(model_id: str, name: str) -> None:
    """Remember that a session model was saved as bundle ``name``."""
    entry = state.get(state.SESSION_MODELS).get(model_id)
    if entry is not None:
        entry["saved_as"] = name


def current_model() -> Model | None:
    """The current model, or None; raises ``AecoreError`` when a saved one cannot be loaded."""
    ref = state.get(state.MODEL_REF)
    if ref is None:
        return None
    if ref["kind"] == "session":
        entry = state.get(state.SESSION_MODELS).get(ref["id"])
        if entry is None:
            state.put(state.MODEL_REF, None)
            return None
        return Model(
            detector=entry["detector"],
            key=f"session:{ref['id']}",
            label=f"{entry['name']} (trained in this session"
            + (f" on {entry['data_name']}" if entry.get("data_name") else "")
            + (f", saved as {entry['saved_as']})" if entry.get("saved_as") else ", not saved)"),
            kind="session",
            name=entry["name"],
            data_key=entry.get("data_key"),
            saved_as=entry.get("saved_as"),
            session_id=ref["id"],
        )
    detector = cache.load_bundle(ref["name"], ref["version"], models_dir())
    return Model(
        detector=detector,
        key=f"bundle:{models_dir()}:{ref['name']}@{ref['version']}",
        label=f"{ref['name']} (saved model)",
        kind="bundle",
        name=ref["name"],
        version=ref["version"],
    )


# ---------------------------------------------------------------- scored data and threshold


def missing_data() -> Problem | None:
    released = state.get(state.RELEASED)
    if state.get(state.DATA_FRAME) is None and released:
        return released_problem(released)
    if state.get(state.DATA_FRAME) is None:
        return Problem("No data is loaded yet: load a CSV or a sample first.", DATA_PAGE, "Data")
    return None


def released_problem(released: dict) -> Problem:
    """What the analyst reads on return after an idle release (``ui.state.release_if_idle``)."""
    sample = next(
        (name for name, s in SAMPLES.items() if s.filename == released["name"]), None
    ) if released.get("source") == "sample" else None  # fmt: skip
    again = (
        "Reload it with the button below." if sample
        else "Load it again on the Data page (your models and threshold are kept)."
    )  # fmt: skip
    return Problem(
        f"Your data **{released['name']}** ({released['rows']:,} rows) was released after "
        f"{released['minutes']} minutes without activity, to free the server's memory. {again}",
        DATA_PAGE,
        "Data",
        reload_sample=sample,
    )


def missing_model() -> Problem:
    note = "" if demo_available() else (
        f" (The demo model `models/{DEMO_MODEL}/` is not there: build it with "
        "`python models/build_demo.py`.)"
    )
    return Problem(
        "No model yet: train one on the Train page, or load a saved one on the Models page."
        + note,
        TRAIN_PAGE,
        "Train a model",
    )


def scored() -> tuple[ScoredData | None, Model | None, Problem | None]:
    """The current data scored by the current model, computed once per (model, data)."""
    problem = missing_data()
    if problem:
        return None, None, problem
    try:
        model = current_model()
    except AecoreError as error:
        return None, None, Problem(
            f"The saved model could not be loaded: {error}", MODELS_PAGE, "Models", "error"
        )
    if model is None:
        return None, None, missing_model()
    frame = state.get(state.DATA_FRAME)
    data_key = state.get(state.DATA_KEY)
    roles: ColumnRoles = state.get(state.ROLES)
    detector = model.detector
    label = roles.label or (detector.roles_.label if detector.roles_.label in frame else None)
    time_column = roles.time or (detector.roles_.time if detector.roles_.time in frame else None)
    key = (model.key, data_key, label, time_column)
    cached = state.get(state.SCORED)
    if cached is not None and cached[0] == key:
        result = cached[1]
    else:
        try:
            if (model.key, data_key) not in state.get(state.SCORES):
                from aecore.workflows.export import check_columns

                check_columns(frame, detector)
            scores = cache.scores_for(model.key, data_key, detector, frame)
            result = ScoredData(
                frame,
                scores,
                label_column=label,
                time_column=time_column,
                reference_errors=getattr(detector, "reference_errors_", None),
            )
        except AecoreError as error:

            return None, model, Problem(
                f"The model **{model.name}** cannot score the data "
                f"**{plain(state.get(state.DATA_NAME))}**: {plain(error)}",
                MODELS_PAGE,
                "Choose another model",
                "error",
            )
        state.put(state.SCORED, (key, result))
    sync_threshold(model, data_key)
    return result, model, None


def sync_threshold(model: Model, data_key: str) -> None:
    """Start from the model's threshold whenever the model or the data changes."""
    owner = (model.key, data_key)
    if state.get(state.THRESHOLD_FOR) != owner or state.get(state.THRESHOLD) is None:
        state.put(state.THRESHOLD, float(model.detector.threshold_))
        state.put(state.THRESHOLD_FOR, owner)


def threshold() -> float:
    """The analyst's current threshold (call after ``scored()``)."""
    return float(state.get(state.THRESHOLD))


def set_threshold(value: float) -> None:
    """Move the analyst's threshold (the model itself is not changed)."""
    state.put(state.THRESHOLD, float(value))


# ---------------------------------------------------------------- review marks


def reviews():
    """The analyst's marks on the current data (``aecore.workflows.review.ReviewBook``), read
    once per data and kept in the session; saved in the models folder unless it is read-only
    (then they last for this session only). Raises ``AecoreError`` when the stored marks cannot
    be read. Call after ``missing_data()`` is None."""
    from aecore.workflows.review import ReviewBook

    key = state.get(state.DATA_KEY)
    cached = state.get(state.REVIEWS)
    if cached is not None and cached[0] == key:
        return cached[1]
    book = ReviewBook(
        state.get(state.DATA_FRAME),
        models_dir=models_dir(),
        data_name=state.get(state.DATA_NAME),
        persist=not models_read_only(),
    )
    state.put(state.REVIEWS, (key, book))
    return book


def reviews_if_any():
    """``reviews()`` when this data has marks (kept in this session, or saved), else None:
    pages that only show marks (Threshold, Export) never hash the rows of data nobody
    reviewed."""
    from aecore.workflows.review import has_stored_marks

    cached = state.get(state.REVIEWS)
    if cached is not None and cached[0] == state.get(state.DATA_KEY):
        return cached[1]
    if not has_stored_marks(state.get(state.DATA_FRAME).columns, models_dir()):
        return None
    return reviews()


REVIEW_LABEL = "review_mark"  # the column the Few-labels page reads the marks from


def review_label_data() -> tuple[pd.DataFrame, str, str]:
    """The current data with the marks as a label column (``REVIEW_LABEL``, or a free name):
    "anomaly" or "normal" where reviewed, empty elsewhere (unsure rows too), for the Few-labels
    page. Returns (frame, its cache key, the column's name)."""
    import hashlib

    book = reviews()
    frame = state.get(state.DATA_FRAME)
    name = REVIEW_LABEL
    while name in frame.columns:
        name = "_" + name
    marks = book.table()
    digest = hashlib.sha256(marks[["row", "status"]].to_json().encode()).hexdigest()[:12]
    key = f"{state.get(state.DATA_KEY)}:reviews-{digest}"
    cached = state.get(state.REVIEW_LABELS)
    if cached is None or cached[0] != key:  # the copy of the frame is made once per marks
        statuses = book.statuses()
        values = np.where(np.isin(statuses, ("anomaly", "normal")), statuses, None)
        state.put(state.REVIEW_LABELS, (key, frame.assign(**{name: values})))
    return state.get(state.REVIEW_LABELS)[1], key, name


# ---------------------------------------------------------------- few labels


def few_label_data(column: str) -> tuple[pd.DataFrame, str, str | None]:
    """The data the Few-labels page works on: the current data, or a copy with all but a few
    labels of ``column`` emptied when the analyst chose to practise on a fully labelled file.
    Returns (frame, its cache key, a note saying which labels were hidden or None)."""
    frame = state.get(state.DATA_FRAME)
    data_key = state.get(state.DATA_KEY)
    keep = state.get(state.FEW_LABELS_KEEP)
    if keep is None or keep[:2] != (data_key, column):
        return frame, data_key, None
    n = int(keep[2])
    masked = cache.keep_labels(data_key, column, n, frame)
    note = (
        f"Practice mode: only {n:,} labels of **{plain(column)}** are kept (a normal and an "
        "anomalous row first, then one per class as far as they go, the rest drawn at "
        "random); the other rows count as unlabelled."
    )
    return masked, f"{data_key}:keep-{column}-{n}", note


def keep_few_labels(column: str, n: int | None) -> None:
    """Keep only ``n`` labels of ``column`` on the Few-labels page (None: use them all)."""
    data_key = state.get(state.DATA_KEY)
    state.put(state.FEW_LABELS_KEEP, None if n is None else (data_key, column, int(n)))


# ---------------------------------------------------------------- drift


def bundle_model(name: str, version: str | None = None) -> Model:
    """Saved model ``name`` (its newest version unless given), loaded through the shared cache
    (never trained or changed); raises ``AecoreError`` when it cannot be loaded."""
    if version is None:
        version = str(store.read_meta(name, models_dir=models_dir())["version"])
    detector = cache.load_bundle(name, version, models_dir())
    return Model(
        detector=detector,
        key=f"bundle:{models_dir()}:{name}@{version}",
        label=f"{name} (saved model)",
        kind="bundle",
        name=name,
        version=version,
    )


def detector_bundles() -> list[str]:
    """Names of the usable saved anomaly detectors (classifier bundles cannot be monitored; a
    damaged bundle, listed with its problem on the Models page, is left out)."""
    models = cache.model_list(models_dir())
    if models.empty:
        return []
    kinds = models["kind"].fillna(store.DETECTOR_KIND)
    usable = models["problem"].fillna("") == ""
    return list(models.loc[(kinds == store.DETECTOR_KIND) & usable, "name"])


def set_drift_batch(frame: pd.DataFrame, key: str, name: str) -> None:
    """Keep an uploaded batch for the Drift page (the session's data is not changed)."""
    state.put(state.DRIFT_BATCH, {"frame": frame, "key": key, "name": name})


def drift_sample() -> dict:
    """The committed drift sample (the rack after a new workload), as a batch to check."""
    frame, key = cache.read_sample(DRIFT_SAMPLE, cache.sample_modified(DRIFT_SAMPLE))
    return {"frame": frame, "key": key, "name": SAMPLES[DRIFT_SAMPLE].filename}
