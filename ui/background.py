"""The background steps of the Few labels and Drift pages: the few-label comparison, the final
few-label classifier and retraining a drifted model. Each is a ``work(task)`` function run by
``ui.jobs.start_task`` (re-exported here as ``start``), like training on the Train page.
Cancelling sets an event: training loops stop after the current batch, and the next progress
message raises ``Cancelled`` so the remaining steps are skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from aecore import store
from aecore.classifier import FewLabelClassifier, pretrain
from aecore.io.roles import ColumnRoles
from aecore.workflows import retraining
from aecore.workflows.export import to_safe_csv
from aecore.workflows.label_budgets import compare_label_budgets, predict_unlabelled
from ui.jobs import Cancelled, Task
from ui.jobs import start_task as start

__all__ = [
    "Cancelled", "Task", "start", "compare_work", "classifier_work", "retrain_work",
    "feedback_work",
]  # fmt: skip

# Streamlit collects garbage after every run, fragment runs included (``runner.postScriptGC``);
# with TensorFlow loaded that takes a good part of a second and holds the GIL, so polling every
# half second left training ten times slower. Every 1.5 s leaves it at full speed.
POLL_SECONDS = 1.5


# ---------------------------------------------------------------- few labels


def _pretrain_step(
    task: Task,
    frame: pd.DataFrame,
    label_column: str,
    roles: ColumnRoles | None,
    random_state: int,
    epochs: int | None,
) -> Any:
    """The pre-training step both few-label tasks start with: epoch progress and Cancel."""
    task.say("Pre-training the autoencoder on every row (labels ignored)")
    return pretrain(
        frame,
        label_column,
        roles=roles,
        random_state=random_state,
        progress=task.progress.append,
        should_stop=task.should_stop,
        **({"epochs": int(epochs)} if epochs else {}),
    )


def compare_work(
    frame: pd.DataFrame,
    label_column: str,
    budgets: Sequence[int],
    *,
    roles: ColumnRoles | None,
    class_mode: str = "auto",
    fine_tune: bool = False,
    repeats: int = 1,
    pretrain_epochs: int | None = None,
    classifier_epochs: int | None = None,
    random_state: int = 0,
) -> Callable[[Task], dict]:
    """Pre-train on every row (epoch progress, cancellable), then ``compare_label_budgets``
    with that encoder. Result: {"table": comparison, "detector": the pre-trained model}."""

    def work(task: Task) -> dict:
        detector = _pretrain_step(task, frame, label_column, roles, random_state, pretrain_epochs)
        task.check()
        table = compare_label_budgets(
            frame,
            label_column,
            budgets,
            repeats=repeats,
            class_mode=class_mode,
            fine_tune=fine_tune,
            detector=detector,
            classifier_params={"epochs": int(classifier_epochs)} if classifier_epochs else None,
            random_state=random_state,
            progress=task.say,
        )
        return {"table": table, "detector": detector}

    return work


def classifier_work(
    frame: pd.DataFrame,
    label_column: str,
    *,
    detector: Any,
    roles: ColumnRoles | None,
    approach: str,
    class_mode: str = "auto",
    pretrain_epochs: int | None = None,
    classifier_epochs: int | None = None,
    random_state: int = 0,
) -> Callable[[Task], dict]:
    """Train the final classifier on every labelled row (``approach``: "pretrained",
    "fine_tune" or "scratch"; pre-training first when no ``detector`` is given) and predict the
    unlabelled rows. Result: {"classifier", "predictions", "csv" (the predictions through
    ``aecore.workflows.export.to_safe_csv``), "detector"}."""

    def work(task: Task) -> dict:
        model = detector
        if model is None:
            model = _pretrain_step(task, frame, label_column, roles, random_state, pretrain_epochs)
        task.say("Training the classifier on every labelled row")
        classifier = FewLabelClassifier(
            label_column=label_column,
            class_mode=class_mode,
            pretrained=approach != "scratch",
            fine_tune=approach == "fine_tune",
            random_state=random_state,
            **({"epochs": int(classifier_epochs)} if classifier_epochs else {}),
        ).fit(frame, detector=model, should_stop=task.should_stop)
        task.say("Predicting the unlabelled rows")
        predictions = predict_unlabelled(classifier, frame, label_column)
        csv = to_safe_csv(predictions)
        return {"classifier": classifier, "predictions": predictions, "csv": csv, "detector": model}

    return work


# ---------------------------------------------------------------- drift


def retrain_work(
    detector: Any,
    frame: pd.DataFrame,
    *,
    mode: str,
    window: int | str | None,
    epochs: int | None,
    save_as: str,
    models_dir: str,
    source: dict | None = None,
) -> Callable[[Task], dict]:
    """``aecore.workflows.retraining.retrain`` (a new detector, learnt from the rows believed
    normal only;
    ``detector`` is left unchanged) with epoch progress and Cancel, then saved as bundle
    ``save_as`` (an existing bundle of that name stays as its previous version). ``source``
    ("model", "version", "created", "batch") is recorded in the new meta.json. Nothing is saved
    when cancelled. Result: {"detector", "folder", "version", "meta" (the saved meta.json)}."""

    def work(task: Task) -> dict:
        task.say(
            "Fine-tuning the model on the new batch's normal rows"
            if mode == "fine_tune"
            else "Training a new model from scratch on the recent normal rows"
        )
        new = retraining.retrain(
            detector,
            frame,
            mode=mode,
            window=window,
            epochs=epochs,
            progress=task.progress.append,
            should_stop=task.should_stop,
            source=source,
        )
        task.say(f"Saving as {save_as}")
        folder = store.save(
            new,
            save_as,
            models_dir=models_dir,
            description=retraining.describe_retraining(new.retraining_),
        )
        meta = store.read_meta(save_as, models_dir=models_dir)
        return {
            "detector": new, "folder": str(folder), "version": str(meta["version"]), "meta": meta
        }

    return work


# ---------------------------------------------------------------- review


def feedback_work(
    detector: Any, frame: pd.DataFrame, labels: Any, *, mode: str = "fine_tune"
) -> Callable[[Task], Any]:
    """``aecore.workflows.feedback.retrain_with_feedback`` (a new detector, fine-tuned or trained
    from scratch by ``mode``, without the confirmed anomalies, the confirmed normal rows counted
    more; ``detector`` is left unchanged) with epoch progress and Cancel. Nothing is saved: the
    page offers that. Result: the ``FeedbackResult``."""
    from aecore.workflows.feedback import retrain_with_feedback

    def work(task: Task) -> Any:
        task.say("Retraining with your reviews (confirmed anomalies left out)")
        result = retrain_with_feedback(
            detector, frame, labels, mode=mode, progress=task.progress.append,
            should_stop=task.should_stop,
        )
        task.check()
        return result

    return work
