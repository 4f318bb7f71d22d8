"""Streamlit's per-run Keras clean-up is skipped (ui.runtime): it reset Keras's global state and
ran a full garbage collection after every script and fragment run, also while another
session's model trained, and took most of the server's CPU with a few analysts at once."""

from tests.pages_support import no_exception, open_app


def test_running_pages_never_clears_the_keras_session(models_dir, monkeypatch):
    import keras

    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *a, **k: calls.append(a))
    at = open_app("data")
    at.switch_page("app_pages/threshold.py").run()
    no_exception(at)
    assert calls == []
