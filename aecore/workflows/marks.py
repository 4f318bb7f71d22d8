"""What one review mark is: the verdicts, the row's identity (its data set and a hash of its
values) and the marks CSV (``row``, ``status``, ``note``). Stored and matched to rows by
``aecore.workflows.review``."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aecore.errors import AecoreError

STATUSES = ("anomaly", "normal", "unsure")
STATUS_TEXT = {
    "anomaly": "confirmed anomaly",
    "normal": "normal (false alarm)",
    "unsure": "unsure",
}
LABEL_OF = {"anomaly": 1, "normal": 0, "unsure": -1}
MAX_NOTE = 2_000  # characters; a note is a remark, not a document
CSV_COLUMNS = ("row", "status", "note")
# What an imported CSV may say for each status (lower case, spaces and dashes as underscores).
MISSING = "\x00missing"  # what a missing cell hashes as
_SYNONYMS = {
    "anomaly": "anomaly", "confirmed": "anomaly", "confirmed_anomaly": "anomaly", "1": "anomaly",
    "true": "anomaly", "yes": "anomaly", "attack": "anomaly", "positive": "anomaly",
    "normal": "normal", "false_alarm": "normal", "normal_(false_alarm)": "normal", "0": "normal",
    "false": "normal", "no": "normal", "benign": "normal", "negative": "normal",
    "unsure": "unsure", "unknown": "unsure", "?": "unsure", "maybe": "unsure", "-1": "unsure",
}  # fmt: skip


def dataset_id(columns: Iterable[Any]) -> str:
    """The data set a frame belongs to, for its marks: a hash of its column names in order."""
    names = [str(c) for c in columns]
    digest = hashlib.sha256("\x1f".join(names).encode("utf-8", "surrogatepass")).hexdigest()
    return f"cols-{len(names)}-{digest[:16]}"


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of its values, the same for the same file however it was read:
    numbers hash as float64 (so 3 and 3.0 agree), text, categories and anything else by their
    values; missing cells hash alike. About a second per million rows of 30 columns."""
    out = np.zeros(len(frame), dtype=np.uint64)
    for j in range(frame.shape[1]):
        column = frame.iloc[:, j]
        dtype = column.dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            values = np.where(np.isnan(values), np.nan, values + 0.0)  # one NaN, no -0.0
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            values = column.astype(str).to_numpy(dtype=object)
        else:
            values = column.to_numpy(dtype=object, na_value=None).copy()
            values[pd.isna(values)] = MISSING
        hashed = pd.util.hash_array(values, categorize=True)
        with np.errstate(over="ignore"):
            out = (out * np.uint64(1_000_003)) ^ hashed
    return out


def hash_text(value: int | np.integer) -> str:
    return f"{int(value):016x}"


def parse_status(value: Any) -> str:
    """A status from what a person or a CSV may write ("confirmed", "false alarm", "1", ...);
    raises ``AecoreError`` naming the accepted words."""
    key = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    if key in _SYNONYMS:
        return _SYNONYMS[key]
    raise AecoreError(
        f"Unknown review status {str(value)!r}: use anomaly (confirmed), normal (a false alarm) "
        "or unsure."
    )


def clean_note(note: Any) -> str:
    if note is None or (isinstance(note, float) and np.isnan(note)):
        return ""
    text = " ".join(str(note).split())  # one line: a note is read in a table cell
    return text[:MAX_NOTE]


@dataclass(frozen=True)
class Mark:
    """One verdict: the row (``source_row``), the hash of its values, status, note, when."""

    row: int
    hash: str
    status: str
    note: str = ""
    updated: str = ""

    def to_dict(self) -> dict:
        return {"row": self.row, "hash": self.hash, "status": self.status, "note": self.note,
                "updated": self.updated}  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping) -> Mark:
        return cls(int(data["row"]), str(data["hash"]), parse_status(data["status"]),
                   clean_note(data.get("note")), str(data.get("updated", "")))  # fmt: skip

    @property
    def key(self) -> str:
        return f"{self.row}:{self.hash}"


def is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except (TypeError, ValueError):
        return False
    return True


def read_marks_csv(source: Any) -> pd.DataFrame:
    """The ``row``, ``status``, ``note`` columns of a marks CSV (path, bytes or file object);
    raises ``AecoreError`` with what is missing."""
    try:
        if isinstance(source, (bytes, bytearray)):
            table = pd.read_csv(io.BytesIO(bytes(source)), dtype=str, keep_default_na=False)
        else:
            table = pd.read_csv(source, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise AecoreError(f"The marks file {source} does not exist.") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, OSError) as error:
        raise AecoreError(f"The marks file could not be read as CSV: {error}") from None
    table.columns = [str(c).strip().lower() for c in table.columns]
    if "source_row" in table.columns and "row" not in table.columns:
        table = table.rename(columns={"source_row": "row"})
    if "review_status" in table.columns and "status" not in table.columns:
        table = table.rename(columns={"review_status": "status", "review_note": "note"})
    missing = [c for c in ("row", "status") if c not in table.columns]
    if missing:
        raise AecoreError(
            "A marks CSV needs the columns row (the row's number in the data file, header = "
            f"row 1), status and optionally note; it lacks {', '.join(missing)}."
        )
    if "note" not in table.columns:
        table["note"] = ""
    # Text a spreadsheet-safe export prefixed with ' comes back as written.
    note = table["note"].astype(str)
    table["note"] = note.where(~note.str.match(r"^'[=+\-@\t\r]"), note.str[1:])
    return table[["row", "status", "note"]]
