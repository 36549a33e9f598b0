"""ORM models of the studio; importing this package registers every table on `Base.metadata`."""

from db.models.audit import AuditEntry
from db.models.base import Base, UTCDateTime, utcnow
from db.models.enums import (
    ROLE_RANK,
    BatchPurpose,
    JobStatus,
    KnownLabel,
    ModelStatus,
    ModelVerdict,
    Role,
    ThresholdMethod,
    TrainingSource,
    Variant,
    VerdictLabel,
)
from db.models.jobs import Job
from db.models.lineage import TrainingImage
from db.models.model_versions import ModelVersion
from db.models.projects import Image, ImageBatch, Project
from db.models.review import Threshold, Verdict
from db.models.scoring import Heatmap, Score
from db.models.sign_in import SignInSession
from db.models.users import User

__all__ = [
    "ROLE_RANK",
    "AuditEntry",
    "Base",
    "BatchPurpose",
    "Heatmap",
    "Image",
    "ImageBatch",
    "Job",
    "JobStatus",
    "KnownLabel",
    "ModelStatus",
    "ModelVerdict",
    "ModelVersion",
    "Project",
    "Role",
    "Score",
    "SignInSession",
    "Threshold",
    "ThresholdMethod",
    "TrainingImage",
    "TrainingSource",
    "UTCDateTime",
    "User",
    "Variant",
    "Verdict",
    "VerdictLabel",
    "utcnow",
]
