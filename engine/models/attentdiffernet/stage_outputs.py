"""The anomaly score of the full-size pass together with each stage's output map, on one graph.

Each attention block (``nn.Identity`` for variant ``none``) sees its stage's output; a forward
hook keeps the first call of every block, which is the full-size pass (scale 0 runs first). The
backbone is frozen, so the input is made to require grad, which puts every map on the graph.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from engine.models.attentdiffernet.torch_model import AttentDifferNetModel


@dataclass(frozen=True)
class ScoredPass:
    """One forward pass: the input (requires grad), its score Σz² (B,), every stage's map."""

    x01: torch.Tensor
    score: torch.Tensor
    stage_maps: list[torch.Tensor]  # B×C×h×w each, shallowest first


def scored_pass(model: AttentDifferNetModel, x01: torch.Tensor) -> ScoredPass:
    """Run ``model`` on full-size inputs with grad on, keeping the stage maps of scale 0.

    Call it inside ``torch.enable_grad()`` with the model in eval mode.
    """
    x01 = x01.detach().clone().requires_grad_(True)
    captured: dict[int, torch.Tensor] = {}

    def keeper(index: int) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            captured.setdefault(index, output)

        return hook

    handles = [
        block.register_forward_hook(keeper(index)) for index, block in enumerate(model.attention)
    ]
    try:
        z, _ = model(x01)
    finally:
        for handle in handles:
            handle.remove()
    score = (z.float() ** 2).sum(dim=1)
    return ScoredPass(x01, score, [captured[i] for i in sorted(captured)])
