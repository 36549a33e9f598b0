"""Plotly figures of the Drift page (pure builders, no Streamlit): the trend over batches and one
batch's score distribution against the calibration normals."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts import ANOMALOUS_COLOUR, NORMAL_COLOUR, THRESHOLD_COLOUR, UNLABELLED_COLOUR
from dashboard.services.drift import BatchDrift, DriftView
from dashboard.services.drift_statistics import PSI_DRIFT

_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


def _hover(batch: BatchDrift) -> str:
    s = batch.stats
    return (
        f"{batch.name}<br>{s.n} scores ({batch.known_anomalous} known anomalies left out)"
        f"<br>above p99 {s.above} ({s.share_above:.1%}), p = {s.tail_p_value:.2g}"
        f"<br>KS D {s.ks_statistic:.3f}, p = {s.ks_p_value:.2g} · PSI {s.psi:.3f}"
        + ("<br><b>drifted</b>" if batch.drifted else "")
    )


def trend_figure(view: DriftView) -> go.Figure:
    """Share above the calibration p99 and PSI per batch, by upload time; drifted batches red."""
    batches = [b for b in view.batches if b.stats.measured]
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        subplot_titles=("Share of scores above the calibration p99", "PSI against calibration"),
    )
    x = [b.created_at for b in batches]
    colours = [ANOMALOUS_COLOUR if b.drifted else NORMAL_COLOUR for b in batches]
    hover = [_hover(b) for b in batches]
    common = {"x": x, "mode": "lines+markers", "hovertext": hover, "hoverinfo": "text"}
    figure.add_trace(
        go.Scatter(
            y=[100.0 * b.stats.share_above for b in batches],
            name="above p99 (%)",
            marker={"color": colours, "size": 10},
            line={"color": UNLABELLED_COLOUR},
            **common,
        ),
        row=1,
        col=1,
    )
    figure.add_trace(
        go.Scatter(
            y=[b.stats.psi for b in batches],
            name="PSI",
            marker={"color": colours, "size": 10},
            line={"color": UNLABELLED_COLOUR},
            **common,
        ),
        row=2,
        col=1,
    )
    figure.add_hline(
        y=100.0 * view.expected_share,
        line_dash="dash",
        line_color=THRESHOLD_COLOUR,
        annotation_text=f"expected {view.expected_share:.1%}",
        row=1,
        col=1,
    )
    figure.add_hline(
        y=PSI_DRIFT,
        line_dash="dash",
        line_color=ANOMALOUS_COLOUR,
        annotation_text=f"major change {PSI_DRIFT}",
        row=2,
        col=1,
    )
    figure.update_yaxes(title_text="%", rangemode="tozero", row=1, col=1)
    figure.update_yaxes(title_text="PSI", rangemode="tozero", row=2, col=1)
    # Minutes at most: a single batch otherwise gets ticks a millisecond apart.
    figure.update_xaxes(tickformat="%Y-%m-%d %H:%M", hoverformat="%Y-%m-%d %H:%M:%S")
    figure.update_xaxes(title_text="Batch uploaded", row=2, col=1)
    figure.update_layout(margin=_MARGIN, height=520, showlegend=False)
    return figure


def distribution_figure(view: DriftView, batch: BatchDrift) -> go.Figure:
    """One batch's scores (known anomalies left out) against the calibration normals, each as
    a share of its own count, with the p99 cut."""
    edges = np.asarray(view.edges)
    centres = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0]) if edges.size > 1 else 1.0
    figure = go.Figure()
    for name, counts, colour in (
        (f"calibration normals ({view.calibration_size})", view.calibration_histogram, "#2ca02c"),
        (f"{batch.name} ({batch.stats.n})", batch.histogram, ANOMALOUS_COLOUR),
    ):
        values = np.asarray(counts, dtype=np.float64)
        total = values.sum()
        figure.add_trace(
            go.Bar(
                x=centres,
                y=100.0 * values / total if total else values,
                width=width,
                name=name,
                marker_color=colour,
                opacity=0.55,
            )
        )
    figure.add_vline(
        x=view.cut,
        line_dash="dash",
        line_color=THRESHOLD_COLOUR,
        annotation_text="calibration p99",
    )
    figure.update_layout(
        barmode="overlay",
        title="Scores of the batch against the calibration normals",
        xaxis_title="Anomaly score",
        yaxis_title="% of each group",
        margin=_MARGIN,
        legend={"orientation": "h", "yanchor": "top", "y": -0.25, "x": 0},
        height=400,
    )
    return figure
