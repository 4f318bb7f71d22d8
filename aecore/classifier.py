"""Few labels: pre-train an autoencoder on every row, then classify with the few labelled ones.

Labelling is slow, costly human work, so a data set usually has many unlabelled rows and a few
labelled ones. ``FewLabelClassifier`` pre-trains an ``AnomalyDetector`` on all rows (labels
ignored), copies its encoder with the layers frozen and trains a small head (Dense + softmax, or
sigmoid for normal/anomaly) on the labelled rows only, until the training loss stops improving
(every labelled row trains: with a few dozen labels, holding a quarter out to stop on cost more
than it saved, see ``bench/RESULTS.md``, "Few labels"; ``validation_share`` brings the held-out
part back); ``fine_tune=True`` then unfreezes the encoder and trains on at a low learning rate.
The head reads the activations of every dense layer of the encoder (``representation="layers"``;
``"code"`` reads the bottleneck alone), each scaled by its mean and spread over all rows,
labelled or not. ``pretrained=False`` trains the same network from scratch: the baseline that
``compare_label_budgets`` sets against it and against the unsupervised detector. Labels: an
empty cell is unlabelled (``labelling.class_labels`` gives -1).

The head trains with balanced class weights, so that a rare attack class is learned at all; its
decisions and probabilities then use the labelled rows' class mix (``class_prior="labelled"``,
Bayes' rule undoing the weights), which cuts the false alarms the weights cause.

Whether pre-training pays off depends on the data: on the network-flow sample the frozen
encoder does not beat the same network trained from scratch (the autoencoder's code keeps the
common variation of benign traffic and drops the rare directions that set attacks apart), which
is exactly what ``compare_label_budgets`` is there to show an analyst before trusting either.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from aecore import store
from aecore.detector import AnomalyDetector, as_frame
from aecore.errors import AecoreError, NotFittedError
from aecore.io import inference, labelling
from aecore.io.roles import ColumnRoles
from aecore.model import state
from aecore.model.preprocessing import Preprocessor
from aecore.model.training import EarlyStopping

CLASS_MODES = ("auto", "binary", "multiclass")
CLASS_PRIORS = {
    "labelled": "Decide with the class mix of the labelled rows (undoes the training's class "
    "weights): fewer false alarms; the default.",
    "balanced": "Decide as trained, every class equally likely: more attacks caught, more false "
    "alarms.",
}
REPRESENTATIONS = {
    "layers": "The activations of every dense layer of the encoder, side by side (the default).",
    "code": "The encoder's code (its bottleneck) alone.",
}
APPROACHES = {
    "pretrained": "Pre-trained encoder (frozen) + head",
    "scratch": "Same network trained from scratch",
    "unsupervised": "Reconstruction error, threshold from the labels",
}
BUNDLE_KIND = store.CLASSIFIER_KIND
MIN_LABELLED = 4
ANOMALY_COLUMN = "p_anomaly"
PREDICTED_COLUMN = "predicted_class"


def _balanced_weights(codes: np.ndarray, n_classes: int) -> dict[int, float]:
    """Keras ``class_weight``: each class weighs as much in the loss as any other."""
    counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(n_classes)
    weights[present] = len(codes) / (present.sum() * counts[present])
    return {index: float(weight) for index, weight in enumerate(weights)}


def stratified_split(
    codes: np.ndarray, share: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of (train, validation): ``share`` of each class that has at least two rows
    goes to validation (at least one row); a class with a single row stays in training."""
    train, validation = [], []
    for code in np.unique(codes):
        rows = rng.permutation(np.flatnonzero(codes == code))
        n_val = int(round(share * len(rows)))
        n_val = min(max(n_val, 1), len(rows) - 1) if len(rows) >= 2 and share > 0 else 0
        validation.append(rows[:n_val])
        train.append(rows[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(validation))


class FewLabelClassifier(BaseEstimator):
    """A classifier for partly labelled tables, built on an autoencoder pre-trained on all rows.

    ``fit(frame)`` reads the labels from ``label_column`` (or ``y``); empty cells are
    unlabelled and only used for pre-training. ``predict`` returns class names and
    ``predict_proba`` a DataFrame of class probabilities (columns = ``classes_``, normal
    classes first). ``class_mode="auto"`` trains one class per attack type when the labels
    name several, else normal vs anomaly.
    """

    def __init__(
        self,
        *,
        label_column: str | None = None,
        class_mode: str = "auto",
        pretrained: bool = True,
        fine_tune: bool = False,
        representation: str = "layers",
        head_units: int = 16,
        epochs: int = 150,
        batch_size: int = 32,
        learning_rate: float = 3e-3,
        patience: int = 15,
        validation_share: float = 0.0,
        fine_tune_learning_rate: float = 1e-4,
        fine_tune_epochs: int = 50,
        detector_params: dict | None = None,
        roles: ColumnRoles | Mapping[str, str] | None = None,
        class_prior: str = "labelled",
        random_state: int = 0,
    ):
        self.label_column = label_column
        self.class_mode = class_mode
        self.pretrained = pretrained
        self.fine_tune = fine_tune
        self.representation = representation
        self.head_units = head_units
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.validation_share = validation_share
        self.fine_tune_learning_rate = fine_tune_learning_rate
        self.fine_tune_epochs = fine_tune_epochs
        self.detector_params = detector_params
        self.roles = roles
        self.class_prior = class_prior
        self.random_state = random_state

    # ---- fitting -------------------------------------------------------------------------
    def fit(
        self,
        X,
        y=None,
        *,
        detector: AnomalyDetector | None = None,
        progress: Callable | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> FewLabelClassifier:
        """Pre-train on every row of ``X`` (or reuse the fitted ``detector``), then train the
        classifier on the labelled rows. ``y``: one label per row, empty = unlabelled."""

        frame = as_frame(X)
        self._check_params()
        if detector is None:
            detector = pretrain(
                frame,
                self._label_name(frame, y),
                roles=self.roles,
                random_state=self.random_state,
                progress=progress,
                should_stop=should_stop,
                **(self.detector_params or {}),
            )
        else:
            detector.check_fitted()
        if detector.autoencoder_.window > 1:
            raise AecoreError(
                "A classifier needs a model of single rows; this one reads windows of rows."
            )
        values = self._label_values(frame, y, detector)
        label_name = self._label_name(frame, y) or detector.roles_.label
        if label_name in detector.roles_.inputs:
            raise AecoreError(
                f"The label column {label_name!r} is an input of the pre-trained model; "
                "pre-train with it marked as the label."
            )
        codes, classes, normal = encode_labels(values, self.class_mode)
        labelled = np.flatnonzero(codes >= 0)
        self._check_labels(codes[labelled], classes)

        x = detector.preprocessor_.transform(frame.iloc[labelled])
        targets = codes[labelled]
        rng = np.random.default_rng(self.random_state)
        train, validation = stratified_split(targets, self.validation_share, rng)

        model, encoder = _build_classifier(
            detector,
            len(classes),
            self.head_units,
            pretrained=self.pretrained,
            representation=self.representation,
            x_all=detector.preprocessor_.transform(frame),
            seed=self.random_state,
        )
        encoder.trainable = not self.pretrained
        weights = _balanced_weights(targets[train], len(classes))
        history = _train(
            model,
            x,
            targets,
            train,
            validation,
            weights,
            epochs=self.epochs,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            patience=self.patience,
            seed=self.random_state,
            should_stop=should_stop,
        )
        fine_history = None
        if self.fine_tune and self.pretrained:
            encoder.trainable = True
            fine_history = _train(
                model,
                x,
                targets,
                train,
                validation,
                weights,
                epochs=self.fine_tune_epochs,
                batch_size=self.batch_size,
                learning_rate=self.fine_tune_learning_rate,
                patience=self.patience,
                seed=self.random_state,
                should_stop=should_stop,
            )

        self.detector_ = detector
        self.roles_ = detector.roles_
        self.preprocessor_ = detector.preprocessor_
        self.model_ = model
        self.classes_ = np.asarray(classes, dtype=object)
        self.normal_classes_ = [name for name in classes if name in normal]
        self.class_mode_ = "binary" if len(classes) == 2 else "multiclass"
        self.label_column_ = label_name
        self.n_labelled_ = int(len(labelled))
        self.n_unlabelled_ = int(len(frame) - len(labelled))
        self.class_counts_ = {
            classes[code]: int(count)
            for code, count in enumerate(np.bincount(targets, minlength=len(classes)))
        }
        self.history_ = {"head": history, "fine_tune": fine_history}
        self.feature_names_in_ = np.asarray(detector.roles_.inputs, dtype=object)
        self.n_features_in_ = len(detector.roles_.inputs)
        return self

    def _check_params(self) -> None:
        if self.class_prior not in CLASS_PRIORS:
            raise AecoreError(
                f"Unknown class prior {self.class_prior!r}; choose one of "
                f"{', '.join(CLASS_PRIORS)}."
            )
        if self.class_mode not in CLASS_MODES:
            raise AecoreError(
                f"Unknown class mode {self.class_mode!r}; choose one of {', '.join(CLASS_MODES)}."
            )
        if not 0 <= self.validation_share < 1:
            raise AecoreError(
                f"The validation share must be between 0 and 1, got {self.validation_share!r}."
            )
        if int(self.head_units) < 0:
            raise AecoreError("The head's number of units must be 0 or more.")
        if self.representation not in REPRESENTATIONS:
            raise AecoreError(
                f"Unknown representation {self.representation!r}; choose one of "
                f"{', '.join(REPRESENTATIONS)}."
            )

    def _label_name(self, frame: pd.DataFrame, y) -> str | None:
        if y is not None:
            return self.label_column if self.label_column in frame else None
        if self.label_column is not None:
            return self.label_column
        if isinstance(self.roles, ColumnRoles):
            return self.roles.label
        if isinstance(self.roles, Mapping):
            found = [column for column, role in self.roles.items() if role == "label"]
            return found[0] if found else None
        return inference.infer_roles(frame).label

    def _label_values(self, frame: pd.DataFrame, y, detector: AnomalyDetector) -> pd.Series:
        if y is not None:
            values = pd.Series(np.asarray(y, dtype=object))
            if len(values) != len(frame):
                raise AecoreError(
                    f"y has {len(values)} values but the data has {len(frame)} rows."
                )
            return values
        column = self.label_column or detector.roles_.label
        if column is None:
            raise AecoreError(
                "Say which column holds the labels (label_column), or pass them as y."
            )
        if column not in frame:
            raise AecoreError(f"The label column {column!r} is not in the data.")
        return frame[column]

    @staticmethod
    def _check_labels(codes: np.ndarray, classes: list[str]) -> None:
        if len(codes) < MIN_LABELLED:
            raise AecoreError(
                f"Only {len(codes)} labelled row(s); label at least {MIN_LABELLED} rows "
                "(some of each class) to train a classifier."
            )
        present = np.unique(codes)
        if len(present) < 2:
            only = classes[int(present[0])] if len(present) else "none"
            raise AecoreError(
                f"The labelled rows hold a single class ({only!r}); label some rows of another "
                "class too."
            )

    # ---- state ---------------------------------------------------------------------------
    def get_state(self) -> dict:
        """Everything fitted but the head's weights, as plain JSON values (what a classifier
        bundle's ``meta.json`` stores; ``from_state`` reads it back)."""
        self.check_fitted()
        params = self.get_params(deep=False)
        params["roles"] = state.roles_to_json(params.get("roles"))
        return state.json_safe(
            {
                "params": params,
                "features": state.feature_entries(self.roles_, self.preprocessor_),
                "roles": self.roles_.to_dict(),
                "preprocessing": self.preprocessor_.to_dict(),
                "classes": [str(c) for c in self.classes_],
                "normal_classes": list(self.normal_classes_),
                "class_mode": self.class_mode_,
                "label_column": self.label_column_,
                "n_labelled": self.n_labelled_,
                "n_unlabelled": self.n_unlabelled_,
                "class_counts": self.class_counts_,
                "history": self.history_,
                "n_train_rows": self.n_labelled_,
            }
        )

    @classmethod
    def from_state(cls, fitted: Mapping, model) -> FewLabelClassifier:
        """A fitted classifier from ``get_state()``'s values and its Keras ``model``.
        ``detector_`` (the pre-trained autoencoder) is not part of it: None."""
        known = set(cls().get_params(deep=False))
        params = {key: value for key, value in fitted["params"].items() if key in known}
        params["roles"] = state.roles_from_json(params.get("roles"))
        return cls(**params).restore_state(fitted, model)

    def restore_state(self, fitted: Mapping, model) -> FewLabelClassifier:
        """Set this classifier's fitted state from ``get_state()``'s values (see
        ``from_state``). Returns self."""
        roles = ColumnRoles.from_dict(fitted["roles"])
        self.detector_ = None
        self.roles_ = roles
        self.preprocessor_ = Preprocessor.from_dict(fitted["preprocessing"])
        self.model_ = model
        self.classes_ = np.asarray(fitted["classes"], dtype=object)
        self.normal_classes_ = list(fitted["normal_classes"])
        self.class_mode_ = fitted["class_mode"]
        self.label_column_ = fitted.get("label_column")
        self.n_labelled_ = int(fitted.get("n_labelled", 0))
        self.n_unlabelled_ = int(fitted.get("n_unlabelled", 0))
        self.class_counts_ = dict(fitted.get("class_counts") or {})
        self.history_ = dict(fitted.get("history") or {})
        self.feature_names_in_ = np.asarray(roles.inputs, dtype=object)
        self.n_features_in_ = len(roles.inputs)
        return self

    # ---- predicting ----------------------------------------------------------------------
    def check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "This FewLabelClassifier is not fitted yet: call fit(data) before predicting."
            )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "model_")

    def _class_prior(self) -> np.ndarray:
        """What each class's trained probability is multiplied by before deciding (see
        ``class_prior``): its share of the labelled rows, or 1 for every class."""
        if self.class_prior == "balanced":
            return np.ones(len(self.classes_))
        counts = np.array(
            [max(int(self.class_counts_.get(str(c), 0)), 1) for c in self.classes_], dtype=float
        )
        return counts / counts.sum()

    def probabilities(self, X) -> np.ndarray:
        """Class probabilities: the network's (trained with balanced class weights, as if
        every class were equally common), times ``_class_prior()``, renormalised. Undoing the
        weights this way is Bayes' rule with the labelled rows' class mix; it cuts false alarms
        (measured in ``bench/RESULTS.md``, "Few labels")."""
        self.check_fitted()
        x = self.preprocessor_.transform(as_frame(X))
        if len(x) == 0:
            return np.zeros((0, len(self.classes_)))
        weighted = _class_probabilities(self.model_, x) * self._class_prior()
        total = weighted.sum(axis=1, keepdims=True)
        return np.divide(weighted, total, out=np.zeros_like(weighted), where=total > 0)

    def predict_proba(self, X) -> pd.DataFrame:
        """Class probabilities, one column per class (``classes_``), rows aligned with ``X``."""
        frame = as_frame(X)
        return pd.DataFrame(
            self.probabilities(frame), columns=list(self.classes_), index=frame.index
        )

    def predict(self, X) -> np.ndarray:
        """The most probable class name of every row."""
        probabilities = self.probabilities(X)
        return self.classes_[np.argmax(probabilities, axis=1)] if len(probabilities) else (
            np.asarray([], dtype=object)
        )

    def anomaly_probability(self, X) -> np.ndarray:
        """Probability that each row is not normal (the sum over the attack classes)."""
        probabilities = self.probabilities(X)
        anomalous = ~np.isin(self.classes_, self.normal_classes_)
        return probabilities[:, anomalous].sum(axis=1)

    def predict_anomaly(self, X) -> np.ndarray:
        """1 where the most probable class is not a normal one, else 0."""
        predicted = self.predict(X)
        return (~np.isin(predicted, self.normal_classes_)).astype(np.int8)

    # ---- saving --------------------------------------------------------------------------
    def save(self, name: str, *, models_dir: str | os.PathLike | None = None) -> Path:
        """Save as bundle ``models/<name>/`` (``model.keras`` + ``meta.json`` with ``kind``
        "classifier"); an existing bundle of that name is kept as a previous version."""
        return save_classifier(self, name, models_dir=models_dir)

    @classmethod
    def load(
        cls, name: str, *, models_dir: str | os.PathLike | None = None, version: str | None = None
    ) -> FewLabelClassifier:
        """Load a bundle written by ``save`` (Keras safe mode; ``detector_`` is None)."""
        return load_classifier(name, models_dir=models_dir, version=version)


def pretrain(
    frame: pd.DataFrame,
    label_column: str | None = None,
    *,
    roles: ColumnRoles | Mapping[str, str] | None = None,
    random_state: int = 0,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    **detector_params: Any,
) -> AnomalyDetector:
    """An ``AnomalyDetector`` trained on every row of ``frame``, labels ignored (never an
    input, never used to pick rows): the pre-trained encoder and the shared preprocessing."""
    if label_column is not None and label_column not in frame:
        raise AecoreError(f"The label column {label_column!r} is not in the data.")
    if isinstance(roles, ColumnRoles):
        resolved = roles
    else:
        overrides = dict(roles or {})
        if label_column is not None:
            overrides = {c: r for c, r in overrides.items() if r != "label"}
            overrides[label_column] = "label"
        resolved = inference.infer_roles(frame, overrides=overrides)
    if label_column is not None and resolved.label != label_column:
        resolved = ColumnRoles(
            features=[c for c in resolved.features if c != label_column],
            categorical=[c for c in resolved.categorical if c != label_column],
            time=resolved.time,
            label=label_column,
            ignore=[c for c in resolved.ignore if c != label_column],
            ids=[c for c in resolved.ids if c != label_column],
        )
    # Pre-training learns from every row: no test rows held out, even with labels.
    params = {"split": "random", "test_share": 0.0, **detector_params, "train_on": "all"}
    detector = AnomalyDetector(roles=resolved, random_state=random_state, **params)
    return detector.fit(frame, progress=progress, should_stop=should_stop)


def encode_labels(values: Any, class_mode: str = "auto") -> tuple[np.ndarray, list[str], set]:
    """Integer class codes (-1 = unlabelled), class names (normal first) and the normal names.

    ``binary`` (or ``auto`` with a single attack class) maps every normal name to one class
    and every other name to "anomaly"; ``multiclass`` keeps one class per name.
    """
    if class_mode not in CLASS_MODES:
        raise AecoreError(
            f"Unknown class mode {class_mode!r}; choose one of {', '.join(CLASS_MODES)}."
        )
    codes, names = labelling.class_labels(values)
    binary = labelling.binary_labels(values)
    known = codes >= 0
    normal_codes = set(np.unique(codes[known & (binary == 0)]).tolist())
    normal_names = {names[c] for c in normal_codes}
    n_attack = len(names) - len(normal_codes)
    if class_mode == "multiclass" or (class_mode == "auto" and n_attack > 1):
        return codes.astype(np.int64), list(names), normal_names
    normal_name = names[min(normal_codes)] if len(normal_codes) == 1 else "normal"
    attack_names = [n for c, n in enumerate(names) if c not in normal_codes]
    anomaly_name = attack_names[0] if len(attack_names) == 1 else "anomaly"
    binary_codes = np.where(known, binary, -1).astype(np.int64)
    return binary_codes, [normal_name, anomaly_name], {normal_name}


def _build_classifier(
    detector: AnomalyDetector,
    n_classes: int,
    head_units: int,
    *,
    pretrained: bool,
    representation: str,
    x_all: np.ndarray,
    seed: int = 0,
):
    """rows -> encoder (a copy: pre-trained weights, or freshly initialised from its layers'
    own seeds) -> features scaled with their mean and spread over every row (labelled or not)
    -> head, whose initial weights come from ``seed`` alone (``SeededLayers``)."""
    import keras
    from keras import layers

    from aecore.model.architectures import SeededLayers

    make = SeededLayers(seed)

    def fresh(layer):
        """The layer anew, its random kernel drawn from ``make``'s next seed (in the clone's
        layer order, then the head's: the seeds ``set_random_seed(seed)`` used to give)."""
        config = layer.get_config()
        if "kernel_initializer" in config:
            initializer = keras.initializers.get(config["kernel_initializer"])
            if isinstance(initializer, keras.initializers.RandomNormal | keras.initializers
                          .RandomUniform | keras.initializers.VarianceScaling):  # fmt: skip
                config["kernel_initializer"] = initializer.__class__.from_config(
                    {**initializer.get_config(), "seed": make.next_seed()}
                )
        return layer.__class__.from_config(config)

    source = detector.autoencoder_.encoder
    encoder = keras.models.clone_model(source, clone_function=fresh)
    if pretrained:
        encoder.set_weights(source.get_weights())
    inputs = keras.Input(shape=source.input_shape[1:], name="rows")
    if representation == "layers":
        dense = [
            layer.output
            for layer in encoder.layers
            if isinstance(layer, layers.Dense) and layer.name != "code_log_var"
        ]
        extractor = keras.Model(encoder.inputs, dense if len(dense) > 1 else dense[0])
        found = extractor(inputs)
        x = layers.Concatenate(name="encoder_layers")(found) if len(dense) > 1 else found
    else:
        code = encoder(inputs)
        if detector.autoencoder_.is_variational:
            code = code[0]
        x = code
    extractor = keras.Model(inputs, x)
    features = np.concatenate(
        [
            np.asarray(extractor(x_all[start : start + 8192], training=False))
            for start in range(0, len(x_all), 8192)
        ]
    )
    scaling = layers.Normalization(name="feature_scaling")
    scaling.adapt(features)
    x = scaling(x)
    if head_units:
        x = make(layers.Dense, int(head_units), activation="relu", name="head_hidden")(x)
    if n_classes == 2:
        outputs = make(layers.Dense, 1, activation="sigmoid", name="head_output")(x)
    else:
        outputs = make(layers.Dense, n_classes, activation="softmax", name="head_output")(x)
    return keras.Model(inputs, outputs, name="classifier"), encoder


def _weighted_loss(model, x: np.ndarray, codes: np.ndarray, weights: np.ndarray) -> float:
    """Mean class-weighted cross-entropy of ``model`` on these rows (no training behaviour)."""
    probabilities = _class_probabilities(model, x)
    picked = np.clip(probabilities[np.arange(len(codes)), codes], 1e-7, 1.0)
    return float(np.sum(-np.log(picked) * weights) / np.sum(weights))


def _class_probabilities(model, x: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """(rows, classes) probabilities; a sigmoid output becomes two columns."""
    parts = [
        np.asarray(model(x[start : start + batch_size], training=False), dtype=np.float64)
        for start in range(0, len(x), batch_size)
    ]
    output = np.concatenate(parts) if parts else np.zeros((0, model.output_shape[-1]))
    if output.shape[1] == 1:
        output = np.concatenate([1.0 - output, output], axis=1)
    return output


def _train(
    model,
    x: np.ndarray,
    codes: np.ndarray,
    train: np.ndarray,
    validation: np.ndarray,
    class_weight: dict[int, float],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    seed: int,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Class-weighted cross-entropy, early stopping on the (equally class-weighted) validation
    loss with the best weights restored.

    A plain loop of ``train_on_batch`` calls: a few labelled rows make an epoch one or two
    steps, where ``model.fit``'s per-epoch overhead would cost a hundred times the training.
    """
    import keras

    binary = model.output_shape[-1] == 1
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy" if binary else "sparse_categorical_crossentropy",
    )
    targets = codes.astype(np.float32 if binary else np.int64)
    if binary:
        targets = targets[:, None]
    weights = np.asarray([class_weight[int(c)] for c in codes], dtype=np.float32)
    x = np.asarray(x, dtype=np.float32)
    monitored = validation if len(validation) else train
    batch_size = int(max(1, min(batch_size, len(train))))
    rng = np.random.default_rng(seed)
    losses, val_losses = [], []
    # The package's one early-stopping rule, as this loop has always used it: an absolute
    # improvement, no learning-rate cut, a diverging loss stops at once.
    monitor = EarlyStopping(
        model, patience, 1e-6, relative=False, cut_learning_rate=False,
        stop_on_nonfinite=True, from_initial=True,
    )  # fmt: skip
    for epoch in range(int(epochs)):
        order = rng.permutation(train)
        short = (-len(order)) % batch_size  # fill the last batch: one batch shape, one trace
        order = np.concatenate([order, rng.choice(train, size=short)])
        epoch_loss = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            loss = model.train_on_batch(x[batch], targets[batch], sample_weight=weights[batch])
            epoch_loss += float(np.asarray(loss).ravel()[0])
        losses.append(epoch_loss * batch_size / len(order))
        current = _weighted_loss(model, x[monitored], codes[monitored], weights[monitored])
        val_losses.append(current)
        if monitor.end_epoch(epoch + 1, current):
            break
        if should_stop is not None and should_stop():  # Cancel: the best weights so far
            break
    monitor.restore()
    best_epoch = monitor.best_epoch
    return {
        "loss": losses,
        "val_loss": val_losses if len(validation) else [],
        "epochs_run": len(losses),
        "best_epoch": best_epoch,
        "learning_rate": float(learning_rate),
        "n_train": int(len(train)),
        "n_validation": int(len(validation)),
    }


def save_classifier(
    classifier: FewLabelClassifier,
    name: str,
    *,
    models_dir: str | os.PathLike | None = None,
    description: str = "",
) -> Path:
    """Save a fitted classifier as bundle ``name`` (``kind`` "classifier" in ``meta.json``)
    with ``store.write_bundle``: atomic, an existing bundle of that name kept as a
    previous version. Returns the bundle folder."""
    store.check_name(name)
    classifier.check_fitted()
    meta = store.new_meta(name, kind=BUNDLE_KIND, description=description)
    meta.update(classifier.get_state())
    return store.write_bundle(classifier.model_, meta, name, models_dir=models_dir)


_BUNDLE_KEYS = ("params", "roles", "preprocessing", "classes", "normal_classes", "class_mode")


def load_classifier(
    name: str, *, models_dir: str | os.PathLike | None = None, version: str | None = None
) -> FewLabelClassifier:
    """Load a classifier bundle (newest version, or ``version``) with
    ``store.read_bundle``: hash checked, Keras safe mode. ``detector_`` (the pre-trained
    autoencoder) is not part of the bundle: None."""
    bundle = store.read_bundle(
        name,
        kind=BUNDLE_KIND,
        required=_BUNDLE_KEYS,
        models_dir=models_dir,
        version=version,
        stacklevel=2,
    )
    return FewLabelClassifier.from_state(bundle.meta, bundle.model)
