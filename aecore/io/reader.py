"""Reading CSV files: size limits, encoding, delimiter, header, field counts, decimal commas and
types (pyarrow's CSV reader first, pandas where it cannot), with one clear message per problem.
The chunked reader (``aecore.io.chunks``) uses the same checks on a file read in parts.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from aecore.errors import AecoreError
from aecore.io.labelling import column_kind

_DELIMITERS = ",;\t|"
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_BYTES = 64 * 1024
_BLOCK_SIZE = 4 * 1024 * 1024
_PEEK_BLOCK_SIZE = 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"
# pyarrow's defaults, written out so the pandas fallback reads missing cells the same way.
# "None" is deliberately absent: in label columns it often means "no attack", not missing.
NULL_VALUES = [
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
    "1.#QNAN", "N/A", "NA", "NULL", "NaN", "n/a", "nan", "null",
]  # fmt: skip


_BINARY_SIGNATURES = {
    b"PK\x03\x04": "a ZIP archive or an Excel .xlsx workbook",
    b"\xd0\xcf\x11\xe0": "an Excel .xls workbook",
    b"%PDF": "a PDF document",
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"\x1f\x8b": "a gzip-compressed file",
    b"PAR1": "a Parquet file",
    b"SQLite format 3": "an SQLite database",
}
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def read_csv(source: Any, *, max_bytes: int | None = None) -> pd.DataFrame:
    """Read a CSV from a path, raw bytes or a binary file object (e.g. Streamlit's upload).

    Detects the encoding (UTF-8, UTF-8 with BOM, Windows-1252, Latin-1) and the delimiter
    (comma, semicolon, tab, pipe); every unreadable input raises one clear ``AecoreError``.
    A Parquet file (recognised by its magic bytes, whatever its name) is read as its table
    (``aecore.io.parquet.read_parquet``), by the same rules.
    """
    data = _read_source(source, max_bytes)
    from aecore.io import parquet

    if parquet.starts_as_parquet(data):
        return parquet.read_parquet(data)
    payload, sample = _to_utf8(data)
    delimiter = detect_delimiter(sample)
    header = header_names(sample, delimiter)
    payload = _trim_trailing_blank_lines(payload, delimiter)
    try:
        frame = _parse_with_arrow(payload, delimiter)
    except _ArrowFieldCountError as error:
        raise _field_count_error(payload, delimiter, error.detail) from None
    except (pa.ArrowException, OverflowError):
        frame = _parse_with_pandas(payload, delimiter, header)
    return _finish(frame, delimiter)


def _read_source(source: Any, max_bytes: int | None) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise AecoreError(f"{path} is a folder, not a CSV file.")
        if not path.is_file():
            raise AecoreError(f"File not found: {path}.")
        _check_size(path.stat().st_size, max_bytes)
        data = path.read_bytes()
    elif hasattr(source, "read"):
        size = getattr(source, "size", None)
        if isinstance(size, int):
            _check_size(size, max_bytes)
        if hasattr(source, "seek"):
            try:
                source.seek(0)
            except (OSError, ValueError):
                pass
        data = source.read() if max_bytes is None else source.read(max_bytes + 1)
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, bytes):
            data = bytes(data)
        _check_size(len(data), max_bytes, exact=max_bytes is None or len(data) <= max_bytes)
        return data
    else:
        raise AecoreError(
            f"Cannot read a CSV from a {type(source).__name__}; "
            "give a file path, the file's bytes or an open binary file."
        )
    _check_size(len(data), max_bytes)
    return data


def _check_size(size: int, max_bytes: int | None, *, exact: bool = True) -> None:
    if max_bytes is not None and size > max_bytes:
        actual = f" (it is {_megabytes(size)} MB)" if exact else ""
        raise AecoreError(
            f"The file is larger than the {_megabytes(max_bytes)} MB limit{actual}. "
            "Load a smaller extract of the data."
        )


def _megabytes(size: int) -> str:
    return f"{size / 2**20:,.2f}".rstrip("0").rstrip(".")


def _to_utf8(data: bytes) -> tuple[bytes, str]:
    """The file as UTF-8 bytes without BOM, and its first complete lines as text."""
    if re.search(rb"[^\s\xef\xbb\xbf\xff\xfe]", data) is None:
        raise AecoreError("The file is empty.")
    utf16 = check_text_head(data)
    if utf16 is not None:
        data = _decode_utf16(data, utf16).encode("utf-8")
    if b"\x00" in data:
        raise _not_text_error()
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    if not data.isascii():
        encoding = detect_encoding(lambda: [data])
        if encoding != "utf-8":
            data = data.decode(encoding).encode("utf-8")
    sample = text_sample(data[:_SNIFF_BYTES].decode("utf-8", errors="ignore"), len(data))
    return data, sample


def check_text_head(head: bytes) -> str | None:
    """Refuse, from a file's first bytes, what is not a text CSV (ZIP, Excel, PDF, images...);
    the codec of UTF-16 text ('utf-16' with a byte-order mark, 'utf-16-le'/'utf-16-be' for
    UTF-16 without one, recognised by its NUL bytes at every other position), else None."""
    for signature, kind in _BINARY_SIGNATURES.items():
        if head.startswith(signature):
            raise AecoreError(
                f"This does not look like a text CSV file: it looks like {kind}. "
                "Export the data as CSV (comma-separated values) and load that file."
            )
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    return _utf16_without_bom(head)


def _utf16_without_bom(head: bytes) -> str | None:
    """'utf-16-le' or 'utf-16-be' when the first bytes look like mostly-ASCII UTF-16 text: a
    NUL byte at (nearly) every odd position and (almost) none at the even ones, or the reverse."""
    sample = head[:4096]
    sample = sample[: len(sample) // 2 * 2]
    pairs = len(sample) // 2
    if pairs < 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    if odd >= 0.3 * pairs and even <= 0.1 * pairs:
        return "utf-16-le"
    if even >= 0.3 * pairs and odd <= 0.1 * pairs:
        return "utf-16-be"
    return None


def _decode_utf16(data: bytes, codec: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError:
        raise _utf16_error(codec) from None


def _utf16_error(codec: str) -> AecoreError:
    if codec == "utf-16":
        return _not_text_error()
    return AecoreError(
        "This file looks like UTF-16 text without a byte-order mark, but it does not read as "
        "UTF-16 throughout. Open it in a spreadsheet or text editor and save it as "
        "'CSV UTF-8', then load that file."
    )


def detect_encoding(blocks: Callable[[], Iterable[bytes]]) -> str:
    """The text encoding of a file (without BOM) whose consecutive blocks of bytes ``blocks()``
    gives: UTF-8 when all of it decodes as UTF-8, else Windows-1252 when all of it decodes so,
    else Latin-1 (which decodes anything). Whole-file and chunked reading both decide by this,
    over the whole file."""
    for name in ("utf-8", "cp1252"):
        decoder = codecs.getincrementaldecoder(name)()
        try:
            for block in blocks():
                decoder.decode(block)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return name
    return "latin-1"


def text_sample(head_text: str, total_size: int) -> str:
    """The complete lines of the file's first ``_SNIFF_BYTES`` (as text) that the delimiter and
    header are read from; refuses text full of control characters (binary data)."""
    sample = head_text
    if total_size > _SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]
    if len(_CONTROL_CHARS.findall(sample)) > max(2, len(sample) // 100):
        raise _not_text_error()
    return sample


_SCAN_BLOCK = 4 * 1024 * 1024


@dataclass
class CsvFile:
    """How to read a CSV file in chunks by ``read_csv``'s rules (see ``inspect_csv_file``):
    its bytes ``start:end`` (no BOM, no trailing blank lines) in ``encoding``."""

    path: Path
    encoding: str
    delimiter: str
    header: list[str]
    start: int
    end: int
    quoted: bool

    def open(self) -> io.BufferedReader:
        """The file's data bytes (``start:end``) as a binary stream."""
        return io.BufferedReader(_ByteRange(self.path, self.start, self.end), _SCAN_BLOCK)

    def blocks(self) -> Iterable[bytes]:
        with self.open() as handle:
            while block := handle.read(_SCAN_BLOCK):
                yield block


class _ByteRange(io.RawIOBase):
    """Bytes start:end of a file, as a raw binary stream."""

    def __init__(self, path: Path, start: int, end: int):
        self._handle = open(path, "rb")  # noqa: SIM115  (closed with the stream)
        self._handle.seek(start)
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        size = min(len(view), self._left)
        if size <= 0:
            return 0
        got = self._handle.readinto(view[:size])
        self._left -= got
        return got

    def close(self) -> None:
        self._handle.close()
        super().close()


def inspect_csv_file(path: str | os.PathLike, *, check_rows: bool = True) -> CsvFile:
    """Check a CSV file by the rules ``read_csv`` applies to the whole file, reading it in
    blocks (memory stays small): text, not binary; the encoding, decided over the whole file;
    the delimiter and header; where the data ends; and (``check_rows``) every row's field
    count, with the same error as ``read_csv``. UTF-16 files are not read in chunks: the
    codec comes back in ``encoding`` ('utf-16', 'utf-16-le', 'utf-16-be'), for the caller to
    convert (see ``utf16_to_utf8_file``)."""
    path = Path(path)
    if path.is_dir():
        raise AecoreError(f"{path} is a folder, not a CSV file.")
    if not path.is_file():
        raise AecoreError(f"File not found: {path}.")
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    if size <= len(head) and re.search(rb"[^\s\xef\xbb\xbf\xff\xfe]", head) is None:
        raise AecoreError("The file is empty.")
    utf16 = check_text_head(head)
    if utf16 is not None:
        return CsvFile(path, utf16, ",", [], 0, size, True)
    start = len(_UTF8_BOM) if head.startswith(_UTF8_BOM) else 0
    facts = CsvFile(path, "utf-8", ",", [], start, size, False)
    for block in facts.blocks():
        if b"\x00" in block:
            raise _not_text_error()
        facts.quoted = facts.quoted or b'"' in block
    if head[start:].isascii() and size <= len(head):
        encoding = "utf-8"
    else:
        encoding = detect_encoding(facts.blocks)
    facts.encoding = encoding
    sample = text_sample(head[start:].decode(encoding, errors="ignore"), size - start)
    if not sample.strip(" \t\r\n\x0b\x0c\ufeff"):
        raise AecoreError("The file is empty.")
    facts.delimiter = detect_delimiter(sample)
    header = header_names(sample, facts.delimiter)
    if header is None:
        raise AecoreError("The header could not be read as CSV.")
    facts.header = header

    def read(begin: int, stop: int) -> bytes:
        with open(path, "rb") as handle:
            handle.seek(begin)
            return handle.read(stop - begin)

    facts.end = max(start, data_end(lambda a, b: read(start + a, start + b), size - start,
                                    facts.delimiter) + start)  # fmt: skip
    if check_rows:
        _check_field_counts(facts)
    return facts


def _check_field_counts(facts: CsvFile) -> None:
    """Every row has the header's field count (pyarrow's streaming parser over the file, the
    rule of ``read_csv``'s parse), else ``read_csv``'s error for the first row that has not."""
    names = [f"c{j}" for j in range(len(facts.header))]
    read_options = pacsv.ReadOptions(
        use_threads=False, block_size=_SCAN_BLOCK, skip_rows=1, column_names=names,
        encoding="utf8" if facts.encoding == "utf-8" else facts.encoding,
    )  # fmt: skip
    parse_options = parse_options_for(facts.delimiter, facts.quoted)
    convert_options = pacsv.ConvertOptions(
        include_columns=names[:1], column_types={names[0]: pa.string()}
    )
    try:
        with facts.open() as handle, pacsv.open_csv(
            handle, read_options=read_options, parse_options=parse_options,
            convert_options=convert_options,
        ) as reader:  # fmt: skip
            for _ in reader:
                pass
    except pa.ArrowInvalid as error:
        found = _FIELD_COUNT.search(str(error))
        if not found:
            return  # not about field counts: the chunked parse reports it
        size = facts.end - facts.start
        with io.TextIOWrapper(facts.open(), encoding=facts.encoding, newline="") as text:
            located = locate_bad_row(text, facts.delimiter, size)
        if located is not None:
            raise located from None
        raise _field_count_error(b"", facts.delimiter, found.group(0)) from None


def utf16_to_utf8_file(path: str | os.PathLike, codec: str, target: str | os.PathLike) -> None:
    """Write a UTF-16 file (``codec`` from ``inspect_csv_file``) as UTF-8 to ``target``, in
    blocks; refuses one that does not decode, as ``read_csv`` does."""
    decoder = codecs.getincrementaldecoder(codec)()
    try:
        with open(path, "rb") as source, open(target, "wb") as sink:
            while block := source.read(_SCAN_BLOCK):
                sink.write(decoder.decode(block).encode("utf-8"))
            sink.write(decoder.decode(b"", final=True).encode("utf-8"))
    except UnicodeDecodeError:
        raise _utf16_error(codec) from None


def _not_text_error() -> AecoreError:
    return AecoreError(
        "This does not look like a text CSV file: it contains binary data. "
        "Export the data as CSV (comma-separated values) and load that file."
    )


def _trim_trailing_blank_lines(data: bytes, delimiter: str) -> bytes:
    """Drop lines at the end that hold only spaces or delimiters (spreadsheet exports add them).

    The last real row keeps its own trailing delimiters (empty last fields).
    """
    cut = data_end(lambda start, stop: data[start:stop], len(data), delimiter)
    return data if cut == len(data) else data[:cut]


def data_end(read: Callable[[int, int], bytes], size: int, delimiter: str) -> int:
    """Where a file's data ends: the byte after the line end of its last line that holds more
    than spaces and delimiters (``read(start, stop)`` gives the file's bytes start:stop; for a
    file in an ASCII-compatible encoding). Whole-file and chunked reading both stop there."""
    blank = b" \t\r\n\x0b\x0c" + delimiter.encode()
    end = size
    while end > 0:
        start = max(0, end - 65536)
        stripped = read(start, end).rstrip(blank)
        if stripped:
            last = start + len(stripped)
            break
        end = start
    else:
        return size
    # The line end after the last real content: within the blank tail, so a short read finds it.
    tail = read(last, min(size, last + 65536))
    while True:
        newline = tail.find(b"\n")
        if newline >= 0:
            return last + newline + 1
        if last + len(tail) >= size or not tail:
            return size
        last += len(tail)
        tail = read(last, min(size, last + 65536))


def _field_counts(sample: str, delimiter: str, limit: int = 200) -> list[int]:
    reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
    counts = []
    try:
        for row in reader:
            if row:
                counts.append(len(row))
            if len(counts) >= limit:
                break
    except csv.Error:
        return []
    return counts


def detect_delimiter(sample: str) -> str:
    """Sniff among comma, semicolon, tab and pipe; check the guess against field counts."""
    scores = {}
    for delimiter in _DELIMITERS:
        counts = _field_counts(sample, delimiter)
        if not counts or counts[0] < 2:
            continue
        rows = counts[1:]
        consistency = sum(count == counts[0] for count in rows) / len(rows) if rows else 1.0
        scores[delimiter] = (consistency, counts[0])
    head = "".join(sample.splitlines(keepends=True)[:20])
    try:
        sniffed = csv.Sniffer().sniff(head, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        sniffed = None
    if sniffed in scores and scores[sniffed][0] >= 0.8:
        return sniffed
    if scores:
        return max(scores, key=lambda delimiter: scores[delimiter])
    return ","


def header_names(sample: str, delimiter: str) -> list[str] | None:
    """Cleaned header names from the sample; raise on duplicates. ``None`` if unparseable."""
    try:
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
        raw = next(row for row in reader if row)
    except (StopIteration, csv.Error):
        return None
    return _clean_names(raw)


def _clean_names(raw: Iterable[str]) -> list[str]:
    names = [str(name).strip() for name in raw]
    names = [name if name else f"Unnamed: {position}" for position, name in enumerate(names)]
    counts = pd.Series(names).value_counts(sort=False)
    duplicated = [name for name, count in counts.items() if count > 1]
    if duplicated:
        listed = ", ".join(repr(name) for name in duplicated)
        raise AecoreError(
            f"Duplicate column names: {listed}. Every column needs its own name; "
            "rename the duplicates and load the file again."
        )
    return names


class _ArrowFieldCountError(Exception):
    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def _parse_with_arrow(payload: bytes, delimiter: str) -> pd.DataFrame:
    """Multithreaded parse with pyarrow; dates and times stay text, as written in the file.

    Column types are read off the first block and given to the full parse (no per-block type
    inference); should a later row not fit them, the file is parsed again with inference.
    """
    read_options = pacsv.ReadOptions(use_threads=True, block_size=_BLOCK_SIZE)
    parse_options = parse_options_for(delimiter, b'"' in payload)
    try:
        with pacsv.open_csv(
            pa.BufferReader(payload),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=_PEEK_BLOCK_SIZE),
            parse_options=parse_options,
            convert_options=convert_options({}),
        ) as reader:
            schema = reader.schema
        names = _clean_names(schema.names)
        text = {field.name: pa.string() for field in schema if pa.types.is_temporal(field.type)}
        peeked = {field.name: field.type for field in schema if is_plain_type(field.type)}
        attempts = [{**peeked, **text}, text] if peeked else [text]
        table = None
        while table is None:
            forced = attempts.pop(0)
            try:
                table = pacsv.read_csv(
                    pa.BufferReader(payload),
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=convert_options(forced),
                )
            except pa.ArrowInvalid as error:
                if not attempts or _FIELD_COUNT.search(str(error)):
                    raise
                continue
            late = {f.name: pa.string() for f in table.schema if pa.types.is_temporal(f.type)}
            if late:
                attempts = [{**forced, **late}]
                table = None
    except pa.ArrowInvalid as error:
        match = _FIELD_COUNT.search(str(error))
        if match:
            raise _ArrowFieldCountError(match.group(0)) from error
        raise
    for position, field in enumerate(table.schema):
        if pa.types.is_null(field.type):
            # Entirely empty columns become float NaN, as pandas reads them.
            table = table.set_column(position, field.name, pa.nulls(len(table), pa.float64()))
    table = table.rename_columns(names)
    if all(column.num_chunks > 1 for column in table.columns):
        # Large files: each column's parse blocks are joined into its own (writable) array,
        # much cheaper than interleaving all columns into one 2-D block; the parse blocks are
        # freed column by column as it goes, and the memory they held goes back to the system
        # (pyarrow's allocator would otherwise keep it: a quarter of a GB per million rows).
        frame = table.to_pandas(split_blocks=True, self_destruct=True)
        del table
        pa.default_memory_pool().release_unused()
        return frame
    # One block: pyarrow would hand pandas read-only views of its memory, so copy.
    return table.to_pandas()


_FIELD_COUNT = re.compile(r"Expected \d+ columns, got \d+.*", flags=re.S)


def is_plain_type(data_type: pa.DataType) -> bool:
    """Numbers and booleans: types the first block can fix for the rest of the file."""
    return pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or (
        pa.types.is_boolean(data_type)
    )


def parse_options_for(delimiter: str, quoted: bool) -> pacsv.ParseOptions:
    """How pyarrow splits the file into fields: the same for a whole read and a chunked one."""
    return pacsv.ParseOptions(
        delimiter=delimiter,
        quote_char='"' if quoted else False,
        newlines_in_values=quoted,
        ignore_empty_lines=True,
    )


def convert_options(column_types: dict[str, pa.DataType]) -> pacsv.ConvertOptions:
    """How pyarrow turns fields into values (missing cells, forced types): the same for a
    whole read and a chunked one."""
    return pacsv.ConvertOptions(
        column_types=column_types,
        null_values=NULL_VALUES,
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
    )


def _parse_with_pandas(payload: bytes, delimiter: str, header: list[str] | None) -> pd.DataFrame:
    """Fallback for what pyarrow cannot parse (e.g. one value larger than a parse block)."""
    try:
        frame = pd.read_csv(
            io.BytesIO(payload),
            sep=delimiter,
            header=0,
            keep_default_na=False,
            na_values=NULL_VALUES,
            skip_blank_lines=True,
            low_memory=False,
            encoding="utf-8",
        )
    except pd.errors.ParserError as error:
        raise _field_count_error(payload, delimiter, str(error)) from error
    except (ValueError, UnicodeDecodeError, csv.Error) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AecoreError(f"This file could not be read as CSV: {reason}") from error
    raw = header if header is not None and len(header) == frame.shape[1] else frame.columns
    frame.columns = _clean_names(raw)
    if len(frame):
        # pandas pads short rows silently; pyarrow and this reader treat them as an error.
        error = _locate_bad_row(payload, delimiter)
        if error is not None:
            raise error
    return frame


def _field_count_error(payload: bytes, delimiter: str, detail: str) -> AecoreError:
    located = _locate_bad_row(payload, delimiter)
    if located is not None:
        return located
    found = re.search(r"Expected (\d+) columns, got (\d+)(?::\s*(.*))?", detail, flags=re.S)
    if found:
        expected, got = int(found.group(1)), int(found.group(2))
        text = (found.group(3) or "").strip().splitlines()
        near = f" (row: {text[0][:80]!r})" if text else ""
        return AecoreError(
            f"A row has {_fields(got)} but the header has {expected}{near}. "
            f"Check for an unquoted {_DELIMITER_NAMES[delimiter]} inside a value."
        )
    reason = detail.strip().splitlines()[0][:200] if detail.strip() else "unknown problem"
    return AecoreError(f"This file could not be read as CSV: {reason}")


def _locate_bad_row(payload: bytes, delimiter: str) -> AecoreError | None:
    """The first row whose field count differs from the header's, by physical line number."""
    text = payload.decode("utf-8", errors="replace")
    return locate_bad_row(io.StringIO(text, newline=""), delimiter, len(text))


def locate_bad_row(lines: Iterable[str], delimiter: str, size: int) -> AecoreError | None:
    """The error for the first row of ``lines`` (text, read with newline="") whose field
    count differs from the header's, by physical line number; None when there is none. Whole
    and chunked reading report a ragged row by this one message. ``size``: the text's length
    at most (the longest field allowed)."""
    reader = csv.reader(lines, delimiter=delimiter)
    expected = None
    start = 1
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, size))
    try:
        for row in reader:
            if row and expected is None:
                expected = len(row)
            elif row and len(row) != expected:
                span = reader.line_num - start + 1
                hint = (
                    f" The row runs over {span} lines: check for an unbalanced quote (\")."
                    if span > 1
                    else f" Check for an unquoted {_DELIMITER_NAMES[delimiter]} inside a value"
                    " or a missing value."
                )
                return AecoreError(
                    f"Line {start} has {_fields(len(row))} but the header has {expected}.{hint}"
                )
            start = reader.line_num + 1
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(limit)
    return None


def _fields(count: int) -> str:
    return "1 field" if count == 1 else f"{count} fields"


def _finish(frame: pd.DataFrame, delimiter: str) -> pd.DataFrame:
    if len(frame) == 0:
        raise AecoreError("The file has a header but no data rows.")
    if delimiter == ";":
        frame = _read_decimal_commas(frame)
    return frame


def _read_decimal_commas(frame: pd.DataFrame) -> pd.DataFrame:
    """Semicolon files from European spreadsheets write 1,5 for 1.5: read those as numbers."""
    converted = {}
    for column in frame.columns:
        series = frame[column]
        if column_kind(series) != "text":
            continue
        if decimal_comma_verdict(series):
            converted[column] = decimal_comma_numbers(series)
    return frame.assign(**converted) if converted else frame


_DECIMAL_COMMA = r"[+-]?(?:\d+|\d*,\d+)(?:[eE][+-]?\d+)?"


def decimal_comma_verdict(series: pd.Series, *, strict: bool = False) -> bool | None:
    """For a text column of a semicolon file: True when every present value is a number and
    some are written with a decimal comma (1,5), False when a present value is not such a
    number, else None (nothing present, or no comma; with ``strict`` a value that is not such
    a number still gives False). A column read in chunks is converted when a chunk says True
    and none says False: the verdict a read of the whole file gives."""
    present = series.dropna().astype(str).str.strip()
    if present.empty:
        return None
    has_comma = bool(present.str.contains(",", regex=False).any())
    if not has_comma and not strict:
        return None
    if not present.str.fullmatch(_DECIMAL_COMMA).all():
        return False
    return True if has_comma else None


def decimal_comma_numbers(series: pd.Series) -> pd.Series:
    """A decimal-comma column (see ``decimal_comma_verdict``) as float64 numbers."""
    text = series.astype("str").str.strip().str.replace(",", ".", regex=False)
    return pd.to_numeric(text).astype("float64")
