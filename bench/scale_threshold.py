"""Minimum-cost threshold with a time tolerance of 12 rows over 1,000,000 rows (issue 5).

Run by hand: ``python bench/scale_threshold.py`` (about a minute). Rows are in time order;
about 1.5% are labelled anomalies, in bursts of 5 to 60 rows; errors overlap between classes.
Cost = 1 x false alarms + 5 x missed anomalies, where an alarm is correct if an anomaly lies
within 12 rows of it and an anomaly is caught if an alarm lies within 12 rows of it.

- aecore: ``aecore.evaluation.thresholds.sweep(errors, labels, tolerance=12, ...).min_cost()``:
every
  distinct error is a candidate, in one sorted pass;
- reference: 200 candidate thresholds (quantiles 95% .. 99.9% of the errors) evaluated one by
  one, each with a set-based check of the +/- 12-row windows.

Target: aecore >= 100x faster, and identical cost at every one of the 200 thresholds.
"""

from __future__ import annotations

import argparse

import numpy as np
from _speed_common import load_average, machine, median, row, seconds, timed

TOLERANCE = 12
C_ALARM, C_MISSED = 1.0, 5.0
N_CANDIDATES = 200


def labelled_errors(n_rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Float32 errors (log-normal; higher and noisier inside anomaly bursts) and 0/1 labels."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(n_rows, dtype=np.int8)
    n_bursts = n_rows * 15 // 1000 // 30
    for start, length in zip(rng.integers(0, n_rows - 60, n_bursts), rng.integers(5, 60, n_bursts),
                             strict=True):  # fmt: skip
        labels[start : start + length] = 1
    errors = rng.lognormal(mean=0.0, sigma=0.6, size=n_rows)
    errors[labels == 1] *= rng.lognormal(mean=1.2, sigma=0.8, size=int(labels.sum()))
    return errors.astype(np.float32), labels


def reference_costs(errors, labels, candidates) -> list[float]:
    """Each candidate on its own: flagged rows and anomalies as sets; an alarm (an anomaly) is
    checked by looking up the rows within +/- tolerance of it in the other set."""
    anomalies = np.flatnonzero(labels == 1).tolist()
    anomaly_set = set(anomalies)
    offsets = range(-TOLERANCE, TOLERANCE + 1)
    costs = []
    for threshold in candidates:
        alarms = np.flatnonzero(errors > threshold).tolist()
        alarm_set = set(alarms)
        false_alarms = sum(1 for i in alarms if not any(i + d in anomaly_set for d in offsets))
        missed = sum(1 for j in anomalies if not any(j + d in alarm_set for d in offsets))
        costs.append(C_ALARM * false_alarms + C_MISSED * missed)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-repeats", type=int, default=2)
    args = parser.parse_args()

    from aecore.evaluation import thresholds

    print(f"machine: {machine()}")
    errors, labels = labelled_errors(args.rows)
    print(f"{args.rows:,} rows, {int(labels.sum()):,} labelled anomalies, tolerance {TOLERANCE}")
    candidates = np.quantile(errors, np.linspace(0.95, 0.999, N_CANDIDATES))

    def ours():
        curve = thresholds.sweep(
            errors, labels, tolerance=TOLERANCE, c_alarm=C_ALARM, c_missed=C_MISSED
        )
        return curve, curve.min_cost()

    aecore_runs = [timed(ours) for _ in range(args.repeats)]
    curve, choice = aecore_runs[-1][2]
    reference_runs = [timed(lambda: reference_costs(errors, labels, candidates))
                      for _ in range(args.reference_repeats)]  # fmt: skip
    costs = reference_runs[-1][2]
    ours_at = [curve.at(float(t))["cost"] for t in candidates]
    identical = all(a == b for a, b in zip(ours_at, costs, strict=True))
    best = int(np.argmin(costs))

    ours_s = median(r[0] for r in aecore_runs)
    ref_s = median(r[0] for r in reference_runs)
    print()
    print(f"Minimum-cost threshold, tolerance {TOLERANCE}, {args.rows:,} rows "
          f"(median of {args.repeats} / {args.reference_repeats} runs)")  # fmt: skip
    print(row("", "time", "candidates", "vs reference", "target"))
    print(row("aecore sweep + min_cost (every cut)", seconds(ours_s), f"{len(curve):,}",
              f"{ref_s / ours_s:.0f}x faster", ">= 100x faster"))  # fmt: skip
    print(row("200 thresholds one by one, set-based", seconds(ref_s), f"{N_CANDIDATES}", "1x",
              ""))  # fmt: skip
    print(f"    identical cost at all {N_CANDIDATES} thresholds: {identical}")
    print(f"    best of the 200: cost {costs[best]:g} at {candidates[best]:.4g} "
          f"(aecore there: {ours_at[best]:g}); aecore's minimum over every cut: cost "
          f"{choice.params['cost']:g} at {choice.value:.4g}")  # fmt: skip
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
