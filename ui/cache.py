"""Every cache of the dashboard, in one module.

- ``st.cache_data`` (shared across sessions, returns copies) for data: CSVs read, column
  summaries, the PCA comparison. Keys are content fingerprints of the data (and the model's
  identity), so a session only ever gets back what it already has.
- ``st.cache_resource`` (shared, never copied) for saved models loaded from ``models/``: they
  are only scored, never trained or changed (the analyst's threshold lives in session state).
- This session's scoring results live in its session state (``scores_for``): one pass per
  (model, data), reused by every page and every threshold move; ``SCORING_CALLS`` counts the
  passes so tests can check that a slider move does not score again.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

import aecore
from aecore import store
from aecore.classifier import encode_labels
from aecore.datasets import SAMPLES
from aecore.evaluation import compare, drift
from aecore.io import inference, reader
from aecore.scored import content_key, pca_comparison
from aecore.workflows.label_budgets import hide_labels

from . import state

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
MAX_SESSION_SCORES = 2

SCORING_CALLS = 0
_COUNTER_LOCK = threading.Lock()


@st.cache_data(max_entries=3, ttl=3600, show_spinner="Reading the CSV…")
def read_csv(data_key: str, _payload: bytes, max_bytes: int | None) -> pd.DataFrame:
    """An uploaded CSV read by ``aecore.io.reader.read_csv`` (raises ``AecoreError``)."""
    return reader.read_csv(_payload, max_bytes=max_bytes)


@st.cache_data(max_entries=len(SAMPLES) + 1, ttl=24 * 3600, show_spinner="Loading the sample…")
def read_sample(name: str, modified: float) -> tuple[pd.DataFrame, str]:
    """A committed sample CSV and its content key (``modified`` refreshes it if it changes)."""
    payload = (SAMPLE_DIR / SAMPLES[name].filename).read_bytes()
    return reader.read_csv(payload), content_key(payload)


def sample_modified(name: str) -> float:
    """Modification time of a sample's file (part of its cache key)."""
    return (SAMPLE_DIR / SAMPLES[name].filename).stat().st_mtime


@st.cache_resource(max_entries=8, ttl=6 * 3600, show_spinner="Loading the model…")
def load_bundle(name: str, version: str, models_dir: str):
    """A saved model, shared by every session: only ever scored, never trained or changed."""
    return aecore.load(name, models_dir=models_dir, version=version)


@st.cache_data(max_entries=4, ttl=10, show_spinner=False)
def model_list(models_dir: str) -> pd.DataFrame:
    """The saved models (refreshed every 10 s, and cleared after a save or delete)."""
    return store.list_models(models_dir)


@st.cache_data(max_entries=8, ttl=3600, show_spinner=False)
def bundle_meta(name: str, version: str, models_dir: str) -> dict:
    """A bundle's ``meta.json``."""
    return store.read_meta(name, models_dir=models_dir, version=version)


def roles_json(roles) -> str:
    """A stable text form of ColumnRoles, for cache keys."""
    return json.dumps(roles.to_dict(), sort_keys=True)


@st.cache_data(max_entries=8, ttl=3600, show_spinner="Summarising the columns…")
def column_summary(data_key: str, roles_key: str, _frame: pd.DataFrame, _roles) -> pd.DataFrame:
    """``aecore.io.inference.summarise_columns`` of the current data and roles."""
    return inference.summarise_columns(_frame, _roles)


@st.cache_data(max_entries=8, ttl=3600, show_spinner=False)
def role_notes(data_key: str, roles_key: str, _frame: pd.DataFrame, _roles) -> dict[str, str]:
    """``aecore.io.inference.role_notes``: why each column has its role, what gets imputed."""
    return inference.role_notes(_frame, _roles)


@st.cache_data(max_entries=8, ttl=3600, show_spinner=False)
def label_like_inputs(data_key: str, roles_key: str, _frame: pd.DataFrame, _roles) -> dict:
    """``aecore.io.inference.label_like_inputs``: model inputs that look like a label, and why."""
    return inference.label_like_inputs(_frame, _roles)


@st.cache_data(max_entries=8, ttl=3600, show_spinner="Comparing with PCA…")
def pca_table(
    model_key: str, data_key: str, trained_on_frame: bool, _detector, _frame: pd.DataFrame
) -> tuple[dict, str]:
    """The autoencoder vs PCA comparison (``aecore.scored.pca_comparison``)."""
    return pca_comparison(_detector, _frame, trained_on_frame=trained_on_frame)


def scores_for(model_key: str, data_key: str, detector, frame: pd.DataFrame):
    """This session's scores of ``frame`` by ``detector``: one scoring pass per (model, data),
    kept in session state (the last ``MAX_SESSION_SCORES`` pairs)."""
    global SCORING_CALLS
    store = state.get(state.SCORES)
    key = (model_key, data_key)
    if key not in store:
        with _COUNTER_LOCK:
            SCORING_CALLS += 1
        with st.spinner(f"Scoring {len(frame):,} rows…"):
            result = detector.score_rows(frame, latent=True)
        while len(store) >= MAX_SESSION_SCORES:
            store.pop(next(iter(store)))
        store[key] = result
    return store[key]


@st.cache_data(max_entries=4, ttl=600, show_spinner="Preparing the download…")
def export_csv(export_key: str, _build) -> bytes:
    """The Export page's CSV, built once per model, data, threshold and row choice
    (``export_key``) by ``_build()``: a rerun does not build it again."""
    return _build()


@st.cache_data(max_entries=8, ttl=3600, show_spinner=False)
def label_summary(data_key: str, column: str, class_mode: str, _frame: pd.DataFrame) -> dict:
    """How many rows of ``column`` are labelled and unlabelled, and the rows per class (normal
    classes first), as ``FewLabelClassifier`` would read them (empty cells = unlabelled)."""
    codes, classes, normal = encode_labels(_frame[column], class_mode)
    counts = np.bincount(codes[codes >= 0], minlength=len(classes))
    return {
        "labelled": int((codes >= 0).sum()),
        "unlabelled": int((codes < 0).sum()),
        "classes": {str(name): int(count) for name, count in zip(classes, counts, strict=True)},
        "normal": sorted(str(name) for name in normal),
    }


@st.cache_data(max_entries=4, ttl=3600, show_spinner="Hiding labels…")
def keep_labels(data_key: str, column: str, keep: int, _frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the data with only ``keep`` labels of ``column`` left (a normal and an
    anomalous row first, one of each class, the rest drawn at random, seeded) and the others
    emptied: ``aecore.workflows.label_budgets.hide_labels``, to try the few-labels workflow on."""
    return hide_labels(_frame, column, keep, random_state=0)


def drift_report_for(
    model_key: str,
    batch_key: str,
    detector,
    frame: pd.DataFrame,
    reference: tuple[str, pd.DataFrame] | None = None,
):
    """This session's ``aecore.evaluation.drift.monitor`` of ``frame`` by ``detector``: one pass per
    (model, batch, per-feature reference), kept in session state (the last one)."""
    key = (model_key, batch_key, reference[0] if reference else None)
    cached = state.get(state.DRIFT_REPORT)
    if cached is not None and cached[0] == key:
        return cached[1]
    with st.spinner(f"Scoring the {len(frame):,} new rows…"):
        report = drift.monitor(
            detector, frame, reference_frame=reference[1] if reference else None, top_features=5
        )
    state.put(state.DRIFT_REPORT, (key, report))
    return report


def classical_scores_for(
    model_key: str, data_key: str, detector, frame: pd.DataFrame, errors, *,
    trained_on_frame: bool, fit: bool,
):  # fmt: skip
    """This session's ``aecore.evaluation.compare.fit_classical`` of ``frame`` beside
    ``detector``'s ``errors``: kept in session state for the last (model, data). None when it
    has not been fitted yet and ``fit`` is False (the page fits it on demand)."""
    key = (model_key, data_key, trained_on_frame)
    cached = state.get(state.CLASSICAL)
    if cached is not None and cached[0] == key:
        return cached[1]
    if not fit:
        return None
    with st.spinner(f"Fitting an IsolationForest and a k-NN distance on {len(frame):,} rows…"):
        result = compare.fit_classical(
            detector, frame, autoencoder_scores=errors, trained_on_frame=trained_on_frame
        )
    state.put(state.CLASSICAL, (key, result))
    return result


def clear_model_caches() -> None:
    """After a save or delete: list the models afresh."""
    model_list.clear()
    bundle_meta.clear()
