"""Run the CLI end to end on data we did not generate, shaped like what analysts bring.

The tables come from scikit-learn's bundled data sets (no download), written to CSV with
real-looking headers and the mess real exports have: a text label with many values, an id
column, a high-cardinality text column, sentinel values (-999, 3.4e38) and an ``inf`` cell. For
each file the script trains with inferred roles only (``python -m aecore train``, no ``--role``),
scores it (``python -m aecore score --all``, chunked), and checks what an analyst relies on:

- the label and id columns are inferred as such;
- every score is finite and the sentinel rows are flagged, with the sentinel column named;
- ``source_row`` finds each exported row in the input file;
- the ROC-AUC of the error against the label.

``--big-mb N`` also writes an N MB file (the breast-cancer table tiled with noise) and times
chunked scoring of it, with the peak memory of the scoring process.

    python bench/real_data_check.py [--big-mb 300] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
SENTINEL_ROWS = (7, 11)  # data rows (0-based) that get a sentinel after training


def breast_cancer(rng: np.random.Generator) -> tuple[pd.DataFrame, str, str]:
    bunch = datasets.load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns=lambda c: c.title().replace(" ", "_"))
    diagnosis = np.where(bunch.target == 1, "benign", "malignant")
    frame = frame.drop(columns="Target")
    # Mostly benign, as monitoring data is: keep 30 malignant rows.
    keep = np.flatnonzero(diagnosis == "benign").tolist() + np.flatnonzero(
        diagnosis == "malignant"
    )[:30].tolist()
    frame, diagnosis = frame.iloc[keep].reset_index(drop=True), diagnosis[keep]
    frame.insert(0, "patient_id", rng.permutation(len(frame)) + 100_000)
    frame.insert(1, "clinic", [f"clinic-{i:03d}" for i in rng.integers(0, 240, len(frame))])
    frame["Mean_Radius"] = frame["Mean_Radius"].mask(rng.random(len(frame)) < 0.02, -999)
    frame["diagnosis"] = diagnosis
    return frame, "diagnosis", "patient_id"


def digits(rng: np.random.Generator) -> tuple[pd.DataFrame, str, str]:
    bunch = datasets.load_digits(as_frame=True)
    frame = bunch.frame.drop(columns="target")
    frame.columns = [f"pixel_r{i // 8}_c{i % 8}" for i in range(64)]
    names = ["normal", *[f"glyph_{d}_{variant}" for d in range(1, 10) for variant in "abc"]]
    # Digit 0 is normal; every other digit is an anomaly, split into 27 named kinds, and rare.
    target = bunch.target.to_numpy()
    keep = np.flatnonzero(target == 0).tolist() + np.flatnonzero(target != 0)[::40].tolist()
    frame, target = frame.iloc[keep].reset_index(drop=True), target[keep]
    label = [names[0] if t == 0 else names[1 + (t - 1) * 3 + rng.integers(3)] for t in target]
    frame.insert(0, "record_uuid", [f"{rng.integers(1 << 62):016x}" for _ in range(len(frame))])
    frame["category"] = label
    return frame, "category", "record_uuid"


def wine(rng: np.random.Generator) -> tuple[pd.DataFrame, str, str]:
    bunch = datasets.load_wine(as_frame=True)
    frame = bunch.frame.drop(columns="target").rename(columns=lambda c: c.replace("/", "_"))
    target = bunch.target.to_numpy()
    keep = np.flatnonzero(target != 2).tolist() + np.flatnonzero(target == 2)[:6].tolist()
    frame, target = frame.iloc[keep].reset_index(drop=True), target[keep]
    frame.insert(0, "lot_id", np.arange(len(frame)) * 7 + 1000)
    frame["is_outlier"] = np.where(target == 2, "yes", "no")
    return frame, "is_outlier", "lot_id"


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run([sys.executable, "-m", "aecore", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip


def check(name: str, frame: pd.DataFrame, label: str, id_column: str, folder: Path) -> bool:
    source = folder / f"{name}.csv"
    frame.to_csv(source, index=False)
    models = folder / "models"
    trained = run("train", str(source), "--name", name, "--models-dir", str(models),
                  "--epochs", "30", "--quiet")  # fmt: skip
    if trained.returncode != 0:
        print(f"{name}: train failed\n{trained.stderr}")
        return False
    shown = run("show", name, "--models-dir", str(models)).stdout
    label_ok = f"label column:  {label}" in shown
    id_ok = id_column in next((ln for ln in shown.splitlines() if ln.startswith("id columns")), "")

    # Score a copy with hostile cells: a float32-max sentinel and an infinity.
    hostile = frame.copy()
    numeric = [c for c in frame.columns if pd.api.types.is_float_dtype(frame[c])][-1]
    hostile.loc[SENTINEL_ROWS[0], numeric] = 3.4e38
    hostile.loc[SENTINEL_ROWS[1], numeric] = np.inf
    scored_in = folder / f"{name}_hostile.csv"
    hostile.to_csv(scored_in, index=False)
    output = folder / f"{name}_scored.csv"
    scored = run("score", str(scored_in), "--model", name, "--models-dir", str(models),
                 "--output", str(output), "--all", "--chunksize", "97")  # fmt: skip
    if scored.returncode != 0:
        print(f"{name}: score failed\n{scored.stderr}")
        return False
    export = pd.read_csv(output)
    positions = export["source_row"].to_numpy() - 2
    joined = bool(
        (export[id_column].astype(str).to_numpy()
         == hostile[id_column].astype(str).to_numpy()[positions]).all()
    )  # fmt: skip
    finite = bool(np.isfinite(export["reconstruction_error"]).all())
    by_row = export.set_index("source_row")
    sentinel_flagged = all(int(by_row.loc[r + 2, "flag"]) == 1 for r in SENTINEL_ROWS)
    named = all(str(by_row.loc[r + 2, "top1_feature"]) == numeric for r in SENTINEL_ROWS)
    truth = (hostile[label].astype(str).str.lower().isin(["normal", "benign", "no"]) == 0)
    auc = roc_auc_score(truth.to_numpy()[positions], export["reconstruction_error"])
    reviewed = review_loop(name, scored_in, hostile, numeric, models, folder)
    ok = label_ok and id_ok and joined and finite and sentinel_flagged and named and reviewed
    print(
        f"{name:14s} rows {len(frame):5d}  label inferred {label_ok}  id inferred {id_ok}  "
        f"source_row joins {joined}  scores finite {finite}  sentinel rows flagged "
        f"{sentinel_flagged} (named {numeric!r}: {named})  ROC-AUC {auc:.3f}"
    )
    if not ok:
        print(shown)
        print(export.set_index("source_row").loc[[r + 2 for r in SENTINEL_ROWS]].T.tail(8))
    return ok


def review_loop(name: str, scored_in: Path, hostile: pd.DataFrame, numeric: str, models: Path,
                folder: Path) -> bool:
    """Issue 18 on this file: import marks (CSV), see them in a new export, a report that
    names the model and holds them, and a report refused for a file that lacks a column."""
    marks = folder / f"{name}_marks.csv"
    rows = [SENTINEL_ROWS[0] + 2, SENTINEL_ROWS[1] + 2, 3]
    marks.write_text(f"row,status,note\n{rows[0]},confirmed,=sentinel {numeric}\n"
                     f"{rows[1]},anomaly,inf cell\n{rows[2]},false alarm,\n")  # fmt: skip
    imported = run("reviews", "import", str(scored_in), str(marks), "--models-dir", str(models))
    output = folder / f"{name}_scored_reviewed.csv"
    scored = run("score", str(scored_in), "--model", name, "--models-dir", str(models),
                 "--output", str(output), "--all")  # fmt: skip
    report = folder / f"{name}_report.html"
    reported = run("report", str(scored_in), "--model", name, "--models-dir", str(models),
                   "--output", str(report))  # fmt: skip
    broken = folder / f"{name}_broken.csv"
    hostile.drop(columns=[numeric]).to_csv(broken, index=False)
    refused = run("report", str(broken), "--model", name, "--models-dir", str(models),
                  "--output", str(folder / "refused.html"))  # fmt: skip
    ok = imported.returncode == 0 and scored.returncode == 0 and reported.returncode == 0
    if ok:
        export = pd.read_csv(output).set_index("source_row")
        statuses = [str(export.loc[r, "review_status"]) for r in rows]
        html = report.read_text(encoding="utf-8")
        ok = (statuses == ["anomaly", "anomaly", "normal"]
              and str(export.loc[rows[0], "review_note"]).startswith("'=")
              and name in html and "inf cell" in html and "=sentinel" in html
              and "<script src=" not in html)  # fmt: skip
    refused_ok = refused.returncode == 2 and refused.stderr.count("\n") == 1 and numeric in \
        refused.stderr and not (folder / "refused.html").exists()  # fmt: skip
    print(f"{name:14s} review loop: marks imported, in the export and in the report {ok}; a "
          f"file without {numeric!r} refused by report with one line {refused_ok}")  # fmt: skip
    if not (ok and refused_ok):
        print(imported.stderr, scored.stderr, reported.stderr, refused.stderr)
    return ok and refused_ok


def big_file(megabytes: int, folder: Path, rng: np.random.Generator) -> None:
    frame, label, _ = breast_cancer(rng)
    source = folder / "big.csv"
    train = folder / "big_train.csv"
    frame.to_csv(train, index=False)
    run("train", str(train), "--name", "big", "--models-dir", str(folder / "models"),
        "--epochs", "10", "--quiet")  # fmt: skip
    block = frame.to_csv(index=False, header=False).encode()
    header = ",".join(frame.columns).encode() + b"\n"
    repeats = max(1, megabytes * 1024 * 1024 // len(block))
    with open(source, "wb") as handle:
        handle.write(header)
        for _ in range(repeats):
            handle.write(block)
    size = source.stat().st_size / 1e6
    start = time.perf_counter()
    result = run("score", str(source), "--model", "big", "--models-dir", str(folder / "models"),
                 "--output", str(folder / "big_scored.csv"))  # fmt: skip
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rows = repeats * len(frame)
    status = "ok" if result.returncode == 0 else f"failed: {result.stderr.strip()[-300:]}"
    print(f"big file: {size:.0f} MB, {rows:,} rows scored in {seconds:.1f} s "
          f"({rows / seconds:,.0f} rows/s), peak memory of a child process {peak:.0f} MB: "
          f"{status}")  # fmt: skip
    marks = folder / "big_marks.csv"
    marks.write_text("row,status,note\n2,anomaly,first\n1000001,normal,far down\n")
    start = time.perf_counter()
    imported = run("reviews", "import", str(source), str(marks), "--models-dir",
                   str(folder / "models"))  # fmt: skip
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    reported = run("report", str(source), "--model", "big", "--models-dir",
                   str(folder / "models"), "--output", str(folder / "big_report.html"))  # fmt: skip
    report_seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    said = "ok" if imported.returncode == 0 else imported.stderr.strip()[-300:]
    answer = "ok: " + reported.stdout.strip() if reported.returncode == 0 else reported.stderr
    print(f"big file review marks imported in {seconds:.1f} s ({said}); report in "
          f"{report_seconds:.1f} s ({answer}), peak memory of a child process so far "
          f"{peak:.0f} MB")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-mb", type=int, default=0, help="also score a file this big")
    parser.add_argument("--keep", help="write the files here instead of a temporary folder")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(args.keep or temporary)
        folder.mkdir(parents=True, exist_ok=True)
        results = [check(name, *build(rng), folder)
                   for name, build in (("breast_cancer", breast_cancer), ("digits", digits),
                                       ("wine", wine))]  # fmt: skip
        if args.big_mb:
            big_file(args.big_mb, folder, rng)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
