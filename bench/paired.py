"""Paired bootstrap of an AUROC difference: two models scored on the same test cells."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bench.common import md_table
from bench.runner import Record


def _auroc_rows(normal: np.ndarray, defect: np.ndarray) -> np.ndarray:
    """AUROC per row of B×n_normal and B×n_defect score matrices (ties count one half)."""
    greater = (defect[:, :, None] > normal[:, None, :]).mean(axis=(1, 2))
    ties = (defect[:, :, None] == normal[:, None, :]).mean(axis=(1, 2))
    return np.asarray(greater + 0.5 * ties)


def paired_delta(
    pairs: Sequence[tuple[Record, Record]], n_bootstrap: int = 1000, seed: int = 0
) -> tuple[float, float, float] | None:
    """Mean over pairs of AUROC(setting) − AUROC(default) and its 95 % interval, in points.

    Each pair holds two runs scored on the same normal and defective cells in the same order
    (same cell type and split seed); every bootstrap draw resamples the cells of each pair once,
    with replacement and per class, and uses the same draw for both runs. None when a pair's
    cells differ (no pairing possible).
    """
    if not pairs:
        return None
    rng = np.random.default_rng(seed)
    point, draws = 0.0, np.zeros(n_bootstrap)
    for setting, default in pairs:
        a_n, a_d = (np.asarray(setting["scores"][k], float) for k in ("normal", "defect"))
        b_n, b_d = (np.asarray(default["scores"][k], float) for k in ("normal", "defect"))
        if a_n.shape != b_n.shape or a_d.shape != b_d.shape or not len(a_n) or not len(a_d):
            return None
        full = _auroc_rows(a_n[None], a_d[None]) - _auroc_rows(b_n[None], b_d[None])
        point += float(full[0])
        i_n = rng.integers(0, len(a_n), (n_bootstrap, len(a_n)))
        i_d = rng.integers(0, len(a_d), (n_bootstrap, len(a_d)))
        draws += _auroc_rows(a_n[i_n], a_d[i_d]) - _auroc_rows(b_n[i_n], b_d[i_d])
    count = len(pairs)
    low, high = np.quantile(draws / count, [0.025, 0.975])
    return 100 * point / count, 100 * float(low), 100 * float(high)


def variant_delta_table(records: Sequence[Record], types: Sequence[str]) -> str:
    """Each attention variant against ``none`` on the same backbone, splits and seeds: Δ AUROC
    (points, mean over seeds) and its paired-bootstrap 95 % interval (seeds pooled)."""

    def key(record: Record, variant: str) -> tuple[str, str, str, str, int]:
        spec = record["spec"]
        return (spec["backbone"], spec["weights"], variant, spec["cell_type"], spec["seed"])

    runs = {key(r, r["spec"]["variant"]): r for r in records}
    labels = {key(r, r["spec"]["variant"])[:3]: r["label"] for r in records}
    lines = []
    for method in sorted(m for m in labels if m[2] != "none"):
        cells = []
        for cell_type in types:
            pairs = [
                (run, runs[key(run, "none")])
                for k, run in sorted(runs.items(), key=lambda item: item[0][4])
                if k[:3] == method and k[3] == cell_type and key(run, "none") in runs
            ]
            found = paired_delta(pairs)
            cells.append(
                "–"
                if found is None
                else f"{found[0]:+.2f} [{found[1]:+.1f}, {found[2]:+.1f}] (n={len(pairs)})"
            )
        lines.append([f"{labels[method]} − none", *cells])
    return md_table(["difference", *types], lines)
