"""SE and CBAM blocks: the gates equal a manual computation, shapes are kept, nothing in place."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.models.components.attention import CBAMBlock, SEBlock


def test_se_gate_equals_manual_computation() -> None:
    torch.manual_seed(0)
    block = SEBlock(8, reduction=2)
    x = torch.randn(3, 8, 5, 4)

    squeezed = x.mean(dim=(2, 3))
    hidden = torch.relu(squeezed @ block.fc1.weight.T + block.fc1.bias)
    gate = torch.sigmoid(hidden @ block.fc2.weight.T + block.fc2.bias)

    assert block.fc1.out_features == 4
    torch.testing.assert_close(block.gate(x), gate[:, :, None, None])
    torch.testing.assert_close(block(x), x * gate[:, :, None, None])


def test_hidden_width_is_at_least_one() -> None:
    assert SEBlock(3, reduction=16).fc1.out_features == 1
    assert CBAMBlock(4, reduction=16).mlp[0].out_features == 1
    assert CBAMBlock(64, reduction=16).mlp[0].out_features == 4


def _manual_cbam_gated(block: CBAMBlock, x: torch.Tensor) -> torch.Tensor:
    first, second = block.mlp[0], block.mlp[2]

    def mlp(v: torch.Tensor) -> torch.Tensor:
        return torch.relu(v @ first.weight.T + first.bias) @ second.weight.T + second.bias

    channel = torch.sigmoid(mlp(x.mean(dim=(2, 3))) + mlp(x.amax(dim=(2, 3))))
    after_channels = x * channel[:, :, None, None]
    stacked = torch.stack(
        [after_channels.amax(dim=1), after_channels.mean(dim=1)], dim=1
    )  # [channel-max, channel-mean]
    spatial = torch.sigmoid(F.conv2d(stacked, block.spatial.weight, padding=block.kernel_size // 2))
    return after_channels * spatial


@pytest.mark.parametrize("residual", [True, False])
def test_cbam_equals_manual_computation(residual: bool) -> None:
    torch.manual_seed(1)
    block = CBAMBlock(32, reduction=16, kernel_size=7, residual=residual)
    x = torch.randn(2, 32, 9, 11)
    gated = _manual_cbam_gated(block, x)
    expected = x + gated if residual else gated
    torch.testing.assert_close(block(x), expected)


def test_cbam_residual_switch_adds_the_input() -> None:
    torch.manual_seed(2)
    with_residual = CBAMBlock(16, reduction=4, kernel_size=3, residual=True)
    without = CBAMBlock(16, reduction=4, kernel_size=3, residual=False)
    without.load_state_dict(with_residual.state_dict())
    x = torch.randn(2, 16, 6, 6)
    torch.testing.assert_close(with_residual(x), x + without(x))


@pytest.mark.parametrize(
    "block",
    [
        SEBlock(6),
        SEBlock(6, reduction=16),
        CBAMBlock(6),
        CBAMBlock(6, kernel_size=49, residual=False),
    ],
    ids=["se-r2", "se-r16", "cbam-k7", "cbam-k49-plain"],
)
def test_shape_is_kept_and_nothing_is_in_place(block: torch.nn.Module) -> None:
    x = torch.randn(2, 6, 3, 5, requires_grad=True)
    before = x.detach().clone()
    out = block(x)
    assert out.shape == x.shape
    torch.testing.assert_close(x.detach(), before)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in block.parameters())


def test_cbam_rejects_an_even_kernel() -> None:
    with pytest.raises(ValueError, match="odd"):
        CBAMBlock(8, kernel_size=6)
