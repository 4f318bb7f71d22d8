"""A self-contained HTML report of one model on one data set, to attach to a ticket.

``build_report`` scores the frame once and writes one UTF-8 HTML document: the data summary,
the model card, the error histogram with the threshold (Plotly, its JavaScript inline), the
top flagged rows (with the analyst's review marks when given), the review summary and the
latest drift verdict. Nothing is loaded from the network (a Content-Security-Policy says so
to the browser too), and every text that comes from the data or the model (column names,
cells, notes, names) is HTML-escaped.

The latest drift verdict of a model is kept in ``<models folder>/.drift/<model>.json``
(``record_drift_verdict`` / ``latest_drift_verdict``), written atomically.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import aecore
from aecore.errors import AecoreError
from aecore.store import check_name, models_dir_path
from aecore.workflows.export import check_columns, id_columns, source_rows
from aecore.workflows.review import STATUS_TEXT

DRIFT_DIR = ".drift"
TOP_FEATURES = 3
# Inline scripts and styles only; no request of any kind leaves the page.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
)
CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
  color: #1f2328; background: #fff; margin: 0; line-height: 1.45; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; } p.meta { color: #59636e; margin: 0 0 16px; }
h2 { font-size: 1.2em; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 1px solid #d0d7de; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.92em; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; } table.facts th { width: 15em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict-stable { color: #1a7f37; } .verdict-drifting { color: #9a6700; }
.verdict-drifted { color: #cf222e; }
"""


def _e(value: Any) -> str:
    """Text from the data or the model, safe inside HTML (quotes too)."""
    return html.escape("" if value is None else str(value), quote=True)


def _num(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.6g}" if math.isfinite(number) else "n/a"


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "n/a"


# ---------------------------------------------------------------------------- HTML pieces


def _table(header: list[str], rows: list[list[Any]], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="num">{_e(c)}</td>' if j in numeric else f"<td>{_e(c)}</td>"
            for j, c in enumerate(row)
        ) + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _facts(pairs: list[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>\n{body}\n</section>\n"


def _names(columns: list[Any]) -> str:
    return ", ".join(str(c) for c in columns) if columns else "none"


# ---------------------------------------------------------------------------- sections


def _time_span(frame: Any, column: str | None) -> str | None:
    if not column or column not in frame:
        return None
    from aecore.io.inference import parse_times

    try:  # TypeError: values that do not compare
        times = parse_times(frame[column]).dropna()
        return None if times.empty else f"{times.min()} to {times.max()} ({column})"
    except (AecoreError, TypeError, ValueError):
        return None


def _data_summary(frame, detector, data_name: str, threshold: float, flagged: int) -> str:
    roles = detector.roles_
    columns = list(frame.columns)
    known = set(roles.named)
    inputs = [c for c in roles.inputs if c in set(columns)]
    numeric = [c for c in roles.features if c in set(columns)]
    others = [c for c in columns if c not in known]
    pairs = [
        ("Data", data_name or "(unnamed)"),
        ("Rows", f"{len(frame):,}"),
        ("Columns", f"{len(columns):,}"),
        ("Model inputs", f"{len(inputs)} ({len(numeric)} numeric, "
                         f"{len(inputs) - len(numeric)} categorical)"),  # fmt: skip
        ("Id columns", _names([c for c in roles.ids if c in set(columns)])),
        ("Time column", roles.time if roles.time in set(columns) else "none"),
        ("Label column", roles.label if roles.label in set(columns) else "none"),
        ("Ignored", _names([c for c in roles.ignore if c in set(columns)])),
    ]
    if others:
        pairs.append(("Not known to the model", _names(others)))
    pairs.append(
        ("Flagged rows", f"{flagged:,} of {len(frame):,} ({_percent(flagged, len(frame))}) "
                         f"at threshold {_num(threshold)}")  # fmt: skip
    )
    span = _time_span(frame, roles.time)
    if span:
        pairs.append(("Time span", span))
    return _facts(pairs)


def _threshold_text(detector, threshold: float) -> str:
    choice = detector.threshold_choice_
    params = ", ".join(f"{k}={_num(v)}" for k, v in (choice.params or {}).items() if v is not None)
    text = f"{_num(detector.threshold_)}, chosen by {choice.method}" + (
        f" ({params})" if params else ""
    )
    if not math.isclose(threshold, float(detector.threshold_), rel_tol=1e-12, abs_tol=0.0):
        text += f"; the analyst moved it to {_num(threshold)} for this report"
    return text + "."


def _model_card(detector, model_name: str, threshold: float, meta: dict | None) -> str:
    history = detector.history_ or {}
    epochs_run = int(history.get("epochs_run", len(history.get("loss") or [])))
    planned = (getattr(detector, "training_", None) or {}).get("epochs")
    epochs = f"{epochs_run}" + (f" of at most {planned}" if planned else "")
    if history.get("best_epoch"):
        loss = history.get("best_val_loss")
        epochs += f" (best epoch {history['best_epoch']}" + (
            f", validation loss {_num(loss)})" if loss is not None else ")")
    trained_on = {
        "normal": "rows labelled normal only", "all": "every row (no labels used)",
    }.get(detector.trained_on_, str(detector.trained_on_))  # fmt: skip
    pairs = [("Model", model_name)]
    pairs += [(key.capitalize(), (meta or {})[key]) for key in ("version", "created",
              "description") if (meta or {}).get(key)]  # fmt: skip
    pairs += [
        ("Architecture", detector.architecture),
        ("Code size", detector.code_size_),
        ("Training rows", f"{int(detector.n_train_rows_):,}"),
        ("Trained on", trained_on),
        ("Epochs run", epochs),
        ("Threshold", _threshold_text(detector, threshold)),
    ]
    if meta:
        from aecore.workflows.retraining import describe_training

        pairs.append(("Training", describe_training(meta)))
    for label, summary in (
        ("Prototypes", detector.memory_summary()), ("Second model", detector.second_model_summary())
    ):  # fmt: skip
        if summary:
            pairs.append((label, summary))
    return _facts(pairs)


def _histogram(scored, threshold: float, flagged: int) -> str:
    import plotly.io as pio

    from aecore.viz.charts import error_histogram

    log_x = bool(scored.index.sorted_errors[-1] > 0)  # as the Threshold page, when it can
    counts, edges = scored.histogram(log=log_x)
    figure = error_histogram(counts, edges, threshold, log_x=log_x, n_flagged=flagged)
    chart = pio.to_html(
        figure, include_plotlyjs=True, full_html=False, include_mathjax=False,
        config={"displaylogo": False, "responsive": True},
    )  # fmt: skip
    caption = f"{scored.n_rows:,} rows in {len(counts)} bins" + (
        " (log-spaced over the positive errors)." if log_x else "."
    )
    return f"{chart}\n<p>{_e(caption)}</p>"


def _top_rows(frame, detector, scored, flagged: np.ndarray, reviews, top_n: int) -> str:
    if len(flagged) == 0:
        return "<p>No row is flagged at this threshold.</p>"
    rows = flagged[: max(int(top_n), 0)]
    if len(rows) == 0:
        return f"<p>{len(flagged):,} rows are flagged; none is listed (top_n is 0).</p>"
    ids = id_columns(frame.columns, detector.roles_)
    header = ["rank", "source_row", *ids, "error", "top features"]
    statuses = notes = None
    if reviews is not None:
        statuses, notes = reviews.statuses(), reviews.notes()
        header += ["review", "note"]
    texts = scored.top_features_text(rows, k=TOP_FEATURES)
    numbers = source_rows(rows)
    table = []
    for rank, (position, text) in enumerate(zip(rows, texts, strict=True), start=1):
        row = [rank, int(numbers[rank - 1])]
        row += [frame[c].iloc[position] for c in ids]
        row += [_num(scored.errors[position]), text]
        if statuses is not None:
            status = statuses[position] or ""
            row += [STATUS_TEXT.get(status, status) or "not reviewed", notes[position] or ""]
        table.append(row)
    shown = f"The {len(rows):,} highest-error" if len(rows) < len(flagged) else "All"
    intro = (
        f"<p>{shown} of the {len(flagged):,} flagged rows. source_row is the row's number in "
        "the file as a spreadsheet shows it (the header is row 1). Top features: the columns "
        "with the largest share of the row's error.</p>"
    )
    numeric = {0, 1, len(ids) + 2}
    return intro + _table(header, table, numeric)


def _review_summary(reviews, flags: np.ndarray) -> tuple[str, int]:
    counts = reviews.counts() if reviews is not None else {}
    reviewed = int(counts.get("reviewed", 0))
    if reviewed == 0:
        return "<p>No rows reviewed yet.</p>", 0
    statuses = np.asarray(reviews.statuses(), dtype=object)
    flagged = int(flags.sum())
    flagged_reviewed = int((statuses[flags] != "").sum()) if flagged else 0
    pairs = [
        ("Reviewed rows", f"{reviewed:,}"),
        ("Confirmed anomalies", f"{int(counts.get('anomaly', 0)):,}"),
        ("False alarms (normal)", f"{int(counts.get('normal', 0)):,}"),
        ("Unsure", f"{int(counts.get('unsure', 0)):,}"),
        ("Flagged rows reviewed",
         f"{flagged_reviewed:,} of {flagged:,} ({_percent(flagged_reviewed, flagged)})"),
    ]  # fmt: skip
    return _facts(pairs), reviewed


def _drift_section(drift: dict | None) -> str:
    if not drift:
        return "<p>No drift check recorded for this model.</p>"
    verdict = str(drift.get("verdict", ""))
    pairs = [("Verdict", verdict or "unknown")]
    if drift.get("batch"):
        pairs.append(("Batch", drift["batch"]))
    if drift.get("checked"):
        pairs.append(("Checked", drift["checked"]))
    if drift.get("n_rows") is not None:
        pairs.append(("Rows in the batch", f"{int(drift['n_rows']):,}"))
    if drift.get("alarm_share") is not None:
        pairs.append(("Rows above the threshold", f"{float(drift['alarm_share']):.1%}"))
    css = f' class="verdict-{verdict}"' if verdict in ("stable", "drifting", "drifted") else ""
    return f"<p{css}><strong>{_e(drift.get('headline', ''))}</strong></p>" + _facts(pairs)


# ---------------------------------------------------------------------------- the report


def render_report(
    detector: Any,
    frame: Any,
    *,
    model_name: str,
    data_name: str = "",
    threshold: float | None = None,
    reviews: Any = None,
    drift: dict | None = None,
    top_n: int = 25,
    model_meta: dict | None = None,
    scores: Any = None,
) -> tuple[str, dict]:
    """``build_report``'s document and a summary of it: ``{"rows", "flagged", "reviewed",
    "threshold"}`` (reviewed: rows of this frame with a review mark). ``scores``: the
    ``score_rows`` of ``frame`` when the caller has them already (the dashboard), so the rows
    are not scored twice."""
    from aecore.evaluation.thresholds import check_threshold
    from aecore.scored import ScoredData

    check_columns(frame, detector)  # one clear AecoreError when the model cannot score it
    if threshold is None:
        threshold = float(detector.threshold_)
    threshold = check_threshold(threshold)
    if reviews is not None and len(reviews.statuses()) != len(frame):
        raise AecoreError(
            f"The review marks cover {len(reviews.statuses())} rows but the data has "
            f"{len(frame)}: load the marks for this data."
        )
    if scores is None:
        scores = detector.score_rows(frame, latent=False)
    scored = ScoredData(frame, scores)
    flags = scored.flags(threshold)
    flagged = scored.ranked_flagged(threshold)
    review_html, reviewed = _review_summary(reviews, flags)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    version = getattr(aecore, "__version__", None)
    title = f"Anomaly report: {data_name or '(unnamed data)'}"
    meta_line = f"Model {model_name} · generated {stamp}" + (
        f" by aecore {version}" if version else ""
    )
    body = "".join([
        _section("Data summary",
                 _data_summary(frame, detector, data_name, threshold, len(flagged))),
        _section("Model card", _model_card(detector, model_name, threshold, model_meta)),
        _section("Error histogram with the threshold",
                 _histogram(scored, threshold, len(flagged))),
        _section("Top flagged rows",
                 _top_rows(frame, detector, scored, flagged, reviews, top_n)),
        _section("Review summary", review_html),
        _section("Drift", _drift_section(drift)),
    ])  # fmt: skip
    document = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{_e(title)}</h1>\n<p class=\"meta\">{_e(meta_line)}</p>\n{body}"
        "</main>\n</body>\n</html>\n"
    )
    return document, {"rows": len(frame), "flagged": len(flagged), "reviewed": reviewed,
                      "threshold": threshold}  # fmt: skip


def build_report(detector: Any, frame: Any, *, model_name: str, **options: Any) -> str:
    """One self-contained HTML document (a UTF-8 string) on ``detector`` scoring ``frame``;
    the options are ``render_report``'s.

    ``threshold``: the one the analyst uses (default: the model's); ``reviews``: the review
    marks (``aecore.workflows.review.ReviewBook`` or anything with ``statuses()``, ``notes()``
    and ``counts()``); ``drift``: the latest verdict (``latest_drift_verdict``); ``top_n``: the
    flagged rows listed; ``model_meta``: the bundle's meta.json; ``scores``: ``frame``'s scores,
    if already computed. A model that cannot score the data raises one ``AecoreError``
    (``aecore.workflows.export.check_columns``).
    """
    return render_report(detector, frame, model_name=model_name, **options)[0]


def _write_atomic(path: Path, text: str) -> None:
    """``text`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial",
                                         dir=path.parent)  # fmt: skip
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_report(text: str, path: str | os.PathLike) -> Path:
    """Write a report to ``path`` atomically (never half-written); ``AecoreError`` if it
    cannot be written."""
    path = Path(path)
    if not path.parent.is_dir():
        raise AecoreError(f"Cannot write {path}: the folder {path.parent} does not exist.")
    try:
        _write_atomic(path, text)
    except OSError as error:
        raise AecoreError(f"Cannot write {path}: {error.strerror or error}.") from None
    return path


# ---------------------------------------------------------------------------- drift verdicts


def drift_verdict_path(model_name: str, *, models_dir: str | os.PathLike | None = None) -> Path:
    """Where the latest drift verdict of ``model_name`` is kept."""
    return models_dir_path(models_dir) / DRIFT_DIR / f"{check_name(model_name)}.json"


def record_drift_verdict(
    model_name: str,
    report: Any,
    *,
    batch_name: str = "",
    models_dir: str | os.PathLike | None = None,
) -> dict:
    """Keep ``report`` (an ``aecore.evaluation.drift.DriftReport``) as the latest drift verdict
    of ``model_name``, replacing the one before; returns what was stored."""
    path = drift_verdict_path(model_name, models_dir=models_dir)
    share = float(report.alarm_share)
    entry = {
        "verdict": str(report.verdict),
        "headline": str(report.headline),
        "batch": str(batch_name or ""),
        "checked": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "n_rows": int(report.n_rows),
        "alarm_share": share if math.isfinite(share) else None,
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, json.dumps(entry, indent=1, ensure_ascii=False) + "\n")
    except OSError as error:
        raise AecoreError(
            f"The drift verdict could not be saved in {path.parent}: {error.strerror or error}."
        ) from None
    return entry


def latest_drift_verdict(
    model_name: str, *, models_dir: str | os.PathLike | None = None
) -> dict | None:
    """The latest drift verdict recorded for ``model_name`` (``record_drift_verdict``), or None
    when there is none or it cannot be read."""
    path = drift_verdict_path(model_name, models_dir=models_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "verdict" not in data or "headline" not in data:
        return None
    return data
