"""Train models (one job per attention variant), score batches with a ready model, and retrain a
model from the images reviewers confirmed normal."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pandas as pd
import streamlit as st
from streamlit.errors import StreamlitAPIException

from dashboard import context
from dashboard.retrain_panel import retrain_section
from dashboard.services import heatmap_labels, training, worker_status
from dashboard.services import models as models_service
from dashboard.services import projects as project_service
from dashboard.services.errors import StoreError

logger = logging.getLogger(__name__)

QUEUED_KEY = "adn_train_queued"


def jobs_link() -> None:
    """A link to the Jobs page (plain text when the page is opened on its own)."""
    try:
        st.page_link(
            "pages/jobs.py", label="Follow them on the Jobs page", icon=":material/pending_actions:"
        )
    except StreamlitAPIException:
        st.caption("Follow them on the **Jobs** page.")


def workers_panel() -> dict[str, worker_status.WeightsStatus]:
    """Which workers reported, and which backbone weights they have."""
    reports = worker_status.read_reports(context.store_settings().data_dir)
    statuses = {w.backbone: w for w in worker_status.weights_status(reports)}
    problem = worker_status.queue_problem(reports, "train")
    if problem is not None:
        st.warning(problem, icon=":material/engineering:")
    now = datetime.now(UTC)
    with st.expander(
        f"Workers: {len(reports)} reported" if reports else "Workers: none reported yet",
        expanded=not reports,
    ):
        if not reports:
            st.caption("No worker has reported yet: each writes a report a minute while it runs.")
        else:
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "worker": r.name,
                            "health": r.health(now),
                            "queues": ", ".join(r.queues),
                            "device": r.device,
                            "last report": r.updated_at,
                        }
                        for r in reports
                    ]
                ),
                hide_index=True,
                width="stretch",
            )
    return statuses


def backbone_label(statuses: dict[str, worker_status.WeightsStatus], backbone: str) -> str:
    """A backbone name with its weights availability."""
    status = statuses.get(backbone)
    if status is None or status.available is None:
        return f"{backbone} (weights: no worker has reported yet)"
    mark = "weights available" if status.available else "weights missing"
    return f"{backbone} ({mark})"


def remember_sent(sent: list[training.SentJob]) -> None:
    """Remember the committed and sent jobs for the confirmation below."""
    st.session_state[QUEUED_KEY] = {
        "rows": [
            {
                "job": s.queued.job_id,
                "kind": s.queued.kind,
                "model": s.queued.label,
                "model version": s.queued.model_version_id,
                "sent to workers": s.result.sent,
            }
            for s in sent
        ],
        "problems": sorted({s.result.problem for s in sent if s.result.problem}),
    }


def show_queued() -> None:
    """The jobs queued by the last action on this page."""
    queued = st.session_state.pop(QUEUED_KEY, None)
    if not queued:
        return
    st.success(f"Queued {len(queued['rows'])} job(s).")
    for problem in queued["problems"]:
        st.error(problem, icon=":material/cloud_off:")
    st.dataframe(pd.DataFrame(queued["rows"]), hide_index=True, width="stretch")
    jobs_link()


def train_section(project_id: int, statuses: dict[str, worker_status.WeightsStatus]) -> None:
    """Choose images, backbone, variants and schedule, then queue one job per variant."""
    st.subheader("Train a model")
    batches = project_service.batches(context.session_factory(), project_id, purpose="train")
    if not batches:
        st.info(
            "No training images yet: upload a batch of normal training images on "
            "**Projects & upload** first."
        )
        return
    by_id = {b.id: b for b in batches}
    chosen = st.multiselect(
        "Training batches (normal images)",
        list(by_id),
        default=list(by_id),
        format_func=lambda b: by_id[b].label,
        key="adn_train_batches",
    )
    categories = training.categories_of(context.session_factory(), project_id, chosen)
    cols = st.columns(3)
    category = cols[0].selectbox(
        "Category",
        [None, *categories],
        format_func=lambda c: "all images" if c is None else c,
        key="adn_train_category",
    )
    backbone = cols[1].selectbox(
        "Backbone",
        training.BACKBONES,
        format_func=lambda b: backbone_label(statuses, b),
        key="adn_train_backbone",
    )
    missing_weights = worker_status.weights_refusal(statuses, backbone)
    if missing_weights is not None:
        st.warning(missing_weights[0].upper() + missing_weights[1:] + ".", icon=":material/block:")
    variants = cols[2].multiselect(
        "Attention variants (one job each)",
        list(models_service.VARIANT_NAMES),
        default=["cbam"],
        format_func=lambda v: models_service.VARIANT_NAMES[v],
        key="adn_train_variants",
    )
    preset = st.radio(
        "Schedule",
        list(training.PRESETS),
        format_func=lambda p: training.PRESETS[p],
        key="adn_train_preset",
    )
    overrides: dict[str, int] = {}
    if st.toggle("Override epochs / image size", key="adn_train_override"):
        # Empty by default: an override is only what a person typed; the rest is the schedule's.
        fields = (
            ("epochs", "Epochs", 1, "adn_epochs"),
            ("image_size", "Image size (pixels)", 32, "adn_size"),
        )
        for column, (field, label, step, key) in zip(st.columns(2), fields, strict=True):
            low, high = training.OVERRIDE_LIMITS[field]
            value = column.number_input(
                label,
                min_value=low,
                max_value=high,
                value=None,
                step=step,
                placeholder="the schedule's",
                key=key,
            )
            if value is not None:
                overrides[field] = int(value)
    name = st.text_input("Model name", value=category or "model", key="adn_train_name")
    count = training.count_selected_images(
        context.session_factory(), project_id, chosen, category, training=True
    )
    st.caption(f"{count} training image(s) selected (known anomalies are left out).")
    if not context.can("reviewer"):
        st.info("Viewers cannot start training.")
        return
    if st.button(
        "Queue training",
        type="primary",
        key="adn_queue_training",
        disabled=missing_weights is not None,
    ):
        request = training.TrainRequest(
            project_id=project_id,
            name=name,
            batch_ids=chosen,
            backbone=backbone,
            variants=variants,
            preset=preset,
            category=category,
            overrides=overrides,
        )
        try:
            sent = training.queue_training(
                context.session_factory(), request, actor_id=context.actor_id(), weights=statuses
            )
        except StoreError as exc:
            st.error(f"Training was not queued: {exc}.")
            return
        remember_sent(sent)
        st.rerun()


def score_section(project_id: int) -> None:
    """Pick a ready model and batches to score: one score job."""
    st.subheader("Score a batch")
    models = models_service.model_choices(context.session_factory(), project_id, status="ready")
    batches = project_service.batches(context.session_factory(), project_id)
    if not models:
        st.info("No ready model yet: train one above and wait for its job to succeed.")
        return
    if not batches:
        st.info("No batch to score yet: upload images to inspect on **Projects & upload**.")
        return
    by_model = {m.id: m for m in models}
    by_batch = {b.id: b for b in batches}
    inspect_first = sorted(by_batch, key=lambda b: by_batch[b].purpose != "inspect")
    model_id = st.selectbox(
        "Model version",
        list(by_model),
        format_func=lambda m: by_model[m].label,
        key="adn_score_model",
    )
    chosen = st.multiselect(
        "Batches to score",
        inspect_first,
        default=[],
        format_func=lambda b: by_batch[b].label,
        key="adn_score_batches",
        placeholder="Choose one or more batches",
        help="Nothing is chosen for you: pick the batches this model should score.",
    )
    methods = heatmap_methods_picker()
    if not context.can("reviewer"):
        st.info("Viewers cannot start scoring.")
        return
    if not chosen:
        st.caption("Choose at least one batch to score.")
    if st.button("Queue scoring", type="primary", key="adn_queue_scoring", disabled=not chosen):
        try:
            sent = training.queue_scoring(
                context.session_factory(),
                project_id=project_id,
                model_version_id=model_id,
                batch_ids=chosen,
                actor_id=context.actor_id(),
                heatmap_methods=methods,
            )
        except StoreError as exc:
            st.error(f"Scoring was not queued: {exc}.")
            return
        remember_sent([sent])
        st.rerun()


def heatmap_methods_picker() -> list[str]:
    """The heatmap methods a score job stores per image (the default first; none allowed)."""
    return st.multiselect(
        "Heatmaps to store",
        list(heatmap_labels.METHOD_LABELS),
        default=[heatmap_labels.DEFAULT_METHOD],
        format_func=heatmap_labels.method_label,
        key="adn_score_heatmaps",
        placeholder="No heatmaps (scores only)",
        help=heatmap_labels.METHODS_HELP,
    )


def render() -> None:
    """The Train page."""
    st.title("Train & score")
    project_id = context.require_project()
    statuses = workers_panel()
    show_queued()
    train_section(project_id, statuses)
    st.divider()
    score_section(project_id)
    st.divider()
    retrained = retrain_section(project_id, statuses)
    if retrained is not None:
        remember_sent([retrained])
        st.rerun()


render()
