"""Scoring many files on a Dask cluster with one saved bundle (``python -m aecore score PATH...
--engine dask``).

Each CSV file is one task; a Parquet file is split on row-group boundaries into enough pieces to
keep every worker busy (``aecore.workflows.pieces``: the rule, the output layout). A worker reads
its task in chunks by the single-machine reader's rules (``aecore.io.chunks.open_csv_chunks``:
the same checks and messages, naming the file), scores every chunk with the bundle's detector
and writes the flagged rows (every row with ``all_rows``) as Parquet parts of about
``chunksize`` rows: ``parts/<file>-<hash>/part-KKKKK.parquet`` (a folder a file, named by its
path), ``parts/<file>-<hash>/piece-PPPPP/part-KKKKK.parquet`` for a piece. Each row has
``source_file`` and ``row`` (the single-machine export's ``source_row``: the row's number in the
whole file as a spreadsheet shows it, in any piece) and the export's columns (error, flag, top
features, model, threshold; the rank is across all files, so it is given in ``top_flagged.csv``
only). Review marks are matched by the row's number in the whole file too.

**The bundle travels as its files.** The client reads the bundle's ``meta.json`` and
``model.keras`` as bytes (``store.bundle_files``); each worker writes them into a folder of its
own once and loads them with the same checks and Keras safe mode as on one machine. The model is
never pickled.

**Failures stay per file.** A file that cannot be read or scored (missing or retyped columns,
unreadable) is reported once, with its name and reason, however many of its pieces failed; the
other files are still scored, and their parts are kept. A task's parts appear under their final
folder only once it is done (with ``_DONE.json``), so ``resume=True`` skips the files and pieces
already done (a failed file's finished pieces too) and scores the rest. An output written before
files were split (one folder a file, ``_DONE.json`` in it) resumes too: a file done whole is
skipped whole. A split file whose row groups changed since some of its pieces were done is
refused, naming its folder (old and new pieces would mix).

The client writes ``summary.json`` (rows scored and flagged, per-file counts and pieces,
failures) and a spreadsheet-safe ``top_flagged.csv`` of the ``top_n`` highest-scoring rows over
all files.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aecore.errors import AecoreError
from aecore.workflows import pieces
from aecore.workflows.pieces import DONE, PARTS, TOP_ROWS, part_folder

INPUT_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
SUMMARY = "summary.json"
TOP = "top_flagged.csv"

_LOADED: dict[str, Any] = {}  # per worker process: bundle key -> detector


# ---------------------------------------------------------------------------- inputs
def expand_inputs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The files named by ``paths``: files as given, folders' CSV and Parquet files (sorted,
    recursively), globs' matches (sorted); one ``AecoreError`` for a path that names none."""
    found: list[Path] = []
    for raw in paths:
        text = str(raw)
        if any(c in text for c in "*?["):
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            matches = [m for m in matches if m.is_file()]
            if not matches:
                raise AecoreError(f"No file matches {text}.")
            found += matches
        elif Path(text).is_dir():
            inside = sorted(
                p for p in Path(text).rglob("*")
                if p.is_file() and p.suffix.lower() in INPUT_SUFFIXES and not p.name.startswith(".")
            )  # fmt: skip
            if not inside:
                raise AecoreError(f"The folder {text} holds no CSV or Parquet files.")
            found += inside
        elif Path(text).is_file():
            found.append(Path(text))
        else:
            raise AecoreError(f"No such file or folder: {text}.")
    unique: dict[Path, None] = {}
    for path in found:
        unique.setdefault(path.resolve(), None)
    return list(unique)


# ---------------------------------------------------------------------------- the bundle
def bundle_payload(name: str, *, models_dir=None, version: str | None = None) -> dict:
    """What every worker needs to load bundle ``name``: its name, its files' bytes and a key
    (their SHA-256), checked here so a bad name fails before any cluster starts."""
    from aecore import store

    files = store.bundle_files(name, models_dir=models_dir, version=version)
    digest = hashlib.sha256()
    for file_name, data in files.items():
        digest.update(file_name.encode() + b"\0" + data)
    return {"name": store.check_name(name), "files": files, "key": digest.hexdigest()}


def worker_detector(bundle: dict, *, threads: int | None = None):
    """The bundle's detector in this process, loaded once from its files (written to a
    folder of its own; Keras safe mode, the store's checks). The first load sizes TensorFlow's
    threads (``_limit_threads``) to ``threads``, else to this worker's own threads."""
    key = bundle["key"]
    if key not in _LOADED:
        threads = threads or _own_worker_threads()
        if threads:
            _limit_threads(threads)
        from aecore.detector import AnomalyDetector

        root = Path(tempfile.mkdtemp(prefix="aecore-bundle-"))
        folder = root / bundle["name"]
        folder.mkdir()
        for file_name, data in bundle["files"].items():
            (folder / file_name).write_bytes(data)
        _LOADED[key] = AnomalyDetector.load(bundle["name"], models_dir=root)
    return _LOADED[key]


def _own_worker_threads() -> int | None:
    """The threads of the Dask worker this runs in (``dask worker --nthreads``), when it has a
    process of its own (a nanny's child); None outside a worker, or for a worker in the
    client's process, whose TensorFlow settings are the client's to choose. A real cluster's
    workers are sized so (eight one-thread workers on an eight-core machine would otherwise each
    score eight batches at once)."""
    import multiprocessing

    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return None
    if multiprocessing.parent_process() is None:
        return None
    return int(worker.state.nthreads) or None


def _limit_threads(threads: int) -> None:
    """TensorFlow's thread pools sized to this worker's share of the cores (several worker
    processes on one machine would otherwise each use them all): ``threads`` inter-op threads,
    over which the Scorer runs that many batches side by side (``scoring.scoring_threads``),
    and one thread an op, as ``import aecore`` sets (the detector's small matrix products run
    slower split over threads), or ``TF_NUM_INTRAOP_THREADS`` when it was set for wide data,
    at most ``threads``."""
    import tensorflow as tf

    threads = max(1, int(threads))
    try:
        per_op = int(os.environ.get("TF_NUM_INTRAOP_THREADS", "1") or 1)
    except ValueError:
        per_op = 1
    try:
        tf.config.threading.set_intra_op_parallelism_threads(min(max(per_op, 1), threads))
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        pass  # TensorFlow already started in this process (an in-process cluster)


# ---------------------------------------------------------------------------- one task
def score_file(
    index: int,
    path: str,
    bundle: dict,
    output: str,
    *,
    model_name: str,
    all_rows: bool = False,
    chunksize: int = 100_000,
    top_n: int = 100,
    threads: int | None = None,
    piece: dict | None = None,
) -> dict:
    """Score one file, or one ``piece`` of it (``pieces.split_row_groups``), into its folder under
    ``output/parts/`` (see the module's docstring). Returns its counts, its folder (where its
    ``top_n`` highest-scoring rows are, in ``top.parquet``) and, when it failed, the reason."""
    from aecore.io.chunks import open_csv_chunks

    folder = Path(output) / PARTS / part_folder(path)
    if piece is not None:
        folder = folder / f"piece-{piece['number']:05d}"
    done = folder / DONE
    about = {"index": index, "file": str(path)}
    if piece is not None:
        about.update(piece=piece["number"], pieces=piece["pieces"])
    if done.is_file():
        return {**json.loads(done.read_text(encoding="utf-8")), **about, "resumed": True}
    partial = folder.with_name(f".{folder.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = time.perf_counter()
    try:
        detector = worker_detector(bundle, threads=threads)
        if int(getattr(detector.autoencoder_, "window", 1)) > 1:
            raise AecoreError(
                "A model over windows of consecutive rows reads rows across chunk edges; score "
                "it on one machine (without --engine dask)."
            )
        chunks = open_csv_chunks(path, chunksize)
        try:
            partial.mkdir(parents=True)
            export = pieces.TaskExport(
                detector, chunks.names, path=str(path), model_name=model_name, folder=partial,
                all_rows=all_rows, top_n=top_n, chunksize=chunksize, reviews=bundle.get("reviews"),
            )  # fmt: skip
            offset = 0 if piece is None else int(piece["offset"])
            for chunk in chunks if piece is None else pieces.piece_chunks(path, piece, chunksize):
                export.add(chunk, offset)
                offset += len(chunk)
            export.finish()
        finally:
            chunks.close()  # a UTF-16 file's UTF-8 copy is removed
        if export.rows == 0:
            raise AecoreError("it has a header but no data rows.")
        if piece is not None and export.rows != piece["rows"]:  # its rows' numbers are wrong
            raise AecoreError("it changed while it was scored (its row groups differ).")
    except Exception as error:  # noqa: BLE001 - one file's failure must not stop the others
        shutil.rmtree(partial, ignore_errors=True)
        reason = str(error)
        if not isinstance(error, AecoreError):
            reason = f"{type(error).__name__}: {error}"
        return {**about, "failed": f"{Path(path).name}: {reason}"}
    result = {
        **about, "folder": folder.relative_to(Path(output) / PARTS).as_posix(),
        "rows": export.rows, "flagged": export.flagged, "parts": export.parts,
        "seconds": round(time.perf_counter() - started, 3),
    }  # fmt: skip
    (partial / DONE).write_text(json.dumps(result), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return result


# ---------------------------------------------------------------------------- the run
def score_on_dask(
    paths: Sequence[str | os.PathLike],
    *,
    model: str,
    output: str | os.PathLike,
    models_dir=None,
    version: str | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Any = None,
    all_rows: bool = False,
    resume: bool = False,
    chunksize: int = 100_000,
    top_n: int = 100,
    progress: Callable[[dict, int, int], None] | None = None,
    on_start: Callable[[str | None], None] | None = None,
) -> dict:
    """Score the files named by ``paths`` with bundle ``model`` on a Dask cluster and write
    ``output`` (a folder; see the module's docstring). The cluster: ``client`` (an existing
    ``distributed.Client``), else the scheduler at ``scheduler``, else a ``LocalCluster`` of
    ``workers`` processes (default: the number of cores). ``progress(result, done, total)``
    after every task (a file, or a piece of one: ``result`` then has ``piece`` and ``pieces``;
    ``total`` counts the tasks); ``on_start(dashboard_link)`` once the cluster is up. Returns
    the summary written to ``summary.json``."""
    files = expand_inputs(paths)
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise AecoreError(f"{out} is a file; --output names a folder for the Parquet parts.")
    if not out.parent.is_dir():
        raise AecoreError(f"Cannot write {out}: the folder {out.parent} does not exist.")
    if (out / PARTS).is_dir() and any((out / PARTS).iterdir()) and not resume:
        raise AecoreError(
            f"{out} already holds scored parts: pass --resume to go on from them, or choose "
            "another output folder."
        )
    if not isinstance(chunksize, int) or chunksize < 1:
        raise AecoreError(f"The chunk size must be a whole number of rows >= 1, got {chunksize!r}.")
    bundle = bundle_payload(model, models_dir=models_dir, version=version)
    from aecore.workflows.review import stored_reviews

    bundle["reviews"] = stored_reviews(models_dir)  # the workers may not see the models folder
    (out / PARTS).mkdir(parents=True, exist_ok=True)

    from distributed import as_completed

    threads = None
    if client is None and not scheduler:
        threads = max(1, (os.cpu_count() or 1) // int(workers or os.cpu_count() or 1))
    client, close = connect(client, scheduler, workers)
    try:
        if on_start is not None:
            on_start(getattr(client, "dashboard_link", None))
        # Sent once, to every worker, as one object (a dict given alone would be scattered
        # value by value); a key of its own per run (hash=False).
        [shared] = client.scatter([bundle], broadcast=True, hash=False)
        slots = sum(client.nthreads().values())  # worker threads, to size the pieces by
        tasks, results = pieces.plan_tasks(files, out, chunksize=chunksize, threads=slots,
                                           resume=resume)  # fmt: skip
        futures = [
            client.submit(
                score_file, task["index"], task["path"], shared, str(out), model_name=model,
                all_rows=all_rows, chunksize=chunksize, top_n=top_n, threads=threads,
                piece=task["piece"], pure=False,
            )
            for task in tasks
        ]  # fmt: skip
        total = len(results) + len(futures)
        for done, result in enumerate(results, start=1):  # files refused while planning
            if progress is not None:
                progress(result, done, total)
        for done, future in enumerate(as_completed(futures), start=len(results) + 1):
            results.append(future.result())
            if progress is not None:
                progress(results[-1], done, total)
    finally:
        close()
    return _summarise(_per_file(results), out, model, top_n)


# Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in every worker process by default. Setting it at all
# turns off glibc's adaptive mmap threshold, so every large array (a chunk's columns, its
# errors) is mapped and unmapped afresh: scoring ran at 108,000 rows/s a worker with it and
# 198,000 without (bench/RESULTS.md). The other variables keep Dask's defaults.
WORKER_ENVIRON = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}


def connect(client: Any = None, scheduler: str | None = None, workers: int | None = None):
    """``(client, close)``: ``client`` as given (``close`` leaves it open), else a client of the
    scheduler at ``scheduler``, else of a new ``local_cluster`` of ``workers`` processes
    (default: the number of cores); ``close()`` ends what was opened here."""
    from distributed import Client

    if client is not None:
        return client, lambda: None
    if scheduler:
        client = Client(scheduler)
        return client, client.close
    n_workers = int(workers or os.cpu_count() or 1)
    if n_workers < 1:
        raise AecoreError(f"--workers must be at least 1, got {n_workers}.")
    cluster = local_cluster(n_workers)
    client = Client(cluster)

    def close():
        # The work is done by now: what Dask logs while it shuts the cluster down (a worker's
        # heartbeat racing the scheduler's close prints a traceback) is not the analyst's
        # concern, so its loggers go quiet, in the workers and here, for the shutdown only.
        try:
            client.run(_quiet_worker_logs)
        except Exception:  # a worker already gone has nothing left to say
            pass
        levels = _quiet_dask_logs()
        try:
            client.close()
            cluster.close()
        finally:
            for logger, level in levels.items():
                logger.setLevel(level)

    return client, close


def _quiet_worker_logs() -> None:
    """``_quiet_dask_logs`` in a worker, for the rest of its life (it is about to end)."""
    _quiet_dask_logs()


def _quiet_dask_logs() -> dict:
    """Raises Dask's loggers (``distributed``, ``distributed.*``, ``tornado``) to CRITICAL in
    this process; returns each one's level before, to restore."""
    import logging

    roots = ("distributed", "tornado")
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] in roots]
    levels = {}
    for name in [*roots, *names]:
        logger = logging.getLogger(name)
        levels.setdefault(logger, logger.level)
        logger.setLevel(logging.CRITICAL)
    return levels


def local_cluster(n_workers: int, *, dashboard_address: str | None = ":0"):
    """A ``distributed.LocalCluster`` of ``n_workers`` single-threaded worker processes, with
    the worker environment scoring needs (``WORKER_ENVIRON``)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.nanny.pre-spawn-environ": dict(WORKER_ENVIRON)}):
        return LocalCluster(
            n_workers=int(n_workers), threads_per_worker=1, processes=True,
            dashboard_address=dashboard_address,
        )  # fmt: skip


def _per_file(results: list[dict]) -> list[dict]:
    """One result a file, in the files' order, from its tasks': counts summed over its pieces,
    or its first piece's failure (by piece) when any failed."""
    by_file: dict[int, list[dict]] = {}
    for result in sorted(results, key=lambda r: (r["index"], r.get("piece", 0))):
        by_file.setdefault(result["index"], []).append(result)
    merged = []
    for index, tasks in by_file.items():
        failed = [t for t in tasks if "failed" in t]
        if failed:
            merged.append({"index": index, "file": tasks[0]["file"], "failed": failed[0]["failed"]})
            continue
        merged.append({
            "index": index, "file": tasks[0]["file"], "folders": [t["folder"] for t in tasks],
            **{key: sum(t[key] for t in tasks) for key in ("rows", "flagged", "parts")},
            "pieces": len(tasks), "resumed": all(t.get("resumed") for t in tasks),
        })  # fmt: skip
    return merged


def _summarise(results: list[dict], out: Path, model: str, top_n: int) -> dict:
    import pyarrow.parquet as pq

    from aecore.workflows.export import write_safe_csv

    scored = [r for r in results if "failed" not in r]
    failures = [{"file": r["file"], "reason": r["failed"]} for r in results if "failed" in r]
    tops = []
    for folder in (f for r in scored for f in r["folders"]):
        top = out / PARTS / folder / TOP_ROWS
        if top.is_file():
            tops.append(pq.read_table(top).to_pandas())
    best = pd.concat(tops, ignore_index=True) if tops else pd.DataFrame()
    if len(best):
        order = np.argsort(-best["reconstruction_error"].to_numpy(), kind="stable")[:top_n]
        best = best.iloc[order].reset_index(drop=True)
        best.insert(0, "rank", np.arange(1, len(best) + 1))
    write_safe_csv(best, out / TOP)
    summary = {
        "model": model,
        "files": len(results),
        "rows_scored": int(sum(r["rows"] for r in scored)),
        "rows_flagged": int(sum(r["flagged"] for r in scored)),
        "per_file": [
            {"file": r["file"], "rows": r["rows"], "flagged": r["flagged"], "parts": r["parts"],
             "pieces": r["pieces"], "resumed": r["resumed"]}
            for r in scored
        ],  # fmt: skip
        "failures": failures,
        "top_flagged": TOP,
    }
    temp = out / f".{SUMMARY}.partial"
    temp.write_text(json.dumps(summary, indent=1), encoding="utf-8")
    os.replace(temp, out / SUMMARY)
    return summary
