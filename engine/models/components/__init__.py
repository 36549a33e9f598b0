"""Building blocks of the models: attention blocks, backbones and the normalizing flow."""

from engine.models.components.attention import CBAMBlock, SEBlock
from engine.models.components.backbones import (
    PRETRAINED_FILES,
    Backbone,
    ClippedMaxPool2d,
    PretrainedFile,
    build_backbone,
    find_pretrained_weights,
    hub_checkpoint_path,
    resolve_weights_file,
    weights_status,
)
from engine.models.components.flow import (
    build_flow,
    count_parameters,
    differnet_clamp,
    subnet_constructor,
)

__all__ = [
    "PRETRAINED_FILES",
    "Backbone",
    "CBAMBlock",
    "ClippedMaxPool2d",
    "PretrainedFile",
    "SEBlock",
    "build_backbone",
    "build_flow",
    "count_parameters",
    "differnet_clamp",
    "find_pretrained_weights",
    "hub_checkpoint_path",
    "resolve_weights_file",
    "subnet_constructor",
    "weights_status",
]
