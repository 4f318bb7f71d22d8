"""aecore: autoencoder anomaly detection for tabular data.

Higher score = more anomalous; label 1 = anomaly, everywhere.
Heavy modules (Keras, TensorFlow) load on first use, so ``import aecore`` stays quick.
"""

from __future__ import annotations

import importlib
import os

# One thread per TensorFlow op. The detector's networks are small: on two cores, splitting each
# tiny matrix product over two threads made a training step cost about twice as much as on one
# (bench/RESULTS.md, "Detection quality"), and ops large enough to gain from it are few. Scoring
# keeps every core busy by running its batches side by side (``aecore.model.scoring``). Read
# when TensorFlow starts, so it holds if aecore is imported first; a value already set wins.
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")

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
