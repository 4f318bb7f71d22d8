"""Training: Adam + MSE, early stopping on validation loss with the best weights restored,
a progress hook for live charts, and cooperative cancellation."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import keras
import numpy as np

from .architectures import Autoencoder
from .errors import AecoreError

MAX_VALIDATION_ROWS = 20_000


@dataclass
class EpochProgress:
    """What a UI needs after each epoch to draw a progress bar and a loss curve."""

    epoch: int
    epochs: int
    loss: float
    val_loss: float | None
    elapsed: float
    best_epoch: int

    def to_dict(self) -> dict:
        return asdict(self)


ProgressHook = Callable[[EpochProgress], None]
StopCheck = Callable[[], bool]


class _Monitor(keras.callbacks.Callback):
    """Early stopping that always restores the best weights, a learning-rate cut when the
    validation loss stalls for half the patience, plus progress and cancel."""

    def __init__(self, epochs, patience, min_delta, progress, should_stop, monitor):
        super().__init__()
        self.epochs = epochs
        self.patience = patience
        self.min_delta = min_delta
        self.progress = progress
        self.should_stop = should_stop
        self.monitor = monitor
        self.best = math.inf
        self.best_epoch = 0
        self.best_weights = None
        self.wait = 0
        self.cancelled = False
        self.stopped_early = False
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        if self.should_stop is not None and self.should_stop():
            self.cancelled = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        current = float(logs.get(self.monitor, math.nan))
        improved = not math.isfinite(self.best) or current < self.best - self.min_delta * abs(
            self.best
        )
        if math.isfinite(current) and improved:
            self.best, self.best_epoch, self.wait = current, epoch + 1, 0
            self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait == max(1, (self.patience + 1) // 2):
                self._reduce_learning_rate()
            if self.wait >= self.patience:
                self.stopped_early = True
                self.model.stop_training = True
        if not math.isfinite(float(logs.get("loss", math.nan))):
            self.model.stop_training = True
        if self.progress is not None:
            val = logs.get("val_loss")
            self.progress(
                EpochProgress(
                    epoch=epoch + 1,
                    epochs=self.epochs,
                    loss=float(logs.get("loss", math.nan)),
                    val_loss=None if val is None else float(val),
                    elapsed=time.perf_counter() - self.start,
                    best_epoch=self.best_epoch,
                )
            )
        if self.should_stop is not None and self.should_stop():
            self.cancelled = True
            self.model.stop_training = True

    def _reduce_learning_rate(self) -> None:
        rate = self.model.optimizer.learning_rate
        current = float(keras.ops.convert_to_numpy(rate))
        rate.assign(max(current * 0.3, 1e-5))

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


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
) -> dict:
    """Fit the autoencoder to reproduce its input and return the training history.

    Validation loss drives early stopping (on at most 20,000 validation rows, so it stays cheap
    on large data); the weights of the best epoch are restored whether training stopped early,
    ran all epochs, or was cancelled. Returns ``{"loss": [...], "val_loss": [...],
    "epochs_run", "best_epoch", "best_val_loss", "stopped_early", "cancelled", "seconds"}``.
    """
    if len(x_train) == 0:
        raise AecoreError("No rows left to train on.")
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise AecoreError("Epochs, batch size and learning rate must all be positive.")
    batch_size = int(min(batch_size, len(x_train)))
    has_val = x_val is not None and len(x_val) > 0
    if has_val and len(x_val) > MAX_VALIDATION_ROWS:
        pick = np.random.default_rng(seed).choice(len(x_val), MAX_VALIDATION_ROWS, replace=False)
        x_val = x_val[np.sort(pick)]
    steps = max(1, len(x_train) // batch_size)
    autoencoder.model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="mse",
        steps_per_execution=int(min(32, steps)),
    )
    monitor = _Monitor(
        epochs, patience, min_delta, progress, should_stop, "val_loss" if has_val else "loss"
    )
    start = time.perf_counter()
    result = autoencoder.model.fit(
        x_train,
        x_train,
        validation_data=(x_val, x_val) if has_val else None,
        epochs=int(epochs),
        batch_size=batch_size,
        shuffle=True,
        verbose=0,
        callbacks=[monitor],
    )
    history = {k: [float(v) for v in vals] for k, vals in result.history.items()}
    return {
        "loss": history.get("loss", []),
        "val_loss": history.get("val_loss", []),
        "epochs_run": len(history.get("loss", [])),
        "best_epoch": monitor.best_epoch,
        "best_val_loss": float(monitor.best) if math.isfinite(monitor.best) else None,
        "stopped_early": monitor.stopped_early,
        "cancelled": monitor.cancelled,
        "seconds": time.perf_counter() - start,
        "batch_size": batch_size,
        "learning_rate": float(learning_rate),
    }
