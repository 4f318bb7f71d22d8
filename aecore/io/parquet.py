"""Parquet input, read by the same rules as CSV input: one clear ``AecoreError`` for a file that
cannot be used, column names cleaned the same way, and frames whose columns pandas and the
column-role inference treat as they would the same table read from a CSV file.

A Parquet file is recognised by its magic bytes (``PAR1`` at its start), not by its name, so an
upload or a path is read right whatever it is called. Whole reads (``read_parquet``) serve the
dashboard's upload and ``python -m aecore train``; ``ChunkedParquet`` streams a file in row
batches for chunked scoring (``aecore.workflows.chunked.score_csv``), with the schema fixed by
the file, so no type settles over the chunks as it must for a CSV file.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from aecore.errors import AecoreError

MAGIC = b"PAR1"


def starts_as_parquet(head: bytes) -> bool:
    """True when these first bytes of a file are a Parquet file's magic number."""
    return bytes(head[:4]) == MAGIC


def is_parquet_path(path: str | os.PathLike) -> bool:
    """True when the file at ``path`` starts with the Parquet magic bytes."""
    try:
        with open(path, "rb") as handle:
            return starts_as_parquet(handle.read(4))
    except OSError:
        return False


def read_parquet(data: bytes, *, name: str = "The file") -> pd.DataFrame:
    """The table in the Parquet file ``data`` (its bytes) as a DataFrame, or one clear
    ``AecoreError`` naming what is wrong (a damaged file, nested columns, no rows)."""
    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as error:
        raise AecoreError(f"{name} starts like a Parquet file but cannot be read: "
                          f"{_first_line(error)}") from None  # fmt: skip
    return to_frame(table, name=name, whole=True)


def to_frame(table: pa.Table, *, name: str = "The file", whole: bool = False) -> pd.DataFrame:
    """A Parquet table (or one batch of it) as a DataFrame, by the CSV reader's rules: names
    cleaned (blank -> ``column_N``, duplicates refused), nested and binary columns refused,
    decimals as floats, dictionary-encoded columns as their values, dates as timestamps."""
    names = [str(n).strip() for n in table.column_names]
    if not names:
        raise AecoreError(f"{name} has no columns.")
    names = [n or f"column_{i + 1}" for i, n in enumerate(names)]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise AecoreError(f"{name} has duplicated column names: {', '.join(duplicated)}.")
    nested = [n for n, f in zip(names, table.schema, strict=True) if _nested(f.type)]
    if nested:
        raise AecoreError(
            f"{name} has nested or binary columns, which cannot be model inputs: "
            f"{', '.join(nested[:5])}{' ...' if len(nested) > 5 else ''}. Flatten them first."
        )
    if whole and table.num_rows == 0:
        raise AecoreError(f"{name} has columns but no data rows.")
    columns, zoned = [], []
    for column_name, column in zip(names, table.columns, strict=True):
        column = _plain(column)
        if pa.types.is_timestamp(column.type) and column.type.tz is not None:
            zoned.append(column_name)
        columns.append(column)
    # One conversion of the whole table (a column at a time costs twice as much).
    frame = pa.table(columns, names=[f"c{i}" for i in range(len(names))]).to_pandas()
    frame.columns = pd.Index(names)
    for column_name in zoned:  # naive UTC, as the CSV reader gives timestamps
        frame[column_name] = frame[column_name].dt.tz_convert(None)
    return frame


def _nested(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return (
        pa.types.is_nested(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
    )


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column in a type pandas reads as the CSV reader's frames have it."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column = column.cast(kind.value_type)
        kind = kind.value_type
    if pa.types.is_decimal(kind):
        column = column.cast(pa.float64())
    elif pa.types.is_date(kind):
        column = column.cast(pa.timestamp("ms"))
    elif pa.types.is_large_string(kind):
        column = column.cast(pa.string())
    return column


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class ChunkedParquet:
    """A Parquet file read in batches of ``chunksize`` rows, with the interface of
    ``aecore.io.chunks.ChunkedCsv`` that ``score_csv`` uses: ``path``, ``names``, iteration
    over DataFrames, ``observe`` / ``settle`` (nothing to settle: the file fixes each column's
    type) and ``close``."""

    def __init__(self, path: str | os.PathLike, chunksize: int):
        if not isinstance(chunksize, int) or chunksize < 1:
            raise AecoreError(
                f"The chunk size must be a whole number of rows >= 1, got {chunksize!r}."
            )
        self.path = Path(path)
        self.chunksize = chunksize
        label = self.path.name
        try:
            self._file = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError, ValueError) as error:
            raise AecoreError(
                f"{label} starts like a Parquet file but cannot be read: {_first_line(error)}"
            ) from None
        schema = self._file.schema_arrow
        empty = to_frame(schema.empty_table(), name=label)
        self.names = list(empty.columns)
        if self._file.metadata.num_rows == 0:
            raise AecoreError(f"{label} has columns but no data rows.")
        self.rows_given = 0

    def __iter__(self):
        self.rows_given = 0
        try:
            for batch in self._file.iter_batches(batch_size=self.chunksize):
                frame = to_frame(pa.Table.from_batches([batch]), name=self.path.name)
                frame.index = pd.RangeIndex(self.rows_given, self.rows_given + len(frame))
                self.rows_given += len(frame)
                yield frame
        except (pa.ArrowException, OSError) as error:
            raise AecoreError(
                f"{self.path.name} could not be read after row {self.rows_given:,}: "
                f"{_first_line(error)}"
            ) from None

    def observe(self, chunk: pd.DataFrame) -> None:
        """Nothing to learn: the file's schema fixes every column's type."""

    def settle(self, categorical: Any = ()) -> bool:
        """True: chunks are typed alike from the start (see ``ChunkedCsv.settle``)."""
        return True

    def close(self) -> None:
        self._file = None


def row_count(path: str | os.PathLike) -> int:
    """The number of rows a Parquet file holds, from its footer (no data read)."""
    return int(pq.ParquetFile(path).metadata.num_rows)


__all__ = [
    "MAGIC", "ChunkedParquet", "is_parquet_path", "read_parquet", "row_count",
    "starts_as_parquet", "to_frame",
]  # fmt: skip
