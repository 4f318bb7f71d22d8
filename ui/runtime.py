"""One change to how Streamlit runs this app's scripts, made once per server process.

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
