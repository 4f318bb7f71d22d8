"""What the AppTest page tests share: the app's path, opening a session, and finding widgets.

The ``models_dir`` fixture (a temporary models folder with a tiny demo model) is in
``tests/conftest.py``.
"""

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
DEMO = "server-metrics-demo"


def open_app(page: str | None = None) -> AppTest:
    """A new browser session on the home page (or ``page``), run once."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    if page:
        at.switch_page(f"app_pages/{page}.py").run()
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def widget(widgets, label: str):
    """The widget with this label, else the first whose label starts with it."""
    exact = next((w for w in widgets if w.label == label), None)
    return exact if exact is not None else next(w for w in widgets if w.label.startswith(label))


def wait_for(at: AppTest, key: str, timeout: float = 240):
    """Rerun the page until the background task under ``key`` has ended and been collected;
    return the task (asserted done)."""
    task = at.session_state[key]
    deadline = time.time() + timeout
    while not (task.wait(0.5) and task.collected) and time.time() < deadline:
        at.run()
    at.run()
    assert task.status == "done", task.error
    return task
