"""The lot-drift warning the Review and Thresholds pages show for the chosen model: its newest
scored batch has drifted from the model's calibration normals (``services/drift.py``)."""

from __future__ import annotations

import streamlit as st

from dashboard import context
from dashboard.services import drift
from dashboard.services.data_version import DataKey


# Kept per data version: the newest batch changes only with a new score, verdict or threshold.
@st.cache_data(max_entries=32, show_spinner=False)
def _newest(key: DataKey, model_id: int) -> drift.BatchDrift | None:
    return drift.newest_batch_drift(context.session_factory(), model_id)


def drift_warning(model_id: int, key: DataKey | None = None) -> bool:
    """Warn when the model's newest scored batch has drifted; True when it did. ``key`` is the
    page's ``context.models_data_key([model_id])`` when it has one already."""
    newest = _newest(key or context.models_data_key([model_id]), model_id)
    if newest is None or not newest.drifted:
        return False
    st.warning(drift.warning_text(newest), icon=":material/trending_up:")
    return True
