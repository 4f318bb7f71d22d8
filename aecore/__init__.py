"""aecore: autoencoder anomaly detection for tabular data.

Higher score = more anomalous; label 1 = anomaly, everywhere.
Heavy modules (Keras, TensorFlow) load on first use, so ``import aecore`` stays quick.
"""

from __future__ import annotations

import importlib

from aecore.errors import AecoreError
from aecore.io.roles import ROLE_NAMES, ColumnRoles

__version__ = "0.1.0"

_LAZY = {
    "NotFittedError": "aecore.errors",  # subclasses scikit-learn's: made on first use
    "AnomalyDetector": "aecore.detector",
    "read_csv": "aecore.io.reader",
    "infer_roles": "aecore.io.inference",
    "load": "aecore.detector",
    "list_models": "aecore.store",
}

__all__ = ["AecoreError", "ColumnRoles", "ROLE_NAMES", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aecore' has no attribute {name!r}")
