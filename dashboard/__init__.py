"""AttentDifferNet Studio's Streamlit dashboard (pages render; services hold the logic)."""
