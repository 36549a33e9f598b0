"""AttentDifferNet: a frozen multi-scale backbone with three attention blocks, then a flow.

Images enter as float tensors in [0, 1], shape (B, 3, S, S). The model normalises them with the
backbone's mean/std, builds the other scales from the *normalised* tensor (nearest interpolation,
size S / 2**s), runs the stages with attention and pools, averages the final map (or, with
``feature_stages="all"``, every stage's map) over space (``feature_pool="mean_max_std"`` adds
each channel's maximum and spread) and concatenates the scales: a
(B, scales × per-scale dim) feature vector. Before the flow it is centred and mapped by a fixed
linear ``feature_whitener`` (identity, per-feature scale, or a shrinkage-covariance whitening).

Grad-CAM hooks ``model.cam_anchor``: it sees the output of the last attention block (for variant
``none`` the last conv stage's activation) of the full-size pass only.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from FrEIA.framework import SequenceINN
from torch import Tensor, nn

from engine.config import AttentionConfig, ModelConfig
from engine.errors import ConfigError
from engine.models.components.attention import CBAMBlock, SEBlock
from engine.models.components.backbones import Backbone, build_backbone
from engine.models.components.flow import build_flow
from engine.models.components.patch_memory import PatchMemory, patch_vectors
from engine.models.components.whitening import shrinkage_whitener

logger = logging.getLogger(__name__)

# Values per channel that each pooling mode gives.
POOL_STATISTICS = {"mean": 1, "mean_max_std": 3}


def pool_map(stage_map: Tensor, mode: str) -> Tensor:
    """A stage map (B, C, H, W) as a vector: its spatial mean (B, C), or mean, maximum and
    spread (population standard deviation) per channel (B, 3C)."""
    if mode == "mean":
        return stage_map.mean(dim=(2, 3))
    flat = stage_map.flatten(2)
    return torch.cat([flat.mean(dim=2), flat.amax(dim=2), flat.std(dim=2, correction=0)], dim=1)


def build_attention(variant: str, channels: int, cfg: AttentionConfig) -> nn.Module:
    """The attention block of ``variant`` for a stage with ``channels`` channels."""
    if variant == "none":
        return nn.Identity()
    if variant == "se":
        return SEBlock(channels, reduction=cfg.se_reduction)
    if variant == "cbam":
        return CBAMBlock(
            channels,
            reduction=cfg.cbam_reduction,
            kernel_size=cfg.cbam_kernel,
            residual=cfg.cbam_residual,
        )
    raise ConfigError(f"model.variant={variant!r} is not one of: none, se, cbam")


class AttentDifferNetModel(nn.Module):
    """Multi-scale feature extractor with attention, and DifferNet's normalizing flow."""

    mean: Tensor
    std: Tensor
    feature_mean: Tensor
    feature_whitener: Tensor

    def __init__(self, config: ModelConfig, *, load_backbone_weights: bool = True) -> None:
        """Build the model; ``load_backbone_weights=False`` when a checkpoint fills it next."""
        super().__init__()
        self.config = config
        self.image_size = config.image_size
        self.scales = config.scales
        self.variant = config.variant
        self.backbone: Backbone = build_backbone(
            config.backbone, load_weights=load_backbone_weights
        )
        self.attention = nn.ModuleList(
            build_attention(config.variant, channels, config.attention)
            for channels in self.backbone.stage_channels
        )
        self.cam_anchor = nn.Identity()
        # Only AlexNet has pools; elsewhere both positions put the block right after the stage.
        self.attention_after_pool = config.attention.position == "post_pool"
        self.register_buffer("mean", _channel_vector(self.backbone.mean), persistent=False)
        self.register_buffer("std", _channel_vector(self.backbone.std), persistent=False)
        channels = self.backbone.stage_channels
        self.pooled_stages = range(len(channels)) if config.feature_stages == "all" else [-1]
        per_channel = POOL_STATISTICS[config.feature_pool]
        self.feature_dim = (
            config.scales * per_channel * sum(channels[k] for k in self.pooled_stages)
        )
        # The flow's input map x ↦ (x − mean)·Wᵀ (identity until set from training features);
        # persistent, so checkpoints carry it.
        self.register_buffer("feature_mean", torch.zeros(self.feature_dim))
        self.register_buffer("feature_whitener", torch.eye(self.feature_dim))
        self.flow: SequenceINN = build_flow(
            self.feature_dim, config.flow, seed=config.permutation_seed
        )
        self.patch_memory = PatchMemory(config.patch) if config.patch.enabled else None
        for parameter in self.attention.parameters():
            parameter.requires_grad_(self.attention_trainable)
        self._check_smallest_scale()
        logger.info(
            "AttentDifferNet: backbone=%s variant=%s position=%s feature_dim=%d trainable=%d",
            self.backbone.name,
            config.variant,
            config.attention.position,
            self.feature_dim,
            sum(p.numel() for p in self.trainable_parameters()),
        )

    @property
    def attention_trainable(self) -> bool:
        """Whether the attention blocks are trained with the flow (variant != none and asked)."""
        return self.variant != "none" and self.config.attention.train_attention

    @property
    def extractor_state_is_frozen(self) -> bool:
        """True when ``extract`` of a fixed input never changes during training (cache is valid)."""
        return not self.attention_trainable

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters to optimise: the flow's (not its permutations), plus attention if trained."""
        parameters = [p for p in self.flow.parameters() if p.requires_grad]
        if self.attention_trainable:
            parameters += [p for p in self.attention.parameters() if p.requires_grad]
        return parameters

    def train(self, mode: bool = True) -> AttentDifferNetModel:
        """Set train/eval mode; the backbone (and its BatchNorm) always stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    def normalize(self, x01: Tensor) -> Tensor:
        """Backbone normalisation of a [0, 1] image batch."""
        return (x01 - self.mean) / self.std

    def extract(self, x01: Tensor) -> Tensor:
        """Pooled multi-scale features (B, feature_dim) of a [0, 1] batch (B, 3, S, S)."""
        if x01.ndim != 4 or x01.shape[1] != 3:
            raise ValueError(
                "extract expects a (B, 3, H, W) float batch in [0, 1], "
                f"got shape {tuple(x01.shape)}"
            )
        normalized = self.normalize(x01)
        height, width = normalized.shape[-2:]
        pooled: list[Tensor] = []
        for scale in range(self.scales):
            if scale == 0:
                view = normalized
            else:
                size = (height // 2**scale, width // 2**scale)
                view = F.interpolate(normalized, size=size, mode="nearest")
            maps = self._scale_features(view, full_size=scale == 0)
            pooled += [pool_map(maps[k], self.config.feature_pool) for k in self.pooled_stages]
        return torch.cat(pooled, dim=1)

    def patch_vectors(self, x01: Tensor) -> Tensor:
        """Patch vectors (B, P, C) of a [0, 1] batch for the local term (backbone only)."""
        return patch_vectors(self.backbone, self.normalize(x01), self.config.patch.strides)

    def set_feature_statistics(self, features: Tensor) -> None:
        """Fit the flow's input map to training ``features`` (N, D) as ``flow_input`` says.

        ``standardize``: per-feature mean and spread; ``whiten``: mean and the inverse Cholesky
        factor of a Ledoit-Wolf shrinkage covariance, so ``‖input‖²`` is the squared Mahalanobis
        distance; ``raw``: nothing (identity).
        """
        mode = self.config.flow_input
        if mode == "raw":
            return
        values = features.detach().double()
        self.feature_mean.copy_(values.mean(dim=0))
        if mode == "standardize":
            scale = values.std(dim=0).clamp_min(1e-6)
            self.feature_whitener.copy_(torch.diag(1.0 / scale))
        else:
            self.feature_whitener.copy_(shrinkage_whitener(values))

    def flow_input(self, features: Tensor) -> Tensor:
        """The flow's input: ``(features − feature_mean)·feature_whitenerᵀ``.

        The map's log-determinant is a constant, left out of the flow's ``log_jac_det``.
        """
        centred = features - self.feature_mean.to(features.dtype)
        return centred @ self.feature_whitener.to(features.dtype).T

    def flow_forward(self, features: Tensor) -> tuple[Tensor, Tensor]:
        """Map features (B, D) to the latent ``z`` (B, D) and the log-Jacobian determinant (B,)."""
        z, log_jac_det = self.flow(self.flow_input(features))
        return z, log_jac_det

    def forward(self, x01: Tensor) -> tuple[Tensor, Tensor]:
        """``flow_forward(extract(x01))``."""
        return self.flow_forward(self.extract(x01))

    def _scale_features(self, x: Tensor, full_size: bool) -> list[Tensor]:
        """Every stage's output map (after its attention block and pool) at one scale."""
        last = len(self.backbone.stages) - 1
        parts = zip(self.backbone.stages, self.backbone.pools, self.attention, strict=True)
        maps: list[Tensor] = []
        for index, (stage, pool, attention) in enumerate(parts):
            anchor_here = full_size and index == last
            x = stage(x)
            if not self.attention_after_pool:
                x = attention(x)
            if anchor_here and not self._anchor_after_pool:
                x = self.cam_anchor(x)
            x = pool(x)
            if self.attention_after_pool:
                x = attention(x)
            if anchor_here and self._anchor_after_pool:
                x = self.cam_anchor(x)
            maps.append(x)
        return maps

    @property
    def _anchor_after_pool(self) -> bool:
        # Variant none has no block to hook after the pool: anchor the last conv stage's output.
        return self.attention_after_pool and self.variant != "none"

    def _check_smallest_scale(self) -> None:
        smallest = self.image_size // 2 ** (self.scales - 1)
        if smallest < self.backbone.min_input_size:
            logger.warning(
                "smallest scale is %d px, below the %d px %s needs to run as published "
                "(image_size=%d, scales=%d): its last pools are clipped; fine for smoke tests, "
                "not for real inspection",
                smallest,
                self.backbone.min_input_size,
                self.backbone.name,
                self.image_size,
                self.scales,
            )
        probe = torch.zeros(1, 3, smallest, smallest)
        try:
            with torch.no_grad():
                self._scale_features(probe, full_size=False)
        except RuntimeError as exc:
            raise ConfigError(
                f"model.image_size={self.image_size} with model.scales={self.scales} gives a "
                f"smallest scale of {smallest} px, too small for backbone "
                f"{self.backbone.name} ({exc}). Raise image_size or lower scales."
            ) from exc


def _channel_vector(values: tuple[float, ...]) -> Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)
