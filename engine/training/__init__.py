"""Training AttentDifferNet detectors on normal images."""

from engine.training.progress import TrainProgress
from engine.training.trainer import TrainResult, train

__all__ = ["TrainProgress", "TrainResult", "train"]
