"""Train the bundled demo model ``server-metrics-demo`` and save it in this folder.

The model a fresh clone can score with before training anything: a dense autoencoder trained
on the normal minutes of ``sample_data/server_metrics.csv`` (chronological split, the last
quarter held out to evaluate against the labelled incidents), fixed seed, a few seconds on a
laptop CPU. Run from the repository root:

    python models/build_demo.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere in the checkout
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEMO_NAME = "server-metrics-demo"
SAMPLE = ROOT / "sample_data" / "server_metrics.csv"
SEED = 0
DESCRIPTION = (
    "Demo: a dense autoencoder trained on the normal minutes of the server-metrics sample "
    "(8 servers, 107 sensors); built by models/build_demo.py."
)


def demo_frame():
    """The server-metrics sample, from its CSV (or generated, when the CSV is not there)."""
    from aecore import datasets
    from aecore.io import reader

    if SAMPLE.is_file():
        return reader.read_csv(SAMPLE)
    return datasets.server_metrics(seed=0)


def build(models_dir: Path | None = None) -> Path:
    """Train the demo detector and save it (replacing, not versioning, an older demo)."""
    import tensorflow as tf

    from aecore import AecoreError, store
    from aecore.detector import AnomalyDetector

    tf.config.experimental.enable_op_determinism()
    frame = demo_frame()
    detector = AnomalyDetector(
        architecture="dense",
        epochs=30,
        batch_size=64,
        split="chronological",
        test_share=0.25,
        roles={"timestamp": "time", "label": "label"},
        random_state=SEED,
    ).fit(frame)
    try:
        store.delete_model(DEMO_NAME, models_dir=models_dir)
    except AecoreError:
        pass
    return store.save(detector, DEMO_NAME, models_dir=models_dir, description=DESCRIPTION)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    folder = build(args.models_dir)
    from aecore import store

    meta = store.read_meta(DEMO_NAME, models_dir=args.models_dir)
    print(
        f"Saved {folder} ({sum(p.stat().st_size for p in folder.iterdir()) / 1024:.0f} KiB): "
        f"threshold {meta['threshold']['value']:.4g}, "
        f"{store.metrics_text(meta['evaluation']) or 'no evaluation'}."
    )


if __name__ == "__main__":
    main()
