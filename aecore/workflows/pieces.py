"""The tasks of scoring on Dask (``aecore.workflows.distributed``): which tasks a run has, where
each writes, and the export of one task's rows.

**Tasks.** A CSV file is one task: its rows' offsets in the file cannot be known without reading
it all. A Parquet file is split on row-group boundaries (its footer gives every row group's row
count) into pieces of about ``max(chunksize, parquet_rows / (4 x worker threads))`` rows, where
``parquet_rows`` counts the rows of every Parquet input: each piece takes whole row groups until
it holds that many (a file's last piece takes what is left), so a piece is never less than one
row group and a file of one row group stays one piece. The rule keeps every worker busy on one
large file (four pieces a thread, so the last pieces to finish are short) without cutting files
that already make enough tasks, and gives every piece but a file's last at least one full chunk,
so what a task costs besides scoring (opening the file, its top rows, its marker) stays small.
CSV rows are not counted (they are not known), which can only make pieces smaller. The footers
are read by the client, which sees the files already (it expands the folders and globs). A split
file's plan is saved in its folder (``_PIECES.json``) and reused by ``--resume`` whatever the
cluster's size is then.

**Layout.** ``parts/<file>-<hash>/`` is a file's folder (``part_folder``); a whole-file task
writes its parts there, a piece into ``piece-PPPPP/`` inside it. A task writes into a hidden
``.<name>.partial`` folder and renames it when done, with ``_DONE.json`` (its counts) and
``top.parquet`` (its ``top_n`` highest-scoring rows) inside.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from aecore.errors import AecoreError

PARTS = "parts"
DONE = "_DONE.json"
PLAN = "_PIECES.json"
TOP_ROWS = "top.parquet"
TOP_K = 3
PIECES_PER_THREAD = 4


# ---------------------------------------------------------------------------- the tasks
def plan_tasks(files: Sequence[Path], out: Path, *, chunksize: int, threads: int,
               resume: bool = False) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """``(tasks, failures)`` for ``files`` (see the module's docstring): a task is ``{"index",
    "path", "piece"}`` (``piece`` None for a whole file); a failure is a split file that changed
    since some of its pieces were done."""
    counts = [_row_groups(path) for path in files]
    rows = sum(sum(c) for c in counts if c)
    target = max(chunksize, math.ceil(rows / (PIECES_PER_THREAD * max(threads, 1))))
    tasks, failures = [], []
    for index, (path, groups) in enumerate(zip(files, counts, strict=True)):
        folder = out / PARTS / part_folder(path)
        pieces = [None]
        if groups and len(groups) > 1 and not (folder / DONE).is_file():  # not done whole
            try:
                pieces = _file_pieces(folder, groups, target, resume)
            except AecoreError as error:
                failures.append({"index": index, "file": str(path),
                                 "failed": f"{Path(path).name}: {error}"})  # fmt: skip
                continue
        tasks += [{"index": index, "path": str(path), "piece": p} for p in pieces]
    return tasks, failures


def split_row_groups(counts: Sequence[int], target: int) -> list[dict]:
    """Pieces of consecutive row groups (``counts``: their row counts), each taking groups until
    it holds ``target`` rows: ``{"number", "pieces", "groups": [first, stop], "offset" (the rows
    before it in the file), "rows"}``."""
    pieces, first, offset, rows = [], 0, 0, 0
    for stop, count in enumerate(counts, start=1):
        rows += int(count)
        if rows >= target or stop == len(counts):
            pieces.append({"number": len(pieces), "groups": [first, stop], "offset": offset,
                           "rows": rows})  # fmt: skip
            first, offset, rows = stop, offset + rows, 0
    return [{**piece, "pieces": len(pieces)} for piece in pieces]


def _row_groups(path: Path) -> list[int] | None:
    """A Parquet file's row counts by row group, from its footer; None for a CSV file or a file
    whose footer cannot be read (its task reports why)."""
    import pyarrow.parquet as pq

    from aecore.io.parquet import is_parquet_path

    if not is_parquet_path(path):
        return None
    try:
        meta = pq.ParquetFile(path).metadata
    except Exception:  # noqa: BLE001 - the worker reads it again and says what is wrong
        return None
    return [meta.row_group(k).num_rows for k in range(meta.num_row_groups)]


def _file_pieces(folder: Path, groups: list[int], target: int, resume: bool) -> list:
    """The file's pieces: the plan saved in ``folder`` when resuming and its row groups are
    unchanged, else a new plan (saved when it has several pieces)."""
    plan = folder / PLAN
    if resume and plan.is_file():
        try:
            saved = json.loads(plan.read_text(encoding="utf-8"))
        except ValueError:  # damaged: as if the file had changed
            saved = {}
        if saved.get("row_groups") == groups:
            return saved["pieces"]
        if any(folder.glob(f"piece-*/{DONE}")):
            raise AecoreError(
                f"it changed since some of its pieces were scored into {folder} (its row groups "
                "differ); remove that folder to score it again."
            )
    pieces = split_row_groups(groups, target)
    if len(pieces) == 1:
        return [None]
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".{PLAN}.partial"
    temp.write_text(json.dumps({"row_groups": groups, "pieces": pieces}), encoding="utf-8")
    os.replace(temp, plan)
    return pieces


def part_folder(path: str | os.PathLike) -> str:
    """The folder of a file's parts: its name and a hash of its full path, so that a file keeps
    its folder (and ``--resume`` finds it) however the list of inputs changes."""
    resolved = str(Path(path).resolve())
    return f"{Path(resolved).stem[:40]}-{hashlib.sha256(resolved.encode()).hexdigest()[:10]}"


# ---------------------------------------------------------------------------- one task's rows
def piece_chunks(path: str, piece: dict, chunksize: int):
    """The piece's rows in chunks of up to ``chunksize`` (its row groups only), as the
    single-machine Parquet reader gives them; the index is the row's position in the file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from aecore.io.parquet import to_frame

    name, given = Path(path).name, int(piece["offset"])
    try:
        batches = pq.ParquetFile(path).iter_batches(chunksize, row_groups=range(*piece["groups"]))
        for batch in batches:
            frame = to_frame(pa.Table.from_batches([batch]), name=name)
            frame.index = pd.RangeIndex(given, given + len(frame))
            given += len(frame)
            yield frame
    except (pa.ArrowException, OSError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise AecoreError(f"{name} could not be read after row {given:,}: {first}") from None


class TaskExport:
    """The export of one task's chunks, with as little work per chunk as the scores allow: the
    row and per-feature errors come from the compiled scorer alone (``detector.scorer_``), and
    only the rows exported (flagged, or all) and each chunk's ``top_n`` candidates are turned
    into export rows, gathered into parts of about ``chunksize`` rows and one ``top.parquet``.
    The rows are those ``detector.score_rows`` + ``aecore.workflows.export.assemble`` give."""

    def __init__(self, detector, names, *, path, model_name, folder, all_rows, top_n,
                 chunksize, reviews=None):  # fmt: skip
        from aecore.workflows.export import id_columns
        from aecore.workflows.review import ReviewLookup

        self.detector, self.path, self.model_name, self.folder = detector, path, model_name, folder
        self.all_rows, self.top_n, self.chunksize = all_rows, int(top_n), chunksize
        self.threshold = detector.threshold_
        self.features = list(detector.feature_names_in_)
        self.ids = id_columns(names, detector.roles_)
        marks = ReviewLookup(names, stored=reviews or {})
        self.marks = marks if marks.has_marks else None
        self.pending: list[dict] = []  # rows to export, not yet written
        self.best: list[dict] = []  # each chunk's top_n candidates
        self.rows = self.flagged = self.parts = 0
        self.checked = None  # the columns and types of the last chunk that needs no new check

    def add(self, chunk: pd.DataFrame, offset: int) -> None:
        """Score ``chunk`` (its first row is row ``offset`` of the file) and keep its rows."""
        from aecore.workflows.export import source_rows

        self._check(chunk)
        errors, features = _scores(self.detector.scorer_, self.detector.transform_inputs(chunk))
        flags = (errors > self.threshold).astype(np.int8)
        scored = {"frame": chunk, "errors": errors, "flags": flags, "features": features,
                  "numbers": source_rows(np.arange(len(chunk)), offset=offset)}  # fmt: skip
        if self.marks is not None:
            scored["statuses"], scored["notes"] = self.marks.for_chunk(chunk, offset)
        keep = np.arange(len(chunk)) if self.all_rows else np.flatnonzero(flags == 1)
        if len(keep):
            self.pending.append(_rows_at(scored, keep))
            if sum(len(p["errors"]) for p in self.pending) >= self.chunksize:
                self._write_pending()
        self.best.append(_rows_at(scored, _top(errors, self.top_n)))
        self.rows += len(chunk)
        self.flagged += int(np.count_nonzero(flags))

    def finish(self) -> None:
        """Write the last part and ``top.parquet`` (the ``top_n`` best rows, ties in row order)."""
        self._write_pending()
        if self.best:
            best = _joined(self.best)
            top = self._exported(_rows_at(best, _top(best["errors"], self.top_n)))
            write_part(top, self.folder / TOP_ROWS)

    def _check(self, chunk: pd.DataFrame) -> None:
        """``check_columns`` on the chunk, unless one with the same columns and types passed
        and every feature column is numeric (the check depends on the types alone then)."""
        from aecore.workflows.export import check_columns

        signature = (tuple(chunk.columns), tuple(chunk.dtypes))
        if signature == self.checked:
            return
        check_columns(chunk, self.detector)
        numeric = all(pd.api.types.is_numeric_dtype(chunk[c]) or pd.api.types.is_bool_dtype(
            chunk[c]) for c in self.features)  # fmt: skip
        self.checked = signature if numeric else None

    def _write_pending(self) -> None:
        if self.pending:
            part = self._exported(_joined(self.pending))
            write_part(part, self.folder / f"part-{self.parts:05d}.parquet")
            self.parts += 1
            self.pending = []

    def _exported(self, rows: dict) -> pd.DataFrame:
        """The export's rows (no rank: it is across files)."""
        from aecore.workflows.export import assemble

        frame = rows["frame"]
        part = assemble(
            frame, rows["errors"], np.zeros(len(frame), np.int64), rows["flags"],
            pd.DataFrame(rows["features"], columns=self.features, index=frame.index),
            float(self.threshold), self.model_name, TOP_K, rows["numbers"], self.ids,
            None if self.marks is None else (rows["statuses"], rows["notes"]),
        )  # fmt: skip
        part = part.drop(columns="rank").rename(columns={"source_row": "row"})
        part.insert(0, "source_file", self.path)
        return part


def _scores(scorer, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row errors and per-feature errors (each feature's part of the row's error, as
    ``detector.score_rows`` gives them: the scorer's add up to the row's error times the number
    of encoded columns) of the encoded rows ``x``. A short chunk is padded to ``MIN_BATCH`` rows
    as the single-machine chunked scoring does (TensorFlow rounds very small batches
    differently), so a row's error does not depend on the chunk it fell into."""
    from aecore.workflows.export import MIN_BATCH

    n, encoded = x.shape
    if 0 < n < MIN_BATCH:
        x = np.concatenate([x, np.repeat(x[-1:], MIN_BATCH - n, axis=0)])
    result = scorer(x, latent=False)
    features = result.feature_errors[:n]
    features /= np.float32(encoded)  # in place, as score_rows does
    return result.row_error[:n], features


def _rows_at(rows: dict, positions: np.ndarray) -> dict:
    """The rows at ``positions`` of aligned arrays and a frame (``"frame"``)."""
    return {key: values.iloc[positions] if key == "frame" else values[positions]
            for key, values in rows.items()}  # fmt: skip


def _joined(parts: list[dict]) -> dict:
    """Aligned rows (``_rows_at``'s) one after the other."""
    if len(parts) == 1:
        return parts[0]
    return {key: pd.concat([p[key] for p in parts]) if key == "frame" else
            np.concatenate([p[key] for p in parts]) for key in parts[0]}  # fmt: skip


def _top(errors: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` highest ``errors``, highest first, equal ones in row order: what
    ``np.argsort(-errors, kind="stable")[:n]`` gives, from a partition instead of a full sort."""
    key = -np.asarray(errors)
    if n <= 0:
        return np.zeros(0, np.int64)
    candidates = np.arange(len(key))
    if len(key) > n:
        cut = np.partition(key, n - 1)[n - 1]
        if not np.isnan(cut):  # else NaN errors (sorted last) are among the n: sort them all
            candidates = np.flatnonzero(key <= cut)
    return candidates[np.argsort(key[candidates], kind="stable")[:n]]


def write_part(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as a Parquet file at ``path`` (no index)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    pq.write_table(table, path)
