"""Few labels as a workflow: drawing label budgets, hiding labels, comparing the pre-trained
encoder with training from scratch and with the unsupervised threshold at several budgets, and
the predictions for the unlabelled rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from aecore.classifier import (
    ANOMALY_COLUMN,
    APPROACHES,
    MIN_LABELLED,
    PREDICTED_COLUMN,
    FewLabelClassifier,
    encode_labels,
    pretrain,
    stratified_split,
)
from aecore.detector import AnomalyDetector
from aecore.errors import AecoreError
from aecore.io import labelling
from aecore.io.roles import ColumnRoles


def draw_labelled(
    codes: np.ndarray,
    budget: int,
    rng: np.random.Generator,
    *,
    binary: np.ndarray | None = None,
) -> np.ndarray:
    """Positions of ``budget`` rows to label: one row of every class first (as an analyst
    starts from one known example of each kind), the rest at random.

    With ``binary`` (1 = anomaly, 0 = normal, one per row), one normal row and one anomalous
    row are drawn before anything else, so that a budget smaller than the number of classes
    (10 labels, 20 attack names) still holds both kinds wherever ``codes`` has them."""
    if budget > len(codes):
        raise AecoreError(f"Cannot draw {budget} labelled rows from {len(codes)}.")
    chosen: list[int] = []
    if binary is not None:
        binary = np.asarray(binary)
        for kind in rng.permutation(np.unique(binary[binary >= 0])):
            if len(chosen) < budget:
                chosen.append(int(rng.choice(np.flatnonzero(binary == kind))))
    covered = set(np.asarray(codes)[chosen].tolist())
    for code in rng.permutation(np.unique(codes)):
        if len(chosen) < budget and code not in covered:
            chosen.append(int(rng.choice(np.flatnonzero(codes == code))))
    rest = np.setdiff1d(np.arange(len(codes)), chosen)
    extra = rng.choice(rest, size=budget - len(chosen), replace=False)
    return np.sort(np.concatenate([np.asarray(chosen, dtype=np.int64), extra]))


def hide_labels(
    frame: pd.DataFrame, column: str, keep: int, random_state: int = 0
) -> pd.DataFrame:
    """A copy of ``frame`` with only ``keep`` labels of ``column`` left and the others emptied:
    a fully labelled file turned into the few-labels situation, to practise on. The labels kept
    are drawn by ``draw_labelled`` (seeded): a normal and an anomalous row first wherever the
    column has both, then one row of every class there is room for, the rest at random."""
    if column not in frame:
        raise AecoreError(f"The label column {column!r} is not in the data.")
    codes, _, _ = encode_labels(frame[column], "multiclass")
    labelled = np.flatnonzero(codes >= 0)
    keep = min(int(keep), len(labelled))
    binary = labelling.binary_labels(frame[column])[labelled]
    rng = np.random.default_rng(random_state)
    chosen = labelled[draw_labelled(codes[labelled], keep, rng, binary=binary)]
    values = pd.Series(pd.NA, index=frame.index, dtype=object)
    values.iloc[chosen] = frame[column].iloc[chosen].astype(object).to_numpy()
    return frame.assign(**{column: values})


def _binary_scores(labels: np.ndarray, flags: np.ndarray, scores: np.ndarray) -> dict:
    from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

    return {
        "f1": float(f1_score(labels, flags, zero_division=0)),
        "pr_auc": float(average_precision_score(labels, scores)),
        "precision": float(precision_score(labels, flags, zero_division=0)),
        "recall": float(recall_score(labels, flags, zero_division=0)),
    }


def compare_label_budgets(
    frame: pd.DataFrame,
    label_column: str,
    budgets: Sequence[int] = (10, 50, 200, 1000),
    *,
    test_share: float = 0.3,
    repeats: int = 1,
    class_mode: str = "auto",
    fine_tune: bool = False,
    detector: AnomalyDetector | None = None,
    detector_params: dict | None = None,
    classifier_params: dict | None = None,
    roles: ColumnRoles | Mapping[str, str] | None = None,
    random_state: int = 0,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """F1 and PR-AUC of three approaches at each label budget, on the same held-out rows.

    A stratified ``test_share`` of the labelled rows is held out once; the autoencoder is
    pre-trained once on every row (labels ignored). For each budget, ``repeats`` seeded draws
    of that many labelled rows train (a) the frozen pre-trained encoder + head, (b) the same
    network from scratch, and set (c) the reconstruction-error threshold with the best F1 on
    them. Each draw holds at least one normal and one anomalous row, then one row of every
    class it has room for (``draw_labelled``), so that 10 labels among 20 attack names still
    train and set a threshold. Scores are normal-vs-anomaly on the held-out rows, averaged over
    the draws (``_std`` columns: their spread). Budgets larger than the labelled rows left, and
    any budget that cannot be trained or scored, are skipped and the others kept; the reasons
    are in ``result.attrs["notes"]``.
    """
    from aecore.evaluation import thresholds
    from aecore.io import labelling

    if label_column not in frame:
        raise AecoreError(f"The label column {label_column!r} is not in the data.")
    if not 0 < test_share < 1:
        raise AecoreError(f"The test share must be between 0 and 1, got {test_share!r}.")
    if int(repeats) < 1:
        raise AecoreError("repeats must be at least 1.")
    codes, classes, normal = encode_labels(frame[label_column], class_mode)
    binary = labelling.binary_labels(frame[label_column])
    labelled = np.flatnonzero(codes >= 0)
    if len(np.unique(codes[labelled])) < 2:
        raise AecoreError(
            f"The labelled rows of {label_column!r} hold fewer than two classes; nothing to "
            "compare."
        )
    rng = np.random.default_rng(random_state)
    pool_positions, test_positions = stratified_split(codes[labelled], test_share, rng)
    pool, test = labelled[pool_positions], labelled[test_positions]
    if len(np.unique(binary[test])) < 2:
        raise AecoreError("The held-out labelled rows need both normal and anomalous rows.")

    def say(message: str) -> None:
        if progress is not None:
            progress(message)

    if detector is None:
        say("Pre-training the autoencoder on every row")
        detector = pretrain(
            frame,
            label_column,
            roles=roles,
            random_state=random_state,
            **(detector_params or {}),
        )
    errors = detector.reconstruction_error(frame)
    base = dict(classifier_params or {})
    base.update(label_column=label_column, class_mode=class_mode)
    rows, notes = [], []
    for budget in budgets:
        budget = int(budget)
        if budget > len(pool):
            notes.append(
                f"Budget {budget} skipped: only {len(pool)} labelled rows are left outside the "
                f"{len(test)} held-out ones."
            )
            continue
        if budget < MIN_LABELLED:
            notes.append(f"Budget {budget} skipped: a classifier needs at least {MIN_LABELLED}.")
            continue
        results: dict[str, list[dict]] = {name: [] for name in APPROACHES}
        counts = []
        try:
            for repeat in range(int(repeats)):
                seed = random_state + 1000 * repeat + budget
                chosen = pool[
                    draw_labelled(
                        codes[pool], budget, np.random.default_rng(seed), binary=binary[pool]
                    )
                ]
                counts.append(int((binary[chosen] == 1).sum()))
                partial = pd.Series(pd.NA, index=range(len(frame)), dtype=object)
                partial.iloc[chosen] = np.asarray(frame[label_column].iloc[chosen], dtype=object)
                for name, pretrained in (("pretrained", True), ("scratch", False)):
                    say(f"Budget {budget}, draw {repeat + 1}: {APPROACHES[name].lower()}")
                    classifier = FewLabelClassifier(
                        **{**base, "pretrained": pretrained, "fine_tune": fine_tune and pretrained},
                        random_state=seed,
                    )
                    classifier.fit(frame, partial.to_numpy(), detector=detector)
                    held_out = frame.iloc[test]
                    results[name].append(
                        _binary_scores(
                            binary[test],
                            classifier.predict_anomaly(held_out),
                            classifier.anomaly_probability(held_out),
                        )
                    )
                choice = thresholds.choose_threshold(
                    errors[chosen], "best_f1", labels=binary[chosen]
                )
                results["unsupervised"].append(
                    _binary_scores(binary[test], errors[test] > choice.value, errors[test])
                )
        except AecoreError as error:
            notes.append(f"Budget {budget} skipped: {error}")
            continue
        for name, scores in results.items():
            table = pd.DataFrame(scores)
            rows.append(
                {
                    "budget": budget,
                    "approach": name,
                    "approach_label": APPROACHES[name],
                    "f1": float(table["f1"].mean()),
                    "f1_std": float(table["f1"].std(ddof=0)),
                    "pr_auc": float(table["pr_auc"].mean()),
                    "pr_auc_std": float(table["pr_auc"].std(ddof=0)),
                    "precision": float(table["precision"].mean()),
                    "recall": float(table["recall"].mean()),
                    "labelled_anomalies": float(np.mean(counts)),
                    "repeats": int(repeats),
                    "n_test": int(len(test)),
                }
            )
    result = pd.DataFrame(
        rows,
        columns=[
            "budget", "approach", "approach_label", "f1", "f1_std", "pr_auc", "pr_auc_std",
            "precision", "recall", "labelled_anomalies", "repeats", "n_test",
        ],  # fmt: skip
    )
    result.attrs["notes"] = notes
    result.attrs["classes"] = list(classes)
    return result


def predict_unlabelled(
    classifier: FewLabelClassifier, frame: pd.DataFrame, label_column: str | None = None
) -> pd.DataFrame:
    """The rows of ``frame`` whose label is empty, most likely attacks first, with the
    predicted class, the probability of not being normal and one probability per class.

    ``source_row`` is the row's number in the file as the export numbers it (``frame`` is the
    file's rows in order; the header is row 1: ``export.SOURCE_ROW_NOTE``), followed by the
    model's id columns (``roles_.ids``) where ``frame`` has them. Added columns are prefixed
    ``p_``; an original column with a clashing name keeps its values under the name with
    ``_input`` appended.
    """
    from aecore.workflows.export import SOURCE_ROW, id_columns, source_rows

    classifier.check_fitted()
    column = label_column or classifier.label_column_
    if column is None or column not in frame:
        raise AecoreError(f"The label column {column!r} is not in the data.")
    unlabelled = np.flatnonzero(labelling.binary_labels(frame[column]) < 0)
    part = frame.iloc[unlabelled]
    probabilities = classifier.probabilities(part)
    anomalous = ~np.isin(classifier.classes_, classifier.normal_classes_)
    ids = id_columns(frame.columns, getattr(classifier, "roles_", None))
    added = {
        SOURCE_ROW: source_rows(unlabelled),
        **{name: part[name].to_numpy() for name in ids},
        PREDICTED_COLUMN: (
            classifier.classes_[np.argmax(probabilities, axis=1)]
            if len(part)
            else np.asarray([], dtype=object)
        ),
        ANOMALY_COLUMN: probabilities[:, anomalous].sum(axis=1),
    }
    for index, name in enumerate(classifier.classes_):
        added[f"p_{name}"] = probabilities[:, index]
    taken = set(frame.columns) | set(added)
    renamed = {}
    for original in frame.columns:
        if original in added and original not in ids:
            candidate = f"{original}_input"
            while candidate in taken:
                candidate += "_"
            taken.add(candidate)
            renamed[original] = candidate
    out = pd.concat(
        [
            pd.DataFrame(added, index=part.index),
            part.drop(columns=ids).rename(columns=renamed),
        ],
        axis=1,
    )
    order = np.argsort(-out[ANOMALY_COLUMN].to_numpy(), kind="stable")
    return out.iloc[order].reset_index(drop=True)
