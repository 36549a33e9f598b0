"""PNG plots for the benchmark tables (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.runner import Record


def plot_mild(records: Sequence[Record], path: Path) -> Path:
    """Box plots of score / threshold for normal, mild and defective test cells (first seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first: dict[tuple[str, str], Record] = {}
    for r in records:
        first.setdefault((r["spec"]["cell_type"], r["label"]), r)
    types = sorted({t for t, _ in first})
    fig, axes = plt.subplots(1, len(types), figsize=(6 * len(types), 4), squeeze=False)
    for ax, cell_type in zip(axes[0], types, strict=True):
        chosen = [(label, r) for (t, label), r in first.items() if t == cell_type]
        data, names, positions = [], [], []
        for i, (label, r) in enumerate(chosen):
            scores = r["scores"]
            threshold = r["threshold"] or 1.0
            probability = np.asarray(scores["mild_probability"])
            mild = np.asarray(scores["mild"])
            groups = {
                "normal": scores["normal"],
                "1/3": mild[np.isclose(probability, 1 / 3)],
                "2/3": mild[np.isclose(probability, 2 / 3)],
                "defect": scores["defect"],
            }
            for j, (name, values) in enumerate(groups.items()):
                data.append(np.asarray(values, dtype=float) / threshold)
                names.append(f"{label}\n{name}" if j == 0 else name)
                positions.append(i * 5 + j)
        ax.boxplot(data, positions=positions, widths=0.7, showfliers=False)
        ax.set_xticks(positions, names, rotation=90, fontsize=7)
        ax.axhline(1.0, color="red", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_ylabel("score / calibrated threshold")
        ax.set_title(f"ELPV {cell_type} (first seed)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
