"""Compare attention variants trained on the same images, or a model and its retrained children,
on the same labelled images (none that a compared model trained on)."""

from __future__ import annotations

import logging

import streamlit as st
from PIL import Image

from dashboard import charts, context
from dashboard.services import compare as service
from dashboard.services import compare_images, heatmaps
from dashboard.services.auroc_interval import BOOTSTRAP_MAX_IMAGES
from dashboard.services.data_version import DataKey
from dashboard.services.heatmap_labels import METHODS_HELP, method_label
from dashboard.services.text import short_name

logger = logging.getLogger(__name__)

MAX_DISAGREEMENT_ROWS = 500


# Choices in the image picker: the images where the models disagree, then the highest-scored.
MAX_IMAGE_CHOICES = 1000
# Points per model in the score distribution chart (a fixed sample above it keeps its shape).
MAX_DISTRIBUTION_POINTS = 20_000
# The heatmap choice that shows a row of maps per stored method.
EVERY_METHOD = "every"


@st.cache_data(max_entries=8, show_spinner="Loading the scores…")
def _comparison(
    key: DataKey, model_ids: tuple[int, ...], _group: service.CompareGroup
) -> service.Comparison:
    """The models' paired scores, read once per data version of the models."""
    return service.load_comparison(context.session_factory(), _group.models)


@st.cache_data(show_spinner="Bootstrapping the AUROC intervals…", max_entries=32)
def _auroc_table(
    key: DataKey, model_ids: tuple[int, ...], _comparison: service.Comparison
) -> service.AurocTable:
    """The bootstrap table, cached per data version (it only changes when scores or labels do)."""
    c = _comparison
    truths = tuple(c.truths.tolist())
    return service.auroc_table_of(
        tuple(c.columns), c.scores, tuple(str(x) for x in c.categories), truths
    )


def _table(comparison: service.Comparison, key: DataKey, model_ids: tuple[int, ...]) -> None:
    st.subheader("AUROC per category")
    table = _auroc_table(key, model_ids, comparison)
    if all(cell is None for cell in table.cells.values()):
        st.info(
            "Every category's labelled images are of one class only, so AUROC is undefined. "
            "Review (or upload with labels) both anomalous and normal images."
        )
        return
    st.markdown(service.table_markdown(table))
    st.caption(
        "AUROC in % with the 95 % stratified bootstrap interval (1,000 resamples; DeLong's "
        f"normal interval for a category of more than {BOOTSTRAP_MAX_IMAGES:,} labelled images, "
        "where the two agree); the best model of each row in bold. The mean row averages the "
        "categories."
    )


def _charts(comparison: service.Comparison) -> None:
    curves = service.roc_curves(comparison)
    left, right = st.columns(2)
    if curves:
        left.plotly_chart(
            charts.roc_overlay_figure(
                [charts.NamedCurve(name, c.x, c.y, auc) for name, c, auc in curves]
            ),
            key="adn_cmp_roc",
        )
    frame = service.normalised_scores(comparison)
    if len(frame) > MAX_DISTRIBUTION_POINTS * len(comparison.models):
        frame = frame.groupby("model", group_keys=False).sample(
            n=MAX_DISTRIBUTION_POINTS, random_state=0
        )
    if not frame.empty:
        right.plotly_chart(
            charts.distribution_figure(frame["model"], frame["label"], frame["scaled"]),
            key="adn_cmp_dist",
        )


def _disagreements(comparison: service.Comparison) -> list[int]:
    st.subheader("Where the models disagree")
    positions = compare_images.disagreeing(comparison)
    if positions.size == 0:
        st.caption(
            "The models give the same verdict on every common image (under each model's active "
            "threshold; models without an active threshold give none)."
        )
        return []
    st.caption(
        f"{positions.size} of {comparison.image_ids.size} images get different verdicts (verdict "
        "and score per model, under each model's active threshold)."
    )
    shown = positions[:MAX_DISAGREEMENT_ROWS]
    files = compare_images.image_files(context.session_factory(), comparison.image_ids[shown])
    frame = compare_images.disagreement_frame(comparison, shown, files)
    st.dataframe(frame.drop(columns=["image_id"]), hide_index=True, key="adn_cmp_disagree")
    return [int(i) for i in comparison.image_ids[positions].tolist()]


@st.fragment
def _side_by_side(comparison: service.Comparison, disagreeing: list[int]) -> None:
    """The chosen image and each model's heatmap overlay; reruns alone when the choice moves."""
    st.subheader("Heatmaps side by side")
    order = compare_images.picker_order(comparison, disagreeing, MAX_IMAGE_CHOICES)
    factory = context.session_factory()
    files = compare_images.image_files(factory, order)
    position = compare_images.positions_of(comparison, order)
    shown = set(disagreeing)
    left, right = st.columns([3, 1])
    chosen = left.selectbox(
        "Image",
        order,
        format_func=lambda i: (
            f"{short_name(files[i].original_name) if i in files else f'#{i}'} · "
            f"truth {comparison.truths[position[i]] or '—'}"
            + (" · models disagree" if i in shown else "")
        ),
        key="adn_cmp_image",
        help=f"The images where the models disagree first, then the highest-scored "
        f"({MAX_IMAGE_CHOICES:,} at most).",
    )
    opacity = right.slider("Heatmap opacity", 0.0, 1.0, 0.45, 0.05, key="adn_cmp_opacity")
    if chosen is None:
        return
    index = position[int(chosen)]
    found = files.get(int(chosen))
    if found is None:
        st.error("Cannot show this image: it is no longer in the store.")
        return
    data_dir = context.store_settings().data_dir
    try:
        original = heatmaps.load_display_image(
            compare_images.image_path(data_dir, found), max_side=512
        )
    except heatmaps.PictureError as exc:
        st.error(f"Cannot show this image: {exc}")
        return
    methods = service.heatmap_methods(factory, int(chosen), comparison.models)
    if not methods:
        st.info("None of these models stored a heatmap of this image.")
        st.image(original, caption="Original", width=320)
        return
    method_choice = st.segmented_control(
        "Heatmaps",
        [EVERY_METHOD, *methods],
        default=methods[0],
        format_func=lambda m: "every stored method" if m == EVERY_METHOD else method_label(m),
        key="adn_cmp_method",
        help=METHODS_HELP,
    )
    picked = methods if method_choice == EVERY_METHOD else [method_choice or methods[0]]
    for method in picked:
        pngs = service.heatmap_pngs(factory, int(chosen), comparison.models, method)
        _map_row(comparison, index, original, pngs, opacity, method)


def _map_row(
    comparison: service.Comparison,
    index: int,
    original: Image.Image,
    pngs: list[bytes | None],
    opacity: float,
    method: str,
) -> None:
    """The original, then each model's map of one method over it."""
    columns = st.columns(len(comparison.models) + 1)
    columns[0].image(original, caption=f"Original · {method_label(method)}", width="stretch")
    for column, name, png, row in zip(
        columns[1:], comparison.columns, pngs, range(len(comparison.models)), strict=True
    ):
        caption = (
            f"{name} · score {comparison.scores[row, index]:.3g} · "
            f"{comparison.verdicts[row, index] or 'no threshold'}"
        )
        if png is None:
            column.info(f"{name}: no {method_label(method)} heatmap stored")
            continue
        try:
            column.image(heatmaps.overlay(original, png, opacity), caption=caption, width="stretch")
        except heatmaps.PictureError as exc:
            column.error(f"{name}: {exc}")


def render() -> None:
    """The compare page."""
    st.title("Compare variants")
    project_id = context.require_project()
    groups = service.training_groups(context.session_factory(), project_id)
    if not groups:
        st.info("No model of this project is ready yet. Train variants on the **Train** page.")
        st.stop()
    by_key = {g.key: g for g in groups}
    key = st.selectbox(
        "Models to compare",
        list(by_key),
        format_func=lambda k: by_key[k].label,
        key="adn_cmp_group",
        help="Models trained on the same batches, image selection and category; or a model and "
        "the versions retrained from it with reviewed normals.",
    )
    group = by_key[key]
    for model in group.models:
        if model.lineage:
            st.caption(f"#{model.id} is a {model.lineage}.")
    if len(group.models) < 2:
        st.info(
            "Only one model was trained on these images. Train another attention variant on the "
            "same images (Train page, several variants at once) to compare them."
        )
    model_ids = tuple(m.id for m in group.models)
    data_key = context.models_data_key(model_ids)
    comparison = _comparison(data_key, model_ids, group)
    if comparison.image_ids.size == 0:
        trained = (
            f" ({comparison.excluded_training} scored by all of them were left out because one "
            "of the models trained on them)"
            if comparison.excluded_training
            else ""
        )
        st.info(
            f"No image was scored by all of these models{trained}. Score the same batch with "
            "each model on the **Train** page."
        )
        st.stop()
    labelled = int(comparison.labelled.sum())
    st.caption(
        f"{comparison.image_ids.size} images scored by every model; {labelled} with a label "
        "(reviewer verdict, else the label that came with the upload). "
        f"{comparison.excluded_training} images are left out of every number here because one "
        "of these models trained on them."
    )
    if labelled == 0:
        st.info(
            "None of these images has a label yet. Review some on the **Review** page, or "
            "upload them with labels (folder names or a CSV)."
        )
    else:
        _table(comparison, data_key, model_ids)
        _charts(comparison)
    disagreeing = _disagreements(comparison)
    _side_by_side(comparison, disagreeing)


render()
