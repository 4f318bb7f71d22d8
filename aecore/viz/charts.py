"""Plotly figures for the dashboard: pure functions from arrays to figures (no streamlit).

Every builder keeps what it sends to the browser small whatever the number of rows:
histograms arrive already binned, curves are thinned to about ``CURVE_POINTS`` points, the
error timeline is reduced to the highest error of each of ``TIMELINE_BUCKETS`` runs of rows,
scatter plots use WebGL on a sample of at most ``MAX_SCATTER_POINTS`` unflagged rows plus every
flagged row (up to ``MAX_FLAGGED_POINTS``; see :func:`downsample`), and heatmaps show at most
``HEATMAP_MAX_ROWS`` rows. Numeric arrays travel as binary (base64) typed arrays, so a figure
stays under 5 MB at 1,000,000 rows.

Figures are assembled as plain dicts and wrapped without plotly's property validation (a
third of the cost of a threshold-slider move otherwise); ``tests/test_charts.py`` validates
every builder's output with plotly's validator instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

MAX_SCATTER_POINTS = 20_000
MAX_FLAGGED_POINTS = 30_000
HEATMAP_MAX_ROWS = 200
HEATMAP_MAX_FEATURES = 40
TIMELINE_BUCKETS = 2_000
CURVE_POINTS = 1_000

NORMAL_COLOR = "#4C78A8"
FLAGGED_COLOR = "#D62728"
LABEL_COLOR = "#F58518"
UNKNOWN_COLOR = "#9E9E9E"
BEST_COLOR = "#2CA02C"
ERROR_TITLE = "reconstruction error (row MSE)"
TITLE_CHARS = 46  # a chart title longer than this wraps: half-width charts at 1024 px clip it
AXIS_TITLE_CHARS = 48


def payload_bytes(figure: go.Figure) -> int:
    """Size in bytes of the JSON that Streamlit sends to the browser for ``figure``."""
    return len(pio.to_json(figure, validate=False).encode("utf-8"))


def _figure(data: list[dict], layout: dict) -> go.Figure:
    return go.Figure({"data": data, "layout": layout}, _validate=False)


MAX_LOG_TICKS = 8


def _tick_text(value: float) -> str:
    """A short tick label: 0.002, 50, 2000 as they are; 5e-5 or 2e6 beyond (at most 5
    characters either way, so neighbouring labels never run into each other)."""
    plain = f"{value:g}"
    if len(plain) <= 5 and "e" not in plain:
        return plain
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _tick_value(mantissa: int, exponent) -> float:
    """``mantissa`` x 10 to an integer power, exactly the number its label reads (arithmetic
    does not give it: ``10.0 ** np.int64(-5)`` is 9.999999999999999e-06 under numpy 2.4 and
    ``3 * 1e-05`` is 3.0000000000000004e-05, ticks just off the values they are labelled)."""
    return float(f"{mantissa}e{int(exponent)}")


def log_ticks(values, max_ticks: int = MAX_LOG_TICKS) -> dict:
    """``tickvals``/``ticktext`` for a log axis over the positive finite ``values``: 1-2-5 in
    every decade when that gives at most ``max_ticks`` labels, else 1-3, else powers of ten
    (every second or third decade over a wide range), with short labels (``_tick_text``).
    Plotly's own log ticks label every 1-2-5 step in full (0.00005, 0.0001, 0.0002, ...),
    which run into each other over a few decades. Empty (plotly's ticks) over less than about
    half a decade, where its linear-looking labels read well."""
    array = np.asarray(values, dtype=np.float64).ravel()
    positive = array[np.isfinite(array) & (array > 0)]
    if len(positive) == 0:
        return {}
    low, high = float(positive.min()), float(positive.max())
    if high < low * 3:
        return {}
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    decades = np.arange(first, last + 1)
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        ticks = [_tick_value(m, k) for k in decades for m in mantissas]
        ticks = [t for t in ticks if low <= t * (1 + 1e-9) and t <= high * (1 + 1e-9)]
        if len(ticks) <= max_ticks and len(ticks) >= 2:
            break
    else:
        step = math.ceil(len(decades) / max_ticks)
        ticks = [_tick_value(1, k) for k in decades[::step]]
    if len(ticks) < 2:  # within one decade and between 1-2-5 steps: the decade's ends
        ticks = [_tick_value(1, first), _tick_value(1, first + 1)]
    return {"tickvals": ticks, "ticktext": [_tick_text(t) for t in ticks]}


def _wrap(text: str, width: int) -> str:
    """``text`` broken at spaces into lines of at most ``width`` characters (plotly's ``<br>``):
    plotly never wraps a title, and clips one wider than its chart."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "<br>".join(lines)


def _axis(
    title: str, log: bool = False, *, values=None, wrap: int = AXIS_TITLE_CHARS, **extra
) -> dict:
    """An axis with a title (type detected from the data unless ``log`` or given; wrapped at
    ``wrap`` characters). A log axis gets at most ``MAX_LOG_TICKS`` short labels over the range
    of ``values`` (``log_ticks``); without ``values``, one label per power of ten."""
    axis: dict = {"title": {"text": _wrap(title, wrap), "standoff": 8}}
    if log:
        axis.update(type="log")
        ticks = log_ticks(values) if values is not None else {}
        if ticks:
            axis.update(tickmode="array", **ticks)
        elif values is None:
            axis.update(dtick=1, exponentformat="power")
    return {**axis, **extra}


def _layout(
    *,
    title: str,
    x_axis: dict,
    y_axis: dict,
    height: int = 380,
    legend: bool = True,
    subtitle: str = "",
    title_chars: int = TITLE_CHARS,
    **extra,
) -> dict:
    title = _wrap(title, title_chars)
    subtitle = _wrap(subtitle, max(title_chars - 2, 24))
    extra_lines = title.count("<br>") + subtitle.count("<br>")
    x_lines = str(x_axis.get("title", {}).get("text", "")).count("<br>")
    title_spec: dict = {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}}
    if subtitle:
        title_spec["subtitle"] = {"text": subtitle, "font": {"size": 12}}
    top = (80 if subtitle else 60) + 18 * extra_lines
    bottom = 60 + (40 if legend else 0) + 16 * x_lines
    return {
        "title": title_spec,
        "height": height + (40 if legend else 0) + 18 * extra_lines + 16 * x_lines,
        "margin": {"l": 70, "r": 20, "t": top, "b": bottom},
        "showlegend": legend,
        # In the bottom margin's last 40 px, measured from the figure's edge: a legend placed
        # in plot units (a share of the plot's height below it) met the x-axis title on short
        # plots, as on the Threshold page's cost chart.
        "legend": {
            "orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0,
            "xanchor": "left", "x": 0,
        },
        "hovermode": "closest",
        "xaxis": x_axis,
        "yaxis": y_axis,
        **extra,
    }


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _threshold_shape(
    threshold: float, text: str, *, vertical: bool, label_left: bool = False
) -> dict:
    line = {"color": FLAGGED_COLOR, "width": 2, "dash": "dash"}
    label = {"text": text, "font": {"color": FLAGGED_COLOR, "size": 12}, "textposition": "end"}
    if vertical:  # the label sits above the plot area, clear of the bars and curves
        side = "right" if label_left else "left"
        label.update(textangle=0, xanchor=side, yanchor="bottom", padding=4)
        return {
            "type": "line", "xref": "x", "yref": "paper", "x0": threshold, "x1": threshold,
            "y0": 0, "y1": 1, "line": line, "label": label,
        }  # fmt: skip
    label.update(yanchor="bottom")
    return {
        "type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": threshold,
        "y1": threshold, "line": line, "label": label,
    }  # fmt: skip


# ---------------------------------------------------------------- down-sampling


def downsample(
    flagged: np.ndarray,
    *,
    priority: np.ndarray | None = None,
    max_other: int = MAX_SCATTER_POINTS,
    max_flagged: int = MAX_FLAGGED_POINTS,
    seed: int = 0,
) -> np.ndarray:
    """Sorted row positions to draw in a scatter plot: every flagged row, plus a seeded uniform
    sample of at most ``max_other`` of the other rows (so the normal cloud looks the same
    whatever the threshold).

    Were more than ``max_flagged`` rows flagged (a threshold far too low), the ``max_flagged``
    with the highest ``priority`` (e.g. the error) are kept, so the payload stays bounded.
    """
    flagged = np.asarray(flagged, dtype=bool)
    flagged_rows = np.flatnonzero(flagged)
    if len(flagged_rows) > max_flagged:
        if priority is None:
            keep = np.random.default_rng(seed).choice(len(flagged_rows), max_flagged, False)
        else:
            keep = np.argpartition(-np.asarray(priority)[flagged_rows], max_flagged - 1)
            keep = keep[:max_flagged]
        flagged_rows = flagged_rows[keep]
    other_rows = np.flatnonzero(~flagged)
    if len(other_rows) > max_other:
        pick = np.random.default_rng(seed).choice(len(other_rows), max_other, replace=False)
        other_rows = other_rows[pick]
    return np.sort(np.concatenate([flagged_rows, other_rows]))


def thin_indices(n: int, max_points: int = CURVE_POINTS, keep: Sequence[int] = ()) -> np.ndarray:
    """At most ``max_points`` evenly spaced indices of ``range(n)`` plus those in ``keep``."""
    if n <= max_points:
        return np.arange(n)
    spaced = np.linspace(0, n - 1, max_points).round().astype(np.int64)
    extra = np.asarray([k for k in keep if 0 <= k < n], dtype=np.int64)
    return np.unique(np.concatenate([spaced, extra]))


def bucket_peaks(values: np.ndarray, buckets: int = TIMELINE_BUCKETS) -> np.ndarray:
    """Position of the largest value in each of ``buckets`` consecutive runs of ``values``.

    A line through these positions shows every peak of a long signal (what matters for
    anomalies) with a bounded number of points. All positions when there are few values.
    """
    values = np.asarray(values)
    n = len(values)
    if n <= 2 * buckets:
        return np.arange(n)
    size = math.ceil(n / buckets)
    padded = np.full(size * math.ceil(n / size), -np.inf)
    padded[:n] = values
    peaks = padded.reshape(-1, size).argmax(axis=1) + np.arange(0, len(padded), size)
    return peaks[peaks < n]


@dataclass
class Curve:
    """Metrics at thinned candidate thresholds, in increasing threshold order."""

    thresholds: np.ndarray
    cost: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    best_cost: int  # index (in these arrays) of the minimum cost
    best_f1: int  # index of the best F1


def thin_sweep(sweep, max_points: int = CURVE_POINTS) -> Curve:
    """A ``thresholds.Sweep`` thinned for plotting (computed once per sweep, not per slider
    move): half the points evenly spaced among the candidates, half evenly spaced in log
    threshold (so the sparse high-error end, where the anomalies are, is drawn finely too),
    keeping the minimum-cost and best-F1 candidates."""
    thresholds = np.asarray(sweep.thresholds, dtype=np.float64)
    best_cost, best_f1 = int(np.argmin(sweep.cost)), int(np.argmax(sweep.f1))
    keep = thin_indices(len(thresholds), max_points // 2, keep=[best_cost, best_f1])
    ascending = thresholds[::-1]  # the sweep lists thresholds from high to low
    positive = ascending[ascending > 0]
    if len(positive) > 1 and len(thresholds) > max_points:
        targets = np.geomspace(positive[0], positive[-1], max_points // 2)
        at = np.clip(np.searchsorted(ascending, targets), 0, len(ascending) - 1)
        keep = np.unique(np.concatenate([keep, len(thresholds) - 1 - at]))
    keep = keep[np.argsort(thresholds[keep], kind="stable")]
    return Curve(
        thresholds=thresholds[keep],
        cost=np.asarray(sweep.cost[keep], dtype=np.float64),
        precision=np.asarray(sweep.precision[keep], dtype=np.float64),
        recall=np.asarray(sweep.recall[keep], dtype=np.float64),
        f1=np.asarray(sweep.f1[keep], dtype=np.float64),
        best_cost=int(np.flatnonzero(keep == best_cost)[0]),
        best_f1=int(np.flatnonzero(keep == best_f1)[0]),
    )


@dataclass
class Timeline:
    """The error signal reduced for plotting: one point per run of rows (its peak)."""

    x: np.ndarray
    errors: np.ndarray
    marked: np.ndarray | None  # 1 where the run holds a labelled anomaly
    x_title: str
    reduced: bool
    # The labelled anomalies themselves (at most ``TIMELINE_BUCKETS``, each the highest error of
    # its run of anomalies): drawn as markers when shading their spans would cover the chart.
    anomaly_x: np.ndarray | None = None
    anomaly_errors: np.ndarray | None = None


def reduce_timeline(
    x: np.ndarray,
    errors: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    x_title: str = "row",
    buckets: int = TIMELINE_BUCKETS,
) -> Timeline:
    """Keep the highest error of each of ``buckets`` runs of rows (inputs in time order), and
    whether each run holds a labelled anomaly, so no peak and no incident is lost."""
    errors = np.asarray(errors)
    peaks = bucket_peaks(errors, buckets)
    reduced = len(peaks) < len(errors)
    marked = anomaly_x = anomaly_errors = None
    if labels is not None:
        anomaly = (np.asarray(labels) == 1).astype(np.int8)
        if reduced:
            size = math.ceil(len(errors) / buckets)
            padded = np.zeros(size * math.ceil(len(errors) / size), dtype=np.int8)
            padded[: len(anomaly)] = anomaly
            marked = padded.reshape(-1, size).max(axis=1)[: len(peaks)]
        else:
            marked = anomaly[peaks]
        rows = np.flatnonzero(anomaly)
        rows = rows[bucket_peaks(errors[rows], buckets)]
        anomaly_x, anomaly_errors = np.asarray(x)[rows], errors[rows]
    return Timeline(
        np.asarray(x)[peaks], errors[peaks], marked, x_title, reduced, anomaly_x, anomaly_errors
    )


# Labelled anomalies are shaded as spans while there are at most this many (after merging the
# spans closer than MERGE_GAP of the points) covering at most MAX_SHADED_SHARE of the chart;
# beyond, shading would paint most of the chart, and they are drawn as markers instead.
MAX_SHADED_SPANS = 60
MAX_SHADED_SHARE = 0.25
MERGE_GAP = 0.005


def anomaly_spans(marked: np.ndarray, merge_gap: int = 0) -> list[tuple[int, int]]:
    """``(first, last)`` point positions of each run of marked points, runs separated by at
    most ``merge_gap`` unmarked points merged into one."""
    marked = np.asarray(marked) > 0
    if not marked.any():
        return []
    edges = np.diff(np.concatenate([[0], marked.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    spans = [(int(starts[0]), int(ends[0]))]
    for start, end in zip(starts[1:], ends[1:], strict=True):
        if start - spans[-1][1] - 1 <= merge_gap:
            spans[-1] = (spans[-1][0], int(end))
        else:
            spans.append((int(start), int(end)))
    return spans


def shade_anomalies(timeline: Timeline) -> bool:
    """Whether the timeline's labelled anomalies are few and grouped enough to shade (else
    markers): at most ``MAX_SHADED_SPANS`` merged spans over at most ``MAX_SHADED_SHARE`` of
    the points."""
    marked = timeline.marked
    if marked is None or not marked.any():
        return False
    spans = anomaly_spans(marked, int(MERGE_GAP * len(marked)))
    covered = sum(end - start + 1 for start, end in spans) / len(marked)
    return len(spans) <= MAX_SHADED_SPANS and covered <= MAX_SHADED_SHARE


# ---------------------------------------------------------------- threshold page


def error_histogram(
    counts: np.ndarray,
    edges: np.ndarray,
    threshold: float,
    *,
    log_x: bool = False,
    log_y: bool = False,
    n_flagged: int | None = None,
) -> go.Figure:
    """The reconstruction-error histogram (pre-binned on the server) with the threshold drawn on
    it; the part of the distribution above the threshold (the flagged rows) is shaded red."""
    counts = np.asarray(counts, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    steps_y = np.append(counts, counts[-1] if len(counts) else 0.0)
    if log_y:
        steps_y = np.where(steps_y > 0, steps_y, np.nan)
    data = [
        {
            "type": "scatter", "x": edges, "y": steps_y, "mode": "lines", "fill": "tozeroy",
            "line": {"shape": "hv", "color": NORMAL_COLOR}, "name": "rows per bin",
            "hovertemplate": "error from %{x:.4g}<br>%{y:,.0f} rows<extra></extra>",
        }
    ]  # fmt: skip
    above = edges > threshold
    if above.any() and threshold < edges[-1]:
        first = int(np.argmax(above))
        data.append(
            {
                "type": "scatter", "x": np.concatenate([[threshold], edges[first:]]),
                "y": np.concatenate([[steps_y[max(first - 1, 0)]], steps_y[first:]]),
                "mode": "lines", "fill": "tozeroy", "hoverinfo": "skip",
                "line": {"shape": "hv", "color": FLAGGED_COLOR},
                "name": "flagged (error > threshold)",
            }
        )  # fmt: skip
    text = f"threshold {_fmt(threshold)}"
    if n_flagged is not None:
        text += f" · {n_flagged:,} flagged"
    low, high = float(edges[0]), float(edges[-1])
    if log_x and low > 0 and threshold > 0:
        position = math.log(threshold / low) / max(math.log(high / low), 1e-12)
    else:
        position = (threshold - low) / max(high - low, 1e-300)
    layout = _layout(
        title="Reconstruction error of every row",
        x_axis=_axis(
            ERROR_TITLE + (" (log scale)" if log_x else ""), log_x, values=[*edges, threshold]
        ),
        y_axis=_axis("rows" + (" (log scale)" if log_y else ""), log_y, values=counts),
        shapes=[_threshold_shape(threshold, text, vertical=True, label_left=position > 0.6)],
    )
    return _figure(data, layout)


def cost_curve(
    curve: Curve,
    threshold: float,
    current_cost: float,
    *,
    c_alarm: float,
    c_missed: float,
    log_x: bool = False,
) -> go.Figure:
    """Cost (``c_alarm * false alarms + c_missed * missed``) against the threshold, with the
    current threshold and the cheapest one marked."""
    shown = curve.thresholds > 0 if log_x else np.ones(len(curve.thresholds), dtype=bool)
    best = curve.best_cost
    positive = curve.cost[curve.cost > 0]
    # Not a log scale when the cheapest threshold costs nothing: its star would be off the axis.
    log_y = bool(
        log_x and len(positive) and positive.max() > 100 * positive.min() and curve.cost[best] > 0
    )
    data = [
        {
            "type": "scatter", "x": curve.thresholds[shown], "y": curve.cost[shown],
            "mode": "lines", "name": "cost", "line": {"color": NORMAL_COLOR, "shape": "hv"},
            "hovertemplate": "threshold %{x:.4g}<br>cost %{y:,.4g}<extra></extra>",
        },
        {
            "type": "scatter", "x": [curve.thresholds[best]], "y": [curve.cost[best]],
            "mode": "markers", "name": "minimum cost",
            "marker": {"color": BEST_COLOR, "size": 12, "symbol": "star"},
            "hovertemplate": "minimum cost %{y:,.4g}<br>at threshold %{x:.4g}<extra></extra>",
        },
        {
            "type": "scatter", "x": [threshold], "y": [current_cost], "mode": "markers",
            "name": "current threshold",
            "marker": {"color": FLAGGED_COLOR, "size": 11, "symbol": "diamond"},
            "hovertemplate": "current threshold %{x:.4g}<br>cost %{y:,.4g}<extra></extra>",
        },
    ]  # fmt: skip
    layout = _layout(
        title="Cost by threshold",
        subtitle=f"cost = {c_alarm:g} × false alarms + {c_missed:g} × missed anomalies",
        x_axis=_axis(
            "threshold" + (" (log scale)" if log_x else ""), log_x,
            values=[*curve.thresholds[shown], threshold],
        ),
        y_axis=_axis("cost" + (" (log scale)" if log_y else ""), log_y, values=curve.cost),
        shapes=[_threshold_shape(threshold, "", vertical=True)],
    )
    return _figure(data, layout)


def metric_curves(curve: Curve, threshold: float, *, log_x: bool = False) -> go.Figure:
    """Precision, recall and F1 against the threshold, with the current threshold marked."""
    shown = curve.thresholds > 0 if log_x else np.ones(len(curve.thresholds), dtype=bool)
    data = [
        {
            "type": "scatter", "x": curve.thresholds[shown], "y": values[shown],
            "mode": "lines", "name": name, "line": {"color": color, "shape": "hv"},
            "hovertemplate": f"threshold %{{x:.4g}}<br>{name} %{{y:.3f}}<extra></extra>",
        }
        for name, values, color in (
            ("precision", curve.precision, NORMAL_COLOR),
            ("recall", curve.recall, LABEL_COLOR),
            ("F1", curve.f1, BEST_COLOR),
        )
    ]  # fmt: skip
    layout = _layout(
        title="Precision, recall and F1 by threshold",
        x_axis=_axis(
            "threshold" + (" (log scale)" if log_x else ""), log_x,
            values=[*curve.thresholds[shown], threshold],
        ),
        y_axis=_axis("score (0 to 1)", range=[0, 1.05]),
        shapes=[_threshold_shape(threshold, "", vertical=True)],
    )
    return _figure(data, layout)


def error_timeline(timeline: Timeline, threshold: float, *, log_y: bool = False) -> go.Figure:
    """The error signal in time (or row) order with the threshold line. Labelled anomalies are
    shaded where they occur (runs of rows holding one, close runs merged) while they are few
    and grouped (``shade_anomalies``); when they are common, shading would cover most of the
    chart, and each is a marker at its error instead. ``timeline``: :func:`reduce_timeline`."""
    data = []
    x_title = timeline.x_title
    markers = None
    if shade_anomalies(timeline):
        shaded = np.zeros(len(timeline.marked), dtype=np.int8)
        for start, end in anomaly_spans(timeline.marked, int(MERGE_GAP * len(timeline.marked))):
            shaded[start : end + 1] = 1
        data.append(
            {
                "type": "scatter", "x": timeline.x, "y": shaded, "yaxis": "y2",
                "mode": "lines", "name": "labelled anomaly", "fill": "tozeroy",
                "line": {"shape": "hvh", "width": 0, "color": LABEL_COLOR},
                "fillcolor": "rgba(245,133,24,0.30)", "hoverinfo": "skip",
            }
        )  # fmt: skip
    elif timeline.anomaly_x is not None and len(timeline.anomaly_x):
        markers = {
            "type": "scattergl", "x": timeline.anomaly_x, "y": timeline.anomaly_errors,
            "mode": "markers", "name": "labelled anomaly",
            "marker": {"color": LABEL_COLOR, "size": 5, "opacity": 0.7},
            "hovertemplate": f"labelled anomaly<br>{x_title} %{{x}}<br>error %{{y:.4g}}"
            "<extra></extra>",
        }  # fmt: skip
    data.append(
        {
            "type": "scattergl", "x": timeline.x, "y": timeline.errors, "mode": "lines",
            "name": "error (highest per run of rows)" if timeline.reduced else "error",
            "line": {"color": NORMAL_COLOR, "width": 1},
            "hovertemplate": f"{x_title} %{{x}}<br>error %{{y:.4g}}<extra></extra>",
        }
    )  # fmt: skip
    if markers is not None:
        data.append(markers)
    layout = _layout(
        title="Reconstruction error over " + ("row order" if x_title == "row" else "time"),
        x_axis=_axis(x_title),
        y_axis=_axis(
            "error" + (" (log scale)" if log_y else ""), log_y,
            values=[*timeline.errors, threshold],
        ),
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True},
        shapes=[_threshold_shape(threshold, f"threshold {_fmt(threshold)}", vertical=False)],
    )
    return _figure(data, layout)


# ---------------------------------------------------------------- latent space


def scatter_2d(
    xy: np.ndarray,
    rows: np.ndarray,
    errors: np.ndarray,
    flags: np.ndarray,
    *,
    color_by: str = "flag",
    labels: np.ndarray | None = None,
    hover: Sequence[str] | None = None,
    title: str,
    x_title: str,
    y_title: str,
    note: str = "",
) -> tuple[go.Figure, list[np.ndarray]]:
    """A WebGL scatter of already down-sampled points, coloured by error, flag or label.

    ``rows`` are the points' row numbers (shown on hover, and returned per trace so a box or
    lasso selection maps back to rows: ``trace_rows[curve_number][point_index]``).
    """
    xy = np.asarray(xy, dtype=np.float32)
    rows = np.asarray(rows)
    errors = np.asarray(errors, dtype=np.float64)
    flags = np.asarray(flags, dtype=bool)
    text = np.asarray(hover if hover is not None else [""] * len(rows), dtype=object)
    data: list[dict] = []
    trace_rows: list[np.ndarray] = []

    def add(picked: np.ndarray, name: str, marker: dict) -> None:
        if len(picked) == 0:
            return
        data.append(
            {
                "type": "scattergl", "x": xy[picked, 0], "y": xy[picked, 1], "mode": "markers",
                "name": name, "marker": marker, "text": text[picked],
                "customdata": np.column_stack([rows[picked].astype(np.float64), errors[picked]]),
                "hovertemplate": "row %{customdata[0]:.0f}<br>error %{customdata[1]:.4g}"
                "<br>%{text}<extra></extra>",
            }
        )  # fmt: skip
        trace_rows.append(rows[picked])

    legend = True
    if color_by == "error":
        order = np.argsort(errors, kind="stable")  # highest errors drawn last, on top
        shade = np.log10(np.maximum(errors[order], np.finfo(np.float64).tiny))
        marker = {
            "size": 5, "color": shade, "colorscale": "Viridis",
            "colorbar": {"title": {"text": "log10 error", "side": "right"}},
        }  # fmt: skip
        add(order, "rows", marker)
        legend = False
    elif color_by == "label" and labels is not None:
        labels = np.asarray(labels)
        add(np.flatnonzero(labels == -1), "label unknown",
            {"size": 4, "color": UNKNOWN_COLOR, "opacity": 0.5})  # fmt: skip
        add(np.flatnonzero(labels == 0), "labelled normal",
            {"size": 4, "color": NORMAL_COLOR, "opacity": 0.5})  # fmt: skip
        add(np.flatnonzero(labels == 1), "labelled anomaly",
            {"size": 6, "color": LABEL_COLOR, "opacity": 0.85})  # fmt: skip
    else:
        add(np.flatnonzero(~flags), "not flagged",
            {"size": 4, "color": NORMAL_COLOR, "opacity": 0.5})  # fmt: skip
        add(np.flatnonzero(flags), "flagged",
            {"size": 5, "color": FLAGGED_COLOR, "opacity": 0.8})  # fmt: skip
    layout = _layout(
        title=title, subtitle=note, x_axis=_axis(x_title), y_axis=_axis(y_title), height=460,
        legend=legend, dragmode="select",
    )  # fmt: skip
    return _figure(data, layout), trace_rows


# ---------------------------------------------------------------- classical detectors


AGREEMENT_STYLES = (  # per group of aecore.evaluation.compare.GROUPS: other, both, one, other one
    {"size": 4, "color": NORMAL_COLOR, "opacity": 0.35},
    {"size": 7, "color": FLAGGED_COLOR, "opacity": 0.85},
    {"size": 8, "color": LABEL_COLOR, "opacity": 0.95, "symbol": "diamond"},
    {"size": 8, "color": "#7B3FA0", "opacity": 0.95, "symbol": "square"},
)


def detector_agreement(
    ranks: np.ndarray,
    classical_ranks: np.ndarray,
    rows: np.ndarray,
    groups: np.ndarray,
    scores: np.ndarray,
    classical_scores: np.ndarray,
    *,
    detector: str,
    n_flagged: int,
    top_n: int,
    n_rows: int,
) -> go.Figure:
    """Each row's rank by the autoencoder's error (x) against its rank by a classical
    ``detector``'s score (y), already down-sampled: 1 = the most unusual, on reversed log axes
    so the top rows, where the two disagree, get the room. ``groups`` (0-3, as
    ``aecore.evaluation.compare.GROUPS``) colour the rows in both top sets and in one only;
    dashed lines mark the autoencoder's threshold (``n_flagged`` rows above it) and the
    detector's top ``top_n``. ``rows``
    are the rows' numbers in the file, shown on hover."""
    ranks = np.asarray(ranks, dtype=np.float64)
    classical_ranks = np.asarray(classical_ranks, dtype=np.float64)
    groups = np.asarray(groups)
    custom = np.column_stack([np.asarray(rows, dtype=np.float64), np.asarray(scores, np.float64),
                              np.asarray(classical_scores, np.float64)])  # fmt: skip
    names = (
        "other rows",
        f"flagged and in the {detector}'s top {top_n:,}",
        f"{detector}'s top {top_n:,}, not flagged",
        f"flagged, not in the {detector}'s top {top_n:,}",
    )
    data = []
    for group in (0, 1, 2, 3):  # the disagreeing rows drawn last, on top
        picked = np.flatnonzero(groups == group)
        if len(picked) == 0:
            continue
        data.append(
            {
                "type": "scattergl", "x": ranks[picked], "y": classical_ranks[picked],
                "mode": "markers", "name": names[group], "marker": AGREEMENT_STYLES[group],
                "customdata": custom[picked],
                "hovertemplate": "row %{customdata[0]:.0f}<br>autoencoder: rank %{x:,.0f}, "
                "error %{customdata[1]:.4g}<br>" + detector + ": rank %{y:,.0f}, score "
                "%{customdata[2]:.4g}<extra></extra>",
            }
        )  # fmt: skip
    span = [1, max(int(n_rows), 2)]
    shapes = [
        _threshold_shape(n_flagged + 0.5, f"threshold ({n_flagged:,} flagged)", vertical=True,
                         label_left=True),
        _threshold_shape(top_n + 0.5, f"top {top_n:,}", vertical=False),
    ]  # fmt: skip
    layout = _layout(
        title=f"Autoencoder vs {detector}: row ranks",
        x_axis=_axis("rank by the autoencoder's error (1 = the most unusual; log scale)",
                     log=True, values=span, autorange="reversed"),
        y_axis=_axis(f"rank by the {detector} (log scale)", log=True, values=span,
                     autorange="reversed"),
        height=460, shapes=shapes,
    )  # fmt: skip
    return _figure(data, layout)


# ---------------------------------------------------------------- explain page


def feature_heatmap(
    values: np.ndarray,
    row_names: Sequence[str],
    feature_names: Sequence[str],
    *,
    title: str = "Per-feature error of the flagged rows",
) -> go.Figure:
    """Heatmap of per-feature squared errors (rows as given, at most ``HEATMAP_MAX_ROWS``).

    The colour scale stops at the 99th percentile of the values shown, so one extreme cell does
    not wash out the rest; hover shows the exact value.
    """
    values = np.asarray(values, dtype=np.float32)[:HEATMAP_MAX_ROWS]
    row_names = [str(name) for name in list(row_names)[:HEATMAP_MAX_ROWS]]
    top = float(np.quantile(values, 0.99)) if values.size else 1.0
    data = [
        {
            "type": "heatmap", "z": values, "x": [str(f) for f in feature_names], "y": row_names,
            "colorscale": "Reds", "zmin": 0, "zmax": top if top > 0 else None,
            "colorbar": {"title": {"text": "error", "side": "right"}},
            "hovertemplate": "%{y}<br>%{x}<br>error %{z:.4g}<extra></extra>",
        }
    ]  # fmt: skip
    layout = _layout(
        title=title,
        x_axis=_axis("feature (largest mean error first)", type="category", tickangle=-45,
                     automargin=True),
        y_axis=_axis("row (highest error first)", type="category", autorange="reversed",
                     automargin=True),
        height=int(min(1400, max(360, 150 + 16 * len(row_names)))),
        legend=False,
    )  # fmt: skip
    return _figure(data, layout)


def feature_bars(
    values: pd.Series,
    *,
    title: str,
    x_title: str = "error (part of the row's score)",
    color: str = FLAGGED_COLOR,
    max_bars: int = 25,
) -> go.Figure:
    """Horizontal bars, largest at the top: per-feature errors of one row, or mean errors."""
    values = values.sort_values(ascending=False).head(max_bars)
    data = [
        {
            "type": "bar", "x": values.to_numpy(dtype=np.float64),
            "y": [str(i) for i in values.index], "orientation": "h", "marker": {"color": color},
            "hovertemplate": "%{y}<br>%{x:.4g}<extra></extra>",
        }
    ]  # fmt: skip
    layout = _layout(
        title=title,
        x_axis=_axis(x_title, wrap=22, nticks=4),
        y_axis=_axis("feature", type="category", autorange="reversed", automargin=True),
        height=int(max(300, 110 + 22 * len(values))),
        legend=False,
        title_chars=28,  # often drawn in a narrow column beside a table
    )
    return _figure(data, layout)


# ---------------------------------------------------------------- training


def loss_curve(
    loss: Sequence[float],
    val_loss: Sequence[float] | None = None,
    *,
    best_epoch: int | None = None,
    total_epochs: int | None = None,
) -> go.Figure:
    """Training and validation loss per epoch (log scale), with the best epoch marked."""
    epochs = np.arange(1, len(loss) + 1)
    data = [
        {
            "type": "scatter", "x": epochs, "y": np.asarray(loss, dtype=np.float64),
            "mode": "lines+markers", "name": "training loss", "line": {"color": NORMAL_COLOR},
        }
    ]  # fmt: skip
    if val_loss:
        data.append(
            {
                "type": "scatter", "x": epochs[: len(val_loss)],
                "y": np.asarray(val_loss, dtype=np.float64), "mode": "lines+markers",
                "name": "validation loss", "line": {"color": LABEL_COLOR},
            }
        )  # fmt: skip
    if best_epoch and val_loss and 0 < best_epoch <= len(val_loss):
        data.append(
            {
                "type": "scatter", "x": [best_epoch], "y": [float(val_loss[best_epoch - 1])],
                "mode": "markers", "name": "best epoch",
                "marker": {"color": BEST_COLOR, "size": 12, "symbol": "star"},
            }
        )  # fmt: skip
    last = max(total_epochs or 0, len(loss), 1)
    x_axis = _axis("epoch", range=[0.5, last + 0.5], tick0=1, dtick=max(1, round(last / 10)))
    layout = _layout(
        title="Loss per epoch",
        x_axis=x_axis,
        y_axis=_axis(
            "loss (MSE, standardised units, log scale)", log=True,
            values=[*loss, *(val_loss or [])],
        ),
        height=340,
    )
    return _figure(data, layout)


# ---------------------------------------------------------------- few labels

APPROACH_STYLES = {
    "pretrained": {"color": NORMAL_COLOR, "dash": "solid", "symbol": "circle"},
    "scratch": {"color": LABEL_COLOR, "dash": "solid", "symbol": "square"},
    "unsupervised": {"color": UNKNOWN_COLOR, "dash": "dash", "symbol": "diamond"},
}


def label_budget_curves(table: pd.DataFrame, *, metric: str = "f1") -> go.Figure:
    """Labels used (log axis) against F1 (or ``metric``) on the same held-out rows, one line per
    approach of ``aecore.workflows.label_budgets.compare_label_budgets``; the spread over draws as
    error bars when there was more than one draw, PR-AUC, precision and recall on hover."""
    names = {"f1": "F1", "pr_auc": "PR-AUC"}
    data = []
    for approach, rows in table.groupby("approach", sort=False):
        rows = rows.sort_values("budget")
        style = APPROACH_STYLES.get(str(approach), {"color": BEST_COLOR, "dash": "solid"})
        trace = {
            "type": "scatter", "x": rows["budget"].to_numpy(dtype=np.float64),
            "y": rows[metric].to_numpy(dtype=np.float64), "mode": "lines+markers",
            "name": str(rows["approach_label"].iloc[0]),
            "line": {"color": style["color"], "dash": style["dash"], "width": 2},
            "marker": {"color": style["color"], "size": 9, "symbol": style.get("symbol")},
            "customdata": rows[["pr_auc", "precision", "recall", "f1"]].to_numpy(np.float64),
            "hovertemplate": "%{x:,} labelled rows<br>F1 %{customdata[3]:.3f} · "
            "PR-AUC %{customdata[0]:.3f}<br>precision %{customdata[1]:.3f} · "
            "recall %{customdata[2]:.3f}<extra>%{fullData.name}</extra>",
        }  # fmt: skip
        spread = f"{metric}_std"
        if spread in rows and int(rows["repeats"].max()) > 1:
            trace["error_y"] = {
                "type": "data", "array": rows[spread].to_numpy(dtype=np.float64),
                "visible": True, "color": style["color"],
            }  # fmt: skip
        data.append(trace)
    budgets = sorted({int(b) for b in table["budget"]})
    n_test = int(table["n_test"].iloc[0]) if len(table) else 0
    layout = _layout(
        title=f"{names.get(metric, metric)} by the number of labelled rows used",
        subtitle=f"normal vs anomaly on the same {n_test:,} held-out labelled rows",
        x_axis=_axis("labelled rows used (log scale)", type="log", tickvals=budgets,
                     ticktext=[f"{b:,}" for b in budgets]),
        y_axis=_axis(names.get(metric, metric), range=[0, 1.02]),
    )  # fmt: skip
    return _figure(data, layout)


# ---------------------------------------------------------------- drift


def _shared_edges(values: np.ndarray, *, log: bool, bins: int) -> np.ndarray:
    values = values[np.isfinite(values)]
    if log:
        positive = values[values > 0]
        if len(positive) == 0:
            return np.linspace(0.0, 1.0, bins + 1)
        low, high = float(positive.min()), float(positive.max())
        return np.geomspace(low, high if high > low else low * 10, bins + 1)
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    return np.linspace(low, high if high > low else low + 1.0, bins + 1)


def drift_histograms(
    reference_errors: np.ndarray,
    new_errors: np.ndarray,
    threshold: float,
    *,
    log_x: bool = True,
    bins: int | None = None,
) -> go.Figure:
    """The reconstruction errors of the reference rows (held out at training time) and of the
    new batch, overlaid as shares of their rows on shared bins, with the threshold drawn: a new
    batch whose errors sit to the right of the reference has drifted. ``bins`` defaults to
    twice the square root of the smaller sample (10 to 60), so a small sample is not all gaps;
    errors outside the bins (zero on a log axis) count in the end bins."""
    reference = np.asarray(reference_errors, dtype=np.float64)
    new = np.asarray(new_errors, dtype=np.float64)
    if bins is None:
        bins = int(np.clip(2 * math.sqrt(max(min(len(reference), len(new)), 1)), 10, 60))
    edges = _shared_edges(np.concatenate([reference, new]), log=log_x, bins=bins)
    data = []
    for name, values, color in (
        (f"reference ({len(reference):,} held-out rows at training)", reference, NORMAL_COLOR),
        (f"new batch ({len(new):,} rows)", new, FLAGGED_COLOR),
    ):
        clipped = np.clip(values[np.isfinite(values)], edges[0], edges[-1])
        counts, _ = np.histogram(clipped, bins=edges)
        share = 100.0 * counts / max(len(clipped), 1)
        data.append(
            {
                "type": "scatter", "x": edges, "y": np.append(share, share[-1]),
                "mode": "lines", "fill": "tozeroy", "name": name,
                "line": {"shape": "hv", "color": color, "width": 2},
                "opacity": 0.6,
                "hovertemplate": "error from %{x:.4g}<br>%{y:.1f}% of rows<extra>"
                + name.split(" (")[0] + "</extra>",
            }
        )  # fmt: skip
    position = 0.0
    low, high = float(edges[0]), float(edges[-1])
    if log_x and low > 0 and threshold > 0:
        position = math.log(threshold / low) / max(math.log(high / low), 1e-12)
    elif high > low:
        position = (threshold - low) / (high - low)
    layout = _layout(
        title="Reconstruction errors: reference vs new batch",
        subtitle="each curve: the share of its own rows per bin (any batch sizes compare)",
        x_axis=_axis(
            ERROR_TITLE + (" (log scale)" if log_x else ""), log_x, values=[*edges, threshold]
        ),
        y_axis=_axis("share of rows (%)"),
        shapes=[
            _threshold_shape(threshold, f"threshold {_fmt(threshold)}", vertical=True,
                             label_left=position > 0.6)
        ],
    )  # fmt: skip
    return _figure(data, layout)


# ---------------------------------------------------------------- review


def review_ranks(table: pd.DataFrame) -> go.Figure:
    """Each reviewed row's rank under the model before (x) and after (y) retraining with the
    reviews (``aecore.workflows.feedback.FeedbackResult.table``: ``source_row``, ``status``,
    ``held_out``, ``rank_before``, ``rank_after``), on reversed log axes (rank 1 at the top
    right). Confirmed anomalies should rise above the diagonal, false alarms fall below it;
    rows held out of the retraining are drawn hollow."""
    before = table["rank_before"].to_numpy(dtype=np.float64)
    after = table["rank_after"].to_numpy(dtype=np.float64)
    rows = table["source_row"].to_numpy(dtype=np.float64)
    status = table["status"].astype(str).to_numpy()
    held = table["held_out"].to_numpy(dtype=bool)
    data = []
    styles = {"anomaly": ("confirmed anomaly", FLAGGED_COLOR), "normal": ("false alarm",
                                                                         NORMAL_COLOR)}  # fmt: skip
    for value, (name, color) in styles.items():
        for out in (False, True):
            picked = np.flatnonzero((status == value) & (held == out))
            if len(picked) == 0:
                continue
            data.append({
                "type": "scatter", "mode": "markers", "x": before[picked], "y": after[picked],
                "name": f"{name}{' (held out)' if out else ''}",
                "marker": {"color": color, "size": 9,
                           "symbol": "circle-open" if out else "circle",
                           "line": {"width": 2 if out else 0, "color": color}},
                "customdata": rows[picked],
                "hovertemplate": "row %{customdata:.0f}<br>rank before %{x:,.0f}<br>rank "
                "after %{y:,.0f}<extra></extra>",
            })  # fmt: skip
    top = float(max(before.max(initial=2.0), after.max(initial=2.0)))
    data.append({
        "type": "scatter", "mode": "lines", "x": [1, top], "y": [1, top], "name": "same rank",
        "line": {"color": UNKNOWN_COLOR, "dash": "dot", "width": 1}, "hoverinfo": "skip",
    })  # fmt: skip
    span = [1.0, top]
    layout = _layout(
        title="Reviewed rows' ranks, before and after",
        x_axis=_axis("rank under the current model (1 = highest error; log scale)", log=True,
                     values=span, autorange="reversed"),
        y_axis=_axis("rank after retraining with the reviews", log=True, values=span,
                     autorange="reversed"),
        height=420,
    )  # fmt: skip
    return _figure(data, layout)
