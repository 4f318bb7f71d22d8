"""Exporting scored rows: the export table, CSV that is safe to open in a spreadsheet, column
checks for new data, and chunked scoring of CSV files larger than memory.

The CSV is UTF-8 with a byte-order mark and CRLF line ends: Excel only reads a CSV as UTF-8
(instead of the local ANSI code page, which garbles accents) when the BOM is there, and every
CSV reader (Python's csv module, pandas, LibreOffice, R) skips it. Text cells are quoted, with
quotes doubled (RFC 4180), so separators and line breaks inside them survive; numbers are not.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aecore.errors import AecoreError
from aecore.evaluation.explain import top_features
from aecore.model.preprocessing import numeric_matrix

EXPORT_COLUMNS = ("reconstruction_error", "rank", "flag")
REVIEW_COLUMNS = ("review_status", "review_note")  # with marks: the analyst's verdict and note
SOURCE_ROW = "source_row"
FIRST_DATA_ROW = 2  # the header is row 1
SOURCE_ROW_NOTE = (
    "source_row is the row's number in the input file as a spreadsheet shows it: the header is "
    "row 1, so the first data row is row 2 (in pandas, input.iloc[source_row - 2]); blank lines, "
    "which are skipped when the file is read, are not counted."
)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
UTF8_BOM = b"\xef\xbb\xbf"
# A cell that is a plain number ("-3", "+1.5e3") is a number in any spreadsheet, never a formula.
_PLAIN_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_PLAIN_NUMBER_RE = re.compile(_PLAIN_NUMBER)
MIN_BATCH = 256


def source_rows(positions: Any, offset: int = 0) -> np.ndarray:
    """The ``source_row`` of rows at ``positions`` of a frame read from a file (``offset``: the
    data rows before the frame's first one, e.g. earlier chunks): see ``SOURCE_ROW_NOTE``."""
    return np.asarray(positions, dtype=np.int64) + int(offset) + FIRST_DATA_ROW


def id_columns(columns: Any, *roles: Any) -> list[str]:
    """The id columns (``ColumnRoles.ids``) of any of ``roles`` that are among ``columns``,
    once each, in order: the columns carried beside ``source_row``."""
    present = set(columns)
    named = [c for r in roles if r is not None for c in (getattr(r, "ids", None) or [])]
    return [c for c in dict.fromkeys(named) if c in present]


def export_column_names(top_k: int = 3) -> list[str]:
    """The columns ``export_frame`` adds after the original ones, in order (``source_row``,
    added first, is not among them)."""
    names = list(EXPORT_COLUMNS)
    for j in range(1, top_k + 1):
        names += [f"top{j}_feature", f"top{j}_share"]
    return names + ["model", "threshold"]


def ranks(errors: Any) -> np.ndarray:
    """Rank of every row, 1 = highest error; equal errors rank in row order (stable)."""
    errors = np.asarray(errors)
    order = np.argsort(-errors, kind="stable")
    rank = np.empty(len(errors), dtype=np.int64)
    rank[order] = np.arange(1, len(errors) + 1)
    return rank


def _free_name(name: str, taken: set) -> str:
    candidate = f"{name}_input"
    while candidate in taken:
        candidate += "_"
    return candidate


def assemble(
    part: pd.DataFrame,
    errors: np.ndarray,
    rank: np.ndarray,
    flags: np.ndarray,
    feature_errors: pd.DataFrame,
    threshold: float,
    model_name: str,
    top_k: int,
    rows: np.ndarray,
    ids: list[str],
    reviews: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """``source_row`` (from ``rows``), the ``ids`` columns, the other original columns, then
    the export columns, for the rows of ``part`` (all arrays aligned); with ``reviews``
    (statuses, notes), ``review_status`` and ``review_note`` last."""
    added = [SOURCE_ROW, *export_column_names(top_k)]
    if reviews is not None:
        added += list(REVIEW_COLUMNS)
    clashes = [c for c in part.columns if c in added]
    first = [j for name in dict.fromkeys(ids) for j, c in enumerate(part.columns) if c == name]
    out = part.iloc[:, [*first, *(j for j in range(part.shape[1]) if j not in set(first))]]
    if clashes:
        taken = set(part.columns) | set(added)
        out = out.rename(columns={c: _free_name(str(c), taken) for c in clashes})
    else:
        out = out.copy()
    out.insert(0, SOURCE_ROW, np.asarray(rows, dtype=np.int64))
    out["reconstruction_error"] = np.asarray(errors)
    out["rank"] = np.asarray(rank, dtype=np.int64)
    out["flag"] = np.asarray(flags, dtype=np.int8)
    top = top_features(feature_errors, k=top_k)
    for j in range(1, top_k + 1):
        feature, share = f"top{j}_feature", f"top{j}_share"
        if feature in top:
            out[feature] = top[feature].to_numpy()
            out[share] = top[share].to_numpy()
        else:  # fewer features than top_k
            out[feature] = np.full(len(out), None, dtype=object)
            out[share] = np.full(len(out), np.nan, dtype=np.float32)
    out["model"] = str(model_name)
    out["threshold"] = float(threshold)
    if reviews is not None:
        out[REVIEW_COLUMNS[0]] = np.asarray(reviews[0], dtype=object)
        out[REVIEW_COLUMNS[1]] = np.asarray(reviews[1], dtype=object)
    return out.iloc[np.argsort(out["rank"].to_numpy(), kind="stable")]


def export_frame(
    frame: pd.DataFrame,
    scores: Any,
    *,
    model_name: str,
    all_rows: bool = False,
    top_k: int = 3,
    id_columns: Any = (),
    reviews: Any = None,
) -> pd.DataFrame:
    """The export of a scored frame: ``source_row`` (the row's number in the file, see
    ``SOURCE_ROW_NOTE``; ``frame`` is the file's rows in order), the ``id_columns`` (those in
    ``frame``), the other original columns, then ``reconstruction_error``, ``rank`` (1 = most
    anomalous, over all rows), ``flag`` (1/0), ``top1_feature``, ``top1_share``, ...,
    ``model`` and ``threshold``; flagged rows only unless ``all_rows``; sorted by rank.

    ``scores`` is the ``aecore.detector.Scores`` of ``frame``. The index is kept, so
    ``frame.loc[export.index]`` finds the rows. An original column that has the name of an
    added one is kept as ``<name>_input``. With ``reviews`` (an
    ``aecore.workflows.review.ReviewBook`` of ``frame``), ``review_status`` ("anomaly",
    "normal", "unsure" or empty) and ``review_note`` come last.
    """
    errors = np.asarray(scores.row_error)
    if len(errors) != len(frame):
        raise AecoreError(
            f"The scores cover {len(errors)} rows but the data has {len(frame)}: score this data."
        )
    flags = np.asarray(scores.flags)
    keep = np.arange(len(frame)) if all_rows else np.flatnonzero(flags == 1)
    return assemble(
        frame.iloc[keep],
        errors[keep],
        ranks(errors)[keep],
        flags[keep],
        scores.feature_errors.iloc[keep],
        scores.threshold,
        model_name,
        top_k,
        source_rows(keep),
        list(id_columns),
        None if reviews is None else reviews.export_columns(keep),
    )


def _safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(TRIGGERS):
        if not _PLAIN_NUMBER_RE.fullmatch(value):
            return "'" + value
    return value


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells and headers cannot run as spreadsheet formulas.

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'``
    (OWASP's advice); numbers stay numbers, and so does text that is a plain number ("-3").
    """
    out = frame.copy(deep=False)
    out.columns = [_safe_cell(c) for c in frame.columns]
    for position in range(frame.shape[1]):
        series = frame.iloc[:, position]
        dtype = series.dtype
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            continue
        if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
            continue
        if isinstance(dtype, pd.StringDtype):
            starts = series.str.startswith(TRIGGERS, na=False)
            if not starts.any():
                continue
            hit = starts & ~series.str.fullmatch(_PLAIN_NUMBER, na=False)
            safe = series.where(~hit, "'" + series)
        else:
            safe = series.astype(object).map(_safe_cell)
        out.isetitem(position, safe)
    return out


def _arrow_ready(series: pd.Series) -> pd.Series | np.ndarray:
    """A column Arrow's CSV writer takes as is: numbers, booleans and strings stay; anything
    else (mixed objects, dates, categories) becomes text as pandas prints it; missing is null."""
    dtype = series.dtype
    if dtype.kind == "f" and np.isneginf(series.to_numpy()).any():
        return _negative_infinity_as_text(series)
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype) and dtype.kind in "iuf"
    ):
        return series
    if isinstance(dtype, pd.StringDtype):
        return series
    text = series.astype(object).map(lambda v: None if _is_missing(v) else str(v))
    return pd.Series(pd.array(text.to_numpy(dtype=object), dtype="str"), index=series.index)


def _negative_infinity_as_text(series: pd.Series) -> pd.Series:
    """A float column holding -inf, as text: Arrow writes -inf as ``-inf``, which a spreadsheet
    runs as a formula (it starts with ``-``), so it becomes ``'-inf``; every other value is
    written as Arrow writes numbers (the column is quoted, as text is)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.cast(pa.array(series.to_numpy(), from_pandas=True), pa.string()).to_pylist()
    text = ["'-inf" if value == "-inf" else value for value in text]
    return pd.Series(pd.array(text, dtype="str"), index=series.index)


def as_text_where_any_is(tables: list) -> list:
    """Tables of one rank group (written by chunk) with a column that is text in one of them
    (a float column holding -inf, see ``_negative_infinity_as_text``) and numbers in others:
    the numbers cast to text too (as Arrow writes them), so the tables can be joined."""
    import pyarrow as pa

    text = {f.name: f.type for t in tables for f in t.schema if pa.types.is_large_string(f.type)
            or pa.types.is_string(f.type)}  # fmt: skip
    out = []
    for table in tables:
        for position, field in enumerate(table.schema):
            if field.name in text and pa.types.is_floating(field.type):
                column = table.column(position).cast(text[field.name])
                table = table.set_column(position, field.name, column)
        out.append(table)
    return out


def _is_missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def header_bytes(columns: list) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([str(c) for c in columns])
    return buffer.getvalue().encode("utf-8")


def safe_table(frame: pd.DataFrame):
    """``(header, table)``: the neutralised header names, and the neutralised cells as an Arrow
    table (columns named by position, so any header, even a repeated one, is fine)."""
    import pyarrow as pa

    safe = neutralise(frame)
    columns = {f"c{j}": pa.array(_arrow_ready(safe.iloc[:, j])) for j in range(safe.shape[1])}
    return [str(c) for c in safe.columns], pa.table(columns)


def csv_rows(table) -> bytes:
    """CSV rows by Arrow's writer, ~20x faster than ``DataFrame.to_csv`` on wide numeric
    tables: text cells are quoted (quotes doubled), numbers are not, missing cells are empty."""
    import pyarrow.csv as pacsv

    if table.num_columns == 0 or table.num_rows == 0:
        return b""
    buffer = io.BytesIO()
    options = pacsv.WriteOptions(include_header=False, eol="\r\n", quoting_style="needed")
    pacsv.write_csv(table, buffer, options)
    return buffer.getvalue()


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    header, table = safe_table(frame)
    return header_bytes(header) + csv_rows(table)


def to_safe_csv(frame: pd.DataFrame) -> bytes:
    """The frame as formula-safe CSV bytes: UTF-8 with BOM, comma-separated, CRLF, no index."""
    return UTF8_BOM + _csv_bytes(frame)


def write_safe_csv(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``to_safe_csv(frame)`` to ``path`` (via a temporary file, so never half-written)."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.partial")
    try:
        temp.write_bytes(to_safe_csv(frame))
        os.replace(temp, path)
    except FileNotFoundError:
        raise AecoreError(
            f"Cannot write {path}: the folder {path.parent} does not exist."
        ) from None
    return path


def check_columns(frame: pd.DataFrame, detector: Any) -> dict:
    """Check new data against a fitted detector's columns before scoring.

    Columns are matched by name, so their order does not matter. Raises one ``AecoreError``
    naming every missing feature column, or every numeric feature column that now holds text.
    Returns ``{"features", "extra_columns" (ignored by the model), "reordered",
    "unseen_categories" ({column: [values]}: they encode as all zeros)}``.
    """
    detector.check_fitted()
    features = [str(c) for c in detector.feature_names_in_]
    preprocessor = detector.preprocessor_
    preprocessor.transform(frame.iloc[:0])  # raises one error naming all missing columns
    numeric = [p["name"] for p in preprocessor.numeric_]
    problems = []
    for column in numeric:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        try:
            numeric_matrix(frame, [column])
        except AecoreError as error:
            problems.append(str(error))
    if problems:
        raise AecoreError(
            " ".join(problems) + " The model was trained on numbers there: fix those cells, "
            "or train a new model that treats the column as categorical or ignores it."
        )
    present = [c for c in frame.columns if c in set(features)]
    return {
        "features": features,
        "extra_columns": [str(c) for c in frame.columns if c not in set(features)],
        "reordered": present != features,
        "unseen_categories": preprocessor.unseen_categories(frame),
    }
