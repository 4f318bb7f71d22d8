"""Reading analysts' CSV files and inferring what each column is for.

Reading is strict about structure (one clear error per problem) and faithful about values.
Role inference looks at a sample for speed, but every check that needs all rows (constant,
unique, entirely empty) uses all rows, so sampling never changes a column's role.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from .errors import AecoreError
from .preprocessing import MAX_CATEGORIES as ENCODED_CATEGORIES
from .preprocessing import SENTINEL_SPREADS, usable_range
from .roles import ROLE_NAMES, ColumnRoles

MIN_TRAIN_ROWS = 30
SAMPLE_ROWS = 20_000
# A text column with more distinct values than this is ignored (with the reason); up to it, it
# is a categorical input whose ENCODED_CATEGORIES most frequent values get their own column.
MAX_CATEGORIES = 500
# A numeric column named like a label is the label when it holds at most this many whole numbers.
MAX_NUMERIC_LABEL_VALUES = 50
TIMESTAMP_SHARE = 0.95

_DELIMITERS = ",;\t|"
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_SNIFF_BYTES = 64 * 1024
_BLOCK_SIZE = 4 * 1024 * 1024
_PEEK_BLOCK_SIZE = 1024 * 1024
_UTF8_BOM = b"\xef\xbb\xbf"
# pyarrow's defaults, written out so the pandas fallback reads missing cells the same way.
# "None" is deliberately absent: in label columns it often means "no attack", not missing.
_NULL_VALUES = [
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

# Label inference (see _label_evidence). Names are compared after _name_tokens: lower case,
# camelCase and separators split into "_"-joined tokens ("isFraud" -> "is_fraud").
_LABEL_NAMES = {
    "label", "labels", "class", "target", "y", "y_true", "ground_truth", "truth",
    "attack", "attacks", "attack_type", "attack_cat", "attack_class", "anomaly", "anomalies",
    "is_anomaly", "anomalous", "outlier", "is_outlier", "fraud", "is_fraud", "fraudulent",
    "malicious", "is_malicious", "intrusion",
}  # fmt: skip
# The usual names of a label column: preferred when several columns look like labels.
_CANONICAL_LABEL_NAMES = {"label", "labels", "class", "target", "y", "y_true", "ground_truth"}
# A token anywhere in the name ("attack_name", "class_label"): a label when it holds text, or
# a yes/no flag; a number named so ("n_attacks") can be a count, so it needs 0/1 values.
_LABEL_TOKENS = {
    "label", "labels", "attack", "attacks", "anomaly", "anomalies", "anomalous", "outlier",
    "outliers", "fraud", "fraudulent", "malicious", "intrusion", "groundtruth",
}  # fmt: skip
# is_/has_ + one of these ("is_failure", "has_malware") names a flag that marks anomalies.
_ANOMALY_FLAG_WORDS = _LABEL_TOKENS | {
    "abnormal", "failure", "failed", "fault", "faulty", "defect", "defective", "bad", "spam",
    "malware", "threat", "compromised", "incident", "alarm", "suspicious", "bot", "attacked",
}  # fmt: skip
# Weak names: a label only if the values look like one too (0/1, normal/attack words, or one
# dominant value among a few dozen).
_WEAK_LABEL_NAMES = {"outcome", "verdict", "result", "diagnosis"}
_FLAG_PREFIXES = ("is", "has", "was")
# Cell values that mark a column as a label on their own (no name needed).
_LABEL_NORMAL_VALUES = {"normal", "benign", "legit", "legitimate", "nominal"}
_LABEL_ANOMALY_VALUES = {
    "attack", "anomaly", "anomalous", "abnormal", "malicious", "fraud", "fraudulent", "outlier",
    "intrusion", "malware",
}  # fmt: skip
_BINARY_TEXT = ({"true", "false"}, {"yes", "no"}, {"y", "n"}, {"t", "f"})
DOMINANT_SHARE = 0.5  # "one dominant value": the most frequent holds at least half the rows
DOMINANT_MAX_VALUES = 50
_TIME_NAMES = {"time", "timestamp", "date", "datetime", "ts", "date_time"}
_TIME_SUFFIXES = ("_time", "_at", "_date", "_timestamp", "_datetime", "_ts")
_ID_NAMES = {"id", "index", "idx", "uuid", "guid", "row", "rownum", "row_number", "record_id"}
_DATE_FORMATS = (
    "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y",
    "%m/%d/%Y %H:%M:%S", "%m/%d/%Y %H:%M", "%m/%d/%Y",
    "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%d.%m.%Y",
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y",
    "%d %b %Y %H:%M:%S", "%d %b %Y", "%b %d %Y", "%d/%b/%Y:%H:%M:%S",
)  # fmt: skip
_NORMAL_WORDS = {
    "normal", "benign", "ok", "no", "false", "0", "none", "legit", "legitimate", "clean",
    "nominal", "negative", "background",
}  # fmt: skip
_SUMMARY_COLUMNS = [
    "column", "role", "dtype", "missing", "missing_share", "distinct",
    "min", "max", "mean", "std", "example", "note",
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_csv(source: Any, *, max_bytes: int | None = None) -> pd.DataFrame:
    """Read a CSV from a path, raw bytes or a binary file object (e.g. Streamlit's upload).

    Detects the encoding (UTF-8, UTF-8 with BOM, Windows-1252, Latin-1) and the delimiter
    (comma, semicolon, tab, pipe); every unreadable input raises one clear ``AecoreError``.
    """
    data = _read_source(source, max_bytes)
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
    parse_options = pacsv.ParseOptions(
        delimiter=facts.delimiter,
        quote_char='"' if facts.quoted else False,
        newlines_in_values=facts.quoted,
        ignore_empty_lines=True,
    )
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
    parse_options = pacsv.ParseOptions(
        delimiter=delimiter,
        quote_char='"' if b'"' in payload else False,
        newlines_in_values=b'"' in payload,
        ignore_empty_lines=True,
    )
    try:
        with pacsv.open_csv(
            pa.BufferReader(payload),
            read_options=pacsv.ReadOptions(use_threads=False, block_size=_PEEK_BLOCK_SIZE),
            parse_options=parse_options,
            convert_options=_convert_options({}),
        ) as reader:
            schema = reader.schema
        names = _clean_names(schema.names)
        text = {field.name: pa.string() for field in schema if pa.types.is_temporal(field.type)}
        peeked = {field.name: field.type for field in schema if _is_plain_type(field.type)}
        attempts = [{**peeked, **text}, text] if peeked else [text]
        table = None
        while table is None:
            forced = attempts.pop(0)
            try:
                table = pacsv.read_csv(
                    pa.BufferReader(payload),
                    read_options=read_options,
                    parse_options=parse_options,
                    convert_options=_convert_options(forced),
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


def _is_plain_type(data_type: pa.DataType) -> bool:
    """Numbers and booleans: types the first block can fix for the rest of the file."""
    return pa.types.is_integer(data_type) or pa.types.is_floating(data_type) or (
        pa.types.is_boolean(data_type)
    )


def _convert_options(column_types: dict[str, pa.DataType]) -> pacsv.ConvertOptions:
    return pacsv.ConvertOptions(
        column_types=column_types,
        null_values=_NULL_VALUES,
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
            na_values=_NULL_VALUES,
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
        if _kind(series) != "text":
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


# --------------------------------------------------------------------------------------------
# Column roles
# --------------------------------------------------------------------------------------------


def infer_roles(
    frame: pd.DataFrame, *, overrides: dict[str, str] | None = None
) -> ColumnRoles:
    """Guess each column's role (feature, categorical, time, label, id, ignore); overrides win.

    The label is the column with the strongest label evidence (see ``_label_evidence``): a
    label name beats a weak name, which beats label-like values alone; ties go to the first
    column. Any other column that looks like a label is ignored (it could give the answer
    away); the analyst can still make it an input, and ``label_like_inputs`` then names it.
    """
    _check_unique_columns(frame)
    overrides = _checked_overrides(frame, overrides)
    sample = _sample(frame)
    mapping: dict[str, str] = {}
    time_column = next((c for c, role in overrides.items() if role == "time"), None)
    label_column = next((c for c, role in overrides.items() if role == "label"), None)
    evidence = {
        column: _label_evidence(column, frame[column])
        for column in frame.columns
        if column not in overrides
    }
    if label_column is None:
        candidates = [(found.rank, column) for column, found in evidence.items() if found]
        if candidates:
            best = max(rank for rank, _ in candidates)
            label_column = next(column for rank, column in candidates if rank == best)
    for column in frame.columns:
        if column in overrides:
            mapping[column] = overrides[column]
            continue
        role, _ = _infer_column(
            column,
            frame[column],
            sample[column],
            time_column,
            label_column is not None and label_column != column,
            evidence=evidence[column],
        )
        if role == "time":
            time_column = column
        mapping[column] = role
    return ColumnRoles.from_mapping(mapping)


def role_notes(frame: pd.DataFrame, roles: ColumnRoles) -> dict[str, str]:
    """A short reason per column for its role, and what will happen to its missing values.

    A model input that looks like a label says so (see ``label_like_inputs``).
    """
    _check_unique_columns(frame)
    sample = _sample(frame)
    notes = {}
    for column in frame.columns:
        series = frame[column]
        role = roles.role_of(column)
        other_time = roles.time if roles.time != column else None
        label_taken = roles.label is not None and roles.label != column
        evidence = _label_evidence(column, series)
        inferred, reason = _infer_column(
            column, series, sample[column], other_time, label_taken, evidence=evidence
        )
        if inferred != role:
            reason = _chosen_reason(role, series)
        missing = int(series.isna().sum())
        if role in ("feature", "categorical") and 0 < missing < len(series):
            share = _percent(missing / len(series))
            how = " with the median" if role == "feature" else ""
            reason = f"{reason}; {share} missing: will be imputed{how}"
        if role == "feature":
            reason += _sentinel_note(series) + _out_of_range_note(series)
        if role in ("feature", "categorical") and evidence is not None:
            reason = f"{reason}. Warning: {_label_warning(evidence)}"
        notes[column] = reason
    return notes


_SENTINEL_CODES = (-999_999, -99_999, -9_999, -999, -99, 999, 9_999, 99_999, 999_999)


def _sentinel_note(series: pd.Series) -> str:
    """A note when a numeric column holds a code such as -999 or 9999 that looks like "missing":
    on at least 0.5% of rows, outside the range of every other value, and either of the other
    sign or further from them than their interquartile range."""
    if _kind(series) != "numeric":
        return ""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    values = values[~np.isnan(values)]
    if len(values) < 20:
        return ""
    extremes = {float(values.min()), float(values.max())}  # a code lies outside the rest
    for code in (code for code in _SENTINEL_CODES if code in extremes):
        hits = values == code
        share = float(hits.mean())
        if share < 0.005 or share > 0.5:
            continue
        rest = values[~hits]
        low, high = float(rest.min()), float(rest.max())
        if low <= code <= high:
            continue
        q1, q3 = np.percentile(rest, [25, 75])
        gap = low - code if code < low else code - high
        other_sign = (code < 0 <= low) or (code > 0 >= high)
        if other_sign or gap > max(q3 - q1, 1e-12):
            return (
                f"; {code} on {_percent(share)} of rows looks like a code for a missing value: "
                "as a number it distorts the scaling (empty those cells to have them imputed)"
            )
    return ""


def _out_of_range_note(series: pd.Series) -> str:
    """A note when a numeric input holds infinite cells or values far out of range (3.4e38
    among ordinary numbers), by the rule training applies (``preprocessing.usable_range``):
    treated as missing and imputed in the training rows, the column refused when they are most
    of it."""
    if _kind(series) != "numeric":
        return ""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    present = ~np.isnan(values)
    infinite = np.isinf(values)
    finite = values[present & ~infinite]
    # Every finite value lies within SENTINEL_SPREADS of the median when their span is smaller.
    if not infinite.any() and (not finite.size or np.ptp(finite) <= SENTINEL_SPREADS):
        return ""
    low, high = usable_range(values)
    far = present & ~infinite & ~((values >= low) & (values <= high))
    n_infinite, n_far = int(infinite.sum()), int(far.sum())
    if n_infinite + n_far == 0:
        return ""
    parts = [f"{n_infinite:,} infinite"] if n_infinite else []
    if n_far:
        parts.append(f"{n_far:,} far out of range")
    what = " and ".join(parts) + " value(s)" + (f" (e.g. {values[far][0]:.4g})" if n_far else "")
    if 2 * (n_infinite + n_far) > int(present.sum()):
        return f"; {what}, most of the column: training refuses it (fix them or ignore it)"
    return (
        f"; {what}: treated as missing and imputed with the median in training, flagged "
        "when scored"
    )


def label_like_inputs(frame: pd.DataFrame, roles: ColumnRoles) -> dict[str, str]:
    """``{column: why it looks like a label}`` for every model input that looks like a label.

    Such an input can give the answer away: the model learns the label instead of normal
    behaviour, and its scores and metrics look better or worse than they are. Pages show these
    as a warning; nothing is changed here.
    """
    found = {}
    for column in roles.inputs:
        if column not in frame.columns:
            continue
        evidence = _label_evidence(column, frame[column])
        if evidence is not None:
            found[column] = evidence.why
    return found


def label_like_message(found: dict[str, str]) -> str | None:
    """One warning (Markdown) naming the inputs of ``label_like_inputs``; ``None`` if none."""
    if not found:
        return None
    named = ", ".join(f"**{column}** ({why})" for column, why in found.items())
    verb = "looks like a label but is" if len(found) == 1 else "look like labels but are"
    return (
        f"{named} {verb} a model input: the model can learn the answer from it, so its scores "
        "and metrics would mislead. Make it the label, or ignore it, unless it is a real "
        "measurement."
    )


def _label_warning(evidence: _LabelEvidence) -> str:
    return (
        f"this looks like a label ({evidence.why}); as a model input it can give the answer "
        "away. Make it the label, or ignore it, unless you are sure it is a real measurement."
    )


def _chosen_reason(role: str, series: pd.Series) -> str:
    reasons = {
        "feature": "marked as a numeric feature",
        "categorical": "marked as categorical: one-hot encoded",
        "time": "marked as the time column: used to order rows",
        "label": "marked as the label: used to evaluate, never as a model input",
        "id": "marked as an identifier: carried into scored views and exports, never a model "
        "input",
        "ignore": "marked as ignore: not used",
    }
    reason = reasons[role]
    if role == "feature" and _kind(series) == "text":
        reason += ", but holds text"
    if role == "categorical":
        distinct = _distinct(series)
        if distinct > ENCODED_CATEGORIES:
            reason = f"marked as categorical: {_many_categories(distinct)}"
    return reason


def _many_categories(distinct: int) -> str:
    """What the encoding does with a categorical column of more than ENCODED_CATEGORIES values
    (short: it has to fit beside the column on the Data page). "Top" means the most frequent in
    the training rows."""
    return f"top {ENCODED_CATEGORIES} one-hot, {distinct - ENCODED_CATEGORIES:,} more as 'other'"


def _check_unique_columns(frame: pd.DataFrame) -> None:
    duplicated = frame.columns[frame.columns.duplicated()].unique().tolist()
    if duplicated:
        listed = ", ".join(repr(name) for name in duplicated)
        raise AecoreError(f"Duplicate column names: {listed}. Every column needs its own name.")


def _checked_overrides(frame: pd.DataFrame, overrides: dict[str, str] | None) -> dict[str, str]:
    overrides = dict(overrides or {})
    unknown_columns = [column for column in overrides if column not in frame.columns]
    unknown_roles = [f"{role!r} (for {column!r})" for column, role in overrides.items()
                     if role not in ROLE_NAMES]  # fmt: skip
    problems = []
    if unknown_columns:
        problems.append(
            "these columns are not in the data: " + ", ".join(repr(c) for c in unknown_columns)
        )
    if unknown_roles:
        problems.append(
            f"unknown roles {', '.join(unknown_roles)}; choose one of {', '.join(ROLE_NAMES)}"
        )
    if problems:
        raise AecoreError("Cannot apply the chosen roles: " + "; ".join(problems) + ".")
    return overrides


def _sample(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) <= SAMPLE_ROWS:
        return frame
    rows = np.sort(np.random.default_rng(0).choice(len(frame), SAMPLE_ROWS, replace=False))
    return frame.take(rows)


def _normalised(name: Any) -> str:
    return re.sub(r"[\s\-.]+", "_", str(name).strip().lower())


def _name_tokens(name: Any) -> list[str]:
    """Lower-case tokens of a column name: ``"isFraud"`` and ``"is-fraud"`` give is, fraud."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name).strip())
    return [token for token in re.split(r"[^a-z0-9]+", text.lower()) if token]


@dataclass(frozen=True)
class _LabelEvidence:
    """Why a column looks like a label: ``rank`` orders candidates (higher wins), ``why`` is
    the reason in words, ``values`` a short description of what it holds."""

    rank: int
    why: str
    values: str


def _label_evidence(name: Any, series: pd.Series) -> _LabelEvidence | None:
    """Does the column look like a label, and why; ``None`` when it does not.

    The rule, strongest first (``rank``):

    5. named ``label``, ``class``, ``target``, ``y``, ... exactly, holding label-like values;
    4. named like a label otherwise (``attack``, ``anomaly``, ``outlier``, ``fraud``,
       ``is_fraud``, ... exactly) and holding label-like values;
    3. a label word inside the name (``attack_name``, ``Label_text``) or a flag named
       ``is_``/``has_`` + an anomaly word (``is_attack``, ``isFraud``, ``has_malware``): as text
       with label-like values, or (numbers, yes/no) with two values, such as 0/1;
    2. a weak name (``outcome``, ``verdict``, ``result``, ``diagnosis``) whose values also look
       like a label: 0/1 or yes/no, normal/attack words, or one value on at least half the rows
       among at most 50;
    1. no name at all, but text values that only labels hold: ``normal``/``benign``/``legit``
       or ``attack``/``anomaly``/``malicious``/``fraud``/... beside other values.

    Label-like values: text or yes/no with any number of classes, as long as the values repeat
    (at most half as many distinct values as rows, or at most 20); numbers only as whole numbers
    with at most ``MAX_NUMERIC_LABEL_VALUES`` values. A plain 0/1 column without such a name
    (``is_weekend``, ``has_discount``, ``vip``) is never taken for the label: yes/no flags are
    common measurements, so values alone are not enough there.
    """
    kind = _kind(series)
    tokens = _name_tokens(name)
    joined = "_".join(tokens)
    flag_word = len(tokens) >= 2 and tokens[0] in _FLAG_PREFIXES
    named_at_all = (
        joined in _LABEL_NAMES
        or joined in _WEAK_LABEL_NAMES
        or _LABEL_TOKENS.intersection(tokens)
        or (flag_word and _ANOMALY_FLAG_WORDS.intersection(tokens[1:]))
    )
    if not named_at_all:
        if kind not in ("text", "other"):
            return None  # numbers need a name; skip the value checks (fast on wide files)
        # Unnamed text needs label words: look for them in the usual sample first (fast).
        sample = _sample(series.to_frame()).iloc[:, 0].dropna()
        try:
            seen = set(sample.astype(str).str.strip().str.lower().unique())
        except TypeError:
            return None
        if not seen & (_LABEL_NORMAL_VALUES | _LABEL_ANOMALY_VALUES):
            return None
    present = series.dropna()
    if present.empty:
        return None
    values = _label_values(present, kind)
    if values is None:
        return None
    distinct, counts, description = values
    text = {str(value).strip().lower() for value in counts.index}
    binary = distinct == 2 and (
        kind in ("bool", "bool_text")
        or (kind == "numeric" and set(pd.to_numeric(counts.index)) == {0, 1})
        or any(text == pair for pair in _BINARY_TEXT)
    )
    words = sorted(text & (_LABEL_NORMAL_VALUES | _LABEL_ANOMALY_VALUES))
    is_text = kind in ("text", "other")
    if joined in _LABEL_NAMES:
        rank = 5 if joined in _CANONICAL_LABEL_NAMES else 4
        return _LabelEvidence(rank, "named like a label", description)
    named = _LABEL_TOKENS.intersection(tokens) or (
        flag_word and _ANOMALY_FLAG_WORDS.intersection(tokens[1:])
    )
    if named and (is_text or binary):
        return _LabelEvidence(3, "named like a label", description)
    if joined in _WEAK_LABEL_NAMES:
        dominant = distinct <= DOMINANT_MAX_VALUES and counts.iloc[0] >= DOMINANT_SHARE * len(
            present
        )
        if binary:
            return _LabelEvidence(2, "named like a label and holds two values", description)
        if words and distinct >= 2:
            return _LabelEvidence(2, f"named like a label and holds {words[0]!r}", description)
        if dominant and distinct >= 2:
            return _LabelEvidence(
                2, f"named like a label and mostly {_format_value(counts.index[0])!r}",
                description,
            )  # fmt: skip
        return None
    if is_text and words and distinct >= 2:
        return _LabelEvidence(1, f"holds {words[0]!r} beside other values", description)
    return None


def _label_values(present: pd.Series, kind: str) -> tuple[int, pd.Series, str] | None:
    """(distinct, value counts most frequent first, a description) when the values could be
    labels; ``None`` when they cannot (measurements, text different on most rows)."""
    if kind == "datetime":
        return None
    if kind == "numeric":
        numbers = pd.to_numeric(present, errors="coerce")
        if numbers.isna().any() or not np.all(np.mod(numbers.to_numpy(dtype=float), 1) == 0):
            return None
        counts = numbers.value_counts()
        if len(counts) > MAX_NUMERIC_LABEL_VALUES:
            return None
    else:
        try:
            counts = present.value_counts()
        except TypeError:
            counts = present.astype(str).value_counts()
    distinct = len(counts)
    if distinct > 20 and distinct > 0.5 * len(present):
        return None
    shown = ", ".join(_format_value(value) for value in counts.index[:3])
    more = ", ..." if distinct > 3 else ""
    noun = "value" if distinct == 1 else "values"
    return distinct, counts, f"{distinct:,} {noun}: {shown}{more}"


def _time_name(name: Any) -> str | None:
    """``"exact"`` for names like ``time``, ``"suffix"`` for ``created_at``, else ``None``."""
    normalised = _normalised(name)
    if normalised in _TIME_NAMES:
        return "exact"
    if normalised.endswith(_TIME_SUFFIXES):
        return "suffix"
    return None


def _is_id_name(name: Any) -> bool:
    text = str(name).strip()
    normalised = _normalised(text)
    return (
        normalised in _ID_NAMES
        or normalised.endswith("_id")
        or re.search(r"[a-z](Id|ID)$", text) is not None
        or text.startswith("Unnamed:")
    )


def _kind(series: pd.Series) -> str:
    """``bool``, ``numeric``, ``datetime``, ``text``, ``bool_text`` (bools and missing) or
    ``other``."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return "text"
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred == "boolean":
            return "bool_text"
        if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
            return "numeric"
        if inferred in ("datetime", "datetime64", "date"):
            return "datetime"
        return "text"
    if pd.api.types.is_string_dtype(dtype):
        return "text"
    return "other"


_UNSET = object()


def _infer_column(
    name: Any,
    series: pd.Series,
    sample: pd.Series,
    time_column: Any,
    label_taken: bool,
    *,
    evidence: Any = _UNSET,
) -> tuple[str, str]:
    """The inferred role of one column and the reason, given the time and label already chosen."""
    rows = len(series)
    present = rows - int(series.isna().sum())
    if present == 0:
        return "ignore", "entirely empty: ignored"
    kind = _kind(series)
    sample_present = sample.dropna()

    if evidence is _UNSET:
        evidence = _label_evidence(name, series)
    if evidence is not None and label_taken:
        return "ignore", (
            f"looks like a second label column ({evidence.why}; {evidence.values}): ignored, "
            "so that no model input gives the answer away"
        )
    if evidence is not None:
        return "label", (
            f"label ({evidence.why}; {evidence.values}): used to evaluate, never as a model input"
        )

    constant = _constant_value(series, sample_present, kind)
    if constant is not _NOT_CONSTANT:
        return "ignore", f"constant (always {_format_value(constant)}): ignored"

    time_hint = _time_name(name)
    looks_like_time = _looks_like_time(kind, sample_present, series, time_hint)
    if looks_like_time and time_column is None:
        return "time", looks_like_time
    if looks_like_time and kind in ("text", "datetime"):
        return "ignore", f"timestamps, but {time_column!r} already orders the rows: ignored"

    if kind in ("numeric", "bool"):
        if kind == "numeric" and _is_id_name(name) and _is_unique_integer(series):
            return "id", _ID_NOTE + " (a different whole number on every row, named like an id)"
        flag = _generic_flag(name, series, kind)
        if kind == "bool":
            return "feature", "true/false: model input as 0/1" + flag
        return "feature", "numeric: model input" + flag

    if kind in ("text", "bool_text"):
        distinct = _distinct(series, kind)
        if distinct >= 2 and distinct >= 0.95 * present:
            if sample_present.astype(str).str.strip().str.contains(" ", regex=False).mean() > 0.5:
                return "ignore", "free text, different on (nearly) every row: ignored"
            return "id", _ID_NOTE + " (different text on (nearly) every row)"
        mostly_numbers = _mostly_numbers(sample_present)
        if mostly_numbers is not None:
            return "ignore", (
                f"mostly numbers, but holds text such as {mostly_numbers!r}: ignored "
                "(fix those cells in the file to use it as a feature)"
            )
        if distinct > ENCODED_CATEGORIES and distinct > 0.5 * present:
            if sample_present.astype(str).str.contains(" ", regex=False).mean() > 0.5:
                return "ignore", f"free text ({distinct:,} distinct values): ignored"
            return "ignore", (
                f"text with {distinct:,} distinct values ({_percent(distinct / present)} of rows): "
                "too varied to be categories, ignored"
            )
        if distinct > MAX_CATEGORIES:
            return "ignore", (
                f"text with {distinct:,} distinct values: too many categories, ignored "
                f"(mark it categorical to use it anyway: {_many_categories(distinct)})"
            )
        if distinct > ENCODED_CATEGORIES:
            return "categorical", f"text with {distinct:,} categories: {_many_categories(distinct)}"
        return "categorical", f"text with {distinct} categories: one-hot encoded"

    if kind == "datetime":
        return "ignore", f"dates/times, but {time_column!r} already orders the rows: ignored"
    return "ignore", f"unsupported type ({series.dtype}): ignored"


_ID_NOTE = "identifier: carried into scored views and exports, never a model input"


def _generic_flag(name: Any, series: pd.Series, kind: str) -> str:
    """A hint for a 0/1 column named like a flag (``is_weekend``): kept as an input, since most
    such flags are measurements, but the analyst may know it marks the anomalies."""
    tokens = _name_tokens(name)
    if len(tokens) < 2 or tokens[0] not in _FLAG_PREFIXES:
        return ""
    values = pd.to_numeric(series.dropna(), errors="coerce")
    if kind != "bool" and not values.isin([0, 1]).all():
        return ""
    return " (a yes/no flag; if it marks the anomalies, make it the label)"


_NOT_CONSTANT = object()


def _constant_value(series: pd.Series, sample_present: pd.Series, kind: str) -> Any:
    """The single value of a constant column (checked on all rows), else ``_NOT_CONSTANT``."""
    try:
        if sample_present.nunique() != 1:
            return _NOT_CONSTANT
        value = sample_present.iloc[0]
        if kind == "numeric":
            values = pd.to_numeric(series, errors="coerce")
            same = values.min() == values.max()
        else:
            same = bool(((series == value) | series.isna()).all())
    except TypeError:
        return _NOT_CONSTANT
    return value if same else _NOT_CONSTANT


def _looks_like_time(kind: str, sample_present: pd.Series, series: pd.Series,
                     time_hint: str | None) -> str | None:  # fmt: skip
    """Why the column can order rows, or ``None``."""
    if kind == "datetime":
        return "dates/times: used to order rows"
    if kind == "text":
        if _timestamp_format(sample_present) is not None:
            return "parsed as timestamps: used to order rows"
        return None
    if kind == "numeric" and time_hint == "exact":
        return "named like a time column: used to order rows"
    if kind == "numeric" and time_hint == "suffix":
        # "response_time" is a measurement; only a column that only grows orders the rows.
        values = pd.to_numeric(series, errors="coerce").dropna()
        if values.is_monotonic_increasing:
            return "named like a time column and only increases: used to order rows"
    return None


def _timestamp_format(values: pd.Series) -> str | None:
    """``"ISO8601"`` or the common date format that at least 95% of the text values parse with."""
    if values.empty:
        return None
    text = values.astype(str).str.strip()
    if not text.str.contains(r"\d[-/.:T ]?\d", regex=True).all():
        return None
    head = text.iloc[:200]
    for date_format in ("ISO8601", *_DATE_FORMATS):
        if date_format != "ISO8601" and _parsed_share(head, date_format) < 0.9:
            continue
        if _parsed_share(text, date_format) >= TIMESTAMP_SHARE:
            return date_format
    return None


def _parsed_share(text: pd.Series, date_format: str) -> float:
    return float(_to_datetime(text, date_format).notna().mean())


def _to_datetime(text: pd.Series, date_format: str) -> pd.Series:
    """Parse with one format; unparseable cells become NaT, mixed UTC offsets become UTC."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pd.to_datetime(text, format=date_format, errors="coerce")
        except (ValueError, TypeError, OverflowError):
            try:
                return pd.to_datetime(text, format=date_format, errors="coerce", utc=True)
            except (ValueError, TypeError, OverflowError):
                return pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")


def parse_times(values: pd.Series) -> pd.Series:
    """A time column as values that sort in time order, for ordering and plotting rows.

    Text timestamps become datetimes, parsed with the format that made the column a time column
    (ISO 8601 or a common format such as 31/12/2024 23:59); numbers and datetimes are returned
    as they are. Cells that do not parse become NaT.
    """
    kind = _kind(values)
    if kind in ("numeric", "datetime", "bool"):
        return values
    present = values.dropna()
    date_format = _timestamp_format(_sample(present.to_frame()).iloc[:, 0])
    if date_format is None:
        example = str(present.iloc[0]) if len(present) else "nothing"
        raise AecoreError(
            f"Column {values.name!r} does not hold timestamps (it holds e.g. {example!r}); "
            "choose another time column or none."
        )
    return _to_datetime(values.astype(str).str.strip().where(values.notna()), date_format)


def _mostly_numbers(values: pd.Series) -> str | None:
    """An example of the text in a column that is otherwise at least 90% numbers."""
    if values.empty:
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    share = numbers.notna().mean()
    if 0.9 <= share < 1.0:
        return str(values[numbers.isna()].iloc[0])
    return None


def _is_unique_integer(series: pd.Series) -> bool:
    values = pd.to_numeric(series, errors="coerce").dropna()
    if len(values) < 2 or len(values) < len(series):
        return False
    array = values.to_numpy()
    if array.dtype.kind == "f" and not np.all(np.mod(array, 1) == 0):
        return False
    return bool(values.is_unique)


def _distinct(series: pd.Series, kind: str | None = None) -> int:
    """Exact number of distinct non-missing values (numbers: by sorting, which is quicker)."""
    kind = kind or _kind(series)
    if kind == "numeric" and series.dtype != object:
        values = series.to_numpy(dtype=float, na_value=np.nan)
        values = np.sort(values[~np.isnan(values)])
        return int(np.count_nonzero(np.diff(values)) + 1) if len(values) else 0
    try:
        return int(series.nunique(dropna=True))
    except TypeError:
        return int(series.astype(str).where(series.notna()).nunique(dropna=True))


def _top_values(series: pd.Series, count: int) -> list[Any]:
    return series.value_counts(dropna=True).index[:count].tolist()


def _format_value(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return str(value)


def _percent(share: float) -> str:
    if share < 0.001:
        return "<0.1%"
    if share < 0.01:
        return f"{share:.1%}"
    return f"{share:.0%}"


# --------------------------------------------------------------------------------------------
# Summary and checks
# --------------------------------------------------------------------------------------------


def summarise_columns(frame: pd.DataFrame, roles: ColumnRoles) -> pd.DataFrame:
    """One row per column: role, dtype, missing, distinct, numeric statistics, example, note."""
    notes = role_notes(frame, roles)
    records = []
    rows = len(frame)
    for column in frame.columns:
        series = frame[column]
        kind = _kind(series)
        missing = int(series.isna().sum())
        stats = dict.fromkeys(("min", "max", "mean", "std"), np.nan)
        if kind in ("numeric", "bool") and missing < rows:
            values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            values = values[~np.isnan(values)]
            if len(values):
                stats = {
                    "min": float(values.min()),
                    "max": float(values.max()),
                    "mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if len(values) > 1 else np.nan,
                }
        first = series.first_valid_index()
        records.append(
            {
                "column": column,
                "role": roles.role_of(column),
                "dtype": str(series.dtype),
                "missing": missing,
                "missing_share": missing / rows if rows else 0.0,
                "distinct": _distinct(series, kind) if missing < rows else 0,
                **stats,
                "example": "" if first is None else _format_value(series.at[first]),
                "note": notes[column],
            }
        )
    return pd.DataFrame.from_records(records, columns=_SUMMARY_COLUMNS)


def check_trainable(
    frame: pd.DataFrame, roles: ColumnRoles, *, min_rows: int = MIN_TRAIN_ROWS
) -> None:
    """Raise ``AecoreError`` with the reason when a model cannot be trained on these columns."""
    absent = [c for c in roles.named if c not in frame.columns]
    if absent:
        listed = ", ".join(repr(c) for c in absent)
        noun = "column is" if len(absent) == 1 else "columns are"
        raise AecoreError(f"The chosen roles name data that is not there: the {noun} {listed} "
                          "not in the file.")  # fmt: skip
    if len(frame) < min_rows:
        raise AecoreError(
            f"Too few rows to train: {len(frame)} rows, at least {min_rows} are needed."
        )
    if not roles.inputs:
        raise AecoreError(_no_features_message(frame, roles))
    for column in roles.inputs:
        if frame[column].isna().all():
            raise AecoreError(f"Column {column!r} is entirely empty; mark it as ignore.")
    for column in roles.features:
        series = frame[column]
        kind = _kind(series)
        if kind == "datetime":
            raise AecoreError(
                f"Column {column!r} is marked as a numeric feature but holds dates/times; "
                "mark it as time or ignore."
            )
        if kind in ("numeric", "bool"):
            continue
        numbers = pd.to_numeric(series, errors="coerce")
        bad = series.notna() & numbers.isna()
        if bad.any():
            example = series[bad].iloc[0]
            raise AecoreError(
                f"Column {column!r} is marked as a numeric feature but holds text such as "
                f"{str(example)!r} ({int(bad.sum()):,} rows); mark it as categorical or ignore."
            )


def _no_features_message(frame: pd.DataFrame, roles: ColumnRoles) -> str:
    if frame.shape[1] == 0:
        return "No usable feature columns: the data has no columns."
    notes = role_notes(frame, roles)
    reasons = [f"{column!r}: {note}" for column, note in notes.items()]
    shown = "; ".join(reasons[:6]) + (f"; and {len(reasons) - 6} more" if len(reasons) > 6 else "")
    return (
        "No usable feature columns: no column is a numeric feature or categorical "
        f"({shown}). Mark at least one column as feature or categorical."
    )


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


def binary_labels(values: Any) -> np.ndarray:
    """1 = anomaly, 0 = normal, -1 = unknown (missing or empty cell), as int8.

    Numbers: 0 is normal, anything else an anomaly. Booleans: True is an anomaly. Text: words
    such as "normal" or "benign" are normal; without any, the most frequent value is normal.
    """
    series, missing = _label_series(values)
    labels = np.full(len(series), -1, dtype=np.int8)
    present = series[~missing]
    if present.empty:
        return labels
    labels[~missing] = np.where(_normal_mask(present), 0, 1)
    return labels


def class_labels(values: Any) -> tuple[np.ndarray, list[str]]:
    """Integer class codes (-1 = unknown) and class names, normal classes first.

    Classes are then ordered by how often they occur, so codes are stable for the same data.
    """
    series, missing = _label_series(values)
    codes = np.full(len(series), -1, dtype=np.int32)
    present = series[~missing]
    if present.empty:
        return codes, []
    names = _label_names(present)
    normal = _normal_mask(present)
    frequency = names.value_counts()
    first_seen = {name: position for position, name in enumerate(pd.unique(names))}
    normal_names = set(names[normal])
    ordered = sorted(
        frequency.index,
        key=lambda name: (name not in normal_names, -frequency[name], first_seen[name]),
    )
    lookup = {name: code for code, name in enumerate(ordered)}
    codes[~missing] = names.map(lookup).to_numpy(dtype=np.int32)
    return codes, [str(name) for name in ordered]


def _label_series(values: Any) -> tuple[pd.Series, np.ndarray]:
    if isinstance(values, pd.DataFrame):
        raise AecoreError("Labels must be one column, not a table.")
    if isinstance(values, pd.Series):
        series = values.reset_index(drop=True)
    else:
        array = values if isinstance(values, np.ndarray) else list(values)
        series = pd.Series(array)
    missing = series.isna().to_numpy()
    if _kind(series) in ("text", "bool_text", "other"):
        blank = series.astype(str).str.strip().eq("").to_numpy()
        missing = missing | blank
    return series, missing


def _label_mode(present: pd.Series) -> str:
    """``bool``, ``numeric`` or ``text``: how the non-missing label values are read."""
    kind = _kind(present)
    if kind in ("bool", "bool_text"):
        return "bool"
    if kind == "numeric":
        return "numeric"
    if pd.to_numeric(present, errors="coerce").notna().all():
        return "numeric"
    return "text"


def _normal_mask(present: pd.Series) -> np.ndarray:
    mode = _label_mode(present)
    if mode == "bool":
        return ~present.astype(bool).to_numpy()
    if mode == "numeric":
        return (pd.to_numeric(present, errors="coerce") == 0).to_numpy()
    text = present.astype(str).str.strip()
    normal = text.str.lower().isin(_NORMAL_WORDS).to_numpy()
    if not normal.any():
        normal = (text == text.value_counts(sort=False).idxmax()).to_numpy()
    return normal


def _label_names(present: pd.Series) -> pd.Series:
    mode = _label_mode(present)
    if mode == "bool":
        return present.astype(bool).map(str)
    if mode == "numeric":
        return pd.to_numeric(present, errors="coerce").map(_format_value)
    return present.astype(str).str.strip()


def time_order(frame: pd.DataFrame, roles: ColumnRoles) -> np.ndarray | None:
    """One sortable number per row from the time column (``parse_times``; unparsed times sort
    last), or None without a usable time column: the order splits, windows and exports use."""
    if roles.time is None or roles.time not in frame:
        return None
    times = parse_times(frame[roles.time])
    if times.isna().all():
        return None
    if pd.api.types.is_numeric_dtype(times):
        return times.to_numpy(dtype=np.float64, na_value=np.inf)
    stamps = times.to_numpy(dtype="datetime64[ns]")
    return np.where(np.isnat(stamps), np.iinfo(np.int64).max, stamps.astype(np.int64))


def window_order(order: np.ndarray | None, n: int) -> np.ndarray:
    """Row positions in time order (stable; the frame's own order without times)."""
    return np.arange(n) if order is None else np.argsort(order, kind="stable")
