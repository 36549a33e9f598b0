"""The engine's models: AttentDifferNet and its components."""

from engine.models.attentdiffernet import AttentDifferNetModel, anomaly_score, nll_loss
from engine.models.components import (
    Backbone,
    CBAMBlock,
    SEBlock,
    build_backbone,
    build_flow,
    differnet_clamp,
    weights_status,
)

__all__ = [
    "AttentDifferNetModel",
    "Backbone",
    "CBAMBlock",
    "SEBlock",
    "anomaly_score",
    "build_backbone",
    "build_flow",
    "differnet_clamp",
    "nll_loss",
    "weights_status",
]
