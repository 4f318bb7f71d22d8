"""Peak memory of a process that loads, scores and thresholds a 1,000,000 x 30 CSV (issue 5).

Run by hand: ``python bench/scale_memory.py`` (about a minute). Each measurement runs in a fresh
process (``--child STEP``), which imports aecore (TensorFlow included), records its resident
memory (the baseline), fits a default detector on a 20,000-row sample of synthetic data (the
model of an earlier session; 2 epochs), then does the work up to STEP:

- ``load``: ``aecore.io.reader.read_csv`` + ``infer_roles`` of the 1,000,000 x 30 CSV (about 190
MB);
- ``score``: plus ``detector.score_rows(frame)`` (row errors, per-feature errors, codes) and
  ``explain.top_features(errors, 3)``;
- ``threshold``: plus the slider's ``ErrorIndex``, a 99th-percentile threshold, the flags and a
  100-bin histogram.

Peak resident memory comes from ``resource.getrusage`` (``ru_maxrss``, everything the process
ever held: numpy, pyarrow, TensorFlow); ``tracemalloc`` adds the peak of Python and numpy
allocations alone. Target: (peak - baseline) <= 8x the data's size as float32 (120 MB).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from _speed_common import N_FEATURES, frame, load_average, machine, numeric_csv, row, synthetic

STEPS = ("load", "score", "threshold")


def resident_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(step: str, path: Path) -> dict:
    import resource
    import tracemalloc

    import numpy as np

    from aecore import AnomalyDetector
    from aecore.evaluation import thresholds
    from aecore.evaluation.explain import top_features
    from aecore.io import inference, reader

    detector = AnomalyDetector(epochs=2).fit(frame(synthetic(20_000, seed=3)))
    baseline = resident_mb()
    tracemalloc.start()
    loaded = reader.read_csv(path)
    inference.infer_roles(loaded)
    if step in ("score", "threshold"):
        scores = detector.score_rows(loaded)
        top_features(scores.feature_errors, 3)
        if step == "threshold":
            index = thresholds.ErrorIndex(scores.row_error)
            choice = thresholds.percentile_threshold(scores.row_error, percentile=99.0)
            flags = thresholds.flag(scores.row_error, choice.value)
            index.histogram(100, log=True)
            assert int(np.sum(flags)) == index.count_above(choice.value)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"baseline_mb": baseline, "peak_mb": peak, "traced_peak_mb": traced_peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--child", choices=STEPS)
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.path))))
        return

    print(f"machine: {machine()}")
    path = numeric_csv(args.rows)
    float32_mb = args.rows * N_FEATURES * 4 / 2**20
    results = {}
    for step in STEPS:
        done = subprocess.run(
            [sys.executable, __file__, "--child", step, "--path", str(path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[step] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{step}: {results[step]}", flush=True)

    print()
    print(f"Peak memory, {args.rows:,} x {N_FEATURES} rows ({float32_mb:.0f} MiB as float32); "
          "one process per line")  # fmt: skip
    print(row("", "peak RSS", "above baseline", "x float32", "target"))
    for step in STEPS:
        result = results[step]
        above = result["peak_mb"] - result["baseline_mb"]
        target = "<= 8x" if step == "threshold" else ""
        print(row(f"up to {step} (baseline {result['baseline_mb']:.0f} MiB)",
                  f"{result['peak_mb']:.0f} MiB", f"{above:.0f} MiB",
                  f"{above / float32_mb:.1f}x", target))  # fmt: skip
        print(f"    tracemalloc peak (Python and numpy allocations only): "
              f"{result['traced_peak_mb']:.0f} MiB ({result['traced_peak_mb'] / float32_mb:.1f}x)")
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
