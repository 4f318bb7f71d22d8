"""The review loop (issue 18): does reviewing suggested rows, then retraining with the verdicts,
detect better on the rows not reviewed?

Run by hand (not in CI): ``python bench/review.py`` (about 6 minutes on 2 cores; ``--seeds``,
``--budgets``). A simulated analyst, on the network-flow sample
(``aecore.datasets.network_flows(seed=s)``, 6,000 rows, about 4% attacks of four kinds), starts
from the default detector trained on every row with no labels (what an analyst without labels
has), then reviews ``n`` rows, answering each with its true label:

- ``suggested``: ``aecore.workflows.feedback.suggest_rows`` (near the threshold, not all alike);
- ``top flagged``: the ``n`` highest-scoring rows, the usual way to go down a list.

It then retrains with the verdicts (``retrain_with_feedback``, nothing held out; ``--mode``
fine_tune, the default, or scratch) and measures PR-AUC (and ROC-AUC) on the rows **not
reviewed** by that strategy, against the original model on the same rows ("no review") and
against the same retraining without any mark ("retrained without marks": what more training
alone does). Each figure is the mean over the data seeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="data seeds of the network-flow sample")
    parser.add_argument("--budgets", default="10,25,50")
    parser.add_argument("--mode", default="fine_tune", choices=("scratch", "fine_tune"))
    parser.add_argument("--weight", type=int, default=None,
                        help="times a confirmed normal row counts (default: the library's)")
    args = parser.parse_args(argv)

    import numpy as np
    from sklearn.metrics import average_precision_score, roc_auc_score

    from aecore import datasets
    from aecore.detector import AnomalyDetector
    from aecore.workflows.feedback import retrain_with_feedback, suggest_rows

    budgets = [int(b) for b in args.budgets.split(",") if b]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    results: dict[tuple[str, int], list[tuple[float, ...]]] = {}
    started = time.perf_counter()
    for seed in seeds:
        frame = datasets.network_flows(seed=seed)
        truth = (frame["label"] != "benign").to_numpy().astype(np.int8)
        data = frame.drop(columns=["label"])
        detector = AnomalyDetector(random_state=0).fit(data)
        errors = np.asarray(detector.decision_function(data), dtype=np.float64)
        print(
            f"seed {seed}: {len(data):,} rows, {int(truth.sum())} attacks; no review: PR-AUC "
            f"{average_precision_score(truth, errors):.3f}, flagged "
            f"{int((errors > detector.threshold_).sum())}",
            flush=True,
        )
        # The control: the same retraining without any mark (every row, nothing weighted), so
        # that what more training alone changes is not credited to the marks.
        if args.mode == "fine_tune":
            control_model = AnomalyDetector.from_state(detector.get_state(), detector.network())
            control_model.fine_tune(data)
        else:
            control_model = AnomalyDetector(**detector.get_params()).fit(data)
        control = np.asarray(control_model.decision_function(data), dtype=np.float64)
        for n in budgets:
            inputs = detector.transform_inputs(data)
            suggested = suggest_rows(errors, detector.threshold_, inputs, n=n).positions
            top = np.argsort(-errors, kind="stable")[:n]
            for strategy, reviewed in (("suggested", suggested), ("top flagged", top)):
                labels = np.full(len(data), -1, dtype=np.int8)
                labels[reviewed] = truth[reviewed]
                extra = {} if args.weight is None else {"weight": args.weight}
                result = retrain_with_feedback(detector, data, labels, holdout_share=0.0,
                                               mode=args.mode, **extra)  # fmt: skip
                after = np.asarray(result.detector.decision_function(data), dtype=np.float64)
                rest = np.setdiff1d(np.arange(len(data)), reviewed)
                row = (
                    average_precision_score(truth[rest], errors[rest]),
                    average_precision_score(truth[rest], after[rest]),
                    roc_auc_score(truth[rest], errors[rest]),
                    roc_auc_score(truth[rest], after[rest]),
                    float(truth[reviewed].sum()),
                    float(result.left_out),
                    average_precision_score(truth[rest], control[rest]),
                )
                results.setdefault((strategy, n), []).append(row)
                print(
                    f"  {strategy:>11} {n:>3}: {int(row[4])} attacks found, {int(row[5])} rows "
                    f"left out; PR-AUC {row[0]:.3f} -> {row[1]:.3f}, ROC-AUC {row[2]:.3f} -> "
                    f"{row[3]:.3f} (retrained without marks: PR-AUC {row[6]:.3f})",
                    flush=True,
                )
    print(f"\n# Means over data seeds {seeds} ({time.perf_counter() - started:.0f} s)\n")
    print(f"Retraining: {args.mode}. PR-AUC and ROC-AUC on the rows not reviewed.\n")
    print("| reviewed | strategy | attacks found | PR-AUC no review | retrained without marks "
          "| PR-AUC after | change | ROC-AUC no review | ROC-AUC after |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for (strategy, n), rows in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        m = np.mean(np.asarray(rows), axis=0)
        print(f"| {n} | {strategy} | {m[4]:.1f} | {m[0]:.3f} | {m[6]:.3f} | {m[1]:.3f} | "
              f"{m[1] - m[0]:+.3f} | {m[2]:.3f} | {m[3]:.3f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
