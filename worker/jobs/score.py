"""The score job: a ready model scores images; scores (and heatmaps by method) go to the store.

Images are scored in chunks and each chunk is committed, so progress is visible and a re-sent job
skips what is already stored. Unreadable images are listed in the job's message, not fatal.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Heatmap, ModelStatus, Score
from db.repositories import get_model_version, upsert_score
from db.storage import resolve_data_path
from jobspec import ScoreSpec
from worker.errors import JobInputError
from worker.jobs.device import engine_device
from worker.jobs.inputs import JobImage, scoring_images
from worker.jobs.params import read_spec
from worker.jobs.progress import eta_text, join_parts
from worker.jobs.runner import JobBody, JobContext, iter_chunks

if TYPE_CHECKING:
    from engine import Detector

logger = logging.getLogger(__name__)

CHUNK_SIZE = 16
DETECTOR_CACHE_SIZE = 2
_LISTED_FAILURES = 5
_IN_CHUNK = 500

_detectors: OrderedDict[tuple[str, int, str], Detector] = OrderedDict()
_detectors_lock = threading.Lock()


def cached_detector(path: Path, device: str) -> Detector:
    """Load a checkpoint, reusing the last :data:`DETECTOR_CACHE_SIZE` ones (path + mtime)."""
    from engine import CheckpointError, load_detector

    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise CheckpointError(
            f"the model file {path} is missing ({exc.strerror}); the data folder may not be "
            "shared with this worker, or the model was deleted. Train the model again."
        ) from exc
    key = (str(path.resolve()), mtime, device)
    with _detectors_lock:
        detector = _detectors.get(key)
        if detector is not None:
            _detectors.move_to_end(key)
            return detector
        detector = load_detector(path, device=device)
        _detectors[key] = detector
        while len(_detectors) > DETECTOR_CACHE_SIZE:
            _detectors.popitem(last=False)
        return detector


def clear_detector_cache() -> None:
    """Forget the cached detectors (tests)."""
    with _detectors_lock:
        _detectors.clear()


class ScoreJob(JobBody):
    """``adn.gpu.score``: score images with a model version, with heatmaps when asked."""

    kind = "score"

    def run(self, ctx: JobContext) -> None:
        """Score the images chunk by chunk, committing each chunk; then succeed."""
        spec = read_spec(ScoreSpec, ctx.params)
        model_id, heatmaps = spec.model_version_id, spec.heatmaps
        data_dir = ctx.settings.data_dir
        with ctx.session() as session:
            model = get_model_version(session, model_id)
            if model.status != ModelStatus.READY.value or not model.artifact_path:
                raise JobInputError(
                    f"model version {model.name!r} (id {model_id}) is {model.status}, not ready; "
                    "wait for its training job to succeed, or train it again"
                )
            images = scoring_images(
                session,
                data_dir,
                project_id=model.project_id,
                batch_ids=spec.batch_ids,
                image_ids=spec.image_ids,
            )
            done = already_scored(session, model_id, [i.id for i in images], heatmaps)
            artifact = resolve_data_path(data_dir, model.artifact_path)
        if not images:
            raise JobInputError(
                f"nothing to score: batches {list(spec.batch_ids)} and images "
                f"{list(spec.image_ids or [])} hold no images of this model's project"
            )
        todo = [image for image in images if image.id not in done]
        progress = _ScoreProgress(ctx, total=len(images), skipped=len(images) - len(todo))
        failures: list[dict[str, Any]] = []
        if todo:
            detector = cached_detector(artifact, engine_device(ctx.settings.worker_device))
            for chunk in iter_chunks(todo, CHUNK_SIZE):
                ctx.check()
                failures += _score_chunk(ctx, detector, model_id, chunk, heatmaps, progress)
        self._finish(ctx, model_id, len(images), len(todo), failures, heatmaps)

    def _finish(
        self,
        ctx: JobContext,
        model_id: int,
        total: int,
        attempted: int,
        failures: Sequence[Mapping[str, Any]],
        heatmaps: Sequence[str],
    ) -> None:
        unscored = [f for f in failures if not f.get("scored")]
        scored = attempted - len(unscored)
        skipped = total - attempted
        if attempted and scored == 0 and skipped == 0:
            raise JobInputError(
                f"none of the {attempted} images could be scored: {_failure_list(unscored)}"
            )
        parts = [f"scored {scored} of {total} images"]
        if skipped:
            parts.append(f"{skipped} already scored before")
        if unscored:
            parts.append(f"{len(unscored)} could not be read: {_failure_list(unscored)}")
        no_heatmap = [f for f in failures if f.get("scored")]
        if no_heatmap:
            parts.append(f"{len(no_heatmap)} without a heatmap: {_failure_list(no_heatmap)}")
        ctx.before_success()
        with ctx.session(immediate=True) as session:
            ctx.lease.succeed(
                session,
                message=join_parts(*parts),
                result={
                    "model_version_id": model_id,
                    "images": total,
                    "scored": scored,
                    "skipped_already_scored": skipped,
                    "heatmaps": list(heatmaps),
                    "failures": list(failures),
                },
            )


def already_scored(
    session: Session, model_id: int, image_ids: Sequence[int], methods: Sequence[str]
) -> set[int]:
    """Ids of the images this model already scored, with a heatmap of each of ``methods``."""
    query = select(Score.image_id).where(Score.model_version_id == model_id)
    if methods:
        query = (
            query.join(Heatmap, Heatmap.score_id == Score.id)
            .where(Heatmap.method.in_(list(methods)))
            .group_by(Score.image_id)
            .having(func.count(func.distinct(Heatmap.method)) == len(set(methods)))
        )
    found: set[int] = set()
    ids = sorted(set(image_ids))
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        found.update(session.scalars(query.where(Score.image_id.in_(chunk))))
    return found


class _ScoreProgress:
    """Progress of the score job: images done (skipped ones count as done), time left."""

    def __init__(self, ctx: JobContext, total: int, skipped: int) -> None:
        self.ctx = ctx
        self.total = total
        self.done = skipped
        self.started = time.monotonic()
        self.first = skipped

    def advance(self, count: int, *, force: bool = False) -> None:
        self.done += count
        elapsed = time.monotonic() - self.started
        new = self.done - self.first
        eta = elapsed / new * (self.total - self.done) if new else None
        message = join_parts(f"scored {self.done}/{self.total} images", eta_text(eta))
        details = {"phase": "scoring", "done": self.done, "total": self.total, "eta_s": eta}
        self.ctx.reporter.report(0.99 * self.done / self.total, message, details, force=force)


def _score_chunk(
    ctx: JobContext,
    detector: Detector,
    model_id: int,
    chunk: Sequence[JobImage],
    heatmaps: Sequence[str],
    progress: _ScoreProgress,
) -> list[dict[str, Any]]:
    """Score one chunk, write its rows in one transaction; return its failures."""
    from engine import EngineError, heatmap_to_png

    batch = detector.score([str(image.path) for image in chunk], chunk_size=len(chunk))
    failures: list[dict[str, Any]] = []
    by_path = {str(image.path): image for image in chunk}
    for failure in batch.failures:
        image = by_path.get(failure.source)
        failures.append(_failure(image, failure.source, failure.reason, scored=False))
    rows: list[tuple[JobImage, float, float | None, dict[str, bytes]]] = []
    counted = 0
    for result in batch.results:
        image = chunk[result.index]
        if not math.isfinite(result.score):
            failures.append(
                _failure(image, image.name, "its score is not a finite number", scored=False)
            )
            continue
        pngs: dict[str, bytes] = {}
        for method in heatmaps:
            ctx.check()
            try:
                pngs[method] = heatmap_to_png(detector.explain(str(image.path), method=method))
            except EngineError as exc:
                reason = f"no {method} heatmap: {getattr(exc, 'reason', exc)}"
                failures.append(_failure(image, image.name, reason, scored=True))
        if heatmaps:
            counted += 1
            progress.advance(1)
        percentile = result.percentile if math.isfinite(result.percentile) else None
        rows.append((image, result.score, percentile, pngs))
    with ctx.session() as session:
        for image, score, percentile, pngs in rows:
            upsert_score(
                session,
                image_id=image.id,
                model_version_id=model_id,
                score=score,
                percentile=percentile,
                job_id=ctx.job_id,
                heatmap_pngs=pngs,
            )
    progress.advance(len(chunk) - counted, force=True)
    return failures


def _failure(image: JobImage | None, source: str, reason: str, *, scored: bool) -> dict[str, Any]:
    return {
        "image_id": image.id if image is not None else None,
        "image": image.name if image is not None else Path(source).name,
        "reason": reason,
        "scored": scored,
    }


def _failure_list(failures: Sequence[Mapping[str, Any]]) -> str:
    listed = ", ".join(f"{f['image']} ({f['reason']})" for f in failures[:_LISTED_FAILURES])
    more = len(failures) - _LISTED_FAILURES
    return listed + (f" and {more} more" if more > 0 else "")
