"""Long steps in a background thread, so the page stays live: a rerun or a page change does not
stop them, the Cancel button works, and the page polls their progress.

``Task`` is one such step: the thread only appends to ``messages`` and ``progress`` and sets the
result fields (no streamlit call is made from it), and the page reads them. ``TrainingJob`` is
the Train page's task (fitting a detector); ``ui.background`` holds the other pages' steps (the
few-label comparison and classifier, retraining a drifted model), run by ``start_task``.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from aecore.errors import AecoreError

POLL_SECONDS = 0.5  # the Train page's live loss curve
log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a task's function when the analyst pressed Cancel."""


@dataclass(eq=False)
class Task:
    """One background step: what it is, its progress, and how it ended."""

    kind: str  # "train", "compare", "classifier" or "retrain"
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
        """Stop after the current batch (training; the best weights so far are kept) or the
        current step (anything else)."""
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

    def _launch(self, work: Callable[[Task], Any], synchronous: bool) -> None:
        if synchronous:
            self._run(work)
            return
        self._thread = threading.Thread(
            target=self._run, args=(work,), name=f"{self.kind}-{self.id}", daemon=True
        )
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task ends (tests and scripts); True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running


def start_task(
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
    task._launch(work, synchronous)
    return task


@dataclass(eq=False, kw_only=True)
class TrainingJob(Task):
    """Fitting ``AnomalyDetector(**params)``; ``detector`` is the fitted model (also after
    Cancel, with the best weights so far), ``model_id`` its id among the session's models."""

    data_name: str
    data_key: str | None
    n_rows: int
    model_id: str | None = None

    @property
    def detector(self) -> Any:
        return self.result


def _fit_work(frame: pd.DataFrame, params: dict) -> Callable[[Task], Any]:
    def work(task: Task) -> Any:
        from aecore.detector import AnomalyDetector

        detector = AnomalyDetector(**params)
        return detector.fit(frame, progress=task.progress.append, should_stop=task._cancel.is_set)

    return work


def start(
    frame: pd.DataFrame, params: dict, *, data_name: str, data_key: str, synchronous: bool = False
) -> TrainingJob:
    """Start training ``AnomalyDetector(**params)`` on ``frame`` in a daemon thread (or in the
    caller's thread with ``synchronous=True``) and return the job at once."""
    job = TrainingJob(
        kind="train",
        title="Training",
        params=params,
        data_name=data_name,
        data_key=data_key,
        n_rows=len(frame),
    )
    job._launch(_fit_work(frame, params), synchronous)
    return job
