"""The parameters of train and score jobs (``jobs.params_json``), typed and validated.

Train job (kind ``train``)::

    {"model_version_id": int, "batch_ids": [int, ...], "image_ids": [int, ...] | null,
     "category": str | null, "preset": "fast" | "paper" | "tiny", "overrides": {...},
     "repeat_ids": [int, ...], "repeats": int}

``repeat_ids`` (a part of ``image_ids``; optional, written only when used) are each used
``repeats`` times in training: a retraining gives the few normals reviewers confirmed of a new lot
that weight (``MAX_REPEATS`` at most).

The model version row holds the name, variant and backbone; one job per variant. Training images
are the normal images of ``batch_ids`` whose batch purpose is ``train`` (only ``image_ids`` when
given, only ``category`` when given; never an image labelled ``anomalous``). The worker maps the
preset, the variant and backbone and the overrides to a config with
``engine.presets.detector_config``; the device is the worker's. Score job (kind ``score``)::

    {"model_version_id": int, "batch_ids": [int, ...], "image_ids": [int, ...] | null,
     "heatmaps": [method, ...]}

``heatmaps`` names the heatmap methods to store per image (``HeatmapMethod``; ``[]`` for none;
the older ``true``/``false`` means the default method / none). With ``image_ids``, exactly those
images are scored (of the model's project); images the model already scored (with every asked
heatmap) are skipped, so a re-sent job resumes.

Keys are exact: a missing required key, an unknown key or a value of the wrong type is a
:class:`JobSpecError` naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobspec.errors import JobSpecError
from jobspec.overrides import Overrides
from jobspec.vocabulary import (
    DEFAULT_HEATMAP_METHOD,
    MAX_TEST_VIEWS,
    HeatmapMethod,
    JobKind,
    Preset,
    values_of,
)

# The most times one training image may be used (a retraining's confirmed normals).
MAX_REPEATS = 10


@dataclass(frozen=True)
class TrainSpec:
    """Train one model version on the normal images of some batches."""

    model_version_id: int
    batch_ids: tuple[int, ...]
    image_ids: tuple[int, ...] | None = None
    category: str | None = None
    preset: Preset = Preset.FAST
    overrides: Overrides = field(default_factory=Overrides)
    repeat_ids: tuple[int, ...] = ()
    repeats: int = 1

    kind = JobKind.TRAIN

    def __post_init__(self) -> None:
        _check_targets(self, "train")
        category = self.category.strip() if isinstance(self.category, str) else self.category
        if category is not None and not isinstance(category, str):
            raise JobSpecError(f"train job: category must be a string or null, got {category!r}")
        object.__setattr__(self, "category", category or None)
        object.__setattr__(self, "preset", _preset(self.preset))
        if not isinstance(self.overrides, Overrides):
            raise JobSpecError(f"train job: overrides must be Overrides, got {self.overrides!r}")
        views, most = self.overrides.test_views, MAX_TEST_VIEWS[self.preset]
        if views is not None and views > most:
            raise JobSpecError(
                f"train job: the {self.preset} preset scores at most {most} test views, got {views}"
            )
        _check_repeats(self)

    def to_params(self) -> dict[str, Any]:
        """The stored JSON form."""
        params = {
            "model_version_id": self.model_version_id,
            "batch_ids": list(self.batch_ids),
            "image_ids": None if self.image_ids is None else list(self.image_ids),
            "category": self.category,
            "preset": self.preset.value,
            "overrides": self.overrides.to_dict(),
        }
        if self.repeat_ids:
            params |= {"repeat_ids": list(self.repeat_ids), "repeats": self.repeats}
        return params

    def copies_of(self, image_id: int) -> int:
        """How many times the image is used in training."""
        return self.repeats if image_id in self.repeat_ids else 1

    @classmethod
    def from_params(cls, params: Any) -> TrainSpec:
        """Read and validate the stored form."""
        data = _exact_keys(
            "train",
            params,
            required=("model_version_id", "batch_ids", "preset"),
            optional=("image_ids", "category", "overrides", "repeat_ids", "repeats"),
        )
        try:
            overrides = Overrides.from_dict(data.get("overrides"))
        except JobSpecError as exc:
            raise JobSpecError(f"train job: {exc}") from exc
        return cls(
            model_version_id=data["model_version_id"],
            batch_ids=_ids("train job: batch_ids", data["batch_ids"]),
            image_ids=_optional_ids("train job: image_ids", data.get("image_ids")),
            category=data.get("category"),
            preset=data["preset"],
            overrides=overrides,
            repeat_ids=_ids("train job: repeat_ids", data.get("repeat_ids", [])),
            repeats=data.get("repeats", 1),
        )


@dataclass(frozen=True)
class ScoreSpec:
    """Score images with a ready model version (and store heatmaps of the named methods)."""

    model_version_id: int
    batch_ids: tuple[int, ...]
    image_ids: tuple[int, ...] | None = None
    heatmaps: tuple[str, ...] = (DEFAULT_HEATMAP_METHOD.value,)  # ``true``/``false`` are read too

    kind = JobKind.SCORE

    def __post_init__(self) -> None:
        _check_targets(self, "score")
        object.__setattr__(self, "heatmaps", _heatmap_methods(self.heatmaps))

    def to_params(self) -> dict[str, Any]:
        """The stored JSON form."""
        return {
            "model_version_id": self.model_version_id,
            "batch_ids": list(self.batch_ids),
            "image_ids": None if self.image_ids is None else list(self.image_ids),
            "heatmaps": list(self.heatmaps),
        }

    @classmethod
    def from_params(cls, params: Any) -> ScoreSpec:
        """Read and validate the stored form."""
        data = _exact_keys(
            "score",
            params,
            required=("model_version_id", "batch_ids"),
            optional=("image_ids", "heatmaps"),
        )
        return cls(
            model_version_id=data["model_version_id"],
            batch_ids=_ids("score job: batch_ids", data["batch_ids"]),
            image_ids=_optional_ids("score job: image_ids", data.get("image_ids")),
            heatmaps=data.get("heatmaps", True),
        )


JobSpec = TrainSpec | ScoreSpec
JOB_KINDS: dict[JobKind, type[TrainSpec] | type[ScoreSpec]] = {
    JobKind.TRAIN: TrainSpec,
    JobKind.SCORE: ScoreSpec,
}


def parse_params(kind: str, params: Any) -> JobSpec:
    """The spec of a job of ``kind`` from its stored params."""
    if kind not in values_of(JobKind):
        raise JobSpecError(f"job kind {kind!r} is not one of: {', '.join(values_of(JobKind))}")
    return JOB_KINDS[JobKind(kind)].from_params(params)


def model_version_of(params: Any) -> int | None:
    """The model version a job's stored params name (both kinds have one), or None when the
    params are malformed; for listings and clean-up, which must not fail on a bad row."""
    value = params.get("model_version_id") if isinstance(params, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _check_repeats(spec: TrainSpec) -> None:
    object.__setattr__(spec, "repeat_ids", _ids("train job: repeat_ids", spec.repeat_ids))
    object.__setattr__(spec, "repeats", _whole("train job: repeats", spec.repeats, minimum=1))
    if spec.repeats > MAX_REPEATS:
        raise JobSpecError(f"train job: repeats must be at most {MAX_REPEATS}, got {spec.repeats}")
    if not spec.repeat_ids:
        return
    outside = sorted(set(spec.repeat_ids) - set(spec.image_ids or ()))
    if outside:
        raise JobSpecError(f"train job: repeat_ids must be among image_ids; {outside[:5]} are not")


def _heatmap_methods(value: Any) -> tuple[str, ...]:
    """Heatmap method names, checked (the older ``true`` / ``false``: the default / none)."""
    if isinstance(value, bool):
        return (DEFAULT_HEATMAP_METHOD.value,) if value else ()
    if not isinstance(value, list | tuple):
        raise JobSpecError(f"score job: heatmaps must be a list of heatmap methods, got {value!r}")
    methods = tuple(str(m) if isinstance(m, HeatmapMethod) else m for m in value)
    known = values_of(HeatmapMethod)
    for method in methods:
        if method not in known:
            raise JobSpecError(
                f"score job: unknown heatmap method {method!r}; choose from {', '.join(known)}"
            )
    if len(set(methods)) != len(methods):
        raise JobSpecError(f"score job: heatmap methods repeat: {list(methods)}")
    return methods


def _preset(value: Any) -> Preset:
    if value not in values_of(Preset):
        raise JobSpecError(
            f"train job: preset {value!r} is not one of: {', '.join(values_of(Preset))}"
        )
    return Preset(value)


def _check_targets(spec: TrainSpec | ScoreSpec, kind: str) -> None:
    _whole(f"{kind} job: model_version_id", spec.model_version_id, minimum=1)
    object.__setattr__(spec, "batch_ids", _ids(f"{kind} job: batch_ids", spec.batch_ids))
    object.__setattr__(spec, "image_ids", _optional_ids(f"{kind} job: image_ids", spec.image_ids))
    if not spec.batch_ids and not spec.image_ids:
        raise JobSpecError(f"{kind} job: give at least one batch id or image id")


def _exact_keys(
    kind: str, params: Any, *, required: Sequence[str], optional: Sequence[str]
) -> Mapping[str, Any]:
    if not isinstance(params, Mapping):
        raise JobSpecError(f"{kind} job: params must be an object, got {type(params).__name__}")
    allowed = (*required, *optional)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise JobSpecError(
            f"{kind} job: unknown params {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
    missing = [k for k in required if k not in params]
    if missing:
        raise JobSpecError(f"{kind} job: missing params {', '.join(missing)}")
    return params


def _whole(name: str, value: Any, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise JobSpecError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return value


def _ids(name: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        raise JobSpecError(f"{name} must be a list of ids, got {value!r}")
    return tuple(_whole(f"{name} entries", item, minimum=1) for item in value)


def _optional_ids(name: str, value: Any) -> tuple[int, ...] | None:
    return None if value is None else _ids(name, value)
