"""Training and scoring speed of aecore against the textbook Keras recipe (issue 2).

Run by hand (not in CI): ``python bench/speed.py`` (about 4 minutes on 2 cores; ``--repeats``
and ``--rows`` to change). Prints, on the same synthetic 100,000 x 30 rows (80% train, 20%
validation, standardised with training statistics):

1. the textbook recipe: Dense(64, relu) -> Dense(30, linear), Adam, MSE, batch 32, early
   stopping with patience 3 (best weights restored): training time and validation MSE;
2. aecore's trainer (``aecore.model.training.train_autoencoder``) on that same architecture and
   initialisation: time from the call until an epoch ends with validation MSE <= (1)'s;
3. the default detector, ``AnomalyDetector().fit(frame)`` on the same rows as a DataFrame;

then the time to score 1,000,000 x 30 rows (row errors + per-feature errors) with the default
detector against Keras ``model.predict`` at its default batch size followed by numpy.
Each figure is the median of ``--repeats`` runs, interleaved so that a busy machine slows all
of them alike; ratios are taken run by run and their median printed.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
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

# aecore's trainer on the recipe's architecture: 4x the recipe's batch with 1.5x its learning
# rate, patience as the default detector's. The same values at 100,000 and 1,000,000 rows.
TRAINER_SCHEDULE = {"batch_size": 128, "learning_rate": 1.5e-3, "epochs": 100, "patience": 5}
RECIPE_MAX_EPOCHS = 200


def run_recipe(x_train, x_val):
    import keras

    model = recipe_model(x_train.shape[1])
    stop = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    start = time.perf_counter()
    history = model.fit(
        x_train,
        x_train,
        validation_data=(x_val, x_val),
        batch_size=32,
        epochs=RECIPE_MAX_EPOCHS,
        callbacks=[stop],
        verbose=0,
    )
    seconds_taken = time.perf_counter() - start
    val_mse = float(model.evaluate(x_val, x_val, batch_size=4096, verbose=0))
    return seconds_taken, val_mse, len(history.history["loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--score-rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--predict-repeats", type=int, default=2,
                        help="runs of the slow model.predict reference (about 40 s each)")
    args = parser.parse_args()

    from aecore import AnomalyDetector
    from aecore.model.scoring import Scorer

    print(f"machine: {machine()}")
    x = synthetic(args.rows, seed=0)
    x_train, x_val = split(x)
    data = frame(x)
    recipe, trainer, detector_fit = [], [], []
    detector = None
    for repeat in range(args.repeats):
        recipe_s, recipe_mse, recipe_epochs = run_recipe(x_train, x_val)
        reached_s, epochs, curve = train_until(
            recipe_as_autoencoder(x.shape[1]),
            x_train,
            x_val,
            recipe_mse,
            budget_s=recipe_s,
            **TRAINER_SCHEDULE,
        )
        fit_s, _, detector = timed(lambda: AnomalyDetector().fit(data))
        recipe.append((recipe_s, recipe_mse, recipe_epochs))
        trainer.append((reached_s, epochs, curve[-1]))
        detector_fit.append((fit_s, detector.history_["epochs_run"],
                             detector.history_["best_val_loss"]))  # fmt: skip
        print(
            f"run {repeat + 1}: recipe {recipe_s:.1f} s ({recipe_epochs} epochs, val MSE "
            f"{recipe_mse:.3g}); aecore trainer {seconds(reached_s)} ({epochs} epochs, val MSE "
            f"{curve[-1]:.3g}); default detector fit {fit_s:.1f} s "
            f"({detector.history_['epochs_run']} epochs); load {load_average()}",
            flush=True,
        )

    recipe_s = median(r[0] for r in recipe)
    trainer_s = median(t[0] for t in trainer)
    fit_s = median(d[0] for d in detector_fit)
    trainer_ratio = median(r[0] / t[0] for r, t in zip(recipe, trainer, strict=True) if t[0])
    fit_ratio = median(r[0] / d[0] for r, d in zip(recipe, detector_fit, strict=True))

    # ---- scoring 1M rows: the default detector vs Keras model.predict(batch_size=32) + numpy
    big = frame(synthetic(args.score_rows, seed=1))
    encoded = detector.transform_inputs(big)
    detector.score_rows(big.head(1000))  # build the compiled scorer once, as a fitted app would
    model = detector.autoencoder_.model
    # The default detector scores with both of its models when it has a second one (trained
    # without labels); the reference predicts with both too, so the ratio compares like work.
    second = getattr(detector, "second_autoencoder_", None)
    second_encoded = detector._second_model_inputs(encoded) if second is not None else None

    def predict_and_numpy():
        reconstruction = model.predict(encoded, verbose=0)
        squared = np.square(reconstruction - encoded)
        if second is not None:
            rebuilt = second.model.predict(second_encoded, verbose=0)
            squared_second = np.square(rebuilt - second_encoded)
            return squared.mean(axis=1), (squared + squared_second) / 2
        return squared.mean(axis=1), squared

    ours, scorer_only, reference = [], [], []
    for repeat in range(max(args.repeats, args.predict_repeats)):
        wall = timed(lambda: detector.score_rows(big, latent=False))[0]
        ours.append(wall)
        scorer_only.append(timed(lambda: detector.scorer_(encoded, latent=False))[0])
        if repeat < args.predict_repeats:
            reference_s, _, (check, _) = timed(predict_and_numpy)
            reference.append(reference_s)
    # The detector's score adds its calibration (code limit, column weights) to the plain
    # reconstruction MSE; check the compiled Scorer against predict on the plain MSE.
    plain = Scorer(detector.autoencoder_, detector.preprocessor_.group_matrix())
    plain_rows = plain(encoded, latent=False).row_error
    agree = float(np.max(np.abs(check - plain_rows) / np.maximum(check, 1e-6)))

    print()
    print(f"Training on {args.rows:,} x {x.shape[1]} rows (median of {args.repeats} runs)")
    print(row("", "time", "val MSE", "vs recipe", "target"))
    print(row("(1) textbook recipe, batch 32, patience 3", seconds(recipe_s),
              f"{median(r[1] for r in recipe):.3g}", "1x", ""))  # fmt: skip
    print(row("(2) aecore trainer, same architecture", seconds(trainer_s),
              "<= (1)'s", f"{trainer_ratio:.1f}x faster", ">= 10x faster"))  # fmt: skip
    print(f"    (2) batch {TRAINER_SCHEDULE['batch_size']}, learning rate "
          f"{TRAINER_SCHEDULE['learning_rate']:g}, patience {TRAINER_SCHEDULE['patience']}; "
          "time includes tracing")  # fmt: skip
    print(row("(3) default AnomalyDetector().fit", seconds(fit_s),
              f"{median(d[2] for d in detector_fit):.3g}", f"{fit_ratio:.1f}x faster",
              ">= 10x faster"))  # fmt: skip  (issue 16; 5x before it)
    print(f"    (3) trained {median(d[1] for d in detector_fit):.0f} epochs; its val MSE is "
          "its own architecture's (a bottleneck), not comparable with (1)")  # fmt: skip
    print()
    print(f"Scoring {args.score_rows:,} x {x.shape[1]} rows: row errors + per-feature errors")
    ref_s = median(reference)
    print(row("", "time", "rows/s", "vs predict", "target"))
    print(row("score_rows(frame), with preprocessing", seconds(median(ours)),
              f"{args.score_rows / median(ours):,.0f}", f"{ref_s / median(ours):.0f}x faster",
              "<= 2 s"))  # fmt: skip
    print(row("  of which the compiled Scorer", seconds(median(scorer_only)),
              f"{args.score_rows / median(scorer_only):,.0f}", "", ""))  # fmt: skip
    models = "each of the detector's two models" if second is not None else "the model"
    print(f"    the reference runs model.predict (batch 32) for {models} and squares the errors")
    print(row("Keras model.predict (batch 32) + numpy", seconds(ref_s),
              f"{args.score_rows / ref_s:,.0f}", "1x", ""))  # fmt: skip
    print(f"    largest relative difference of plain row MSEs, Scorer vs predict: {agree:.1e}")
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
