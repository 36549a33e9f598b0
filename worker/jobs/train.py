"""The train job: normal images of the chosen batches -> a published model and a first threshold.

The checkpoint is written into a temporary folder and renamed to ``models/<id>/`` only when it is
complete; then, in one transaction, the model version becomes ready (artifact, metrics,
calibration, config), a first threshold version is saved from the calibration, and the job
succeeds. A failed or cancelled run marks the model version failed and leaves no folder behind.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from db.models import ModelStatus, ModelVersion, ThresholdMethod
from db.repositories import (
    get_model_version,
    mark_model_failed,
    mark_model_ready,
    save_threshold,
    settle_training_images,
)
from jobspec import TrainSpec, model_version_of
from worker.errors import JobCancelled, JobInputError
from worker.jobs import artifacts
from worker.jobs.device import engine_device
from worker.jobs.inputs import JobImage, training_images
from worker.jobs.params import read_spec
from worker.jobs.progress import eta_text, join_parts
from worker.jobs.runner import JobBody, JobContext
from worker.settings import WorkerSettings

if TYPE_CHECKING:
    from engine import DetectorConfig, ImageLoadError, TrainProgress, TrainResult

logger = logging.getLogger(__name__)

# Share of the progress bar for training itself; saving and recording take the rest.
_TRAIN_SHARE = 0.97
_LISTED_FAILURES = 5


class TrainJob(JobBody):
    """``adn.gpu.train``: train one model version (one attention variant)."""

    kind = "train"

    def run(self, ctx: JobContext) -> None:
        """Train, publish the model folder, record everything, succeed."""
        spec = read_spec(TrainSpec, ctx.params)
        model_id = spec.model_version_id
        data_dir = ctx.settings.data_dir
        with ctx.session() as session:
            model = get_model_version(session, model_id)
            _check_trainable(model.status, model_id, model.project_id, ctx.project_id)
            category = spec.category if spec.category is not None else model.category
            images = training_images(
                session,
                data_dir,
                project_id=model.project_id,
                batch_ids=spec.batch_ids,
                image_ids=spec.image_ids,
                category=category,
            )
            variant, backbone = model.variant, model.backbone
        if not images:
            raise JobInputError(_no_images_message(spec, category))
        config = build_config(spec, variant, backbone, ctx.settings)
        artifacts.remove_temp_dirs(data_dir, model_id)  # left by an attempt whose worker died
        temp_dir = artifacts.make_temp_dir(data_dir, model_id)
        try:
            ctx.reporter.report(0.0, f"loading {len(images)} training images", force=True)
            result = _train(ctx, config, images, spec)
            ctx.check()
            ctx.reporter.report(_TRAIN_SHARE, "saving the model", force=True)
            result.detector.save(
                temp_dir / artifacts.CHECKPOINT_NAME,
                metadata={"model_version_id": model_id, "job_id": ctx.job_id},
            )
            ctx.lease.confirm()  # never replace the folder of a newer attempt
            published = artifacts.publish(temp_dir, data_dir, model_id)
            try:
                self._record(ctx, spec, config, result, images)
            except BaseException:
                shutil.rmtree(published, ignore_errors=True)
                raise
        finally:
            shutil.rmtree(temp_dir, ignore_errors=True)

    def on_stopped(self, session: Session, ctx: JobContext, reason: str) -> None:
        """Mark a still-pending model version failed and remove its unfinished folders."""
        model_id = model_version_of(ctx.params)
        if model_id is None:
            return
        fail_pending_model(session, ctx.settings, model_id, reason)

    def _record(
        self,
        ctx: JobContext,
        spec: TrainSpec,
        config: DetectorConfig,
        result: TrainResult,
        images: Sequence[JobImage],
    ) -> None:
        calibration = result.detector.calibration
        failures = _failure_notes(result.failures, images)
        model_id = spec.model_version_id
        metrics = train_metrics(result, spec, ctx.settings, failures)
        threshold = calibration.threshold
        usable = threshold is not None and math.isfinite(threshold)
        notes = [] if usable else ["no default threshold: no calibration images were held out"]
        if failures:
            notes.append(_failure_summary(failures, len(images)))
        ctx.before_success()
        with ctx.session(immediate=True) as session:
            ctx.lease.hold(session)
            used = _used_image_ids(result.failures, images)
            mark_model_ready(
                session,
                model_id,
                artifact_path=artifacts.artifact_relative_path(model_id),
                metrics=metrics,
                calibration=json_safe(calibration.to_dict()),
                config=json.loads(config.to_json()),
                training_image_count=len(used),  # distinct images; repeats count once
            )
            settle_training_images(session, model_id, used)
            threshold_id = None
            if usable and threshold is not None:
                saved = save_threshold(
                    session,
                    model_version_id=model_id,
                    value=threshold,
                    method=ThresholdMethod.MANUAL.value,
                    params={"source": "calibration", "quantile": calibration.quantile},
                    metrics=json_safe(calibration.summary()),
                )
                threshold_id = saved.id
            summary = join_parts(
                f"trained on {result.n_train} images ({result.n_calibration} held out "
                "for calibration)",
                *notes,
            )
            ctx.lease.succeed(
                session,
                message=summary,
                result={
                    "model_version_id": model_id,
                    "artifact_path": artifacts.artifact_relative_path(model_id),
                    "threshold_id": threshold_id,
                    "threshold": threshold if usable else None,
                    **{k: metrics[k] for k in _RESULT_KEYS},
                },
            )


_RESULT_KEYS = ("train_images", "calibration_images", "final_loss", "elapsed_s", "unreadable")


def fail_pending_model(
    session: Session, settings: WorkerSettings, model_id: int, reason: str
) -> None:
    """Mark a pending model version failed (ready ones stay ready) and remove temp folders."""
    artifacts.remove_temp_dirs(settings.data_dir, model_id)
    model = session.get(ModelVersion, model_id)
    if model is not None and model.status == ModelStatus.PENDING.value:
        mark_model_failed(session, model_id, reason=reason)


def build_config(
    spec: TrainSpec, variant: str, backbone: str, settings: WorkerSettings
) -> DetectorConfig:
    """The job's preset for this variant and backbone, with its overrides and the worker's
    device."""
    from engine.presets import detector_config, model_for

    return detector_config(
        spec.preset,
        model_for(variant, backbone, settings.backbone_weights),
        spec.overrides,
        engine_device(settings.worker_device),  # type: ignore[arg-type]  # checked by the engine
    )


def train_message(progress: TrainProgress) -> str:
    """``"epoch 3/12 · loss 0.812 · 2 min left"`` and the like for the other phases."""
    eta = eta_text(progress.eta_s)
    if progress.phase == "training":
        loss = f"loss {progress.loss:.3f}" if progress.loss is not None else ""
        return join_parts(f"epoch {progress.epoch}/{progress.epochs}", loss, eta)
    if progress.phase == "features":
        return join_parts(f"computing features {progress.fraction:.0%}", eta)
    if progress.phase == "calibrating":
        return join_parts("calibrating the default threshold", eta)
    if progress.phase == "done":
        return "training finished; saving the model"
    return progress.message or progress.phase


def progress_details(progress: TrainProgress) -> dict[str, Any]:
    """The live numbers of a progress report (JSON-ready)."""
    return json_safe(
        {
            "phase": progress.phase,
            "fraction": progress.fraction,
            "epoch": progress.epoch,
            "epochs": progress.epochs,
            "step": progress.step,
            "steps": progress.steps,
            "loss": progress.loss,
            "elapsed_s": progress.elapsed_s,
            "eta_s": progress.eta_s,
        }
    )


def train_metrics(
    result: TrainResult,
    spec: TrainSpec,
    settings: WorkerSettings,
    failures: Sequence[dict[str, str]],
) -> dict[str, Any]:
    """What the model version row keeps about its training."""
    losses = list(result.epoch_losses)
    return json_safe(
        {
            "train_images": result.n_train,
            "calibration_images": result.n_calibration,
            "epoch_losses": losses,
            "final_loss": losses[-1] if losses else None,
            "elapsed_s": round(result.elapsed_s, 3),
            "used_feature_cache": result.used_feature_cache,
            "unreadable": len(failures),
            "failures": list(failures),
            "warnings": list(result.warnings),
            "preset": spec.preset.value,
            "overrides": spec.overrides.to_dict(),
            "device": settings.worker_device,
            "calibration": result.detector.calibration.summary(),
        }
    )


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (PostgreSQL's JSON refuses them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _train(
    ctx: JobContext, config: DetectorConfig, images: Sequence[JobImage], spec: TrainSpec
) -> TrainResult:
    """Train on ``images``, each as many times as the spec says (``TrainSpec.copies_of``)."""
    import engine

    def on_progress(progress: TrainProgress) -> None:
        ctx.reporter.report(
            _TRAIN_SHARE * progress.fraction,
            train_message(progress),
            progress_details(progress),
        )

    try:
        return engine.train(
            config,
            [str(image.path) for image in images for _ in range(spec.copies_of(image.id))],
            on_progress=on_progress,
            should_cancel=ctx.should_stop,
        )
    except engine.TrainingCancelled as exc:
        ctx.check()  # raises JobLostError or JobCancelled with the right reason
        raise JobCancelled(str(exc)) from exc


def _check_trainable(status: str, model_id: int, project_id: int, job_project: int | None) -> None:
    if job_project is not None and project_id != job_project:
        raise JobInputError(
            f"model version {model_id} belongs to project {project_id}, not to the job's project "
            f"{job_project}; queue the job from the model's project"
        )
    if status != ModelStatus.PENDING.value:
        raise JobInputError(
            f"model version {model_id} is {status}, so it cannot be trained again; queue a new "
            "training (it creates a new model version)"
        )


def _no_images_message(spec: TrainSpec, category: str | None) -> str:
    where = (
        f"images {list(spec.image_ids)}"
        if spec.image_ids is not None
        else f"the training batches {list(spec.batch_ids)}"
    )
    of_category = f" of category {category!r}" if category else ""
    return (
        f"no training images: {where} hold no normal images{of_category}. Upload normal images "
        "to a batch marked as training images (anomalous-labelled ones are never used)"
    )


def _failure_notes(
    failures: Sequence[ImageLoadError], images: Sequence[JobImage]
) -> list[dict[str, str]]:
    names = {str(image.path): image.name for image in images}
    once = {f.source: f for f in failures}  # a repeated image fails once per copy
    return [
        {"image": names.get(f.source, Path(f.source).name), "reason": f.reason}
        for f in once.values()
    ]


def _used_image_ids(failures: Sequence[ImageLoadError], images: Sequence[JobImage]) -> list[int]:
    """The ids of the images the training read (every image but the unreadable ones)."""
    skipped = {f.source for f in failures}
    return [image.id for image in images if str(image.path) not in skipped]


def _failure_summary(failures: Sequence[Mapping[str, str]], total: int) -> str:
    listed = ", ".join(f"{f['image']} ({f['reason']})" for f in failures[:_LISTED_FAILURES])
    more = len(failures) - _LISTED_FAILURES
    tail = f" and {more} more" if more > 0 else ""
    return f"{len(failures)} of {total} images could not be read and were skipped: {listed}{tail}"
