"""Review: walk a ranked queue of scored images and confirm each with one key press."""

from __future__ import annotations

import logging
from typing import Any, Literal

import pandas as pd
import streamlit as st

from dashboard import context
from dashboard.drift_warning import drift_warning
from dashboard.review_pictures import show_pictures
from dashboard.services import heatmaps
from dashboard.services import models as models_service
from dashboard.services import projects as project_service
from dashboard.services import review as review_service
from dashboard.services import thresholds as thresholds_service
from dashboard.services.errors import PermissionDeniedError, StoreError
from dashboard.services.review import HistoryEntry, ScoreRow
from dashboard.services.text import display_name, short_name

logger = logging.getLogger(__name__)

POSITION_KEY = "adn_review_position"
FLASH_KEY = "adn_review_flash"
ALL_CATEGORIES = "All categories"
BUTTONS: tuple[tuple[str, str, str, Literal["primary", "secondary"]], ...] = (
    # (verdict, label, shortcut, button type)
    ("anomalous", "Anomalous", "a", "primary"),
    ("normal", "Normal", "n", "secondary"),
    ("unsure", "Unsure", "u", "secondary"),
)
VERDICT_COLOURS = {"anomalous": "red", "normal": "green", "unsure": "orange", "review": "orange"}


def _position(queue: review_service.QueueFilter) -> int:
    state = st.session_state.get(POSITION_KEY)
    if not isinstance(state, dict) or state.get("key") != queue.key():
        st.session_state[POSITION_KEY] = {"key": queue.key(), "position": 0}
        return 0
    return int(state["position"])


def _move_to(queue_key: str, position: int) -> None:
    st.session_state[POSITION_KEY] = {"key": queue_key, "position": max(0, position)}


def _on_verdict(
    queue: review_service.QueueFilter, position: int, image_id: int, label: str
) -> None:
    """Button callback: save the verdict for the image that was shown, then move on."""
    try:
        review_service.save_verdict(
            context.session_factory(),
            actor_id=context.actor_id(),
            image_id=image_id,
            label=label,
            model_version_id=queue.model_version_id,
        )
    except PermissionDeniedError as exc:
        st.session_state[FLASH_KEY] = ("error", f"Your verdict was not saved: {exc}")
        return
    except StoreError as exc:
        logger.exception("saving a verdict failed")
        st.session_state[FLASH_KEY] = ("error", f"Your verdict was not saved: {exc}")
        return
    st.session_state[FLASH_KEY] = ("success", f"Saved **{label}** for image #{image_id}.")
    _move_to(
        queue.key(),
        review_service.next_position(position, unreviewed_only=queue.unreviewed_only, saved=True),
    )


def _on_move(queue_key: str, position: int) -> None:
    _move_to(queue_key, position)


def _show_flash() -> None:
    flash = st.session_state.pop(FLASH_KEY, None)
    if not flash:
        return
    kind, text = flash
    if kind == "error":
        st.error(text, icon=":material/error:")
    else:
        st.toast(text, icon=":material/check:")


def _controls(
    models: list[models_service.ModelChoice],
    categories: list[str],
    batches: list[project_service.BatchRow],
) -> Any:
    by_id = {m.id: m for m in models}
    left, middle, right = st.columns([3, 3, 2])
    model_id = left.selectbox(
        "Model version",
        list(by_id),
        format_func=lambda i: by_id[i].label,
        key="adn_review_model",
    )
    order = middle.selectbox(
        "Order",
        list(review_service.ORDER_LABELS),
        format_func=review_service.ORDER_LABELS.__getitem__,
        key="adn_review_order",
    )
    category = right.selectbox("Category", [ALL_CATEGORIES, *categories], key="adn_review_category")
    first, second, third = st.columns([2, 2, 4])
    by_batch = {b.id: b for b in batches}
    batch_id = third.selectbox(
        "Batch",
        [None, *by_batch],
        format_func=lambda b: "all batches" if b is None else display_name(by_batch[b].label),
        key="adn_review_batch",
    )
    unreviewed = first.toggle("Only unreviewed", value=True, key="adn_review_unreviewed")
    seed = 0
    if order == "audit":
        seed = int(
            second.number_input(
                "Audit seed",
                min_value=0,
                value=0,
                step=1,
                key="adn_review_seed",
                help="The same seed gives the same random sample, so an audit can be repeated.",
            )
        )
    queue = review_service.QueueFilter(
        model_version_id=int(model_id),
        order=order,
        category=None if category == ALL_CATEGORIES else category,
        unreviewed_only=unreviewed,
        seed=seed,
        batch_id=batch_id,
    )
    return queue, by_id[int(model_id)]


def _pictures(item: ScoreRow, pngs: dict[str, bytes]) -> None:
    settings = context.store_settings()
    try:
        original = heatmaps.load_display_image(review_service.image_path(settings.data_dir, item))
    except heatmaps.PictureError as exc:
        st.error(f"Cannot show this image: {exc}", icon=":material/broken_image:")
        return
    caption = f"Original · {item.width}×{item.height}"
    show_pictures(original, caption, pngs, short_name(item.original_name))


def _coloured(label: str) -> str:
    """A verdict in bold, coloured by meaning (Streamlit markdown colours)."""
    colour = VERDICT_COLOURS.get(label)
    return f":{colour}[**{label}**]" if colour else f"**{label}**"


def _verdict_text(item: ScoreRow) -> str:
    if item.model_verdict is None:
        return "no active threshold"
    limit = (
        f"T1 {item.threshold_value:.4g} · T2 {item.threshold_upper:.4g}"
        if item.threshold_upper is not None
        else f"threshold {item.threshold_value:.4g}"
    )
    version = (
        ""
        if item.threshold_version is None
        else ", "
        + thresholds_service.version_label(item.threshold_version, item.threshold_category)
    )
    return f"{_coloured(item.model_verdict)} ({limit}{version})"


def _facts(item: ScoreRow, model: models_service.ModelChoice, history: list[HistoryEntry]) -> None:
    st.metric("Anomaly score", f"{item.score:.4f}")
    percentile = item.percentile
    if percentile is None:
        percentile = review_service.percentile_among(model.calibration_scores, item.score)
    st.markdown(
        "\n".join(
            [
                f"**Image:** {display_name(item.original_name)} (#{item.image_id})",
                f"\n**Category:** {item.category or '—'}",
                "\n**Percentile among calibration normals:** "
                + ("unknown" if percentile is None else f"{percentile:.1f} %"),
                f"\n**Model verdict:** {_verdict_text(item)}",
                f"\n**Known label:** {item.known_label or '—'}",
                "\n**Current verdict:** "
                + (
                    f"{_coloured(item.verdict_label)} by {item.verdict_username}"
                    if item.verdict_label
                    else "not reviewed yet"
                ),
            ]
        )
    )
    st.markdown("**Verdict history**")
    if not history:
        st.caption("Nobody has reviewed this image yet.")
        return
    frame = pd.DataFrame(
        [
            {
                "verdict": h.label,
                "who": h.username,
                "when": h.at.strftime("%Y-%m-%d %H:%M:%S UTC"),
            }
            for h in history
        ]
    )
    st.dataframe(frame, hide_index=True, width="stretch", key="adn_review_history")


def _buttons(queue: review_service.QueueFilter, slot: review_service.QueueSlot) -> None:
    item = slot.item
    assert item is not None
    columns = st.columns(6)
    if context.can("reviewer"):
        for column, (label, text, shortcut, kind) in zip(columns, BUTTONS, strict=False):
            column.button(
                f"{text} ({shortcut.upper()})",
                key=f"adn_review_{label}",
                type=kind,
                shortcut=shortcut,
                on_click=_on_verdict,
                args=(queue, slot.position, item.image_id, label),
                width="stretch",
            )
    columns[3].button(
        "Skip (S)",
        key="adn_review_skip",
        shortcut="s",
        on_click=_on_move,
        args=(queue.key(), slot.position + 1),
        width="stretch",
    )
    columns[4].button(
        "Previous",
        key="adn_review_previous",
        disabled=slot.position == 0,
        on_click=_on_move,
        args=(queue.key(), slot.position - 1),
        width="stretch",
    )
    if not context.can("reviewer"):
        st.info(
            "You have read-only access (viewer), so there are no verdict buttons. Ask an admin "
            "for the reviewer role to confirm images.",
            icon=":material/visibility:",
        )


def _progress(slot: review_service.QueueSlot) -> None:
    share = slot.reviewed / slot.total if slot.total else 0.0
    where = f" · item {slot.position + 1} of {slot.size}" if slot.item is not None else ""
    st.progress(share, text=f"{slot.reviewed} of {slot.total} reviewed in this queue{where}")


def render() -> None:
    """The review page."""
    st.title("Review")
    project_id = context.require_project()
    models = models_service.ready_models(context.session_factory(), project_id)
    if not models:
        st.info(
            "No model of this project is ready yet. Train one on the **Train** page and score a "
            "batch with it; its ranked images then appear here."
        )
        st.stop()
    categories = review_service.categories(context.session_factory(), project_id)
    batches = project_service.batches(context.session_factory(), project_id)
    queue, model = _controls(models, categories, batches)
    drift_warning(queue.model_version_id)
    _panel(queue, model)


# A verdict, skip or previous reruns only this panel: the filters above and their queries stay.
@st.fragment
def _panel(queue: review_service.QueueFilter, model: models_service.ModelChoice) -> None:
    """Progress, the verdict buttons, the image with its heatmap, and its facts."""
    _show_flash()
    view = review_service.queue_view(context.session_factory(), queue, _position(queue))
    slot, item = view.slot, view.slot.item
    _progress(slot)
    if item is None:
        if slot.size == 0 and slot.total == 0:
            st.info(
                "This queue is empty: the model has not scored any image matching the filters. "
                "Score a batch on the **Train** page, or change the filters."
            )
        else:
            st.success("You reached the end of this queue. 🎉")
            st.button(
                "Back to the start", on_click=_on_move, args=(queue.key(), 0), key="adn_restart"
            )
        return
    _buttons(queue, slot)
    pictures, facts = st.columns([3, 2])
    with pictures:
        _pictures(item, view.heatmap_pngs)
    with facts:
        _facts(item, model, view.history)


render()
