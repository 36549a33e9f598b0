"""The Plotly figure builders produce the traces, lines and bands the pages rely on."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard import charts


def test_roc_figure_has_curve_chance_and_marked_threshold() -> None:
    figure = charts.roc_figure(
        np.array([0, 0.5, 1.0]),
        np.array([0, 0.9, 1.0]),
        0.87,
        [charts.Marker("T", 0.5, 0.9)],
    )
    names = [t.name for t in figure.data]
    assert names == ["ROC (AUROC 0.870)", "chance", "T"]
    assert list(figure.data[0].y) == [0, 0.9, 1.0]
    assert (figure.data[2].x[0], figure.data[2].y[0]) == (0.5, 0.9)
    assert figure.layout.xaxis.title.text == "False-alarm rate"


def test_pr_figure_has_no_skill_line_at_the_defect_share() -> None:
    figure = charts.pr_figure(
        np.array([0, 0.5, 1]), np.array([1, 1, 0.5]), 0.9, 0.25, [charts.Marker("T1", 0.5, 1)]
    )
    assert [t.name for t in figure.data] == ["PR (AP 0.900)", "no skill", "T1"]
    assert list(figure.data[1].y) == [0.25, 0.25]


def test_histogram_with_threshold_line_and_shared_bins() -> None:
    figure = charts.histogram_figure(
        np.array([0.6, 0.8, 0.9]), np.array([0.1, 0.2]), threshold=0.5, bins=10
    )
    assert [t.type for t in figure.data] == ["bar", "bar"]
    assert [t.name for t in figure.data] == ["anomalous (3)", "normal (2)"]
    assert list(figure.data[0].width) == pytest.approx([0.08] * 10)
    assert list(figure.data[0].x) == list(figure.data[1].x)  # shared bins
    lines = [s for s in figure.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].x0 == 0.5
    assert figure.layout.barmode == "overlay"
    # Each group in percent of itself, so groups of any size are comparable.
    assert [sum(t.y) for t in figure.data] == pytest.approx([100.0, 100.0])


@pytest.mark.parametrize("scores", [[0.1, 0.2, 3.28], [2.0, 2.0, 2.0], [0.0]])
def test_histogram_bins_hold_every_score_including_the_highest(scores: list[float]) -> None:
    figure = charts.histogram_figure(np.array(scores), np.array([]), threshold=None, bins=10)
    bars = figure.data[0]
    assert sum(bars.customdata) == len(scores)
    # The highest score (often the worst defect) is drawn in the bar that spans it.
    top = max(scores)
    spans = [
        i
        for i, (x, w) in enumerate(zip(bars.x, bars.width, strict=True))
        if x - w / 2 - 1e-9 <= top <= x + w / 2 + 1e-9
    ]
    assert bars.customdata[spans[-1]] >= scores.count(top)
    assert len(bars.x) == 10  # bars, not every score, go to the browser


def test_histogram_with_review_band_and_unlabelled_scores() -> None:
    figure = charts.histogram_figure(
        np.array([0.9]),
        np.array([]),
        threshold=0.3,
        band=(0.3, 0.7),
        unlabelled=np.array([0.2, 0.4]),
        unsure=np.array([0.5]),
    )
    assert [t.name for t in figure.data] == ["anomalous (1)", "not reviewed (2)", "unsure (1)"]
    assert len({t.marker.color for t in figure.data}) == 3
    rects = [s for s in figure.layout.shapes if s.type == "rect"]
    lines = [s.x0 for s in figure.layout.shapes if s.type == "line"]
    assert len(rects) == 1 and (rects[0].x0, rects[0].x1) == (0.3, 0.7)
    assert lines == [0.3, 0.7]
    assert [a.text for a in figure.layout.annotations] == ["T1", "T2"]


def test_confusion_figure_shows_counts() -> None:
    figure = charts.confusion_figure(
        [[3, 1], [2, 10]], ["anomalous", "normal"], ["flagged", "passed"], "Confusion"
    )
    heat = figure.data[0]
    assert heat.type == "heatmap"
    assert heat.z.tolist() == [[3, 1], [2, 10]]
    assert heat.text.tolist() == [["3", "1"], ["2", "10"]]
    assert list(heat.x) == ["flagged", "passed"] and list(heat.y) == ["anomalous", "normal"]


def test_roc_overlay_has_one_trace_per_model() -> None:
    curves = [
        charts.NamedCurve("CBAM", np.array([0, 1]), np.array([0, 1]), 0.95),
        charts.NamedCurve("SENet", np.array([0, 1]), np.array([0, 1]), 0.9),
    ]
    figure = charts.roc_overlay_figure(curves)
    assert [t.name for t in figure.data] == ["CBAM (AUROC 0.950)", "SENet (AUROC 0.900)", "chance"]
    assert figure.data[0].line.color != figure.data[1].line.color


def test_distribution_figure_splits_classes() -> None:
    figure = charts.distribution_figure(
        ["CBAM", "CBAM", "SENet", "SENet"],
        ["normal", "anomalous", "normal", "normal"],
        [0.1, 0.9, 0.2, 0.3],
    )
    assert [t.name for t in figure.data] == ["normal", "anomalous"]
    assert list(figure.data[0].x) == ["CBAM", "SENet", "SENet"]
    assert list(figure.data[1].y) == [0.9]
    assert figure.layout.violinmode == "group"


def test_long_curves_are_thinned_keeping_both_ends() -> None:
    x = np.linspace(0, 1, 5001)
    figure = charts.roc_figure(x, np.sqrt(x), 0.66)
    curve = figure.data[0]
    assert len(curve.x) <= charts.MAX_CURVE_POINTS
    assert (curve.x[0], curve.x[-1]) == (0.0, 1.0)
    assert np.allclose(np.asarray(curve.y), np.sqrt(np.asarray(curve.x)))
    short_x, short_y = charts.thin(np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    assert short_x.tolist() == [0.0, 1.0] and short_y.tolist() == [0.0, 1.0]
