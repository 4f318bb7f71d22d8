"""Training on a sample of a large folder (``python -m aecore train PATH... --sample N
[--engine dask]``): a uniform random sample of rows over many CSV and Parquet files, drawn on a
Dask cluster or in this process; training itself then runs on one machine as usual.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aecore.errors import AecoreError
from aecore.workflows.distributed import connect, expand_inputs


def count_rows(path: str, chunksize: int = 200_000) -> int:
    """The data rows of one file: from a Parquet file's footer, else by reading it in chunks
    (by the reader's rules, so a bad file fails here with its message)."""
    from aecore.io import parquet
    from aecore.io.chunks import open_csv_chunks

    if parquet.is_parquet_path(path):
        open_csv_chunks(path, chunksize).close()  # checks the schema
        return parquet.row_count(path)
    return int(sum(len(chunk) for chunk in open_csv_chunks(path, chunksize)))


def sample_file(path: str, positions: Sequence[int], chunksize: int = 200_000) -> pd.DataFrame:
    """The rows of one file at ``positions`` (0-based data rows, sorted), in file order."""
    from aecore.io.chunks import open_csv_chunks

    wanted = np.asarray(positions, dtype=np.int64)
    parts, seen = [], 0
    chunks = open_csv_chunks(path, chunksize)
    for chunk in chunks:
        lo, hi = np.searchsorted(wanted, [seen, seen + len(chunk)])
        if hi > lo:
            parts.append(chunk.iloc[wanted[lo:hi] - seen])
        seen += len(chunk)
    if not parts:
        return pd.DataFrame(columns=chunks.names)
    return pd.concat(parts, ignore_index=True)


def sample_rows(
    paths: Sequence[str | os.PathLike],
    n_rows: int,
    *,
    seed: int = 0,
    client: Any = None,
    workers: int | None = None,
    scheduler: str | None = None,
) -> tuple[pd.DataFrame, dict]:
    """A uniform random sample of ``n_rows`` rows over the files named by ``paths`` (every row
    when they hold fewer), drawn on a Dask cluster (``client``, else ``scheduler``, else a local
    cluster of ``workers`` processes) or, with ``workers=0``, in this process: each file's share
    is drawn without replacement (a multivariate hypergeometric draw over the files' row counts),
    then its rows. Returns the rows (by file, in file order) and what the bundle records:
    ``{"sample_rows", "rows_available", "files", "seed"}``."""
    if not isinstance(n_rows, int) or n_rows < 1:
        raise AecoreError(f"The sample size must be a whole number of rows >= 1, got {n_rows!r}.")
    files = [str(f) for f in expand_inputs(paths)]
    run, close = _runner(client, workers, scheduler)
    try:
        counts = np.asarray(run(count_rows, files), dtype=np.int64)
        total = int(counts.sum())
        if total == 0:
            raise AecoreError("The files hold no data rows.")
        rng = np.random.default_rng(seed)
        shares = rng.multivariate_hypergeometric(counts, min(n_rows, total))
        picks = [np.sort(rng.choice(int(c), int(k), replace=False)) for c, k in
                 zip(counts, shares, strict=True)]  # fmt: skip
        frames = run(sample_file, files, picks)
    finally:
        close()
    columns = list(frames[0].columns)
    for path, frame in zip(files, frames, strict=True):
        if list(frame.columns) != columns:
            missing = [c for c in columns if c not in frame.columns]
            extra = [c for c in frame.columns if c not in columns]
            raise AecoreError(
                f"{Path(path).name} has other columns than {Path(files[0]).name}"
                + (f" (lacks {', '.join(map(str, missing))})" if missing else "")
                + (f" (adds {', '.join(map(str, extra))})" if extra else "")
                + ": a sample is drawn over files with the same columns."
            )
    sample = pd.concat([f for f in frames if len(f)], ignore_index=True)
    info = {
        "sample_rows": int(len(sample)), "rows_available": total, "files": files,
        "seed": int(seed),
    }  # fmt: skip
    return sample, info


def _runner(client: Any, workers: int | None, scheduler: str | None):
    """``(run, close)``: ``run(function, *lists)`` maps a function over lists on the cluster
    (or in this process when ``workers == 0`` and no client or scheduler), in order."""
    if client is None and not scheduler and workers == 0:
        return (lambda function, *lists: [function(*args) for args in zip(*lists, strict=True)],
                lambda: None)  # fmt: skip
    client, close = connect(client, scheduler, workers)

    def run(function, *lists):
        return client.gather(client.map(function, *lists, pure=False))

    return run, close
