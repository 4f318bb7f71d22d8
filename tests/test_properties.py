"""Property-based tests (hypothesis): whatever bytes come in, reading ends in a frame or one
``AecoreError``, never a traceback; any finite input scores finite; no exported cell is a live
spreadsheet formula. Examples are few (profile "aecore") so the suite stays quick."""

import csv
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aecore.detector import AnomalyDetector
from aecore.errors import AecoreError
from aecore.io import reader
from aecore.io.chunks import open_csv_chunks
from aecore.workflows.export import _PLAIN_NUMBER_RE, TRIGGERS, to_safe_csv

settings.register_profile(
    "aecore", max_examples=30, deadline=None, database=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)  # fmt: skip
settings.load_profile("aecore")

COLUMNS = ["a", "b", "c", "d"]


# ---------------------------------------------------------------------------- reading


def read_or_refuse(payload: bytes):
    """``read_csv`` on the bytes: a non-empty frame, or AecoreError (anything else fails)."""
    try:
        frame = reader.read_csv(payload)
    except AecoreError as error:
        assert str(error).strip()
        return None
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    return frame


cells = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=False, width=32).map(repr),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
    st.sampled_from(["", "NA", "1,5", '"q"', "é", "=1+1", "-", "inf", "3.4e38", "\t"]),
)


@st.composite
def csv_bytes(draw):
    """A small CSV file (any delimiter, encoding and line end), then possibly damaged."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    n_cols = draw(st.integers(1, 4))
    header = [f"col{j}" for j in range(n_cols)]
    rows = draw(st.lists(st.lists(cells, min_size=n_cols, max_size=n_cols), max_size=12))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter,
                        lineterminator=draw(st.sampled_from(["\n", "\r\n"])))  # fmt: skip
    writer.writerow(header)
    writer.writerows(rows)
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16", "utf-16-le"]))
    payload = buffer.getvalue().encode(encoding, errors="replace")
    for _ in range(draw(st.integers(0, 3))):  # mutations
        if not payload:
            break
        at = draw(st.integers(0, len(payload)))
        kind = draw(st.sampled_from(["insert", "delete", "truncate", "replace"]))
        junk = draw(st.sampled_from([b'"', b"\n", b"\x00", delimiter.encode(), b"\xff", b"\r",
                                     draw(st.binary(min_size=1, max_size=4))]))  # fmt: skip
        if kind == "insert":
            payload = payload[:at] + junk + payload[at:]
        elif kind == "delete":
            payload = payload[:at] + payload[at + 1 :]
        elif kind == "truncate":
            payload = payload[:at]
        else:
            payload = payload[:at] + junk + payload[at + len(junk) :]
    return payload


@given(st.binary(max_size=600))
def test_random_bytes_are_read_or_refused_with_an_aecore_error(payload):
    read_or_refuse(payload)


@given(csv_bytes())
def test_mutated_csv_bytes_are_read_or_refused_with_an_aecore_error(payload):
    read_or_refuse(payload)


@settings(max_examples=25)
@given(csv_bytes())
def test_chunked_reading_refuses_what_whole_reading_refuses(tmp_path_factory, payload):
    """The chunked reader (CLI score) follows the same rules: a file refused whole is refused
    in chunks, and one read whole gives the same rows and columns in chunks."""
    path = tmp_path_factory.mktemp("p") / "f.csv"
    path.write_bytes(payload)
    whole = read_or_refuse(payload)
    try:
        chunks = list(open_csv_chunks(path, 5))
    except AecoreError:
        assert whole is None
        return
    if sum(len(chunk) for chunk in chunks) == 0:  # score_csv refuses it: "no data rows"
        assert whole is None
        return
    assert whole is not None
    chunked = pd.concat(chunks, ignore_index=True)
    assert list(chunked.columns) == list(whole.columns)
    if whole.shape[1] > 1:  # (pandas skips a one-column file's whitespace-only lines)
        assert len(chunked) == len(whole)


# ---------------------------------------------------------------------------- scoring


@pytest.fixture(scope="module")
def detector():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=COLUMNS)
    frame["d"] = rng.exponential(size=200)  # log-transformed
    return AnomalyDetector(epochs=3, random_state=0, second_model=False).fit(frame)


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(finite, finite, finite, finite), min_size=1, max_size=20))
def test_any_finite_input_scores_finite(detector, rows):
    frame = pd.DataFrame(rows, columns=COLUMNS)
    scores = detector.score_rows(frame)
    assert np.isfinite(scores.row_error).all()
    errors = scores.feature_errors.to_numpy(dtype=np.float64)
    assert np.isfinite(errors).all()
    # Per-feature errors still add up to the score.
    np.testing.assert_allclose(
        errors.sum(axis=1), scores.row_error,
        rtol=1e-4, atol=1e-6,
    )  # fmt: skip
    assert set(np.unique(scores.flags)) <= {0, 1}


# ---------------------------------------------------------------------------- export


def formula_active(cell: str) -> bool:
    """A cell a spreadsheet would run as a formula: starts with = + - @ tab or CR and is not
    a plain number (``aecore.export``'s definition)."""
    return cell.startswith(TRIGGERS) and not _PLAIN_NUMBER_RE.fullmatch(cell)


text_cells = st.text(alphabet=st.sampled_from(list("=+-@\t\r\n\"',;1.eE a|")), max_size=6)


@given(
    st.lists(text_cells, min_size=1, max_size=3, unique=True),
    st.lists(st.tuples(text_cells, st.floats(allow_nan=False), st.integers(-5, 5)),
             min_size=1, max_size=6),
)  # fmt: skip
@example(names=["=cmd"], rows=[("@SUM(1)", float("-inf"), -3)])  # -inf would print as -inf
def test_exported_cells_are_never_formula_active(names, rows):
    frame = pd.DataFrame(
        {
            **{f"{name}#{j}": [r[0] for r in rows] for j, name in enumerate(names)},
            "number": [r[1] for r in rows],
            "whole": [r[2] for r in rows],
        }
    )
    frame.columns = [c.split("#")[0] if j < len(names) else c for j, c in enumerate(frame.columns)]
    payload = to_safe_csv(frame).decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(payload, newline="")))
    assert len(parsed) == len(frame) + 1
    for line in parsed:
        for cell in line:
            assert not formula_active(cell), repr(cell)
