"""Long steps in a background thread, so the page stays live: a rerun or a page change does not
stop them, the Cancel button works, and the page polls their progress.

``Task`` is one such step: the thread only appends to ``messages`` and ``progress`` and sets the
result fields (no streamlit call is made from it), and the page reads them. ``TrainingJob`` is
the Train page's task (fitting a detector); ``ui.background`` holds the other pages' steps (the
few-label comparison and classifier, retraining a drifted model), run by ``start_task``.

Every background task goes through one process-wide ``WorkerPool`` (``POOL``): at most
``$AECORE_TRAINING_WORKERS`` (default ``DEFAULT_TRAINING_WORKERS``, 2) run at once, whichever
sessions started them; the others wait in line (status "queued", ``queue_position``) and can be
cancelled while they wait.
"""

from __future__ import annotations

import logging
import os
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
WORKERS_ENV = "AECORE_TRAINING_WORKERS"
DEFAULT_TRAINING_WORKERS = 2
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
    progress: list = field(default_factory=list)  # aecore.model.training.EpochProgress per epoch
    status: str = "running"  # queued (waiting for a worker), running, done, cancelled, failed
    error: str | None = None
    result: Any = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    collected: bool = False  # the page has taken the result into the session
    thread: threading.Thread | None = field(default=None, repr=False)  # set by the pool
    pool: WorkerPool | None = field(default=None, repr=False)  # None: run synchronously
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def running(self) -> bool:
        """Not ended yet: running, or queued for a worker."""
        return self.status in ("running", "queued")

    @property
    def queued(self) -> bool:
        return self.status == "queued"

    @property
    def queue_position(self) -> int | None:
        """1 when this task is next in line for a worker, 2 behind one other...; None unless
        queued."""
        return self.pool.position(self) if self.pool is not None and self.queued else None

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def cancelling(self) -> bool:
        """Cancel was pressed (the task may still be finishing its current batch or step)."""
        return self._cancel.is_set()

    def should_stop(self) -> bool:
        """The stop check handed to training (``fit(should_stop=task.should_stop)``)."""
        return self._cancel.is_set()

    def collect(self) -> bool:
        """True exactly once, when the task has ended and its result was not yet taken into
        the session: the one step every polling page runs after the live panel."""
        if self.running or self.collected:
            return False
        self.collected = True
        return True

    def cancel(self) -> None:
        """Stop after the current batch (training; the best weights so far are kept) or the
        current step (anything else); a task still queued is taken out of the line at once."""
        self._cancel.set()
        if self.pool is not None and self.pool.withdraw(self):
            self.status, self.finished = "cancelled", time.time()
            self._done.set()

    def say(self, message: str) -> None:
        """Record a step; raises ``Cancelled`` once Cancel was pressed."""
        self.check()
        self.messages.append(message)
        self.progress.clear()  # epochs shown belong to the current step only

    def check(self) -> None:
        if self._cancel.is_set():
            raise Cancelled

    def run(self, work: Callable[[Task], Any]) -> None:
        """Run ``work(self)`` in the caller's thread, recording how it ended."""
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
            self._done.set()

    def start(self, work: Callable[[Task], Any], *, synchronous: bool = False) -> Task:
        """Queue ``work(self)`` on the process-wide pool (``POOL``), or run it now in the
        caller's thread with ``synchronous=True``. Returns self."""
        if synchronous:
            self.run(work)
            return self
        self.pool = POOL
        POOL.submit(self, work)
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the task ends (tests and scripts); True when it has ended."""
        if self.pool is not None:
            self._done.wait(timeout)
        return not self.running


class WorkerPool:
    """At most ``workers`` tasks run at once, each in its own daemon thread; the others wait in
    line, first come first served, whichever session started them."""

    def __init__(self, workers: int):
        self.workers = max(1, int(workers))
        self._lock = threading.Lock()
        self._waiting: list[tuple[Task, Callable[[Task], Any]]] = []
        self._running: set[Task] = set()

    def submit(self, task: Task, work: Callable[[Task], Any]) -> None:
        with self._lock:
            task.status = "queued"
            self._waiting.append((task, work))
            self._dispatch()

    def position(self, task: Task) -> int | None:
        with self._lock:
            for place, (waiting, _) in enumerate(self._waiting, start=1):
                if waiting is task:
                    return place
        return None

    def withdraw(self, task: Task) -> bool:
        """Take a queued task out of the line; False when it is not waiting (any more)."""
        with self._lock:
            for index, (waiting, _) in enumerate(self._waiting):
                if waiting is task:
                    del self._waiting[index]
                    return True
        return False

    @property
    def n_running(self) -> int:
        return len(self._running)

    @property
    def n_queued(self) -> int:
        return len(self._waiting)

    def _dispatch(self) -> None:  # with the lock held
        while len(self._running) < self.workers and self._waiting:
            task, work = self._waiting.pop(0)
            self._running.add(task)
            task.status, task.started = "running", time.time()
            task.thread = threading.Thread(
                target=self._work, args=(task, work), name=f"{task.kind}-{task.id}", daemon=True
            )
            task.thread.start()

    def _work(self, task: Task, work: Callable[[Task], Any]) -> None:
        try:
            task.run(work)
        finally:
            with self._lock:
                self._running.discard(task)
                self._dispatch()


def training_workers() -> int:
    """How many background tasks run at once: ``$AECORE_TRAINING_WORKERS``, else 2."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    try:
        workers = int(text) if text else DEFAULT_TRAINING_WORKERS
    except ValueError:
        workers = 0
    if workers < 1:
        log.warning("%s=%r is not a whole number >= 1; using %d.", WORKERS_ENV, text,
                    DEFAULT_TRAINING_WORKERS)  # fmt: skip
        workers = DEFAULT_TRAINING_WORKERS
    return workers


POOL = WorkerPool(training_workers())


def queue_text(task: Task) -> str | None:
    """'Queued: 2 jobs ahead of yours. ...' while ``task`` waits for a worker, else None."""
    position = task.queue_position
    if position is None:
        return None
    workers = task.pool.workers if task.pool is not None else POOL.workers
    ahead = "yours is next in line" if position == 1 else (
        f"{position - 1} job{'s' if position > 2 else ''} ahead of yours"
    )
    models = "one model" if workers == 1 else f"{workers} models"
    return (
        f"Queued: {ahead}. The server trains {models} at a time, for all users; yours starts "
        "as soon as one ends."
    )


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
    return task.start(work, synchronous=synchronous)


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


@dataclass
class EpochStatus:
    """Where a network's training stands, from a task's ``progress``: the epochs done and the
    cap of the model training now (the second model counts its own epochs, from 1)."""

    done: int
    total: int
    second: bool  # the detector's second model (see ``AnomalyDetector.second_model``)
    best_epoch: int

    def text(self) -> str:
        """'epoch 3 of at most 49', with 'second model: ' before it for the second model."""
        return ("second model: " if self.second else "") + (
            f"epoch {self.done} of at most {self.total}"
        )


def epoch_status(progress: list) -> EpochStatus | None:
    """The current model's epochs among ``progress`` (``aecore.model.training.EpochProgress`` of one
    step, possibly a first and a second model), or None before the first epoch."""
    if not progress or not progress[-1].epochs:
        return None
    stage = progress[-1].stage
    done = sum(1 for p in progress if p.stage == stage)
    return EpochStatus(
        done=done,
        total=int(progress[-1].epochs),
        second=stage == "second",
        best_epoch=int(progress[-1].best_epoch),
    )


SCHEDULE_FIELDS = ("epochs", "batch_size", "learning_rate", "patience")
_PLANS: dict = {}  # (data key, params) -> planned schedule; content keys, so shared safely
_MAX_PLANS = 64


def planned_schedule(frame: pd.DataFrame, params: dict, data_key: str | None) -> dict:
    """``AnomalyDetector(**params).planned_schedule(frame)``: the schedule training with these
    params will use on this data (the rows that train, one or two models), remembered per data
    key and params. Raises ``AecoreError`` when the data cannot train with them."""
    key = (data_key, repr(sorted(params.items(), key=lambda item: item[0])))
    if data_key is None or key not in _PLANS:
        from aecore.detector import AnomalyDetector

        plan = AnomalyDetector(**params).planned_schedule(frame)
        if data_key is None:
            return plan
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[key] = plan
    return dict(_PLANS[key])


def schedule_text(plan: dict) -> str:
    """One sentence on what a planned training (``planned_schedule``) will run: the rows,
    the inputs, and each schedule setting, marked when set by hand rather than automatic."""
    rows = "normal rows only, by the label" if plan["trained_on"] == "normal" else "all rows"
    values = {
        "epochs": f"at most {plan['epochs']:,} epochs",
        "batch_size": f"batches of {plan['batch_size']:,}",
        "learning_rate": f"learning rate {plan['learning_rate']:.4g}",
        "patience": f"early-stopping patience {plan['patience']}",
    }
    automatic = set(plan.get("automatic", SCHEDULE_FIELDS))
    shown = [text + ("" if key in automatic else " (set by you)") for key, text in values.items()]
    text = (
        f"Will train on {plan['n_train_rows']:,} rows ({rows}) with {plan['n_inputs']:,} "
        f"model inputs (a categorical column gives one per category): {', '.join(shown)}."
    )
    if plan.get("models", 1) > 1:
        text += " A second model then trains the same way."
    if automatic:
        text += " Empty fields are automatic."
    return text


def _fit_work(frame: pd.DataFrame, params: dict) -> Callable[[Task], Any]:
    def work(task: Task) -> Any:
        from aecore.detector import AnomalyDetector

        detector = AnomalyDetector(**params)
        return detector.fit(
            frame, progress=task.progress.append, should_stop=task.should_stop
        )

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
    job.start(_fit_work(frame, params), synchronous=synchronous)
    return job
