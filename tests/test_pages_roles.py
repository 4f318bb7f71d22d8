"""Column roles on the dashboard (issue 13): labels that look like inputs are named on the Data
and Train pages, identifiers get their own role, and roles chosen for a file come back when the
same file is uploaded again in the session."""

import numpy as np
import pytest

from aecore import datasets
from tests.pages_support import no_exception, open_app
from ui import session, state


def _csv(frame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


@pytest.fixture(scope="module")
def intrusion_csv() -> bytes:
    frame = datasets.intrusion_log(seed=5, n_rows=400)
    frame.insert(0, "conn_id", np.arange(1, len(frame) + 1))
    return _csv(frame)


def _upload(at, name: str, payload: bytes):
    at.file_uploader(key="data_upload").set_value((name, payload, "text/csv")).run()
    no_exception(at)
    assert at.session_state[state.DATA_NAME] == name
    return at


def _edit_role(at, column: str, role: str):
    """Change one role in the Data page's role table, as the analyst does."""
    columns = list(at.session_state[state.DATA_FRAME].columns)
    key = f"roles_editor_{at.session_state[state.DATA_KEY]}"
    at.session_state[key] = {
        "edited_rows": {str(columns.index(column)): {"role": role}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    no_exception(at)
    return at


def test_an_uploaded_intrusion_log_gets_its_label_and_id_without_any_role_set(
    models_dir, intrusion_csv
):
    at = _upload(open_app("data"), "connections.csv", intrusion_csv)
    roles = at.session_state[state.ROLES]
    assert roles.label == "attack" and "service" in roles.categorical
    assert roles.ids == ["conn_id"] and "conn_id" not in roles.inputs
    assert not at.warning or not any("looks like a label" in w.value for w in at.warning)
    assert any("id **conn_id**" in s.value and "label **attack**" in s.value for s in at.success)


def test_a_label_kept_as_an_input_is_named_on_the_data_and_the_train_page(
    models_dir, intrusion_csv
):
    at = _upload(open_app("data"), "connections.csv", intrusion_csv)
    _edit_role(at, "attack", "categorical")
    assert "attack" in at.session_state[state.ROLES].categorical
    warned = [w.value for w in at.warning if "looks like a label" in w.value]
    assert warned and "**attack**" in warned[0]
    at.switch_page(session.TRAIN_PAGE).run()
    no_exception(at)
    warned = [w.value for w in at.warning if "looks like a label" in w.value]
    assert warned and "**attack**" in warned[0]


def test_roles_chosen_for_a_file_come_back_when_the_same_file_is_uploaded_again(
    models_dir, intrusion_csv
):
    at = _upload(open_app("data"), "connections.csv", intrusion_csv)
    _edit_role(at, "service", "ignore")
    _edit_role(at, "conn_id", "feature")
    chosen = at.session_state[state.ROLES]
    assert "service" in chosen.ignore and "conn_id" in chosen.features

    other = b"a,b,c\n" + b"".join(f"{i},{i % 7},{i % 3}\n".encode() for i in range(60))
    _upload(at, "other.csv", other)
    assert at.session_state[state.ROLES].features == ["a", "b", "c"]

    _upload(at, "connections-again.csv", intrusion_csv)
    restored = at.session_state[state.ROLES]
    assert restored.to_dict() == chosen.to_dict()
    assert any(session.ROLES_RESTORED in i.value for i in at.info)
    # The sample loaded by name remembers its roles the same way.
    at.selectbox[0].set_value("intrusion_train")
    at.button[0].click().run()
    no_exception(at)
    assert at.session_state[state.ROLES].label == "attack"
