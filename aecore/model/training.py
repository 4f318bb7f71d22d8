"""Training: Adam + MSE, early stopping on validation loss with the best weights restored,
a progress hook for live charts, and cooperative cancellation.

The loop is our own rather than ``model.fit``: the training rows sit in memory as one tensor,
each epoch is a seeded permutation, and one compiled function runs a chunk of optimizer steps
(a graph-side loop that gathers each batch), so a step costs a few graph ops and no Python.
On two CPU cores a step is 1.5-2x cheaper than in ``fit``, and tracing (which dominates on
small data) takes a fraction of the time.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import keras
import numpy as np
import tensorflow as tf

from aecore.errors import AecoreError
from aecore.model.architectures import Autoencoder

MAX_VALIDATION_ROWS = 20_000
CHUNK_ROWS = 65_536  # rows per compiled call: how often cancellation is checked
MAX_CHUNK_STEPS = 256
EVAL_VALUES = 262_144  # input values per validation batch (rows x values per row)


@dataclass
class EpochProgress:
    """What a UI needs after each epoch to draw a progress bar and a loss curve."""

    epoch: int
    epochs: int
    loss: float
    val_loss: float | None
    elapsed: float
    best_epoch: int
    stage: str = "first"  # "second": the detector's second model (see ``second_model``)

    def to_dict(self) -> dict:
        return asdict(self)


ProgressHook = Callable[[EpochProgress], None]
StopCheck = Callable[[], bool]


class EarlyStopping:
    """The one early-stopping rule of every network the package trains (both of the detector's
    autoencoders, fine-tuning, the few-label head): stop after ``patience`` epochs without an
    improvement of the monitored loss and restore the best weights; optionally cut the learning
    rate (x0.3, at least 1e-5) when the loss stalls for half the patience.

    An improvement is a loss below the best by more than ``min_delta`` (times the best's size
    with ``relative=True``). A non-finite loss counts as no improvement, or stops at once with
    ``stop_on_nonfinite=True``. With ``from_initial=True`` the weights before training count
    as the best until an epoch improves on them (a first epoch that diverges is undone).
    """

    def __init__(
        self,
        model: keras.Model,
        patience: int,
        min_delta: float,
        *,
        relative: bool = True,
        cut_learning_rate: bool = True,
        stop_on_nonfinite: bool = False,
        from_initial: bool = False,
    ):
        self.model = model
        self.patience = patience
        self.min_delta = min_delta
        self.relative = relative
        self.cut_learning_rate = cut_learning_rate
        self.stop_on_nonfinite = stop_on_nonfinite
        self.best = math.inf
        self.best_epoch = 0
        self.best_weights = _Snapshot(model) if from_initial else None
        self.wait = 0
        self.stopped_early = False

    def end_epoch(self, epoch: int, current: float) -> bool:
        """Record the epoch's monitored loss; True when training should stop."""
        if not math.isfinite(current) and self.stop_on_nonfinite:
            self.stopped_early = True
            return True
        margin = self.min_delta * abs(self.best) if self.relative else self.min_delta
        improved = not math.isfinite(self.best) or current < self.best - margin
        if math.isfinite(current) and improved:
            self.best, self.best_epoch, self.wait = current, epoch, 0
            if self.best_weights is None:
                self.best_weights = _Snapshot(self.model)
            else:
                self.best_weights.take()
            return False
        self.wait += 1
        if self.cut_learning_rate and self.wait == max(1, (self.patience + 1) // 2):
            rate = self.model.optimizer.learning_rate
            rate.assign(max(float(keras.ops.convert_to_numpy(rate)) * 0.3, 1e-5))
        if self.wait >= self.patience:
            self.stopped_early = True
            return True
        return False

    def restore(self) -> None:
        if self.best_weights is not None:
            self.best_weights.restore()


class _Snapshot:
    """A copy of a model's weights in variables of its own: taking one is a few assignments
    (``get_weights`` copies every weight out to numpy, about 2.5 ms on the detector's networks,
    and the best epoch changes dozens of times in a training)."""

    def __init__(self, model: keras.Model):
        self.weights = list(model.weights)
        self.copies = [tf.Variable(_value(w), trainable=False) for w in self.weights]

    def take(self) -> None:
        for copy, weight in zip(self.copies, self.weights, strict=True):
            copy.assign(_value(weight))

    def restore(self) -> None:
        for copy, weight in zip(self.copies, self.weights, strict=True):
            weight.assign(copy)


def _value(weight):
    """The tf.Variable of a Keras variable (which wraps one), or the TensorFlow variable."""
    return getattr(weight, "value", weight)


class _FusedAdam:
    """Keras's Adam update (its learning rate, betas and epsilon; the same formula) as one fused
    kernel per weight (``ResourceApplyAdam``) instead of a dozen small ops each. With one
    intra-op thread (``aecore``'s default) a step on the detector's small networks costs about
    half as much (0.22-0.28 against 0.45-0.49 ms at 16 columns; 0.46 against 0.63 ms at 30
    columns, batch 256), and the losses agree to float rounding. The learning rate is read from
    the Keras optimizer at every step, so ``EarlyStopping``'s cuts take effect; the moments are
    this object's own (zeros at the start of each training, as with a new Keras optimizer)."""

    def __init__(self, optimizer: keras.optimizers.Optimizer, weights: list):
        self.optimizer = optimizer
        self.weights = weights
        self.beta_1 = float(optimizer.beta_1)
        self.beta_2 = float(optimizer.beta_2)
        self.epsilon = float(optimizer.epsilon)
        self.moments = [
            (tf.Variable(tf.zeros(w.shape, tf.float32), trainable=False),
             tf.Variable(tf.zeros(w.shape, tf.float32), trainable=False))
            for w in weights
        ]  # fmt: skip
        self.step = tf.Variable(0.0, trainable=False)

    def reset(self) -> None:
        """Zero moments and step count, as a new optimizer starts."""
        for m, v in self.moments:
            m.assign(tf.zeros_like(m))
            v.assign(tf.zeros_like(v))
        self.step.assign(0.0)

    def updates(self, gradients: list) -> list:
        """The ops applying one step of ``gradients`` (one per weight; None leaves it)."""
        step = self.step.assign_add(1.0)
        rate = tf.cast(self.optimizer.learning_rate, tf.float32)
        beta_1_power = tf.pow(tf.constant(self.beta_1), step)
        beta_2_power = tf.pow(tf.constant(self.beta_2), step)
        ops = []
        for weight, (m, v), gradient in zip(self.weights, self.moments, gradients, strict=True):
            if gradient is None:
                continue
            ops.append(tf.raw_ops.ResourceApplyAdam(
                var=_value(weight).handle, m=m.handle, v=v.handle, beta1_power=beta_1_power,
                beta2_power=beta_2_power, lr=rate, beta1=self.beta_1, beta2=self.beta_2,
                epsilon=self.epsilon, grad=tf.convert_to_tensor(gradient),
            ))  # fmt: skip
        return ops


class _Steps:
    """Compiled training and validation passes for one model and one batch size."""

    def __init__(self, model: keras.Model, rows: tf.Tensor, batch_size: int):
        self.model = model
        self.rows = rows
        self.batch_size = batch_size
        values_per_row = int(np.prod(rows.shape[1:]))
        self.eval_rows = max(batch_size, EVAL_VALUES // max(values_per_row, 1))
        weights = model.trainable_weights
        adam = self.adam = _FusedAdam(model.optimizer, weights)
        row_spec = tf.TensorSpec([None, *rows.shape[1:]], tf.float32)
        scalar = tf.TensorSpec([], tf.int32)

        def train_steps(rows, order, start, stop):
            """Optimizer steps ``start..stop-1`` over ``rows[order]``; returns the summed loss
            (each batch's mean loss times its size) and the number of rows seen."""
            n_rows = tf.shape(order)[0]

            def body(step, total, seen):
                begin = step * batch_size
                batch = tf.gather(rows, order[begin : tf.minimum(begin + batch_size, n_rows)])
                with tf.GradientTape() as tape:
                    predicted = model(batch, training=True)
                    loss = model.compute_loss(x=batch, y=batch, y_pred=predicted, training=True)
                gradients = tape.gradient(loss, weights)
                with tf.control_dependencies(adam.updates(gradients)):
                    loss = tf.identity(loss)
                size = tf.shape(batch)[0]
                return step + 1, total + loss * tf.cast(size, tf.float32), seen + size

            _, total, seen = tf.while_loop(
                lambda step, total, seen: step < stop,
                body,
                (start, tf.constant(0.0), tf.constant(0)),
            )
            return total, seen

        def batch_loss(batch):
            predicted = model(batch, training=False)
            loss = model.compute_loss(x=batch, y=batch, y_pred=predicted, training=False)
            return loss * tf.cast(tf.shape(batch)[0], tf.float32)

        self._train = tf.function(
            train_steps,
            input_signature=[row_spec, tf.TensorSpec([None], tf.int32), scalar, scalar],
            autograph=False,
        )
        self._loss = tf.function(batch_loss, input_signature=[row_spec], autograph=False)

    def restart(self, rows: tf.Tensor, learning_rate: float) -> None:
        """Ready to train again from the model's current weights, on ``rows`` (the same row
        shape), as a newly compiled model would: the optimizer's state and learning rate anew."""
        self.rows = rows
        self.adam.reset()
        self.model.optimizer.learning_rate.assign(learning_rate)

    def epoch(self, order: np.ndarray, should_stop: StopCheck | None) -> tuple[float, bool]:
        """One pass in the given row order; returns (mean loss, cancelled)."""
        steps = -(-len(order) // self.batch_size)
        chunk = int(max(1, min(MAX_CHUNK_STEPS, CHUNK_ROWS // self.batch_size)))
        order = tf.constant(order, dtype=tf.int32)
        total, seen = 0.0, 0
        for start in range(0, steps, chunk):
            summed, count = self._train(
                self.rows, order, tf.constant(start), tf.constant(min(start + chunk, steps))
            )
            total += float(summed)
            seen += int(count)
            if should_stop is not None and should_stop():
                return total / max(seen, 1), True
        return total / max(seen, 1), False

    def loss(self, rows: np.ndarray) -> float:
        """Mean loss over ``rows`` (inference mode), in batches."""
        total = 0.0
        for start in range(0, len(rows), self.eval_rows):
            total += float(self._loss(tf.constant(rows[start : start + self.eval_rows])))
        return total / len(rows)


class SharedTraining:
    """Compiled training passes kept for the next network of the same architecture, batch size
    and row shape (the detector's second autoencoder is usually the first one's twin). That
    network then trains in the kept model's graphs, its weights swapped in and back out, instead
    of tracing graphs of its own: about half a second a network on 2 cores, one of a small
    data set's largest fixed costs. The result is the same network: the same ops on the same
    weights, rows and seeds, and a fresh optimizer state and learning rate."""

    def __init__(self):
        self._kept: tuple | None = None  # (architecture key, model, _Steps)

    @contextlib.contextmanager
    def steps(self, model: keras.Model, rows: tf.Tensor, batch_size: int, learning_rate: float):
        """A context giving the ``_Steps`` that train ``model`` (its own, or the kept twin's
        with ``model``'s weights in it; on leaving, the trained weights are ``model``'s and the
        twin has its own back)."""
        key = _architecture_key(model, batch_size, rows)
        if self._kept is None or self._kept[0] != key or self._kept[1] is model:
            steps = _Steps(model, rows, batch_size)
            self._kept = (key, model, steps)
            yield steps
            return
        _, twin, steps = self._kept
        kept = [v.numpy() for v in twin.variables]
        try:
            for mine, theirs in zip(twin.variables, model.variables, strict=True):
                mine.assign(theirs)
            steps.restart(rows, learning_rate)
            yield steps
            for mine, theirs in zip(twin.variables, model.variables, strict=True):
                theirs.assign(mine)
        finally:
            for variable, value in zip(twin.variables, kept, strict=True):
                variable.assign(value)


def _architecture_key(model: keras.Model, batch_size: int, rows: tf.Tensor) -> tuple:
    """What a compiled training pass depends on: the layers and their settings (the model's
    JSON, less Keras's generated input names and the seeds, which only set initial values:
    those are copied in), every variable's shape and type (weights and seed states), the batch
    size and the row shape."""
    layout = json.dumps(model.get_config(), sort_keys=True, default=str)  # not the optimizer
    layout = re.sub(r'"input_layer(_\d+)?"', '"input_layer"', layout)
    layout = re.sub(r'"seed": (\d+|null)', '"seed": null', layout)
    variables = tuple((tuple(v.shape), str(v.dtype)) for v in model.variables)
    return layout, variables, int(batch_size), tuple(rows.shape[1:])


def train_autoencoder(
    autoencoder: Autoencoder,
    x_train: np.ndarray,
    x_val: np.ndarray | None,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int = 5,
    min_delta: float = 1e-4,
    progress: ProgressHook | None = None,
    should_stop: StopCheck | None = None,
    seed: int = 0,
    shared: SharedTraining | None = None,
) -> dict:
    """Fit the autoencoder to reproduce its input and return the training history.

    Validation loss drives early stopping (on at most 20,000 validation rows, so it stays cheap
    on large data); the weights of the best epoch are restored whether training stopped early,
    ran all epochs, or was cancelled. Rows are shuffled each epoch by a generator seeded with
    ``seed``, so the same seed, weights and data train the same model on CPU. Returns
    ``{"loss": [...], "val_loss": [...], "epochs_run", "best_epoch", "best_val_loss",
    "stopped_early", "cancelled", "seconds", "batch_size", "learning_rate"}``.

    ``shared`` (a ``SharedTraining``) lets a later network of the same architecture train in
    this one's compiled passes instead of tracing its own.
    """
    if len(x_train) == 0:
        raise AecoreError("No rows left to train on.")
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise AecoreError("Epochs, batch size and learning rate must all be positive.")
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    batch_size = int(min(batch_size, len(x_train)))
    has_val = x_val is not None and len(x_val) > 0
    if has_val and len(x_val) > MAX_VALIDATION_ROWS:
        pick = rng.choice(len(x_val), MAX_VALIDATION_ROWS, replace=False)
        x_val = x_val[np.sort(pick)]
    if has_val:
        x_val = np.ascontiguousarray(x_val, dtype=np.float32)

    model = autoencoder.model
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss="mse")
    rows = tf.constant(np.asarray(x_train, dtype=np.float32))
    with (shared or SharedTraining()).steps(model, rows, batch_size, learning_rate) as steps:
        history = _run_epochs(
            steps, len(x_train), x_val if has_val else None, rng, start, epochs=epochs,
            patience=patience, min_delta=min_delta, progress=progress, should_stop=should_stop,
        )  # fmt: skip
    return {**history, "batch_size": batch_size, "learning_rate": float(learning_rate)}


def _run_epochs(steps, n_rows, x_val, rng, start, *, epochs, patience, min_delta, progress,
                should_stop) -> dict:  # fmt: skip
    """``train_autoencoder``'s loop over epochs, on ``steps``' model."""
    has_val = x_val is not None
    monitor = EarlyStopping(steps.model, patience, min_delta)
    losses: list[float] = []
    val_losses: list[float] = []
    cancelled = False
    for epoch in range(1, int(epochs) + 1):
        loss, cancelled = steps.epoch(rng.permutation(n_rows), should_stop)
        losses.append(loss)
        val_loss = steps.loss(x_val) if has_val else None
        if has_val:
            val_losses.append(val_loss)
        stop = monitor.end_epoch(epoch, val_loss if has_val else loss)
        if progress is not None:
            progress(
                EpochProgress(
                    epoch=epoch,
                    epochs=int(epochs),
                    loss=loss,
                    val_loss=val_loss,
                    elapsed=time.perf_counter() - start,
                    best_epoch=monitor.best_epoch,
                )
            )
        if not cancelled and should_stop is not None and should_stop():
            cancelled = True
        if stop or cancelled or not math.isfinite(loss):
            break
    monitor.restore()
    return {
        "loss": losses,
        "val_loss": val_losses,
        "epochs_run": len(losses),
        "best_epoch": monitor.best_epoch,
        "best_val_loss": float(monitor.best) if math.isfinite(monitor.best) else None,
        "stopped_early": monitor.stopped_early,
        "cancelled": cancelled,
        "seconds": time.perf_counter() - start,
    }
