"""Allowed values of the string-coded columns (stored as plain text, checked by the DB)."""

from __future__ import annotations

from enum import StrEnum

# The job contract names the attention variants; the store checks its column against them.
from jobspec import Variant as Variant
from jobspec import values_of as values_of


class Role(StrEnum):
    """What a user may do; each role includes the ones below it."""

    ADMIN = "admin"
    REVIEWER = "reviewer"
    VIEWER = "viewer"


ROLE_RANK: dict[str, int] = {Role.VIEWER: 0, Role.REVIEWER: 1, Role.ADMIN: 2}


class BatchPurpose(StrEnum):
    """Why a batch was uploaded."""

    TRAIN = "train"  # normal images to train on
    INSPECT = "inspect"  # images to score and review


class KnownLabel(StrEnum):
    """Ground truth that came with an image (folder name or CSV)."""

    NORMAL = "normal"
    ANOMALOUS = "anomalous"


class VerdictLabel(StrEnum):
    """A reviewer's decision about one image."""

    ANOMALOUS = "anomalous"
    NORMAL = "normal"
    UNSURE = "unsure"


class ModelVerdict(StrEnum):
    """What the active threshold says about a score (computed in queries, never stored)."""

    ANOMALOUS = "anomalous"
    NORMAL = "normal"
    REVIEW = "review"  # inside a two-threshold review band


class TrainingSource(StrEnum):
    """Why an image is among a model version's training images."""

    BATCH = "batch"  # a normal image of a training batch
    PARENT = "parent"  # one of the parent model version's training images
    CONFIRMED_NORMAL = "confirmed_normal"  # a reviewer's current verdict says normal


class ModelStatus(StrEnum):
    """Life cycle of a model version."""

    PENDING = "pending"  # its training job is queued or running
    READY = "ready"
    FAILED = "failed"


class JobStatus(StrEnum):
    """Life cycle of a background job."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ThresholdMethod(StrEnum):
    """How a threshold value was chosen."""

    MANUAL = "manual"
    MAX_F1 = "max_f1"
    TARGET_RECALL = "target_recall"
    MAX_FALSE_ALARM_RATE = "max_false_alarm_rate"
    MIN_COST = "min_cost"
    REVIEW_BAND = "review_band"
