"""The review loop's logic: marks that last, suggestions, the threshold from marks, retraining
with the marks, and the marks in exports and on the command line."""

import json
import threading

import numpy as np
import pandas as pd
import pytest

from aecore import read_csv
from aecore.detector import AnomalyDetector
from aecore.errors import AecoreError
from aecore.workflows import feedback
from aecore.workflows.export import export_frame
from aecore.workflows.review import ReviewBook, ReviewLookup, dataset_id, row_hashes
from tests.helpers import numeric_frame


def flows(n_rows=400, seed=0) -> pd.DataFrame:
    """Flow-like rows: an id, a time, numbers, a categorical, and 20 rows of a burst unlike
    the rest (a class of its own)."""
    rng = np.random.default_rng(seed)
    frame = numeric_frame(n_rows, 5, seed)
    frame.insert(0, "flow_id", [f"F{i:05d}" for i in range(n_rows)])
    frame["service"] = rng.choice(["dns", "http", "ssh"], n_rows)
    burst = np.arange(100, 120)  # one attack: near-identical rows far from the normal ones
    centre = frame.iloc[:, 1:6].to_numpy().std(axis=0) * np.array([4.0, 0.0, 0.0, -4.0, 1.0])
    frame.iloc[burst, 1:6] = centre + 0.05 * rng.normal(size=(len(burst), 5))
    frame["label"] = "benign"
    frame.loc[burst, "label"] = "dos"
    return frame


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A flows CSV on disk and the frame read from it, as an upload would be."""
    folder = tmp_path_factory.mktemp("review-data")
    path = folder / "flows.csv"
    flows().to_csv(path, index=False)
    return path, read_csv(path)


@pytest.fixture(scope="module")
def detector(data):
    _, frame = data
    return AnomalyDetector(epochs=4, random_state=0).fit(frame.drop(columns=["label"]))


def test_review_marks_survive_a_restart_and_a_reupload(data, tmp_path):
    path, frame = data
    book = ReviewBook(frame, models_dir=tmp_path, data_name="flows.csv")
    book.mark(100, "anomaly", "dos burst; ticket INC-1")
    book.mark(5, "normal", "backup job")
    book.mark(7, "unsure")
    stored = tmp_path / ".reviews" / f"{dataset_id(frame.columns)}.json"
    assert stored.is_file() and not list(stored.parent.glob(".tmp-*"))

    # A restart: a new process reads the same file again, from disk.
    again = ReviewBook(read_csv(path), models_dir=tmp_path)
    assert again.get(100).status == "anomaly" and again.get(100).note == "dos burst; ticket INC-1"
    assert again.get(5).status == "normal" and again.get(7).status == "unsure"
    assert again.counts() == {"reviewed": 3, "anomaly": 1, "normal": 1, "unsure": 1}
    assert list(again.labels()[[100, 5, 7, 8]]) == [1, 0, -1, -1]

    # The same rows, re-exported with two new rows on top: marks follow the rows' values.
    moved = pd.concat([frame.iloc[[300, 301]], frame], ignore_index=True)
    shifted = ReviewBook(moved, models_dir=tmp_path)
    assert shifted.get(102).status == "anomaly" and shifted.get(7).status == "normal"
    # Another file with the same columns but other values: no mark applies, none is lost.
    other = flows(seed=1)
    elsewhere = ReviewBook(other.astype(frame.dtypes.to_dict()), models_dir=tmp_path)
    assert elsewhere.counts()["reviewed"] == 0 and elsewhere.unmatched == 3
    assert ReviewBook(frame, models_dir=tmp_path).counts()["reviewed"] == 3


def test_review_row_hash_is_the_same_however_numbers_are_typed():
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", None, "z"]})
    typed = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": pd.Series(["x", None, "z"], dtype="string")})
    assert (row_hashes(frame) == row_hashes(typed)).all()
    assert len(set(row_hashes(frame).tolist())) == 3


def test_review_marks_of_two_sessions_are_both_kept(data, tmp_path):
    _, frame = data
    first, second = (ReviewBook(frame, models_dir=tmp_path) for _ in range(2))
    threads = [
        threading.Thread(target=lambda b=b, rows=rows: [b.mark(r, "normal") for r in rows])
        for b, rows in ((first, range(0, 10)), (second, range(10, 20)))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ReviewBook(frame, models_dir=tmp_path).counts()["normal"] == 20


def test_review_marks_file_damaged_gives_one_clear_message(data, tmp_path):
    _, frame = data
    path = tmp_path / ".reviews" / f"{dataset_id(frame.columns)}.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(AecoreError, match="damaged"):
        ReviewBook(frame, models_dir=tmp_path)
    assert path.read_text() == "{not json"  # never overwritten


def test_review_marks_round_trip_as_csv_and_refuse_bad_files(data, tmp_path):
    _, frame = data
    book = ReviewBook(frame, models_dir=tmp_path)
    book.mark(100, "anomaly", "=HYPERLINK(1)")
    book.mark(3, "normal")
    text = book.to_csv().decode()
    assert text.splitlines()[0] == "row,status,note"
    assert "'=HYPERLINK(1)" in text  # safe to open in a spreadsheet
    target = ReviewBook(frame, models_dir=tmp_path / "other")
    result = target.import_csv(
        (text + "999999,anomaly,\nabc,normal,\n9,maybe?,\n").encode()
    )
    assert result["imported"] == 2 and len(result["skipped"]) == 3
    assert target.get(100).note == "=HYPERLINK(1)" and target.get(3).status == "normal"
    with pytest.raises(AecoreError, match="lacks status"):
        target.import_csv(b"row,verdict\n2,anomaly\n")
    with pytest.raises(AecoreError, match="No mark"):
        target.import_csv(b"row,status\n2,banana\n")
    assert target.counts()["reviewed"] == 2  # the failed imports changed nothing


def test_review_suggestions_are_not_all_the_top_ranked_rows(data, detector):
    _, frame = data
    inputs = frame.drop(columns=["label"])
    errors = np.asarray(detector.decision_function(inputs))
    threshold = float(np.quantile(errors, 0.95))
    suggestions = feedback.suggest_rows(
        errors, threshold, lambda rows: detector.transform_inputs(inputs.iloc[rows]), n=10
    )
    top = set(np.argsort(-errors)[:10].tolist())
    chosen = set(suggestions.positions.tolist())
    assert len(chosen) == 10 and len(suggestions.reasons) == 10
    assert chosen != top and len(chosen - top) >= 5
    assert (errors[suggestions.positions] > threshold).any()  # both sides of the threshold
    assert (errors[suggestions.positions] <= threshold).any()
    # Reviewed rows are never suggested again.
    again = feedback.suggest_rows(errors, threshold, detector.transform_inputs(inputs),
                                  reviewed=suggestions.positions, n=10)  # fmt: skip
    assert not set(again.positions.tolist()) & chosen


def test_review_threshold_is_chosen_from_marks():
    rng = np.random.default_rng(0)
    errors = np.concatenate([rng.uniform(0, 1, 500), rng.uniform(2, 3, 20)])
    labels = np.full(len(errors), -1, dtype=np.int8)
    labels[[500, 501, 502, 503, 504, 505]] = 1
    labels[[10, 20, 30, 40, 50, 60, 499]] = 0
    errors[499] = 1.5  # a false alarm between the two
    chosen = feedback.threshold_from_marks(errors, labels)
    assert 1.5 <= chosen.value < 2.0
    assert chosen.n_rows == 13 and chosen.n_anomalies == 6 and chosen.n_normal == 7
    assert chosen.metrics["caught"] == 6 and chosen.metrics["false_alarms"] == 0
    assert "13 reviewed rows" in chosen.warning  # fewer than 20: said
    costly = feedback.threshold_from_marks(errors, labels, method="min_cost", c_missed=100)
    assert costly.value <= chosen.value
    labels[labels == 0] = -1
    with pytest.raises(AecoreError, match="false alarm"):
        feedback.threshold_from_marks(errors, labels)


def test_review_retrain_leaves_out_confirmed_anomalies(data, detector):
    _, frame = data
    inputs = frame.drop(columns=["label"])
    labels = np.full(len(inputs), -1, dtype=np.int8)
    labels[[100, 101, 102, 103]] = 1  # four of the burst confirmed
    labels[[0, 1, 2, 3, 4, 5]] = 0  # six false alarms
    result = feedback.retrain_with_feedback(detector, inputs, labels, holdout_share=0.0)
    trained = result.trained_rows
    assert not np.isin([100, 101, 102, 103], trained).any()
    # The rest of the burst is like the confirmed rows and left out too; normal rows are not.
    assert not np.isin(np.arange(104, 120), trained).any()
    assert np.isin(np.arange(200, 300), trained).all()
    assert all((trained == r).sum() == feedback.FEEDBACK_WEIGHT for r in range(6))
    assert result.left_out == 20 and result.like_anomalies == 16
    assert result.detector is not detector and result.detector.retraining_["mode"] == "feedback"
    # What an analyst cares about: the burst ranks higher once the model stops learning it.
    table = result.table.set_index("source_row")
    assert table.loc[102:105, "rank_after"].mean() <= table.loc[102:105, "rank_before"].mean()
    after = np.asarray(result.detector.decision_function(inputs))
    before = np.asarray(detector.decision_function(inputs))
    burst = np.arange(104, 120)
    assert np.median(after[burst] / np.median(after)) > np.median(before[burst] / np.median(before))


def test_review_retrain_holds_out_reviewed_rows_to_measure(data, detector):
    _, frame = data
    inputs = frame.drop(columns=["label"])
    labels = np.full(len(inputs), -1, dtype=np.int8)
    labels[100:110] = 1
    labels[:10] = 0
    result = feedback.retrain_with_feedback(detector, inputs, labels, holdout_share=0.3, seed=1,
                                            mode="scratch")
    held = result.table[result.table["held_out"]]
    assert len(held) == 6 and (held["status"] == "anomaly").sum() == 3
    assert result.held_out["rows"] == 6
    assert set(result.held_out["after"]) == {"roc_auc", "pr_auc"}
    assert np.isin(held["source_row"] - 2, result.trained_rows).all()  # trained as unreviewed
    assert result.detector.retraining_["how"] == "scratch"
    assert result.sentence().startswith("Retrained without")
    with pytest.raises(AecoreError, match="No row is marked"):
        feedback.retrain_with_feedback(detector, inputs, np.full(len(inputs), -1))


def test_review_marks_travel_with_the_export(data, detector, tmp_path):
    _, frame = data
    inputs = frame.drop(columns=["label"])
    book = ReviewBook(inputs, models_dir=tmp_path)
    scores = detector.score_rows(inputs)
    top = int(np.argmax(scores.row_error))
    book.mark(top, "anomaly", "+cmd|' /C calc'!A0")
    table = export_frame(inputs, scores, model_name="m", reviews=book)
    row = table[table["source_row"] == top + 2].iloc[0]
    assert row["review_status"] == "anomaly" and row["review_note"].startswith("+cmd")
    assert list(table.columns[-2:]) == ["review_status", "review_note"]
    lookup = ReviewLookup(inputs.columns, models_dir=tmp_path)
    statuses, notes = lookup.for_chunk(inputs.iloc[top - 1 : top + 2], offset=top - 1)
    assert list(statuses) == ["", "anomaly", ""] and notes[1].startswith("+cmd")


def test_review_cli_export_import_and_score(data, detector, tmp_path, capsys):
    from aecore import cli, store

    path, frame = data
    inputs_path = tmp_path / "flows-inputs.csv"
    frame.drop(columns=["label"]).to_csv(inputs_path, index=False)
    models = tmp_path / "models"
    store.save(detector, "flowmodel", models_dir=models)
    marks = tmp_path / "marks.csv"
    marks.write_text("row,status,note\n102,confirmed anomaly,burst\n7,false alarm,\n")
    assert cli.main(["reviews", "import", str(inputs_path), str(marks),
                     "--models-dir", str(models)]) == 0  # fmt: skip
    assert "2 marks imported" in capsys.readouterr().out
    out = tmp_path / "out.csv"
    assert cli.main(["reviews", "export", str(inputs_path), "--output", str(out),
                     "--models-dir", str(models)]) == 0  # fmt: skip
    exported = pd.read_csv(out)
    assert exported.to_dict("list") == {"row": [7, 102], "status": ["normal", "anomaly"],
                                        "note": [np.nan, "burst"]}  # fmt: skip
    scored = tmp_path / "scored.csv"
    assert cli.main(["score", str(inputs_path), "--model", "flowmodel", "--output", str(scored),
                     "--all", "--models-dir", str(models)]) == 0  # fmt: skip
    table = pd.read_csv(scored, encoding="utf-8-sig")
    by_row = table.set_index("source_row")
    assert by_row.loc[102, "review_status"] == "anomaly"
    assert by_row.loc[102, "review_note"] == "burst"
    assert by_row.loc[7, "review_status"] == "normal" and pd.isna(by_row.loc[8, "review_status"])
    assert cli.main(["reviews", "import", str(inputs_path), str(tmp_path / "missing.csv"),
                     "--models-dir", str(models)]) == 2  # fmt: skip
    assert capsys.readouterr().err.count("\n") == 1
    stored = json.loads(next((models / ".reviews").glob("*.json")).read_text())
    assert len(stored["marks"]) == 2


def test_review_retrain_warns_when_the_new_model_does_worse_on_the_reviews(detector):
    table = pd.DataFrame({
        "source_row": [2, 3, 4], "status": ["anomaly", "anomaly", "normal"],
        "held_out": [False, False, False], "rank_before": [1, 2, 900],
        "rank_after": [700, 800, 850],
    })  # fmt: skip
    table["flagged_before"] = [True, True, False]
    table["flagged_after"] = [False, False, False]
    result = feedback.FeedbackResult(detector, table, 2, 0, 1, {"rows": 0})
    assert "2 of your confirmed anomalies are no longer flagged" in result.warning()
    assert "rank much lower (median rank 2 before, 750 after)" in result.warning()
    table["rank_after"] = [9, 12, 950]  # a little lower, still flagged: no warning
    table["flagged_after"] = [True, True, False]
    assert feedback.FeedbackResult(detector, table, 2, 0, 1, {"rows": 0}).warning() is None


def test_review_rows_like_a_confirmed_anomaly_stay_near_it():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 5))
    x[:30] = 8 + 0.05 * rng.normal(size=(30, 5))  # a burst of one attack
    for normal in (np.array([500]), np.array([], dtype=np.int64)):  # a far false alarm, or none
        like = feedback.like_confirmed(x, np.array([0]), normal)
        assert like[1:30].all() and not like[30:].any()
    x[30:400] = 8 + 0.5 * rng.normal(size=(370, 5))  # a bigger mode than any attack
    like = feedback.like_confirmed(x, np.array([0]), np.array([500]))
    assert like.sum() == int(feedback.MAX_LIKE_SHARE * len(x))  # bounded, the nearest first
    assert like[1:30].all()


def test_review_marks_in_a_read_only_deployment_stay_in_the_session(data, tmp_path):
    _, frame = data
    book = ReviewBook(frame, models_dir=tmp_path, persist=False)
    book.mark(3, "anomaly", "kept here")
    assert book.get(3).note == "kept here" and book.counts()["anomaly"] == 1
    assert not (tmp_path / ".reviews").exists()  # nothing written


def test_report_cli_still_reports_when_the_review_marks_are_damaged(data, detector, tmp_path,
                                                                    capsys):  # fmt: skip
    from aecore import cli, store

    _, frame = data
    inputs = tmp_path / "inputs.csv"
    frame.drop(columns=["label"]).to_csv(inputs, index=False)
    models = tmp_path / "models"
    store.save(detector, "flowmodel", models_dir=models)
    stored = models / ".reviews" / f"{dataset_id(read_csv(inputs).columns)}.json"
    stored.parent.mkdir(parents=True)
    stored.write_text("[broken")
    output = tmp_path / "report.html"
    assert cli.main(["report", str(inputs), "--model", "flowmodel", "--output", str(output),
                     "--models-dir", str(models)]) == 0  # fmt: skip
    assert "no review marks" in capsys.readouterr().err and output.is_file()
