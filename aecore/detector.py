"""``AnomalyDetector``: the scikit-learn-style estimator that every entry point uses.

Higher score = more anomalous; ``predict`` returns 1 for an anomaly. The score (reconstruction
error) and the cut (``threshold_``) are two separate ideas: the threshold is derived from the
errors of held-out rows at fit time and can be moved afterwards with ``set_threshold``.

The score is calibrated at fit time (``score_calibration_``): codes are kept within the region
of typical training codes before decoding, and, when the training rows are unlabelled (they may
hide anomalies), each column's squared error is weighted by how closely the model rebuilds that
column on training rows. Trained on unlabelled rows, a second autoencoder learns the same rows
less those the first scores far above the rest (at most a tenth), and the score is the mean of
both models' scores.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from . import data, defaults, thresholds
from .defaults import default_code_size, default_training
from .errors import AecoreError, NotFittedError
from .preprocessing import Preprocessor
from .roles import ColumnRoles
from .settings import check_budget, check_settings
from .splits import Split, split_rows
from .training import EpochProgress  # noqa: F401  (re-exported for UIs)

CALIBRATION_ROWS = 50_000
SCHEDULE_KEYS = ("epochs", "batch_size", "learning_rate", "patience")
# With labels of both kinds, test_share="auto" holds this share of the rows out of training and
# of the threshold, and the metrics are measured on them alone.
LABELLED_TEST_SHARE = 0.2
DEFAULT_THRESHOLD_PARAMS = {"percentile": {"percentile": 99.0}, "mean_std": {"k": 3.0}}


@dataclass
class Scores:
    """Everything one scoring pass yields for a frame, row-aligned with it."""

    row_error: np.ndarray
    feature_errors: pd.DataFrame
    latent: np.ndarray | None
    flags: np.ndarray
    threshold: float
    reconstruction: pd.DataFrame | None = None


def default_test_share(labels: np.ndarray | None) -> float:
    """The share of rows ``test_share="auto"`` holds out: ``LABELLED_TEST_SHARE`` when the
    labels (1 anomaly, 0 normal, -1 unknown) hold both kinds, so there is something to
    measure, else 0."""
    if labels is None:
        return 0.0
    labels = np.asarray(labels)
    return LABELLED_TEST_SHARE if (labels == 0).any() and (labels == 1).any() else 0.0


def as_frame(X) -> pd.DataFrame:
    """Accept a DataFrame or a 2-D array (columns named x0, x1, ...)."""
    if isinstance(X, pd.DataFrame):
        return X
    array = np.asarray(X)
    if array.ndim != 2:
        raise AecoreError(f"Expected a table (2-D data), got an array of shape {array.shape}.")
    return pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])


class AnomalyDetector(BaseEstimator):
    """An autoencoder anomaly detector for tabular data.

    ``AnomalyDetector().fit(frame)`` infers column roles, standardises with training rows only,
    picks a code size and training schedule from the data, trains with early stopping and sets
    ``threshold_`` at the 99th percentile of held-out rows' errors. With a label column (or
    ``y``), ``train_on="auto"`` trains on normal rows only (the novelty setting), and
    ``test_share="auto"`` holds ``LABELLED_TEST_SHARE`` of the rows out (the latest ones with a
    time column, else drawn stratified by label): ``evaluation_`` is measured on them alone
    (``evaluation_["scope"]`` says so), never on rows that trained or set the threshold.

    ``code_limit`` (a share in (0, 1), ``"auto"`` or None) pulls codes beyond the Mahalanobis
    radius holding that share of training codes back onto it before decoding: a row unusual
    along the data's main directions (not only off them), including an anomaly hidden among
    unlabelled training rows that the network learned to rebuild, cannot be rebuilt and scores
    high. ``"auto"`` is ``defaults.CODE_LIMIT_SHARE``, and no limit for ``linear`` (kept
    equivalent to PCA). ``normalise_errors`` (True, False or ``"auto"``) weights each column's
    squared error inversely to its typical (median) error on training rows; ``"auto"`` does so
    only when training on all rows (no labels), where it helps most, not on labelled normal
    rows, where it gained nothing and raised the false-alarm rate on new data. Calibrated scores
    are scaled so that held-out rows score their plain MSE on average.

    ``second_model`` (a share in (0, 1), ``"auto"`` or None): after the first autoencoder, train
    a second one, the same way, on the training rows less those the first scores far above the
    rest (more than three robust standard deviations above the median log score), at most that
    share of them, and score every row with the mean of the two models' calibrated scores (and
    per-feature errors). Unlabelled training rows may hide a small group of anomalies that the
    first network learns to rebuild; the second never sees most of them, while the first keeps
    the rare but normal rows in view (and, when every row is normal, few are left out).
    ``"auto"`` is ``defaults.SECOND_MODEL_SHARE`` when training on all rows (no labels) with a
    single-row, non-variational model, else None (one model). Codes (the latent view, the
    few-label encoder) come from the first model.
    """

    def __init__(
        self,
        *,
        architecture: str = "dense",
        code_size: int | None = None,
        hidden_sizes: list[int] | None = None,
        activation: str = "relu",
        scaling: str = "standard",
        log_transform: str | bool | list = "auto",
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | None = None,
        patience: int | None = None,
        split: str = "auto",
        validation_share: float = 0.2,
        test_share: float | str = "auto",
        train_on: str = "auto",
        threshold_method: str = "percentile",
        threshold_params: dict | None = None,
        l1: float = 1e-4,
        noise_std: float = 0.1,
        dropout: float = 0.0,
        window: int = 1,
        kl_weight: float | None = None,
        score_kl: bool = False,
        normalise_errors: bool | str = "auto",
        code_limit: float | str | None = "auto",
        second_model: float | str | None = "auto",
        roles: ColumnRoles | Mapping[str, str] | None = None,
        random_state: int = 0,
    ):
        self.architecture = architecture
        self.code_size = code_size
        self.hidden_sizes = hidden_sizes
        self.activation = activation
        self.scaling = scaling
        self.log_transform = log_transform
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.split = split
        self.validation_share = validation_share
        self.test_share = test_share
        self.train_on = train_on
        self.threshold_method = threshold_method
        self.threshold_params = threshold_params
        self.l1 = l1
        self.noise_std = noise_std
        self.dropout = dropout
        self.window = window
        self.kl_weight = kl_weight
        self.score_kl = score_kl
        self.normalise_errors = normalise_errors
        self.code_limit = code_limit
        self.second_model = second_model
        self.roles = roles
        self.random_state = random_state

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, X, y=None, *, progress=None, should_stop=None) -> AnomalyDetector:
        """Train on ``X`` (a DataFrame or 2-D array). ``y`` (optional) holds labels, 1 = anomaly.

        ``progress(EpochProgress)`` is called after every epoch; ``should_stop()`` returning
        True cancels training (the best weights so far are kept and the detector is usable).
        """
        frame = as_frame(X)
        roles, labels, order, normal_only, split = self._training_rows(frame, y)

        preprocessor = Preprocessor(self.scaling, self.log_transform)
        preprocessor.fit(frame.iloc[split.train], roles)
        x_all = preprocessor.transform(frame, training=True)  # infinite/sentinel cells imputed
        x_train = x_all[split.train]
        x_val = x_all[split.validation]
        n_inputs = x_all.shape[1]

        code_size = int(self.code_size or default_code_size(x_train, seed=self.random_state))
        self.trained_on_ = "normal" if normal_only else "all"  # decides the second model
        second_share = self._second_model_share()
        schedule = self._schedule(len(x_train), n_inputs, second_share)
        self._check_memory(n_inputs, code_size, schedule, len(x_train), second_share)

        autoencoder = self._build(n_inputs, code_size, self.window)
        if self.window > 1:
            from .scoring import make_windows

            ordered = self._window_order(order, len(frame))
            windows = make_windows(x_all[ordered], self.window)
            position = np.empty(len(frame), dtype=np.int64)
            position[ordered] = np.arange(len(frame))
            train_in, val_in = windows[position[split.train]], windows[position[split.validation]]
        else:
            train_in, val_in = x_train, x_val
        history = self._train(autoencoder, train_in, val_in, schedule, progress, should_stop)

        self.roles_ = roles
        self.preprocessor_ = preprocessor
        self.autoencoder_ = autoencoder
        self.code_size_ = code_size
        self.training_ = schedule
        self.history_ = history
        self.split_ = split
        self.n_train_rows_ = int(len(split.train))
        self.feature_names_in_ = np.asarray(roles.inputs, dtype=object)
        self.n_features_in_ = len(roles.inputs)
        self.trained_on_ = "normal" if normal_only else "all"
        self.second_autoencoder_ = None
        self.score_calibration_ = None
        self._scorer = None
        self.score_calibration_ = self._calibrate(frame, x_all, split, autoencoder)
        self._scorer = None
        cancelled = bool(history.get("cancelled")) or (should_stop is not None and should_stop())
        if second_share is not None and not cancelled:
            self._fit_second(frame, x_all, split, second_share, progress, should_stop)

        reference_rows = split.validation if len(split.validation) else split.train
        ref_in = frame.iloc[reference_rows]
        self.reference_errors_ = self._score_encoded(
            x_all[reference_rows], ref_in, latent=False
        ).row_error
        self._set_initial_threshold(frame, x_all, labels, order, held_out=split.held_out)
        self.evaluation_ = self._evaluate_on(frame, x_all, labels, order, split)
        from .drift import reference_feature_errors  # lazy: drift imports this module

        self.reference_feature_errors_ = reference_feature_errors(self, frame, reference_rows)
        return self

    def _training_rows(self, frame: pd.DataFrame, y=None):
        """The roles, labels, time order, whether only normal rows train, and the row split
        that ``fit`` uses on ``frame`` (raises ``AecoreError`` when it cannot train)."""
        check_settings(self.get_params(deep=False))  # every setting, before any work
        roles = self._resolve_roles(frame)
        data.check_trainable(frame, roles)
        labels = self._labels(frame, roles, y)
        order = self._order(frame, roles)
        normal_only = self.train_on == "normal" or (
            self.train_on == "auto" and labels is not None and (labels == 0).any()
        )
        if self.train_on == "normal" and labels is None:
            raise AecoreError("Training on normal rows only needs a label column (or y).")
        split = split_rows(
            len(frame),
            method=self.split,
            validation_share=self.validation_share,
            test_share=self._test_share(labels),
            order=order,
            normal_mask=(labels != 1) if normal_only else None,
            strata=labels,
            seed=self.random_state,
        )
        if len(split.train) < 2:
            raise AecoreError("Too few rows left to train on after the split.")
        return roles, labels, order, normal_only, split

    def _test_share(self, labels: np.ndarray | None) -> float:
        """``test_share``, with ``"auto"`` resolved: ``LABELLED_TEST_SHARE`` when the labels
        hold both normal rows and anomalies (there is something to measure), else 0."""
        share = self.test_share
        if isinstance(share, str):
            if share != "auto":
                raise AecoreError(
                    f"The test share must be a number between 0 and 1 or 'auto', got {share!r}."
                )
            return default_test_share(labels)
        return float(share)

    def _schedule(self, n_train_rows: int, n_inputs: int, second_share: float | None) -> dict:
        """``defaults.default_training`` for the rows that train (shared with a second model),
        with every setting given to the detector (not None) in place of its default."""
        schedule = default_training(n_train_rows, n_inputs, models=1 + (second_share is not None))
        for key in SCHEDULE_KEYS:
            if getattr(self, key) is not None:
                schedule[key] = getattr(self, key)
        return schedule

    def planned_schedule(self, X, y=None) -> dict:
        """The training schedule ``fit(X, y)`` would use, without training: ``epochs`` (at
        most), ``batch_size``, ``learning_rate`` and ``patience``, each the detector's own
        setting or else the default for the rows that will train; plus ``n_train_rows`` (after
        the split; normal rows only when ``train_on`` picks them), ``trained_on`` ("normal" or
        "all"), ``models`` (2 with a second model, which trains with the same schedule),
        ``n_inputs`` (encoded input columns) and ``automatic`` (the settings left to the
        defaults). The batch size is the one used: at most the number of training rows.
        Raises ``AecoreError`` as ``fit`` would when the data cannot train."""
        frame = as_frame(X)
        roles, _, _, normal_only, split = self._training_rows(frame, y)
        trained_on = "normal" if normal_only else "all"
        second_share = self._second_model_share(trained_on)
        preprocessor = Preprocessor(self.scaling, self.log_transform)
        n_inputs = preprocessor.fit(frame.iloc[split.train], roles).n_encoded
        schedule = self._schedule(len(split.train), n_inputs, second_share)
        schedule["batch_size"] = int(min(schedule["batch_size"], len(split.train)))
        # The automatic code size is at most 32 and half the inputs: a bound, not computed here.
        code_size = int(self.code_size or max(1, min(32, n_inputs // 2)))
        self._check_memory(n_inputs, code_size, schedule, len(split.train), second_share)
        return {
            **schedule,
            "n_train_rows": int(len(split.train)),
            "n_inputs": int(n_inputs),
            "trained_on": trained_on,
            "models": 1 + (second_share is not None),
            "automatic": [key for key in SCHEDULE_KEYS if getattr(self, key) is None],
        }

    def _check_memory(self, n_inputs, code_size, schedule, n_rows, second_share) -> None:
        """The schedule's settings in range, and the network's estimated training memory
        within the budget (``aecore.settings.check_budget``): raised before Keras allocates
        anything."""
        check_settings({"code_size": code_size, **schedule})
        check_budget(
            self.architecture, n_inputs, code_size, self.hidden_sizes, window=self.window,
            batch_size=int(schedule["batch_size"]), n_rows=n_rows,
            models=1 + (second_share is not None),
        )  # fmt: skip

    def _second_model_share(self, trained_on: str | None = None) -> float | None:
        share = self.second_model
        if share is None or share is False:
            return None
        if share == "auto":
            plain = self.window == 1 and self.architecture != "variational"
            if (trained_on or self.trained_on_) == "all" and plain:
                return defaults.SECOND_MODEL_SHARE
            return None
        if isinstance(share, str) or not 0 < float(share) < 1:
            raise AecoreError("second_model must be a share between 0 and 1, 'auto' or None.")
        if self.window != 1 or self.architecture == "variational":
            raise AecoreError(
                "A second model is only trained for single-row, non-variational architectures."
            )
        return float(share)

    def _fit_second(self, frame, x_all, split: Split, share: float, progress, should_stop):
        """Train the second autoencoder on the training rows below the first model's score
        cut (``defaults.second_model_cut``: rows that stand out, at most ``share`` of them;
        validation rows above it are left out too), with the same settings, and calibrate it
        like the first (see ``second_model``)."""
        first = self._score_with(self.scorer_, x_all[split.train], None, latent=False).row_error
        cut = defaults.second_model_cut(first, share)
        train = split.train[first <= cut]
        validation = split.validation
        if len(validation):
            held = self._score_with(self.scorer_, x_all[validation], None, latent=False)
            validation = validation[held.row_error <= cut]
        if len(train) < 2:
            return
        second_split = dataclasses.replace(split, train=train, validation=validation)
        # The left-out rows also stay out of the second model's scaling statistics: a hidden
        # group of anomalies widens the columns' spread and so hides itself.
        input_scale, input_shift = self._rescaling(x_all[train])
        x_all_first = x_all
        x_all = x_all * input_scale + input_shift
        x_train = x_all[train]
        code_size = int(self.code_size or default_code_size(x_train, seed=self.random_state))
        autoencoder = self._build(x_all.shape[1], code_size, 1)
        report = None
        if progress is not None:

            def report(epoch: EpochProgress) -> None:
                progress(dataclasses.replace(epoch, stage="second"))

        history = self._train(
            autoencoder, x_train, x_all[validation], self.training_, report, should_stop
        )
        if history.get("cancelled"):
            return
        calibration = self._calibrate(frame, x_all, second_split, autoencoder) or {}
        self.second_autoencoder_ = autoencoder
        first = dict(self.score_calibration_ or {})
        self.score_calibration_ = {
            **first,
            "second": {
                **calibration,
                "input_scale": [float(v) for v in input_scale],
                "input_shift": [float(v) for v in input_shift],
                "share": share,
                "left_out": float(1.0 - len(train) / max(1, len(split.train))),
                "cut": cut,
                "code_size": code_size,
                "n_train_rows": int(len(train)),
                "epochs_run": int(history.get("epochs_run", 0)),
                "best_val_loss": history.get("best_val_loss"),
            },
        }
        self._scorer = None
        self._rescale_pair(x_all_first, split)

    def _build(self, n_inputs: int, code_size: int, window: int):
        """An untrained autoencoder with this detector's settings (seeded)."""
        import keras

        from .architectures import build_autoencoder

        keras.utils.set_random_seed(self.random_state)
        return build_autoencoder(
            self.architecture,
            n_inputs,
            code_size=code_size,
            hidden_sizes=self.hidden_sizes,
            activation=self.activation,
            l1=self.l1,
            noise_std=self.noise_std,
            dropout=self.dropout,
            window=window,
            kl_weight=self.kl_weight,
            seed=self.random_state,
        )

    def _train(self, autoencoder, train_in, val_in, schedule, progress, should_stop) -> dict:
        from .training import train_autoencoder

        return train_autoencoder(
            autoencoder,
            train_in,
            val_in,
            epochs=int(schedule["epochs"]),
            batch_size=int(schedule["batch_size"]),
            learning_rate=float(schedule["learning_rate"]),
            patience=int(schedule["patience"]),
            progress=progress,
            should_stop=should_stop,
            seed=self.random_state,
        )

    def _rescale_pair(self, x_all, split: Split) -> None:
        """One factor on both models' column weights so that held-out rows score their plain
        MSE on average again (as with one model): the score keeps the loss's units, and the
        ranking (the two models' relative weight) is unchanged."""
        held = split.validation if len(split.validation) else split.train
        plain = self._member_scorer(self.autoencoder_, None)(x_all[held], latent=False)
        paired = self._score_with(self.scorer_, x_all[held], None, latent=False)
        target, current = float(np.mean(plain.row_error)), float(np.mean(paired.row_error))
        if not (target > 0 and current > 0 and np.isfinite(target / current)):
            return
        factor = target / current
        n_inputs = len(self.preprocessor_.input_columns)
        calibration = dict(self.score_calibration_)
        second = dict(calibration["second"])
        for settings in (calibration, second):
            weights = settings.get("feature_weights") or [1.0] * n_inputs
            settings["feature_weights"] = [float(w) * factor for w in weights]
        calibration["second"] = second
        self.score_calibration_ = calibration
        self._scorer = None

    def second_model_summary(self) -> str | None:
        """One sentence on the second model (for the dashboard and the CLI), None without one."""
        second = (getattr(self, "score_calibration_", None) or {}).get("second")
        if getattr(self, "second_autoencoder_", None) is None or not second:
            return None
        left_out = second.get("left_out", second["share"])
        if left_out <= 0:
            return (
                f"A second model was trained on the same {second['n_train_rows']:,} training "
                f"rows as the first ({second['epochs_run']} epochs): no row scored far above the "
                "rest, so it left out no training rows. Every score is the mean of the two "
                "models' scores."
            )
        shown = f"the {left_out:.1%}" if left_out >= 0.001 else "the few (under 0.1%)"
        return (
            f"A second model was trained without {shown} of training rows that the "
            f"first scores far above the rest (at most {second['share']:.0%}; "
            f"{second['n_train_rows']:,} rows, {second['epochs_run']} epochs): unlabelled rows "
            "may hide anomalies the first learns to rebuild. Every score is the mean of the two "
            "models' scores."
        )

    def _second_model_inputs(self, x: np.ndarray) -> np.ndarray:
        """The first model's input rows ``x`` in the second model's own input scaling."""
        second = (self.score_calibration_ or {}).get("second") or {}
        scaling = _second_input_scaling(second)
        return x if scaling is None else x * scaling[0] + scaling[1]

    def _rescaling(self, x_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per encoded column, (scale, shift) taking the first model's inputs to inputs scaled
        with ``x_rows``' own statistics (same imputation and log transforms; numeric columns
        only, one-hot columns unchanged)."""
        scale = np.ones(x_rows.shape[1], dtype=np.float32)
        shift = np.zeros(x_rows.shape[1], dtype=np.float32)
        for j, column in enumerate(self.preprocessor_.numeric_):
            values = x_rows[:, j].astype(np.float64) * column["scale"] + column["center"]
            center, spread = self.preprocessor_._center_scale(values)
            scale[j] = column["scale"] / spread
            shift[j] = (column["center"] - center) / spread
        return scale, shift

    def _normalises(self) -> bool:
        if self.normalise_errors == "auto":
            return self.trained_on_ == "all"
        if not isinstance(self.normalise_errors, bool):
            raise AecoreError("normalise_errors must be True, False or 'auto'.")
        return self.normalise_errors

    def _code_limit_share(self) -> float | None:
        limit = self.code_limit
        if limit is None or limit is False:
            return None
        if limit == "auto":
            return None if self.architecture == "linear" else defaults.CODE_LIMIT_SHARE
        if isinstance(limit, str) or not 0 < float(limit) < 1:
            raise AecoreError("code_limit must be a share between 0 and 1, 'auto' or None.")
        return float(limit)

    def _calibrate(self, frame, x_all, split: Split, autoencoder) -> dict | None:
        """The code limit from the training rows' codes and the column weights from the training
        rows' errors of the limited reconstruction (the one that is scored), then one scale so
        that the held-out rows' mean score equals their plain MSE (the validation loss): the
        score keeps the loss's units. Held-out rows are left to the threshold alone."""
        share = self._code_limit_share()
        normalise = self._normalises()
        if share is None and not normalise:
            return None

        scorers: dict = {}

        def scores(rows, limit, latent=False):
            """Unweighted errors (and codes) of the plain or the code-limited reconstruction."""
            if limit not in scorers:
                settings = {"code_limit": calibration["code_limit"]} if limit else None
                scorers[limit] = self._member_scorer(autoencoder, settings)
            return self._score_with(scorers[limit], x_all[rows], frame.iloc[rows], latent=latent)

        calibration: dict = {"feature_weights": None, "code_limit": None}
        held = split.validation if len(split.validation) else split.train
        plain = scores(held, False).feature_errors
        plain_mse = float(np.mean(plain.sum(axis=1))) / self._n_encoded
        train = split.train
        if self.window == 1 and len(train) > CALIBRATION_ROWS:
            pick = np.random.default_rng(self.random_state).choice(
                len(train), CALIBRATION_ROWS, replace=False
            )
            train = np.sort(train[pick])
        if share is not None:
            codes = scores(train, False, latent=True).latent
            calibration["code_limit"] = defaults.code_limit(codes, share)
        limited = calibration["code_limit"] is not None
        if normalise:
            weights = defaults.feature_weights(scores(train, limited).feature_errors)
        else:
            weights = np.ones(plain.shape[1])
        held_errors = scores(held, True).feature_errors if limited else plain
        weighted_mse = float(np.mean((held_errors * weights).sum(axis=1))) / self._n_encoded
        if weighted_mse > 0 and plain_mse > 0 and np.isfinite(weighted_mse / plain_mse):
            weights = weights * (plain_mse / weighted_mse)
        calibration["feature_weights"] = [float(w) for w in weights]
        return calibration

    def _resolve_roles(self, frame: pd.DataFrame) -> ColumnRoles:
        if isinstance(self.roles, ColumnRoles):
            roles = self.roles
        elif isinstance(self.roles, Mapping):
            roles = data.infer_roles(frame, overrides=dict(self.roles))
        else:
            roles = data.infer_roles(frame)
        missing = [c for c in [*roles.inputs, roles.time, roles.label] if c and c not in frame]
        if missing:
            raise AecoreError("Columns not in the data: " + ", ".join(map(repr, missing)) + ".")
        return roles

    @staticmethod
    def _labels(frame, roles, y) -> np.ndarray | None:
        if y is not None:
            labels = data.binary_labels(pd.Series(np.asarray(y)))
            if len(labels) != len(frame):
                raise AecoreError(f"y has {len(labels)} values but the data has {len(frame)} rows.")
        elif roles.label is not None:
            labels = data.binary_labels(frame[roles.label])
        else:
            return None
        return labels if (labels >= 0).any() else None

    @staticmethod
    def _order(frame, roles) -> np.ndarray | None:
        if roles.time is None or roles.time not in frame:
            return None
        times = data.parse_times(frame[roles.time])
        if times.isna().all():
            return None
        if pd.api.types.is_numeric_dtype(times):
            return times.to_numpy(dtype=np.float64, na_value=np.inf)
        stamps = times.to_numpy(dtype="datetime64[ns]")
        return np.where(np.isnat(stamps), np.iinfo(np.int64).max, stamps.astype(np.int64))

    @staticmethod
    def _window_order(order, n) -> np.ndarray:
        return np.arange(n) if order is None else np.argsort(order, kind="stable")

    def _set_initial_threshold(self, frame, x_all, labels, order, held_out=None) -> None:
        """``threshold_`` by ``threshold_method``; a label-based method reads the labels of
        every row but the ``held_out`` ones, which are kept for an honest evaluation."""
        method = self.threshold_method
        params = dict(DEFAULT_THRESHOLD_PARAMS.get(method, {}))
        params.update(self.threshold_params or {})
        if method in ("best_f1", "min_cost"):
            if labels is None:
                raise AecoreError(f"The {method} threshold needs a label column (or y).")
            ordering = self._window_order(order, len(frame))
            if held_out is not None and len(held_out):
                kept = ordering[~np.isin(ordering, held_out)]
                if len(np.unique(labels[kept][labels[kept] >= 0])) == 2:
                    ordering = kept
            errors = self._score_encoded(x_all, frame, latent=False).row_error
            choice = thresholds.choose_threshold(
                errors[ordering], method, labels=labels[ordering], **params
            )
        else:
            choice = thresholds.choose_threshold(
                self.reference_errors_, method, reference_errors=self.reference_errors_, **params
            )
        self.threshold_choice_ = choice
        self.threshold_ = float(choice.value)

    def _evaluate_on(self, frame, x_all, labels, order, split: Split) -> dict | None:
        """The metrics at ``threshold_`` against the labels, on the held-out rows (scope
        "held-out": none of them trained or set the threshold, in the data's own class mix).
        Without held-out rows holding both classes: on the rows that did not train ("not
        trained on": validation and test, anomalies moved out of training included), else on
        every row ("all rows", training rows included); ``scope`` says which."""
        from .metrics import evaluate

        if labels is None:
            return None

        def both(rows) -> bool:
            known = labels[rows][labels[rows] >= 0]
            return len(rows) > 0 and len(np.unique(known)) == 2

        rows, scope = split.held_out, "held-out"
        if not both(rows):
            rows, scope = np.setdiff1d(np.arange(len(frame)), split.train), "not trained on"
        if not both(rows):
            rows, scope = np.arange(len(frame)), "all rows"
        ordering = self._window_order(None if order is None else order[rows], len(rows))
        rows = rows[ordering]
        errors = self._score_encoded(x_all[rows], frame.iloc[rows], latent=False).row_error
        result = evaluate(errors, labels[rows], self.threshold_)
        result["scope"] = scope
        return result

    # ---- scoring -------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "autoencoder_"):
            raise NotFittedError(
                "This AnomalyDetector is not fitted yet: call fit(data) before scoring."
            )

    @property
    def scorer_(self):
        self._check_fitted()
        if getattr(self, "_scorer", None) is None:
            calibration = getattr(self, "score_calibration_", None) or {}
            second = getattr(self, "second_autoencoder_", None)
            self._scorer = self._member_scorer(
                self.autoencoder_,
                calibration,
                second=second,
                second_calibration=calibration.get("second") if second is not None else None,
            )
        return self._scorer

    def _member_scorer(self, autoencoder, calibration, *, second=None, second_calibration=None):
        """A Scorer for ``autoencoder`` calibrated as ``calibration`` says (code limit, column
        weights; None = the plain MSE), optionally averaged with a second calibrated model."""
        from .scoring import Scorer

        def limited(model, settings):
            if settings.get("code_limit"):
                model = _with_code_limit(model, settings["code_limit"])
            weights = settings.get("feature_weights")
            return model, None if not weights else np.asarray(weights, dtype=np.float32)

        calibration = calibration or {}
        model, weights = limited(autoencoder, calibration)
        second_weights = second_inputs = None
        if second is not None:
            second_calibration = second_calibration or {}
            second, second_weights = limited(second, second_calibration)
            second_inputs = _second_input_scaling(second_calibration)
        kl_weight = self.kl_weight if self.kl_weight is not None else 1 / self._n_encoded
        return Scorer(
            model,
            self.preprocessor_.group_matrix(),
            weights=weights,
            include_kl=self.score_kl,
            kl_weight=kl_weight,
            second=second,
            second_weights=second_weights,
            second_inputs=second_inputs,
        )

    @property
    def _n_encoded(self) -> int:
        return self.preprocessor_.n_encoded

    def transform_inputs(self, X) -> np.ndarray:
        """The model's input matrix for ``X`` (columns matched by name; extra ones ignored)."""
        self._check_fitted()
        return self.preprocessor_.transform(as_frame(X))

    def _score_encoded(self, x, frame, *, latent=True, reconstruction=False):
        return self._score_with(
            self.scorer_, x, frame, latent=latent, reconstruction=reconstruction
        )

    def _score_with(self, scorer, x, frame, *, latent=True, reconstruction=False):
        """``scorer`` over the encoded rows ``x`` (windows in the frame's order, results back
        in row order, when the model reads windows of rows)."""
        if self.autoencoder_.window > 1:
            order = self._order(frame, self.roles_)
            ordering = self._window_order(order, len(x))
            inverse = np.empty_like(ordering)
            inverse[ordering] = np.arange(len(ordering))
            result = scorer(x[ordering], latent=latent, reconstruction=reconstruction)
            for name in ("row_error", "feature_errors", "latent", "reconstruction"):
                value = getattr(result, name)
                if value is not None and len(value):
                    setattr(result, name, value[inverse])
            return result
        return scorer(x, latent=latent, reconstruction=reconstruction)

    def score(self, X, *, latent: bool = True, reconstruction: bool = False) -> Scores:
        """Row errors, per-feature errors, codes and flags in one pass (see ``aecore.scoring``);
        errors are weighted and reconstructions code-limited as ``score_calibration_`` says."""
        frame = as_frame(X)
        x = self.transform_inputs(frame)
        result = self._score_encoded(x, frame, latent=latent, reconstruction=reconstruction)
        recon = None
        if reconstruction:
            recon = self.preprocessor_.inverse_transform(result.reconstruction)
            recon.index = frame.index
        return Scores(
            row_error=result.row_error,
            feature_errors=pd.DataFrame(
                result.feature_errors, columns=list(self.feature_names_in_), index=frame.index
            ),
            latent=result.latent,
            flags=(result.row_error > self.threshold_).astype(np.int8),
            threshold=self.threshold_,
            reconstruction=recon,
        )

    def reconstruction_error(self, X) -> np.ndarray:
        """One value per row: the row's mean squared reconstruction error in standardised units,
        each column's error weighted as in ``score_calibration_`` (plus the weighted KL term for a
        variational model with ``score_kl``)."""
        frame = as_frame(X)
        return self._score_encoded(self.transform_inputs(frame), frame, latent=False).row_error

    decision_function = reconstruction_error
    score_samples = reconstruction_error

    def feature_errors(self, X) -> pd.DataFrame:
        """Weighted squared error per original input column (one-hot groups summed into their
        column); a row's values sum to its row error times the number of encoded columns."""
        return self.score(X, latent=False).feature_errors

    def encode(self, X) -> np.ndarray:
        """The latent code of every row (the mean code for a variational model)."""
        return self.score(X).latent

    def reconstruct(self, X) -> pd.DataFrame:
        """Reconstructions in original units (most likely category for categorical columns)."""
        return self.score(X, latent=False, reconstruction=True).reconstruction

    def predict(self, X) -> np.ndarray:
        """1 for rows whose error exceeds ``threshold_`` (anomalies), else 0."""
        return (self.reconstruction_error(X) > self.threshold_).astype(np.int8)

    def set_threshold(self, threshold: float | thresholds.ThresholdChoice) -> AnomalyDetector:
        """Move the cut (e.g. from a dashboard slider); the scores do not change."""
        self._check_fitted()
        if not isinstance(threshold, thresholds.ThresholdChoice):
            threshold = thresholds.fixed_threshold(float(threshold))
        if not math.isfinite(threshold.value):
            raise AecoreError("The threshold must be a finite number.")
        self.threshold_choice_ = threshold
        self.threshold_ = float(threshold.value)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "autoencoder_")

    def save(self, name: str, **kwargs):
        """Save as bundle ``models/<name>/`` (``aecore.persistence.save``); returns its Path."""
        from .persistence import save

        return save(self, name, **kwargs)


def _code_limit_layer(limit: dict):
    """A layer pulling codes beyond ``radius`` (Mahalanobis distance from ``center``) back onto
    that radius; codes inside pass unchanged."""
    import keras
    from keras import ops

    class CodeLimit(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.center = ops.convert_to_tensor(np.asarray(limit["center"], dtype=np.float32))
            self.precision = ops.convert_to_tensor(
                np.asarray(limit["precision"], dtype=np.float32)
            )
            self.radius = float(limit["radius"])

        def call(self, code):
            diff = code - self.center
            distance2 = ops.sum(ops.matmul(diff, self.precision) * diff, axis=-1, keepdims=True)
            factor = ops.minimum(1.0, self.radius / ops.sqrt(ops.maximum(distance2, 1e-12)))
            return self.center + diff * factor

    return CodeLimit(name="code_limit")


def _second_input_scaling(second: Mapping) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale, shift) per encoded column from the second model's stored calibration."""
    if second.get("input_scale") is None:
        return None
    return (
        np.asarray(second["input_scale"], dtype=np.float32),
        np.asarray(second["input_shift"], dtype=np.float32),
    )


def _with_code_limit(autoencoder, limit: dict):
    """The same autoencoder whose decoder first limits the code (a scoring-only wrapper, never
    saved: the limit itself is stored as JSON in ``score_calibration_``)."""
    import keras

    from .architectures import Autoencoder

    decoder = autoencoder.decoder
    code = keras.Input(shape=decoder.input_shape[1:], name="code")
    limited = _code_limit_layer(limit)(code)
    wrapped = keras.Model(code, decoder(limited), name="limited_decoder")
    return Autoencoder(
        model=autoencoder.model,
        encoder=autoencoder.encoder,
        decoder=wrapped,
        architecture=autoencoder.architecture,
        window=autoencoder.window,
    )
