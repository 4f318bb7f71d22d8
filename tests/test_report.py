"""The self-contained HTML report (``aecore.workflows.report``) and ``python -m aecore report``."""

import re

import numpy as np
import pandas as pd
import pytest

from aecore import cli, store
from aecore.errors import AecoreError
from aecore.workflows import report
from aecore.workflows.review import ReviewBook
from tests.helpers import numeric_frame

MODEL = "report-model"
HEADINGS = (
    "Data summary", "Model card", "Error histogram with the threshold", "Top flagged rows",
    "Review summary", "Drift",
)  # fmt: skip
NETWORK_ATTRIBUTE = re.compile(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", re.IGNORECASE)
XSS = "<script>alert(1)</script>"


def sample_frame(n_rows=300, seed=0) -> pd.DataFrame:
    """Numeric features with a few planted anomalies, a host id and a time column."""
    frame = numeric_frame(n_rows, n_features=5, seed=seed)
    frame.iloc[:4, :3] += 12.0  # rows 2 to 5 of the file stand out
    frame.insert(0, "host", [f"web-{i % 7}" for i in range(n_rows)])
    frame.insert(1, "timestamp", pd.date_range("2026-01-01", periods=n_rows, freq="min")
                 .strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip
    return frame


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model saved in a temporary models folder, and the CSV it reports on."""
    from aecore.detector import AnomalyDetector

    folder = tmp_path_factory.mktemp("report")
    frame = sample_frame()
    detector = AnomalyDetector(
        epochs=3, random_state=0, roles={"host": "id", "timestamp": "time"}
    ).fit(frame)
    models = folder / "models"
    store.save(detector, MODEL, models_dir=models, description="report test model")
    frame.to_csv(folder / "events.csv", index=False)
    return {"folder": folder, "models": models, "frame": frame, "detector": detector}


def without_script_bodies(document: str) -> str:
    """The document with every script's body dropped (Plotly's bundle holds URLs in strings);
    its opening tags stay, so a ``src=`` on them is still seen."""
    return re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", document, flags=re.DOTALL)


def test_report_is_self_contained_and_names_the_model(trained):
    detector, frame = trained["detector"], trained["frame"]
    meta = store.read_meta(MODEL, models_dir=trained["models"])
    document = report.build_report(
        detector, frame, model_name=MODEL, data_name="events.csv", model_meta=meta
    )
    assert document.lstrip().startswith("<!DOCTYPE html>") and "<html" in document
    assert "<title>Anomaly report: events.csv</title>" in document
    assert MODEL in document and "report test model" in document
    assert "Plotly" in document and 'class="plotly-graph-div"' in document
    assert "Plotly.newPlot" in document
    assert f"{detector.threshold_:.6g}" in document
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in document
    outside = without_script_bodies(document)
    assert not NETWORK_ATTRIBUTE.search(outside)
    assert not re.search(r"<(script|link|img|iframe)[^>]*\s(src|href)\s*=", outside)
    assert "@import" not in outside and "url(" not in outside
    # Facts of each section.
    assert "300" in document and "2026-01-01 00:00:00 to 2026-01-01 04:59:00" in document
    assert f"{detector.architecture}" in document and "Epochs run" in document
    assert "No rows reviewed yet." in document
    assert "No drift check recorded for this model." in document
    assert "web-0" in document  # the id column of the top rows (rows 2 to 5 are flagged)
    assert "UTC" in document


def test_report_says_when_no_row_is_flagged_and_when_the_analyst_moved_the_threshold(trained):
    detector, frame = trained["detector"], trained["frame"]
    document, summary = report.render_report(
        detector, frame, model_name=MODEL, threshold=1e9, top_n=5
    )
    assert summary["flagged"] == 0
    assert "No row is flagged at this threshold." in document
    assert "the analyst moved it to 1e+09" in document


def test_report_refuses_a_model_that_cannot_score_the_data(trained, tmp_path, capsys):
    partial = trained["frame"].drop(columns=["f2"])
    partial.to_csv(tmp_path / "partial.csv", index=False)
    output = tmp_path / "out.html"
    code = cli.main([
        "report", str(tmp_path / "partial.csv"), "--model", MODEL, "--output", str(output),
        "--models-dir", str(trained["models"]),
    ])  # fmt: skip
    assert code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "f2" in lines[0]
    assert not output.exists()
    assert not list(tmp_path.glob("*.partial"))
    with pytest.raises(AecoreError, match="f2"):
        report.build_report(trained["detector"], partial, model_name=MODEL)


def test_report_shows_review_marks_in_the_top_rows_and_the_summary(trained, tmp_path):
    detector, frame = trained["detector"], trained["frame"]
    book = ReviewBook(frame, models_dir=tmp_path, data_name="events.csv")
    errors = detector.score_rows(frame).row_error
    top = np.argsort(-errors, kind="stable")
    book.mark(int(top[0]), "anomaly", "disk filled up")
    book.mark(int(top[1]), "normal", "planned backup")
    book.mark(int(top[-1]), "unsure", "")  # a low-error row: reviewed but not flagged
    document, summary = report.render_report(
        detector, frame, model_name=MODEL, reviews=book, data_name="events.csv"
    )
    assert summary["reviewed"] == 3
    flagged = summary["flagged"]
    table = document.split("<h2>Top flagged rows</h2>")[1].split("</section>")[0]
    assert "<th>review</th><th>note</th>" in table
    assert "confirmed anomaly" in table and "disk filled up" in table
    assert "normal (false alarm)" in table and "planned backup" in table
    assert "not reviewed" in table
    first_row = table.split("<tbody>")[1].split("</tr>")[0]
    assert f'<td class="num">{int(top[0]) + 2}</td>' in first_row  # its source_row
    assert "disk filled up" in first_row
    summary_html = document.split("<h2>Review summary</h2>")[1].split("</section>")[0]
    for label, count in (("Reviewed rows", 3), ("Confirmed anomalies", 1),
                         ("False alarms (normal)", 1), ("Unsure", 1)):  # fmt: skip
        assert f"<th>{label}</th><td>{count}</td>" in summary_html
    assert f"<td>2 of {flagged}" in summary_html


def test_report_drift_verdict_round_trips_and_appears_in_the_report(trained, tmp_path):
    from aecore.evaluation.drift import monitor

    detector, frame = trained["detector"], trained["frame"]
    assert report.latest_drift_verdict(MODEL, models_dir=tmp_path) is None
    shifted = frame.copy()
    shifted[["f0", "f1"]] += 5.0
    verdict = monitor(detector, shifted)
    stored = report.record_drift_verdict(
        MODEL, verdict, batch_name="week-2.csv", models_dir=tmp_path
    )
    path = tmp_path / ".drift" / f"{MODEL}.json"
    assert path.is_file() and not list(path.parent.glob("*.partial"))
    latest = report.latest_drift_verdict(MODEL, models_dir=tmp_path)
    assert latest == stored
    assert set(latest) == {"verdict", "headline", "batch", "checked", "n_rows", "alarm_share"}
    assert latest["verdict"] == verdict.verdict and latest["n_rows"] == len(shifted)
    assert latest["headline"] == verdict.headline and latest["checked"].endswith("+00:00")
    document = report.build_report(detector, frame, model_name=MODEL, drift=latest)
    drift_html = document.split("<h2>Drift</h2>")[1]
    assert verdict.headline in drift_html and "week-2.csv" in drift_html
    assert "No drift check recorded" not in document
    path.write_text("{not json", encoding="utf-8")
    assert report.latest_drift_verdict(MODEL, models_dir=tmp_path) is None
    with pytest.raises(AecoreError, match="not a valid model name"):
        report.latest_drift_verdict("../escape", models_dir=tmp_path)


def test_report_escapes_text_from_the_data_and_the_notes(trained, tmp_path):
    detector = trained["detector"]
    frame = trained["frame"].copy()
    errors = detector.score_rows(frame).row_error
    first = int(np.argmax(errors))
    frame["host"] = frame["host"].astype(object)
    frame.loc[frame.index[first], "host"] = XSS  # an id column: shown in the top rows
    frame['<img src=x onerror="alert(2)">'] = 1  # a column the model does not know
    book = ReviewBook(frame, models_dir=tmp_path)
    book.mark(first, "anomaly", f"note {XSS}")
    document = report.build_report(
        detector, frame, model_name="<b>model</b>", data_name=f"{XSS}.csv", reviews=book
    )
    outside = without_script_bodies(document)
    assert "alert(1)" in outside and XSS not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in outside
    assert "note &lt;script&gt;" in outside
    assert "<img" not in outside and "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in outside
    assert "<b>model</b>" not in document and "&lt;b&gt;model&lt;/b&gt;" in outside


def test_report_cli_writes_the_file_and_prints_the_summary_line(trained, tmp_path, capsys,
                                                                monkeypatch):  # fmt: skip
    folder, models = trained["folder"], trained["models"]
    book = ReviewBook(trained["frame"], models_dir=models, data_name="events.csv")
    book.mark(0, "anomaly", "first row")
    monkeypatch.chdir(tmp_path)
    code = cli.main(["report", str(folder / "events.csv"), "--model", MODEL, "--top", "3",
                     "--models-dir", str(models)])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    written = tmp_path / "report.html"  # the default output, in the current folder
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    match = re.fullmatch(r"Report written to (\S+) \((\d+) flagged rows, 1 reviewed\)", lines[0])
    assert match and match.group(1) == "report.html" and int(match.group(2)) >= 1
    document = written.read_text(encoding="utf-8")
    assert "Anomaly report: events.csv" in document and "first row" in document
    assert "report test model" in document  # from the bundle's meta.json
    table = document.split("<h2>Top flagged rows</h2>")[1].split("</section>")[0]
    assert table.split("<tbody>")[1].count("<tr>") == 3  # --top 3
    assert not list(tmp_path.glob(".*.partial"))


def test_report_command_has_help(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["report", "--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "usage: python -m aecore report" in out and "--top" in out
