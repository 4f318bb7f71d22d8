"""Figure builders on synthetic arrays: what they draw, and what they send at 1,000,000 rows."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from aecore.evaluation.thresholds import ErrorIndex, sweep
from aecore.viz import charts

MB = 1024 * 1024
N_LARGE = 1_000_000
TOP_FEATURES = "top features: srv1_cpu_temp_c 45%, srv2_fan_rpm 20%, humidity_pct 9%"


@pytest.fixture(scope="module")
def large_errors():
    """A million heavy-tailed errors with 1% clear anomalies, as float32 like the scorer's."""
    rng = np.random.default_rng(0)
    errors = rng.lognormal(mean=-2.0, sigma=0.5, size=N_LARGE).astype(np.float32)
    anomalies = rng.choice(N_LARGE, N_LARGE // 100, replace=False)
    errors[anomalies] *= 20
    return errors


def _line_shapes(figure):
    return [shape for shape in figure.layout.shapes if shape.type == "line"]


def _valid(figure):
    """The builders skip plotly's validation for speed: check here that plotly accepts them."""
    go.Figure(figure.to_dict())  # raises ValueError on any invalid property
    return figure


# ---------------------------------------------------------------- down-sampling


def test_downsample_keeps_every_flagged_row_and_samples_the_rest():
    rng = np.random.default_rng(1)
    flagged = rng.random(200_000) < 0.01
    rows = charts.downsample(flagged, max_other=20_000)
    assert set(np.flatnonzero(flagged)) <= set(rows.tolist())
    assert np.all(np.diff(rows) > 0)  # sorted, no duplicates
    assert (~flagged[rows]).sum() == 20_000
    assert np.array_equal(rows, charts.downsample(flagged, max_other=20_000))  # seeded


def test_downsample_over_the_flagged_cap_keeps_the_highest_errors():
    flagged = np.ones(1_000, dtype=bool)
    errors = np.arange(1_000, dtype=float)
    rows = charts.downsample(flagged, priority=errors, max_flagged=100)
    assert sorted(rows.tolist()) == list(range(900, 1_000))


def test_downsample_small_data_draws_every_row():
    flagged = np.array([False, True, False, False])
    assert charts.downsample(flagged).tolist() == [0, 1, 2, 3]


def test_thin_indices_keeps_the_requested_points_and_bounds_the_rest():
    kept = charts.thin_indices(1_000_001, 1_000, keep=[123_457])
    assert 123_457 in kept
    assert kept[0] == 0 and kept[-1] == 1_000_000
    assert len(kept) <= 1_001


def test_bucket_peaks_keeps_every_spike():
    signal = np.zeros(1_000_000)
    spikes = [17, 333_333, 999_999]
    signal[spikes] = [5.0, 7.0, 9.0]
    peaks = charts.bucket_peaks(signal, buckets=2_000)
    assert len(peaks) <= 2_000
    assert set(spikes) <= set(peaks.tolist())


# ---------------------------------------------------------------- threshold page


def test_histogram_draws_the_binned_counts_and_the_threshold():
    errors = np.concatenate([np.linspace(0.0, 1.0, 900), np.linspace(2.0, 3.0, 100)])
    counts, edges = ErrorIndex(errors).histogram(bins=30)
    figure = _valid(charts.error_histogram(counts, edges, threshold=1.5, n_flagged=100))
    bins_trace, flagged_trace = figure.data
    assert np.allclose(bins_trace.x, edges)
    assert np.allclose(bins_trace.y[:-1], counts)  # step line: one more point than bins
    assert flagged_trace.x[0] == 1.5 and min(flagged_trace.x) == 1.5  # red part starts there
    (line,) = _line_shapes(figure)
    assert line.x0 == line.x1 == 1.5
    assert "100 flagged" in line.label.text
    assert figure.layout.xaxis.title.text.startswith("reconstruction error")
    assert figure.layout.yaxis.title.text == "rows"


def test_histogram_log_scales_and_empty_bins():
    counts, edges = np.array([5, 0, 3]), np.array([0.01, 0.1, 1.0, 10.0])
    figure = _valid(
        charts.error_histogram(counts, edges, threshold=20.0, log_x=True, log_y=True)
    )
    assert figure.layout.xaxis.type == "log" and figure.layout.yaxis.type == "log"
    assert np.isnan(figure.data[0].y[1])  # an empty bin leaves a gap on a log axis
    assert len(figure.data) == 1  # nothing above a threshold past the last bin


@pytest.fixture(scope="module")
def labelled_sweep():
    rng = np.random.default_rng(4)
    labels = (rng.random(20_000) < 0.05).astype(np.int8)
    errors = rng.normal(size=20_000) + 2.5 * labels
    return sweep(errors, labels, c_alarm=1.0, c_missed=5.0)


def test_thin_sweep_keeps_the_best_thresholds(labelled_sweep):
    curve = charts.thin_sweep(labelled_sweep)
    assert len(curve.thresholds) <= charts.CURVE_POINTS + 2
    top = np.sort(labelled_sweep.thresholds)[-200:]  # the sparse high end is drawn finely
    assert np.isin(curve.thresholds, top).sum() >= 20
    assert np.all(np.diff(curve.thresholds) >= 0)
    assert curve.cost[curve.best_cost] == labelled_sweep.cost.min()
    assert curve.f1[curve.best_f1] == labelled_sweep.f1.max()
    assert curve.thresholds[curve.best_cost] == labelled_sweep.min_cost().value


def test_cost_curve_marks_the_current_threshold_and_the_minimum(labelled_sweep):
    curve = charts.thin_sweep(labelled_sweep)
    at = labelled_sweep.at(1.0)
    figure = _valid(
        charts.cost_curve(curve, 1.0, at["cost"], c_alarm=1, c_missed=5, log_x=False)
    )
    line, best, current = figure.data
    assert best.y[0] == labelled_sweep.cost.min()
    assert current.x[0] == 1.0 and current.y[0] == at["cost"]
    assert "5 × missed" in figure.layout.title.subtitle.text
    assert _line_shapes(figure)[0].x0 == 1.0
    wide = charts.thin_sweep(labelled_sweep)
    wide.cost = np.linspace(1.0, 10_000.0, len(wide.cost))
    spread = charts.cost_curve(wide, 1.0, 5.0, c_alarm=1, c_missed=5, log_x=True)
    assert spread.layout.yaxis.type == "log"  # costs spanning decades get a log axis
    wide.cost[wide.best_cost] = 0.0  # a threshold that costs nothing: its star must show
    free = charts.cost_curve(wide, 1.0, 5.0, c_alarm=1, c_missed=5, log_x=True)
    assert free.layout.yaxis.type != "log" and free.data[1].y[0] == 0.0


def test_metric_curves_stay_in_zero_one(labelled_sweep):
    curve = charts.thin_sweep(labelled_sweep)
    figure = _valid(charts.metric_curves(curve, 1.0, log_x=True))
    assert [trace.name for trace in figure.data] == ["precision", "recall", "F1"]
    assert min(figure.data[0].x) > 0  # a log axis shows positive thresholds only
    assert list(figure.layout.yaxis.range) == [0, 1.05]


def test_timeline_reduces_a_million_rows_but_keeps_peaks_and_labels(large_errors):
    labels = np.zeros(N_LARGE, dtype=np.int8)
    labels[500_000:500_010] = 1
    timeline = charts.reduce_timeline(np.arange(N_LARGE), large_errors, labels)
    assert timeline.reduced and len(timeline.errors) <= charts.TIMELINE_BUCKETS
    assert float(timeline.errors.max()) == float(large_errors.max())
    assert timeline.marked.sum() >= 1
    figure = _valid(charts.error_timeline(timeline, threshold=1.0, log_y=True))
    shading = next(trace for trace in figure.data if trace.name == "labelled anomaly")
    assert shading.y.max() == 1
    (threshold_line,) = _line_shapes(figure)
    assert threshold_line.y0 == threshold_line.y1 == 1.0
    assert figure.layout.xaxis.title.text == "row"


def test_short_timeline_is_drawn_as_is():
    timeline = charts.reduce_timeline(np.arange(5), np.arange(5.0), x_title="timestamp")
    assert not timeline.reduced and timeline.marked is None
    figure = _valid(charts.error_timeline(timeline, threshold=2.5))
    assert figure.data[0].name == "error"
    assert figure.layout.title.text == "Reconstruction error over time"


# ---------------------------------------------------------------- latent space


def test_scatter_maps_points_back_to_rows_and_colours_flags():
    xy = np.array([[0, 0], [1, 1], [2, 2], [3, 3]], dtype=np.float32)
    rows = np.array([10, 20, 30, 40])
    flags = np.array([False, True, False, True])
    figure, trace_rows = charts.scatter_2d(
        xy, rows, np.array([0.1, 5.0, 0.2, 6.0]), flags, note="2-D code",
        hover=["", "a 50%", "", "b 60%"], title="t", x_title="x", y_title="y",
    )  # fmt: skip
    _valid(figure)
    assert [trace.name for trace in figure.data] == ["not flagged", "flagged"]
    assert figure.layout.title.subtitle.text == "2-D code"
    assert [r.tolist() for r in trace_rows] == [[10, 30], [20, 40]]
    assert all(trace.type == "scattergl" for trace in figure.data)
    assert list(figure.data[1].text) == ["a 50%", "b 60%"]
    assert figure.layout.dragmode == "select"


def test_scatter_by_error_draws_the_highest_errors_on_top():
    errors = np.array([3.0, 1.0, 2.0])
    figure, trace_rows = charts.scatter_2d(
        np.zeros((3, 2)), np.array([0, 1, 2]), errors, np.zeros(3, bool),
        color_by="error", title="t", x_title="x", y_title="y",
    )  # fmt: skip
    _valid(figure)
    assert trace_rows[0].tolist() == [1, 2, 0]
    assert figure.data[0].marker.colorbar.title.text == "log10 error"


def test_scatter_by_label_has_a_trace_per_known_class():
    figure, _ = charts.scatter_2d(
        np.zeros((3, 2)), np.arange(3), np.ones(3), np.zeros(3, bool), color_by="label",
        labels=np.array([0, 1, -1]), title="t", x_title="x", y_title="y",
    )  # fmt: skip
    _valid(figure)
    assert {trace.name for trace in figure.data} == {
        "labelled normal", "labelled anomaly", "label unknown"
    }  # fmt: skip


# ---------------------------------------------------------------- explain and training


def test_heatmap_is_limited_to_the_top_rows():
    values = np.random.default_rng(0).random((500, 8))
    names = [f"row {i}" for i in range(500)]
    figure = _valid(charts.feature_heatmap(values, names, [f"f{j}" for j in range(8)]))
    heatmap = figure.data[0]
    assert np.asarray(heatmap.z).shape == (charts.HEATMAP_MAX_ROWS, 8)
    assert list(heatmap.y) == names[: charts.HEATMAP_MAX_ROWS]


def test_feature_bars_put_the_largest_first():
    values = pd.Series({"a": 1.0, "b": 3.0, "c": 2.0})
    figure = _valid(charts.feature_bars(values, title="t"))
    assert list(figure.data[0].y) == ["b", "c", "a"]
    assert figure.layout.yaxis.autorange == "reversed"
    assert figure.layout.yaxis.type == "category"  # names such as "m0" are not numbers


def test_axes_are_typed_by_the_data_unless_log():
    figure = charts.error_histogram(np.array([1, 2]), np.array([0.0, 1.0, 2.0]), threshold=1.5)
    assert figure.layout.xaxis.type is None and figure.layout.yaxis.type is None
    (line,) = _line_shapes(figure)
    assert line.label.xanchor == "right"  # near the right edge: the label goes left of the line


def test_loss_curve_marks_the_best_epoch():
    figure = _valid(
        charts.loss_curve([1.0, 0.5, 0.4], [1.1, 0.6, 0.7], best_epoch=2, total_epochs=10)
    )
    names = [trace.name for trace in figure.data]
    assert names == ["training loss", "validation loss", "best epoch"]
    assert figure.data[2].x[0] == 2 and figure.data[2].y[0] == 0.6
    assert figure.layout.yaxis.type == "log"
    assert figure.layout.xaxis.dtick == 1  # whole epochs


# ---------------------------------------------------------------- payloads at 1,000,000 rows


def test_every_figure_stays_under_5_mb_at_a_million_rows(large_errors):
    rng = np.random.default_rng(2)
    index = ErrorIndex(large_errors)
    threshold = float(np.quantile(large_errors, 0.99))
    flags = large_errors > threshold

    counts, edges = index.histogram(bins=100, log=True)
    histogram = charts.error_histogram(counts, edges, threshold, log_x=True)

    rows = charts.downsample(flags, priority=large_errors)
    assert flags[rows].sum() == flags.sum()
    worst_flags = large_errors > np.quantile(large_errors, 0.5)  # half the rows flagged
    worst_rows = charts.downsample(worst_flags, priority=large_errors)
    worst_hover = np.full(len(worst_rows), "", dtype=object)
    worst_hover[worst_flags[worst_rows]] = TOP_FEATURES
    worst, _ = charts.scatter_2d(
        rng.normal(size=(len(worst_rows), 2)), worst_rows, large_errors[worst_rows],
        worst_flags[worst_rows], hover=worst_hover, title="t", x_title="x", y_title="y",
    )  # fmt: skip
    hover = np.full(len(rows), "", dtype=object)
    hover[flags[rows]] = TOP_FEATURES
    scatter, _ = charts.scatter_2d(
        rng.normal(size=(len(rows), 2)), rows, large_errors[rows], flags[rows], hover=hover,
        title="Latent space", x_title="PC 1", y_title="PC 2",
    )  # fmt: skip

    labels = np.zeros(N_LARGE, dtype=np.int8)
    labels[large_errors > np.quantile(large_errors, 0.985)] = 1
    curve = charts.thin_sweep(sweep(large_errors, labels))
    cost_figure = charts.cost_curve(curve, threshold, 10.0, c_alarm=1, c_missed=1, log_x=True)
    timeline = charts.error_timeline(
        charts.reduce_timeline(
            pd.date_range("2026-01-01", periods=N_LARGE, freq="s").to_numpy(), large_errors,
            labels, x_title="timestamp",
        ),
        threshold,
    )  # fmt: skip
    feature_errors = rng.random((N_LARGE, 30), dtype=np.float32)
    top = np.argsort(-large_errors)[: charts.HEATMAP_MAX_ROWS]
    heatmap = charts.feature_heatmap(
        feature_errors[top], [f"row {r}" for r in top], [f"feature_{j:02d}" for j in range(30)]
    )
    for figure in (histogram, scatter, worst, cost_figure, timeline, heatmap):
        assert charts.payload_bytes(figure) <= 5 * MB, figure.layout.title.text


# ---------------------------------------------------------------- few labels and drift


def _budget_table(repeats: int) -> pd.DataFrame:
    """A comparison table shaped like ``compare_label_budgets``'s, scratch winning at 200."""
    rows = []
    f1 = {"pretrained": [0.5, 0.6, 0.7], "scratch": [0.2, 0.5, 0.8], "unsupervised": [0.4] * 3}
    for position, budget in enumerate((10, 50, 200)):
        for approach, label in (
            ("pretrained", "Pre-trained"), ("scratch", "Scratch"), ("unsupervised", "Error"),
        ):  # fmt: skip
            rows.append({
                "budget": budget, "approach": approach, "approach_label": label,
                "f1": f1[approach][position], "f1_std": 0.05, "pr_auc": 0.9, "pr_auc_std": 0.0,
                "precision": 0.7, "recall": 0.6, "repeats": repeats, "n_test": 120,
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_label_budget_curves_draw_one_line_per_approach():
    figure = _valid(charts.label_budget_curves(_budget_table(repeats=1)))
    assert [trace.name for trace in figure.data] == ["Pre-trained", "Scratch", "Error"]
    scratch = figure.data[1]
    assert list(scratch.x) == [10, 50, 200] and list(scratch.y) == [0.2, 0.5, 0.8]
    assert figure.layout.xaxis.type == "log" and list(figure.layout.xaxis.tickvals) == [10, 50, 200]
    assert "120 held-out" in figure.layout.title.subtitle.text
    assert scratch.error_y.array is None  # one draw: no spread to show
    spread = _valid(charts.label_budget_curves(_budget_table(repeats=3)))
    assert list(spread.data[0].error_y.array) == [0.05] * 3


def test_drift_histograms_overlay_shares_and_mark_the_threshold():
    rng = np.random.default_rng(5)
    reference = rng.lognormal(-2.0, 0.3, 800)
    shifted = rng.lognormal(-0.5, 0.3, 3000)  # a batch of another size, errors grown
    for log_x in (True, False):
        figure = _valid(charts.drift_histograms(reference, shifted, 0.25, log_x=log_x))
        old, new = figure.data
        assert "800" in old.name and "3,000" in new.name
        for trace in (old, new):
            assert np.isclose(np.sum(trace.y[:-1]), 100.0)  # shares of each curve's own rows
        centres = np.asarray(old.x[:-1])
        assert np.average(centres, weights=new.y[:-1]) > np.average(centres, weights=old.y[:-1])
        (line,) = _line_shapes(figure)
        assert line.x0 == line.x1 == 0.25 and "0.25" in line.label.text
        assert figure.layout.xaxis.type == ("log" if log_x else None)


# ---------------------------------------------------------------- readable axes (issue 13 #8)


def _log_axes(figure):
    layout = figure.layout
    return [axis for axis in (layout.xaxis, layout.yaxis) if axis.type == "log"]


def _assert_readable_log_ticks(figure, width_px=420):
    """At most 8 short labels on every log axis, which fit side by side in ``width_px``
    (about 7 px a character, plus a gap): plotly's own 1-2-5 labels over four decades
    (0.00005, 0.0001, 0.0002, ...) ran into each other."""
    axes = _log_axes(figure)
    assert axes, figure.layout.title.text
    for axis in axes:
        assert axis.tickvals is not None, figure.layout.title.text
        texts = list(axis.ticktext)
        assert 2 <= len(texts) <= charts.MAX_LOG_TICKS == 8
        assert max(len(text) for text in texts) <= 5, texts
        assert sum(7 * len(text) + 14 for text in texts) <= width_px, texts
        assert np.all(np.diff(np.log10(axis.tickvals)) > 0)


def test_every_log_axis_has_few_short_tick_labels(labelled_sweep):
    rng = np.random.default_rng(5)
    errors = rng.lognormal(mean=-6.0, sigma=1.5, size=20_000)  # 5e-5 to 0.3 and beyond
    counts, edges = ErrorIndex(errors).histogram(bins=60, log=True)
    threshold = float(np.quantile(errors, 0.99))
    figures = [
        charts.error_histogram(counts, edges, threshold, log_x=True, log_y=True),
        charts.drift_histograms(errors[:5000], errors[5000:] * 3, threshold, log_x=True),
        charts.error_timeline(charts.reduce_timeline(np.arange(len(errors)), errors), threshold,
                              log_y=True),
        charts.loss_curve(list(np.geomspace(2.0, 1e-4, 40)), list(np.geomspace(3.0, 2e-4, 40))),
    ]  # fmt: skip
    wide = charts.thin_sweep(labelled_sweep)
    wide.thresholds = np.geomspace(1e-5, 10.0, len(wide.thresholds))
    wide.cost = np.geomspace(10_000.0, 1.0, len(wide.cost))
    figures.append(charts.cost_curve(wide, 0.01, 5.0, c_alarm=1, c_missed=5, log_x=True))
    figures.append(charts.metric_curves(wide, 0.01, log_x=True))
    for figure in figures:
        _valid(figure)
        _assert_readable_log_ticks(figure)
    histogram = figures[0]
    assert set(histogram.layout.xaxis.ticktext) >= {"0.001", "0.01", "0.1"}


def test_log_ticks_label_powers_of_ten_over_a_wide_range_and_leave_a_narrow_one_to_plotly():
    ticks = charts.log_ticks([1e-8, 1e8])
    pairs = zip(ticks["ticktext"], ticks["tickvals"], strict=True)
    assert len(ticks["tickvals"]) <= 8 and all(float(text) == value for text, value in pairs)
    assert charts.log_ticks([0.30, 0.45]) == {}  # less than half a decade
    assert charts.log_ticks([0.0, -1.0]) == {}
    assert charts.log_ticks([0.01, 10])["ticktext"] == ["0.01", "0.03", "0.1", "0.3", "1", "3",
                                                        "10"]  # fmt: skip


def _shaded_share(figure) -> float:
    """Share of the timeline's points under the labelled-anomaly shading (0 without any)."""
    shading = [t for t in figure.data if t.name == "labelled anomaly" and t.fill == "tozeroy"]
    return float(np.mean(shading[0].y)) if shading else 0.0


def test_common_labelled_anomalies_are_markers_not_a_chart_wide_shading():
    """Issue 13 #8: with 40 % of rows labelled anomalies, every run of rows held one and the
    shading covered the whole chart; now they are markers at their own errors."""
    rng = np.random.default_rng(6)
    for n_rows in (3_000, 200_000):  # drawn as is, and reduced to runs of rows
        labels = (rng.random(n_rows) < 0.4).astype(np.int8)
        errors = rng.lognormal(size=n_rows) * (1 + 4 * labels)
        figure = _valid(
            charts.error_timeline(charts.reduce_timeline(np.arange(n_rows), errors, labels), 5.0)
        )
        assert _shaded_share(figure) == 0.0
        (markers,) = [t for t in figure.data if t.name == "labelled anomaly"]
        assert markers.mode == "markers" and 0 < len(markers.x) <= charts.TIMELINE_BUCKETS
        assert labels[np.asarray(markers.x, dtype=int)].all()  # each marker is an anomaly row
        np.testing.assert_allclose(markers.y, errors[np.asarray(markers.x, dtype=int)])


def test_a_few_grouped_labelled_anomalies_shade_only_their_spans():
    labels = np.zeros(3_000, dtype=np.int8)
    labels[1000:1040] = 1
    labels[1045:1050] = 1  # five rows later: merged with the first span
    labels[2500:2510] = 1
    errors = np.random.default_rng(7).lognormal(size=3_000) * (1 + 4 * labels)
    timeline = charts.reduce_timeline(np.arange(3_000), errors, labels)
    assert charts.anomaly_spans(timeline.marked, 10) == [(1000, 1049), (2500, 2509)]
    figure = _valid(charts.error_timeline(timeline, 5.0))
    assert _shaded_share(figure) == pytest.approx(60 / 3_000)  # those 60 rows, no more
    assert not [t for t in figure.data if t.name == "labelled anomaly" and t.mode == "markers"]


def test_long_titles_wrap_instead_of_running_off_a_narrow_chart():
    """At 1024 px, half-width charts clipped long titles ("Features whose errors grew mo");
    plotly never wraps them, so the builders break them into lines and make room."""
    values = pd.Series([3.0, 2.0, 1.0], index=["a", "b", "c"])
    short = charts.feature_bars(values, title="Top features", x_title="error")
    long = _valid(
        charts.feature_bars(
            values, title="Features whose errors grew most since training",
            x_title="increase in mean error (standardised units)",
        )
    )  # fmt: skip
    lines = long.layout.title.text.split("<br>")
    assert len(lines) == 2 and max(len(line) for line in lines) <= 28
    assert max(len(line) for line in long.layout.xaxis.title.text.split("<br>")) <= 30
    assert long.layout.margin.t > short.layout.margin.t
    assert long.layout.margin.b > short.layout.margin.b
    histogram = charts.error_histogram(np.array([1, 2]), np.array([0.1, 1.0, 10.0]), 1.0,
                                       log_x=True)  # fmt: skip
    assert "<br>" not in histogram.layout.xaxis.title.text  # short enough for half a page


def test_detector_agreement_marks_both_cuts_and_draws_the_disagreeing_rows_on_top(large_errors):
    rng = np.random.default_rng(3)
    classical = large_errors + rng.normal(scale=0.05, size=N_LARGE)
    ranks = np.argsort(np.argsort(-large_errors)) + 1
    classical_ranks = np.argsort(np.argsort(-classical)) + 1
    top_n = N_LARGE // 100
    flagged, top = ranks <= top_n, classical_ranks <= top_n
    groups = np.select([flagged & top, top, flagged], [1, 2, 3], 0)
    rows = charts.downsample(groups > 0)
    figure = _valid(charts.detector_agreement(
        ranks[rows], classical_ranks[rows], rows + 2, groups[rows], large_errors[rows],
        classical[rows], detector="IsolationForest", n_flagged=top_n, top_n=top_n,
        n_rows=N_LARGE,
    ))  # fmt: skip
    names = [trace.name for trace in figure.data]
    assert names[0] == "other rows" and len(names) == 4
    assert names[2] == f"IsolationForest's top {top_n:,}, not flagged"
    assert sum(len(trace.x) for trace in figure.data[1:]) == int((groups > 0).sum())
    assert [shape.x0 for shape in _line_shapes(figure) if shape.xref == "x"] == [top_n + 0.5]
    assert [shape.y0 for shape in _line_shapes(figure) if shape.yref == "y"] == [top_n + 0.5]
    assert figure.layout.xaxis.type == "log" and figure.layout.xaxis.autorange == "reversed"
    assert "row %{customdata[0]" in figure.data[2].hovertemplate
    assert charts.payload_bytes(figure) <= 5 * MB


def test_review_ranks_draw_each_verdict_and_the_held_out_rows_hollow():
    table = pd.DataFrame({
        "source_row": [2, 3, 4, 5],
        "status": ["anomaly", "anomaly", "normal", "normal"],
        "held_out": [False, True, False, True],
        "rank_before": [40, 3, 1, 900],
        "rank_after": [5, 2, 300, 950],
    })  # fmt: skip
    figure = _valid(charts.review_ranks(table))
    names = [trace.name for trace in figure.data]
    assert names == ["confirmed anomaly", "confirmed anomaly (held out)", "false alarm",
                     "false alarm (held out)", "same rank"]  # fmt: skip
    assert figure.data[1].marker.symbol == "circle-open"
    assert list(figure.data[0].x) == [40] and list(figure.data[0].y) == [5]
    assert figure.layout.yaxis.autorange == "reversed" and figure.layout.xaxis.type == "log"


def test_every_log_tick_sits_exactly_on_the_value_its_label_reads():
    # 1-2-5 and 1-3 steps as well as powers of ten (3 * 1e-05 is 3.0000000000000004e-05).
    for values in ([2e-6, 4e-4], [1e-5, 1.0], [1e-8, 1e8], [0.2, 40.0]):
        ticks = charts.log_ticks(values)
        pairs = zip(ticks["ticktext"], ticks["tickvals"], strict=True)
        assert all(float(text) == value for text, value in pairs), ticks
