"""Scoring 1,000,000 x 30 rows: row errors + per-feature errors + top-3 features (issue 5).

Run by hand: ``python bench/scale_score.py`` (about 2 minutes). A default detector is fitted on
100,000 rows (3 epochs: the weights do not change the cost of scoring), then scores 1,000,000
new rows the way the dashboard does: ``detector.score_rows(frame)`` (preprocessing, reconstruction,
row errors, per-feature errors, codes) and ``aecore.evaluation.explain.top_features(errors, 3)``.
Prints the median time of each part, rows/s, and the GFLOP/s the network's forward pass
achieves next to the machine's practical peak (a 2048 x 2048 float32 matmul measured in the same
run). The reference: Keras ``model.predict`` at its default batch size (32), then numpy for the
errors and the top-3 features. Target: <= 2 s for the whole.
"""

from __future__ import annotations

import argparse

import numpy as np
from _speed_common import (
    dense_flops_per_row,
    frame,
    load_average,
    machine,
    matmul_peak_gflops,
    median,
    row,
    seconds,
    synthetic,
    timed,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--predict-repeats", type=int, default=1,
                        help="runs of the slow model.predict reference (about 40 s each)")
    args = parser.parse_args()

    from aecore import AnomalyDetector
    from aecore.evaluation.explain import top_features

    print(f"machine: {machine()}")
    detector = AnomalyDetector(epochs=3).fit(frame(synthetic(100_000, seed=0)))
    data = frame(synthetic(args.rows, seed=1))
    detector.score_rows(data.head(1_000))  # the compiled scorer exists once a model is fitted
    # Without labels the default scores with two autoencoders (see AnomalyDetector.second_model).
    models = [detector.autoencoder_.model]
    if getattr(detector, "second_autoencoder_", None) is not None:
        models.append(detector.second_autoencoder_.model)
    flops = sum(dense_flops_per_row(model) for model in models)
    weights = sum(model.count_params() for model in models)
    print(f"default detector: code size {detector.code_size_}, {len(models)} autoencoder(s), "
          f"{weights:,} weights, {flops:,} FLOP per row forward")  # fmt: skip

    parts = {"transform": [], "scorer": [], "score()": [], "top3": [], "total": []}
    for repeat in range(args.repeats):
        parts["transform"].append(timed(lambda: detector.transform_inputs(data))[0])
        encoded = detector.transform_inputs(data)
        parts["scorer"].append(timed(lambda: detector.scorer_(encoded))[0])  # noqa: B023
        wall, _, scores = timed(lambda: detector.score_rows(data))
        parts["score()"].append(wall)
        top_wall, _, top = timed(lambda: top_features(scores.feature_errors, 3))  # noqa: B023
        parts["top3"].append(top_wall)
        parts["total"].append(wall + top_wall)
        print(f"run {repeat + 1}: score() {wall:.2f} s + top-3 {top_wall:.2f} s; "
              f"load {load_average()}", flush=True)  # fmt: skip
    peak = matmul_peak_gflops()

    def predict_and_numpy():  # the same networks, one model.predict each
        squared = np.mean(
            [np.square(model.predict(encoded, verbose=0) - encoded) for model in models], axis=0
        )
        row_error = squared.mean(axis=1)
        top3 = np.argsort(-squared, axis=1)[:, :3]
        return row_error, squared, top3

    reference = []
    for _ in range(args.predict_repeats):
        reference.append(timed(predict_and_numpy)[0])

    total, scorer_s = median(parts["total"]), median(parts["scorer"])
    n = args.rows
    print()
    print(f"Scoring {n:,} x 30 rows: row errors + per-feature errors + top-3 features "
          f"(median of {args.repeats} runs)")  # fmt: skip
    print(row("", "time", "rows/s", "vs reference", "target"))
    print(row("score() + top_features(3)", seconds(total), f"{n / total:,.0f}",
              f"{median(reference) / total:.0f}x faster", "<= 2 s"))  # fmt: skip
    print(row("  preprocessing (transform_inputs)", seconds(median(parts["transform"]))))
    print(row("  compiled Scorer (network + errors)", seconds(scorer_s),
              f"{n / scorer_s:,.0f}", "", ""))  # fmt: skip
    print(row("  rest of score() (frames, flags)", seconds(median(parts["score()"]) - scorer_s
              - median(parts["transform"])), "", "", ""))  # fmt: skip
    print(row("  explain.top_features(k=3)", seconds(median(parts["top3"])), "", "", ""))
    print(row("model.predict(batch 32) + numpy", seconds(median(reference)),
              f"{n / median(reference):,.0f}", "1x", ""))  # fmt: skip
    achieved = flops * n / scorer_s / 1e9
    print(f"    network forward: {achieved:.1f} GFLOP/s in the Scorer vs {peak:.0f} GFLOP/s "
          f"for a 2048^2 float32 matmul on this machine now ({achieved / peak:.0%})")  # fmt: skip
    print(f"    top-3 of row 0: {list(top.iloc[0])}")
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
