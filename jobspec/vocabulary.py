"""Names of presets, backbones, attention variants, heatmap methods and job kinds: add one here.

A new preset also needs its config in ``engine/presets.py``, a new backbone its model code in
``engine/models/components/backbones.py``, a new job kind its task in ``worker/``.
"""

from __future__ import annotations

from enum import StrEnum


class Preset(StrEnum):
    """A named schedule (and, for ``fast``, the measured recommendations)."""

    FAST = "fast"
    PAPER = "paper"
    TINY = "tiny"


PRESET_HELP: dict[Preset, str] = {
    Preset.FAST: "the studio's default, measured on ELPV: 224 px, whitened flow input, dihedral "
    "views, a patch term for small defects (minutes on a CPU)",
    Preset.PAPER: "the paper exactly: 448 px, 192 epochs, 64 test views, raw features (hours on "
    "a CPU)",
    Preset.TINY: "a smoke test: 64 px, 2 epochs, a small flow (seconds; not for real inspection)",
}


# Test views a preset can score with: ``fast`` uses the 8 flips and quarter turns of the image.
MAX_TEST_VIEWS: dict[Preset, int] = {Preset.FAST: 8, Preset.PAPER: 64, Preset.TINY: 64}


class Backbone(StrEnum):
    """A frozen ImageNet feature extractor, in the order people are offered them: the first two
    work offline (their weights ship in a Python package), AlexNet (the paper's) needs its weights
    file supplied (``adn weights``)."""

    MOBILENET_V2 = "mobilenet_v2"
    EFFICIENTNET_LITE0 = "efficientnet_lite0"
    ALEXNET = "alexnet"


class Variant(StrEnum):
    """The attention variant of an AttentDifferNet model."""

    NONE = "none"
    SE = "se"
    CBAM = "cbam"


VARIANT_NAMES: dict[Variant, str] = {
    Variant.NONE: "no attention",
    Variant.SE: "SENet",
    Variant.CBAM: "CBAM",
}


class HeatmapMethod(StrEnum):
    """How a heatmap of where an image raises the anomaly score is computed."""

    LAYERCAM_STAGES = "layercam_stages"
    GRADCAM_STAGES = "gradcam_stages"
    GRADCAM = "gradcam"
    INPUT_GRADIENT = "input_gradient"


HEATMAP_METHOD_NAMES: dict[HeatmapMethod, str] = {
    HeatmapMethod.LAYERCAM_STAGES: "LayerCAM, every stage",
    HeatmapMethod.GRADCAM_STAGES: "Grad-CAM, every stage",
    HeatmapMethod.GRADCAM: "Grad-CAM, last stage",
    HeatmapMethod.INPUT_GRADIENT: "input gradient",
}

# The best localisation of planted ELPV defects for every variant (bench/results/heatmaps.md).
DEFAULT_HEATMAP_METHOD = HeatmapMethod.LAYERCAM_STAGES


class JobKind(StrEnum):
    """What a background job does."""

    TRAIN = "train"
    SCORE = "score"


# The worker queues: long GPU work, and light housekeeping (the sweep).
GPU_QUEUE = "gpu"
LIGHT_QUEUE = "light"
# The queue each job kind waits in; a new kind names its queue here.
QUEUE_OF_KIND: dict[JobKind, str] = {JobKind.TRAIN: GPU_QUEUE, JobKind.SCORE: GPU_QUEUE}


def values_of(enum: type[StrEnum]) -> tuple[str, ...]:
    """The values of a string enum, in declaration order."""
    return tuple(member.value for member in enum)
