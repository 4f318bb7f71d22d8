"""Long steps other than training a detector, run in a background thread like ``ui.jobs``: the
few-label comparison, the final few-label classifier and retraining a drifted model.

A ``Task`` runs one function of aecore calls; the thread only appends to ``messages`` and
``progress`` and sets the result fields (no streamlit call is made from it), and the page polls
them. Cancelling sets an event: training loops stop after the current batch, and the next
progress message raises ``Cancelled`` so the remaining steps are skipped.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from aecore import drift, persistence
from aecore.errors import AecoreError
from aecore.export import to_safe_csv
from aecore.roles import ColumnRoles
from aecore.semisupervised import (
    FewLabelClassifier,
    compare_label_budgets,
    predict_unlabelled,
    pretrain,
)

# Streamlit collects garbage after every run, fragment runs included (``runner.postScriptGC``);
# with TensorFlow loaded that takes a good part of a second and holds the GIL, so polling every
# half second left training ten times slower. Every 1.5 s leaves it at full speed.
POLL_SECONDS = 1.5
log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a task's function when the analyst pressed Cancel."""


@dataclass(eq=False)
class Task:
    """One background step: what it is, its progress, and how it ended."""

    kind: str  # "compare", "classifier" or "retrain"
    title: str
    params: dict = field(default_factory=dict)  # what the page needs to describe the result
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    messages: list = field(default_factory=list)  # steps, as sentences
    progress: list = field(default_factory=list)  # aecore.training.EpochProgress per epoch
    status: str = "running"  # running, done, cancelled, failed
    error: str | None = None
    result: Any = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    collected: bool = False  # the page has taken the result into the session
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Stop after the current batch (training) or the current step (anything else)."""
        self._cancel.set()

    def say(self, message: str) -> None:
        """Record a step; raises ``Cancelled`` once Cancel was pressed."""
        self.check()
        self.messages.append(message)
        self.progress.clear()  # epochs shown belong to the current step only

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled

    def _run(self, work: Callable[[Task], Any]) -> None:
        try:
            self.result = work(self)
        except Cancelled:
            self.status = "cancelled"
        except AecoreError as error:
            self.error, self.status = str(error), "failed"
        except Exception as error:  # keep the app up and say what happened
            log.error("%s failed:\n%s", self.title, traceback.format_exc())
            self.error = f"{self.title} failed: {type(error).__name__}: {error}"
            self.status = "failed"
        else:
            self.status = "cancelled" if self._cancel.is_set() else "done"
        finally:
            self.finished = time.time()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task ends (tests and scripts); True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running


def start(
    kind: str,
    title: str,
    work: Callable[[Task], Any],
    *,
    params: dict | None = None,
    synchronous: bool = False,
) -> Task:
    """Run ``work(task)`` in a daemon thread (or in the caller's with ``synchronous=True``)
    and return the task at once."""
    task = Task(kind=kind, title=title, params=dict(params or {}))
    if synchronous:
        task._run(work)
        return task
    task._thread = threading.Thread(
        target=task._run, args=(work,), name=f"{kind}-{task.id}", daemon=True
    )
    task._thread.start()
    return task


# ---------------------------------------------------------------- few labels


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
        task.say("Pre-training the autoencoder on every row (labels ignored)")
        detector = pretrain(
            frame,
            label_column,
            roles=roles,
            random_state=random_state,
            progress=task.progress.append,
            should_stop=task._cancel.is_set,
            **({"epochs": int(pretrain_epochs)} if pretrain_epochs else {}),
        )
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
    unlabelled rows. Result: {"classifier", "predictions", "csv" (``aecore.export.to_safe_csv``
    of the predictions), "detector"}."""

    def work(task: Task) -> dict:
        model = detector
        if model is None:
            task.say("Pre-training the autoencoder on every row (labels ignored)")
            model = pretrain(
                frame,
                label_column,
                roles=roles,
                random_state=random_state,
                progress=task.progress.append,
                should_stop=task._cancel.is_set,
                **({"epochs": int(pretrain_epochs)} if pretrain_epochs else {}),
            )
        task.say("Training the classifier on every labelled row")
        classifier = FewLabelClassifier(
            label_column=label_column,
            class_mode=class_mode,
            pretrained=approach != "scratch",
            fine_tune=approach == "fine_tune",
            random_state=random_state,
            **({"epochs": int(classifier_epochs)} if classifier_epochs else {}),
        ).fit(frame, detector=model)
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
) -> Callable[[Task], dict]:
    """``aecore.drift.retrain`` (a new detector; ``detector`` is left unchanged) with epoch
    progress and Cancel, then saved as bundle ``save_as`` (an existing bundle of that name stays
    as its previous version). Nothing is saved when cancelled. Result: {"detector", "folder",
    "version"}."""

    def work(task: Task) -> dict:
        task.say(
            "Fine-tuning the model on the new normal rows"
            if mode == "fine_tune"
            else "Training a new model from scratch on the recent rows"
        )
        new = drift.retrain(
            detector,
            frame,
            mode=mode,
            window=window,
            epochs=epochs,
            progress=task.progress.append,
            should_stop=task._cancel.is_set,
        )
        task.say(f"Saving as {save_as}")
        how = "Fine-tuned" if mode == "fine_tune" else "Retrained from scratch"
        scope = "" if window is None else f" (window: {window})"
        folder = persistence.save(
            new,
            save_as,
            models_dir=models_dir,
            description=f"{how} on {new.retraining_['rows']:,} recent rows{scope}.",
        )
        version = str(persistence.read_meta(save_as, models_dir=models_dir)["version"])
        return {"detector": new, "folder": str(folder), "version": version}

    return work
