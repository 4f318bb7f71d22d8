"""Entry page of the dashboard (placeholder until the dashboard lands)."""

import streamlit as st

st.set_page_config(page_title="Autoencoder anomaly finder", layout="wide")
st.title("Autoencoder anomaly finder")
st.write("Upload a CSV, train an autoencoder, and find the rows it cannot reconstruct.")
