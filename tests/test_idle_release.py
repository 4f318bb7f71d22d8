"""Idle sessions give their data back (issue 14, item 9): after AECORE_IDLE_RELEASE_MINUTES
without a page run, a session's frame and scores are dropped; on return the page says so and
offers to load it again. The clock is faked by moving the last activity back."""

import time

import pandas as pd

from tests.pages_support import no_exception, open_app
from ui import state

IDLE = 31 * 60  # seconds: past the default 30 minutes


def test_an_idle_session_is_told_its_data_was_released_and_can_reload_it(models_dir):
    at = open_app("threshold")
    assert at.session_state[state.SCORES], "scored before"
    at.session_state[state.LAST_ACTIVITY] = time.time() - IDLE
    at.run()
    no_exception(at)
    assert at.session_state[state.DATA_FRAME] is None
    assert not at.session_state[state.SCORES] and at.session_state[state.SCORED] is None
    note = " ".join(i.value for i in at.info)
    assert "server_metrics.csv" in note and "4,000 rows" in note
    assert "released after 30 minutes without activity" in note
    at.button(key="reload_released").click().run()
    no_exception(at)
    assert len(at.session_state[state.DATA_FRAME]) == 4000
    assert at.session_state[state.RELEASED] is None
    assert not any("released" in i.value for i in at.info)


def test_an_active_session_keeps_its_data(models_dir):
    at = open_app("threshold")
    at.session_state[state.LAST_ACTIVITY] = time.time() - 60
    at.run()
    assert len(at.session_state[state.DATA_FRAME]) == 4000
    assert at.session_state[state.RELEASED] is None


def test_the_idle_time_is_configurable_and_0_never_releases(monkeypatch):
    frame = pd.DataFrame({"a": range(5)})
    session = {state.DATA_FRAME: frame, state.DATA_NAME: "up.csv", state.DATA_SOURCE: "upload",
               state.LAST_ACTIVITY: 1000.0}  # fmt: skip
    monkeypatch.setenv("AECORE_IDLE_RELEASE_MINUTES", "0")
    assert not state.release_if_idle(session, now=1e9)
    monkeypatch.setenv("AECORE_IDLE_RELEASE_MINUTES", "5")
    assert not state.release_if_idle(session, now=1000.0 + 4 * 60)
    assert state.release_if_idle(session, now=1000.0 + 6 * 60)
    assert session[state.DATA_FRAME] is None
    assert session[state.RELEASED] == {"name": "up.csv", "source": "upload", "rows": 5,
                                       "minutes": 5}  # fmt: skip


def test_a_session_with_a_task_running_is_not_idle():
    class Running:
        running = True

    session = {state.DATA_FRAME: pd.DataFrame({"a": [1]}), state.LAST_ACTIVITY: 0.0,
               state.JOB: Running()}  # fmt: skip
    assert not state.release_if_idle(session, now=1e9)
    assert session[state.DATA_FRAME] is not None


def test_an_upload_released_points_to_the_data_page():
    from ui import session

    problem = session.released_problem(
        {"name": "big.csv", "source": "upload", "rows": 1_000_000, "minutes": 30}
    )
    assert problem.reload_sample is None and problem.page == session.DATA_PAGE
    assert "big.csv" in problem.message and "1,000,000 rows" in problem.message


def test_the_sweeper_releases_the_idle_sessions_the_server_holds(monkeypatch):
    from ui import runtime

    def session(last):
        return {state.DATA_FRAME: pd.DataFrame({"a": [1, 2]}), state.DATA_NAME: "x.csv",
                state.DATA_SOURCE: "upload", state.LAST_ACTIVITY: last}  # fmt: skip

    idle, active = session(0.0), session(time.time())
    monkeypatch.setattr(runtime, "active_session_states", lambda: [idle, active])
    assert state.sweep_idle_sessions() == 1
    assert idle[state.DATA_FRAME] is None and len(active[state.DATA_FRAME]) == 2


def test_outside_a_running_server_there_are_no_sessions_to_sweep():
    from ui import runtime

    assert runtime.active_session_states() == []
    assert state.sweep_idle_sessions() == 0
