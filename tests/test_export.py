"""Export: the export table, formula-safe CSV, column checks, and chunked scoring of files."""

import csv
import io

import numpy as np
import pandas as pd
import pytest

from aecore import AecoreError, AnomalyDetector
from aecore.detector import Scores
from aecore.io import reader
from aecore.workflows.chunked import score_csv
from aecore.workflows.export import (
    check_columns,
    export_column_names,
    export_frame,
    to_safe_csv,
    write_safe_csv,
)
from tests.helpers import mixed_frame, numeric_frame

FAST = {"epochs": 3, "batch_size": 64}
TRICKY_TEXT = ["=SUM(A1:A9)", "+1+1", "-2+3", "@cmd", "\tindent", "\rreturn", "plain", "-3",
               'say "hi"', "a,b;c", "line\nbreak", "x"]  # fmt: skip


def read_back(payload: bytes) -> list[list[str]]:
    assert payload.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(payload.decode("utf-8-sig"), newline="")))


@pytest.fixture(scope="module")
def detector():
    return AnomalyDetector(**FAST).fit(mixed_frame(240))


@pytest.fixture(scope="module")
def new_data():
    """Data to score: the model's columns plus a text column full of CSV and formula traps, and
    an id column that is whole numbers at first and has gaps further down."""
    frame = mixed_frame(300, seed=1)
    frame["note"] = (TRICKY_TEXT * 25)[:300]
    frame["id"] = np.arange(300, dtype=float)
    frame.loc[[250, 290], "id"] = np.nan
    frame.loc[[7, 150], "bytes"] *= 5  # two rows far off
    return frame


def fake_scores(errors, feature_errors, threshold):
    errors = np.asarray(errors, dtype=np.float32)
    return Scores(
        row_error=errors,
        feature_errors=pd.DataFrame(feature_errors),
        latent=None,
        flags=(errors > threshold).astype(np.int8),
        threshold=threshold,
    )


# ---------------------------------------------------------------------------- export table


def test_export_frame_adds_rank_flag_and_top_features_and_keeps_flagged_rows():
    frame = pd.DataFrame({"a": [1, 2, 3, 4], "b": ["w", "x", "y", "z"]}, index=[10, 11, 12, 13])
    features = {"a": [0.1, 3.0, 0.2, 0.0], "c": [0.3, 1.0, 0.6, 0.9], "d": [0.0, 0.0, 1.2, 0.1]}
    scores = fake_scores([0.4, 4.0, 2.0, 1.0], features, threshold=1.5)
    out = export_frame(frame, scores, model_name="m1")
    assert list(out.columns) == ["source_row", "a", "b", *export_column_names(3)]
    assert list(out.index) == [11, 12]  # flagged rows only, most anomalous first
    assert out["source_row"].tolist() == [3, 4]  # file rows: the header is row 1
    assert out["rank"].tolist() == [1, 2] and out["flag"].tolist() == [1, 1]
    assert out.loc[11, "top1_feature"] == "a" and out.loc[11, "top1_share"] == pytest.approx(0.75)
    assert out.loc[12, ["top1_feature", "top2_feature", "top3_feature"]].tolist() == ["d", "c", "a"]
    assert (out["model"] == "m1").all() and (out["threshold"] == 1.5).all()

    every = export_frame(frame, scores, model_name="m1", all_rows=True)
    assert list(every.index) == [11, 12, 13, 10] and every["rank"].tolist() == [1, 2, 3, 4]
    assert every["flag"].tolist() == [1, 1, 0, 0]
    pd.testing.assert_frame_equal(every.loc[:, ["a", "b"]], frame.loc[every.index])


def test_export_frame_keeps_an_original_column_with_an_export_name_and_pads_top_features():
    frame = pd.DataFrame({"rank": ["gold", "silver"], "v": [1.0, 2.0]})
    scores = fake_scores([1.0, 2.0], {"v": [1.0, 2.0]}, threshold=0.5)
    out = export_frame(frame, scores, model_name="m")
    assert out["rank_input"].tolist() == ["silver", "gold"] and out["rank"].tolist() == [1, 2]
    assert out["top1_feature"].tolist() == ["v", "v"] and out["top2_feature"].isna().all()


def test_export_frame_refuses_scores_of_other_data():
    scores = fake_scores([1.0, 2.0], {"v": [1.0, 2.0]}, threshold=0.5)
    with pytest.raises(AecoreError, match="score this data"):
        export_frame(pd.DataFrame({"v": [1.0, 2.0, 3.0]}), scores, model_name="m")


# ---------------------------------------------------------------------------- safe CSV


def test_safe_csv_neutralises_formulas_and_round_trips_through_the_csv_module(tmp_path):
    frame = pd.DataFrame(
        {
            "=HEADER()": TRICKY_TEXT,
            "-h": np.linspace(-5.5, 5.5, len(TRICKY_TEXT)),  # numbers, negative ones included
            "count": np.arange(-6, 6),
            "@mixed": [-1, "=1", None, 2.5, "+x", "ok", 3, "-", "\t", "", "a", "b"],
        }
    )
    payload = to_safe_csv(frame)
    rows = read_back(payload)
    assert len(rows) == len(frame) + 1 and {len(r) for r in rows} == {4}
    assert rows[0] == ["'=HEADER()", "'-h", "count", "'@mixed"]
    texts = [r[0] for r in rows[1:]]
    for original, written in zip(TRICKY_TEXT, texts, strict=True):
        risky = original[0] in "=+-@\t\r" and original != "-3"
        assert written == ("'" + original if risky else original)
    assert [float(r[1]) for r in rows[1:]] == pytest.approx(frame["-h"].tolist())
    assert rows[1][1].startswith("-") and rows[1][2] == "-6"  # negative numbers stay numbers
    assert [r[3] for r in rows[1:]] == ["-1", "'=1", "", "2.5", "'+x", "ok", "3", "'-", "'\t",
                                        "", "a", "b"]  # fmt: skip
    # pandas reads it back too, with the same shape.
    assert pd.read_csv(io.BytesIO(payload), keep_default_na=False).shape == frame.shape
    path = write_safe_csv(frame, tmp_path / "out.csv")
    assert path.read_bytes() == payload


def test_safe_csv_is_utf8_with_a_bom_quoting_text_but_not_numbers():
    frame = pd.DataFrame({"città": ["naïve", "日本"], "n": [-1.5, 2.0], "ok": [True, False]})
    payload = to_safe_csv(frame)
    assert read_back(payload) == [["città", "n", "ok"], ["naïve", "-1.5", "true"],
                                  ["日本", "2", "false"]]  # fmt: skip
    assert payload.decode("utf-8-sig").split("\r\n")[1] == '"naïve",-1.5,true'


# ---------------------------------------------------------------------------- column checks


def test_columns_are_matched_by_name_and_extra_ones_reported(detector, new_data):
    shuffled = new_data[["note", "protocol", "duration", "id", "bytes", "packets"]]
    report = check_columns(shuffled, detector)
    assert report["extra_columns"] == ["note", "id"] and report["reordered"]
    assert report["features"] == ["bytes", "packets", "duration", "protocol"]
    np.testing.assert_array_equal(
        detector.reconstruction_error(shuffled), detector.reconstruction_error(new_data)
    )
    assert not check_columns(new_data, detector)["reordered"]


def test_missing_columns_are_all_named_in_one_error(detector, new_data):
    with pytest.raises(AecoreError, match="'bytes', 'protocol'"):
        check_columns(new_data.drop(columns=["bytes", "protocol"]), detector)


def test_a_numeric_column_that_now_holds_text_is_named(detector, new_data):
    retyped = new_data.assign(packets=new_data["packets"].astype(str))
    retyped.loc[5, "packets"] = "n/a yet"
    with pytest.raises(AecoreError, match="'packets'.*'n/a yet'.*trained on numbers"):
        check_columns(retyped, detector)


def test_unseen_categories_are_reported(detector, new_data):
    changed = new_data.assign(protocol=new_data["protocol"].replace("icmp", "sctp"))
    assert check_columns(changed, detector)["unseen_categories"] == {"protocol": ["sctp"]}


# ---------------------------------------------------------------------------- files in chunks


@pytest.mark.parametrize("all_rows", [False, True])
def test_scoring_a_file_in_chunks_writes_what_scoring_it_whole_writes(
    detector, new_data, tmp_path, all_rows
):
    source = tmp_path / "new.csv"
    new_data.to_csv(source, index=False, lineterminator="\r\n")  # so that "\r" gets quoted
    whole = reader.read_csv(source)
    expected = to_safe_csv(
        export_frame(whole, detector.score_rows(whole), model_name="m", all_rows=all_rows)
    )
    for chunksize in (37, 1000):
        output = tmp_path / f"out-{chunksize}.csv"
        result = score_csv(
            source, detector, output, model_name="m", all_rows=all_rows, chunksize=chunksize
        )
        assert output.read_bytes() == expected, f"chunksize {chunksize}"
    flagged = int(detector.predict(whole).sum())
    assert result["rows"] == 300 and result["flagged"] == flagged >= 2
    assert result["exported"] == (300 if all_rows else flagged)
    assert result["extra_columns"] == ["note", "id"]
    rows = read_back(expected)
    assert len(rows) == result["exported"] + 1 and {len(r) for r in rows} == {len(rows[0])}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.csv", "out-1000.csv", "out-37.csv"]


def test_chunked_scoring_of_a_semicolon_file_with_decimal_commas(detector, new_data, tmp_path):
    source = tmp_path / "european.csv"
    new_data.drop(columns=["note"]).to_csv(source, index=False, sep=";", decimal=",")
    whole = reader.read_csv(source)
    assert whole["bytes"].dtype == "float64"
    expected = to_safe_csv(export_frame(whole, detector.score_rows(whole), model_name="m"))
    score_csv(source, detector, tmp_path / "out.csv", model_name="m", chunksize=50)
    assert (tmp_path / "out.csv").read_bytes() == expected


def test_chunked_scoring_of_a_model_over_windows_of_rows(tmp_path):
    frame = numeric_frame(200, 5)
    frame.insert(0, "time", pd.date_range("2026-01-01", periods=200, freq="min").astype(str))
    detector = AnomalyDetector(architecture="conv", window=4, code_size=2, **FAST).fit(frame)
    source = tmp_path / "rows.csv"
    frame.to_csv(source, index=False)
    whole = reader.read_csv(source)
    scores = detector.score_rows(whole)
    expected = to_safe_csv(export_frame(whole, scores, model_name="w", all_rows=True))
    score_csv(source, detector, tmp_path / "out.csv", model_name="w", all_rows=True, chunksize=30)
    assert (tmp_path / "out.csv").read_bytes() == expected
    frame.iloc[::-1].to_csv(source, index=False)
    with pytest.raises(AecoreError, match="sorted by 'time'"):
        score_csv(source, detector, tmp_path / "x.csv", model_name="w", chunksize=30)
    assert not (tmp_path / "x.csv").exists()


def test_score_csv_reports_bad_input_clearly(detector, new_data, tmp_path):
    source = tmp_path / "bad.csv"
    new_data = new_data.drop(columns=["note"])
    new_data.drop(columns=["packets", "duration"]).to_csv(source, index=False)
    with pytest.raises(AecoreError, match="'packets', 'duration'"):
        score_csv(source, detector, tmp_path / "out.csv", model_name="m")
    late_text = new_data.assign(duration=new_data["duration"].astype(str))
    late_text.loc[280, "duration"] = "broken"
    late_text.to_csv(source, index=False)
    with pytest.raises(AecoreError, match="'duration'.*'broken'"):
        score_csv(source, detector, tmp_path / "out.csv", model_name="m", chunksize=50)
    new_data.iloc[:0].to_csv(source, index=False)
    with pytest.raises(AecoreError, match="no data rows"):
        score_csv(source, detector, tmp_path / "out.csv", model_name="m")
    with pytest.raises(AecoreError, match="File not found"):
        score_csv(tmp_path / "nope.csv", detector, tmp_path / "out.csv", model_name="m")
    with pytest.raises(AecoreError, match="must not be the input"):
        score_csv(source, detector, source, model_name="m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


# ---------------------------------------------------------------------------- joining back


def test_export_source_row_points_at_the_input_rows_and_id_columns_come_next():
    frame = pd.DataFrame(
        {"v": [5.0, 1.0, 9.0, 2.0, 7.0], "host": ["a", "=b", "c", "d", "e"], "w": [1, 2, 3, 4, 5]}
    )
    scores = fake_scores([0.5, 0.1, 3.0, 0.2, 2.0], {"v": [0.5, 0.1, 3.0, 0.2, 2.0]}, 0.3)
    out = export_frame(frame, scores, model_name="m", all_rows=True, id_columns=["host", "gone"])
    assert list(out.columns[:3]) == ["source_row", "host", "v"]  # an absent id is skipped
    assert out["rank"].tolist() == [1, 2, 3, 4, 5]  # still sorted by error
    pd.testing.assert_frame_equal(
        frame.iloc[out["source_row"].to_numpy() - 2].reset_index(drop=True),
        out[["v", "host", "w"]].reset_index(drop=True)[["v", "host", "w"]],
        check_names=False,
    )
    rows = read_back(to_safe_csv(out))
    assert rows[0][:2] == ["source_row", "host"]
    assert [r[0] for r in rows[1:]] == ["4", "6", "2", "5", "3"]  # file rows, by error
    assert rows[1 + [r[0] for r in rows[1:]].index("3")][1] == "'=b"  # still formula-safe


def test_an_input_column_named_source_row_is_kept_under_another_name():
    frame = pd.DataFrame({"source_row": [10, 20], "v": [1.0, 2.0]})
    out = export_frame(frame, fake_scores([1.0, 2.0], {"v": [1.0, 2.0]}, 0.5), model_name="m")
    assert out["source_row"].tolist() == [3, 2] and out["source_row_input"].tolist() == [20, 10]


def test_chunked_scoring_numbers_rows_across_chunks_and_carries_ids(tmp_path):
    from aecore.io.roles import ColumnRoles

    frame = mixed_frame(240, seed=2)
    frame.insert(0, "event", [f"ev-{i:03d}" for i in range(240)])
    roles = ColumnRoles(
        features=["bytes", "packets", "duration"], categorical=["protocol"], ids=["event"]
    )
    model = AnomalyDetector(**FAST, roles=roles).fit(frame)
    source = tmp_path / "events.csv"
    frame.to_csv(source, index=False)
    result = score_csv(source, model, tmp_path / "out.csv", model_name="m", all_rows=True,
                       chunksize=50)  # fmt: skip
    assert result["id_columns"] == ["event"]
    out = pd.read_csv(tmp_path / "out.csv", encoding="utf-8-sig")
    assert list(out.columns[:2]) == ["source_row", "event"]
    assert sorted(out["source_row"]) == list(range(2, 242))  # numbered across the chunks
    found = frame.iloc[out["source_row"].to_numpy() - 2]
    assert (found["event"].to_numpy() == out["event"].to_numpy()).all()
    assert np.allclose(found["bytes"].to_numpy(), out["bytes"].to_numpy())
    assert np.allclose(
        model.reconstruction_error(found), out["reconstruction_error"], rtol=1e-5, atol=1e-7
    )
