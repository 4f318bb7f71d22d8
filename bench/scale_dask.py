"""Scoring on Dask (issue 17): 10 million rows x 30 columns in 40 Parquet parts, with 1 and 2
workers on this machine, against two single-process references on the same data, in the same run.

Run by hand (not in CI): ``python bench/scale_dask.py`` (about 5 minutes on 2 cores and 1.3 GB of
disk under ``--dir``; ``--rows`` and ``--parts`` to change). It trains the default detector on
100,000 rows of the same synthetic data (``bench/_speed_common.py``), saves it, writes the parts
once, then prints:

- rows/s of ``score PATH... --engine dask`` (``aecore.workflows.distributed.score_on_dask``,
  flagged rows exported) with 1 and 2 worker processes of one thread each, and the speed-up;
- per worker: rows/s and peak resident memory (``ru_maxrss``), against the part size;
- two references on one part, measured in the same run, in one process with one thread (as a
  worker has), to compare the per-worker figure with:
  - the single-process Scorer: row and per-feature errors of rows already read and encoded
    (``detector.scorer_`` alone: what no scoring of these rows can beat);
  - single-process end to end: ``aecore.workflows.distributed.score_file`` called in-process on
    the part, i.e. exactly a worker's work (read the part in chunks, check and encode them,
    score, write the flagged rows and the top rows as Parquet) without Dask.
    ``aecore.workflows.chunked.score_csv`` is what one machine runs on one file, but it does
    other work (two passes, global ranks, a sorted CSV), so it would not measure what Dask adds.

Each worker has one thread (TensorFlow's pools set to one), as one core of a cluster machine:
on this 2-core machine, 2 workers use both cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def write_parts(folder: Path, rows: int, parts: int) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    per_part = rows // parts
    # The training rows' factor model (``synthetic``'s seed 0), new rows for every part.
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 30)).astype(np.float32) / np.sqrt(6)
    bending = rng.normal(size=(6, 30)).astype(np.float32) / np.sqrt(6)
    for k in range(parts):
        path = folder / f"part-{k:03d}.parquet"
        if path.is_file() and pq.ParquetFile(path).metadata.num_rows == per_part:
            continue
        draw = np.random.default_rng(1000 + k)
        factors = draw.normal(size=(per_part, 6)).astype(np.float32)
        noise = draw.normal(size=(per_part, 30)).astype(np.float32)
        x = factors @ mixing + 0.5 * np.tanh(factors @ bending) + 0.1 * noise
        table = pa.table({f"f{j}": x[:, j] for j in range(x.shape[1])})
        pq.write_table(table, path, row_group_size=100_000)


REFERENCE = r"""
import os, shutil, sys, tempfile, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)
import pyarrow.parquet as pq
from aecore.workflows import distributed
models, part, chunksize = sys.argv[1], sys.argv[2], int(sys.argv[3])
payload = distributed.bundle_payload("bench", models_dir=models)
detector = distributed.worker_detector(payload, threads=1)
frame = pq.read_table(part).to_pandas()
x = detector.transform_inputs(frame)


def end_to_end():
    out = tempfile.mkdtemp(prefix="aecore-reference-")
    try:
        start = time.perf_counter()
        result = distributed.score_file(0, part, payload, out, model_name="bench",
                                        chunksize=chunksize)
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(out)
    assert "failed" not in result, result
    return seconds


detector.scorer_(x[:1000], latent=False)
end_to_end()  # the chunks' batch shapes traced once, as a worker does on its first part
scorer, whole = [], []
for _ in range(3):  # interleaved, so both see the same load
    start = time.perf_counter()
    detector.scorer_(x, latent=False)
    scorer.append(time.perf_counter() - start)
    whole.append(end_to_end())
print(len(x) / sorted(scorer)[1], len(x) / sorted(whole)[1])
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--parts", type=int, default=40)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/aecore_bench/dask"))
    parser.add_argument("--chunksize", type=int, default=100_000)
    args = parser.parse_args()

    from _speed_common import frame, machine, synthetic

    import aecore
    from aecore import store
    from aecore.workflows import distributed

    print(f"# Scoring on Dask, {machine()}")
    models = args.dir / "models"
    if not (models / "bench").is_dir():
        detector = aecore.AnomalyDetector().fit(frame(synthetic(100_000)))
        store.save(detector, "bench", models_dir=models)
    data = args.dir / "parts"
    start = time.perf_counter()
    write_parts(data, args.rows, args.parts)
    print(f"data: {args.rows:,} rows x 30 in {args.parts} Parquet parts "
          f"({sum(p.stat().st_size for p in data.iterdir()) / 1e6:,.0f} MB), "
          f"ready in {time.perf_counter() - start:.0f} s")  # fmt: skip

    part = sorted(data.iterdir())[0]
    reference, end_to_end = (float(v) for v in subprocess.run(
        [sys.executable, "-c", REFERENCE, str(models), str(part), str(args.chunksize)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    ).stdout.split()[-2:])  # fmt: skip
    print(f"single-process Scorer, one thread: {reference:,.0f} rows/s")
    print(f"single-process end to end (score_file in one process on one part, one thread): "
          f"{end_to_end:,.0f} rows/s ({end_to_end / reference:.0%} of the Scorer)")  # fmt: skip

    from distributed import Client

    rates = {}
    for workers in (1, 2):
        out = args.dir / f"out-{workers}"
        shutil.rmtree(out, ignore_errors=True)
        cluster = distributed.local_cluster(workers, dashboard_address=None)
        with cluster, Client(cluster) as client:
            payload = distributed.bundle_payload("bench", models_dir=models)
            client.run(distributed.worker_detector, payload, threads=1)  # loaded once each
            start = time.perf_counter()
            summary = distributed.score_on_dask(
                [data], model="bench", output=out, models_dir=models, client=client,
                chunksize=args.chunksize,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            peaks = client.run(_peak_mb)
        rate = summary["rows_scored"] / seconds
        rates[workers] = rate
        print(
            f"{workers} worker{'s' if workers > 1 else ''}: {summary['rows_scored']:,} rows in "
            f"{seconds:.1f} s = {rate:,.0f} rows/s ({rate / workers:,.0f} per worker, "
            f"{rate / workers / reference:.0%} of the single-process Scorer, "
            f"{rate / workers / end_to_end:.0%} of single-process end to end); "
            f"{summary['rows_flagged']:,} flagged; peak memory per worker "
            + ", ".join(f"{v:,.0f} MB" for v in peaks.values())
        )
    print(f"speed-up, 2 workers against 1: {rates[2] / rates[1]:.2f}x")
    print(f"part size: {args.rows // args.parts:,} rows, read in chunks of {args.chunksize:,}")
    return 0


def _peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    sys.exit(main())
