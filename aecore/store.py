"""Saved model bundles: ``models/<name>/`` holds ``model.keras`` and ``meta.json``.

``meta.json`` is everything but the network's weights, as plain JSON (no pickle anywhere): the
schema version, the bundle's kind, creation time, library versions, columns and their roles,
preprocessing parameters, hyper-parameters, training history, the threshold and how it was
chosen, evaluation metrics, the score calibration, a sample of held-out errors and the mean
error of every column on held-out rows (for drift checks), and the SHA-256 of ``model.keras``.

Two kinds of bundle share this layout: ``"detector"`` (an ``AnomalyDetector``; bundles saved
before kinds existed are detectors) and ``"classifier"`` (a ``FewLabelClassifier``, saved and
loaded by ``aecore.semisupervised`` through ``new_meta``, ``write_bundle`` and ``read_bundle``).

Saving never destroys: the bundle is written complete under a hidden temporary name in the same
folder and published with ``os.replace``; the bundle it replaces moves, also by ``os.replace``,
to ``models/.versions/<name>/<version>/``. Were a save killed between those two renames, the
newest previous version is what loads and lists. Loading uses Keras safe mode and refuses
``.h5`` files, path-like names, a model file whose hash differs, unknown schema versions and a
bundle of another kind (with the function that loads it).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import shutil
import threading
import time
import uuid
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:
    import fcntl
except ImportError:  # Windows: saves under one name are serialised within this process only
    fcntl = None

from aecore.errors import AecoreError
from aecore.model.state import json_safe

SCHEMA_VERSION = 1
MODEL_FILE = "model.keras"
META_FILE = "meta.json"
VERSIONS_DIR = ".versions"
LOCKS_DIR = ".locks"
LOCK_TIMEOUT_SECONDS = 120.0
TEMP_PREFIX = ".tmp-"
DETECTOR_KIND = "detector"
CLASSIFIER_KIND = "classifier"
KINDS = {
    DETECTOR_KIND: ("an anomaly detector", "aecore.load"),
    CLASSIFIER_KIND: (
        "a classifier trained on a few labels",
        "FewLabelClassifier.load (from aecore.semisupervised)",
    ),
}
MODELS_DIR = Path(
    os.environ.get("AECORE_MODELS_DIR") or Path(__file__).resolve().parents[1] / "models"
)
LIST_COLUMNS = [
    "name",
    "architecture",
    "n_features",
    "features",
    "created",
    "threshold",
    "threshold_method",
    "metrics",
    "n_train_rows",
    "versions",
    "kind",
    "problem",
]
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
_VERSION = re.compile(r"\d{8}T\d{6}\d{6}Z-[0-9a-f]{6}")
_TRACKED_LIBRARIES = ("keras", "tensorflow", "numpy", "pandas", "scikit-learn")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_STALE_TEMP_SECONDS = 24 * 3600
_THREAD_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class BundleVersionWarning(UserWarning):
    """A bundle was saved with library versions that differ from the ones installed now."""


# ---------------------------------------------------------------------------- names and paths


def models_dir_path(models_dir: str | os.PathLike | None = None) -> Path:
    """The folder of bundles: ``models_dir``, else ``$AECORE_MODELS_DIR``, else ``models/``."""
    if models_dir is not None:
        return Path(models_dir)
    override = os.environ.get("AECORE_MODELS_DIR")
    return Path(override) if override else MODELS_DIR


def check_name(name: Any) -> str:
    """``name`` if it is a safe bundle name, else one ``AecoreError`` that says what is allowed."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        shown = name if isinstance(name, str) else type(name).__name__
        raise AecoreError(
            f"{shown!r} is not a valid model name: use 1 to 64 letters, digits, '-', '_' or '.', "
            "not starting with '.' (no spaces, slashes or '..')."
        )
    return name


def _bundle_dir(root: Path, name: str) -> Path:
    return root / check_name(name)


def _history_dir(root: Path, name: str) -> Path:
    return root / VERSIONS_DIR / check_name(name)


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except json.JSONDecodeError as error:
        raise AecoreError(
            f"{path} is not valid JSON ({error.msg}); the bundle is damaged."
        ) from None
    if not isinstance(meta, dict):
        raise AecoreError(f"{path} does not hold a bundle description; the bundle is damaged.")
    return meta


# ---------------------------------------------------------------------------- meta.json schema
#
# What ``meta.json`` must hold, declared once and checked whenever a bundle is read (listed,
# shown or loaded). A spec is a type (``float`` means any number, ``int`` a whole one, neither
# true/false), ``Nullable(spec)``, ``ListOf(spec)``, ``MapOf(spec)`` (an object whose values
# match) or a dict of fields: a key ending in "?" is optional. Fields not declared are allowed,
# so later versions of aecore can add optional ones.


@dataclass(frozen=True)
class Nullable:
    spec: Any


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class MapOf:
    value: Any


_ROLES_SCHEMA = {
    "features": ListOf(str),
    "categorical?": ListOf(str),
    "time?": Nullable(str),
    "label?": Nullable(str),
    "ignore?": ListOf(str),
    "ids?": ListOf(str),
}
_PREPROCESSING_SCHEMA = {
    "scaling": str,
    "log_transform?": Nullable((str, bool, ListOf(str))),
    "numeric": ListOf(
        {"name": str, "fill?": Nullable(float), "log?": bool, "center": float, "scale": float}
    ),
    "categorical": ListOf({"name": str, "categories": ListOf(str)}),
}
_COMMON_SCHEMA = {
    "schema_version": int,
    "kind?": str,
    "name?": str,
    "version?": str,
    "created?": str,
    "description?": Nullable(str),
    "libraries?": MapOf(Nullable(str)),
    "model_file?": str,
    "model_sha256": str,
    "params?": dict,
    "features?": ListOf({"name": str, "role?": str, "kind?": str}),
    "roles?": _ROLES_SCHEMA,
    "preprocessing?": _PREPROCESSING_SCHEMA,
    "history?": Nullable(dict),
    "n_train_rows?": int,
    "evaluation?": Nullable(dict),
}


def _required(schema: dict, *keys: str) -> dict:
    """``schema`` with the optional fields ``keys`` made required (in the same order)."""
    return {(field.rstrip("?") if field.rstrip("?") in keys else field): spec
            for field, spec in schema.items()}  # fmt: skip


# A detector needs every field ``load`` reads; another kind's loader names what it needs (the
# ``required`` of ``read_bundle``), the schema checks the types of the fields that are there.
META_SCHEMAS = {
    DETECTOR_KIND: {
        **_required(_COMMON_SCHEMA, "params", "features", "roles", "preprocessing"),
        "architecture": {
            "name": str,
            "window?": int,
            "code_size?": int,
            "n_inputs?": int,
            "parameters?": int,
        },
        "threshold": {"value": float, "method": str, "params?": Nullable(dict)},
        "code_size?": int,
        "training?": Nullable(dict),
        "trained_on?": str,
        "split_sizes?": Nullable(dict),
        "score_calibration?": Nullable(dict),
        "reference_errors?": ListOf(Nullable(float)),
        "reference_errors_count?": int,
        "reference_errors_dtype?": str,
        "reference_feature_errors?": Nullable(MapOf(Nullable(float))),
        "retraining?": Nullable(dict),
    },
    CLASSIFIER_KIND: {
        **_COMMON_SCHEMA,
        "classes?": ListOf(str),
        "normal_classes?": ListOf((str, float, bool)),
        "class_mode?": str,
        "label_column?": Nullable(str),
        "n_labelled?": int,
        "n_unlabelled?": int,
        "class_counts?": Nullable(dict),
    },
}
_TYPE_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false",
               dict: "an object", list: "a list"}  # fmt: skip


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "text", dict: "an object", list: "a list"}.get(type(value), type(value).__name__)


def _expected(spec: Any) -> str:
    if isinstance(spec, Nullable):
        return f"{_expected(spec.spec)} or null"
    if isinstance(spec, tuple):
        return " or ".join(_expected(item) for item in spec)
    if isinstance(spec, ListOf):
        return "a list"
    if isinstance(spec, (MapOf, dict)):
        return "an object"
    return _TYPE_NAMES[spec]


def _matches_type(value: Any, spec: type) -> bool:
    if spec is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if spec is float:
        return isinstance(value, (int, float))
    return isinstance(value, spec)


def _schema_problem(value: Any, spec: Any, path: str) -> str | None:
    """The first way ``value`` (found at ``path``) breaks ``spec``, as a short phrase, or None."""
    if isinstance(spec, Nullable):
        return None if value is None else _schema_problem(value, spec.spec, path)
    if isinstance(spec, tuple):
        if any(_schema_problem(value, item, path) is None for item in spec):
            return None
        return f"{path!r} should be {_expected(spec)}, not {_json_type(value)}"
    if isinstance(spec, ListOf):
        if not isinstance(value, list):
            return f"{path!r} should be a list, not {_json_type(value)}"
        for index, item in enumerate(value):
            problem = _schema_problem(item, spec.item, f"{path}[{index}]")
            if problem:
                return problem
        return None
    if isinstance(spec, MapOf):
        if not isinstance(value, dict):
            return f"{path!r} should be an object, not {_json_type(value)}"
        for key, item in value.items():
            problem = _schema_problem(item, spec.value, f"{path}.{key}")
            if problem:
                return problem
        return None
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return f"{path!r} should be an object, not {_json_type(value)}"
        for field, field_spec in spec.items():
            key = field.rstrip("?")
            where = f"{path}.{key}" if path else key
            if key not in value:
                if field.endswith("?"):
                    continue
                return f"{where!r} is missing"
            problem = _schema_problem(value[key], field_spec, where)
            if problem:
                return problem
        return None
    if not _matches_type(value, spec):
        return f"{path!r} should be {_expected(spec)}, not {_json_type(value)}"
    return None


def meta_problem(meta: Any) -> str | None:
    """Why ``meta`` (a parsed ``meta.json``) is not a readable bundle description, in one short
    phrase, or None when it is: an unknown schema version, a missing field or one of the wrong
    type (see ``META_SCHEMAS``; a bundle of an unknown kind is checked for the common fields)."""
    if not isinstance(meta, dict):
        return f"it holds {_json_type(meta)}, not an object"
    schema = meta.get("schema_version")
    if schema != SCHEMA_VERSION:
        return f"schema version {schema!r}; this aecore reads version {SCHEMA_VERSION} only"
    kind = meta.get("kind", DETECTOR_KIND)
    if kind is not None and not isinstance(kind, str):
        return f"'kind' should be text, not {_json_type(kind)}"
    return _schema_problem(meta, META_SCHEMAS.get(bundle_kind(meta), _COMMON_SCHEMA), "")


def _checked_meta(folder: Path, name: str) -> dict:
    """``meta.json`` of the bundle in ``folder``, read and checked against the schema; else one
    ``AecoreError`` that names the model and the field at fault."""
    meta = _read_json(folder / META_FILE)
    problem = meta_problem(meta)
    if problem:
        raise AecoreError(f"Model {name!r} is damaged: in its {META_FILE}, {problem}.")
    return meta


def _versions(root: Path, name: str) -> list[tuple[str, Path]]:
    """``(version, folder)`` of every complete bundle of ``name``, newest first."""
    found = []
    current = _bundle_dir(root, name)
    if (current / META_FILE).is_file():
        try:
            found.append((str(_read_json(current / META_FILE).get("version", "")), current))
        except (AecoreError, OSError):
            found.append(("", current))
    history = _history_dir(root, name)
    if history.is_dir():
        for folder in history.iterdir():
            if _VERSION.fullmatch(folder.name) and (folder / META_FILE).is_file():
                found.append((folder.name, folder))
    current_first = [item for item in found if item[1] == current]
    older = sorted((item for item in found if item[1] != current), reverse=True)
    return current_first + older


def _resolve(root: Path, name: str, version: str | None = None) -> Path:
    """The folder of ``name`` (its newest complete version, or ``version``)."""
    check_name(name)
    if version is not None and (not isinstance(version, str) or not _VERSION.fullmatch(version)):
        raise AecoreError(f"{version!r} is not a version id of the form shown by list_versions.")
    found = _versions(root, name)
    if not found:
        raise AecoreError(f"No saved model named {name!r} in {root}.")
    if version is None:
        return found[0][1]
    for found_version, folder in found:
        if found_version == version:
            return folder
    raise AecoreError(f"Model {name!r} has no version {version!r}.")


# ---------------------------------------------------------------------------- JSON helpers


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Versions of the libraries a bundle depends on (Keras and TensorFlow are imported)."""
    import keras
    import sklearn
    import tensorflow as tf

    from aecore import __version__

    return {
        "aecore": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
    }


def bundle_kind(meta: Mapping) -> str:
    """What a bundle holds: its ``kind``, or "detector" for bundles saved before kinds existed."""
    return str(meta.get("kind") or DETECTOR_KIND)


def new_meta(name: str, *, kind: str = DETECTOR_KIND, description: str = "") -> dict:
    """The fields every bundle's ``meta.json`` starts with: schema version, kind, name, a new
    version id, creation time, description and library versions (``write_bundle`` adds the
    model file's hash)."""
    check_name(name)
    if kind not in KINDS:
        raise AecoreError(f"Unknown bundle kind {kind!r}; choose one of {', '.join(KINDS)}.")
    now = _dt.datetime.now(_dt.timezone.utc)
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "name": name,
        "version": now.strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6],
        "created": now.isoformat(timespec="seconds"),
        "description": str(description or ""),
        "libraries": library_versions(),
        "model_file": MODEL_FILE,
        "model_sha256": None,
    }


# ---------------------------------------------------------------------------- saving


def build_meta(detector: Any, name: str, *, description: str = "") -> dict:
    """The JSON description of a fitted detector (everything but the network's weights): the
    common fields of ``new_meta`` plus the detector's own ``get_state()``."""
    meta = new_meta(name, kind=DETECTOR_KIND, description=description)
    meta.update(detector.get_state())
    return json_safe(meta)


def _write_model(model: Any, folder: Path) -> Path:
    """Save the network alone, without the optimizer's state (two thirds of the file for Adam):
    a saved model is only ever loaded to score. A single input and output stay single tensors
    (not one-item lists), so the loaded model takes a plain array without a structure warning."""
    import keras

    single = len(model.inputs) == 1 and len(model.outputs) == 1
    inputs, outputs = (model.input, model.output) if single else (model.inputs, model.outputs)
    network = keras.Model(inputs, outputs, name=model.name)  # same layers, uncompiled
    path = folder / MODEL_FILE
    network.save(path)
    return path


@contextlib.contextmanager
def name_lock(name: str, *, models_dir: str | os.PathLike | None = None) -> Iterator[None]:
    """Hold the lock of bundle ``name``: saves and deletes under one name run one at a time,
    across threads and processes (``fcntl.flock`` on ``<models>/.locks/<name>.lock``; where
    ``fcntl`` is missing, across the threads of this process only). Waits at most
    ``LOCK_TIMEOUT_SECONDS``, then raises ``AecoreError``."""
    check_name(name)
    root = models_dir_path(models_dir)
    busy = AecoreError(
        f"Model {name!r} is being saved or deleted by another user or process; try again in a "
        "moment."
    )
    if fcntl is None:
        with _THREAD_LOCKS_GUARD:
            lock = _THREAD_LOCKS.setdefault((str(root.resolve()), name), threading.Lock())
        if not lock.acquire(timeout=LOCK_TIMEOUT_SECONDS):
            raise busy
        try:
            yield
        finally:
            lock.release()
        return
    try:
        (root / LOCKS_DIR).mkdir(parents=True, exist_ok=True)
        handle = open(root / LOCKS_DIR / f"{name}.lock", "a+b")  # closed by the with below
    except OSError as error:
        raise AecoreError(f"Cannot write to the models folder {root}: {error.strerror}.") from None
    with handle:
        deadline = time.monotonic() + LOCK_TIMEOUT_SECONDS
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise busy from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_meta(meta: dict, folder: Path) -> None:
    text = json.dumps(meta, indent=1, allow_nan=False, ensure_ascii=False)
    with open(folder / META_FILE, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _remove_stale_temps(root: Path) -> None:
    now = _dt.datetime.now().timestamp()
    for folder in root.glob(TEMP_PREFIX + "*"):
        try:
            if now - folder.stat().st_mtime > _STALE_TEMP_SECONDS:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            pass


def write_bundle(
    model: Any,
    meta: Mapping,
    name: str,
    *,
    models_dir: str | os.PathLike | None = None,
) -> Path:
    """Write ``model`` (a Keras model, saved without optimizer state) and ``meta`` (from
    ``new_meta`` plus the kind's own fields; made JSON-safe here) as bundle ``name``; returns
    the bundle folder.

    Atomic: the bundle is written complete under a temporary name, then published with
    ``os.replace``; an existing bundle of that name is kept as a previous version.
    """
    check_name(name)
    meta = json_safe(meta)
    if meta.get("name") != name or not _VERSION.fullmatch(str(meta.get("version", ""))):
        raise AecoreError("Bundle descriptions start from new_meta(name) with the same name.")
    root = models_dir_path(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(root)
    temp = root / f"{TEMP_PREFIX}{name}-{meta['version']}"
    temp.mkdir()
    try:
        model_path = _write_model(model, temp)
        meta["model_sha256"] = _sha256(model_path)
        _write_meta(meta, temp)
        target = _bundle_dir(root, name)
        with name_lock(name, models_dir=root):
            if target.exists():
                _retire(root, name, target)
            os.replace(temp, target)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return target


def save(
    detector: Any,
    name: str,
    *,
    models_dir: str | os.PathLike | None = None,
    description: str = "",
    training_data: Mapping | None = None,
) -> Path:
    """Save a fitted detector as bundle ``name``; returns the bundle folder. The detector hands
    over its state (``get_state()``) and its network (``network()``); nothing else is read.
    ``training_data`` (JSON-able) says where the training rows came from, e.g. the sample size
    and files of ``train --sample`` (``meta.json``'s ``training_data``).

    An existing bundle of that name is kept as a previous version (see ``list_versions``).
    """
    check_name(name)
    meta = build_meta(detector, name, description=description)  # raises when not fitted
    if training_data is not None:
        meta["training_data"] = json_safe(dict(training_data))
    return write_bundle(detector.network(), meta, name, models_dir=models_dir)


def _retire(root: Path, name: str, folder: Path) -> None:
    """Move the current bundle to ``.versions/<name>/<version>`` (or drop a damaged one)."""
    try:
        version = str(_read_json(folder / META_FILE).get("version", ""))
    except (AecoreError, OSError):
        version = ""
    if not _VERSION.fullmatch(version):
        version = "00000000T000000000000Z-" + uuid.uuid4().hex[:6]
    history = _history_dir(root, name)
    history.mkdir(parents=True, exist_ok=True)
    destination = history / version
    if destination.exists():
        destination = history / (version[:-6] + uuid.uuid4().hex[:6])
    os.replace(folder, destination)


# ---------------------------------------------------------------------------- loading


def _check_model_file(folder: Path, meta: dict) -> Path:
    declared = str(meta.get("model_file", MODEL_FILE))
    legacy = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".h5", ".hdf5"))
    if declared.lower().endswith((".h5", ".hdf5")) or legacy:
        shown = declared if declared.lower().endswith((".h5", ".hdf5")) else legacy[0]
        raise AecoreError(
            f"{shown} is a legacy HDF5 (.h5) model file; only the .keras format is loaded "
            "(it loads in Keras safe mode). Re-save the model with aecore."
        )
    if declared != MODEL_FILE:
        raise AecoreError(f"The bundle names an unexpected model file {declared!r}.")
    path = folder / MODEL_FILE
    if not path.is_file():
        raise AecoreError(f"The bundle in {folder} has no {MODEL_FILE}; it is incomplete.")
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(_HDF5_SIGNATURE):
        raise AecoreError(
            f"{path.name} is really a legacy HDF5 (.h5) file; only the .keras format is loaded."
        )
    return path


def _check_libraries(meta: dict, stacklevel: int) -> None:
    saved = meta.get("libraries") or {}
    current = library_versions()
    changed = [
        f"{library} {saved[library]} -> {current[library]}"
        for library in _TRACKED_LIBRARIES
        if library in saved and saved[library] != current[library]
    ]
    if changed:
        warnings.warn(
            f"Model {meta.get('name')!r} was saved with other library versions "
            f"({', '.join(changed)}); its scores may differ slightly.",
            BundleVersionWarning,
            stacklevel=stacklevel + 1,
        )


def _check_kind(meta: dict, expected: str, name: str) -> None:
    found = bundle_kind(meta)
    if found == expected:
        return
    if found not in KINDS:
        raise AecoreError(
            f"Model {name!r} is of an unknown kind {found!r}; this aecore reads "
            f"{' and '.join(KINDS)} bundles."
        )
    what, loader = KINDS[found]
    raise AecoreError(
        f"Model {name!r} is {what}, not {KINDS[expected][0]}; load it with {loader}."
    )


def _check_meta(meta: dict, folder: Path, required: Sequence[str]) -> None:
    schema = meta.get("schema_version")
    if schema != SCHEMA_VERSION:
        raise AecoreError(
            f"The bundle in {folder} has schema version {schema!r}; this aecore reads version "
            f"{SCHEMA_VERSION} only. Re-train the model or use a matching aecore."
        )
    absent = [key for key in ("model_sha256", *required) if key not in meta]
    if absent:
        raise AecoreError(f"The bundle in {folder} lacks {', '.join(absent)} in {META_FILE}.")


@dataclass(frozen=True)
class Bundle:
    """A bundle read and checked by ``read_bundle``: its ``meta.json``, the Keras model (loaded
    in safe mode, uncompiled) and the folder it came from."""

    meta: dict
    model: Any
    folder: Path


def bundle_files(
    name: str, *, models_dir: str | os.PathLike | None = None, version: str | None = None
) -> dict[str, bytes]:
    """The files of bundle ``name`` (newest version, or ``version``) by name, as bytes: what a
    machine without the models folder needs to load it (``meta.json`` and ``model.keras``;
    written into a folder of its own, they load with ``read_bundle`` there). Only the files
    travel: the model is never serialised any other way."""
    folder = _resolve(models_dir_path(models_dir), name, version)
    _checked_meta(folder, name)
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir()) if path.is_file()}


def read_bundle(
    name: str,
    *,
    kind: str = DETECTOR_KIND,
    required: Sequence[str] = (),
    models_dir: str | os.PathLike | None = None,
    version: str | None = None,
    stacklevel: int = 2,
) -> Bundle:
    """Read bundle ``name`` (newest version, or ``version``) after every check: the kind is
    ``kind`` (else an error naming the loader to use), the schema version is known, the keys in
    ``required`` are present, the model file is a ``.keras`` file whose SHA-256 matches; warns
    (``BundleVersionWarning``, at ``stacklevel`` as seen from the caller) when library versions
    differ from the saved ones. The model loads in Keras safe mode."""
    import keras

    folder = _resolve(models_dir_path(models_dir), name, version)
    meta = _read_json(folder / META_FILE)
    _check_kind(meta, kind, name)
    problem = meta_problem(meta)
    if problem:
        raise AecoreError(f"Model {name!r} is damaged: in its {META_FILE}, {problem}.")
    _check_meta(meta, folder, required)
    model_path = _check_model_file(folder, meta)
    if _sha256(model_path) != meta["model_sha256"]:
        raise AecoreError(
            f"{MODEL_FILE} of model {name!r} does not match the SHA-256 in {META_FILE}: the file "
            "was changed or damaged after saving, so it is not loaded."
        )
    _check_libraries(meta, stacklevel + 1)
    try:
        model = keras.saving.load_model(model_path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many types for a damaged or unsafe file
        raise AecoreError(f"{MODEL_FILE} could not be loaded safely: {error}") from error
    return Bundle(meta=meta, model=model, folder=folder)


DETECTOR_KEYS = ("params", "roles", "preprocessing", "architecture", "threshold")


def read_detector_bundle(
    name: str,
    *,
    models_dir: str | os.PathLike | None = None,
    version: str | None = None,
    stacklevel: int = 2,
) -> Bundle:
    """Bundle ``name`` (its newest version, or ``version``) checked as a detector's: its meta
    (the detector's state) and its network, for ``AnomalyDetector.from_state``. Warns
    (``BundleVersionWarning``) when library versions differ from the saved ones; a classifier
    bundle is refused with a message naming its loader."""
    return read_bundle(
        name,
        kind=DETECTOR_KIND,
        required=DETECTOR_KEYS,
        models_dir=models_dir,
        version=version,
        stacklevel=stacklevel + 1,
    )


# ---------------------------------------------------------------------------- listing


def read_meta(
    name: str, *, models_dir: str | os.PathLike | None = None, version: str | None = None
) -> dict:
    """The ``meta.json`` of bundle ``name`` (newest version, or ``version``), as a dict, checked
    against the schema (``AecoreError`` naming the field at fault when it is damaged)."""
    folder = _resolve(models_dir_path(models_dir), name, version)
    return _checked_meta(folder, name)


def list_versions(name: str, *, models_dir: str | os.PathLike | None = None) -> list[dict]:
    """Every saved version of ``name``, newest first: ``{"version", "created", "current"}``."""
    root = models_dir_path(models_dir)
    found = _versions(root, name)
    if not found:
        raise AecoreError(f"No saved model named {name!r} in {root}.")
    rows = []
    for position, (version, folder) in enumerate(found):
        try:
            created = _read_json(folder / META_FILE).get("created", "")
        except (AecoreError, OSError):
            created = ""
        created = created if isinstance(created, str) else ""
        rows.append({"version": version, "created": created, "current": position == 0})
    return rows


def metrics_text(evaluation: Mapping | None) -> str:
    """A short line such as "F1 0.91, ROC-AUC 0.99", or "" without evaluation."""
    if not evaluation:
        return ""
    parts = []
    for key, label in (("f1", "F1"), ("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC")):
        value = evaluation.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            parts.append(f"{label} {value:.2f}")
    return ", ".join(parts)


def _names(root: Path) -> list[str]:
    names = set()
    if root.is_dir():
        names.update(p.name for p in root.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))
    history = root / VERSIONS_DIR
    if history.is_dir():
        names.update(p.name for p in history.iterdir() if p.is_dir() and _NAME.fullmatch(p.name))
    return sorted(names, key=str.lower)


def _broken_row(name: str, meta: Mapping, versions: int, problem: str) -> dict:
    """A ``list_models`` row for a bundle whose newest ``meta.json`` cannot be used."""
    kind = meta.get("kind") if isinstance(meta.get("kind"), str) else DETECTOR_KIND
    created = meta.get("created") if isinstance(meta.get("created"), str) else ""
    return {
        "name": name, "architecture": "", "n_features": 0, "features": "", "created": created,
        "threshold": math.nan, "threshold_method": "", "metrics": "", "n_train_rows": 0,
        "versions": versions, "kind": kind, "problem": " ".join(problem.split()),
    }  # fmt: skip


def list_models(models_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per saved model (its newest version), for a models page; see ``LIST_COLUMNS``.

    A bundle whose ``meta.json`` is unreadable or breaks the schema (``meta_problem``) is still
    listed, with the reason in ``problem`` (one line; "" for a usable bundle) and empty details,
    so one damaged bundle never hides the others."""
    root = models_dir_path(models_dir)
    rows = []
    for name in _names(root):
        found = _versions(root, name)
        if not found:
            continue
        try:
            meta = _read_json(found[0][1] / META_FILE)
            problem = meta_problem(meta)
            problem = problem and f"its {META_FILE} is damaged: {problem}"
        except (AecoreError, OSError) as error:
            meta, problem = {}, str(error)
        if problem:
            rows.append(_broken_row(name, meta, len(found), problem))
            continue
        features = [f.get("name", "") for f in meta.get("features") or []]
        threshold = meta.get("threshold") or {}
        rows.append(
            {
                "name": name,
                "architecture": (meta.get("architecture") or {}).get("name", ""),
                "n_features": len(features),
                "features": ", ".join(features),
                "created": meta.get("created", ""),
                "threshold": threshold.get("value", math.nan),
                "threshold_method": threshold.get("method", ""),
                "metrics": metrics_text(meta.get("evaluation")),
                "n_train_rows": meta.get("n_train_rows", 0),
                "versions": len(found),
                "kind": bundle_kind(meta),
                "problem": "",
            }
        )
    frame = pd.DataFrame(rows, columns=LIST_COLUMNS)
    if frame.empty:
        return frame.astype(
            {"n_features": "int64", "threshold": "float64", "n_train_rows": "int64",
             "versions": "int64"}  # fmt: skip
        )
    return frame


def delete_model(name: str, *, models_dir: str | os.PathLike | None = None) -> None:
    """Delete bundle ``name`` and all its previous versions."""
    root = models_dir_path(models_dir)
    check_name(name)
    with name_lock(name, models_dir=root):
        targets = [p for p in (_bundle_dir(root, name), _history_dir(root, name)) if p.exists()]
        if not targets:
            raise AecoreError(f"No saved model named {name!r} in {root}.")
        for target in targets:
            doomed = root / f"{TEMP_PREFIX}deleted-{name}-{uuid.uuid4().hex[:6]}"
            os.replace(target, doomed)
            shutil.rmtree(doomed, ignore_errors=True)


def bundle_zip(name: str, *, models_dir: str | os.PathLike | None = None) -> bytes:
    """The newest version of bundle ``name`` as zip bytes: ``<name>/model.keras`` and
    ``<name>/meta.json``, ready for a download button."""
    folder = _resolve(models_dir_path(models_dir), name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, f"{name}/{path.name}")
    return buffer.getvalue()
