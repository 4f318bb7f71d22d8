"""Train / validation / test splits: random, or chronological for time-ordered data."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aecore.errors import AecoreError

SPLIT_METHODS = ("auto", "random", "chronological")


def _no_rows() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass
class Split:
    """Positional row indices of each part.

    ``held_out`` is the test block as drawn (``test_share`` of the rows, with their natural
    mix of normal rows and anomalies); ``test`` adds the anomalies moved out of train and
    validation when only normal rows train. Metrics belong on ``held_out``: every row of it
    was kept away from training, and its class mix is the data's own.
    """

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    held_out: np.ndarray = field(default_factory=_no_rows)

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "test": len(self.test),
        }


def split_rows(
    n_rows: int,
    *,
    method: str = "auto",
    validation_share: float = 0.2,
    test_share: float = 0.0,
    order: np.ndarray | None = None,
    normal_mask: np.ndarray | None = None,
    strata: np.ndarray | None = None,
    seed: int = 0,
) -> Split:
    """Split ``n_rows`` rows into train, validation and test.

    ``auto`` is chronological when an ``order`` (a time column) is given, else random: on
    time-ordered data a random split lets the model see the future and makes the threshold
    too optimistic for tomorrow's rows.
    ``chronological`` keeps the earliest rows for training, then validation, then test, ordered
    by ``order`` (e.g. timestamps) when given, else by row position: no future row leaks into
    training. With ``normal_mask`` (the classic novelty setting), train and validation keep only
    normal rows; the anomalies that fell into them move to test, where they can be evaluated.
    With ``strata`` (e.g. the labels, one value per row), a random split draws the test block
    stratified: each value keeps its share of the rows there (at least one row of a value that
    has two or more), so a rare anomaly class is not left out of the held-out rows by chance.
    """
    if method not in SPLIT_METHODS:
        raise AecoreError(
            f"Unknown split {method!r}; choose 'auto', 'random' or 'chronological'."
        )
    if method == "auto":
        method = "chronological" if order is not None else "random"
    for name, share in (("validation", validation_share), ("test", test_share)):
        if not 0 <= share < 1:
            raise AecoreError(f"The {name} share must be between 0 and 1, got {share}.")
    if validation_share + test_share >= 0.9:
        raise AecoreError("Validation and test shares together leave too few rows to train on.")
    if method == "random":
        positions = np.random.default_rng(seed).permutation(n_rows)
        if strata is not None and test_share > 0:
            positions = _stratified_last(positions, np.asarray(strata), test_share)
    elif order is not None:
        positions = np.argsort(np.asarray(order), kind="stable")
    else:
        positions = np.arange(n_rows)
    n_test = int(round(n_rows * test_share))
    if method == "random" and strata is not None and test_share > 0:
        n_test = _stratified_test_size(np.asarray(strata), test_share)
    n_val = int(round(n_rows * validation_share))
    if validation_share > 0:
        n_val = max(n_val, 1)
    n_train = n_rows - n_val - n_test
    train = positions[:n_train]
    validation = positions[n_train : n_train + n_val]
    test = positions[n_train + n_val :]
    held_out = test.copy()
    if normal_mask is not None:
        normal_mask = np.asarray(normal_mask, dtype=bool)
        moved = np.concatenate([train[~normal_mask[train]], validation[~normal_mask[validation]]])
        train = train[normal_mask[train]]
        validation = validation[normal_mask[validation]]
        test = np.concatenate([test, moved])
    if method == "random":
        train, validation, test = np.sort(train), np.sort(validation), np.sort(test)
        held_out = np.sort(held_out)
    return Split(train=train, validation=validation, test=test, held_out=held_out)


def _stratum_test_counts(strata: np.ndarray, share: float) -> dict:
    values, counts = np.unique(strata, return_counts=True)
    return {
        value: (min(max(int(round(share * count)), 1), count - 1) if count >= 2 else 0)
        for value, count in zip(values.tolist(), counts.tolist(), strict=True)
    }


def _stratified_test_size(strata: np.ndarray, share: float) -> int:
    return int(sum(_stratum_test_counts(strata, share).values()))


def _stratified_last(positions: np.ndarray, strata: np.ndarray, share: float) -> np.ndarray:
    """``positions`` (a random permutation) reordered so that its last rows are a stratified
    ``share`` of every value of ``strata``; the others keep their random order before them."""
    in_order = strata[positions]
    last = np.zeros(len(positions), dtype=bool)
    for value, count in _stratum_test_counts(strata, share).items():
        last[np.flatnonzero(in_order == value)[:count]] = True
    return np.concatenate([positions[~last], positions[last]])
