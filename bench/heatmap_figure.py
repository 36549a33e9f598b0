"""The example figure of the heatmap benchmark: planted defects, their masks and every map."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Example:
    """One planted image with its mask, kind and each method's map."""

    image: np.ndarray  # uint8 H×W×3
    mask: np.ndarray  # bool H×W
    kind: str
    maps: dict[str, np.ndarray]


def plot_examples(examples: Sequence[Example], methods: Sequence[str], path: Path) -> Path:
    """One row per example: the image with the mask outlined, then each method's map over it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 1 + len(methods)
    fig, axes = plt.subplots(
        len(examples), columns, figsize=(2.2 * columns, 2.3 * len(examples)), squeeze=False
    )
    for row, example in zip(axes, examples, strict=True):
        gray = example.image.mean(axis=2)
        row[0].imshow(gray, cmap="gray", vmin=0, vmax=255)
        row[0].contour(example.mask, levels=[0.5], colors="lime", linewidths=0.6)
        row[0].set_title(example.kind, fontsize=8)
        for ax, method in zip(row[1:], methods, strict=True):
            heatmap = example.maps[method]
            ax.imshow(gray, cmap="gray", vmin=0, vmax=255)
            ax.imshow(heatmap, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.contour(example.mask, levels=[0.5], colors="white", linewidths=0.4)
            peak = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
            ax.plot(peak[1], peak[0], marker="x", color="white", markersize=6)
            ax.set_title(method, fontsize=8)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
