"""Plotly figures for the dashboard: pure functions from arrays to figures (no streamlit).

Every builder keeps what it sends to the browser small whatever the number of rows:
histograms arrive already binned, curves are thinned to ``CURVE_POINTS`` points, the error
timeline is reduced to the highest error of each of ``TIMELINE_BUCKETS`` runs of rows, scatter
plots use WebGL on at most ``MAX_SCATTER_POINTS`` sampled rows plus every flagged row (see
:func:`downsample`), and heatmaps show at most ``HEATMAP_MAX_ROWS`` rows. Numeric arrays travel
as binary (base64) typed arrays, so a figure stays under a few MB at 1,000,000 rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

MAX_SCATTER_POINTS = 20_000
MAX_FLAGGED_POINTS = 50_000
MIN_CONTEXT_POINTS = 2_000
HEATMAP_MAX_ROWS = 200
HEATMAP_MAX_FEATURES = 40
TIMELINE_BUCKETS = 2_000
CURVE_POINTS = 1_000

NORMAL_COLOR = "#4C78A8"
FLAGGED_COLOR = "#D62728"
LABEL_COLOR = "#F58518"
UNKNOWN_COLOR = "#9E9E9E"
BEST_COLOR = "#2CA02C"
ERROR_TITLE = "reconstruction error (row MSE, standardised units)"


def payload_bytes(figure: go.Figure) -> int:
    """Size in bytes of the JSON that Streamlit sends to the browser for ``figure``."""
    return len(pio.to_json(figure, validate=False).encode("utf-8"))


def _layout(
    figure: go.Figure,
    *,
    title: str,
    x_title: str,
    y_title: str,
    height: int = 380,
    legend: bool = True,
) -> go.Figure:
    figure.update_layout(
        title={"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        height=height + (40 if legend else 0),
        margin={"l": 70, "r": 20, "t": 60, "b": 60 + (40 if legend else 0)},
        showlegend=legend,
        legend={"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0},
        hovermode="closest",
    )
    figure.update_xaxes(title_text=x_title, title_standoff=8)
    figure.update_yaxes(title_text=y_title)
    return figure


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _axis_type(log: bool) -> dict:
    """A linear axis, or a log one labelled 0.01, 0.02, 0.05, 0.1 (not plotly's bare digits)."""
    return {"type": "log", "dtick": "D2", "tickformat": "~g"} if log else {"type": "linear"}


# ---------------------------------------------------------------- down-sampling


def downsample(
    flagged: np.ndarray,
    *,
    priority: np.ndarray | None = None,
    max_points: int = MAX_SCATTER_POINTS,
    max_flagged: int = MAX_FLAGGED_POINTS,
    min_context: int = MIN_CONTEXT_POINTS,
    seed: int = 0,
) -> np.ndarray:
    """Sorted row positions to draw in a scatter plot.

    Every flagged row is kept (when more than ``max_flagged`` rows are flagged, the
    ``max_flagged`` with the highest ``priority``, e.g. the error). The other rows are a seeded
    uniform sample filling up to ``max_points`` in all, and at least ``min_context`` of them, so
    the normal cloud stays visible however many rows are flagged.
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
    room = min(len(other_rows), max(max_points - len(flagged_rows), min_context))
    if room < len(other_rows):
        pick = np.random.default_rng(seed).choice(len(other_rows), room, replace=False)
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


# ---------------------------------------------------------------- threshold page


def _threshold_shape(figure: go.Figure, threshold: float, text: str, *, vertical: bool) -> None:
    line = {"color": FLAGGED_COLOR, "width": 2, "dash": "dash"}
    label = {"text": text, "font": {"color": FLAGGED_COLOR, "size": 12}}
    if vertical:
        figure.add_shape(
            type="line", xref="x", yref="paper", x0=threshold, x1=threshold, y0=0, y1=1,
            line=line,
            label={**label, "textangle": 0, "textposition": "end", "xanchor": "left",
                   "yanchor": "top", "padding": 6},
        )  # fmt: skip
    else:
        figure.add_shape(
            type="line", xref="paper", yref="y", x0=0, x1=1, y0=threshold, y1=threshold,
            line=line, label={**label, "textposition": "end", "yanchor": "bottom"},
        )  # fmt: skip


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
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=edges, y=steps_y, mode="lines", line={"shape": "hv", "color": NORMAL_COLOR},
            fill="tozeroy", name="rows per bin",
            hovertemplate="error from %{x:.4g}<br>%{y:,.0f} rows<extra></extra>",
        )
    )  # fmt: skip
    above = edges > threshold
    if above.any() and threshold < edges[-1]:
        first = int(np.argmax(above))
        x = np.concatenate([[threshold], edges[first:]])
        y = np.concatenate([[steps_y[max(first - 1, 0)]], steps_y[first:]])
        figure.add_trace(
            go.Scatter(
                x=x, y=y, mode="lines", line={"shape": "hv", "color": FLAGGED_COLOR},
                fill="tozeroy", name="flagged (error > threshold)", hoverinfo="skip",
            )
        )  # fmt: skip
    text = f"threshold {_fmt(threshold)}"
    if n_flagged is not None:
        text += f" · {n_flagged:,} flagged"
    _threshold_shape(figure, threshold, text, vertical=True)
    _layout(
        figure,
        title="Reconstruction error of every row",
        x_title=ERROR_TITLE + (" (log scale)" if log_x else ""),
        y_title="rows" + (" (log scale)" if log_y else ""),
    )
    figure.update_xaxes(**_axis_type(log_x))
    figure.update_yaxes(**_axis_type(log_y))
    return figure


def cost_curve(
    thresholds: np.ndarray,
    cost: np.ndarray,
    threshold: float,
    current_cost: float,
    *,
    c_alarm: float,
    c_missed: float,
    log_x: bool = False,
) -> go.Figure:
    """Cost (``c_alarm * false alarms + c_missed * missed``) at every candidate threshold, thinned
    to ``CURVE_POINTS`` points, with the current threshold and the cheapest one marked."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    best = int(np.argmin(cost))
    keep = thin_indices(len(cost), keep=[best])
    if log_x:
        keep = keep[thresholds[keep] > 0]
    order = keep[np.argsort(thresholds[keep])]
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=thresholds[order], y=cost[order], mode="lines", name="cost",
            line={"color": NORMAL_COLOR, "shape": "hv"},
            hovertemplate="threshold %{x:.4g}<br>cost %{y:,.4g}<extra></extra>",
        )
    )  # fmt: skip
    figure.add_trace(
        go.Scatter(
            x=[thresholds[best]], y=[cost[best]], mode="markers", name="minimum cost",
            marker={"color": BEST_COLOR, "size": 12, "symbol": "star"},
            hovertemplate="minimum cost %{y:,.4g}<br>at threshold %{x:.4g}<extra></extra>",
        )
    )  # fmt: skip
    figure.add_trace(
        go.Scatter(
            x=[threshold], y=[current_cost], mode="markers", name="current threshold",
            marker={"color": FLAGGED_COLOR, "size": 11, "symbol": "diamond"},
            hovertemplate="current threshold %{x:.4g}<br>cost %{y:,.4g}<extra></extra>",
        )
    )  # fmt: skip
    _threshold_shape(figure, threshold, "", vertical=True)
    _layout(
        figure,
        title=f"Cost = {c_alarm:g} × false alarms + {c_missed:g} × missed anomalies",
        x_title="threshold" + (" (log scale)" if log_x else ""),
        y_title="cost",
    )
    figure.update_xaxes(**_axis_type(log_x))
    return figure


def metric_curves(
    thresholds: np.ndarray,
    precision: np.ndarray,
    recall: np.ndarray,
    f1: np.ndarray,
    threshold: float,
    *,
    log_x: bool = False,
) -> go.Figure:
    """Precision, recall and F1 against the threshold (thinned), with the threshold marked."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    keep = thin_indices(len(thresholds), keep=[int(np.argmax(f1))])
    if log_x:
        keep = keep[thresholds[keep] > 0]
    order = keep[np.argsort(thresholds[keep])]
    figure = go.Figure()
    for name, values, color in (
        ("precision", precision, NORMAL_COLOR),
        ("recall", recall, LABEL_COLOR),
        ("F1", f1, BEST_COLOR),
    ):
        figure.add_trace(
            go.Scatter(
                x=thresholds[order], y=np.asarray(values)[order], mode="lines", name=name,
                line={"color": color, "shape": "hv"},
                hovertemplate=f"threshold %{{x:.4g}}<br>{name} %{{y:.3f}}<extra></extra>",
            )
        )  # fmt: skip
    _threshold_shape(figure, threshold, "", vertical=True)
    _layout(
        figure,
        title="Precision, recall and F1 by threshold",
        x_title="threshold" + (" (log scale)" if log_x else ""),
        y_title="score (0 to 1)",
    )
    figure.update_xaxes(**_axis_type(log_x))
    figure.update_yaxes(range=[0, 1.05])
    return figure


def error_timeline(
    x: np.ndarray,
    errors: np.ndarray,
    threshold: float,
    *,
    labels: np.ndarray | None = None,
    x_title: str = "row",
    log_y: bool = False,
    buckets: int = TIMELINE_BUCKETS,
) -> go.Figure:
    """The error signal in time (or row) order with the threshold line; labelled anomalies are
    shaded. ``x``, ``errors`` and ``labels`` are already in time order. Long signals are reduced
    to the highest error of each of ``buckets`` runs of rows, so no peak is lost."""
    errors = np.asarray(errors)
    peaks = bucket_peaks(errors, buckets)
    x = np.asarray(x)
    reduced = len(peaks) < len(errors)
    figure = go.Figure()
    if labels is not None:
        labels = np.asarray(labels)
        marked = (labels == 1).astype(np.int8)
        if reduced:
            size = math.ceil(len(errors) / buckets)
            padded = np.zeros(size * math.ceil(len(errors) / size), dtype=np.int8)
            padded[: len(marked)] = marked
            marked = padded.reshape(-1, size).max(axis=1)[: len(peaks)]
        else:
            marked = marked[peaks]
        if marked.any():
            figure.add_trace(
                go.Scatter(
                    x=x[peaks], y=marked, yaxis="y2", mode="lines", name="labelled anomaly",
                    line={"shape": "hvh", "width": 0, "color": LABEL_COLOR},
                    fill="tozeroy", fillcolor="rgba(245,133,24,0.30)", hoverinfo="skip",
                )
            )  # fmt: skip
    name = "error (highest per run of rows)" if reduced else "error"
    figure.add_trace(
        go.Scattergl(
            x=x[peaks], y=errors[peaks], mode="lines", name=name,
            line={"color": NORMAL_COLOR, "width": 1},
            hovertemplate=f"{x_title} %{{x}}<br>error %{{y:.4g}}<extra></extra>",
        )
    )  # fmt: skip
    _threshold_shape(figure, threshold, f"threshold {_fmt(threshold)}", vertical=False)
    _layout(
        figure,
        title="Reconstruction error over " + ("time" if x_title != "row" else "row order"),
        x_title=x_title,
        y_title="error" + (" (log scale)" if log_y else ""),
    )
    figure.update_layout(
        yaxis2={"overlaying": "y", "range": [0, 1], "visible": False, "fixedrange": True}
    )
    figure.update_layout(yaxis=_axis_type(log_y))
    return figure


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
    custom = np.column_stack([rows.astype(np.float64), errors])
    template = (
        "row %{customdata[0]:.0f}<br>error %{customdata[1]:.4g}<br>%{text}<extra></extra>"
    )
    figure = go.Figure()
    trace_rows: list[np.ndarray] = []

    def add(mask: np.ndarray, name: str, marker: dict) -> None:
        if not mask.any():
            return
        figure.add_trace(
            go.Scattergl(
                x=xy[mask, 0], y=xy[mask, 1], mode="markers", name=name, marker=marker,
                customdata=custom[mask], text=text[mask], hovertemplate=template,
            )
        )  # fmt: skip
        trace_rows.append(rows[mask])

    if color_by == "error":
        order = np.argsort(errors, kind="stable")  # highest errors drawn last, on top
        xy, custom, text, rows = xy[order], custom[order], text[order], rows[order]
        shade = np.log10(np.maximum(errors[order], np.finfo(np.float64).tiny))
        marker = {
            "size": 5,
            "color": shade,
            "colorscale": "Viridis",
            "colorbar": {"title": {"text": "log10 error", "side": "right"}},
        }
        add(np.ones(len(rows), dtype=bool), "rows", marker)
        legend = False
    elif color_by == "label" and labels is not None:
        labels = np.asarray(labels)
        add(labels == -1, "label unknown", {"size": 4, "color": UNKNOWN_COLOR, "opacity": 0.5})
        add(labels == 0, "labelled normal", {"size": 4, "color": NORMAL_COLOR, "opacity": 0.5})
        add(labels == 1, "labelled anomaly", {"size": 7, "color": LABEL_COLOR})
        legend = True
    else:
        add(~flags, "not flagged", {"size": 4, "color": NORMAL_COLOR, "opacity": 0.5})
        add(flags, "flagged", {"size": 7, "color": FLAGGED_COLOR})
        legend = True
    _layout(figure, title=title, x_title=x_title, y_title=y_title, height=460, legend=legend)
    if note:
        figure.update_layout(title_subtitle_text=note, title_subtitle_font_size=12)
    figure.update_layout(dragmode="select", margin={"t": 80})
    return figure, trace_rows


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
    row_names = list(row_names)[:HEATMAP_MAX_ROWS]
    top = float(np.quantile(values, 0.99)) if values.size else 1.0
    figure = go.Figure(
        go.Heatmap(
            z=values, x=list(feature_names), y=row_names, colorscale="Reds", zmin=0,
            zmax=top if top > 0 else None,
            colorbar={"title": {"text": "squared error", "side": "right"}},
            hovertemplate="%{y}<br>%{x}<br>error %{z:.4g}<extra></extra>",
        )
    )  # fmt: skip
    height = int(min(1400, max(360, 150 + 16 * len(row_names))))
    _layout(
        figure,
        title=title,
        x_title="feature (largest mean error first)",
        y_title="row (highest error first)",
        height=height,
        legend=False,
    )
    figure.update_yaxes(autorange="reversed", type="category")
    figure.update_xaxes(tickangle=-45, type="category", automargin=True)
    return figure


def feature_bars(
    values: pd.Series,
    *,
    title: str,
    x_title: str = "squared error (standardised units)",
    color: str = FLAGGED_COLOR,
    max_bars: int = 25,
) -> go.Figure:
    """Horizontal bars, largest at the top: per-feature errors of one row, or mean errors."""
    values = values.sort_values(ascending=False).head(max_bars)
    figure = go.Figure(
        go.Bar(
            x=values.to_numpy(dtype=np.float64), y=[str(i) for i in values.index],
            orientation="h", marker={"color": color},
            hovertemplate="%{y}<br>%{x:.4g}<extra></extra>",
        )
    )  # fmt: skip
    _layout(
        figure,
        title=title,
        x_title=x_title,
        y_title="feature",
        height=int(max(300, 110 + 22 * len(values))),
        legend=False,
    )
    figure.update_yaxes(autorange="reversed", automargin=True)
    return figure


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
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=epochs, y=list(loss), mode="lines+markers", name="training loss",
            line={"color": NORMAL_COLOR},
        )
    )  # fmt: skip
    if val_loss:
        figure.add_trace(
            go.Scatter(
                x=epochs[: len(val_loss)], y=list(val_loss), mode="lines+markers",
                name="validation loss", line={"color": LABEL_COLOR},
            )
        )  # fmt: skip
    if best_epoch and val_loss and 0 < best_epoch <= len(val_loss):
        figure.add_trace(
            go.Scatter(
                x=[best_epoch], y=[val_loss[best_epoch - 1]], mode="markers", name="best epoch",
                marker={"color": BEST_COLOR, "size": 12, "symbol": "star"},
            )
        )  # fmt: skip
    _layout(
        figure,
        title="Loss per epoch",
        x_title="epoch",
        y_title="loss (MSE, standardised units, log scale)",
        height=340,
    )
    figure.update_yaxes(type="log")
    if total_epochs:
        figure.update_xaxes(range=[0.5, max(total_epochs, len(loss)) + 0.5])
    return figure
