"""Issue 14 on the dashboard: a damaged bundle never breaks the Models or Drift page; model
descriptions are plain text; the read-only model store; 1-row data on the Latent page; error
details hidden by the committed config."""

import json
import shutil

import pytest
import streamlit as st
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

import aecore
from aecore import store
from tests.pages_support import DEMO, ROOT, no_exception, open_app
from ui import cache, session


@pytest.fixture
def damaged(models_dir):
    """A copy of the demo bundle whose meta.json has a wrong type ("features": 5); removed
    afterwards."""
    folder = models_dir / "broken-copy"
    shutil.copytree(models_dir / DEMO, folder)
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    meta["features"] = 5
    (folder / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    cache.clear_model_caches()
    yield "broken-copy"
    shutil.rmtree(folder, ignore_errors=True)
    cache.clear_model_caches()


def test_a_damaged_bundle_is_listed_with_its_reason_and_the_others_stay_usable(
    models_dir, damaged
):
    at = open_app("models")
    no_exception(at)
    assert any("1 saved model(s) cannot be used" in w.value for w in at.warning)
    broken_table, models_table = at.dataframe[0].value, at.dataframe[1].value
    assert list(broken_table["name"]) == [damaged]
    assert "'features' should be a list" in broken_table["problem"].iloc[0]
    assert damaged not in set(models_table["name"]) and DEMO in set(models_table["name"])
    assert at.selectbox(key="models_name").value == DEMO  # a usable one is picked first
    assert not at.error

    at.selectbox(key="models_name").set_value(damaged).run()
    no_exception(at)
    assert any("'features' should be a list" in e.value for e in at.error)
    at.checkbox(key="confirm_delete").check().run()
    at.button(key="delete_model").click().run()  # a damaged bundle can still be deleted
    no_exception(at)
    assert damaged not in set(store.list_models(models_dir)["name"])


def test_the_drift_page_lists_only_usable_bundles(models_dir, damaged):
    at = open_app("drift")
    no_exception(at)
    assert not any(damaged in e.value or "damaged" in e.value for e in at.error)
    options = at.selectbox[0].options
    assert any(DEMO in option for option in options)
    assert not any(damaged in option for option in options)


def test_a_description_is_shown_as_plain_text_never_as_markdown(models_dir):
    hostile = "Look ![x](http://example.invalid/a.png) and [click](http://evil) **now**"
    detector = aecore.load(DEMO, models_dir=models_dir)
    store.save(detector, "described", models_dir=models_dir, description=hostile)
    cache.clear_model_caches()
    try:
        at = open_app("models")
        at.selectbox(key="models_name").set_value("described").run()
        no_exception(at)
        assert hostile in [t.value for t in at.text]
        rendered = [m.value for m in (*at.markdown, *at.caption, *at.info, *at.success)]
        assert not any("](http" in text for text in rendered), rendered
    finally:
        store.delete_model("described", models_dir=models_dir)
        cache.clear_model_caches()


def test_a_read_only_model_store_loads_and_scores_but_never_deletes_or_retrains(
    models_dir, monkeypatch
):
    monkeypatch.setenv(session.READ_ONLY_VARIABLE, "1")
    at = open_app("models")
    no_exception(at)
    at.selectbox(key="models_name").set_value("spare-model").run()
    assert at.button(key="delete_model").disabled
    assert not [c for c in at.checkbox if c.key == "confirm_delete"]
    assert any(session.READ_ONLY_NOTE in c.value for c in at.caption)
    at.button(key="use_model").click().run()  # loading and scoring stay allowed
    no_exception(at)
    assert at.session_state["model_ref"]["name"] == "spare-model"
    assert any("This is the current model" in s.value for s in at.success)
    assert "spare-model" in set(store.list_models(models_dir)["name"])

    at.switch_page("app_pages/drift.py").run()
    no_exception(at)
    assert at.button(key="drift_retrain_submit").disabled
    assert any(session.READ_ONLY_NOTE in c.value for c in at.caption)


def test_one_row_of_data_gets_a_message_on_the_latent_page(models_dir):
    at = open_app("data")
    lines = (ROOT / "sample_data" / "server_metrics.csv").read_bytes().split(b"\n")
    one_row = b"\n".join(lines[:2]) + b"\n"
    at.file_uploader(key="data_upload").set_value(("one.csv", one_row, "text/csv")).run()
    no_exception(at)
    at.switch_page("app_pages/latent.py").run()
    no_exception(at)
    assert any("need at least 2 rows; the data has 1" in i.value for i in at.info)


def test_the_committed_config_hides_error_details_and_listens_on_localhost(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(ROOT)  # Streamlit reads .streamlit/config.toml from where it starts
    streamlit_config.get_config_options(force_reparse=True)
    assert st.get_option("server.address") == "localhost"
    assert st.get_option("client.showErrorDetails") == "none"
    # No file watcher: saving a model into models/ gave "Callback with id ... already exists".
    assert st.get_option("server.fileWatcherType") == "none"
    script = tmp_path / "boom.py"
    script.write_text('raise RuntimeError("secret detail at /srv/private/path")\n')
    at = AppTest.from_file(str(script)).run()
    assert at.exception, "the error is reported"
    shown = at.exception[0]
    assert "secret detail" not in shown.message and not shown.stack_trace


def test_with_oidc_login_configured_a_visitor_must_log_in_first(models_dir):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.secrets["auth"] = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a-long-random-secret",
        "client_id": "dashboard",
        "client_secret": "not-a-real-secret",
        "server_metadata_url": "https://login.example.invalid/.well-known/openid-configuration",
    }
    at.run()
    no_exception(at)
    assert at.button(key="login").label == "Log in"
    assert not at.metric and not at.dataframe, "nothing of the data is shown before login"
    assert "data_frame" not in at.session_state, "no data is loaded before login"


def test_without_a_login_provider_the_dashboard_opens_directly(models_dir):
    at = open_app()
    no_exception(at)
    assert not [b for b in at.button if b.key == "login"]
    assert at.metric


def test_a_read_only_model_store_keeps_a_trained_model_unsaved(models_dir, monkeypatch):
    from tests.pages_support import wait_for, widget
    from ui import state

    monkeypatch.setenv(session.READ_ONLY_VARIABLE, "yes")
    saved_before = len(store.list_models(models_dir))
    at = open_app("train")
    widget(at.number_input, "Epochs (at most)").set_value(1)
    widget(at.number_input, "Batch size").set_value(512)
    widget(at.text_input, "Hidden layer widths").set_value("8")
    at.button(key="train_submit").click().run()
    wait_for(at, state.JOB)
    no_exception(at)
    assert at.session_state[state.MODEL_REF]["kind"] == "session"  # training itself is allowed
    save = at.button(key="FormSubmitter:save_model-Save")
    assert save.disabled
    assert any(session.READ_ONLY_NOTE in c.value for c in at.caption)
    assert len(store.list_models(models_dir)) == saved_before
