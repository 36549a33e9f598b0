"""Train-and-evaluate runs on labelled data, for the CLI, benchmarks and reproductions."""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.config import DetectorConfig
from engine.data.sources import ImageRecord
from engine.detector import Detector, ScoreBatch, ScoreProgress
from engine.errors import DatasetError
from engine.evaluation import AurocResult, auroc_with_ci
from engine.training import train
from engine.training.progress import ProgressCallback

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """One trained and evaluated model."""

    category: str
    variant: str
    seed: int
    auroc: AurocResult
    model_path: Path | None
    scores_csv: Path
    train_seconds: float
    score_seconds: float


def evaluate(
    detector: Detector,
    records: Sequence[ImageRecord],
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    on_progress: ScoreProgress | None = None,
) -> tuple[AurocResult, ScoreBatch]:
    """Score labelled ``records`` and compute the image AUROC with its bootstrap interval."""
    if any(r.label is None for r in records):
        raise DatasetError("evaluation needs a known label (normal/anomalous) for every image")
    batch = detector.score([r.path for r in records], on_progress=on_progress)
    for failure in batch.failures:
        logger.warning("could not score %s", failure)
    labels = [int(records[r.index].label or 0) for r in batch.results]
    return auroc_with_ci(labels, batch.scores, n_bootstrap=n_bootstrap, seed=seed), batch


def write_scores_csv(path: Path, records: Sequence[ImageRecord], batch: ScoreBatch) -> Path:
    """Per-image scores with labels, for later analysis."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "defect_type", "score", "percentile", "anomalous"])
        for result in batch.results:
            record = records[result.index]
            writer.writerow(
                [
                    record.path,
                    record.label,
                    record.defect_type or "",
                    f"{result.score:.6g}",
                    f"{result.percentile:.2f}",
                    result.is_anomalous,
                ]
            )
    return path


def run_experiment(
    config: DetectorConfig,
    train_records: Sequence[ImageRecord],
    test_records: Sequence[ImageRecord],
    *,
    category: str,
    out_dir: Path,
    keep_model: bool = True,
    n_bootstrap: int = 1000,
    on_progress: ProgressCallback | None = None,
    on_score_progress: ScoreProgress | None = None,
) -> RunOutcome:
    """Train on ``train_records``, evaluate on ``test_records``, write model and scores."""
    variant, seed = config.model.variant, config.train.seed
    stem = f"{category}-{config.model.backbone.name}-{variant}-seed{seed}"
    started = time.monotonic()
    result = train(config, [r.path for r in train_records], on_progress=on_progress)
    trained = time.monotonic()
    auroc, batch = evaluate(
        result.detector,
        test_records,
        n_bootstrap=n_bootstrap,
        seed=seed,
        on_progress=on_score_progress,
    )
    scored = time.monotonic()
    model_path = result.detector.save(out_dir / f"{stem}.adn") if keep_model else None
    scores_csv = write_scores_csv(out_dir / f"{stem}-scores.csv", test_records, batch)
    logger.info("%s: AUROC %s", stem, auroc.as_percent())
    return RunOutcome(
        category=category,
        variant=variant,
        seed=seed,
        auroc=auroc,
        model_path=model_path,
        scores_csv=scores_csv,
        train_seconds=trained - started,
        score_seconds=scored - trained,
    )
