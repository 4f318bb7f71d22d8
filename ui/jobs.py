"""Training in a background thread, so the page stays live: a rerun or a page change does not
stop it, the Cancel button works, and the page polls its progress to draw each epoch."""

from __future__ import annotations

import logging
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from aecore.errors import AecoreError

POLL_SECONDS = 0.5
log = logging.getLogger(__name__)


@dataclass(eq=False)
class TrainingJob:
    """One training run. The worker thread only appends to ``progress`` and sets the result
    fields; the page reads them (no streamlit call is made from the thread)."""

    params: dict
    data_name: str
    data_key: str
    n_rows: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    progress: list = field(default_factory=list)  # aecore.training.EpochProgress per epoch
    status: str = "running"  # running, done, cancelled, failed
    error: str | None = None
    detector: Any = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    collected: bool = False  # the page has taken the model into the session
    model_id: str | None = None  # its id among the session's models, once collected
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    def cancel(self) -> None:
        """Ask training to stop after the current batch (the best weights so far are kept)."""
        self._cancel.set()

    def _run(self, frame: pd.DataFrame) -> None:
        from aecore.detector import AnomalyDetector

        try:
            detector = AnomalyDetector(**self.params)
            detector.fit(frame, progress=self.progress.append, should_stop=self._cancel.is_set)
        except AecoreError as error:
            self.error, self.status = str(error), "failed"
        except Exception as error:  # keep the app up and say what happened
            log.error("Training failed:\n%s", traceback.format_exc())
            self.error = f"Training failed: {type(error).__name__}: {error}"
            self.status = "failed"
        else:
            self.detector = detector
            self.status = "cancelled" if detector.history_.get("cancelled") else "done"
        finally:
            self.finished = time.time()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (tests and scripts); True when it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running


def start(
    frame: pd.DataFrame, params: dict, *, data_name: str, data_key: str, synchronous: bool = False
) -> TrainingJob:
    """Start training ``AnomalyDetector(**params)`` on ``frame`` in a daemon thread (or in the
    caller's thread with ``synchronous=True``) and return the job at once."""
    job = TrainingJob(params=params, data_name=data_name, data_key=data_key, n_rows=len(frame))
    if synchronous:
        job._run(frame)
        return job
    job._thread = threading.Thread(
        target=job._run, args=(frame,), name=f"training-{job.id}", daemon=True
    )
    job._thread.start()
    return job
