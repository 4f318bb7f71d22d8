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
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import data
from .errors import AecoreError
from .explain import top_features
from .preprocessing import numeric_matrix

EXPORT_COLUMNS = ("reconstruction_error", "rank", "flag")
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
# The cells read as missing: pyarrow's defaults, as ``aecore.data.read_csv`` reads them.
_NULL_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null",
]  # fmt: skip
_MIN_BATCH = 256


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


# ---------------------------------------------------------------------------- the export table


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


def _assemble(
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
) -> pd.DataFrame:
    """``source_row`` (from ``rows``), the ``ids`` columns, the other original columns, then
    the export columns, for the rows of ``part`` (all arrays aligned)."""
    added = [SOURCE_ROW, *export_column_names(top_k)]
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
    return out.iloc[np.argsort(out["rank"].to_numpy(), kind="stable")]


def export_frame(
    frame: pd.DataFrame,
    scores: Any,
    *,
    model_name: str,
    all_rows: bool = False,
    top_k: int = 3,
    id_columns: Any = (),
) -> pd.DataFrame:
    """The export of a scored frame: ``source_row`` (the row's number in the file, see
    ``SOURCE_ROW_NOTE``; ``frame`` is the file's rows in order), the ``id_columns`` (those in
    ``frame``), the other original columns, then ``reconstruction_error``, ``rank`` (1 = most
    anomalous, over all rows), ``flag`` (1/0), ``top1_feature``, ``top1_share``, ...,
    ``model`` and ``threshold``; flagged rows only unless ``all_rows``; sorted by rank.

    ``scores`` is the ``aecore.detector.Scores`` of ``frame``. The index is kept, so
    ``frame.loc[export.index]`` finds the rows. An original column that has the name of an
    added one is kept as ``<name>_input``.
    """
    errors = np.asarray(scores.row_error)
    if len(errors) != len(frame):
        raise AecoreError(
            f"The scores cover {len(errors)} rows but the data has {len(frame)}: score this data."
        )
    flags = np.asarray(scores.flags)
    keep = np.arange(len(frame)) if all_rows else np.flatnonzero(flags == 1)
    return _assemble(
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
    )


# ---------------------------------------------------------------------------- safe CSV


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


def _as_text_where_any_is(tables: list) -> list:
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


def _header_bytes(columns: list) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([str(c) for c in columns])
    return buffer.getvalue().encode("utf-8")


def _safe_table(frame: pd.DataFrame):
    """``(header, table)``: the neutralised header names, and the neutralised cells as an Arrow
    table (columns named by position, so any header, even a repeated one, is fine)."""
    import pyarrow as pa

    safe = neutralise(frame)
    columns = {f"c{j}": pa.array(_arrow_ready(safe.iloc[:, j])) for j in range(safe.shape[1])}
    return [str(c) for c in safe.columns], pa.table(columns)


def _csv_rows(table) -> bytes:
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
    header, table = _safe_table(frame)
    return _header_bytes(header) + _csv_rows(table)


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


# ---------------------------------------------------------------------------- column checks


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


# ---------------------------------------------------------------------------- reading in chunks


def _kind(series: pd.Series) -> str:
    if series.isna().all():
        return "empty"
    return {"i": "int", "u": "int", "f": "float", "b": "bool"}.get(series.dtype.kind, "text")


def _unified(kinds: set) -> str:
    """The dtype a whole-file read gives a column whose chunks had these kinds."""
    found = kinds - {"empty"}
    if not found:
        return "float64"
    if found == {"int"} and "empty" not in kinds:
        return "int64"
    if found <= {"int", "float"}:
        return "float64"
    if found == {"bool"} and "empty" not in kinds:
        return "bool"
    return "str"


_NATIVE = {"int": "int64", "float": "float64", "bool": "bool", "text": "str"}


def open_csv_chunks(path: str | os.PathLike, chunksize: int = 100_000) -> _ChunkedCsv:
    """Check a CSV file by ``aecore.data.read_csv``'s rules (without loading it) and open it for
    ``score_csv`` (pass the result as its ``source_path``): a bad file fails here, before a
    model is loaded."""
    return _ChunkedCsv(Path(path), chunksize)


class _ChunkedCsv:
    """Reads a CSV file in chunks of rows, the way ``aecore.data.read_csv`` reads it whole.

    The first pass over the file learns each column's type over all chunks (and which columns
    of a semicolon file hold decimal commas); after ``settle()`` every chunk is read with those
    types, so a chunk's values print exactly as they would from one read of the whole file.

    Opening it checks the whole file by ``read_csv``'s rules, in blocks (``data.inspect_csv_file``:
    text, the encoding over the whole file, delimiter, header, every row's field count, trailing
    blank lines), so a file is refused, or read, alike whole or in chunks. A UTF-16 file is first
    written out as UTF-8 to a temporary file, removed by ``close()``.
    """

    def __init__(self, path: Path, chunksize: int):
        if not isinstance(chunksize, int) or chunksize < 1:
            raise AecoreError(
                f"The chunk size must be a whole number of rows >= 1, got {chunksize!r}."
            )
        self.path = Path(path)
        self.chunksize = chunksize
        self._converted: Path | None = None
        facts = data.inspect_csv_file(self.path)
        if facts.encoding.startswith("utf-16"):
            handle, name = tempfile.mkstemp(prefix=".aecore-utf8-", suffix=".csv")
            os.close(handle)
            self._converted = Path(name)
            try:
                data.utf16_to_utf8_file(self.path, facts.encoding, name)
                facts = data.inspect_csv_file(name)
            except BaseException:
                self.close()
                raise
        self.file = facts
        self.encoding, self.delimiter, self.names = facts.encoding, facts.delimiter, facts.header
        self.dtypes: dict[str, str] | None = None
        self.decimal: set[str] = set()
        self.kinds: dict[str, set] = {name: set() for name in self.names}
        self._decimal_seen: set[str] = set()
        self._decimal_failed: set[str] = set()

    def __iter__(self):
        read_types = self.dtypes
        if read_types is not None and self.decimal:
            read_types = {**read_types, **dict.fromkeys(self.decimal, "str")}
        try:
            reader = pd.read_csv(
                self.file.open(),
                sep=self.delimiter,
                encoding=self.encoding,
                header=0,
                names=self.names,
                keep_default_na=False,
                na_values=_NULL_VALUES,
                skip_blank_lines=True,
                chunksize=self.chunksize,
                dtype=read_types,
            )
            with reader:
                for chunk in reader:
                    yield self._decimal_commas(chunk)
        except UnicodeDecodeError:
            raise AecoreError(
                f"{self.path.name} is not consistently {self.encoding} text; "
                "save it as UTF-8 CSV."
            ) from None
        except (pd.errors.ParserError, csv.Error) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "bad row"
            raise AecoreError(f"{self.path.name} could not be read as CSV: {reason}") from None

    def _decimal_commas(self, chunk: pd.DataFrame) -> pd.DataFrame:
        """Semicolon files from European spreadsheets write 1,5 for 1.5: read them as numbers."""
        if self.delimiter != ";":
            return chunk
        if self.dtypes is not None:
            columns = self.decimal
        else:
            columns = set()
            for column in chunk.columns:
                if _kind(chunk[column]) != "text":
                    continue
                verdict = data.decimal_comma_verdict(chunk[column], strict=True)
                if verdict:
                    columns.add(column)
                    self._decimal_seen.add(column)
                elif verdict is False:
                    self._decimal_failed.add(column)
        converted = {column: data.decimal_comma_numbers(chunk[column]) for column in columns}
        return chunk.assign(**converted) if converted else chunk

    def close(self) -> None:
        """Remove the UTF-8 copy of a UTF-16 file, if one was made."""
        if getattr(self, "_converted", None) is not None:  # (None when __init__ failed early)
            self._converted.unlink(missing_ok=True)
            self._converted = None

    def __del__(self):
        self.close()

    def observe(self, chunk: pd.DataFrame) -> None:
        for column in chunk.columns:
            self.kinds[column].add(_kind(chunk[column]))

    def settle(self, stable_columns: list[str]) -> bool:
        """Fix every column's type from what the first pass saw; False when one of
        ``stable_columns`` (inputs whose text form matters) was read differently by chunk."""
        self.decimal = self._decimal_seen - self._decimal_failed
        self.dtypes = {column: _unified(kinds) for column, kinds in self.kinds.items()}
        return all(
            {_NATIVE[kind] for kind in self.kinds[column] if kind != "empty"}
            <= {self.dtypes[column]}
            for column in stable_columns
        )


class _Windows:
    """For a model over windows of consecutive rows: carries the last rows of one chunk into the
    next, and checks the file is in time order (as scoring the whole file would order it)."""

    def __init__(self, detector: Any):
        self.size = int(detector.autoencoder_.window)
        self.time = detector.roles_.time
        self.detector = detector
        self.reset()

    def reset(self) -> None:
        self.tail, self.last, self.unsorted, self.chunks = None, None, False, 0

    def extend(self, chunk: pd.DataFrame) -> pd.DataFrame:
        if self.size <= 1:
            return chunk
        if self.time is not None and self.time in chunk.columns:
            order = data.time_order(chunk, self.detector.roles_)  # the detector's own
            if order is None:  # no time parses in this chunk: those rows sort last
                order = np.full(len(chunk), np.inf)
            sequence = order if self.last is None else np.r_[self.last, order]
            self.unsorted = self.unsorted or bool(np.any(np.diff(sequence) < 0))
            if self.unsorted and self.chunks > 0:  # one chunk alone is ordered when scored
                raise AecoreError(
                    f"This model reads windows of consecutive rows, so scoring in chunks needs "
                    f"the file sorted by {self.time!r}; sort it, or score it in one piece."
                )
            if len(order):
                self.last = order[-1]
        self.chunks += 1
        extended = chunk if self.tail is None else pd.concat([self.tail, chunk], ignore_index=True)
        self.tail = extended.iloc[-(self.size - 1) :]
        return extended


def _score_chunk(detector: Any, windows: _Windows, chunk: pd.DataFrame, *, full: bool):
    """Scores of ``chunk``'s rows (after the carried-over window rows, if any).

    A short chunk is padded with copies of its last row up to ``_MIN_BATCH`` rows: TensorFlow
    computes very small batches along another path whose float rounding differs slightly, and a
    row's error must not depend on which chunk it fell into.
    """
    frame = windows.extend(chunk)
    start, stop = len(frame) - len(chunk), len(frame)
    if 0 < len(frame) < _MIN_BATCH:
        filler = frame.iloc[np.full(_MIN_BATCH - len(frame), len(frame) - 1)]
        frame = pd.concat([frame, filler], ignore_index=True)
    if not full:
        return detector.reconstruction_error(frame)[start:stop]
    scores = detector.score_rows(frame, latent=False)
    return (
        scores.row_error[start:stop],
        scores.flags[start:stop],
        scores.feature_errors.iloc[start:stop],
    )


def _ranks_in(errors: np.ndarray, ascending: np.ndarray, seen_ties: dict) -> np.ndarray:
    """Global ranks of one chunk's errors, from all errors sorted ascending (stable ties)."""
    right = np.searchsorted(ascending, errors, side="right")
    left = np.searchsorted(ascending, errors, side="left")
    if np.any(right == left):
        raise AecoreError("The scores changed between the two passes over the file.")
    rank = len(ascending) - right + 1
    for position in np.flatnonzero(right - left > 1):
        value = float(errors[position])
        rank[position] += seen_ties.get(value, 0)
        seen_ties[value] = seen_ties.get(value, 0) + 1
    return rank.astype(np.int64)


def score_csv(
    source_path: str | os.PathLike,
    detector: Any,
    output_path: str | os.PathLike,
    *,
    model_name: str,
    all_rows: bool = False,
    chunksize: int = 100_000,
    top_k: int = 3,
    progress: Callable[[str, int], None] | None = None,
) -> dict:
    """Score a CSV file of any size and write its export (as ``export_frame`` + ``to_safe_csv``
    would for the whole file at once, byte for byte) to ``output_path``.

    Memory: peak use is bounded by ``chunksize`` rows, plus one float32 per row of the file (the
    errors, kept sorted after the first pass to give every row its global rank; briefly two
    while the chunks' errors are joined). The file is
    read twice: pass 1 scores every chunk and settles each column's type over the whole file
    (and is repeated in the rare case that a categorical input was typed differently by chunk);
    pass 2 scores again and writes the exported rows into temporary Arrow files grouped by rank;
    pass 3 sorts each group (at most ``chunksize`` rows) and appends it to the output, which
    appears under its name only when complete.
    Rows are numbered across chunks: ``source_row`` is the row's number in the file (see
    ``SOURCE_ROW_NOTE``), and the model's id columns (``roles_.ids``) in the file follow it.
    ``progress(stage, rows_done)`` is called after every chunk. Returns ``{"rows", "flagged",
    "exported", "extra_columns", "unseen_categories", "threshold", "output", "id_columns"}``.
    """
    import pyarrow as pa

    detector.check_fitted()
    if not isinstance(chunksize, int) or chunksize < 1:
        raise AecoreError(f"The chunk size must be a whole number of rows >= 1, got {chunksize!r}.")
    if isinstance(source_path, _ChunkedCsv):  # from open_csv_chunks: already checked
        reader = source_path
        source, output = reader.path, Path(output_path)
    else:
        source, output = Path(source_path), Path(output_path)
        reader = _ChunkedCsv(source, chunksize)
    if output.exists() and output.resolve() == source.resolve():
        raise AecoreError("The output file must not be the input file.")
    if not output.parent.is_dir():
        raise AecoreError(f"Cannot write {output}: the folder {output.parent} does not exist.")
    categorical = [p["name"] for p in detector.preprocessor_.categorical_]
    ids = id_columns(reader.names, detector.roles_)
    windows = _Windows(detector)

    # Pass 1: every row's error, and each column's type over the whole file.
    for attempt in range(2):
        errors, report, unseen, n_rows = [], None, {}, 0
        windows.reset()
        for chunk in reader:
            found = check_columns(chunk, detector)
            report = report or found
            for column, values in found["unseen_categories"].items():
                unseen.setdefault(column, set()).update(values)
            if attempt == 0:
                reader.observe(chunk)
            errors.append(np.asarray(_score_chunk(detector, windows, chunk, full=False)))
            n_rows += len(chunk)
            if progress is not None:
                progress("scoring", n_rows)
        if attempt == 1 or reader.settle(categorical):
            break  # else a categorical input was typed differently by chunk: score it again
    if n_rows == 0:
        raise AecoreError(f"{source.name} has a header but no data rows.")
    ascending = np.concatenate(errors) if errors else np.zeros(0, np.float32)
    del errors
    ascending.sort()
    threshold = float(detector.threshold_)
    n_flagged = int(np.count_nonzero(ascending > detector.threshold_))
    n_exported = n_rows if all_rows else n_flagged

    # Pass 2: export rows, written to temporary files by rank group.
    work = Path(tempfile.mkdtemp(prefix=".aecore-score-", dir=output.parent))
    partial = output.with_name(f".{output.name}.partial")
    try:
        seen_ties: dict = {}
        header = None
        windows.reset()
        done = 0
        for number, chunk in enumerate(reader):
            row_error, flags, feature_errors = _score_chunk(detector, windows, chunk, full=True)
            keep = np.arange(len(chunk)) if all_rows else np.flatnonzero(flags == 1)
            rank = _ranks_in(np.asarray(row_error)[keep], ascending, seen_ties)
            part = _assemble(
                chunk.iloc[keep],
                np.asarray(row_error)[keep],
                rank,
                np.asarray(flags)[keep],
                feature_errors.iloc[keep],
                threshold,
                model_name,
                top_k,
                source_rows(keep, offset=done),
                ids,
            )
            names, table = _safe_table(part)
            header = names if header is None else header
            rank_column = f"c{part.columns.get_loc('rank')}"
            groups = (part["rank"].to_numpy() - 1) // chunksize
            order = np.argsort(groups, kind="stable")
            table, groups = table.take(pa.array(order)), groups[order]
            found, starts = np.unique(groups, return_index=True)
            ends = np.append(starts[1:], len(groups))[: len(starts)]
            for group, begin, end in zip(found, starts, ends, strict=True):
                folder = work / f"{int(group):09d}"
                folder.mkdir(exist_ok=True)
                with pa.OSFile(str(folder / f"{number:09d}.arrow"), "wb") as sink:
                    with pa.ipc.new_file(sink, table.schema) as writer:
                        writer.write_table(table.slice(begin, end - begin))
            done += len(chunk)
            if progress is not None:
                progress("exporting", done)
        # Pass 3: each rank group sorted, appended in order.
        with open(partial, "wb") as handle:
            handle.write(UTF8_BOM + _header_bytes(header))
            for folder in sorted(work.iterdir()):
                tables = [pa.ipc.open_file(str(p)).read_all() for p in sorted(folder.iterdir())]
                ranked = pa.concat_tables(_as_text_where_any_is(tables), promote_options="default")
                handle.write(_csv_rows(ranked.sort_by(rank_column)))
        os.replace(partial, output)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        partial.unlink(missing_ok=True)
    return {
        "rows": n_rows,
        "flagged": n_flagged,
        "exported": n_exported,
        "extra_columns": report["extra_columns"],
        "unseen_categories": {c: sorted(v) for c, v in unseen.items()},
        "threshold": threshold,
        "output": str(output),
        "id_columns": ids,
    }
