"""Many sessions at once (issue 14, item 9): background tasks share one bounded worker pool,
a queued task knows its place in line and can be cancelled while it waits."""

import threading

import pytest

from ui import jobs

WAIT = 60  # a safety net against a hang, never a timing


@pytest.fixture
def pool(monkeypatch):
    """A pool of one worker for the test, in place of the process-wide one."""
    small = jobs.WorkerPool(1)
    monkeypatch.setattr(jobs, "POOL", small)
    return small


def blocker(log: list, name: str, release: threading.Event):
    def work(task):
        log.append(f"{name} started")
        assert release.wait(WAIT)
        log.append(f"{name} ended")
        return name

    return work


def test_with_one_worker_the_second_task_waits_its_turn_then_runs(pool):
    log, first_go, second_go = [], threading.Event(), threading.Event()
    first = jobs.start_task("train", "First", blocker(log, "first", first_go))
    second = jobs.start_task("train", "Second", blocker(log, "second", second_go))
    assert first.status == "running" and first.queue_position is None
    assert second.status == "queued" and second.running  # pages keep showing it as live
    assert second.queue_position == 1
    assert jobs.queue_text(second).startswith("Queued: yours is next in line")
    assert log == ["first started"]

    first_go.set()
    assert first.wait(WAIT) and first.status == "done"
    second_go.set()
    assert second.wait(WAIT) and second.status == "done" and second.result == "second"
    assert log == ["first started", "first ended", "second started", "second ended"]


def test_a_third_task_has_one_job_ahead_and_moves_up(pool):
    go = [threading.Event() for _ in range(3)]
    log: list = []
    tasks = [jobs.start_task("train", f"T{i}", blocker(log, f"t{i}", go[i])) for i in range(3)]
    assert [t.queue_position for t in tasks] == [None, 1, 2]
    assert "1 job ahead of yours" in jobs.queue_text(tasks[2])
    go[0].set()
    assert tasks[0].wait(WAIT)
    assert tasks[1].wait(0) is False and tasks[2].queue_position == 1
    go[1].set(), go[2].set()
    assert all(t.wait(WAIT) and t.status == "done" for t in tasks)


def test_cancelling_a_queued_task_takes_it_out_of_line_at_once(pool):
    log, first_go, third_go = [], threading.Event(), threading.Event()
    first = jobs.start_task("train", "First", blocker(log, "first", first_go))
    second = jobs.start_task("train", "Second", blocker(log, "second", threading.Event()))
    third = jobs.start_task("train", "Third", blocker(log, "third", third_go))
    second.cancel()
    assert second.status == "cancelled" and not second.running and second.wait(0)
    assert third.queue_position == 1
    first_go.set(), third_go.set()
    assert first.wait(WAIT) and third.wait(WAIT) and third.status == "done"
    assert "second started" not in log


def test_the_pool_size_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("AECORE_TRAINING_WORKERS", "3")
    assert jobs.training_workers() == 3
    monkeypatch.setenv("AECORE_TRAINING_WORKERS", "none")
    assert jobs.training_workers() == jobs.DEFAULT_TRAINING_WORKERS


def test_the_train_page_shows_the_queue_and_cancels_a_queued_training(models_dir, pool):
    from tests.pages_support import no_exception, open_app, widget
    from ui import state

    busy = threading.Event()
    other = jobs.start_task("train", "Another session's training", lambda task: busy.wait(WAIT))
    try:
        at = open_app("train")
        widget(at.number_input, "Epochs (at most)").set_value(2)
        at.button(key="train_submit").click().run()
        no_exception(at)
        job = at.session_state[state.JOB]
        assert job.queued and job.queue_position == 1
        assert any("Queued: yours is next in line" in i.value for i in at.info)
        at.button(key="cancel_training").click().run()
        no_exception(at)
        assert job.status == "cancelled" and job.detector is None
        at.run()
        assert any("cancelled before it started" in w.value for w in at.warning)
    finally:
        busy.set()
        other.wait(WAIT)
