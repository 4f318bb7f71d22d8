"""The estimator contract: scikit-learn's ``check_estimator`` with the intended deviations listed
(each with its reason), PyOD's conventions (``decision_function`` higher = more abnormal,
``decision_scores_`` and ``labels_`` after fit, ``predict`` 1 = anomaly), and ``score(X, y)``
usable by ``Pipeline`` and ``GridSearchCV``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import check_estimator

from aecore import AnomalyDetector, NotFittedError

TOO_FEW_ROWS = (
    "training needs at least 30 rows (aecore.io.inference.MIN_TRAIN_ROWS); these checks fit "
    "10 to 21 rows, too few for an autoencoder with a validation split"
)
EXPECTED_FAILED_CHECKS = {
    **{
        name: TOO_FEW_ROWS
        for name in (
            "check_estimators_overwrite_params",
            "check_dont_overwrite_parameters",
            "check_estimators_fit_returns_self",
            "check_readonly_memmap_input",
            "check_n_features_in_after_fitting",
            "check_estimators_dtypes",
            "check_f_contiguous_array_estimator",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_fit2d_1sample",
            "check_fit2d_1feature",
            "check_dict_unchanged",
            "check_fit2d_predict1d",
        )
    },
    "check_dtype_object": "text columns are categorical inputs (one-hot encoded), not an error",
    "check_estimators_empty_data_messages": "the message is written for an analyst (too few "
    "rows, no input column), not in scikit-learn's wording",
    "check_estimators_nan_inf": "missing and infinite cells are imputed with training "
    "statistics by design (analysts' files have them); they never reach the network",
}


def test_scikit_learn_checks_pass_except_the_listed_intended_deviations():
    results = check_estimator(
        AnomalyDetector(epochs=2), expected_failed_checks=EXPECTED_FAILED_CHECKS, on_fail=None
    )
    failed = {r["check_name"]: str(r["exception"])[:200] for r in results
              if r["status"] == "failed"}  # fmt: skip
    assert failed == {}
    deviating = {r["check_name"] for r in results if r["status"] == "xfail"}
    assert deviating == set(EXPECTED_FAILED_CHECKS)  # a check that passes again leaves the list
    assert sum(r["status"] == "passed" for r in results) >= 20


def _blobs(seed: int = 0, n: int = 300):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 2))
    frame = pd.DataFrame(
        {"a": base[:, 0], "b": base[:, 1], "c": base[:, 0] + base[:, 1], "d": base[:, 0] * 2}
    )
    labels = np.zeros(n, dtype=int)
    labels[-15:] = 1
    frame.loc[frame.index[-15:], "c"] += 6.0
    return frame, labels


def test_pyod_conventions_hold_after_fit():
    frame, labels = _blobs()
    detector = AnomalyDetector(epochs=5, random_state=0).fit(frame)
    scores = detector.decision_function(frame)
    np.testing.assert_allclose(detector.decision_scores_, scores, rtol=1e-5)
    np.testing.assert_array_equal(detector.labels_, (scores > detector.threshold_).astype(int))
    np.testing.assert_array_equal(detector.predict(frame), detector.labels_)
    np.testing.assert_allclose(detector.score_samples(frame), -scores)  # sklearn: higher normal
    assert scores[labels == 1].mean() > scores[labels == 0].mean()  # higher = more abnormal
    detector.set_threshold(float(np.median(scores)))
    assert detector.labels_.mean() == pytest.approx(0.5, abs=0.01)  # labels_ follow the cut


def test_score_follows_scikit_learn_so_pipelines_and_grid_search_work():
    frame, labels = _blobs()
    pipeline = Pipeline([("detector", AnomalyDetector(epochs=3))]).fit(frame)
    assert pipeline.score(frame) == pytest.approx(
        -float(np.mean(pipeline[-1].reconstruction_error(frame)))
    )
    auc = pipeline.score(frame, labels)
    assert 0.5 < auc <= 1.0
    folds = StratifiedKFold(2, shuffle=True, random_state=0)  # anomalies in every test fold
    search = GridSearchCV(AnomalyDetector(epochs=3), {"code_size": [1, 2]}, cv=folds)
    search.fit(frame, labels)
    assert search.best_params_["code_size"] in (1, 2)
    assert np.isfinite(search.best_score_)


def test_not_fitted_error_is_also_scikit_learns():
    with pytest.raises(SklearnNotFittedError):
        AnomalyDetector().decision_function(np.zeros((3, 2)))
    assert issubclass(NotFittedError, SklearnNotFittedError)
