"""Dashboard services: plain Python on top of ``db`` (no Streamlit), easy to test."""
