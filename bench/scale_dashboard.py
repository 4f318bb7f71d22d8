"""The dashboard's server-side work at 1,000,000 scored rows (issue 5).

Run by hand: ``python bench/scale_dashboard.py`` (about a minute). A default detector (fitted on
20,000 rows, 2 epochs) scores 1,000,000 labelled rows in time order; ``aecore.scored.ScoredData``
holds the result as the dashboard's session does. Then:

- one threshold-slider move, as ``pages/threshold.py`` reruns its fragment: the slider's options,
  the flagged count, the sweep's metrics at the threshold (the sweep itself is memoised per
  tolerance and costs), the histogram (memoised), and the four figures (histogram, cost curve,
  metric curves, timeline) built and serialised to the JSON Streamlit sends. Median over 20
  moves to different thresholds; target <= 150 ms. The first render (which sorts, sweeps and
  reduces once) is timed too;
- the payload of the latent-space scatter (``pages/latent.py``: every flagged row plus a sample of
  the others, with top-feature hover text) and of the feature heatmap (``pages/explain.py``, at
  its default and its largest size). Target <= 5 MB per chart.

Browser-side rendering is not measured.
"""

from __future__ import annotations

import argparse

import numpy as np
from _speed_common import frame, load_average, machine, median, row, synthetic, timed

TOLERANCE, C_ALARM, C_MISSED = 12, 1.0, 5.0


def scored_data(n_rows: int):
    import pandas as pd

    from aecore import AnomalyDetector
    from aecore.scored import ScoredData

    detector = AnomalyDetector(epochs=2).fit(frame(synthetic(20_000, seed=3)))
    data = frame(synthetic(n_rows, seed=1))
    rng = np.random.default_rng(0)
    labels = np.zeros(n_rows, dtype=np.int8)
    for start in rng.integers(0, n_rows - 40, n_rows // 2000):
        labels[start : start + rng.integers(5, 40)] = 1
    data.loc[labels == 1, "f0"] += 4.0  # labelled bursts stand out on one feature
    data["label"] = labels
    data["time"] = pd.date_range("2026-01-01", periods=n_rows, freq="s")
    scores = detector.score_rows(data)
    return detector, ScoredData(
        data, scores, label_column="label", time_column="time",
        reference_errors=detector.reference_errors_,
    )  # fmt: skip


def slider_move(scored, threshold: float, model_threshold: float) -> int:
    """The threshold fragment's server-side work for one move; returns the payload in bytes."""
    from aecore.viz import charts

    scored.options(threshold, model_threshold)
    flagged = scored.count_above(threshold)
    sweep = scored.sweep(tolerance=TOLERANCE, c_alarm=C_ALARM, c_missed=C_MISSED)
    at = sweep.at(threshold)
    counts, edges = scored.histogram(log=True)
    curve = scored.curve(tolerance=TOLERANCE, c_alarm=C_ALARM, c_missed=C_MISSED)
    figures = [
        charts.error_histogram(counts, edges, threshold, log_x=True, log_y=False,
                               n_flagged=flagged),  # fmt: skip
        charts.cost_curve(curve, threshold, at["cost"], c_alarm=C_ALARM, c_missed=C_MISSED,
                          log_x=True),  # fmt: skip
        charts.metric_curves(curve, threshold, log_x=True),
        charts.error_timeline(scored.timeline(), threshold, log_y=True),
    ]
    return sum(charts.payload_bytes(figure) for figure in figures)


def latent_scatter_bytes(scored, detector, threshold: float) -> tuple[int, int]:
    """As ``pages/latent.py`` builds its left chart; returns (payload bytes, points drawn)."""
    from aecore.viz import charts

    flags = scored.flags(threshold)
    rows = charts.downsample(flags, priority=scored.errors)
    row_flags = flags[rows]
    hover = np.full(len(rows), "", dtype=object)
    hover[row_flags] = ["top features: " + text
                        for text in scored.top_features_text(rows[row_flags])]  # fmt: skip
    latent_xy, note = scored.latent_2d()
    figure, _ = charts.scatter_2d(
        latent_xy[rows], rows, scored.errors[rows], row_flags, color_by="flag",
        labels=scored.labels[rows], hover=hover, title="Latent space", note=note,
        x_title="PC 1", y_title="PC 2",
    )  # fmt: skip
    return charts.payload_bytes(figure), len(rows)


def heatmap_bytes(scored, threshold: float, n_rows: int, n_features: int) -> int:
    """As ``pages/explain.py`` builds its heatmap of the top rows and features."""
    from aecore.viz import charts

    ranked = scored.ranked_flagged(threshold)
    mean_errors = scored.mean_feature_errors(threshold)
    top_rows = ranked[:n_rows]
    features = list(mean_errors.index[:n_features])
    values = scored.scores.feature_errors.iloc[top_rows][features].to_numpy()
    names = [f"row {r} ({scored.errors[r]:.3g})" for r in top_rows]
    return charts.payload_bytes(charts.feature_heatmap(values, names, features))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--moves", type=int, default=20)
    args = parser.parse_args()

    from aecore.viz import charts

    print(f"machine: {machine()}")
    detector, scored = scored_data(args.rows)
    model_threshold = float(detector.threshold_)
    sorted_errors = scored.index.sorted_errors
    picks = np.linspace(0.90, 0.9995, args.moves)
    thresholds = [float(sorted_errors[int(q * (len(sorted_errors) - 1))]) for q in picks]

    first_s, _, first_bytes = timed(lambda: slider_move(scored, model_threshold, model_threshold))
    moves = []
    for threshold in thresholds:
        moves.append(timed(lambda: slider_move(scored, threshold, model_threshold))[::2])  # noqa: B023
    move_s = median(m[0] for m in moves)

    threshold = float(np.quantile(scored.errors, 0.99))
    latent_bytes, points = latent_scatter_bytes(scored, detector, threshold)
    default_heatmap = heatmap_bytes(scored, threshold, 40, 25)
    largest_heatmap = heatmap_bytes(scored, threshold, charts.HEATMAP_MAX_ROWS,
                                    charts.HEATMAP_MAX_FEATURES)  # fmt: skip

    print()
    print(f"Dashboard server-side work, {args.rows:,} scored rows with labels and a time column")
    print(row("", "time / size", "", "", "target"))
    print(row(f"threshold slider move (median of {args.moves})", f"{1e3 * move_s:.0f} ms", "",
              "", "<= 150 ms"))  # fmt: skip
    print(f"    slowest move {1e3 * max(m[0] for m in moves):.0f} ms; first render (sorts, "
          f"sweeps, reduces once) {first_s:.2f} s; four figures "
          f"{median(m[1] for m in moves) / 1e6:.2f} MB together")  # fmt: skip
    print(row(f"latent scatter payload ({points:,} points)", f"{latent_bytes / 1e6:.2f} MB", "",
              "", "<= 5 MB"))  # fmt: skip
    print(row("feature heatmap payload, 40 x 25 (default)", f"{default_heatmap / 1e6:.3f} MB",
              "", "", "<= 5 MB"))  # fmt: skip
    print(row(f"feature heatmap payload, {charts.HEATMAP_MAX_ROWS} x "
              f"{charts.HEATMAP_MAX_FEATURES} (largest)", f"{largest_heatmap / 1e6:.3f} MB", "",
              "", "<= 5 MB"))  # fmt: skip
    print(f"    flagged at the 99th percentile: {scored.count_above(threshold):,} rows; "
          f"first render payload {first_bytes / 1e6:.2f} MB")  # fmt: skip
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
