"""Typed model, training and scoring configuration that round-trips to JSON.

Every hyper-parameter of the method lives here. The dataclass defaults are the paper's values (plus
the standardised flow input, the engine's first addition), so a config stored before a switch
existed reads back exactly as it was built; the measured recommendations live in
:mod:`engine.presets`. The JSON form is stored with every model version, so a checkpoint always
says exactly how it was built.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, Literal, TypeVar, get_args

from engine.errors import ConfigError
from jobspec import Backbone, Variant, values_of

BackboneWeights = Literal["imagenet", "random"]
AttentionPosition = Literal["pre_pool", "post_pool"]
CollapseAction = Literal["stop", "warn"]
# What the flow sees: raw pooled features (the paper), standardised per feature, or whitened with a
# shrinkage covariance (then an untrained zero-initialised flow scores the Mahalanobis distance).
FlowInput = Literal["raw", "standardize", "whiten"]
# Which stage outputs are pooled: the last stage only (the paper) or every stage.
FeatureStages = Literal["last", "all"]
# How a stage's map becomes a vector: its spatial mean (the paper), or mean, maximum and spread
# per channel (a small crack raises a channel's maximum and spread long before its mean).
FeaturePool = Literal["mean", "mean_max_std"]
# Per-image intensity normalisation before the backbone: none (the paper), mean/spread, or ranks.
IntensityNorm = Literal["none", "standardize", "equalize"]
# The views of an image: arbitrary rotations (the paper) or the 8 lossless flips and quarter turns.
ViewGroup = Literal["rotations", "dihedral"]
EpochSelection = Literal["last", "validation", "planted"]
DeviceChoice = Literal["auto", "cuda", "mps", "cpu"]

VARIANTS: tuple[str, ...] = values_of(Variant)
BACKBONES: tuple[str, ...] = values_of(Backbone)

_T = TypeVar("_T")
_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True)
class BackboneConfig:
    """Which feature extractor to use and where its pretrained weights come from."""

    name: Backbone = Backbone.ALEXNET
    weights: BackboneWeights = "imagenet"
    # Explicit weights file; when unset the backbone's standard location is used (see README).
    weights_path: str | None = None
    # Try torchvision's download when the file is missing (never falls back to random weights).
    download: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", _member("backbone.name", self.name, Backbone))
        _choice("backbone.weights", self.weights, get_args(BackboneWeights))


@dataclass(frozen=True)
class AttentionConfig:
    """The attention blocks of AttentDifferNet; every open question of the method is a switch."""

    # AlexNet only: gate after the stage's ReLU (before the max-pool) or after the max-pool.
    position: AttentionPosition = "pre_pool"
    se_reduction: int = 2
    cbam_reduction: int = 16
    cbam_kernel: int = 7
    cbam_residual: bool = True
    # Train the attention blocks with the flow (convolutions stay frozen) or keep them at init.
    train_attention: bool = False

    def __post_init__(self) -> None:
        _choice("attention.position", self.position, get_args(AttentionPosition))
        _at_least("attention.se_reduction", self.se_reduction, 1)
        _at_least("attention.cbam_reduction", self.cbam_reduction, 1)
        if self.cbam_kernel < 1 or self.cbam_kernel % 2 == 0:
            raise ConfigError("attention.cbam_kernel must be a positive odd number")


@dataclass(frozen=True)
class FlowConfig:
    """DifferNet's normalizing flow: GLOW couplings with random permutations."""

    coupling_blocks: int = 8
    subnet_hidden: int = 2048
    subnet_layers: int = 3  # hidden Linear+ReLU layers before the output layer
    clamp: float = 3.0
    # Start every coupling at the identity (subnets' last layer zero), so training adds to the
    # input's own density instead of starting from a random map.
    zero_init: bool = False

    def __post_init__(self) -> None:
        _at_least("flow.coupling_blocks", self.coupling_blocks, 1)
        _at_least("flow.subnet_hidden", self.subnet_hidden, 1)
        _at_least("flow.subnet_layers", self.subnet_layers, 1)
        _at_least("flow.clamp", self.clamp, 1e-6)


@dataclass(frozen=True)
class PatchConfig:
    """A local term beside the flow: nearest-neighbour distances of the image's patches to a
    memory of training patches (off in the paper). The image's term is its largest patch
    distance; its score, the geometric mean of that term and the flow's score."""

    enabled: bool = False
    # Backbone output strides whose maps make the patch vectors (3×3-averaged, the coarser
    # upsampled to the finest grid, concatenated).
    strides: tuple[int, ...] = (8, 16)
    # Share of the training patches kept in memory (a seeded random choice), and a cap.
    memory_fraction: float = 0.1
    max_memory: int = 50_000

    def __post_init__(self) -> None:
        if not self.strides or any(stride < 1 for stride in self.strides):
            raise ConfigError("model.patch.strides must be one or more positive numbers")
        if not 0.0 < self.memory_fraction <= 1.0:
            raise ConfigError("model.patch.memory_fraction must be in (0, 1]")
        _at_least("model.patch.max_memory", self.max_memory, 1)


@dataclass(frozen=True)
class ModelConfig:
    """Architecture: backbone, attention variant, multi-scale input and flow."""

    variant: Variant = Variant.NONE
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    patch: PatchConfig = field(default_factory=PatchConfig)
    image_size: int = 448
    scales: int = 3  # full size, then /2, /4 of the normalised tensor (nearest)
    # Permutation seeds are offset by this value (block k uses seed + k).
    permutation_seed: int = 0
    # Map the pooled features before the flow: "standardize" (the first engine default: mean and
    # spread of the training features), "whiten" (shrinkage covariance) or "raw" (the paper).
    flow_input: FlowInput = "standardize"
    feature_stages: FeatureStages = "last"
    feature_pool: FeaturePool = "mean"
    intensity: IntensityNorm = "none"
    view_group: ViewGroup = "rotations"

    def __post_init__(self) -> None:
        object.__setattr__(self, "variant", _member("model.variant", self.variant, Variant))
        _choice("model.flow_input", self.flow_input, get_args(FlowInput))
        _choice("model.feature_stages", self.feature_stages, get_args(FeatureStages))
        _choice("model.feature_pool", self.feature_pool, get_args(FeaturePool))
        _choice("model.intensity", self.intensity, get_args(IntensityNorm))
        _choice("model.view_group", self.view_group, get_args(ViewGroup))
        _at_least("model.image_size", self.image_size, 32)
        _at_least("model.scales", self.scales, 1)


@dataclass(frozen=True)
class TrainConfig:
    """The paper's schedule and augmentation, plus this engine's speed and safety settings."""

    epochs: int = 192
    batch_images: int = 24
    views_per_image: int = 4
    lr: float = 2e-4
    betas: tuple[float, float] = (0.8, 0.8)
    eps: float = 1e-4
    weight_decay: float = 1e-5
    color_jitter: float = 0.0  # 0 disables; otherwise brightness/contrast/saturation strength
    seed: int = 0
    # Fraction of the normal training images held out to calibrate the default threshold.
    calibration_fraction: float = 0.1
    calibration_min_images: int = 2
    # Frozen extractors: compute features once for a bank of rotations and train the flow on it.
    feature_cache: bool = True
    cache_views_per_image: int = 32
    # Guard against feature collapse when attention is trained.
    collapse_variance_ratio: float = 0.05
    collapse_action: CollapseAction = "stop"
    # Which epoch's flow is kept; no test labels are involved. "last": the last epoch, as in the
    # paper. "validation": the highest likelihood of the held-out calibration images. "planted":
    # the best AUROC between the held-out images and copies of them with planted defects
    # (engine.data.planted_defects), the untrained flow (the Gaussian) unless an epoch beats it.
    epoch_selection: EpochSelection = "last"
    # With a selection other than "last": stop after this many epochs without a better one
    # (0: never).
    patience: int = 0
    # "planted": defective copies per held-out image, and the AUROC gain an epoch needs over the
    # kept one to replace it (a guard against choosing by noise).
    planted_copies: int = 4
    planted_min_gain: float = 0.002
    device: DeviceChoice = "auto"
    extractor_batch_size: int = 0  # views per extractor pass; 0 = automatic for the device
    num_workers: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_images", "views_per_image", "cache_views_per_image"):
            _at_least(f"train.{name}", getattr(self, name), 1)
        _at_least("train.extractor_batch_size", self.extractor_batch_size, 0)
        if not 0.0 <= self.calibration_fraction < 1.0:
            raise ConfigError("train.calibration_fraction must be in [0, 1)")
        _choice("train.collapse_action", self.collapse_action, get_args(CollapseAction))
        _choice("train.epoch_selection", self.epoch_selection, get_args(EpochSelection))
        _at_least("train.patience", self.patience, 0)
        _at_least("train.planted_copies", self.planted_copies, 1)
        if not 0.0 <= self.planted_min_gain < 1.0:
            raise ConfigError("train.planted_min_gain must be in [0, 1)")
        _choice("train.device", self.device, get_args(DeviceChoice))


@dataclass(frozen=True)
class ScoreConfig:
    """Test-time augmentation and batching used by scoring and calibration."""

    test_views: int = 64
    # Rotations only: turn the test angles by half a step (i + 1/2)·360/n, so that few views are
    # not all axis-aligned (the paper: no offset).
    view_offset: bool = False
    batch_size: int = 0  # views per forward pass; 0 = automatic for the device
    device: DeviceChoice = "auto"
    # Default threshold quantile over the calibration normals (before any reviewer verdict).
    threshold_quantile: float = 0.99

    def __post_init__(self) -> None:
        _at_least("score.test_views", self.test_views, 1)
        _at_least("score.batch_size", self.batch_size, 0)
        _choice("score.device", self.device, get_args(DeviceChoice))
        if not 0.0 < self.threshold_quantile <= 1.0:
            raise ConfigError("score.threshold_quantile must be in (0, 1]")


@dataclass(frozen=True)
class DetectorConfig:
    """Everything needed to rebuild, train and score a detector; stored with each model version."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)

    def __post_init__(self) -> None:
        if self.model.view_group == "dihedral" and self.score.test_views > 8:
            raise ConfigError(
                f"score.test_views={self.score.test_views}: dihedral views (model.view_group) "
                "have 8 elements, so at most 8 test views"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready dictionary."""
        return asdict(self)

    def to_json(self) -> str:
        """Stable JSON text (sorted keys)."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DetectorConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error, missing ones default."""
        return _build(cls, _upgrade(data), "config")

    @classmethod
    def from_json(cls, text: str) -> DetectorConfig:
        """Rebuild from :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"config is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError("config JSON must be an object")
        return cls.from_dict(data)

    def replace(self, **sections: Any) -> DetectorConfig:
        """Copy with whole sections replaced, e.g. ``cfg.replace(train=new_train)``."""
        return dataclasses.replace(self, **sections)


def _upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """Read configs stored before ``model.flow_input`` replaced ``model.standardize_features``."""
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or "standardize_features" not in model:
        return data
    model = dict(model)
    standardize = model.pop("standardize_features")
    model.setdefault("flow_input", "standardize" if standardize else "raw")
    return {**data, "model": model}


def _build(cls: type[_T], data: dict[str, Any], where: str) -> _T:
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be an object, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"unknown {where} keys: {', '.join(unknown)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        default = getattr(cls(), name)
        if dataclasses.is_dataclass(default):
            kwargs[name] = _build(type(default), value, f"{where}.{name}")
        elif isinstance(default, tuple):
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


def _member(name: str, value: str, enum: type[_E]) -> _E:
    """``value`` as a member of ``enum``, or a :class:`ConfigError` naming the field."""
    _choice(name, value, values_of(enum))
    return enum(value)


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of: {', '.join(allowed)}")


def _at_least(name: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value}")
