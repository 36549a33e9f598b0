"""AttentDifferNet: the torch model and its loss (the heatmap methods are in ``heatmaps``)."""

from engine.models.attentdiffernet.loss import anomaly_score, nll_loss
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel, build_attention

__all__ = ["AttentDifferNetModel", "anomaly_score", "build_attention", "nll_loss"]
