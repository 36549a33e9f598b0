"""Watch the feature variance while attention is trained, and stop or warn when it collapses."""

from __future__ import annotations

import logging

import torch

from engine.errors import FeatureCollapseError

logger = logging.getLogger(__name__)


class CollapseGuard:
    """Compares each batch's feature variance with the first batch's.

    Training the extractor on the flow's likelihood alone can shrink the features toward a
    constant (the likelihood rises with no penalty). When the mean per-dimension variance falls
    below ``ratio`` times its starting value, the guard raises (``stop``) or logs once (``warn``).
    """

    def __init__(self, ratio: float, action: str) -> None:
        self.ratio = ratio
        self.action = action
        self.reference: float | None = None
        self.warning: str | None = None

    def check(self, features: torch.Tensor, epoch: int) -> None:
        """Inspect one batch of features (B×D)."""
        variance = float(features.detach().float().var(dim=0).mean())
        if self.reference is None:
            self.reference = max(variance, 1e-12)
            logger.info("collapse guard: reference feature variance %.4g", self.reference)
            return
        if variance >= self.ratio * self.reference or self.warning is not None:
            return
        message = (
            f"feature collapse at epoch {epoch}: feature variance fell to {variance:.3g}, below "
            f"{self.ratio:g} × its start value {self.reference:.3g}; trained attention is "
            "shrinking the features. Train with train_attention=False (the default) or a lower "
            "learning rate."
        )
        if self.action == "stop":
            raise FeatureCollapseError(message)
        self.warning = message
        logger.warning(message)
