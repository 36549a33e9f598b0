"""Thresholds: tune the decision threshold on reviewed images and save it as a new version."""

from __future__ import annotations

import logging
from typing import Any, cast

import numpy as np
import streamlit as st

from dashboard import charts, context
from dashboard.carry_over_panel import carry_over_offer
from dashboard.drift_warning import drift_warning
from dashboard.services import metrics
from dashboard.services import models as models_service
from dashboard.services import threshold_methods as methods
from dashboard.services import thresholds as service
from dashboard.services.data_version import DataKey
from dashboard.services.errors import PermissionDeniedError, StoreError

logger = logging.getLogger(__name__)

ALL_CATEGORIES = "All categories"
FLASH_KEY = "adn_thr_flash"
METHOD_KEY = "adn_thr_method"


def _keys(model_id: int, category: str | None) -> dict[str, str]:
    scope = f"{model_id}_{category or 'all'}"
    return {
        "value": f"adn_thr_value_{scope}",
        "band": f"adn_thr_band_{scope}",
        "use_band": f"adn_thr_use_band_{scope}",
        "applied": f"adn_thr_applied_{scope}",
    }


def _show_flash() -> None:
    flash = st.session_state.pop(FLASH_KEY, None)
    if flash:
        kind, text = flash
        (st.error if kind == "error" else st.success)(text)


def _bounds(
    data: service.LabelledData, active: service.ActiveThreshold | None
) -> tuple[float, float]:
    values = [*data.all_scores.tolist()]
    if active is not None:
        values.append(active.value)
        if active.upper_value is not None:
            values.append(active.upper_value)
    low, high = float(min(values)), float(max(values))
    pad = (high - low) * 0.02 if high > low else max(abs(low) * 0.1, 1e-3)
    return low - pad, high + pad


def _initial_state(
    keys: dict[str, str],
    data: service.LabelledData,
    active: service.ActiveThreshold | None,
    bounds: tuple[float, float],
) -> None:
    """Seed the sliders from the active threshold (else max F1, else the median score)."""
    low, high = bounds
    if keys["value"] not in st.session_state:
        if active is not None:
            start = active.value
        elif data.has_both_classes:
            start = methods.max_f1(data.scores, data.positives).value
        else:
            start = float(np.median(data.all_scores))
        st.session_state[keys["value"]] = float(np.clip(start, low, high))
    if keys["band"] not in st.session_state:
        if active is not None and active.upper_value is not None:
            band = (active.value, active.upper_value)
        else:
            centre = st.session_state[keys["value"]]
            half = (high - low) * 0.05
            band = (max(low, centre - half), min(high, centre + half))
        st.session_state[keys["band"]] = (float(band[0]), float(band[1]))
    if keys["use_band"] not in st.session_state:
        st.session_state[keys["use_band"]] = active is not None and active.upper_value is not None
    # New scores can move the slider range: keep remembered values inside it.
    value = float(np.clip(st.session_state[keys["value"]], low, high))
    if value != st.session_state[keys["value"]]:
        st.session_state[keys["value"]] = value
    clipped = tuple(float(np.clip(v, low, high)) for v in st.session_state[keys["band"]])
    if clipped != tuple(st.session_state[keys["band"]]):
        st.session_state[keys["band"]] = clipped


def _apply(keys: dict[str, str], proposal: methods.ThresholdProposal) -> None:
    """Button callback: put a proposal on the slider(s) and remember how it was made."""
    if proposal.upper_value is None:
        st.session_state[keys["use_band"]] = False
        st.session_state[keys["value"]] = proposal.value
    else:
        st.session_state[keys["use_band"]] = True
        st.session_state[keys["band"]] = (proposal.value, proposal.upper_value)
    st.session_state[keys["applied"]] = {
        "method": proposal.method,
        "params": proposal.params,
        "value": proposal.value,
        "upper_value": proposal.upper_value,
    }


def _method_params(method: str) -> dict[str, Any]:
    """Inputs of the chosen method, as the keyword arguments of ``methods.propose``."""
    params: dict[str, Any] = {}
    columns = st.columns(3)
    if method in (methods.TARGET_RECALL, methods.REVIEW_BAND):
        miss = columns[0].number_input(
            "Miss at most (% of defects)",
            0.0,
            99.0,
            5.0,
            1.0,
            key="adn_thr_miss",
            help="Target recall = 100 % minus this. For a band: defects allowed to auto-pass.",
        )
        params["recall"] = 1.0 - miss / 100.0
    if method in (methods.FALSE_ALARM_CAP, methods.REVIEW_BAND):
        cap = columns[1].number_input(
            "False alarms at most (% of normal images)",
            0.0,
            99.0,
            5.0,
            1.0,
            key="adn_thr_cap",
            help="For a band: normal images allowed to auto-fail.",
        )
        params["cap"] = cap / 100.0
    if method == methods.MIN_COST:
        params["cost_miss"] = columns[0].number_input(
            "Cost per missed defect", 0.0, value=10.0, step=1.0, key="adn_thr_cost_miss"
        )
        params["cost_false_alarm"] = columns[1].number_input(
            "Cost per false alarm", 0.0, value=1.0, step=1.0, key="adn_thr_cost_fa"
        )
        if columns[2].toggle("Set defect prevalence", key="adn_thr_use_prev"):
            prevalence = columns[2].number_input(
                "Defects in production (%)", 0.01, 99.99, 1.0, 0.5, key="adn_thr_prev"
            )
            params["prevalence"] = prevalence / 100.0
    return params


def _proposal_text(proposal: methods.ThresholdProposal) -> str:
    m = proposal.metrics
    if proposal.upper_value is not None:
        return (
            f"T1 = **{proposal.value:.4g}**, T2 = **{proposal.upper_value:.4g}** · people review "
            f"{m['review_share']:.1%} of the labelled images · defects auto-passed "
            f"{m['missed_defect_rate']:.1%} · normals auto-failed {m['false_alarm_rate']:.1%}"
        )
    text = (
        f"T = **{proposal.value:.4g}** · precision {m['precision']:.1%} · recall "
        f"{m['recall']:.1%} · F1 {m['f1']:.3f} · false alarms {m['false_alarm_rate']:.1%}"
    )
    if "expected_cost_per_image" in m:
        text += f" · expected cost per image {m['expected_cost_per_image']:.4g}"
    return text


def _method_picker(keys: dict[str, str], data: service.LabelledData) -> None:
    method = st.selectbox(
        "Method",
        list(methods.METHOD_LABELS),
        format_func=methods.METHOD_LABELS.__getitem__,
        key=METHOD_KEY,
    )
    if method == methods.MANUAL:
        st.caption("Move the slider; the curves, histogram and matrix follow it.")
        return
    params = _method_params(method)
    try:
        proposal = methods.propose(method, data.scores, data.positives, **params)
    except (methods.ThresholdMethodError, metrics.MetricsError) as exc:
        st.warning(str(exc))
        return
    st.markdown(f"Proposed: {_proposal_text(proposal)}")
    if proposal.note:
        st.caption(proposal.note)
    st.button(
        "Apply to slider",
        key="adn_thr_apply",
        on_click=_apply,
        args=(keys, proposal),
        icon=":material/arrow_downward:",
    )


def _markers(data: service.LabelledData, cuts: list[tuple[str, float]]) -> tuple[list, list]:
    roc, pr = [], []
    for label, cut in cuts:
        at = metrics.confusion_at(data.scores, data.positives, cut)
        roc.append(charts.Marker(label, at.false_alarm_rate, at.recall))
        pr.append(charts.Marker(label, at.recall, at.precision if at.tp + at.fp else 1.0))
    return roc, pr


def _curves(data: service.LabelledData, cuts: list[tuple[str, float]]) -> None:
    roc_markers, pr_markers = _markers(data, cuts)
    roc = metrics.roc_curve(data.scores, data.positives)
    pr = metrics.pr_curve(data.scores, data.positives)
    left, right = st.columns(2)
    left.plotly_chart(
        charts.roc_figure(roc.x, roc.y, metrics.auroc(data.scores, data.positives), roc_markers),
        key="adn_thr_roc",
    )
    right.plotly_chart(
        charts.pr_figure(
            pr.x,
            pr.y,
            metrics.average_precision(data.scores, data.positives),
            data.n_anomalous / data.positives.size,
            pr_markers,
        ),
        key="adn_thr_pr",
    )


def _numbers_single(data: service.LabelledData, value: float) -> list[list[int]]:
    at = metrics.confusion_at(data.scores, data.positives, value)
    cols = st.columns(4)
    cols[0].metric("Precision", f"{at.precision:.1%}")
    cols[1].metric("Recall", f"{at.recall:.1%}", help="Share of defects flagged")
    cols[2].metric("F1", f"{at.f1:.3f}")
    cols[3].metric("False-alarm rate", f"{at.false_alarm_rate:.1%}", help="Normals flagged")
    return [[at.tp, at.fn], [at.fp, at.tn]]


def _numbers_band(data: service.LabelledData, band: tuple[float, float]) -> list[list[int]]:
    counts = metrics.band_counts(data.scores, data.positives, band[0], band[1])
    cols = st.columns(3)
    cols[0].metric("Sent to people", f"{counts.review_share:.1%}")
    cols[1].metric("Defects auto-passed", f"{counts.missed_defect_rate:.1%}")
    cols[2].metric("Normals auto-failed", f"{counts.false_alarm_rate:.1%}")
    return [
        [counts.failed[0], counts.review[0], counts.passed[0]],
        [counts.failed[1], counts.review[1], counts.passed[1]],
    ]


def _save(
    keys: dict[str, str],
    model_id: int,
    category: str | None,
    data: service.LabelledData,
    value: float,
    upper: float | None,
) -> None:
    applied = st.session_state.get(keys["applied"]) or {}
    same = applied.get("value") == value and applied.get("upper_value") == upper
    method = applied["method"] if same else methods.MANUAL
    params = applied.get("params", {}) if same else {}
    try:
        saved = service.save_version(
            context.session_factory(),
            actor_id=context.actor_id(),
            model_version_id=model_id,
            category=category,
            value=value,
            upper_value=upper,
            method=method,
            params=params,
            data=data,
        )
    except (PermissionDeniedError, StoreError) as exc:
        st.error(f"The threshold was not saved: {exc}")
        return
    for key in keys.values():
        st.session_state.pop(key, None)
    st.session_state[FLASH_KEY] = (
        "success",
        f"Saved threshold {service.version_label(saved.version, saved.category)}; it is active now "
        "and every stored score in its scope is relabelled by it.",
    )
    st.rerun()


@st.fragment
def explorer(
    model_id: int,
    category: str | None,
    data: service.LabelledData,
    active: service.ActiveThreshold | None,
) -> None:
    """Slider(s), proposals, curves, histogram, matrix and numbers; reruns on its own."""
    keys = _keys(model_id, category)
    bounds = _bounds(data, active)
    _initial_state(keys, data, active, bounds)
    low, high = bounds
    step = (high - low) / 1000
    if data.has_both_classes:
        with st.container(border=True):
            _method_picker(keys, data)
    use_band = st.toggle(
        "Two-threshold review band (auto-pass below T1, auto-fail from T2, people in between)",
        key=keys["use_band"],
    )
    upper: float | None
    if use_band:
        t1, t2 = cast(
            tuple[float, float],
            st.slider("T1 … T2", low, high, key=keys["band"], step=step, format="%.4f"),
        )
        value, upper = float(t1), float(t2)
        cuts = [("T1", value), ("T2", upper)]
    else:
        value = float(
            st.slider("Threshold", low, high, key=keys["value"], step=step, format="%.4f")
        )
        upper = None
        cuts = [("T", value)]
    if data.has_both_classes:
        matrix = (
            _numbers_band(data, (value, upper))
            if upper is not None
            else _numbers_single(data, value)
        )
        _curves(data, cuts)
    left, right = st.columns([3, 2])
    left.plotly_chart(
        charts.histogram_figure(
            data.scores[data.positives],
            data.scores[~data.positives],
            threshold=value,
            band=(value, upper) if upper is not None else None,
            unlabelled=data.unreviewed_scores,
            unsure=data.unsure_scores,
        ),
        key="adn_thr_hist",
    )
    if data.has_both_classes:
        if upper is None:
            figure = charts.confusion_figure(
                matrix, ["anomalous", "normal"], ["flagged", "passed"], "Confusion at T"
            )
        else:
            figure = charts.confusion_figure(
                matrix,
                ["anomalous", "normal"],
                ["auto-fail", "review", "auto-pass"],
                "Where images go",
            )
        right.plotly_chart(figure, key="adn_thr_confusion")
    if context.can("reviewer"):
        if st.button("Save as new version", type="primary", key="adn_thr_save"):
            _save(keys, model_id, category, data, value, upper)
    else:
        st.caption("Viewers can explore thresholds; saving needs the reviewer role.")


def _no_labels_message(data: service.LabelledData, known_available: int, use_known: bool) -> None:
    if data.scores.size == 0:
        text = (
            "**Nothing has been reviewed yet** for this model and scope, so there are no curves. "
            "Review some images on the **Review** page (mark anomalous and normal ones)"
        )
        if not use_known and known_available:
            text += (
                f", or switch on **Use known labels from upload** above ({known_available} "
                "images here came with a label)"
            )
        st.info(text + ". You can still set a manual threshold on the score histogram below.")
    else:
        missing = "anomalous" if data.n_anomalous == 0 else "normal"
        st.info(
            f"The labelled images are all {'normal' if missing == 'anomalous' else 'anomalous'}: "
            f"curves and proposals need at least one **{missing}** image too. Review more images "
            "on the **Review** page."
        )


def _versions(model_id: int, category: str | None) -> None:
    versions = service.list_versions(context.session_factory(), model_id, category)
    st.subheader("Versions")
    if not versions:
        st.caption("No threshold saved for this scope yet.")
        return
    st.dataframe(
        service.versions_frame(versions),
        hide_index=True,
        key="adn_thr_versions",
        column_config={"active": st.column_config.CheckboxColumn("active")},
    )
    older = [v for v in versions if not v.is_active]
    if not older or not context.can("reviewer"):
        return
    by_id = {v.id: v for v in older}
    left, right = st.columns([3, 1])
    chosen = left.selectbox(
        "Older version",
        list(by_id),
        format_func=lambda i: (
            f"{service.version_label(by_id[i].version, by_id[i].category)} · {by_id[i].value:.4g}"
            + (f"…{by_id[i].upper_value:.4g}" if by_id[i].upper_value is not None else "")
            + f" · {by_id[i].method} · {by_id[i].created_by}"
        ),
        key="adn_thr_restore_pick",
    )
    if right.button("Restore", key="adn_thr_restore"):
        try:
            restored = service.restore_version(
                context.session_factory(), actor_id=context.actor_id(), threshold_id=int(chosen)
            )
        except (PermissionDeniedError, StoreError) as exc:
            st.error(f"The version was not restored: {exc}")
            return
        for key in _keys(model_id, category).values():
            st.session_state.pop(key, None)
        st.session_state[FLASH_KEY] = (
            "success",
            f"{service.version_label(restored.version, restored.category)} is active again; "
            "stored scores follow it.",
        )
        st.rerun()


def _active_summary(
    active: service.ActiveThreshold | None, counts: dict[str, int], category: str | None
) -> None:
    if active is None:
        st.warning(
            "No active threshold: images get no model verdict yet. Save one below.",
            icon=":material/warning:",
        )
        return
    limit = (
        f"T1 {active.value:.4g} · T2 {active.upper_value:.4g}"
        if active.upper_value is not None
        else f"{active.value:.4g}"
    )
    total = sum(counts.values())
    parts = [
        f"{counts.get(k, 0):,} {k}" for k in ("anomalous", "normal", "review") if counts.get(k)
    ]
    inherited = " (inherited)" if category is not None and active.category is None else ""
    st.markdown(
        f"**Active threshold:** {service.version_label(active.version, active.category)}"
        f"{inherited} = **{limit}**, method "
        f"{active.method} · of {total:,} stored scores: {' · '.join(parts) or 'none'}"
    )


# What a model's scores say is loaded once per data version: moving a slider reruns the page
# without reading 100,000 scores again (the version changes with any score, verdict or
# threshold, so a saved version or a new verdict is seen at once).
@st.cache_data(max_entries=16, show_spinner="Loading the scores…")
def _tuning_view(
    key: DataKey, model_id: int, category: str | None, use_known: bool
) -> service.TuningView:
    return service.tuning_view(
        context.session_factory(), model_id, category, use_known_labels=use_known
    )


@st.cache_data(max_entries=16, show_spinner=False)
def _categories(key: DataKey, model_id: int) -> list[str]:
    return service.scored_categories(context.session_factory(), model_id)


def render() -> None:
    """The thresholds page."""
    st.title("Thresholds")
    project_id = context.require_project()
    models = models_service.ready_models(context.session_factory(), project_id)
    if not models:
        st.info("No model of this project is ready yet. Train and score one first.")
        st.stop()
    _show_flash()
    by_id = {m.id: m for m in models}
    left, middle, right = st.columns([3, 2, 2])
    model_id = int(
        left.selectbox(
            "Model version", list(by_id), format_func=lambda i: by_id[i].label, key="adn_thr_model"
        )
    )
    key = context.models_data_key([model_id])
    drift_warning(model_id, key)
    categories = _categories(key, model_id)
    choice = middle.selectbox("Scope", [ALL_CATEGORIES, *categories], key="adn_thr_category")
    category = None if choice == ALL_CATEGORIES else choice
    use_known = right.toggle(
        "Use known labels from upload",
        key="adn_thr_known",
        help="Images without a reviewer verdict count with the label they were uploaded with.",
    )
    view = _tuning_view(key, model_id, category, use_known)
    data, known_available, active = view.data, view.known_available, view.active
    _active_summary(active, view.counts, category)
    if data.all_scores.size == 0:
        st.info("This model has not scored any image in this scope yet. Score a batch first.")
        st.stop()
    st.caption(
        f"Labelled images: {data.n_anomalous} anomalous, {data.n_normal} normal "
        f"({data.from_verdicts} from reviewer verdicts, {data.from_known_labels} from known "
        f"labels); {data.unsure_scores.size} marked unsure and {data.unreviewed_scores.size} "
        "not reviewed, without a label."
    )
    if not data.has_both_classes:
        _no_labels_message(data, known_available, use_known)
    if carry_over_offer(by_id[model_id], category, use_known):
        for state_key in _keys(model_id, category).values():
            st.session_state.pop(state_key, None)
        st.rerun()
    explorer(model_id, category, data, active)
    _versions(model_id, category)


render()
