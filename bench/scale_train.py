"""Training on 1,000,000 x 30 rows (issue 5).

Run by hand: ``python bench/scale_train.py`` (about 5 minutes with ``--repeats 2``). On the same
synthetic rows (80% train, 20% validation, standardised with training statistics) it prints:

1. the textbook recipe (Dense(64, relu) -> Dense(30, linear), Adam, MSE, batch 32) timed over
   its first two epochs, and its validation MSE after them (all 200,000 validation rows);
2. aecore's trainer on that same architecture and initialisation: time from the call until an
   epoch ends with validation MSE <= (1)'s (the trainer checks a 20,000-row sample of the
   validation rows; the restored model's MSE on all of them is printed too). Target: >= 10x
   sooner than (1);
3. the default detector, ``AnomalyDetector().fit(frame)`` on the 1,000,000-row DataFrame, to
   early stopping or the end of its epoch budget. Target: <= 90 s.
"""

from __future__ import annotations

import argparse
import time

from _speed_common import (
    frame,
    load_average,
    machine,
    median,
    recipe_as_autoencoder,
    recipe_model,
    row,
    seconds,
    split,
    synthetic,
    timed,
    train_until,
)
from speed import TRAINER_SCHEDULE


def recipe_two_epochs(x_train, x_val):
    import keras

    model = recipe_model(x_train.shape[1])
    ends: list[float] = []
    start = time.perf_counter()
    model.fit(
        x_train,
        x_train,
        batch_size=32,
        epochs=2,
        verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter() - start)
        )],  # fmt: skip
    )
    val_mse = float(model.evaluate(x_val, x_val, batch_size=4096, verbose=0))
    return ends[-1], val_mse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from aecore import AnomalyDetector

    print(f"machine: {machine()}")
    x = synthetic(args.rows, seed=0)
    x_train, x_val = split(x)
    data = frame(x)
    recipe, trainer, detector = [], [], []
    for repeat in range(args.repeats):
        recipe_s, target = recipe_two_epochs(x_train, x_val)
        autoencoder = recipe_as_autoencoder(x.shape[1])
        reached_s, epochs, curve = train_until(
            autoencoder, x_train, x_val, target, budget_s=recipe_s, **TRAINER_SCHEDULE
        )
        full_mse = float(autoencoder.model.evaluate(x_val, x_val, batch_size=8192, verbose=0))
        fit_s, _, fitted = timed(lambda: AnomalyDetector().fit(data))
        history = fitted.history_
        recipe.append((recipe_s, target))
        trainer.append((reached_s, epochs, full_mse))
        detector.append((fit_s, history["seconds"], history["epochs_run"],
                         history["stopped_early"], fitted.training_))  # fmt: skip
        print(
            f"run {repeat + 1}: recipe 2 epochs {recipe_s:.1f} s (val MSE {target:.3g}); aecore "
            f"trainer {seconds(reached_s)} ({epochs} epochs, val MSE on all validation rows "
            f"{full_mse:.3g}); default fit {fit_s:.1f} s (training {history['seconds']:.1f} s, "
            f"{history['epochs_run']} epochs, stopped early: {history['stopped_early']}); "
            f"load {load_average()}",
            flush=True,
        )

    ratio = median(r[0] / t[0] for r, t in zip(recipe, trainer, strict=True) if t[0])
    print()
    print(f"Training on {args.rows:,} x {x.shape[1]} rows (median of {args.repeats} runs)")
    print(row("", "time", "val MSE", "vs recipe", "target"))
    print(row("(1) recipe, first two epochs (batch 32)", seconds(median(r[0] for r in recipe)),
              f"{median(r[1] for r in recipe):.3g}", "1x", ""))  # fmt: skip
    print(row("(2) aecore trainer, same architecture", seconds(median(t[0] for t in trainer)),
              f"{median(t[2] for t in trainer):.3g}", f"{ratio:.1f}x sooner",
              ">= 10x sooner"))  # fmt: skip
    print(f"    (2) batch {TRAINER_SCHEDULE['batch_size']}, learning rate "
          f"{TRAINER_SCHEDULE['learning_rate']:g}; time includes tracing")  # fmt: skip
    print(row("(3) default AnomalyDetector().fit", seconds(median(d[0] for d in detector)),
              "", "", "<= 90 s"))  # fmt: skip
    print(f"    (3) of which training {median(d[1] for d in detector):.1f} s, "
          f"{median(d[2] for d in detector):.0f} epochs; schedule {detector[-1][4]}")
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
