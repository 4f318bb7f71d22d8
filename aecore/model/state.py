"""The detector's state as plain JSON values, and the helpers that turn fitted objects into
them and back (``AnomalyDetector.get_state`` / ``from_state``; the few-label classifier uses
the same ones). Nothing here reads or writes files: that is ``aecore.store``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from aecore.io.roles import ColumnRoles

MAX_REFERENCE_ERRORS = 5_000


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


def nan_for_none(values: Mapping | None) -> dict | None:
    """Evaluation metrics back from JSON: null (a NaN when saved) becomes NaN again."""
    if values is None:
        return None
    return {key: (math.nan if item is None else item) for key, item in values.items()}


def float_series(values: Mapping | None) -> pd.Series | None:
    """``{name: number}`` from JSON as a float Series in the stored order (null = NaN)."""
    if values is None:
        return None
    return pd.Series(
        [math.nan if item is None else float(item) for item in values.values()],
        index=[str(key) for key in values],
        dtype=np.float64,
    )


def reference_sample(errors: Any) -> list[float]:
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


def feature_entries(roles: ColumnRoles, preprocessor: Any) -> list[dict]:
    """``[{"name", "role", "kind"}]`` for every input column, in the model's order; ``kind`` is
    "numeric" or "categorical" as the fitted ``Preprocessor`` encodes it."""
    kinds = {p["name"]: "numeric" for p in preprocessor.numeric_}
    kinds.update({p["name"]: "categorical" for p in preprocessor.categorical_})
    return [
        {"name": column, "role": roles.role_of(column), "kind": kinds.get(column, "numeric")}
        for column in roles.inputs
    ]


FIRST_MODEL, SECOND_MODEL = "first_autoencoder", "second_autoencoder"


def pair_network(first: Any, second: Any | None) -> Any:
    """The Keras model a bundle stores: ``first``; with a second model (see
    ``AnomalyDetector.second_model``), one network holding both, side by side: rows ->
    (first's, second's reconstruction)."""
    import keras

    if second is None:
        return first
    inputs = keras.Input(shape=first.input_shape[1:], name="rows")
    outputs = [
        keras.Model(model.inputs, model.outputs, name=name)(inputs)
        for model, name in ((first, FIRST_MODEL), (second, SECOND_MODEL))
    ]
    return keras.Model(inputs, outputs, name="autoencoder_pair")


def split_pair(model: Any) -> tuple[Any, Any | None]:
    """(first, second) autoencoder models of a loaded network (second None for a single one)."""
    names = {layer.name for layer in model.layers}
    if {FIRST_MODEL, SECOND_MODEL} <= names:
        return model.get_layer(FIRST_MODEL), model.get_layer(SECOND_MODEL)
    return model, None


