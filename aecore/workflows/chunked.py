"""Scoring a CSV larger than memory: chunk by chunk (``aecore.io.chunks``), windows carried across
chunk borders, ranks kept across chunks, the export written as it goes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aecore.errors import AecoreError
from aecore.io import inference
from aecore.io.chunks import ChunkedCsv, open_csv_chunks
from aecore.io.parquet import ChunkedParquet
from aecore.workflows.export import (
    MIN_BATCH,
    UTF8_BOM,
    as_text_where_any_is,
    assemble,
    check_columns,
    csv_rows,
    header_bytes,
    id_columns,
    safe_table,
    source_rows,
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
            order = inference.time_order(chunk, self.detector.roles_)  # the detector's own
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

    A short chunk is padded with copies of its last row up to ``MIN_BATCH`` rows: TensorFlow
    computes very small batches along another path whose float rounding differs slightly, and a
    row's error must not depend on which chunk it fell into.
    """
    frame = windows.extend(chunk)
    start, stop = len(frame) - len(chunk), len(frame)
    if 0 < len(frame) < MIN_BATCH:
        filler = frame.iloc[np.full(MIN_BATCH - len(frame), len(frame) - 1)]
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
    reviews: Any = None,
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
    ``progress(stage, rows_done)`` is called after every chunk. With ``reviews`` (an
    ``aecore.workflows.review.ReviewLookup``), each row carries its ``review_status`` and
    ``review_note``. Returns ``{"rows", "flagged",
    "exported", "extra_columns", "unseen_categories", "threshold", "output", "id_columns"}``.
    """
    import pyarrow as pa

    detector.check_fitted()
    if not isinstance(chunksize, int) or chunksize < 1:
        raise AecoreError(f"The chunk size must be a whole number of rows >= 1, got {chunksize!r}.")
    if isinstance(source_path, ChunkedCsv | ChunkedParquet):  # from open_csv_chunks: checked
        reader = source_path
        source, output = reader.path, Path(output_path)
    else:
        source, output = Path(source_path), Path(output_path)
        reader = open_csv_chunks(source, chunksize)
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
            part = assemble(
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
                None if reviews is None else tuple(
                    column[keep] for column in reviews.for_chunk(chunk, done)
                ),
            )
            names, table = safe_table(part)
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
            handle.write(UTF8_BOM + header_bytes(header))
            for folder in sorted(work.iterdir()):
                tables = [pa.ipc.open_file(str(p)).read_all() for p in sorted(folder.iterdir())]
                ranked = pa.concat_tables(as_text_where_any_is(tables), promote_options="default")
                handle.write(csv_rows(ranked.sort_by(rank_column)))
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
