"""Entry page of the dashboard: navigation, what the tool does, and the embedded demo.

Run with ``streamlit run app.py``. A fresh session opens with the server-metrics sample loaded
and the bundled demo model scoring it, so every page has content at once.
"""

import streamlit as st

from ui import session, state, widgets

# With [auth] in .streamlit/secrets.toml, visitors log in before any data loads.
if session.login_required():
    st.title("Autoencoder anomaly finder")
    st.info("Log in to use the dashboard: your organisation's sign-in page opens.")
    st.button("Log in", type="primary", icon=":material/login:", key="login", on_click=st.login)
    st.stop()
widgets.page_setup()


def home() -> None:
    """What the tool does, how to start, and where this session stands."""
    st.title("Autoencoder anomaly finder")
    st.markdown(
        "Find the rows of a table that do not look like the rest. An **autoencoder** learns to "
        "compress and rebuild your normal rows; a row it cannot rebuild well has a high "
        "**reconstruction error** and is **flagged** when that error is above the threshold "
        "you choose."
    )
    st.markdown(
        "1. **Data**: upload a CSV (or pick a sample) and check each column's role.\n"
        "2. **Train**: choose an architecture and train it (or load a saved model).\n"
        "3. **Threshold**: drag the threshold over the error histogram (and compare the flags "
        "with classical detectors).\n"
        "4. **Latent space & PCA**: see the rows as the model sees them.\n"
        "5. **Explain**: which features make each flagged row unusual.\n"
        "6. **Review**: mark flagged rows as confirmed anomalies or false alarms; the marks "
        "set the threshold, retrain the model and travel with the exports.\n"
        "7. **Export**: download the flagged rows, the model, or a report to attach to a "
        "ticket.\n"
    )
    st.markdown(
        "Also: **Few labels** trains a classifier when only some rows are labelled (and shows "
        "whether pre-training on all rows helps); **Drift** checks whether a new batch still "
        "looks like the training data, and retrains the model when it does not."
    )
    widgets.show_notice()
    st.subheader("Right now")
    st.caption(
        "A new session starts with the server-metrics sample (4,000 minutes of 107 sensors "
        "with 7 labelled incidents) scored by the demo model, so every page has content."
    )
    scored, model, problem = session.scored()
    left, middle, right = st.columns([2, 3, 2])
    frame = state.get(state.DATA_FRAME)
    left.metric("Rows in the data", "none" if frame is None else f"{len(frame):,}")
    left.caption(widgets.data_caption())
    # A model name is too long for a metric tile (cut to "server-m…" at 1024 px), and a big
    # heading breaks it inside a word: a small heading in a wider column holds it whole.
    middle.markdown(f"Model\n#### {widgets.plain(model.name) if model else 'none'}")
    middle.caption(widgets.model_caption())
    if scored is not None:
        threshold = session.threshold()
        flagged = scored.count_above(threshold)
        right.metric("Flagged rows", f"{flagged:,}")
        right.caption(f"{flagged / scored.n_rows:.2%} of rows, at threshold {threshold:.4g}")
    if problem is not None:
        widgets.show_problem(problem)
    else:
        st.page_link(session.THRESHOLD_PAGE, label="Set the threshold", icon=":material/tune:")
        st.page_link(session.DATA_PAGE, label="Bring your own CSV", icon=":material/upload:")


pages = [
    st.Page(home, title="Home", icon=":material/home:", default=True),
    st.Page(session.DATA_PAGE, title="Data", icon=":material/table:"),
    st.Page(session.TRAIN_PAGE, title="Train", icon=":material/model_training:"),
    st.Page(session.THRESHOLD_PAGE, title="Threshold", icon=":material/tune:"),
    st.Page(session.LATENT_PAGE, title="Latent space & PCA", icon=":material/scatter_plot:"),
    st.Page(session.EXPLAIN_PAGE, title="Explain", icon=":material/search_insights:"),
    st.Page(session.REVIEW_PAGE, title="Review", icon=":material/rule:"),
    st.Page(session.EXPORT_PAGE, title="Export", icon=":material/download:"),
    st.Page(session.MODELS_PAGE, title="Models", icon=":material/inventory_2:"),
    st.Page(session.FEW_LABELS_PAGE, title="Few labels", icon=":material/label:"),
    st.Page(session.DRIFT_PAGE, title="Drift", icon=":material/trending_up:"),
]
if st.user.get("is_logged_in", False):
    st.sidebar.button("Log out", icon=":material/logout:", key="logout", on_click=st.logout)
navigation = st.navigation(pages)
widgets.sidebar_status()  # pages that change the data or the model rerun, so it stays current
navigation.run()
