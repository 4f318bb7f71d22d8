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

from aecore.errors import AecoreError, NotFittedError
from aecore.evaluation import thresholds
from aecore.io import inference, labelling
from aecore.io.frames import as_frame  # noqa: F401  (part of this module's API)
from aecore.io.roles import ColumnRoles
from aecore.model import calibration, defaults, state
from aecore.model.defaults import default_code_size, default_training
from aecore.model.preprocessing import Preprocessor
from aecore.model.settings import check_budget, check_settings
from aecore.model.splits import Split, split_rows
from aecore.model.training import EpochProgress  # re-exported for UIs

SCHEDULE_KEYS = ("epochs", "batch_size", "learning_rate", "patience")
# With labels of both kinds, test_share="auto" holds this share of the rows out of training and
# of the threshold, and the metrics are measured on them alone.
LABELLED_TEST_SHARE = 0.2
DEFAULT_THRESHOLD_PARAMS = {"percentile": {"percentile": 99.0}, "mean_std": {"k": 3.0}}
# Fine-tuning (``AnomalyDetector.fine_tune``): at most this many epochs, at this share of the
# original learning rate, on at least this many normal rows.
FINE_TUNE_EPOCHS = 30
FINE_TUNE_RATE_FACTOR = 0.1
MIN_FINE_TUNE_ROWS = 30
# Every fitted attribute, set only through ``AnomalyDetector._set_state``.
FITTED_ATTRIBUTES = (
    "roles_", "preprocessor_", "autoencoder_", "second_autoencoder_", "code_size_", "training_",
    "history_", "split_", "n_train_rows_", "feature_names_in_", "n_features_in_", "trained_on_",
    "score_calibration_", "reference_errors_", "reference_feature_errors_", "threshold_choice_",
    "threshold_", "evaluation_", "retraining_", "decision_scores_", "labels_",
)  # fmt: skip
# The fitted attributes the compiled scorers are built from: setting one builds them again.
SCORED_BY = {"preprocessor_", "autoencoder_", "second_autoencoder_", "score_calibration_"}


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

    ``memory`` (True, False/None or ``"auto"``): after the autoencoder(s), keep a memory of
    normal prototypes (k-means centres of the training rows, less those the model scores far
    above the rest: ``aecore.model.memory``). A row's nearest prototype is one more
    reconstruction, and the score is the mean of the reconstructions' errors: the autoencoder's
    (or the two models') and the prototype's squared difference (scaled to the same median on
    training rows; plain distances, as k-NN measures them). When a label column selects the
    normal rows that train (``trained_on_ == "normal"``), the prototype's error counts for
    ``defaults.MEMORY_SHARE_NORMAL`` (3/4) of the score and the network's for the rest:
    unlabelled rows may hide anomalies that become prototypes, known normal rows do not. A row
    the network rebuilds well but that is far from every normal prototype (a class of its own)
    still scores high, and its per-feature errors still add up to its score. ``"auto"`` keeps
    one for single-row models but ``linear`` (kept equivalent to PCA) and ``variational``.
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
        memory: bool | str | None = "auto",
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
        self.memory = memory
        self.roles = roles
        self.random_state = random_state

    # ---- fitting -------------------------------------------------------------------------
    def fit(self, X, y=None, *, progress=None, should_stop=None) -> AnomalyDetector:
        """Train on ``X`` (a DataFrame or 2-D array). ``y`` (optional) holds labels, 1 = anomaly.

        ``progress(EpochProgress)`` is called after every epoch; ``should_stop()`` returning
        True cancels training (the best weights so far are kept and the detector is usable).
        As PyOD's detectors do, ``fit`` ends by setting ``decision_scores_`` (the score of
        every row of ``X``) and ``labels_`` (1 where it is above ``threshold_``).
        """
        frame = as_frame(X)
        roles, labels, order, normal_only, split = self._training_rows(frame, y)

        preprocessor = Preprocessor(self.scaling, self.log_transform)
        preprocessor.fit(frame.iloc[split.train], roles)
        x_all = preprocessor.transform(frame, training=True)  # infinite/sentinel cells imputed
        x_train = x_all[split.train]
        n_inputs = x_all.shape[1]

        code_size = int(self.code_size or default_code_size(x_train, seed=self.random_state))
        trained_on = "normal" if normal_only else "all"  # decides the second model
        second_share = self._second_model_share(trained_on)
        schedule = self._schedule(len(x_train), n_inputs, second_share)
        self._check_memory(n_inputs, code_size, schedule, len(x_train), second_share)

        autoencoder = self._build(n_inputs, code_size, self.window, x_train)
        train_in, val_in = self._network_inputs(x_all, order, split, self.window)
        from aecore.model.training import SharedTraining

        # The second model (when there is one) trains in the first one's compiled passes.
        shared = SharedTraining()
        history = self._train(
            autoencoder, train_in, val_in, schedule, progress, should_stop, shared=shared
        )

        self._set_state(
            roles_=roles,
            preprocessor_=preprocessor,
            autoencoder_=autoencoder,
            second_autoencoder_=None,
            code_size_=code_size,
            training_=schedule,
            history_=history,
            split_=split,
            n_train_rows_=int(len(split.train)),
            feature_names_in_=np.asarray(roles.inputs, dtype=object),
            n_features_in_=len(roles.inputs),
            trained_on_=trained_on,
            score_calibration_=None,
            retraining_=None,
        )
        self._set_state(score_calibration_=self._calibrate(frame, x_all, split, autoencoder))
        cancelled = bool(history.get("cancelled")) or (should_stop is not None and should_stop())
        if second_share is not None and not cancelled:
            self._fit_second(frame, x_all, split, second_share, progress, should_stop, shared)
        self._fit_memory(x_all, split)
        self._finish_fit(frame, x_all, labels, order, split)
        return self

    def _uses_memory(self) -> bool:
        memory = self.memory
        if memory is None or memory is False:
            return False
        if memory not in (True, "auto"):
            raise AecoreError("memory must be True, False, None or 'auto'.")
        plain = self.window == 1 and self.architecture != "variational"
        if memory == "auto":
            return plain and self.architecture != "linear"
        if not plain:
            raise AecoreError(
                "A memory of prototypes is only kept for single-row, non-variational models."
            )
        return True

    def _fit_memory(self, x_all, split: Split) -> None:
        """Keep the memory of normal prototypes (``aecore.model.memory``) from the training
        rows the score so far keeps (below ``calibration.second_model_cut``), scaled to that
        score's median on them (see ``memory``)."""
        from aecore.model.memory import build_memory

        settings = dict(getattr(self, "score_calibration_", None) or {})
        if settings.pop("memory", None) is not None:  # the score before any memory
            self._set_state(score_calibration_=settings or None)
        if not self._uses_memory() or len(split.train) == 0:
            return
        x_train = x_all[split.train]
        scores = self._score_with(self.scorer_, x_train, None, latent=False).row_error
        kept = scores <= calibration.second_model_cut(scores)
        # Plain distances in model units, as k-NN measures them: the column weights that help
        # the network's error made the nearest normal rows harder to find (bench/RESULTS.md).
        memory = build_memory(
            x_train[kept], np.ones(x_train.shape[1]), scores[kept], seed=self.random_state
        )
        if memory is not None:
            if self.trained_on_ == "normal":  # the rows are known to be normal (labels)
                memory["share"] = defaults.MEMORY_SHARE_NORMAL
            self._set_state(score_calibration_={**settings, "memory": memory})

    def memory_summary(self) -> str | None:
        """One sentence on the memory of prototypes (dashboard, CLI), None without one."""
        memory = (getattr(self, "score_calibration_", None) or {}).get("memory")
        if not memory:
            return None
        return (
            f"The score also compares each row with its nearest of {len(memory['prototypes'])} "
            f"normal prototypes (typical rows summarised from {memory['n_rows']:,} training "
            "rows): a row far from all of them scores high even when the network rebuilds it "
            "well. "
            + (
                "Every score is the mean of the reconstructions' errors: "
                + ("the two networks'" if getattr(self, "second_autoencoder_", None) is not None
                   else "the network's")
                + " and the nearest prototype's."
                if memory.get("share") is None else
                f"The training rows are known to be normal, so the nearest prototype's error "
                f"counts for {memory['share']:.0%} of the score and the network's for "
                f"{1 - memory['share']:.0%}."
            )
        )  # fmt: skip

    def _network_inputs(self, x_all, order, split: Split, window: int):
        """(training, validation) network inputs: the encoded rows, or for a model over
        windows of rows, the window ending at each row in time order."""
        if window <= 1:
            return x_all[split.train], x_all[split.validation]
        from aecore.model.scoring import make_windows

        ordered = inference.window_order(order, len(x_all))
        windows = make_windows(x_all[ordered], window)
        position = np.empty(len(x_all), dtype=np.int64)
        position[ordered] = np.arange(len(x_all))
        return windows[position[split.train]], windows[position[split.validation]]

    def _finish_fit(self, frame, x_all, labels, order, split: Split) -> None:
        """The common ending of ``fit`` and ``fine_tune`` (as PyOD's ``BaseDetector``): the
        reference errors and per-column profile of the held-out rows, the threshold, the
        metrics, and the scores and labels of every row."""
        reference_rows = split.validation if len(split.validation) else split.train
        errors = self._score_encoded(x_all, frame, latent=False).row_error
        self._set_state(
            reference_errors_=self._score_encoded(
                x_all[reference_rows], frame.iloc[reference_rows], latent=False
            ).row_error
        )
        self._set_state(threshold_choice_=self._initial_threshold(errors, labels, order, split))
        self._set_state(
            evaluation_=self._evaluate_on(frame, x_all, labels, order, split),
            reference_feature_errors_=self.reference_feature_errors(frame, reference_rows),
            decision_scores_=errors,
        )

    def _training_rows(self, frame: pd.DataFrame, y=None):
        """The roles, labels, time order, whether only normal rows train, and the row split
        that ``fit`` uses on ``frame`` (raises ``AecoreError`` when it cannot train)."""
        check_settings(self.get_params(deep=False))  # every setting, before any work
        roles = self._resolve_roles(frame)
        inference.check_trainable(frame, roles)
        labels = self._labels(frame, roles, y)
        order = inference.time_order(frame, roles)
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
        within the budget (``aecore.model.settings.check_budget``): raised before Keras allocates
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

    def _fit_second(
        self, frame, x_all, split: Split, share: float, progress, should_stop, shared=None
    ):
        """Train the second autoencoder on the training rows below the first model's score
        cut (``calibration.second_model_cut``: rows that stand out, at most ``share`` of them;
        validation rows above it are left out too), with the same settings, and calibrate it
        like the first (see ``second_model``)."""
        first = self._score_with(self.scorer_, x_all[split.train], None, latent=False).row_error
        cut = calibration.second_model_cut(first, share)
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
        input_scale, input_shift = calibration.input_rescaling(self.preprocessor_, x_all[train])
        x_second = x_all * input_scale + input_shift
        x_train = x_second[train]
        code_size = int(self.code_size or default_code_size(x_train, seed=self.random_state))
        autoencoder = self._build(x_second.shape[1], code_size, 1, x_train)
        from aecore.model.scoring import trace_ahead

        tracing = trace_ahead(lambda: self._later_scorers(autoencoder))
        try:
            history = self._train(
                autoencoder, x_train, x_second[validation], self.training_,
                _second_stage(progress), should_stop, shared=shared,
            )  # fmt: skip
        finally:
            tracing.result()
        if history.get("cancelled"):
            return
        settings = self._calibrate(frame, x_second, second_split, autoencoder) or {}
        self._set_state(
            second_autoencoder_=autoencoder,
            score_calibration_={
                **(self.score_calibration_ or {}),
                "second": {
                    **settings,
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
            },
        )
        self._rescale_pair(x_all, split)

    def _later_scorers(self, second) -> list:
        """Scorers with the structure of those the fit builds once ``second`` is trained (its
        own calibration, the pair, the pair with a memory), on placeholder numbers: traced
        while it trains (``scoring.trace_ahead``)."""
        n_encoded = self._n_encoded
        pair = {"input_scale": [1.0] * n_encoded, "input_shift": [0.0] * n_encoded}
        scorers = [
            self._member_scorer(second, None),
            self._member_scorer(self.autoencoder_, None, second=second, second_calibration=pair),
        ]
        if self._uses_memory():
            memory = {"prototypes": np.zeros((2, n_encoded), np.float32), "scale": 1.0}
            scorers.append(
                self._member_scorer(
                    self.autoencoder_, None, second=second, second_calibration=pair, memory=memory
                )
            )
        return scorers

    def _build(self, n_inputs: int, code_size: int, window: int, train_rows=None):
        """An untrained autoencoder with this detector's settings, its initial weights from
        ``random_state`` alone (``architectures.SeededLayers``: no process-wide seed); a linear
        one starts from the PCA solution of ``train_rows`` (``architectures.start_from_pca``)."""
        from aecore.model.architectures import build_autoencoder, start_from_pca

        autoencoder = build_autoencoder(
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
        if train_rows is not None and window == 1:
            start_from_pca(autoencoder, train_rows)
        return autoencoder

    def _train(
        self, autoencoder, train_in, val_in, schedule, progress, should_stop, *, shared=None
    ) -> dict:
        from aecore.model.training import train_autoencoder

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
            shared=shared,
        )

    def _rescale_pair(self, x_all, split: Split) -> None:
        """One factor on both models' column weights so that held-out rows score their plain
        MSE on average again (``calibration.pair_rescaled``)."""
        held = split.validation if len(split.validation) else split.train
        plain = self._member_scorer(self.autoencoder_, None)(x_all[held], latent=False)
        paired = self._score_with(self.scorer_, x_all[held], None, latent=False)
        rescaled = calibration.pair_rescaled(
            self.score_calibration_, plain.row_error, paired.row_error,
            len(self.preprocessor_.input_columns),
        )  # fmt: skip
        if rescaled is not None:
            self._set_state(score_calibration_=rescaled)

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
        scaling = calibration.second_input_scaling(second)
        return x if scaling is None else x * scaling[0] + scaling[1]

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
        """``calibration.calibrate`` for ``autoencoder`` on these rows: code limit, column
        weights and the scale that keeps the loss's units (None: the plain MSE)."""
        scorers: dict = {}

        def score_rows(rows, settings, latent):
            key = settings is not None
            if key not in scorers:
                scorers[key] = self._member_scorer(autoencoder, settings)
            return self._score_with(scorers[key], x_all[rows], frame.iloc[rows], latent=latent)

        return calibration.calibrate(
            score_rows,
            split,
            self._n_encoded,
            code_limit_share=self._code_limit_share(),
            normalise=self._normalises(),
            window=self.window,
            seed=self.random_state,
        )

    def _resolve_roles(self, frame: pd.DataFrame) -> ColumnRoles:
        if isinstance(self.roles, ColumnRoles):
            roles = self.roles
        elif isinstance(self.roles, Mapping):
            roles = inference.infer_roles(frame, overrides=dict(self.roles))
        else:
            roles = inference.infer_roles(frame)
        missing = [c for c in [*roles.inputs, roles.time, roles.label] if c and c not in frame]
        if missing:
            raise AecoreError("Columns not in the data: " + ", ".join(map(repr, missing)) + ".")
        return roles

    @staticmethod
    def _labels(frame, roles, y) -> np.ndarray | None:
        if y is not None:
            labels = labelling.binary_labels(pd.Series(np.asarray(y)))
            if len(labels) != len(frame):
                raise AecoreError(f"y has {len(labels)} values but the data has {len(frame)} rows.")
        elif roles.label is not None:
            labels = labelling.binary_labels(frame[roles.label])
        else:
            return None
        return labels if (labels >= 0).any() else None

    def _threshold_params(self) -> tuple[str, dict]:
        method = self.threshold_method
        params = dict(DEFAULT_THRESHOLD_PARAMS.get(method, {}))
        params.update(self.threshold_params or {})
        return method, params

    def _initial_threshold(self, errors, labels, order, split: Split) -> thresholds.ThresholdChoice:
        """The threshold by ``threshold_method``: on ``reference_errors_``, or for a
        label-based method on the labels of every row (``errors``: all of them) but the
        ``split.held_out`` ones, which are kept for an honest evaluation."""
        method, params = self._threshold_params()
        if method in ("best_f1", "min_cost"):
            if labels is None:
                raise AecoreError(f"The {method} threshold needs a label column (or y).")
            ordering = inference.window_order(order, len(errors))
            held_out = split.held_out
            if held_out is not None and len(held_out):
                kept = ordering[~np.isin(ordering, held_out)]
                if len(np.unique(labels[kept][labels[kept] >= 0])) == 2:
                    ordering = kept
            return thresholds.choose_threshold(
                errors[ordering], method, labels=labels[ordering], **params
            )
        return thresholds.choose_threshold(
            self.reference_errors_, method, reference_errors=self.reference_errors_, **params
        )

    def _evaluate_on(self, frame, x_all, labels, order, split: Split) -> dict | None:
        """The metrics at ``threshold_`` against the labels, on the held-out rows (scope
        "held-out": none of them trained or set the threshold, in the data's own class mix).
        Without held-out rows holding both classes: on the rows that did not train ("not
        trained on": validation and test, anomalies moved out of training included), else on
        every row ("all rows", training rows included); ``scope`` says which."""
        from aecore.evaluation.metrics import evaluate

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
        ordering = inference.window_order(None if order is None else order[rows], len(rows))
        rows = rows[ordering]
        errors = self._score_encoded(x_all[rows], frame.iloc[rows], latent=False).row_error
        result = evaluate(errors, labels[rows], self.threshold_)
        result["scope"] = scope
        return result

    # ---- state -------------------------------------------------------------------------
    def _set_state(self, **values) -> None:
        """The one place fitted attributes are set (``FITTED_ATTRIBUTES``). ``threshold_`` follows
        ``threshold_choice_`` and ``labels_`` follows ``decision_scores_`` and the threshold;
        the compiled scorers are built again on next use when what they are built from
        (``SCORED_BY``) changes."""
        derived = {"threshold_", "labels_"} & set(values)
        unknown = sorted((set(values) - set(FITTED_ATTRIBUTES)) | derived)
        if unknown:
            raise TypeError(f"Not settable fitted state: {', '.join(unknown)}.")
        for key, value in values.items():
            setattr(self, key, value)
        if "threshold_choice_" in values:
            self.threshold_ = float(self.threshold_choice_.value)
        scores = getattr(self, "decision_scores_", None)
        if scores is not None and hasattr(self, "threshold_"):
            self.labels_ = (np.asarray(scores) > self.threshold_).astype(np.int8)
        if SCORED_BY & set(values):  # what the compiled scorers are built from
            self._scorer = None
            self._member_scorers = None

    def check_fitted(self) -> None:
        """Raise ``NotFittedError`` (a scikit-learn ``NotFittedError`` too) unless fitted."""
        if not hasattr(self, "autoencoder_"):
            raise NotFittedError(
                "This AnomalyDetector is not fitted yet: call fit(data) before scoring."
            )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "autoencoder_")

    def __getstate__(self) -> dict:
        """Without the compiled scorers (rebuilt on next use), so that scikit-learn's tools can
        copy a fitted detector between processes; this project itself saves bundles only."""
        fields = super().__getstate__()
        return {k: v for k, v in fields.items() if k not in ("_scorer", "_member_scorers")}

    def network(self):
        """The Keras model a bundle stores: the autoencoder, or with a second model one network
        holding both side by side (``state.pair_network``)."""
        self.check_fitted()
        second = getattr(self, "second_autoencoder_", None)
        return state.pair_network(self.autoencoder_.model, None if second is None else second.model)

    def get_state(self) -> dict:
        """Everything fitted but the network's weights, as plain JSON values (in the spirit of
        Keras's ``get_config``): what ``meta.json`` stores and ``from_state`` reads back. At
        most ``state.MAX_REFERENCE_ERRORS`` reference errors are kept (evenly spaced
        quantiles beyond that); ``decision_scores_`` and ``labels_`` (one value per training
        row) and ``split_`` (only its sizes) are not."""
        self.check_fitted()
        params = self.get_params(deep=False)
        params["roles"] = state.roles_to_json(params.get("roles"))
        reference = np.asarray(self.reference_errors_)
        split = getattr(self, "split_", None)
        fitted = {
            "architecture": {
                "name": self.autoencoder_.architecture,
                "window": int(self.autoencoder_.window),
                "code_size": int(self.code_size_),
                "n_inputs": int(self.preprocessor_.n_encoded),
                "parameters": int(self.network().count_params()),
            },
            "params": params,
            "features": state.feature_entries(self.roles_, self.preprocessor_),
            "roles": self.roles_.to_dict(),
            "preprocessing": self.preprocessor_.to_dict(),
            "score_calibration": getattr(self, "score_calibration_", None),
            "code_size": int(self.code_size_),
            "training": self.training_,
            "history": self.history_,
            "trained_on": self.trained_on_,
            "n_train_rows": int(self.n_train_rows_),
            "split_sizes": split.sizes() if split is not None else None,
            "threshold": self.threshold_choice_.to_dict(),
            "evaluation": getattr(self, "evaluation_", None),
            "reference_errors": state.reference_sample(reference),
            "reference_errors_count": int(reference.size),
            "reference_errors_dtype": str(reference.dtype),
            "reference_feature_errors": getattr(self, "reference_feature_errors_", None),
            "feature_errors_add_up": True,  # per-feature errors add up to the score
        }
        if getattr(self, "retraining_", None) is not None:
            fitted["retraining"] = self.retraining_
        return state.json_safe(fitted)

    @classmethod
    def from_state(cls, fitted: Mapping, network) -> AnomalyDetector:
        """A fitted detector from ``get_state()``'s values (a bundle's ``meta.json``; unknown
        keys are ignored, keys added since have defaults, so older bundles load) and the Keras
        ``network`` a bundle stores. ``split_`` is None: everything needed to score, explain,
        re-threshold, monitor drift and fine-tune is restored."""
        known = set(cls().get_params(deep=False))
        params = {key: value for key, value in fitted["params"].items() if key in known}
        params["roles"] = state.roles_from_json(params.get("roles"))
        detector = cls(**params)
        detector.restore_state(fitted, network)
        return detector

    def restore_state(self, fitted: Mapping, network) -> AnomalyDetector:
        """Set this detector's fitted state from ``get_state()``'s values and ``network`` (see
        ``from_state``, which calls it on a new detector with the stored parameters); any
        previous fitted state is replaced. Returns self."""
        from aecore.model.architectures import Autoencoder

        for name in (*FITTED_ATTRIBUTES, "threshold_", "labels_"):
            if name in self.__dict__:
                delattr(self, name)
        architecture = fitted["architecture"]
        roles = ColumnRoles.from_dict(fitted["roles"])
        first, second = state.split_pair(network)
        single = fitted.get("reference_errors_dtype", "float32") == "float32"
        dtype = np.float32 if single else np.float64
        retraining = fitted.get("retraining")
        self._set_state(
            roles_=roles,
            preprocessor_=Preprocessor.from_dict(fitted["preprocessing"]),
            autoencoder_=Autoencoder.from_model(
                first, architecture["name"], int(architecture.get("window", 1))
            ),
            second_autoencoder_=(
                None if second is None else Autoencoder.from_model(second, architecture["name"], 1)
            ),
            code_size_=int(fitted.get("code_size", architecture.get("code_size"))),
            training_=dict(fitted.get("training") or {}),
            history_=dict(fitted.get("history") or {}),
            split_=None,
            n_train_rows_=int(fitted.get("n_train_rows", 0)),
            feature_names_in_=np.asarray(roles.inputs, dtype=object),
            n_features_in_=len(roles.inputs),
            trained_on_=fitted.get("trained_on", "all"),
            score_calibration_=fitted.get("score_calibration"),
            reference_errors_=np.asarray(fitted.get("reference_errors") or [], dtype=dtype),
            threshold_choice_=thresholds.ThresholdChoice.from_dict(fitted["threshold"]),
            evaluation_=state.nan_for_none(fitted.get("evaluation")),
        )
        profile = state.float_series(fitted.get("reference_feature_errors"))
        if profile is not None and not fitted.get("feature_errors_add_up"):
            # Saved when per-feature errors added up to the score times the encoded columns.
            profile = profile / float(self.preprocessor_.n_encoded)
        if profile is not None:
            self._set_state(reference_feature_errors_=profile)
        if retraining is not None:
            self._set_state(retraining_=dict(retraining))
        return self

    @classmethod
    def load(cls, name: str, *, models_dir=None, version: str | None = None) -> AnomalyDetector:
        """Bundle ``name`` (its newest version, or ``version``) as a fitted detector
        (``aecore.store`` reads and checks the files; ``from_state`` rebuilds)."""
        from aecore import store

        bundle = store.read_detector_bundle(
            name, models_dir=models_dir, version=version, stacklevel=3
        )
        return cls.from_state(bundle.meta, bundle.model)

    def save(self, name: str, **kwargs):
        """Save as bundle ``models/<name>/`` (``aecore.store.save``); returns its Path."""
        from aecore import store

        return store.save(self, name, **kwargs)

    def record_retraining(self, record: Mapping, *, label_column: str | None = None):
        """Record how this detector was retrained (``retraining_``; see
        ``aecore.workflows.retraining.retrain``) and, for one trained without labels on an
        unlabelled batch, the label column (``label_column``) that later batches may still
        hold. Returns self."""
        self.check_fitted()
        updates: dict = {"retraining_": dict(record)}
        if label_column is not None and self.roles_.label is None:
            updates["roles_"] = dataclasses.replace(self.roles_, label=label_column)
            self.set_params(roles=updates["roles_"])
        self._set_state(**updates)
        return self

    # ---- fine-tuning ---------------------------------------------------------------------
    def fine_tune(
        self,
        X,
        *,
        normal=None,
        epochs: int | None = None,
        learning_rate: float | None = None,
        progress=None,
        should_stop=None,
    ) -> AnomalyDetector:
        """Train this fitted detector further on the rows of ``X`` marked ``normal`` (a boolean
        mask; None = every row), with the same preprocessing, at ``FINE_TUNE_RATE_FACTOR`` of
        the original learning rate (or ``learning_rate``) for at most ``FINE_TUNE_EPOCHS``
        epochs (or ``epochs``); returns self, as ``fit`` does. The networks trained are copies:
        another detector sharing them (``from_state(d.get_state(), d.network())``, as
        ``aecore.workflows.retraining.retrain`` makes one) is left unchanged.

        The score is calibrated again, as ``fit`` does; the threshold is derived again with the
        detector's threshold method on the new rows (a label-based method falls back to the
        99th percentile of the reference errors when they lack both classes), and
        ``evaluation_`` is measured on the rows' labels, if any (scope "batch": the fine-tune's
        own training rows among them). A second model is fine-tuned on the same rows.
        """
        self.check_fitted()
        rows = as_frame(X)
        normal = np.ones(len(rows), dtype=bool) if normal is None else np.asarray(normal, bool)
        if normal.shape != (len(rows),):
            raise AecoreError(f"normal has {normal.size} values but the data has {len(rows)} rows.")
        if normal.sum() < MIN_FINE_TUNE_ROWS:
            raise AecoreError(
                f"Only {int(normal.sum())} normal rows; at least {MIN_FINE_TUNE_ROWS} are needed "
                "to fine-tune."
            )
        roles = self.roles_
        labels = None
        if roles.label is not None and roles.label in rows:
            labels = labelling.binary_labels(rows[roles.label])
            if not (labels >= 0).any():
                labels = None
        order = inference.time_order(rows, roles)
        split = split_rows(
            len(rows),
            method=self.split,
            validation_share=self.validation_share or 0.2,
            order=order,
            normal_mask=normal,
            seed=self.random_state,
        )
        preprocessor = Preprocessor.from_dict(self.preprocessor_.to_dict())
        x_all = preprocessor.transform(rows)
        window = int(self.autoencoder_.window)
        train_in, val_in = self._network_inputs(x_all, order, split, window)
        schedule = dict(self.training_ or {})
        rate = learning_rate or FINE_TUNE_RATE_FACTOR * float(schedule.get("learning_rate", 1e-3))
        most = min(FINE_TUNE_EPOCHS, int(schedule.get("epochs", FINE_TUNE_EPOCHS)))
        schedule.update(epochs=int(epochs or most), learning_rate=float(rate))
        second = getattr(self, "second_autoencoder_", None)
        stored = dict((self.score_calibration_ or {}).get("second") or {})
        x_second = self._second_model_inputs(x_all) if second is not None else None
        autoencoder, history = self._tuned(
            self.autoencoder_, window, train_in, val_in, schedule, progress, should_stop
        )
        self._set_state(
            preprocessor_=preprocessor,
            autoencoder_=autoencoder,
            second_autoencoder_=None,
            training_=schedule,
            history_=history,
            split_=split,
            n_train_rows_=int(len(split.train)),
            trained_on_="normal" if labels is not None or not normal.all() else "all",
            score_calibration_=None,
            retraining_=None,
        )
        # Calibrated as fit does (code limit, column weights), measured with the plain score.
        self._set_state(score_calibration_=self._calibrate(rows, x_all, split, autoencoder))
        if second is not None and not history.get("cancelled"):
            # The second model (trained without the first's most unusual rows) is fine-tuned on
            # the same new normal rows, and calibrated again like the first.
            tuned, second_history = self._tuned(
                second, 1, x_second[split.train], x_second[split.validation], schedule,
                _second_stage(progress), should_stop,
            )  # fmt: skip
            if not second_history.get("cancelled"):
                stored.update(
                    self._calibrate(rows, x_second, split, tuned) or {},
                    n_train_rows=int(len(split.train)),
                )
                self._set_state(
                    second_autoencoder_=tuned,
                    score_calibration_={**(self.score_calibration_ or {}), "second": stored},
                )
                self._rescale_pair(x_all, split)
        if not history.get("cancelled"):
            self._fit_memory(x_all, split)
        errors = self.reconstruction_error(rows)
        reference_rows = split.validation if len(split.validation) else split.train
        self._set_state(reference_errors_=errors[reference_rows])
        self._set_state(threshold_choice_=self._rederived_threshold(errors, labels))
        evaluation = None
        if labels is not None and len(np.unique(labels[labels >= 0])) == 2:
            from aecore.evaluation.metrics import evaluate

            evaluation = {**evaluate(errors, labels, self.threshold_), "scope": "batch"}
        self._set_state(evaluation_=evaluation, decision_scores_=errors)
        return self.set_reference_profile(rows)

    def _tuned(self, source, window, train_in, val_in, schedule, progress, should_stop):
        """A copy of the autoencoder ``source`` trained further on these rows: (copy, history).
        Training is seeded by ``random_state`` (``training.train_autoencoder``)."""
        import keras

        from aecore.model.architectures import Autoencoder

        copy = keras.models.clone_model(source.model)
        copy.set_weights(source.model.get_weights())
        tuned = Autoencoder.from_model(copy, source.architecture, window)
        plan = {"batch_size": 32, "patience": 5, **schedule}
        return tuned, self._train(tuned, train_in, val_in, plan, progress, should_stop)

    def _rederived_threshold(self, errors, labels) -> thresholds.ThresholdChoice:
        """The threshold method on new rows' ``errors`` after fine-tuning (see ``fine_tune``)."""
        method, params = self._threshold_params()
        if method in ("best_f1", "min_cost"):
            if labels is not None and len(np.unique(labels[labels >= 0])) == 2:
                return thresholds.choose_threshold(errors, method, labels=labels, **params)
            method, params = "percentile", dict(DEFAULT_THRESHOLD_PARAMS["percentile"])
        reference = self.reference_errors_
        return thresholds.choose_threshold(reference, method, reference_errors=reference, **params)

    # ---- reference profile ---------------------------------------------------------------
    def reference_feature_errors(self, X, rows=None) -> pd.Series:
        """The mean error of every input column (``feature_errors``) over ``rows`` (positions
        in ``X``; None = every row), as a float Series indexed by column: the per-feature
        counterpart of ``reference_errors_`` (the rows are scored on their own)."""
        frame = as_frame(X)
        if rows is not None:
            frame = frame.iloc[np.asarray(rows, dtype=np.int64)]
        return self.feature_errors(frame).mean(axis=0).astype(np.float64)

    def set_reference_profile(self, X) -> AnomalyDetector:
        """Set ``reference_feature_errors_`` from ``X`` (the frame the detector was fitted or
        fine-tuned on): the mean error of every column over its held-out reference rows.
        ``fit`` already sets it; this is for a model that lacks it (one saved before the profile
        was stored). A detector without a split (a loaded one) uses every row. Returns self."""
        self.check_fitted()
        frame = as_frame(X)
        split = getattr(self, "split_", None)
        rows = None
        if split is not None and len(frame) == sum(split.sizes().values()):
            rows = split.validation if len(split.validation) else split.train
        self._set_state(reference_feature_errors_=self.reference_feature_errors(frame, rows))
        return self

    # ---- scoring -------------------------------------------------------------------------
    @property
    def scorer_(self):
        """The compiled scorer (``aecore.model.scoring.Scorer``) of the calibrated score."""
        self.check_fitted()
        if getattr(self, "_scorer", None) is None:
            settings = getattr(self, "score_calibration_", None) or {}
            second = getattr(self, "second_autoencoder_", None)
            self._scorer = self._member_scorer(
                self.autoencoder_,
                settings,
                second=second,
                second_calibration=settings.get("second") if second is not None else None,
                memory=settings.get("memory"),
            )
        return self._scorer

    def _member_scorer(
        self, autoencoder, settings, *, second=None, second_calibration=None, memory=None
    ):
        """A Scorer for ``autoencoder`` calibrated as ``settings`` says (code limit, column
        weights; None = the plain MSE), optionally averaged with a second calibrated model,
        and with a ``memory`` of prototypes."""
        from aecore.model.scoring import Scorer

        def weights_of(member):
            weights = member.get("feature_weights")
            return None if not weights else np.asarray(weights, dtype=np.float32)

        settings = settings or {}
        second_calibration = second_calibration or {}
        kl_weight = self.kl_weight if self.kl_weight is not None else 1 / self._n_encoded
        return Scorer(
            autoencoder,
            self.preprocessor_.group_matrix(),
            weights=weights_of(settings),
            code_limit=settings.get("code_limit"),
            include_kl=self.score_kl,
            kl_weight=kl_weight,
            second=second,
            second_weights=None if second is None else weights_of(second_calibration),
            second_code_limit=None if second is None else second_calibration.get("code_limit"),
            second_inputs=None if second is None else calibration.second_input_scaling(
                second_calibration
            ),
            memory=None if not memory else (
                np.asarray(memory["prototypes"], dtype=np.float32), np.ones(self._n_encoded),
                float(memory["scale"]), memory.get("share"),
            ),
        )  # fmt: skip

    @property
    def _n_encoded(self) -> int:
        return self.preprocessor_.n_encoded

    def transform_inputs(self, X) -> np.ndarray:
        """The model's input matrix for ``X`` (columns matched by name; extra ones ignored)."""
        self.check_fitted()
        return self.preprocessor_.transform(as_frame(X))

    def _score_encoded(self, x, frame, *, latent=True, reconstruction=False):
        return self._score_with(
            self.scorer_, x, frame, latent=latent, reconstruction=reconstruction
        )

    def _score_with(self, scorer, x, frame, *, latent=True, reconstruction=False):
        """``scorer`` over the encoded rows ``x`` (windows in the frame's order, results back
        in row order, when the model reads windows of rows)."""
        if self.autoencoder_.window > 1:
            ordering = inference.window_order(inference.time_order(frame, self.roles_), len(x))
            inverse = np.empty_like(ordering)
            inverse[ordering] = np.arange(len(ordering))
            result = scorer(x[ordering], latent=latent, reconstruction=reconstruction)
            for name in ("row_error", "feature_errors", "latent", "reconstruction"):
                value = getattr(result, name)
                if value is not None and len(value):
                    setattr(result, name, value[inverse])
            return result
        return scorer(x, latent=latent, reconstruction=reconstruction)

    def score_rows(self, X, *, latent: bool = True, reconstruction: bool = False) -> Scores:
        """Row errors, per-feature errors, codes and flags in one pass (see
        ``aecore.model.scoring``); errors are weighted and reconstructions code-limited as
        ``score_calibration_`` says."""
        frame = as_frame(X)
        x = self.transform_inputs(frame)
        result = self._score_encoded(x, frame, latent=latent, reconstruction=reconstruction)
        recon = None
        if reconstruction:
            recon = self.preprocessor_.inverse_transform(result.reconstruction)
            recon.index = frame.index
        # Each feature's part of the row's score: they add up to it exactly (the scorer's
        # per-feature errors add up to the score times the number of encoded columns).
        per_feature = result.feature_errors
        per_feature /= np.float32(self._n_encoded)
        return Scores(
            row_error=result.row_error,
            # The scorer's own fresh array, not copied (pandas 3 copies a 2-D array by default:
            # 0.26 s of a million rows' 1.8 s).
            feature_errors=pd.DataFrame(
                per_feature, columns=list(self.feature_names_in_), index=frame.index, copy=False
            ),
            latent=result.latent,
            flags=(result.row_error > self.threshold_).astype(np.int8),
            threshold=self.threshold_,
            reconstruction=recon,
        )

    def member_reconstructions(self, X) -> list[dict]:
        """Per autoencoder of the detector (the first; the second too, with a second model):
        ``settings`` (its calibration: ``feature_weights``, ``code_limit``), ``input_scale``
        and ``input_shift`` (float64 per encoded column, from the first model's encoded units to
        its own; ones and zeros for the first) and ``reconstruction`` (its calibrated
        reconstruction of every row of ``X``, in its own units). What the Explain table needs to
        show each model's part of a row's error (``aecore.evaluation.explain.row_detail``)."""
        frame = as_frame(X)
        x = self.transform_inputs(frame)
        settings = dict(getattr(self, "score_calibration_", None) or {})
        second_settings = settings.pop("second", None) or {}
        plan = [(self.autoencoder_, settings, None)]
        second = getattr(self, "second_autoencoder_", None)
        if second is not None:
            scaling = None
            if second_settings.get("input_scale") is not None:
                scaling = (
                    np.asarray(second_settings["input_scale"], dtype=np.float64),
                    np.asarray(second_settings["input_shift"], dtype=np.float64),
                )
            plan.append((second, second_settings, scaling))
        if getattr(self, "_member_scorers", None) is None:
            self._member_scorers = [self._member_scorer(m, member) for m, member, _ in plan]
        memory = settings.pop("memory", None)
        members = []
        # Every reconstruction counts the same, unless the memory has a share of its own.
        memory_share = (memory or {}).get("share")
        if memory_share is None:
            share = memory_share = 1.0 / (len(plan) + bool(memory))
        else:
            share = (1.0 - float(memory_share)) / len(plan)
        for k, ((_, member, scaling), scorer) in enumerate(
            zip(plan, self._member_scorers, strict=True), start=1
        ):
            scale = np.ones(x.shape[1]) if scaling is None else scaling[0]
            shift = np.zeros(x.shape[1]) if scaling is None else scaling[1]
            own = (x * scale + shift).astype(np.float32)
            result = self._score_with(scorer, own, frame, latent=False, reconstruction=True)
            members.append(
                {
                    "settings": member,
                    "input_scale": scale,
                    "input_shift": shift,
                    "reconstruction": result.reconstruction,
                    "share": share,
                    "label": f"model {k}",
                }
            )
        if memory:
            from aecore.model.memory import nearest_prototypes

            members.append(
                {
                    "settings": {
                        "feature_weights": [float(memory["scale"])] * len(self.feature_names_in_)
                    },
                    "input_scale": np.ones(x.shape[1]),
                    "input_shift": np.zeros(x.shape[1]),
                    "reconstruction": nearest_prototypes(
                        x, memory["prototypes"], np.ones(x.shape[1])
                    ).astype(np.float32),
                    "share": float(memory_share),
                    "label": "nearest prototype",
                }
            )
        return members

    def reconstruction_error(self, X) -> np.ndarray:
        """One value per row: the row's mean squared reconstruction error in standardised units,
        each column's error weighted as in ``score_calibration_`` (plus the weighted KL term for a
        variational model with ``score_kl``). Higher = more abnormal."""
        frame = as_frame(X)
        return self._score_encoded(self.transform_inputs(frame), frame, latent=False).row_error

    def decision_function(self, X) -> np.ndarray:
        """The anomaly score, as in PyOD: higher = more abnormal (``reconstruction_error``)."""
        return self.reconstruction_error(X)

    def score_samples(self, X) -> np.ndarray:
        """scikit-learn's convention (as ``IsolationForest.score_samples``): higher = more
        normal, the negated ``reconstruction_error``."""
        return -self.reconstruction_error(X)

    def score(self, X, y=None) -> float:
        """scikit-learn's ``score(X, y)``, higher = better: with ``y`` (1 = anomaly), the
        ROC-AUC of ``decision_function``; without, the mean of ``score_samples`` (the negated
        mean reconstruction error). So ``Pipeline.score`` and ``GridSearchCV`` work; the
        per-row results are ``score_rows``."""
        errors = self.reconstruction_error(X)
        if y is None:
            return float(-np.mean(errors))
        from sklearn.metrics import roc_auc_score

        labels = labelling.binary_labels(pd.Series(np.asarray(y)))
        known = labels >= 0
        if len(np.unique(labels[known])) < 2:
            raise AecoreError("score(X, y) needs labels of both kinds (normal and anomaly).")
        return float(roc_auc_score(labels[known], errors[known]))

    def feature_errors(self, X) -> pd.DataFrame:
        """Weighted squared error per original input column (one-hot groups summed into their
        column); a row's values sum to its row error times the number of encoded columns."""
        return self.score_rows(X, latent=False).feature_errors

    def encode(self, X) -> np.ndarray:
        """The latent code of every row (the mean code for a variational model)."""
        return self.score_rows(X).latent

    def reconstruct(self, X) -> pd.DataFrame:
        """Reconstructions in original units (most likely category for categorical columns)."""
        return self.score_rows(X, latent=False, reconstruction=True).reconstruction

    def predict(self, X) -> np.ndarray:
        """1 for rows whose error exceeds ``threshold_`` (anomalies), else 0."""
        return (self.reconstruction_error(X) > self.threshold_).astype(np.int8)

    def set_threshold(self, threshold: float | thresholds.ThresholdChoice) -> AnomalyDetector:
        """Move the cut (e.g. from a dashboard slider); the scores do not change."""
        self.check_fitted()
        if not isinstance(threshold, thresholds.ThresholdChoice):
            threshold = thresholds.fixed_threshold(float(threshold))
        if not math.isfinite(threshold.value):
            raise AecoreError("The threshold must be a finite number.")
        self._set_state(threshold_choice_=threshold)
        return self


def load(name: str, *, models_dir=None, version: str | None = None) -> AnomalyDetector:
    """Load bundle ``name`` (its newest version, or ``version``) as a fitted ``AnomalyDetector``
    (``AnomalyDetector.load``). Warns (``store.BundleVersionWarning``) when library
    versions differ from the saved ones; a classifier bundle is refused with a message naming
    its loader."""
    from aecore import store

    bundle = store.read_detector_bundle(
        name, models_dir=models_dir, version=version, stacklevel=2
    )
    return AnomalyDetector.from_state(bundle.meta, bundle.model)


def _second_stage(progress):
    """``progress`` reporting the second model's epochs (``stage="second"``), or None."""
    if progress is None:
        return None

    def report(epoch: EpochProgress) -> None:
        progress(dataclasses.replace(epoch, stage="second"))

    return report
