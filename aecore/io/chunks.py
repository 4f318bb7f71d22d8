"""A large CSV read in chunks by the same rules as a whole read (``aecore.io.reader``): the
same sniffing and checks (``reader.inspect_csv_file``), the same parser (pyarrow, streaming here
with ``pacsv.open_csv``, with the whole read's parse and convert options), the same pandas
fallback, and one type per column over the whole file.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from aecore.errors import AecoreError
from aecore.io import reader

_PEEK_BLOCK = 1024 * 1024  # the first block's types, as ``read_csv`` peeks them
_STREAM_BLOCK = 4 * 1024 * 1024
# pyarrow's inference order, from each type to the next (dates and times stay text).
_PROMOTION = {"null": pa.int64(), "int64": pa.bool_(), "bool": pa.float64(),
              "double": pa.string(), "string": pa.string()}  # fmt: skip
_CONVERSION = re.compile(r"In CSV column #(\d+): .*CSV conversion error")


def _type_name(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind):
        return "int64"
    if pa.types.is_floating(kind):
        return "double"
    return {"null": "null", "bool": "bool"}.get(str(kind), "string")


def _conversion_column(message: str, names: list[str]) -> str | None:
    """The column a pyarrow conversion error names (None: another error)."""
    found = _CONVERSION.search(message)
    if found is None or int(found.group(1)) >= len(names):
        return None
    return names[int(found.group(1))]


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


def open_csv_chunks(path: str | os.PathLike, chunksize: int = 100_000):
    """Check a CSV file by ``aecore.io.reader.read_csv``'s rules (without loading it) and open
    it for ``score_csv`` (pass the result as its ``source_path``): a bad file fails here,
    before a model is loaded. A Parquet file (its magic bytes) opens as
    ``aecore.io.parquet.ChunkedParquet``, read in row batches."""
    from aecore.io import parquet

    if parquet.is_parquet_path(path):
        return parquet.ChunkedParquet(Path(path), chunksize)
    return ChunkedCsv(Path(path), chunksize)


class ChunkedCsv:
    """Reads a CSV file in chunks of rows, the way ``aecore.io.reader.read_csv`` reads it whole.

    The first pass over the file learns each column's type over all chunks (and which columns
    of a semicolon file hold decimal commas); after ``settle()`` every chunk is read with those
    types, so a chunk's values print exactly as they would from one read of the whole file.

    Opening it checks the whole file by ``read_csv``'s rules, in blocks
    (``reader.inspect_csv_file``: text, the encoding over the whole file, delimiter, header,
    every row's field count, trailing blank lines), so a file is refused, or read, alike whole
    or in chunks. A UTF-16 file is first written out as UTF-8 to a temporary file, removed by
    ``close()``.
    """

    def __init__(self, path: Path, chunksize: int):
        if not isinstance(chunksize, int) or chunksize < 1:
            raise AecoreError(
                f"The chunk size must be a whole number of rows >= 1, got {chunksize!r}."
            )
        self.path = Path(path)
        self.chunksize = chunksize
        self._converted: Path | None = None
        facts = reader.inspect_csv_file(self.path)
        if facts.encoding.startswith("utf-16"):
            handle, name = tempfile.mkstemp(prefix=".aecore-utf8-", suffix=".csv")
            os.close(handle)
            self._converted = Path(name)
            try:
                reader.utf16_to_utf8_file(self.path, facts.encoding, name)
                facts = reader.inspect_csv_file(name)
            except BaseException:
                self.close()
                raise
        self.file = facts
        self.encoding, self.delimiter, self.names = facts.encoding, facts.delimiter, facts.header
        self.dtypes: dict[str, str] | None = None
        self.decimal: set[str] = set()
        self.kinds: dict[str, set] = {name: set() for name in self.names}
        self._internal = [f"c{j}" for j in range(len(self.names))]
        self._types: dict[str, pa.DataType] | None = None
        self._changed: set[str] = set()
        self._decimal_converted: set[str] = set()
        self._switched = False
        self.rows_given = 0
        self.pandas_fallback = False
        self._decimal_seen: set[str] = set()
        self._decimal_failed: set[str] = set()

    def __iter__(self):
        """The file's chunks of ``chunksize`` rows, as DataFrames typed as ``read_csv`` types
        the whole file. pyarrow's streaming reader (``pacsv.open_csv``, with the whole read's
        parse and convert options) reads them; where pyarrow cannot read the file, pandas
        does, as ``read_csv`` falls back to pandas too.

        The first pass types each column as the first block does (numbers and booleans; dates
        and times stay text) and promotes a column where a later row does not fit, in the
        order of pyarrow's own inference (null, int64, bool, float64, text): the stream starts
        again from the top and goes on after the rows already given. After it, every column
        has the whole file's type (``settle`` says whether one that matters changed on the
        way), and later passes read every chunk with those types."""
        if not self.pandas_fallback:
            try:
                yield from self._arrow_pass()
                return
            except (pa.ArrowException, OverflowError):
                # pandas goes on after the chunks already given (whole chunks, so they align);
                # the pass that used them is scored again (``settle``).
                self.pandas_fallback = True
                self._switched = self.rows_given > 0
                yield from self._pandas_chunks(given=self.rows_given // self.chunksize)
                return
        yield from self._pandas_chunks()

    # ---- pyarrow ---------------------------------------------------------------------------
    def _arrow_stream(self, types: dict[str, pa.DataType], *, peek: bool = False):
        read_options = pacsv.ReadOptions(
            use_threads=not peek, block_size=_PEEK_BLOCK if peek else _STREAM_BLOCK,
            skip_rows=1, column_names=self._internal,
            encoding="utf8" if self.encoding == "utf-8" else self.encoding,
        )  # fmt: skip
        return pacsv.open_csv(
            self.file.open(),
            read_options=read_options,
            parse_options=reader.parse_options_for(self.delimiter, self.file.quoted),
            convert_options=reader.convert_options(types),
        )

    def _first_block_types(self) -> dict[str, pa.DataType]:
        with self._arrow_stream({}, peek=True) as stream:
            schema = stream.schema
        types = {}
        for field in schema:
            kind = field.type
            if pa.types.is_temporal(kind) or not (
                pa.types.is_null(kind) or reader.is_plain_type(kind)
            ):
                kind = pa.string()
            types[field.name] = kind
        return types

    def _arrow_pass(self):
        self.rows_given = 0
        if self._types is not None:  # settled: every chunk with the whole file's types
            yield from self._arrow_chunks(self._types, 0, settled=True)
            return
        types = self._first_block_types()
        self._decimal_seen, self._decimal_failed, self._changed = set(), set(), set()
        self._decimal_converted = set()
        while True:
            try:
                for frame in self._arrow_chunks(types, self.rows_given, settled=False):
                    self.rows_given += len(frame)
                    yield frame
            except pa.ArrowInvalid as error:
                column = _conversion_column(str(error), self._internal)
                if column is None:
                    raise
                types[column] = _PROMOTION[_type_name(types[column])]
                if self.rows_given:
                    self._changed.add(self.names[self._internal.index(column)])
                continue
            break
        self._types = types
        self.decimal = self._decimal_seen - self._decimal_failed
        self._changed |= {c for c in self._decimal_seen | self._decimal_failed
                          if (c in self.decimal) != (c in self._decimal_converted)}  # fmt: skip

    def _arrow_chunks(self, types, skip: int, *, settled: bool):
        """Chunks of ``chunksize`` rows from the top of the file, the first ``skip`` rows
        left out (already given before a promotion)."""
        pending: list = []
        held, seen, first_row = 0, 0, skip
        with self._arrow_stream(types) as stream:
            for batch in stream:
                if seen + batch.num_rows <= skip:  # rows given before a promotion
                    seen += batch.num_rows
                    continue
                if seen < skip:
                    batch = batch.slice(skip - seen)
                seen = skip
                pending.append(batch)
                held += batch.num_rows
                while held >= self.chunksize:
                    table = pa.Table.from_batches(pending)
                    yield self._to_frame(table.slice(0, self.chunksize), first_row, settled)
                    first_row += self.chunksize
                    rest = table.slice(self.chunksize)
                    pending, held = rest.to_batches(), rest.num_rows
        if held:
            yield self._to_frame(pa.Table.from_batches(pending), first_row, settled)

    def _to_frame(self, table, first_row: int, settled: bool) -> pd.DataFrame:
        """One chunk as pandas, numbered on from the rows before it (as pandas' chunks): a
        column empty so far as float64 NaN (as ``read_csv``), decimal commas as numbers."""
        for position, field in enumerate(table.schema):
            if pa.types.is_null(field.type):
                table = table.set_column(
                    position, field.name, pa.nulls(len(table), pa.float64())
                )
        frame = table.rename_columns(self.names).to_pandas()
        frame.index = pd.RangeIndex(first_row, first_row + len(frame))
        return self._decimal_commas(frame, settled=settled)

    # ---- pandas (where pyarrow cannot read the file) ---------------------------------------
    def _pandas_chunks(self, given: int = 0):
        """The chunks as pandas reads them; the first ``given`` ones (already given from
        pyarrow) are only observed, for ``settle``."""
        read_types = self.dtypes
        if read_types is not None and self.decimal:
            read_types = {**read_types, **dict.fromkeys(self.decimal, "str")}
        try:
            parser = pd.read_csv(
                self.file.open(),
                sep=self.delimiter,
                encoding=self.encoding,
                header=0,
                names=self.names,
                keep_default_na=False,
                na_values=reader.NULL_VALUES,
                skip_blank_lines=True,
                chunksize=self.chunksize,
                dtype=read_types,
            )
            with parser:
                for number, chunk in enumerate(parser):
                    chunk = self._decimal_commas(chunk, settled=self.dtypes is not None)
                    if number < given:
                        self.observe(chunk)
                        continue
                    yield chunk
        except UnicodeDecodeError:
            raise AecoreError(
                f"{self.path.name} is not consistently {self.encoding} text; "
                "save it as UTF-8 CSV."
            ) from None
        except (pd.errors.ParserError, csv.Error) as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else "bad row"
            raise AecoreError(f"{self.path.name} could not be read as CSV: {reason}") from None

    def _decimal_commas(self, chunk: pd.DataFrame, *, settled: bool) -> pd.DataFrame:
        """Semicolon files from European spreadsheets write 1,5 for 1.5: read them as numbers.
        Settled, the columns found over the whole file; on the first pass, those this chunk
        says hold decimal commas (``reader.decimal_comma_verdict``), noted for ``settle``."""
        if self.delimiter != ";":
            return chunk
        if settled:
            columns = self.decimal
        else:
            columns = set()
            for column in chunk.columns:
                if _kind(chunk[column]) != "text":
                    continue
                verdict = reader.decimal_comma_verdict(chunk[column], strict=True)
                if verdict:
                    columns.add(column)
                    self._decimal_seen.add(column)
                elif verdict is False:
                    self._decimal_failed.add(column)
            self._decimal_converted |= columns
        converted = {column: reader.decimal_comma_numbers(chunk[column]) for column in columns}
        return chunk.assign(**converted) if converted else chunk

    def close(self) -> None:
        """Remove the UTF-8 copy of a UTF-16 file, if one was made."""
        if getattr(self, "_converted", None) is not None:  # (None when __init__ failed early)
            self._converted.unlink(missing_ok=True)
            self._converted = None

    def __del__(self):
        self.close()

    def observe(self, chunk: pd.DataFrame) -> None:
        """Note each column's type in this chunk (the pandas fallback settles them over the
        file; pyarrow's types are settled before the first chunk)."""
        if not self.pandas_fallback:
            return
        for column in chunk.columns:
            self.kinds[column].add(_kind(chunk[column]))

    def settle(self, stable_columns: list[str]) -> bool:
        """Fix every column's type from what the first pass saw; False when one of
        ``stable_columns`` (inputs whose text form matters) was read differently by chunk.
        When pyarrow reads the file: False when one of them was promoted, or its decimal
        commas read differently, after some of its rows were given; always False once when
        pyarrow failed part-way and pandas read the rest."""
        if not self.pandas_fallback:
            return not (set(stable_columns) & self._changed)
        self.decimal = self._decimal_seen - self._decimal_failed
        self.dtypes = {column: _unified(kinds) for column, kinds in self.kinds.items()}
        if self._switched:  # pyarrow gave the first chunks: score them again, read by pandas
            self._switched = False
            return False
        return all(
            {_NATIVE[kind] for kind in self.kinds[column] if kind != "empty"}
            <= {self.dtypes[column]}
            for column in stable_columns
        )
