"""A linear autoencoder learns PCA's subspace; the comparison reports it."""

import numpy as np
import pandas as pd
import pytest

from aecore import AnomalyDetector
from aecore.evaluation.pca import compare_with_pca, comparison_table, project_2d


def _three_dimensional_subspace(n_rows=2000, n_features=10, seed=0):
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(n_features, 3)))
    factors = rng.normal(size=(n_rows, 3)) * np.array([3.0, 2.0, 1.5])
    values = factors @ basis.T + 0.3 * rng.normal(size=(n_rows, n_features))
    return pd.DataFrame(values, columns=[f"v{i}" for i in range(n_features)])


def test_linear_autoencoder_finds_the_principal_subspace():
    frame = _three_dimensional_subspace()
    # Default settings, no hand-set schedule: it starts from the PCA solution.
    detector = AnomalyDetector(architecture="linear", code_size=3).fit(frame)
    result = compare_with_pca(detector, frame)
    assert max(result["principal_angles_deg"]) < 5
    assert result["autoencoder_train_mse"] <= 1.05 * result["pca_train_mse"]
    table = comparison_table(result)
    assert "Largest principal angle (deg)" in table.index
    # The autoencoder's explained variance is PCA's measure: close to PCA's for a linear one.
    x = detector.transform_inputs(frame)
    share = 1 - result["autoencoder_train_mse"] / float(np.mean(np.var(x, axis=0)))
    assert result["autoencoder_explained_variance"] == pytest.approx(share)
    assert result["autoencoder_explained_variance"] >= result["pca_explained_variance"] - 0.02
    shown = comparison_table(result, text=True)
    assert shown.loc["Largest principal angle (deg)", "pca"] == "n/a"
    assert "None" not in shown.to_numpy().ravel().tolist()


def test_projection_is_2d_and_keeps_2d_codes_as_they_are():
    codes = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    np.testing.assert_array_equal(project_2d(codes), codes)
    assert project_2d(np.random.default_rng(0).normal(size=(50, 5))).shape == (50, 2)


def test_comparison_uses_the_plain_mse_not_the_calibrated_score():
    frame = _three_dimensional_subspace(n_rows=600)
    detector = AnomalyDetector(code_size=3, epochs=3).fit(frame)  # dense, calibrated score
    x = detector.transform_inputs(frame)
    reconstruction = detector.autoencoder_.model.predict(x, verbose=0)
    plain = float(np.mean((reconstruction - x) ** 2))
    assert compare_with_pca(detector, frame)["autoencoder_train_mse"] == pytest.approx(
        plain, rel=1e-4
    )
