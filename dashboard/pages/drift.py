"""Drift: every batch a model scored against the model's calibration normals, as a trend."""

from __future__ import annotations

import streamlit as st

from dashboard import context, drift_charts
from dashboard.services import drift
from dashboard.services import drift_statistics as rules
from dashboard.services import models as models_service
from dashboard.services import thresholds as thresholds_service
from dashboard.services.data_version import DataKey

ALL_CATEGORIES = "All categories"

RULES_TEXT = f"""
**Figures per batch**, on its scores without its known anomalies (the current reviewer verdict
says anomalous, else the label it was uploaded with):

- **Above p99**: the share above the calibration 99th percentile (the r-th highest of the m
  normals held out in training), against the share an unchanged lot puts there, r / (m + 1),
  with its exact p-value.
- **KS**: the two-sample Kolmogorov–Smirnov distance D between the batch's and the calibration
  normals' scores, with its (asymptotic) p-value.
- **PSI**: the population stability index over bins cut at calibration quantiles.

**Drifted** when the share above p99 has p < {rules.ALPHA} and is at least
{rules.MIN_SHARE_RATIO:g}× the share expected, or when KS has p < {rules.ALPHA} and PSI is at least
{rules.PSI_DRIFT} (a major change; under 0.1 is stable). Both rules need significance, so a small
batch does not fire by chance, and size, so a large batch does not fire on a change nobody
minds.

**Known normals above p99** are images confirmed normal that the model's p99 would flag. Many of
them mean drift, not defects. Reviewers usually see the highest scores first, so this count leans
high and is evidence rather than the decision. Unlabelled defects stay in the figures: a batch
with many unfound defects can read as drifted.
"""


@st.cache_data(max_entries=16, show_spinner=False)
def _categories(key: DataKey, model_id: int) -> list[str]:
    return thresholds_service.scored_categories(context.session_factory(), model_id)


# One read of the model's scores per data version: changing the batch shown does not read again.
@st.cache_data(max_entries=16, show_spinner="Measuring drift…")
def _view(key: DataKey, model_id: int, category: str | None) -> drift.DriftView | None:
    return drift.drift_view(context.session_factory(), model_id, category)


def _reference_caption(view: drift.DriftView) -> None:
    st.caption(
        f"Calibration: {view.calibration_size} normal images held out in training. Their 99th "
        f"percentile (the score ranked {view.rank} from the top) is **{view.cut:.4g}**; a batch "
        f"of unchanged parts puts about **{view.expected_share:.1%}** of its scores above it."
        + (
            " With so few calibration normals only a large change can be told from chance."
            if view.calibration_size < 50
            else ""
        )
    )


def _summary(view: drift.DriftView) -> None:
    newest = view.newest_scored
    drifted = [b for b in view.batches if b.drifted]
    if newest is not None and newest.drifted:
        st.warning(drift.warning_text(newest, on_drift_page=True), icon=":material/trending_up:")
    elif drifted:
        st.info(
            f"{len(drifted)} of {len(view.batches)} batches drifted, but not the newest scored "
            f"one (**{newest.name if newest else ''}**).",
            icon=":material/info:",
        )
    else:
        st.success(
            f"None of the {len(view.batches)} scored batches has drifted from the calibration "
            "normals.",
            icon=":material/check:",
        )


def _batch_distribution(view: drift.DriftView) -> None:
    by_id = {b.batch_id: b for b in reversed(view.batches)}
    newest = view.newest_scored
    options = list(by_id)
    chosen = st.selectbox(
        "Batch",
        options,
        index=options.index(newest.batch_id) if newest is not None else 0,
        format_func=lambda i: by_id[i].name + (" · drifted" if by_id[i].drifted else ""),
        key="adn_drift_batch",
    )
    batch = by_id[int(chosen)]
    if not batch.stats.measured:
        st.info("Every scored image of this batch is a known anomaly: nothing to compare.")
        return
    st.plotly_chart(drift_charts.distribution_figure(view, batch), key="adn_drift_distribution")
    if batch.known_normal:
        st.caption(
            f"{batch.normals_above} of the {batch.known_normal} known normal images of this batch "
            "score above the calibration p99."
        )


def render() -> None:
    """The drift page."""
    st.title("Drift")
    project_id = context.require_project()
    models = models_service.ready_models(context.session_factory(), project_id)
    if not models:
        st.info("No model of this project is ready yet. Train one and score batches with it.")
        st.stop()
    by_id = {m.id: m for m in models}
    left, right = st.columns([3, 2])
    model_id = int(
        left.selectbox(
            "Model version",
            list(by_id),
            format_func=lambda i: by_id[i].label,
            key="adn_drift_model",
        )
    )
    key = context.models_data_key([model_id])
    choice = right.selectbox(
        "Scope", [ALL_CATEGORIES, *_categories(key, model_id)], key="adn_drift_category"
    )
    category = None if choice == ALL_CATEGORIES else choice
    view = _view(key, model_id, category)
    if view is None:
        st.info(
            "This model stored no calibration normals, so there is nothing to measure drift "
            "against. Models trained in the studio store them; retrain this one."
        )
        st.stop()
    if not view.batches:
        st.info("This model has not scored any image in this scope yet. Score a batch first.")
        st.stop()
    _reference_caption(view)
    _summary(view)
    st.plotly_chart(drift_charts.trend_figure(view), key="adn_drift_trend")
    st.dataframe(
        drift.drift_frame(view),
        hide_index=True,
        key="adn_drift_table",
        column_config={"drifted": st.column_config.CheckboxColumn("drifted")},
    )
    _batch_distribution(view)
    with st.expander("How drift is decided"):
        st.markdown(RULES_TEXT)


render()
