"""Compare model versions trained on the same images, or a model and the versions retrained
from it: AUROC with intervals per category, ROC overlays, normalised score distributions and the
images where their verdicts disagree.

Ground truth per image: the current reviewer verdict (anomalous/normal), else the known label.
Only images that every compared model scored are used, so the numbers are paired; an image that
any compared model trained on is left out for all of them (a retrained child has seen the normals
reviewers confirmed, its parent has not), and the comparison says how many were.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from dashboard.services import metrics
from dashboard.services.auroc_interval import auroc_estimate
from dashboard.services.heatmap_labels import METHOD_LABELS
from dashboard.services.models import VARIANT_NAMES, ModelChoice, choices_in
from dashboard.services.store import SessionFactory
from dashboard.services.text import display_name
from dashboard.services.thresholds import model_verdicts
from db.errors import NotFoundError
from db.models import ModelStatus
from db.repositories import (
    ScoreColumns,
    current_labels_between,
    get_batch,
    get_heatmap_png,
    get_job,
    get_model_version,
    heatmap_methods_of,
    score_columns,
    training_image_ids,
)
from db.session import session_scope

logger = logging.getLogger(__name__)

NO_CATEGORY = "(no category)"
MEAN_ROW = "Mean"


@dataclass(frozen=True)
class CompareGroup:
    """Ready model versions trained on the same images (same batches, selection, category), or,
    with ``parent_id``, a model and the ready versions retrained from it."""

    key: str
    batch_ids: tuple[int, ...] | None
    category: str | None
    selected_images: int | None
    models: tuple[ModelChoice, ...]
    batch_names: tuple[str, ...] = ()  # in the order of batch_ids
    parent_id: int | None = None

    @property
    def latest(self) -> datetime:
        return max(m.created_at for m in self.models)

    @property
    def label(self) -> str:
        """A short description for the group picker."""
        if self.parent_id is not None:
            children = ", ".join(
                f"#{m.id} (+{m.confirmed_normals} confirmed normals)"
                for m in self.models
                if m.id != self.parent_id
            )
            return f"#{self.parent_id} and its retrained children: {children}"
        if self.batch_ids is None:
            source = "training images not recorded"
        else:
            names = ", ".join(self.batch_names or [f"#{b}" for b in self.batch_ids])
            source = f"batch{'es' if len(self.batch_ids) > 1 else ''} {names}"
            if self.selected_images is not None:
                source += f" ({self.selected_images} chosen images)"
        scope = f" · {self.category}" if self.category else ""
        variants = ", ".join(VARIANT_NAMES.get(m.variant, m.variant) for m in self.models)
        return f"{source}{scope} · {len(self.models)} models: {variants}"


def _training_set(session: Session, model_id: int) -> tuple[Any, ...] | None:
    """(batch ids, category, image ids) from the model's training job, else its config."""
    model = get_model_version(session, model_id)
    params: dict[str, Any] = {}
    if model.job_id is not None:
        try:
            params = dict(get_job(session, model.job_id).params_json or {})
        except NotFoundError:
            params = {}
    if not params.get("batch_ids"):
        params = {**dict(model.config_json or {}), **params}
    batch_ids = params.get("batch_ids")
    if not batch_ids:
        return None
    image_ids = params.get("image_ids")
    category = params.get("category", model.category)
    return (
        tuple(sorted(int(b) for b in batch_ids)),
        category or None,
        None if image_ids is None else tuple(sorted(int(i) for i in image_ids)),
    )


def _batch_name(session: Session, batch_id: int) -> str:
    try:
        return display_name(get_batch(session, batch_id).name)
    except NotFoundError:
        return f"#{batch_id} (deleted)"


def training_groups(factory: SessionFactory, project_id: int) -> list[CompareGroup]:
    """Groups of ready models of a project by training images, the newest group first."""
    with session_scope(factory) as session:
        ready = choices_in(session, project_id, status=ModelStatus.READY)
        sets = {m.id: _training_set(session, m.id) for m in ready}
        wanted = {b for t in sets.values() if t is not None for b in t[0]}
        batch_names = {b: _batch_name(session, b) for b in wanted}
    groups: dict[str, list[ModelChoice]] = {}
    keys: dict[str, tuple[Any, ...] | None] = {}
    for model in ready:
        training = sets[model.id]
        if training is None:
            key = f"model-{model.id}"
        else:
            digest = hashlib.sha1(repr(training).encode(), usedforsecurity=False).hexdigest()[:12]
            key = f"set-{digest}"
        groups.setdefault(key, []).append(model)
        keys[key] = training
    result = []
    for key, models in groups.items():
        training = keys[key]
        result.append(
            CompareGroup(
                key=key,
                batch_ids=None if training is None else training[0],
                category=None if training is None else training[1],
                selected_images=None
                if training is None or training[2] is None
                else len(training[2]),
                models=tuple(sorted(models, key=lambda m: (m.variant != "none", m.variant, m.id))),
                batch_names=() if training is None else tuple(batch_names[b] for b in training[0]),
            )
        )
    lineages = _lineage_groups(ready)
    in_lineage = {m.id for g in lineages for m in g.models if m.id != g.parent_id}
    result = [g for g in result if not (len(g.models) == 1 and g.models[0].id in in_lineage)]
    return sorted([*result, *lineages], key=lambda g: g.latest, reverse=True)


def _lineage_groups(ready: Sequence[ModelChoice]) -> list[CompareGroup]:
    """One group per ready model with ready children: the parent first, then the children."""
    by_id = {m.id: m for m in ready}
    children: dict[int, list[ModelChoice]] = {}
    for model in ready:
        if model.parent_id is not None and model.parent_id in by_id:
            children.setdefault(model.parent_id, []).append(model)
    return [
        CompareGroup(
            key=f"lineage-{parent_id}",
            batch_ids=None,
            category=by_id[parent_id].category,
            selected_images=None,
            models=(by_id[parent_id], *sorted(kids, key=lambda m: m.id)),
            parent_id=parent_id,
        )
        for parent_id, kids in children.items()
    ]


def column_names(models: Sequence[ModelChoice]) -> list[str]:
    """One column name per model: the variant, with the model id where variants repeat."""
    names = [VARIANT_NAMES.get(m.variant, m.variant) for m in models]
    return [f"{n} #{m.id}" if names.count(n) > 1 else n for n, m in zip(names, models, strict=True)]


@dataclass(frozen=True)
class Comparison:
    """Paired scores of several models on the images all of them scored (by image id,
    ascending). Names and files are read only for the images a page lists
    (``compare_images.image_files``)."""

    models: tuple[ModelChoice, ...]
    columns: list[str]
    image_ids: np.ndarray
    categories: np.ndarray  # object array of category names (NO_CATEGORY when empty)
    truths: np.ndarray  # object array: "anomalous", "normal" or None
    scores: np.ndarray  # (models, images)
    verdicts: np.ndarray  # (models, images) object: model verdicts under active thresholds
    # Images every model scored but left out because one of the models trained on them.
    excluded_training: int = 0

    @property
    def labelled(self) -> np.ndarray:
        return np.array([t is not None for t in self.truths.tolist()], dtype=bool)

    @property
    def positives(self) -> np.ndarray:
        return np.equal(self.truths, "anomalous").astype(bool)


def load_comparison(factory: SessionFactory, models: Sequence[ModelChoice]) -> Comparison:
    """Scores, verdicts and ground truth of ``models`` on the images they all scored."""
    with session_scope(factory) as session:
        return _comparison(session, models)


def _sorted(columns: ScoreColumns) -> tuple[np.ndarray, np.ndarray]:
    """The columns' image ids in ascending order, and the order that sorts them."""
    ids = np.fromiter(columns.image_ids, dtype=np.int64, count=len(columns))
    order = np.argsort(ids, kind="stable")
    return ids[order], order


def _truths(known: np.ndarray, image_ids: np.ndarray, labels: dict[int, str]) -> np.ndarray:
    """Per image: the current verdict when it says anomalous or normal, else the known label."""
    truths = known.copy()
    decided = {i: v for i, v in labels.items() if v in ("anomalous", "normal")}
    if decided:
        ids = np.fromiter(decided, dtype=np.int64, count=len(decided))
        values = np.array(list(decided.values()), dtype=object)
        hit = np.isin(image_ids, ids)
        order = np.argsort(ids)
        truths[hit] = values[order][np.searchsorted(ids[order], image_ids[hit])]
    return truths


def _comparison(session: Session, models: Sequence[ModelChoice]) -> Comparison:
    """Read each model's (image, score) columns (the first model's with the images' category
    and known label) and pair them by image id with numpy."""
    if not models:
        empty = np.empty(0, dtype=object)
        return Comparison(
            (),
            [],
            np.empty(0, dtype=np.int64),
            empty,
            empty,
            np.empty((0, 0)),
            np.empty((0, 0), dtype=object),
        )
    first = score_columns(session, model_version_id=models[0].id, with_images=True)
    others = [score_columns(session, model_version_id=m.id) for m in models[1:]]
    first_ids, first_order = _sorted(first)
    common = first_ids
    for columns in others:
        common = np.intersect1d(common, _sorted(columns)[0], assume_unique=True)
    trained = set().union(*(training_image_ids(session, m.id) for m in models))
    left_out = np.isin(common, np.fromiter(trained, dtype=np.int64, count=len(trained)))
    common = common[~left_out]
    labels = current_labels_between(session, int(common[0]), int(common[-1])) if common.size else {}
    at = first_order[np.searchsorted(first_ids, common)]
    rows = [np.asarray(first.scores, dtype=np.float64)[at]]
    for columns in others:
        ids, order = _sorted(columns)
        rows.append(
            np.asarray(columns.scores, dtype=np.float64)[order[np.searchsorted(ids, common)]]
        )
    scores = np.vstack(rows)
    raw_categories = np.array(first.categories, dtype=object)[at]
    known = np.array(first.known_labels, dtype=object)[at]
    verdicts = np.empty((len(models), common.size), dtype=object)
    for index, model in enumerate(models):
        verdicts[index] = model_verdicts(session, model.id, scores[index], raw_categories.tolist())
    categories = np.array([c or NO_CATEGORY for c in raw_categories.tolist()], dtype=object)
    return Comparison(
        models=tuple(models),
        columns=column_names(models),
        image_ids=common,
        categories=categories,
        truths=_truths(known, common, labels),
        scores=scores,
        verdicts=verdicts,
        excluded_training=int(left_out.sum()),
    )


def heatmap_methods(
    factory: SessionFactory, image_id: int, models: Sequence[ModelChoice]
) -> list[str]:
    """The heatmap methods any of the models stored for one image, the default first."""
    with session_scope(factory) as session:
        stored = heatmap_methods_of(
            session, image_id=image_id, model_version_ids=[m.id for m in models]
        )
    found = {m for methods in stored.values() for m in methods}
    return [m for m in METHOD_LABELS if m in found] + sorted(found - set(METHOD_LABELS))


def heatmap_pngs(
    factory: SessionFactory, image_id: int, models: Sequence[ModelChoice], method: str
) -> list[bytes | None]:
    """Each model's stored heatmap PNG of one image by ``method`` (None where none is stored)."""
    with session_scope(factory) as session:
        return [
            get_heatmap_png(session, image_id=image_id, model_version_id=m.id, method=method)
            for m in models
        ]


@dataclass(frozen=True)
class AurocCell:
    """AUROC and its bootstrap interval for one model on one category (or the mean)."""

    auroc: float
    low: float
    high: float

    def text(self) -> str:
        return f"{self.auroc * 100:.1f} ({self.low * 100:.1f}–{self.high * 100:.1f})"


@dataclass(frozen=True)
class AurocTable:
    """Rows = categories + mean, columns = models; None where a category lacks a class."""

    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], AurocCell | None]
    counts: dict[str, tuple[int, int]]  # row -> (anomalous, normal)

    def best(self, row: str) -> set[str]:
        """The columns with the highest AUROC in ``row``."""
        values = {c: cell.auroc for c in self.columns if (cell := self.cells[(row, c)])}
        if not values:
            return set()
        top = max(values.values())
        return {c for c, v in values.items() if abs(v - top) < 1e-12}


def auroc_table(comparison: Comparison, *, n_boot: int = 1000, seed: int = 0) -> AurocTable:
    """Per-category AUROC (%) with 95 % stratified bootstrap intervals, and their mean."""
    return auroc_table_of(
        tuple(comparison.columns),
        comparison.scores,
        tuple(str(c) for c in comparison.categories),
        tuple(comparison.truths.tolist()),
        n_boot=n_boot,
        seed=seed,
    )


def auroc_table_of(
    columns: tuple[str, ...],
    scores: np.ndarray,
    categories: tuple[str, ...],
    truths: tuple[str | None, ...],
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> AurocTable:
    """The AUROC table from plain arrays (hashable inputs, so pages can cache it).

    ``scores`` is (models, images); each cell's interval is the stratified bootstrap's (DeLong's
    above ``BOOTSTRAP_MAX_IMAGES`` labelled images), the mean row's comes from the mean of the
    categories' replicates.
    """
    category_array = np.array(categories, dtype=object)
    labelled = np.array([t is not None for t in truths], dtype=bool)
    positives = np.array([t == "anomalous" for t in truths], dtype=bool)
    rows = sorted({str(c) for c in category_array[labelled]})
    cells: dict[tuple[str, str], AurocCell | None] = {}
    counts: dict[str, tuple[int, int]] = {}
    replicates: dict[str, list[np.ndarray]] = {c: [] for c in columns}
    for row in rows:
        mask = labelled & (category_array == row)
        n_pos = int((positives & mask).sum())
        counts[row] = (n_pos, int(mask.sum()) - n_pos)
        for index, column in enumerate(columns):
            if n_pos == 0 or n_pos == mask.sum():
                cells[(row, column)] = None
                continue
            estimate = auroc_estimate(
                scores[index, mask], positives[mask], n_boot=n_boot, seed=seed
            )
            cells[(row, column)] = AurocCell(estimate.auroc, estimate.low, estimate.high)
            replicates[column].append(estimate.replicates)
    for column in columns:
        defined = [cells[(r, column)] for r in rows if cells[(r, column)] is not None]
        if not defined:
            cells[(MEAN_ROW, column)] = None
            continue
        mean_replicates = np.mean(np.vstack(replicates[column]), axis=0)
        low, high = np.percentile(mean_replicates, [2.5, 97.5])
        mean = float(np.mean([c.auroc for c in defined if c is not None]))
        cells[(MEAN_ROW, column)] = AurocCell(mean, float(low), float(high))
    total_pos = int((positives & labelled).sum())
    counts[MEAN_ROW] = (total_pos, int(labelled.sum()) - total_pos)
    return AurocTable([*rows, MEAN_ROW], list(columns), cells, counts)


def table_markdown(table: AurocTable) -> str:
    """The table in the paper's format: AUROC % (95 % CI), best per row in bold."""
    header = "| Category | " + " | ".join(table.columns) + " | anomalous / normal |"
    lines = [header, "|" + "---|" * (len(table.columns) + 2)]
    for row in table.rows:
        best = table.best(row)
        cells = []
        for column in table.columns:
            cell = table.cells[(row, column)]
            if cell is None:
                cells.append("–")
            else:
                cells.append(f"**{cell.text()}**" if column in best else cell.text())
        n_pos, n_neg = table.counts[row]
        name = f"**{row}**" if row == MEAN_ROW else row
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {n_pos} / {n_neg} |")
    return "\n".join(lines)


def roc_curves(comparison: Comparison) -> list[tuple[str, metrics.Curve, float]]:
    """Each model's ROC curve and AUROC on the labelled common images (empty if one class)."""
    mask = comparison.labelled
    positives = comparison.positives[mask]
    if positives.all() or not positives.any():
        return []
    result = []
    for index, column in enumerate(comparison.columns):
        scores = comparison.scores[index, mask]
        result.append(
            (column, metrics.roc_curve(scores, positives), metrics.auroc(scores, positives))
        )
    return result


def normalised_scores(comparison: Comparison) -> pd.DataFrame:
    """Labelled scores of each model scaled to 0..1 over the common images (scales differ)."""
    mask = comparison.labelled
    frames = []
    for index, column in enumerate(comparison.columns):
        values = comparison.scores[index]
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
        frames.append(
            pd.DataFrame(
                {"model": column, "label": comparison.truths[mask], "scaled": scaled[mask]}
            )
        )
    if not frames:
        return pd.DataFrame(columns=["model", "label", "scaled"])
    return pd.concat(frames, ignore_index=True)
