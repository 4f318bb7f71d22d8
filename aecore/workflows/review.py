"""The analyst's verdicts on rows ("marks"): stored per data set, safely, and moved as CSV.

A mark says what the analyst decided about one row: ``anomaly`` (a confirmed anomaly),
``normal`` (a false alarm) or ``unsure``, with an optional note. Marks belong to the **data set**,
not to a model: a retrained model, or another model on the same data, sees the same marks.

- **Which data set.** Frames with the same columns, in the same order, share one set of marks
  (``dataset_id``): uploading the same file again, or a longer export of the same source, finds
  them.
- **Which row.** A mark is keyed by the row's ``source_row`` (its number in the file, header = row
  1, as every page and export numbers rows) and a hash of its values (``row_hashes``). It applies
  to a frame's row only when both agree; a row that moved (the file was sorted, rows were added
  above it) is found by its hash when that hash is unique in the frame. Marks that match no row
  of the frame are kept, not lost, and counted (``ReviewBook.unmatched``).
- **Where.** ``<models folder>/.reviews/<dataset id>.json``, written atomically (a temporary file,
  fsync, rename) under a lock, so two sessions marking the same data never lose each other's
  marks and a crash never leaves half a file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aecore.errors import AecoreError
from aecore.store import models_dir_path, name_lock
from aecore.workflows.export import FIRST_DATA_ROW, neutralise
from aecore.workflows.marks import (  # noqa: F401  (STATUSES, STATUS_TEXT: re-exported)
    CSV_COLUMNS,
    LABEL_OF,
    STATUS_TEXT,
    STATUSES,
    Mark,
    clean_note,
    dataset_id,
    hash_text,
    is_hex,
    parse_status,
    read_marks_csv,
    row_hashes,
)

REVIEWS_DIR = ".reviews"
SCHEMA_VERSION = 1
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def reviews_path(dataset: str, models_dir: str | os.PathLike | None = None) -> Path:
    """Where the marks of ``dataset`` are kept."""
    return models_dir_path(models_dir) / REVIEWS_DIR / f"{dataset}.json"


def has_stored_marks(columns: Iterable[Any], models_dir: str | os.PathLike | None = None) -> bool:
    """Whether marks were ever saved for the data set of ``columns`` (a file check: no row is
    read or hashed)."""
    return reviews_path(dataset_id(columns), models_dir).is_file()


def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise AecoreError(f"Cannot read the review marks {path}: {error.strerror}.") from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("marks", []), list):
            raise ValueError("not a marks file")
        int(data.get("schema", SCHEMA_VERSION))
    except (ValueError, TypeError) as error:
        raise AecoreError(
            f"The review marks {path} are damaged ({error}); move the file away to start again."
        ) from None
    if int(data.get("schema", SCHEMA_VERSION)) > SCHEMA_VERSION:
        raise AecoreError(
            f"The review marks {path} were written by a newer version of this tool."
        )
    return data


def _write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


class ReviewBook:
    """The marks of one frame's data set, matched to the frame's rows.

    ``ReviewBook(frame, models_dir=..., data_name=...)`` reads what is stored for the frame's
    data set; ``mark`` / ``clear`` / ``import_csv`` change it and save at once (``persist=False``
    keeps the marks in this object only, for a read-only models folder). Positions are row
    positions in ``frame`` (0 = the first data row); ``source_row`` numbers are positions + 2.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        models_dir: str | os.PathLike | None = None,
        data_name: str = "",
        persist: bool = True,
    ) -> None:
        self.n_rows = int(len(frame))
        self.columns = [str(c) for c in frame.columns]
        self.dataset = dataset_id(frame.columns)
        self.data_name = str(data_name)
        self.persist = bool(persist)
        self.models_dir = models_dir
        self.path = reviews_path(self.dataset, models_dir)
        self.hashes = row_hashes(frame)
        self._where: dict[int, int] | None = None  # hash -> position, for hashes seen once
        self._marks: dict[str, Mark] = {}
        self._by_position: dict[int, Mark] = {}
        self.reload()

    # ---- reading
    def reload(self) -> ReviewBook:
        """Read the stored marks again (another session may have added some)."""
        if self.persist:
            stored = _read(self.path).get("marks", [])
            marks = {}
            for item in stored:
                try:
                    mark = Mark.from_dict(item)
                except (KeyError, TypeError, ValueError, AecoreError):
                    continue  # one bad entry does not cost the others
                marks[mark.key] = mark
            self._marks = marks
        self._match()
        return self

    def _unique_positions(self) -> dict[int, int]:
        if self._where is None:
            values, first, counts = np.unique(self.hashes, return_index=True, return_counts=True)
            once = counts == 1
            self._where = dict(zip(values[once].tolist(), first[once].tolist(), strict=True))
        return self._where

    def _match(self) -> None:
        by_position: dict[int, Mark] = {}
        moved = []
        for mark in self._marks.values():
            position = mark.row - FIRST_DATA_ROW
            if 0 <= position < self.n_rows and hash_text(self.hashes[position]) == mark.hash:
                by_position[position] = mark
            else:
                moved.append(mark)
        if moved:
            where = self._unique_positions()
            for mark in moved:
                position = where.get(int(mark.hash, 16)) if is_hex(mark.hash) else None
                if position is not None and position not in by_position:
                    by_position[position] = mark
        self._by_position = dict(sorted(by_position.items()))

    @property
    def has_marks(self) -> bool:
        """Whether this data set has any stored mark (on this frame's rows or others')."""
        return bool(self._marks)

    def export_columns(self, positions: Any) -> tuple[np.ndarray, np.ndarray]:
        """(status, note) of the rows at ``positions``, for an export's ``review_status`` and
        ``review_note`` columns ("" where not reviewed)."""
        positions = np.asarray(positions, dtype=np.int64)
        return self.statuses()[positions], self.notes()[positions]

    @property
    def unmatched(self) -> int:
        """Marks of this data set that match no row of this frame (kept; another file's)."""
        return len(self._marks) - len(self._by_position)

    def positions(self, status: str | None = None) -> np.ndarray:
        """Positions of the marked rows (with ``status`` only, when given), in row order."""
        return np.asarray(
            [p for p, m in self._by_position.items() if status is None or m.status == status],
            dtype=np.int64,
        )

    def get(self, position: int) -> Mark | None:
        """The mark of the row at ``position``, or None."""
        return self._by_position.get(int(position))

    def statuses(self) -> np.ndarray:
        """One status per row of the frame ("" where unmarked)."""
        out = np.full(self.n_rows, "", dtype=object)
        for position, mark in self._by_position.items():
            out[position] = mark.status
        return out

    def notes(self) -> np.ndarray:
        """One note per row of the frame ("" where none)."""
        out = np.full(self.n_rows, "", dtype=object)
        for position, mark in self._by_position.items():
            out[position] = mark.note
        return out

    def labels(self) -> np.ndarray:
        """One label per row: 1 confirmed anomaly, 0 normal (false alarm), -1 unsure or not
        reviewed (``aecore.evaluation.thresholds``' convention)."""
        out = np.full(self.n_rows, -1, dtype=np.int8)
        for position, mark in self._by_position.items():
            out[position] = LABEL_OF[mark.status]
        return out

    def counts(self) -> dict[str, int]:
        """How many of this frame's rows are reviewed, and with which verdict."""
        statuses = [m.status for m in self._by_position.values()]
        return {
            "reviewed": len(statuses),
            "anomaly": statuses.count("anomaly"),
            "normal": statuses.count("normal"),
            "unsure": statuses.count("unsure"),
        }

    def table(self) -> pd.DataFrame:
        """This frame's marks as the CSV holds them: ``row`` (source_row), ``status``,
        ``note``, plus ``updated``."""
        rows = [
            {"row": p + FIRST_DATA_ROW, "status": m.status, "note": m.note, "updated": m.updated}
            for p, m in self._by_position.items()
        ]
        return pd.DataFrame(rows, columns=[*CSV_COLUMNS, "updated"])

    # ---- changing
    def mark(self, position: int, status: str, note: str = "") -> Mark:
        """Record the verdict on the row at ``position`` (replacing an earlier one)."""
        return self.apply({int(position): (parse_status(status), clean_note(note))})[0]

    def clear(self, position: int) -> None:
        """Forget the verdict on the row at ``position``."""
        self.apply({int(position): None})

    def apply(self, changes: Mapping[int, tuple[str, str] | None]) -> list[Mark]:
        """Several verdicts at once (position -> (status, note), or None to forget), saved in
        one write. Returns the new marks."""
        for position in changes:
            if not 0 <= int(position) < self.n_rows:
                raise AecoreError(
                    f"Row {int(position) + FIRST_DATA_ROW} is not in the data "
                    f"(rows {FIRST_DATA_ROW} to {self.n_rows + FIRST_DATA_ROW - 1})."
                )
        stamp = _now()
        new: list[Mark] = []
        removed: set[str] = set()
        for position, change in changes.items():
            position = int(position)
            old = self._by_position.get(position)
            if old is not None:
                removed.add(old.key)
            if change is not None:
                status, note = change
                new.append(Mark(position + FIRST_DATA_ROW, hash_text(self.hashes[position]),
                                parse_status(status), clean_note(note), stamp))  # fmt: skip
        self._save(removed, new)
        return new

    def _save(self, removed: set[str], new: list[Mark]) -> None:
        def update(marks: dict[str, Mark]) -> dict[str, Mark]:
            for key in removed:
                marks.pop(key, None)
            for mark in new:
                marks[mark.key] = mark
            return marks

        if not self.persist:
            self._marks = update(self._marks)
            self._match()
            return
        try:
            with name_lock(f"reviews-{self.dataset}", models_dir=self.models_dir):
                stored = _read(self.path)
                marks = {}
                for item in stored.get("marks", []):
                    try:
                        mark = Mark.from_dict(item)
                    except (KeyError, TypeError, ValueError, AecoreError):
                        continue
                    marks[mark.key] = mark
                marks = update(marks)
                files = [f for f in stored.get("files", []) if isinstance(f, str)]
                if self.data_name and self.data_name not in files:
                    files.append(self.data_name)
                _write_atomic(self.path, {
                    "schema": SCHEMA_VERSION,
                    "kind": "reviews",
                    "dataset": self.dataset,
                    "columns": self.columns,
                    "files": files[-50:],
                    "updated": _now(),
                    "marks": [m.to_dict() for m in sorted(marks.values(),
                                                          key=lambda m: (m.row, m.hash))],
                })  # fmt: skip
        except OSError as error:
            raise AecoreError(
                f"The review marks could not be saved in {self.path.parent}: "
                f"{error.strerror or error}. Nothing stored before was changed."
            ) from None
        self._marks = marks
        self._match()

    # ---- CSV
    def to_csv(self) -> bytes:
        """This frame's marks as a spreadsheet-safe CSV: ``row``, ``status``, ``note``."""
        table = self.table()[list(CSV_COLUMNS)]
        return neutralise(table).to_csv(index=False).encode("utf-8")

    def import_csv(self, source: Any, *, replace: bool = False) -> dict:
        """Read marks from a CSV with ``row`` (source_row), ``status`` and an optional ``note``
        (a path, bytes or a file object) and apply them; ``replace=True`` first forgets this
        frame's other marks. Returns {"imported", "skipped": [(row, reason), ...]}. A file
        without the columns, or with no usable row, raises ``AecoreError`` and changes nothing.
        """
        table = read_marks_csv(source)
        changes: dict[int, tuple[str, str] | None] = {}
        if replace:
            changes.update({int(p): None for p in self.positions()})
        skipped: list[tuple[Any, str]] = []
        for row, status, note in table.itertuples(index=False):
            try:
                number = int(float(row))
                if float(row) != number:
                    raise ValueError
            except (TypeError, ValueError):
                skipped.append((row, "not a row number"))
                continue
            position = number - FIRST_DATA_ROW
            if not 0 <= position < self.n_rows:
                skipped.append((number, "not in the data"))
                continue
            try:
                changes[position] = (parse_status(status), clean_note(note))
            except AecoreError:
                skipped.append((number, f"unknown status {str(status)!r}"))
        imported = sum(1 for c in changes.values() if c is not None)
        if imported == 0:
            reasons = "; ".join(f"row {r}: {why}" for r, why in skipped[:3])
            raise AecoreError(
                "No mark in the file could be used" + (f" ({reasons})." if reasons else ".")
            )
        self.apply(changes)
        return {"imported": imported, "skipped": skipped}


class ReviewLookup:
    """The stored marks of a data set, matched chunk by chunk (for a file scored in chunks,
    where no whole frame is held): a mark applies where its row number and its hash agree."""

    def __init__(
        self,
        columns: Iterable[Any],
        *,
        models_dir: str | os.PathLike | None = None,
        stored: dict | None = None,
    ):
        """The marks of the data set of ``columns``, read from ``models_dir`` or taken from
        ``stored`` (``stored_reviews``' dict, e.g. sent to Dask workers that cannot read the
        models folder)."""
        self.dataset = dataset_id(columns)
        self.path = reviews_path(self.dataset, models_dir)
        self._marks: dict[int, list[Mark]] = {}
        items = _read(self.path).get("marks", []) if stored is None else stored.get(
            self.dataset, [])  # fmt: skip
        for item in items:
            try:
                mark = Mark.from_dict(item)
            except (KeyError, TypeError, ValueError, AecoreError):
                continue
            self._marks.setdefault(mark.row, []).append(mark)

    @property
    def has_marks(self) -> bool:
        return bool(self._marks)

    def for_chunk(self, chunk: pd.DataFrame, offset: int) -> tuple[np.ndarray, np.ndarray]:
        """(status, note) per row of ``chunk``, whose first row is at position ``offset`` of
        the file ("" where not reviewed)."""
        statuses = np.full(len(chunk), "", dtype=object)
        notes = np.full(len(chunk), "", dtype=object)
        first = int(offset) + FIRST_DATA_ROW
        wanted = [r for r in self._marks if first <= r < first + len(chunk)]
        if not wanted:
            return statuses, notes
        hashes = row_hashes(chunk)
        for row in wanted:
            here = hash_text(hashes[row - first])
            for mark in self._marks[row]:
                if mark.hash == here:
                    statuses[row - first], notes[row - first] = mark.status, mark.note
        return statuses, notes


def stored_reviews(models_dir: str | os.PathLike | None = None) -> dict[str, list[dict]]:
    """Every stored set of marks, {dataset id: [mark dicts]}, for ``ReviewLookup(stored=...)``;
    a damaged file is left out."""
    folder = models_dir_path(models_dir) / REVIEWS_DIR
    out = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            out[path.stem] = list(_read(path).get("marks", []))
        except AecoreError:
            continue
    return out
