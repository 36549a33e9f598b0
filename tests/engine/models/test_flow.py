"""The flow: DifferNet's clamp, its structure, one coupling block in closed form, invertibility."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from FrEIA.modules import GLOWCouplingBlock, PermuteRandom
from torch import nn

from engine.config import FlowConfig
from engine.models.components.flow import build_flow, count_parameters, differnet_clamp


def test_differnet_clamp_is_atan_of_a_third() -> None:
    u = torch.tensor([0.0, 3.0, -3.0, 1e9])
    effective = 3.0 * differnet_clamp(u)  # what the coupling block multiplies the scale by
    expected = torch.tensor(
        [0.0, 3 * 0.636 * math.pi / 4, -3 * 0.636 * math.pi / 4, 3 * 0.636 * math.pi / 2]
    )
    torch.testing.assert_close(effective, expected)
    # FrEIA's default ATAN (0.636·atan(u)) is a different function.
    assert not torch.allclose(differnet_clamp(u[1:2]), 0.636 * torch.atan(u[1:2]))


def test_flow_alternates_seeded_permutations_and_glow_couplings() -> None:
    cfg = FlowConfig(coupling_blocks=3, subnet_hidden=16, subnet_layers=2, clamp=3.0)
    flow = build_flow(10, cfg, seed=7)
    assert len(flow) == 6
    for k in range(3):
        permute, coupling = flow[2 * k], flow[2 * k + 1]
        assert isinstance(permute, PermuteRandom)
        assert isinstance(coupling, GLOWCouplingBlock)
        expected = np.random.RandomState(7 + k).permutation(10)
        assert permute.perm.tolist() == expected.tolist()
        assert coupling.clamp == 3.0
        u = torch.linspace(-10, 10, 5)
        torch.testing.assert_close(coupling.f_clamp(u), differnet_clamp(u))


def test_subnet_layout() -> None:
    flow = build_flow(8, FlowConfig(coupling_blocks=1, subnet_hidden=12, subnet_layers=3))
    subnet = flow[1].subnet1  # 4 inputs → 2·4 outputs (scale and shift)
    kinds = [type(layer) for layer in subnet]
    assert kinds == [nn.Linear, nn.ReLU] * 3 + [nn.Linear]
    linears = [layer for layer in subnet if isinstance(layer, nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [
        (4, 12),
        (12, 12),
        (12, 12),
        (12, 8),
    ]


def test_building_a_flow_leaves_numpy_randomness_alone() -> None:
    np.random.seed(123)
    expected = np.random.rand(3)
    np.random.seed(123)
    build_flow(6, FlowConfig(coupling_blocks=2, subnet_hidden=4, subnet_layers=1))
    np.testing.assert_array_equal(np.random.rand(3), expected)


def test_one_coupling_block_matches_the_closed_form() -> None:
    torch.manual_seed(0)
    cfg = FlowConfig(coupling_blocks=1, subnet_hidden=16, subnet_layers=2, clamp=3.0)
    flow = build_flow(6, cfg, seed=0)
    permute, coupling = flow[0], flow[1]
    with torch.no_grad():  # large raw scales, so the soft clamp really acts
        for subnet in (coupling.subnet1, coupling.subnet2):
            subnet[-1].weight.mul_(20.0)
    x = torch.randn(5, 6)

    def soft_clamp(s: torch.Tensor) -> torch.Tensor:
        return 3.0 * 0.636 * torch.atan(s / 3.0)

    with torch.no_grad():
        permuted = x[:, permute.perm]
        x1, x2 = permuted[:, :3], permuted[:, 3:]
        a2 = coupling.subnet2(x2)
        s2, t2 = soft_clamp(a2[:, :3]), a2[:, 3:]
        y1 = torch.exp(s2) * x1 + t2
        a1 = coupling.subnet1(y1)
        s1, t1 = soft_clamp(a1[:, :3]), a1[:, 3:]
        y2 = torch.exp(s1) * x2 + t1
        raw_scales = torch.cat([a2[:, :3], a1[:, :3]], dim=1)

        z, log_jac_det = flow(x)
        x_back, log_jac_det_rev = flow(z, rev=True)

    assert raw_scales.abs().max() > 3.0  # the clamp is exercised
    torch.testing.assert_close(z, torch.cat([y1, y2], dim=1))
    torch.testing.assert_close(log_jac_det, s2.sum(dim=1) + s1.sum(dim=1))
    torch.testing.assert_close(x_back, x, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(log_jac_det_rev, -log_jac_det)


def test_whole_flow_is_invertible() -> None:
    torch.manual_seed(3)
    flow = build_flow(12, FlowConfig(coupling_blocks=4, subnet_hidden=32, subnet_layers=2))
    x = torch.randn(7, 12)
    with torch.no_grad():
        z, log_jac_det = flow(x)
        x_back, log_jac_det_rev = flow(z, rev=True)
    assert z.shape == x.shape and log_jac_det.shape == (7,)
    torch.testing.assert_close(x_back, x, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(log_jac_det_rev, -log_jac_det, atol=1e-4, rtol=1e-4)


def test_permutations_are_not_trainable() -> None:
    flow = build_flow(6, FlowConfig(coupling_blocks=2, subnet_hidden=4, subnet_layers=1))
    permutation_values = sum(p.numel() for p in flow.parameters() if not p.requires_grad)
    assert permutation_values == 2 * 2 * 6  # perm and perm_inv per block
    assert count_parameters(flow) == count_parameters(flow, trainable_only=False) - 24


@pytest.mark.slow
def test_default_flow_on_768_dims_has_about_172_million_parameters() -> None:
    flow = build_flow(768, FlowConfig())
    half, hidden = 384, 2048
    per_subnet = (half * hidden + hidden) + 2 * (hidden * hidden + hidden) + (hidden * 768 + 768)
    assert count_parameters(flow) == 8 * 2 * per_subnet == 172_077_056
