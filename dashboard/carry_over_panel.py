"""The Thresholds page's offer, for a retrained model, to carry its parent's threshold method over
(run on this model's own labelled scores, never the parent's value)."""

from __future__ import annotations

import streamlit as st

from dashboard import context
from dashboard.services import carry_over
from dashboard.services.data_version import DataKey
from dashboard.services.errors import StoreError
from dashboard.services.models import ModelChoice
from dashboard.services.thresholds import version_label

FLASH_KEY = "adn_thr_carry_flash"


@st.cache_data(max_entries=16, show_spinner=False)
def _preview(
    key: DataKey,
    model_id: int,
    category: str | None,
    parent: carry_over.ParentMethod,
    use_known: bool,
) -> carry_over.CarryOverPreview:
    """The proposal, read once per data version of the child (its scores, verdicts, thresholds)."""
    return carry_over.preview_carry_over(
        context.session_factory(), model_id, category, parent, use_known_labels=use_known
    )


def _proposal_text(preview: carry_over.CarryOverPreview) -> str:
    proposal = preview.proposal
    if proposal is None:
        return ""
    if proposal.upper_value is not None:
        return f"T1 = **{proposal.value:.4g}**, T2 = **{proposal.upper_value:.4g}**"
    return f"T = **{proposal.value:.4g}**"


def carry_over_offer(model: ModelChoice, category: str | None, use_known: bool) -> bool:
    """The offer for a child model (nothing for others); True when a version was saved."""
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        st.success(flash)
    if model.parent_id is None:
        return False
    factory = context.session_factory()
    parent = carry_over.parent_method(factory, model.id, category)
    with st.container(border=True):
        if parent is None:
            st.caption(
                f"This model is a {model.lineage}. The parent has no active threshold for this "
                "scope, so there is no method to carry over."
            )
            return False
        st.markdown(
            f"**Parent's threshold method** (#{parent.parent_id}, "
            f"{version_label(parent.version, parent.category)}): {parent.label}"
        )
        key = context.models_data_key([model.id])
        preview = _preview(key, model.id, category, parent, use_known)
        if preview.proposal is None:
            st.caption(preview.problem)
            return False
        st.markdown(
            f"On this model's labelled scores it proposes {_proposal_text(preview)} "
            f"({preview.data.n_anomalous} anomalous, {preview.data.n_normal} normal; "
            f"{preview.excluded_training} labelled images this model trained on left out)."
        )
        if not context.can("reviewer"):
            st.caption("Viewers can see the offer; saving needs the reviewer role.")
            return False
        if not st.button("Carry the parent's method over", key="adn_thr_carry"):
            return False
        try:
            saved = carry_over.carry_over(
                factory,
                actor_id=context.actor_id(),
                model_version_id=model.id,
                category=category,
                use_known_labels=use_known,
            )
        except StoreError as exc:
            st.error(f"The parent's method was not carried over: {exc}.")
            return False
    st.session_state[FLASH_KEY] = (
        f"Saved {version_label(saved.version, saved.category)} by the parent's method; it is "
        "active now."
    )
    return True
