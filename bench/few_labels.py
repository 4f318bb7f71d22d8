"""Few labels (issue 7): does a frozen pre-trained encoder + head beat the same network trained
from scratch, and the reconstruction-error detector, at small label budgets?

Run by hand (not in CI): ``python bench/few_labels.py`` (about 5 minutes on 2 cores;
``--repeats``, ``--budgets``, ``--seeds`` to change). Prints, on the network-flow sample
(``aecore.datasets.network_flows(seed=0)``, 6,000 rows, about 4% attacks of four kinds), the
normal-vs-attack F1 and PR-AUC of ``aecore.workflows.label_budgets.compare_label_budgets``:

- (a) ``pretrained``: the encoder of an autoencoder pre-trained on every row (labels ignored),
  frozen, plus a small head trained on the labelled rows;
- (b) ``scratch``: the same network, trained from scratch on the same labelled rows;
- (c) ``unsupervised``: the reconstruction error with the threshold of best F1 on those rows;

each averaged over ``--repeats`` seeded draws of labelled rows (one row of every class first,
as an analyst starts from one known example of each kind, the rest at random), on the same
held-out 30% of the rows. Then the same for each variant in ``VARIANTS`` at the budget of 50.
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
sys.path.insert(0, str(ROOT))  # run as a script from anywhere, without installing the package

# Classifier settings tried at the budget of 50 (keyword arguments of FewLabelClassifier).
VARIANTS = {
    "default (every encoder layer, head of 16)": {},
    "code only": {"representation": "code"},
    "linear head": {"head_units": 0},
    "fine-tuned encoder": {"fine_tune": True},
    "a quarter held out to stop on (before)": {"validation_share": 0.25},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="10,50,200,1000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", default="0", help="comma-separated random_state values")
    parser.add_argument("--mode", default="auto", choices=("auto", "binary", "multiclass"))
    parser.add_argument("--no-variants", action="store_true")
    args = parser.parse_args(argv)

    from aecore import datasets
    from aecore.classifier import pretrain
    from aecore.workflows.label_budgets import compare_label_budgets

    frame = datasets.network_flows(seed=0)
    budgets = [int(b) for b in args.budgets.split(",") if b]
    print(
        f"# Few labels on the network-flow sample: {len(frame):,} rows, "
        f"{int((frame['label'] != 'benign').sum())} attacks; class mode {args.mode}; "
        f"{args.repeats} draws per budget"
    )
    for seed in (int(s) for s in args.seeds.split(",") if s):
        start = time.perf_counter()
        detector = pretrain(frame, "label", random_state=seed)
        table = compare_label_budgets(
            frame, "label", budgets, repeats=args.repeats, class_mode=args.mode,
            detector=detector, random_state=seed,
        )  # fmt: skip
        print(f"\nseed {seed} ({time.perf_counter() - start:.0f} s)")
        print("| budget | approach | F1 (mean ± sd) | PR-AUC (mean ± sd) |")
        print("|---|---|---|---|")
        for row in table.itertuples():
            print(
                f"| {row.budget} | {row.approach} | {row.f1:.3f} ± {row.f1_std:.3f} | "
                f"{row.pr_auc:.3f} ± {row.pr_auc_std:.3f} |"
            )
        if args.no_variants:
            continue
        print(f"\nseed {seed}, budget 50, classifier variants (pretrained vs scratch)")
        print("| variant | pretrained F1 | scratch F1 | pretrained PR-AUC | scratch PR-AUC |")
        print("|---|---|---|---|---|")
        for name, params in VARIANTS.items():
            params = dict(params)
            fine_tune = bool(params.pop("fine_tune", False))
            table = compare_label_budgets(
                frame, "label", [50], repeats=args.repeats, class_mode=args.mode,
                detector=detector, classifier_params=params, fine_tune=fine_tune,
                random_state=seed,
            )  # fmt: skip
            pre = table[table.approach == "pretrained"].iloc[0]
            scratch = table[table.approach == "scratch"].iloc[0]
            print(
                f"| {name} | {pre.f1:.3f} ± {pre.f1_std:.3f} | "
                f"{scratch.f1:.3f} ± {scratch.f1_std:.3f} | {pre.pr_auc:.3f} | "
                f"{scratch.pr_auc:.3f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
