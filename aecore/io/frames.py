"""What every estimator and workflow accepts as data: a DataFrame, or a 2-D array whose columns
are named x0, x1, ... (sparse and complex input refused with one clear message)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aecore.errors import AecoreError


def as_frame(X) -> pd.DataFrame:
    """Accept a DataFrame or a 2-D array (columns named x0, x1, ...)."""
    if isinstance(X, pd.DataFrame):
        return X
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise AecoreError(
            "Sparse input is not supported: pass a DataFrame or a dense array (X.toarray())."
        )
    array = np.asarray(X)
    if np.iscomplexobj(array):
        raise AecoreError("Complex data not supported: pass real numbers.")
    if array.ndim != 2:
        raise AecoreError(f"Expected a table (2-D data), got an array of shape {array.shape}.")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
