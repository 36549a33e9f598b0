"""Markdown tables built from run records (see :mod:`bench.runner`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from bench.common import md_table, mean_std
from bench.runner import Record

# values[method][cell_type][seed] = AUROC (fraction)
Values = dict[str, dict[str, dict[int, float]]]


def auroc_at(record: Record, views: int | None = None) -> float:
    """A record's AUROC at ``views`` test views (default: all it was scored with)."""
    return float(record["views"][str(views or record["spec"]["test_views"])]["auroc"])


def collect(
    records: Iterable[Record],
    label: Callable[[Record], str | None],
    value: Callable[[Record], float | None],
) -> Values:
    """Group record values by method label, cell type and seed (None labels/values are skipped)."""
    values: Values = {}
    for record in records:
        name, number = label(record), value(record)
        if name is None or number is None:
            continue
        spec = record["spec"]
        values.setdefault(name, {}).setdefault(spec["cell_type"], {})[spec["seed"]] = number
    return values


def mean_rows(values: Values, types: Sequence[str]) -> list[list[str]]:
    """One row per method: mean ± std over seeds per type, then the average of the types.

    The average is taken per seed over the types (only seeds run for every type), then over seeds.
    """
    rows = []
    for name, per_type in values.items():
        cells = [mean_std(list(per_type.get(t, {}).values())) for t in types]
        seeds = set.intersection(*(set(per_type.get(t, {})) for t in types)) if types else set()
        average = [float(np.mean([per_type[t][s] for t in types])) for s in sorted(seeds)]
        rows.append([name, *cells, mean_std(average) if len(types) > 1 else cells[0]])
    return rows


def auroc_summary(values: Values, types: Sequence[str]) -> str:
    """Method × (types, average) table of AUROC in %."""
    return md_table(["method", *types, "average"], mean_rows(values, types))


def percent_ci(entry: dict[str, float]) -> str:
    """``96.70 [95.1, 98.0]`` from an AUROC entry."""
    return f"{100 * entry['auroc']:.2f} [{100 * entry['ci_low']:.1f}, {100 * entry['ci_high']:.1f}]"


def per_run_table(records: Sequence[Record]) -> str:
    """Every run: AUROC with CI at the full test views and the subsets, timings, loss."""
    rows = []
    for r in records:
        spec = r["spec"]
        full = str(spec["test_views"])
        subsets = ", ".join(
            f"{v}: {100 * e['auroc']:.2f}" for v, e in r["views"].items() if v != full
        )
        rows.append(
            [
                spec["cell_type"],
                spec["seed"],
                r["label"],
                percent_ci(r["views"][full]),
                subsets or "–",
                f"{r['n_train']}/{r['n_calibration']}/{r['n_test_normal']}/{r['n_test_defect']}/{r['n_mild']}",
                f"{r['train_s']:.0f}",
                f"{r['score_s']:.0f}",
                f"{r['final_loss']:.3f}",
                "; ".join(r["warnings"]) or "–",
            ]
        )
    headers = [
        "type",
        "seed",
        "method",
        "AUROC % [95 % CI]",
        "AUROC % at fewer views",
        "train/cal/test normal/defect/mild",
        "train s",
        "score s",
        "final loss",
        "warnings",
    ]
    return md_table(headers, rows)


def baseline_run_table(records: Sequence[Record]) -> str:
    """Every baseline result: type, seed, features of which model, AUROC with CI."""
    rows = []
    for r in records:
        for name, entry in r.get("baselines", {}).items():
            extra = f"bank {int(entry['bank'])}" if "bank" in entry else ""
            rows.append(
                [
                    r["spec"]["cell_type"],
                    r["spec"]["seed"],
                    r["label"],
                    name,
                    percent_ci(entry),
                    extra,
                ]
            )
    return md_table(["type", "seed", "features of", "baseline", "AUROC % [95 % CI]", "notes"], rows)


def _stat_cell(stats: Sequence[dict[str, float]]) -> str:
    usable = [s for s in stats if s.get("n", 0) > 0]
    if not usable:
        return "–"

    def avg(key: str) -> float:
        return float(np.mean([s[key] for s in usable]))

    above = avg("above_pct")
    above_text = "n/a" if math.isnan(above) else f"{above:.1f} %"
    return (
        f"{avg('median'):.3g} ({avg('q25'):.3g}–{avg('q75'):.3g}); {above_text} > thr; "
        f"n={avg('n'):.0f}"
    )


def mild_table(records: Sequence[Record]) -> str:
    """Score distributions of normal, mild (1/3, 2/3) and defective test cells per method.

    Each cell: median (IQR) of the image scores, the share above the calibrated threshold and the
    count, averaged over seeds.
    """
    groups: dict[tuple[str, str], list[Record]] = {}
    for r in records:
        groups.setdefault((r["spec"]["cell_type"], r["label"]), []).append(r)
    rows = []
    for (cell_type, label), runs in groups.items():
        cells = [
            _stat_cell([r["stats"][g] for r in runs])
            for g in ("normal", "mild-0.33", "mild-0.67", "defect")
        ]
        versus = [
            r["mild_vs_normal_auroc"] for r in runs if not math.isnan(r["mild_vs_normal_auroc"])
        ]
        rows.append(
            [cell_type, label, len(runs), *cells, f"{100 * np.mean(versus):.1f}" if versus else "–"]
        )
    headers = [
        "type",
        "method",
        "seeds",
        "normal (test)",
        "mild p=1/3",
        "mild p=2/3",
        "defect p=1",
        "AUROC % normal vs mild",
    ]
    return md_table(headers, rows)
