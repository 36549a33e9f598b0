"""The Review page's pictures: the original beside one heatmap, the heatmap overlaid, or two
heatmap methods side by side, all under one opacity slider."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st
from PIL import Image
from streamlit.delta_generator import DeltaGenerator

from dashboard.services import heatmaps
from dashboard.services.heatmap_labels import DEFAULT_METHOD, method_label

METHOD_KEY = "adn_review_method"
SECOND_METHOD_KEY = "adn_review_second_method"
BESIDE_ORIGINAL = "Original and heatmap"
OVERLAID = "Overlaid"
TWO_MAPS = "Two heatmaps"


def show_pictures(
    original: Image.Image, caption: str, pngs: Mapping[str, bytes], name: str
) -> None:
    """The original and its stored heatmaps (``pngs`` by method) as the reviewer chose."""
    methods = list(pngs)
    views = [BESIDE_ORIGINAL, OVERLAID] + ([TWO_MAPS] if len(methods) > 1 else [])
    controls = st.columns([3, 2]) if methods else [st.container()]
    mode = controls[0].radio("View", views, horizontal=True, key="adn_review_view")
    if mode not in views:
        mode = BESIDE_ORIGINAL
    method = _method_choice(controls[-1], methods) if methods else None
    opacity = st.slider("Heatmap opacity", 0.0, 1.0, 0.45, 0.05, key="adn_review_opacity")
    if method is None:
        st.info("No heatmap was stored for this image (it was scored without heatmaps).")
        st.image(original, caption=caption, width="stretch")
        return
    if mode == TWO_MAPS:
        second = _second_choice(methods, method)
        left, right = st.columns(2)
        for column, shown in ((left, method), (right, second)):
            _overlay(column, original, pngs[shown], opacity, method_label(shown))
        return
    if mode == OVERLAID:
        caption = f"{name} · {method_label(method)}"
        _overlay(st.container(), original, pngs[method], opacity, caption)
        return
    left, right = st.columns(2)
    left.image(original, caption=caption, width="stretch")
    _overlay(right, original, pngs[method], opacity, method_label(method))


def preferred_method(methods: list[str], wanted: str | None) -> str:
    """The reviewer's last choice when this image has it, else the default, else the first."""
    for candidate in (wanted, DEFAULT_METHOD):
        if candidate in methods:
            return str(candidate)
    return methods[0]


def _method_choice(place: DeltaGenerator, methods: list[str]) -> str:
    # The choice is remembered across images; an image without that method shows another.
    method = preferred_method(methods, st.session_state.get(METHOD_KEY))
    if len(methods) == 1:
        place.caption(f"Heatmap: {method_label(method)}")
        return method
    return _remembered_pick(place, "Heatmap", methods, method, METHOD_KEY)


def _second_choice(methods: list[str], first: str) -> str:
    others = [m for m in methods if m != first]
    wanted = st.session_state.get(SECOND_METHOD_KEY)
    second = wanted if wanted in others else others[0]
    return _remembered_pick(st.container(), "Beside it", others, second, SECOND_METHOD_KEY)


def _remembered_pick(
    place: DeltaGenerator, label: str, options: list[str], current: str, key: str
) -> str:
    """A method picker starting at ``current``; the pick is kept under ``key`` for the next
    image (whose options may differ, so the widget's own state cannot hold it)."""
    chosen = place.selectbox(
        label,
        options,
        index=options.index(current),
        format_func=method_label,
        key=f"{key}_pick",
    )
    st.session_state[key] = chosen
    return str(chosen)


def _overlay(
    place: DeltaGenerator,
    original: Image.Image,
    png: bytes,
    opacity: float,
    caption: str,
) -> None:
    try:
        blended = heatmaps.overlay(original, png, opacity)
    except heatmaps.PictureError as exc:
        place.error(f"Cannot show the heatmap: {exc}", icon=":material/broken_image:")
        return
    place.image(blended, caption=f"{caption} at {opacity:.0%}", width="stretch")
