"""Image-level AUROC with bootstrap confidence intervals, and tables in the paper's layout."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from engine.errors import DatasetError


@dataclass(frozen=True)
class AurocResult:
    """AUROC (fraction in [0, 1]) with a percentile-bootstrap interval."""

    auroc: float
    ci_low: float
    ci_high: float
    n_normal: int
    n_anomalous: int

    def as_percent(self) -> str:
        """``96.7 [95.1, 98.0]``."""
        return f"{100 * self.auroc:.2f} [{100 * self.ci_low:.1f}, {100 * self.ci_high:.1f}]"


def auroc_with_ci(
    labels: Sequence[int] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    *,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> AurocResult:
    """AUROC of ``scores`` (higher = anomalous) against ``labels`` (1 = anomalous).

    The interval resamples normals and anomalies separately (stratified), so every resample
    holds both classes.
    """
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape:
        raise DatasetError(
            f"{y.size} labels but {s.size} scores; give one score per labelled image"
        )
    normal, anomalous = s[y == 0], s[y == 1]
    if normal.size == 0 or anomalous.size == 0:
        raise DatasetError(
            f"AUROC needs both normal and anomalous images (got {normal.size} normal, "
            f"{anomalous.size} anomalous)"
        )
    auroc = float(roc_auc_score(y, s))
    rng = np.random.default_rng(seed)
    stats = np.empty(n_bootstrap)
    for i in range(n_bootstrap):
        n = rng.choice(normal, normal.size)
        a = rng.choice(anomalous, anomalous.size)
        stats[i] = auroc_two_samples(n, a)
    alpha = (1.0 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha]) if n_bootstrap else (auroc, auroc)
    return AurocResult(auroc, float(low), float(high), int(normal.size), int(anomalous.size))


def auroc_two_samples(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """Mann-Whitney form of the AUROC (ties count one half), fast for bootstrap loops."""
    both = np.concatenate([normal, anomalous])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(both.size)
    sorted_values = both[order]
    # average ranks of ties
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    mean_rank = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, counts)
    rank_sum = ranks[normal.size :].sum()
    n_a, n_n = anomalous.size, normal.size
    return float((rank_sum - n_a * (n_a + 1) / 2.0) / (n_a * n_n))


def format_auroc_table(
    results: Mapping[str, Mapping[str, AurocResult]],
    variants: Sequence[str],
    *,
    title: str = "category",
) -> str:
    """Markdown table: one row per category, one column per variant, a mean row; AUROC in %.

    ``results[category][variant]``; the best variant of each row is bold, like the paper's tables.
    """
    header = f"| {title} | " + " | ".join(variants) + " |"
    lines = [header, "|" + "---|" * (len(variants) + 1)]
    means: dict[str, list[float]] = {v: [] for v in variants}
    for category in sorted(results):
        row = results[category]
        best = max((row[v].auroc for v in variants if v in row), default=None)
        cells = []
        for variant in variants:
            if variant not in row:
                cells.append("–")
                continue
            result = row[variant]
            means[variant].append(result.auroc)
            text = result.as_percent()
            cells.append(f"**{text}**" if result.auroc == best else text)
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    mean_cells = [f"{100 * np.mean(means[v]):.2f}" if means[v] else "–" for v in variants]
    lines.append("| mean | " + " | ".join(mean_cells) + " |")
    return "\n".join(lines)
