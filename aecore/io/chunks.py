"""A large CSV read in chunks by the same rules as a whole read (``aecore.io.reader``): the
same sniffing and checks, and one type per column across chunks.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path

import pandas as pd

from aecore.errors import AecoreError
from aecore.io import reader

# The cells read as missing: pyarrow's defaults, as ``aecore.io.reader.read_csv`` reads them.
_NULL_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null",
]  # fmt: skip


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


def open_csv_chunks(path: str | os.PathLike, chunksize: int = 100_000) -> ChunkedCsv:
    """Check a CSV file by ``aecore.io.reader.read_csv``'s rules (without loading it) and open it
    for
    ``score_csv`` (pass the result as its ``source_path``): a bad file fails here, before a
    model is loaded."""
    return ChunkedCsv(Path(path), chunksize)


class ChunkedCsv:
    """Reads a CSV file in chunks of rows, the way ``aecore.io.reader.read_csv`` reads it whole.

    The first pass over the file learns each column's type over all chunks (and which columns
    of a semicolon file hold decimal commas); after ``settle()`` every chunk is read with those
    types, so a chunk's values print exactly as they would from one read of the whole file.

    Opening it checks the whole file by ``read_csv``'s rules, in blocks
    (``reader.inspect_csv_file``:
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
                verdict = reader.decimal_comma_verdict(chunk[column], strict=True)
                if verdict:
                    columns.add(column)
                    self._decimal_seen.add(column)
                elif verdict is False:
                    self._decimal_failed.add(column)
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
