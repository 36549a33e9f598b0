"""Send jobs to the workers; the one module of ``worker`` that the dashboard imports.

It imports Celery and :mod:`worker.celery_app` only (never torch, never the engine), so the
dashboard stays light. The flow: write the job row (and, for training, its model version) and
commit, then call :func:`send_job`. If the broker cannot be reached, :class:`BrokerUnavailableError`
says so; the row stays ``queued`` and the sweep sends it again later, so nothing is lost.

Job params contract (``jobs.params_json``)
==========================================

Train job, kind ``"train"`` (task ``adn.gpu.train``)::

    {
        "model_version_id": int,          # created "pending" in the same transaction as the job
        "batch_ids": [int, ...],          # batches to take the training images from
        "image_ids": [int, ...] | null,   # null: every image of the batches
        "category": str | null,           # null: every category
        "preset": "paper" | "fast" | "tiny",
        "overrides": {                    # all keys optional; {} keeps the preset
            "epochs": int, "image_size": int, "test_views": int,
            "cache_views_per_image": int, "seed": int
        }
    }

The model version row holds the name, variant (none/se/cbam), backbone and category; one job per
variant. Training images are the images of ``batch_ids`` whose batch purpose is ``train``
(restricted to ``image_ids`` when given), of ``category`` when given, leaving out every image
whose known label is ``anomalous``. The worker builds the config from the preset, the model
version's variant and backbone, and the overrides; the device comes from ``ADN_WORKER_DEVICE``.

Score job, kind ``"score"`` (task ``adn.gpu.score``)::

    {
        "model_version_id": int,          # a model version in status "ready"
        "batch_ids": [int, ...],          # batches to score (any purpose)
        "image_ids": [int, ...] | null,   # null: every image of the batches
        "heatmaps": true                  # also store a Grad-CAM heatmap PNG per image
    }

With ``image_ids`` given, exactly those images are scored (they must belong to the model's
project). Images already scored by the model (with a heatmap, when heatmaps are asked for) are
skipped, so a re-sent job resumes where it stopped.

Keys are exact: a missing required key, an unknown key or a value of the wrong type fails the job
with a message naming it. :func:`train_params` and :func:`score_params` build valid dictionaries.

While a job runs, ``jobs.message`` reads like ``"epoch 3/12 · loss 0.812 · 2 min left"`` and
``jobs.result_json`` holds ``{"live": {"phase", "epoch", "epochs", "loss", "eta_s", ...}}``; when
it succeeds, ``result_json`` holds the job's result instead (see ``worker.jobs``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from worker.celery_app import GPU_QUEUE, LIGHT_QUEUE
from worker.celery_app import app as default_app
from worker.errors import BrokerUnavailableError, JobParamsError, WorkerError
from worker.settings import redact_url

logger = logging.getLogger(__name__)

__all__ = [
    "PRESETS",
    "SWEEP_TASK",
    "TASK_FOR_KIND",
    "TRAIN_OVERRIDES",
    "BrokerUnavailableError",
    "JobParamsError",
    "check_score_params",
    "check_train_params",
    "score_params",
    "send_job",
    "send_sweep",
    "train_params",
]

TASK_FOR_KIND: dict[str, str] = {"train": "adn.gpu.train", "score": "adn.gpu.score"}
SWEEP_TASK = "adn.light.sweep"
PRESETS = ("paper", "fast", "tiny")
TRAIN_OVERRIDES = ("epochs", "image_size", "test_views", "cache_views_per_image", "seed")
_TRAIN_KEYS = ("model_version_id", "batch_ids", "image_ids", "category", "preset", "overrides")
_SCORE_KEYS = ("model_version_id", "batch_ids", "image_ids", "heatmaps")
# A dashboard click must not hang: a few quick publish retries, then a clear error.
_PUBLISH_RETRY = {
    "max_retries": 2,
    "interval_start": 0.0,
    "interval_step": 0.5,
    "interval_max": 1.0,
}


def queue_for(task_name: str) -> str:
    """The queue a task name is routed to (``adn.gpu.*`` -> gpu, everything else -> light)."""
    return GPU_QUEUE if task_name.startswith("adn.gpu.") else LIGHT_QUEUE


def send_job(job_id: int, kind: str, app: Celery | None = None) -> str:
    """Send the task of job ``job_id`` (of ``kind``) by name; return the Celery task id.

    Raises :class:`BrokerUnavailableError` when the broker cannot be reached; the job row stays
    queued and the sweep sends it again later.
    """
    if kind not in TASK_FOR_KIND:
        raise JobParamsError(
            f"job kind {kind!r} has no worker task; use one of: {', '.join(TASK_FOR_KIND)}"
        )
    return _send(TASK_FOR_KIND[kind], [int(job_id)], app, f"job {job_id} ({kind})")


def send_sweep(app: Celery | None = None) -> str:
    """Ask a light worker to run the sweep now (it also runs on a timer)."""
    return _send(SWEEP_TASK, [], app, "the sweep")


def _send(task_name: str, args: list[Any], app: Celery | None, what: str) -> str:
    celery = app or default_app
    try:
        result = celery.send_task(
            task_name,
            args=args,
            queue=queue_for(task_name),
            retry=True,
            retry_policy=_PUBLISH_RETRY,
        )
    except (KombuOperationalError, OSError, WorkerError) as exc:
        url = _redacted_broker_url(celery)
        raise BrokerUnavailableError(
            f"could not hand {what} to the broker at {url}: {exc}. The job is saved and stays "
            "queued; it is sent again automatically once the broker is reachable. Check that "
            "Redis (ADN_BROKER_URL) is running, or that the data folder is writable in the "
            "embedded mode."
        ) from exc
    logger.info("sent %s as %s (task %s)", what, task_name, result.id)
    return str(result.id)


def _redacted_broker_url(app: Celery) -> str:
    return redact_url(str(app.conf.broker_url or ""))


# --- the params contract -------------------------------------------------------------------------


def train_params(
    *,
    model_version_id: int,
    batch_ids: Sequence[int],
    image_ids: Sequence[int] | None = None,
    category: str | None = None,
    preset: str = "fast",
    overrides: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """A valid train-job ``params_json`` (raises :class:`JobParamsError` when it would not be)."""
    params = {
        "model_version_id": model_version_id,
        "batch_ids": list(batch_ids),
        "image_ids": None if image_ids is None else list(image_ids),
        "category": category,
        "preset": preset,
        "overrides": dict(overrides or {}),
    }
    return check_train_params(params)


def score_params(
    *,
    model_version_id: int,
    batch_ids: Sequence[int],
    image_ids: Sequence[int] | None = None,
    heatmaps: bool = True,
) -> dict[str, Any]:
    """A valid score-job ``params_json`` (raises :class:`JobParamsError` when it would not be)."""
    params = {
        "model_version_id": model_version_id,
        "batch_ids": list(batch_ids),
        "image_ids": None if image_ids is None else list(image_ids),
        "heatmaps": heatmaps,
    }
    return check_score_params(params)


def check_train_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a train job's params; return a normalised copy."""
    _check_keys("train", params, _TRAIN_KEYS, optional=("image_ids", "category", "overrides"))
    category = params.get("category")
    if category is not None and not isinstance(category, str):
        raise JobParamsError(f"train job: category must be a string or null, got {category!r}")
    preset = params["preset"]
    if preset not in PRESETS:
        raise JobParamsError(f"train job: preset {preset!r} is not one of: {', '.join(PRESETS)}")
    overrides = params.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise JobParamsError(f"train job: overrides must be an object, got {overrides!r}")
    unknown = sorted(set(overrides) - set(TRAIN_OVERRIDES))
    if unknown:
        raise JobParamsError(
            f"train job: unknown overrides {', '.join(unknown)}; allowed: "
            f"{', '.join(TRAIN_OVERRIDES)}"
        )
    for key, value in overrides.items():
        _check_int(f"train job: overrides.{key}", value, minimum=0 if key == "seed" else 1)
    return {
        **_common(params, "train"),
        "category": (category.strip() or None) if category else None,
        "preset": preset,
        "overrides": {k: int(v) for k, v in overrides.items()},
    }


def check_score_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a score job's params; return a normalised copy."""
    _check_keys("score", params, _SCORE_KEYS, optional=("image_ids", "heatmaps"))
    heatmaps = params.get("heatmaps", True)
    if not isinstance(heatmaps, bool):
        raise JobParamsError(f"score job: heatmaps must be true or false, got {heatmaps!r}")
    return {**_common(params, "score"), "heatmaps": heatmaps}


def _common(params: Mapping[str, Any], kind: str) -> dict[str, Any]:
    _check_int(f"{kind} job: model_version_id", params["model_version_id"], minimum=1)
    batch_ids = _id_list(f"{kind} job: batch_ids", params["batch_ids"])
    image_ids = params.get("image_ids")
    images = None if image_ids is None else _id_list(f"{kind} job: image_ids", image_ids)
    if not batch_ids and not images:
        raise JobParamsError(f"{kind} job: give at least one batch id or image id")
    return {
        "model_version_id": int(params["model_version_id"]),
        "batch_ids": batch_ids,
        "image_ids": images,
    }


def _check_keys(
    kind: str, params: Mapping[str, Any], allowed: Sequence[str], optional: Sequence[str]
) -> None:
    if not isinstance(params, Mapping):
        raise JobParamsError(f"{kind} job: params must be an object, got {type(params).__name__}")
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise JobParamsError(
            f"{kind} job: unknown params {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
    missing = [k for k in allowed if k not in params and k not in optional]
    if missing:
        raise JobParamsError(f"{kind} job: missing params {', '.join(missing)}")


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise JobParamsError(f"{name} must be a whole number >= {minimum}, got {value!r}")


def _id_list(name: str, value: Any) -> list[int]:
    if not isinstance(value, list | tuple):
        raise JobParamsError(f"{name} must be a list of ids, got {value!r}")
    for item in value:
        _check_int(f"{name} entries", item, minimum=1)
    return [int(v) for v in value]
