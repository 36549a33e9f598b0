"""Plotly figures of the review, thresholds and compare pages (pure builders, no Streamlit)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

logger = logging.getLogger(__name__)

ANOMALOUS_COLOUR = "#d62728"
NORMAL_COLOUR = "#1f77b4"
UNLABELLED_COLOUR = "#7f7f7f"
UNSURE_COLOUR = "#e6a700"
THRESHOLD_COLOUR = "#111111"
BAND_COLOUR = "rgba(255, 165, 0, 0.18)"
VARIANT_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
_MARGIN = {"l": 10, "r": 10, "t": 40, "b": 10}


@dataclass(frozen=True)
class Marker:
    """A labelled point on a curve (the current threshold, T1 or T2)."""

    label: str
    x: float
    y: float


MAX_CURVE_POINTS = 600


def thin(
    x: np.ndarray, y: np.ndarray, max_points: int = MAX_CURVE_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` evenly spaced points of a curve, first and last kept (a curve of
    thousands of thresholds looks the same and draws faster)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.size <= max_points:
        return x, y
    keep = np.unique(np.linspace(0, x.size - 1, max_points).round().astype(np.int64))
    return x[keep], y[keep]


def _layout(figure: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    figure.update_layout(
        title=title,
        xaxis_title=x_title,
        yaxis_title=y_title,
        margin=_MARGIN,
        legend={"orientation": "h", "yanchor": "top", "y": -0.3, "x": 0},
        height=400,
    )
    return figure


def _markers(figure: go.Figure, markers: Sequence[Marker]) -> None:
    for marker in markers:
        figure.add_trace(
            go.Scatter(
                x=[marker.x],
                y=[marker.y],
                mode="markers+text",
                name=marker.label,
                text=[marker.label],
                textposition="bottom right",
                marker={"size": 12, "color": THRESHOLD_COLOUR, "symbol": "x"},
            )
        )


def roc_figure(
    fpr: np.ndarray, tpr: np.ndarray, auroc: float | None, markers: Sequence[Marker] = ()
) -> go.Figure:
    """The ROC curve (false-alarm rate vs recall) with chance line and marked thresholds."""
    name = "ROC" if auroc is None else f"ROC (AUROC {auroc:.3f})"
    fpr, tpr = thin(fpr, tpr)
    figure = go.Figure(
        [
            go.Scatter(x=fpr, y=tpr, mode="lines", name=name, line={"shape": "hv"}),
            go.Scatter(
                x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "width": 1}
            ),
        ]
    )
    _markers(figure, markers)
    figure.update_xaxes(range=[-0.02, 1.02])
    figure.update_yaxes(range=[-0.02, 1.02])
    return _layout(figure, "ROC curve", "False-alarm rate", "Recall (defects caught)")


def pr_figure(
    recall: np.ndarray,
    precision: np.ndarray,
    average_precision: float | None,
    prevalence: float | None = None,
    markers: Sequence[Marker] = (),
) -> go.Figure:
    """The precision-recall curve, the no-skill line at the defect share, marked thresholds."""
    name = "PR" if average_precision is None else f"PR (AP {average_precision:.3f})"
    recall, precision = thin(recall, precision)
    figure = go.Figure(
        [go.Scatter(x=recall, y=precision, mode="lines", name=name, line={"shape": "vh"})]
    )
    if prevalence is not None:
        figure.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[prevalence, prevalence],
                mode="lines",
                name="no skill",
                line={"dash": "dot", "width": 1},
            )
        )
    _markers(figure, markers)
    figure.update_xaxes(range=[-0.02, 1.02])
    figure.update_yaxes(range=[-0.02, 1.05])
    return _layout(figure, "Precision-recall curve", "Recall", "Precision")


def _bins(values: Sequence[np.ndarray], count: int) -> np.ndarray:
    """Shared histogram bin edges over all groups; the last bin holds the highest score (often
    the worst defect)."""
    joined = np.concatenate([np.asarray(v, dtype=np.float64) for v in values if len(v)])
    low, high = float(joined.min()), float(joined.max())
    if high <= low:
        half = max(abs(low), 1.0) * 1e-3
        low, high = low - half, high + half
    return np.linspace(low, high, count + 1)


def histogram_figure(
    anomalous: np.ndarray,
    normal: np.ndarray,
    *,
    threshold: float | None,
    band: tuple[float, float] | None = None,
    unlabelled: np.ndarray | None = None,
    unsure: np.ndarray | None = None,
    bins: int = 40,
) -> go.Figure:
    """Score histograms of both classes (and of the unreviewed and the "unsure" images, if
    given) with the threshold line, or the review band T1..T2 shaded. Each group is normalised
    to percent of itself, so a few reviewed images stay visible next to thousands of others.
    The bins are counted here: the browser gets ``bins`` bars per group, not every score."""
    groups = [
        ("anomalous", anomalous, ANOMALOUS_COLOUR),
        ("normal", normal, NORMAL_COLOUR),
    ]
    if unlabelled is not None:
        groups.append(("not reviewed", unlabelled, UNLABELLED_COLOUR))
    if unsure is not None:
        groups.append(("unsure", unsure, UNSURE_COLOUR))
    present = [(name, np.asarray(v), colour) for name, v, colour in groups if len(v)]
    figure = go.Figure()
    if present:
        edges = _bins([v for _, v, _ in present], bins)
        centres, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        for name, values, colour in present:
            counts, _ = np.histogram(values, bins=edges)
            figure.add_trace(
                go.Bar(
                    x=centres,
                    y=100.0 * counts / len(values),
                    width=widths,
                    name=f"{name} ({len(values)})",
                    marker_color=colour,
                    opacity=0.6,
                    customdata=counts,
                    hovertemplate="%{x:.4g}: %{y:.1f} % of "
                    + name
                    + " (%{customdata})<extra></extra>",
                )
            )
    if band is not None:
        figure.add_vrect(x0=band[0], x1=band[1], fillcolor=BAND_COLOUR, line_width=0)
        for label, value in (("T1", band[0]), ("T2", band[1])):
            figure.add_vline(x=value, line={"color": THRESHOLD_COLOUR, "dash": "dash"})
            figure.add_annotation(x=value, y=1, yref="paper", text=label, showarrow=False)
    elif threshold is not None:
        figure.add_vline(x=threshold, line={"color": THRESHOLD_COLOUR, "dash": "dash"})
        figure.add_annotation(x=threshold, y=1, yref="paper", text="threshold", showarrow=False)
    figure.update_layout(barmode="overlay")
    return _layout(figure, "Scores by class", "Anomaly score", "Share of its group (%)")


def confusion_figure(
    counts: Sequence[Sequence[int]], rows: Sequence[str], columns: Sequence[str], title: str
) -> go.Figure:
    """A count matrix as an annotated heatmap (rows = truth, columns = decision)."""
    values = np.asarray(counts, dtype=np.int64)
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=list(columns),
            y=list(rows),
            text=values.astype(str),
            texttemplate="%{text}",
            colorscale="Blues",
            showscale=False,
            hovertemplate="truth %{y}<br>decision %{x}<br>%{z} images<extra></extra>",
        )
    )
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(height=260)
    return _layout(figure, title, "Decision", "Truth")


@dataclass(frozen=True)
class NamedCurve:
    """One model's ROC curve for an overlay."""

    name: str
    fpr: np.ndarray
    tpr: np.ndarray
    auroc: float


def roc_overlay_figure(curves: Sequence[NamedCurve]) -> go.Figure:
    """ROC curves of several models on the same images."""
    figure = go.Figure()
    for index, curve in enumerate(curves):
        fpr, tpr = thin(curve.fpr, curve.tpr)
        figure.add_trace(
            go.Scatter(
                x=fpr,
                y=tpr,
                mode="lines",
                name=f"{curve.name} (AUROC {curve.auroc:.3f})",
                line={"shape": "hv", "color": VARIANT_COLOURS[index % len(VARIANT_COLOURS)]},
            )
        )
    figure.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "width": 1}
        )
    )
    return _layout(figure, "ROC curves on the same images", "False-alarm rate", "Recall")


def distribution_figure(
    variants: Sequence[str], labels: Sequence[str], values: Sequence[float]
) -> go.Figure:
    """Normalised score distributions per model, split by class (one violin per class)."""
    variant_array = np.asarray(variants, dtype=object)
    label_array = np.asarray(labels, dtype=object)
    value_array = np.asarray(values, dtype=np.float64)
    figure = go.Figure()
    for label, colour in (("normal", NORMAL_COLOUR), ("anomalous", ANOMALOUS_COLOUR)):
        keep = label_array == label
        if not keep.any():
            continue
        figure.add_trace(
            go.Violin(
                x=variant_array[keep],
                y=value_array[keep],
                name=label,
                line_color=colour,
                box_visible=True,
                meanline_visible=False,
                points=False,
                spanmode="hard",
            )
        )
    figure.update_layout(violinmode="group")
    return _layout(figure, "Score distributions (each model scaled to 0..1)", "", "Scaled score")
