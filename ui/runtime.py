"""The two places this app reaches into Streamlit's internals, kept in one module: one change
to how Streamlit runs the app's scripts (made once per server process), and the list of the
server's sessions (for the idle release, ``ui.state.sweep_idle_sessions``). Either falls back
to doing nothing when Streamlit's internals change.

After every script run, fragment runs included, Streamlit calls ``keras.backend.clear_session()``
when Keras is imported (``streamlit.runtime.scriptrunner.script_runner._clean_problem_modules``,
meant for Keras 2's global graph). Under Keras 3 that resets Keras's global state while another
session's model trains in a background thread, and runs a full ``gc.collect()`` over
TensorFlow's objects: with four analysts' pages polling their trainings, it took 80% of the
server's CPU (py-spy, ``bench/load_sessions.py``). This app holds every model explicitly and
has no global graph to clear, so the Keras step is skipped; the rest of Streamlit's clean-up
(matplotlib figures) is kept. Streamlit's function is internal: when it is not found, nothing
is changed and the app runs as before, only slower under load.
"""

from __future__ import annotations

import sys
from typing import Any

_PATCHED = "_aecore_keeps_keras_session"


def keep_keras_session() -> bool:
    """Skip Streamlit's per-run ``keras.backend.clear_session()``; True when it is skipped."""
    try:
        from streamlit.runtime.scriptrunner import script_runner
    except ImportError:
        return False
    original = getattr(script_runner, "_clean_problem_modules", None)
    if original is None:
        return False
    if getattr(original, _PATCHED, False):
        return True

    def clean_problem_modules_but_keras() -> None:
        pyplot: Any = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:
            try:
                pyplot.close("all")
            except Exception:  # noqa: S110 - as Streamlit: never fail a run over this
                pass

    setattr(clean_problem_modules_but_keras, _PATCHED, True)
    script_runner._clean_problem_modules = clean_problem_modules_but_keras
    return True


def active_session_states() -> list:
    """The session state of every session this server holds; empty outside a running server
    (tests, scripts) or when Streamlit's internal session manager is not found (Streamlit
    has no public list of sessions)."""
    try:
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return []
        sessions = Runtime.instance()._session_mgr.list_active_sessions()
        return [info.session.session_state for info in sessions]
    except Exception:  # an internal API: without it, release waits for the session's next run
        return []
