"""Issue 14, items 1, 2, 10 and 11 (first bullet): hostile numbers score finite and flagged,
one set of reading rules whole and in chunks, a CLI that answers bad input without TensorFlow,
and UTF-16 without a byte-order mark."""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aecore.detector import AnomalyDetector
from aecore.errors import AecoreError
from aecore.io import reader
from aecore.io.chunks import open_csv_chunks
from aecore.workflows.chunked import score_csv

ROOT = Path(__file__).resolve().parents[1]
FAST = {"epochs": 3, "random_state": 0, "second_model": False}


def finite_frame(n=240, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    frame["e"] = rng.exponential(size=n)  # skewed and non-negative: log-transformed
    return frame


@pytest.fixture(scope="module")
def detector():
    return AnomalyDetector(**FAST).fit(finite_frame())


# ---------------------------------------------------------------------------- item 1


HOSTILE = [(1, "b", 3.4e38), (3, "c", -1e20), (5, "d", np.inf), (6, "e", -np.inf),
           (7, "e", 3.4e38), (8, "a", 1e39)]  # fmt: skip


def hostile_frame():
    frame = finite_frame(seed=1).head(12).copy()
    for row, column, value in HOSTILE:
        frame.loc[row, column] = value
    return frame


def test_extreme_values_score_finite_flagged_and_named(detector):
    frame = hostile_frame()
    scores = detector.score_rows(frame)
    assert np.isfinite(scores.row_error).all()
    assert np.isfinite(scores.feature_errors.to_numpy()).all()
    hostile_rows = [row for row, _, _ in HOSTILE]
    assert scores.flags[hostile_rows].tolist() == [1] * len(HOSTILE)
    top = scores.feature_errors.idxmax(axis=1)
    assert [top[row] for row, _, _ in HOSTILE] == [column for _, column, _ in HOSTILE]
    # They rank above every ordinary row.
    ordinary = np.delete(scores.row_error, hostile_rows)
    assert scores.row_error[hostile_rows].min() > ordinary.max()
    # A row's per-feature errors still add up to its score.
    np.testing.assert_allclose(
        scores.feature_errors.sum(axis=1).to_numpy(), scores.row_error, rtol=1e-5
    )


def test_the_dashboard_takes_scores_of_extreme_values(detector):
    """The dashboard's scored view (ScoredData) used to refuse the whole file: "errors contain
    N missing or infinite value(s)"."""
    from aecore.scored import ScoredData

    frame = hostile_frame()
    scores = detector.score_rows(frame)
    view = ScoredData(frame, scores, reference_errors=detector.reference_errors_)
    assert view.count_above(detector.threshold_) >= len(HOSTILE)
    first = view.ranked_flagged(detector.threshold_, limit=len(HOSTILE))
    assert sorted(first) == sorted(row for row, _, _ in HOSTILE)


def test_a_file_with_extreme_values_exports_them_first_and_flagged(detector, tmp_path):
    source = tmp_path / "hostile.csv"
    hostile_frame().to_csv(source, index=False)
    score_csv(source, detector, tmp_path / "out.csv", model_name="m", all_rows=True, chunksize=5)
    export = pd.read_csv(tmp_path / "out.csv")
    assert export["reconstruction_error"].notna().all()
    assert np.isfinite(export["reconstruction_error"]).all()
    top = export.head(len(HOSTILE))
    assert top["flag"].eq(1).all()
    assert sorted(top["top1_feature"]) == sorted(column for _, column, _ in HOSTILE)
    # -inf is kept, but not as a cell a spreadsheet would run as a formula.
    cells = [c for line in (tmp_path / "out.csv").read_text("utf-8-sig").splitlines()
             for c in line.split(",")]  # fmt: skip
    assert '"\'-inf"' in cells and "-inf" not in cells


def test_training_with_infinite_and_sentinel_cells_works_with_a_note():
    frame = finite_frame()
    frame.loc[[3, 9], "a"] = np.inf
    frame.loc[5, "b"] = 3.4e38
    frame.loc[7, "b"] = -1e20
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fitted = AnomalyDetector(**{**FAST, "split": "chronological"}).fit(frame)
    notes = fitted.preprocessor_.notes_
    assert any("'a'" in note and "infinite or far out of range" in note for note in notes)
    assert any("'b'" in note and "2 " in note for note in notes)
    assert any("imputed with the median" in str(w.message) for w in caught)
    # The sentinels did not wreck the column's scale: ordinary values are spread as usual.
    scale_b = next(p for p in fitted.preprocessor_.numeric_ if p["name"] == "b")["scale"]
    assert 0.5 < scale_b < 2
    assert np.isfinite(fitted.reference_errors_).all() and np.isfinite(fitted.threshold_)
    assert np.isfinite(fitted.score_rows(frame).row_error).all()


def test_a_mostly_infinite_column_is_refused_with_one_message():
    frame = finite_frame()
    frame.loc[:150, "c"] = np.inf
    with pytest.raises(AecoreError, match="'c' is mostly infinite or far out of range"):
        AnomalyDetector(**FAST).fit(frame)


def test_long_tailed_columns_keep_their_large_values():
    frame = finite_frame()
    frame["bytes"] = np.r_[np.full(len(frame) - 2, 200.0), 1.3e9, 6e8]
    fitted = AnomalyDetector(**FAST).fit(frame)
    assert fitted.preprocessor_.notes_ == []


# ---------------------------------------------------------------------------- item 2


def test_a_ragged_file_is_refused_alike_by_train_and_by_chunked_score(detector, tmp_path):
    source = tmp_path / "ragged.csv"
    lines = finite_frame().head(40).to_csv(index=False).splitlines()
    lines[25] = ",".join(lines[25].split(",")[:-1])  # a short row, line 26 of the file
    source.write_text("\n".join(lines) + "\n")
    with pytest.raises(AecoreError) as whole:
        reader.read_csv(source)
    with pytest.raises(AecoreError) as chunked:
        score_csv(source, detector, tmp_path / "out.csv", model_name="m", chunksize=10)
    assert str(chunked.value) == str(whole.value)
    assert "Line 26 has 4 fields but the header has 5" in str(whole.value)
    assert not (tmp_path / "out.csv").exists()


def test_cp1252_accents_after_the_first_megabyte_read_alike(tmp_path):
    source = tmp_path / "late.csv"
    rows = ["x,city"] + [f"{i},Paris" for i in range(120_000)] + ["1,Besançon", "2,Zürich"]
    source.write_bytes(("\n".join(rows) + "\n").encode("cp1252"))
    assert source.stat().st_size > 2**20
    whole = reader.read_csv(source)
    chunks = pd.concat(list(open_csv_chunks(source, 50_000)), ignore_index=True)
    assert whole["city"].tail(2).tolist() == ["Besançon", "Zürich"]
    assert chunks["city"].tail(2).tolist() == ["Besançon", "Zürich"]
    assert len(chunks) == len(whole) == 120_002


def test_trailing_lines_of_delimiters_are_not_rows_in_chunks_either(tmp_path):
    source = tmp_path / "trail.csv"
    source.write_text("a,b,c\n1,2,3\n4,5,6\n,,\n ,\n\n")
    assert len(reader.read_csv(source)) == 2
    assert len(pd.concat(list(open_csv_chunks(source, 1)))) == 2


# ---------------------------------------------------------------------------- item 11


def test_utf16_without_a_byte_order_mark_is_read(tmp_path):
    frame = pd.DataFrame({"a": [1.5, 2.5, 3.5], "name": ["é", "b", "c"]})
    for codec in ("utf-16-le", "utf-16-be"):
        source = tmp_path / f"{codec}.csv"
        source.write_bytes(frame.to_csv(index=False).encode(codec))
        pd.testing.assert_frame_equal(reader.read_csv(source), frame, check_dtype=False)
        chunks = pd.concat(list(open_csv_chunks(source, 2)), ignore_index=True)
        pd.testing.assert_frame_equal(chunks, frame, check_dtype=False)


def test_broken_utf16_without_a_byte_order_mark_gets_its_own_message():
    text = "a,b\n1,2\n3,4\n".encode("utf-16-le") + b"\x00\xdc" + "5,6\n".encode("utf-16-le")
    with pytest.raises(AecoreError, match="UTF-16 text without a byte-order mark.*CSV UTF-8"):
        reader.read_csv(text)


# ---------------------------------------------------------------------------- item 10


def run_without_tensorflow(args, cwd):
    """``python -m aecore ARGS`` in a subprocess; fails unless it ends without TensorFlow."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['aecore', *{list(args)!r}]\n"
        "try:\n"
        "    runpy.run_module('aecore', run_name='__main__')\n"
        "except SystemExit as stop:\n"
        "    code = stop.code\n"
        "loaded = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
        "print('LOADED', loaded, 'EXIT', code, file=sys.stderr)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AECORE_MODELS_DIR": str(cwd / "models")}
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    return done


@pytest.mark.parametrize(
    "args, exit_code, message",
    [
        (["--help"], 0, None),
        (["train", "--help"], 0, None),
        (["train", "empty.csv", "--name", "m"], 2, "error: The file is empty."),
        (["train", "ragged.csv", "--name", "m"], 2, "error: Line 3 has 1 field"),
        (["train", "nope.csv", "--name", "m"], 2, "error: File not found"),
        (["score", "ragged.csv", "--model", "none", "--output", "o.csv"], 2, "No saved model"),
        (["train", "reader.csv"], 2, "required: --name"),
    ],
)  # fmt: skip
def test_help_and_bad_input_answer_without_importing_tensorflow(tmp_path, args, exit_code,
                                                                message):  # fmt: skip
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "ragged.csv").write_text("a,b\n1,2\n3\n")
    done = run_without_tensorflow(args, tmp_path)
    assert f"LOADED [] EXIT {exit_code}" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    if message:
        assert message in done.stderr


def test_a_bad_chunk_size_is_one_clear_error_and_nothing_else(tmp_path, monkeypatch):
    import gc

    source = tmp_path / "a.csv"
    source.write_text("a,b\n1,2\n")
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    with pytest.raises(AecoreError, match="chunk size must be a whole number"):
        open_csv_chunks(source, 0)
    gc.collect()
    assert unraisable == []  # no "Exception ignored in __del__" on stderr
