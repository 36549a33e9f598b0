"""The Train page's "Retrain from reviewed normals" section: pick a ready model and the batches
whose confirmed normals go in, see what the child trains on, queue it."""

from __future__ import annotations

import streamlit as st

from dashboard import context
from dashboard.services import models as models_service
from dashboard.services import retrain, worker_status
from dashboard.services.errors import StoreError
from dashboard.services.training import SentJob


def _plan_text(plan: retrain.RetrainPlan) -> str:
    scope = f"category {plan.category}" if plan.category else "all categories"
    return (
        f"The new version trains on **{plan.parent_images}** of the parent's training images "
        f"plus **{len(plan.added)}** confirmed normal(s), newest first (of {plan.available} "
        f"the parent did not train on; each used {retrain.CONFIRMED_NORMAL_REPEATS} times, so "
        "the few parts of a new lot weigh against the many of the old), with the parent's "
        "variant, backbone "
        f"({plan.backbone}), {scope} and the {plan.preset} schedule. It starts from its own "
        "calibration threshold."
    )


def retrain_section(
    project_id: int, statuses: dict[str, worker_status.WeightsStatus]
) -> SentJob | None:
    """The section; returns the sent job when the button queued one."""
    st.subheader("Retrain from reviewed normals")
    factory = context.session_factory()
    models = models_service.ready_models(factory, project_id)
    if not models:
        st.info("No ready model yet: train one above, score a batch and review it.")
        return None
    by_id = {m.id: m for m in models}
    parent_id = st.selectbox(
        "Model to retrain",
        list(by_id),
        format_func=lambda m: by_id[m].label,
        key="adn_retrain_parent",
    )
    batches = retrain.normals_batches(factory, int(parent_id))
    if not batches:
        st.info(
            "No image is confirmed normal that this model did not train on. Mark images "
            "**normal** on the Review page first (anomalous and unsure ones never train)."
        )
        return None
    by_batch = {b.id: b for b in batches}
    left, right = st.columns([3, 1])
    chosen = left.multiselect(
        "Batches whose confirmed normals go in",
        list(by_batch),
        default=list(by_batch),
        format_func=lambda b: by_batch[b].label,
        key="adn_retrain_batches",
    )
    cap = right.number_input(
        "At most (newest first)",
        min_value=1,
        max_value=retrain.MAX_CAP,
        value=retrain.DEFAULT_CAP,
        step=10,
        key="adn_retrain_cap",
    )
    name = st.text_input(
        "Name of the new version", value=by_id[parent_id].name, key=f"adn_retrain_name_{parent_id}"
    )
    request = retrain.RetrainRequest(int(parent_id), chosen, int(cap), name)
    try:
        plan = retrain.plan_retraining(factory, request)
    except StoreError as exc:
        st.error(f"Cannot retrain this model: {exc}.")
        return None
    st.caption(_plan_text(plan))
    if plan.dropped_from_parent:
        st.caption(
            f"{plan.dropped_from_parent} of the parent's training images are left out: their "
            "current verdict is anomalous or unsure."
        )
    if not context.can("reviewer"):
        st.info("Viewers cannot retrain models.")
        return None
    if not st.button(
        "Queue retraining", type="primary", key="adn_queue_retraining", disabled=not plan.added
    ):
        return None
    try:
        return retrain.queue_retraining(
            factory, request, actor_id=context.actor_id(), weights=statuses
        ).sent
    except StoreError as exc:
        st.error(f"Retraining was not queued: {exc}.")
        return None
