"""AttentDifferNet: DifferNet's normalizing flow on multi-scale CNN features with SE/CBAM attention.

The public surface::

    from engine import DetectorConfig, train, load_detector

    result = train(DetectorConfig(), ["good/001.png", ...])
    detector = result.detector
    batch = detector.score(["test/002.png"])          # scores, verdicts, percentiles
    heatmap = detector.explain("test/002.png")        # float32 in [0, 1]
    heatmap = detector.explain("test/002.png", method="input_gradient")  # see HEATMAP_METHODS
    detector.save("widget-se.adn")
    detector = load_detector("widget-se.adn")

Results hold numpy arrays and floats, never tensors.
"""

from engine.calibration import Calibration
from engine.config import (
    AttentionConfig,
    BackboneConfig,
    DetectorConfig,
    FlowConfig,
    ModelConfig,
    ScoreConfig,
    TrainConfig,
)
from engine.detector import Detector, ScoreBatch, ScoreResult, load_detector
from engine.errors import (
    CheckpointError,
    ConfigError,
    DatasetError,
    EngineError,
    FeatureCollapseError,
    ImageLoadError,
    TrainingCancelled,
    WeightsNotFoundError,
)
from engine.evaluation import AurocResult, auroc_with_ci, format_auroc_table
from engine.models.attentdiffernet.heatmaps import DEFAULT_HEATMAP_METHOD, HEATMAP_METHODS
from engine.training import TrainProgress, TrainResult, train
from engine.visualize import heatmap_from_png, heatmap_to_png, overlay_heatmap

__all__ = [
    "DEFAULT_HEATMAP_METHOD",
    "HEATMAP_METHODS",
    "AttentionConfig",
    "AurocResult",
    "BackboneConfig",
    "Calibration",
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "Detector",
    "DetectorConfig",
    "EngineError",
    "FeatureCollapseError",
    "FlowConfig",
    "ImageLoadError",
    "ModelConfig",
    "ScoreBatch",
    "ScoreConfig",
    "ScoreResult",
    "TrainConfig",
    "TrainProgress",
    "TrainResult",
    "TrainingCancelled",
    "WeightsNotFoundError",
    "auroc_with_ci",
    "format_auroc_table",
    "heatmap_from_png",
    "heatmap_to_png",
    "load_detector",
    "overlay_heatmap",
    "train",
]
