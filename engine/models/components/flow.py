"""DifferNet's normalizing flow: FrEIA ``SequenceINN`` of random permutations and GLOW couplings.

Each coupling block scales by ``exp(clamp · differnet_clamp(s))`` where
``differnet_clamp(u) = 0.636 · atan(u / clamp)``: with the default ``clamp = 3`` the effective soft
clamp is ``3 · 0.636 · atan(s / 3)`` as in DifferNet, not FrEIA's default ``3 · 0.636 · atan(s)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
from FrEIA.framework import SequenceINN
from FrEIA.modules import GLOWCouplingBlock, PermuteRandom
from torch import Tensor, nn

from engine.config import FlowConfig

SubnetConstructor = Callable[[int, int], nn.Module]


def differnet_clamp(u: Tensor, clamp: float = 3.0) -> Tensor:
    """DifferNet's clamp activation ``0.636·atan(u / clamp)``; FrEIA multiplies it by ``clamp``."""
    return 0.636 * torch.atan(u / clamp)


def subnet_constructor(hidden: int, layers: int, zero_init: bool = False) -> SubnetConstructor:
    """FrEIA subnet factory: ``layers`` × (Linear → ReLU) of width ``hidden``, then Linear.

    With ``zero_init`` the output layer starts at zero: the coupling's scale is ``exp(0) = 1`` and
    its shift 0, so the untrained block is the identity.
    """

    def build(dims_in: int, dims_out: int) -> nn.Module:
        modules: list[nn.Module] = []
        width = dims_in
        for _ in range(layers):
            modules += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        output = nn.Linear(width, dims_out)
        if zero_init:
            nn.init.zeros_(output.weight)
            nn.init.zeros_(output.bias)
        modules.append(output)
        return nn.Sequential(*modules)

    return build


def build_flow(dims: int, cfg: FlowConfig, seed: int = 0) -> SequenceINN:
    """``cfg.coupling_blocks`` × (``PermuteRandom(seed + k)``, ``GLOWCouplingBlock``) on ``dims``.

    ``PermuteRandom`` reseeds numpy's global generator; its state is restored afterwards so
    building a flow does not change other numpy randomness.
    """
    if dims < 2:
        raise ValueError(f"a coupling flow needs at least 2 dimensions, got {dims}")
    clamp_activation = functools.partial(differnet_clamp, clamp=cfg.clamp)
    subnet = subnet_constructor(cfg.subnet_hidden, cfg.subnet_layers, cfg.zero_init)
    flow = SequenceINN(dims)
    numpy_state = np.random.get_state()
    try:
        for k in range(cfg.coupling_blocks):
            flow.append(PermuteRandom, seed=seed + k)
            flow.append(
                GLOWCouplingBlock,
                subnet_constructor=subnet,
                clamp=cfg.clamp,
                clamp_activation=clamp_activation,
            )
    finally:
        np.random.set_state(numpy_state)
    return flow


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters (only those with ``requires_grad`` by default)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
