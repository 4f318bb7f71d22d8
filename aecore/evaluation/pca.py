"""PCA beside the autoencoder: a linear baseline of the same size, and 2-D projections."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.linalg import subspace_angles
from sklearn.decomposition import PCA

from aecore.errors import AecoreError

MIN_ROWS = 2


def projection_problem(n_rows: int, n_columns: int | None = None) -> str | None:
    """Why rows cannot be shown in 2-D or compared with PCA (too few rows, no column), as the
    message to show, or None when they can."""
    if n_rows < MIN_ROWS:
        return (
            f"The latent space and the PCA comparison need at least {MIN_ROWS} rows; the data "
            f"has {n_rows:,}. Load a file with more rows to see them."
        )
    if n_columns is not None and n_columns < 1:
        return "The latent space and the PCA comparison need at least one input column."
    return None


def project_2d(values: np.ndarray, *, seed: int = 0, fit_rows: int = 50_000) -> np.ndarray:
    """2-D view of ``values``: the values themselves when already 2-D, else their first two
    principal components (fitted on at most ``fit_rows`` rows, applied to all)."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim != 2:
        raise AecoreError("Expected a 2-D array to project.")
    problem = projection_problem(len(values), values.shape[1])
    if problem and values.shape[1] != 2:  # two columns are shown as they are, even one row
        raise AecoreError(problem)
    if values.shape[1] == 2:
        return values
    if values.shape[1] == 1:
        return np.column_stack([values[:, 0], np.zeros(len(values), dtype=np.float32)])
    sample = values
    if len(values) > fit_rows:
        sample = values[np.random.default_rng(seed).choice(len(values), fit_rows, replace=False)]
    pca = PCA(n_components=2, random_state=seed).fit(sample)
    return pca.transform(values).astype(np.float32)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2)) if len(a) else float("nan")


def _plain_mse(detector, x: np.ndarray) -> float:
    """The autoencoder's plain reconstruction MSE on encoded rows ``x``: the same measure as
    PCA's, without the detector's score calibration (code limit, column weights)."""
    from aecore.model.scoring import Scorer

    if not len(x):
        return float("nan")
    return float(np.mean(Scorer(detector.autoencoder_)(x, latent=False).row_error))


def compare_with_pca(detector, train, test=None) -> dict:
    """PCA with the autoencoder's code size, fitted on the same (preprocessed) training rows.

    Returns reconstruction MSE of PCA and the autoencoder on train (and test), the share of the
    training rows' variance each explains (for the autoencoder: 1 - its reconstruction MSE / the
    inputs' mean variance, which is exactly what PCA's explained variance ratio is), and for
    the ``linear`` architecture the principal angles (degrees) between the decoder's column
    space and PCA's components: near 0 when the autoencoder found PCA's subspace.
    """
    x_train = detector.transform_inputs(train)
    problem = projection_problem(len(x_train), x_train.shape[1])
    if problem:
        raise AecoreError(problem)
    k = int(min(detector.code_size_, x_train.shape[1], len(x_train)))
    pca = PCA(n_components=k, random_state=0).fit(x_train)
    autoencoder_mse = _plain_mse(detector, x_train)
    total = float(np.mean(np.var(x_train, axis=0)))
    result = {
        "code_size": int(detector.code_size_),
        "pca_explained_variance": float(pca.explained_variance_ratio_.sum()),
        "autoencoder_explained_variance": (
            float(1.0 - autoencoder_mse / total) if total > 0 else float("nan")
        ),
        "pca_train_mse": _mse(x_train, pca.inverse_transform(pca.transform(x_train))),
        "autoencoder_train_mse": autoencoder_mse,
        "principal_angles_deg": None,
    }
    if test is not None and len(test):
        x_test = detector.transform_inputs(test)
        result["pca_test_mse"] = _mse(x_test, pca.inverse_transform(pca.transform(x_test)))
        result["autoencoder_test_mse"] = _plain_mse(detector, x_test)
    if detector.architecture == "linear" and detector.autoencoder_.window == 1:
        kernel = detector.autoencoder_.decoder.get_layer("output").get_weights()[0]  # (k, n)
        angles = subspace_angles(kernel.T.astype(np.float64), pca.components_.T)
        result["principal_angles_deg"] = sorted(float(a) for a in np.degrees(angles))
    return result


def _cell_text(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def comparison_table(result: dict, *, text: bool = False) -> pd.DataFrame:
    """The comparison as a small table for display; ``text``: every cell as a short string,
    "n/a" where a measure does not apply (never a bare None or NaN)."""
    rows = [
        ("Code size", result["code_size"], result["code_size"]),
        ("Train reconstruction MSE", result["autoencoder_train_mse"], result["pca_train_mse"]),
    ]
    if "pca_test_mse" in result:
        rows.append(
            ("Test reconstruction MSE", result["autoencoder_test_mse"], result["pca_test_mse"])
        )
    rows.append(
        (
            "Explained variance (train)",
            result.get("autoencoder_explained_variance", float("nan")),
            result["pca_explained_variance"],
        )
    )
    if result.get("principal_angles_deg"):
        rows.append(("Largest principal angle (deg)", max(result["principal_angles_deg"]), None))
    table = pd.DataFrame(rows, columns=["measure", "autoencoder", "pca"]).set_index("measure")
    return table.astype(object).map(_cell_text) if text else table
