"""Export: per-image results as CSV or JSON, and model checkpoints for the ``adn`` CLI."""

from __future__ import annotations

import logging

import pandas as pd
import streamlit as st

from dashboard import context
from dashboard.services import export
from dashboard.services import models as models_service
from dashboard.services.data_version import DataKey
from dashboard.services.errors import StoreError

logger = logging.getLogger(__name__)

PREVIEW_ROWS = 200


@st.cache_data(max_entries=16, show_spinner=False)
def _summary(key: DataKey, project_id: int, chosen: int | None) -> export.ExportSummary:
    """The export's counts, kept while the models' scores, verdicts and thresholds stay."""
    return export.summary(context.session_factory(), project_id=project_id, model_version_id=chosen)


def results_section(project_id: int, models: list[models_service.ModelChoice]) -> None:
    """Pick a model version (or all of the project) and download its per-image results."""
    st.subheader("Per-image results")
    by_id = {m.id: m for m in models}
    everything = st.toggle("All model versions of the project", key="adn_export_all")
    model_id = None
    if not everything:
        model_id = st.selectbox(
            "Model version",
            list(by_id),
            format_func=lambda m: by_id[m].label,
            key="adn_export_model",
        )
    factory = context.session_factory()
    chosen = None if everything else model_id
    key = context.models_data_key(tuple(by_id) if chosen is None else (chosen,))
    counts = _summary(key, project_id, chosen)
    if counts.images == 0:
        st.info("Nothing scored yet for this choice. Queue scoring on the **Train** page.")
        return
    cols = st.columns(3)
    cols[0].metric("Images", counts.images)
    cols[1].metric("Reviewed", counts.reviewed)
    cols[2].metric("Model says anomalous", counts.anomalous)

    def rows() -> list[export.ExportRow]:
        if chosen is None:
            return export.rows_for_project(factory, project_id)
        return export.rows_for_model(factory, chosen)

    stem = "project" if chosen is None else f"model-{chosen}"
    left, right = st.columns(2)
    # The files are built when a button is pressed, not on every visit of the page.
    left.download_button(
        "Download CSV",
        lambda: export.to_csv(rows()),
        file_name=f"adn-results-{stem}.csv",
        mime="text/csv",
        icon=":material/table:",
        key="adn_download_csv",
    )
    right.download_button(
        "Download JSON",
        lambda: export.to_json(rows()),
        file_name=f"adn-results-{stem}.json",
        mime="application/json",
        icon=":material/data_object:",
        key="adn_download_json",
    )
    preview = export.preview_rows(
        factory, project_id=project_id, model_version_id=chosen, limit=PREVIEW_ROWS
    )
    frame = pd.DataFrame([r.__dict__ for r in preview], columns=export.COLUMNS)
    st.caption(f"Preview of the first {len(preview)} of {counts.images:,} rows.")
    st.dataframe(frame, hide_index=True, width="stretch")


def checkpoint_section(models: list[models_service.ModelChoice]) -> None:
    """Download a ready model's checkpoint file."""
    st.subheader("Model checkpoint")
    ready = {m.id: m for m in models if m.status == "ready"}
    if not ready:
        st.info("No ready model yet; a checkpoint appears here once training succeeds.")
        return
    model_id = st.selectbox(
        "Ready model version",
        list(ready),
        format_func=lambda m: ready[m].label,
        key="adn_export_ckpt",
    )
    try:
        info = export.checkpoint_file(
            context.session_factory(), context.store_settings().data_dir, model_id
        )
    except StoreError as exc:
        st.error(f"The checkpoint cannot be offered: {exc}.")
        return
    size = export.human_size(info.size_bytes)
    st.markdown(f"`{info.download_name}` · **{size}** · stored at `{info.path}`")
    st.caption("Use it without the studio: `adn score --model FILE IMAGES...` loads it.")
    try:
        data = info.path.read_bytes()
    except OSError as exc:
        st.error(f"The checkpoint file cannot be read ({exc}); check the data dir permissions.")
        return
    st.download_button(
        "Download checkpoint",
        data,
        file_name=info.download_name,
        mime="application/octet-stream",
        icon=":material/download:",
        key="adn_download_ckpt",
    )


def render() -> None:
    """The Export page."""
    st.title("Export")
    project_id = context.require_project()
    models = models_service.model_choices(context.session_factory(), project_id)
    if not models:
        st.info("No model version in this project yet. Train one on the **Train** page.")
        return
    results_section(project_id, models)
    st.divider()
    checkpoint_section(models)


render()
