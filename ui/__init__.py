"""Streamlit helpers shared by the dashboard's pages: session state, caches, the background
training job and small widgets. Pages -> ui -> aecore; aecore never imports this package."""
