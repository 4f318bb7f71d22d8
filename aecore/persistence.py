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

import datetime as _dt
import hashlib
import io
import json
import math
import os
import re
import shutil
import uuid
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import AecoreError
from .roles import ColumnRoles

SCHEMA_VERSION = 1
MODEL_FILE = "model.keras"
META_FILE = "meta.json"
VERSIONS_DIR = ".versions"
TEMP_PREFIX = ".tmp-"
MAX_REFERENCE_ERRORS = 5_000
DETECTOR_KIND = "detector"
CLASSIFIER_KIND = "classifier"
KINDS = {
    DETECTOR_KIND: ("an anomaly detector", "aecore.persistence.load"),
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
]
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
_VERSION = re.compile(r"\d{8}T\d{6}\d{6}Z-[0-9a-f]{6}")
_TRACKED_LIBRARIES = ("keras", "tensorflow", "numpy", "pandas", "scikit-learn")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_STALE_TEMP_SECONDS = 24 * 3600


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


def json_safe(value: Any) -> Any:
    """Plain JSON values, so that ``meta.json`` never holds NaN or a repr: numpy scalars and
    arrays unwrapped, pandas Series as ``{index: value}``, NaN and infinities as null."""
    if isinstance(value, ColumnRoles):
        return json_safe(value.to_dict())
    if isinstance(value, pd.Series):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return [json_safe(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def _nan_for_none(values: Mapping | None) -> dict | None:
    """Evaluation metrics back from JSON: null (a NaN when saved) becomes NaN again."""
    if values is None:
        return None
    return {key: (math.nan if item is None else item) for key, item in values.items()}


def _float_series(values: Mapping | None) -> pd.Series | None:
    """``{name: number}`` from JSON as a float Series in the stored order (null = NaN)."""
    if values is None:
        return None
    return pd.Series(
        [math.nan if item is None else float(item) for item in values.values()],
        index=[str(key) for key in values],
        dtype=np.float64,
    )


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

    from . import __version__

    return {
        "aecore": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
    }


def _reference_sample(errors: Any) -> list[float]:
    """At most ``MAX_REFERENCE_ERRORS`` values: all of them, else evenly spaced quantiles."""
    values = np.asarray(errors, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size > MAX_REFERENCE_ERRORS:
        values = np.quantile(values, np.linspace(0.0, 1.0, MAX_REFERENCE_ERRORS))
    return [float(v) for v in values]


def roles_to_json(roles: Any) -> dict | None:
    """The ``roles`` hyper-parameter as JSON: ``ColumnRoles`` and a plain mapping are told apart
    so that loading gives back the same type (and the same ``get_params``)."""
    if roles is None:
        return None
    if isinstance(roles, ColumnRoles):
        return {"kind": "roles", "value": roles.to_dict()}
    return {"kind": "mapping", "value": {str(k): str(v) for k, v in dict(roles).items()}}


def roles_from_json(stored: Any) -> ColumnRoles | dict | None:
    """The inverse of ``roles_to_json``."""
    if stored is None:
        return None
    if stored.get("kind") == "roles":
        return ColumnRoles.from_dict(stored["value"])
    return dict(stored["value"])


def bundle_kind(meta: Mapping) -> str:
    """What a bundle holds: its ``kind``, or "detector" for bundles saved before kinds existed."""
    return str(meta.get("kind") or DETECTOR_KIND)


def feature_entries(roles: ColumnRoles, preprocessor: Any) -> list[dict]:
    """``[{"name", "role", "kind"}]`` for every input column, in the model's order; ``kind`` is
    "numeric" or "categorical" as the fitted ``Preprocessor`` encodes it."""
    kinds = {p["name"]: "numeric" for p in preprocessor.numeric_}
    kinds.update({p["name"]: "categorical" for p in preprocessor.categorical_})
    return [
        {"name": column, "role": roles.role_of(column), "kind": kinds.get(column, "numeric")}
        for column in roles.inputs
    ]


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
    """The JSON description of a fitted detector (everything but the network's weights)."""
    detector._check_fitted()
    params = detector.get_params(deep=False)
    params["roles"] = roles_to_json(params.get("roles"))
    roles: ColumnRoles = detector.roles_
    preprocessor = detector.preprocessor_
    autoencoder = detector.autoencoder_
    reference = np.asarray(detector.reference_errors_)
    split = getattr(detector, "split_", None)
    choice = detector.threshold_choice_
    meta = new_meta(name, kind=DETECTOR_KIND, description=description)
    meta.update(
        {
            "architecture": {
                "name": autoencoder.architecture,
                "window": int(autoencoder.window),
                "code_size": int(detector.code_size_),
                "n_inputs": int(preprocessor.n_encoded),
                "parameters": int(_saved_network(detector).count_params()),
            },
            "params": params,
            "features": feature_entries(roles, preprocessor),
            "roles": roles.to_dict(),
            "preprocessing": preprocessor.to_dict(),
            "score_calibration": getattr(detector, "score_calibration_", None),
            "code_size": int(detector.code_size_),
            "training": detector.training_,
            "history": detector.history_,
            "trained_on": detector.trained_on_,
            "n_train_rows": int(detector.n_train_rows_),
            "split_sizes": split.sizes() if split is not None else None,
            "threshold": choice.to_dict(),
            "evaluation": getattr(detector, "evaluation_", None),
            "reference_errors": _reference_sample(reference),
            "reference_errors_count": int(reference.size),
            "reference_errors_dtype": str(reference.dtype),
            "reference_feature_errors": getattr(detector, "reference_feature_errors_", None),
        }
    )
    retraining = getattr(detector, "retraining_", None)
    if retraining is not None:
        meta["retraining"] = retraining
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
) -> Path:
    """Save a fitted detector as bundle ``name``; returns the bundle folder.

    An existing bundle of that name is kept as a previous version (see ``list_versions``).
    """
    check_name(name)
    detector._check_fitted()
    meta = build_meta(detector, name, description=description)
    return write_bundle(_saved_network(detector), meta, name, models_dir=models_dir)


FIRST_MODEL, SECOND_MODEL = "first_autoencoder", "second_autoencoder"


def _saved_network(detector: Any) -> Any:
    """The detector's autoencoder; with a second model (see ``AnomalyDetector.second_model``),
    one network holding both, side by side: rows -> (first's, second's reconstruction)."""
    import keras

    first = detector.autoencoder_.model
    second = getattr(detector, "second_autoencoder_", None)
    if second is None:
        return first
    inputs = keras.Input(shape=first.input_shape[1:], name="rows")
    outputs = [
        keras.Model(model.inputs, model.outputs, name=name)(inputs)
        for model, name in ((first, FIRST_MODEL), (second.model, SECOND_MODEL))
    ]
    return keras.Model(inputs, outputs, name="autoencoder_pair")


def _split_pair(model: Any) -> tuple[Any, Any | None]:
    """(first, second) autoencoder models of a loaded network (second None for a single one)."""
    names = {layer.name for layer in model.layers}
    if {FIRST_MODEL, SECOND_MODEL} <= names:
        return model.get_layer(FIRST_MODEL), model.get_layer(SECOND_MODEL)
    return model, None


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


_DETECTOR_KEYS = ("params", "roles", "preprocessing", "architecture", "threshold")


def load(
    name: str,
    *,
    models_dir: str | os.PathLike | None = None,
    version: str | None = None,
) -> Any:
    """Load bundle ``name`` (its newest version, or ``version``) as a fitted ``AnomalyDetector``.

    ``split_`` is None after loading; everything needed to score, explain, re-threshold and
    monitor drift is restored. Warns (``BundleVersionWarning``) when library versions differ
    from the saved ones. A classifier bundle is refused with a message naming its loader.
    """
    bundle = read_bundle(
        name,
        kind=DETECTOR_KIND,
        required=_DETECTOR_KEYS,
        models_dir=models_dir,
        version=version,
        stacklevel=2,
    )
    return _detector_from(bundle.meta, bundle.model)


def _detector_from(meta: dict, model: Any) -> Any:
    from .architectures import Autoencoder
    from .detector import AnomalyDetector
    from .preprocessing import Preprocessor
    from .thresholds import ThresholdChoice

    known = set(AnomalyDetector().get_params(deep=False))
    params = {key: value for key, value in meta["params"].items() if key in known}
    params["roles"] = roles_from_json(params.get("roles"))
    detector = AnomalyDetector(**params)

    architecture = meta["architecture"]
    roles = ColumnRoles.from_dict(meta["roles"])
    preprocessor = Preprocessor.from_dict(meta["preprocessing"])
    detector.roles_ = roles
    detector.preprocessor_ = preprocessor
    first, second = _split_pair(model)
    detector.autoencoder_ = Autoencoder.from_model(
        first, architecture["name"], int(architecture.get("window", 1))
    )
    detector.second_autoencoder_ = (
        None if second is None else Autoencoder.from_model(second, architecture["name"], 1)
    )
    detector.code_size_ = int(meta.get("code_size", architecture.get("code_size")))
    detector.training_ = dict(meta.get("training") or {})
    detector.history_ = dict(meta.get("history") or {})
    detector.split_ = None
    detector.n_train_rows_ = int(meta.get("n_train_rows", 0))
    detector.feature_names_in_ = np.asarray(roles.inputs, dtype=object)
    detector.n_features_in_ = len(roles.inputs)
    detector.trained_on_ = meta.get("trained_on", "all")
    detector.score_calibration_ = meta.get("score_calibration")
    detector._scorer = None
    dtype = meta.get("reference_errors_dtype", "float32")
    detector.reference_errors_ = np.asarray(
        meta.get("reference_errors") or [], dtype=np.float32 if dtype == "float32" else np.float64
    )
    profile = _float_series(meta.get("reference_feature_errors"))
    if profile is not None:
        detector.reference_feature_errors_ = profile
    if meta.get("retraining") is not None:
        detector.retraining_ = dict(meta["retraining"])
    choice = ThresholdChoice.from_dict(meta["threshold"])
    detector.threshold_choice_ = choice
    detector.threshold_ = float(choice.value)
    detector.evaluation_ = _nan_for_none(meta.get("evaluation"))
    return detector


# ---------------------------------------------------------------------------- listing


def read_meta(
    name: str, *, models_dir: str | os.PathLike | None = None, version: str | None = None
) -> dict:
    """The ``meta.json`` of bundle ``name`` (newest version, or ``version``), as a dict."""
    folder = _resolve(models_dir_path(models_dir), name, version)
    return _read_json(folder / META_FILE)


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


def list_models(models_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per saved model (its newest version), for a models page; see ``LIST_COLUMNS``."""
    root = models_dir_path(models_dir)
    rows = []
    for name in _names(root):
        found = _versions(root, name)
        if not found:
            continue
        try:
            meta = _read_json(found[0][1] / META_FILE)
        except (AecoreError, OSError) as error:
            warnings.warn(f"Skipping model {name!r}: {error}", stacklevel=2)
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
