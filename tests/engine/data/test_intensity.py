"""Per-image intensity normalisation: what each mode undoes, and what it keeps."""

from __future__ import annotations

import pytest
import torch

from engine.data.transforms import STANDARD_MEAN, STANDARD_STD, normalize_intensity


def _cells(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    gray = 0.2 + 0.6 * torch.rand(4, 1, 16, 16, generator=generator)
    return gray.expand(-1, 3, -1, -1).contiguous()


def test_none_returns_the_input_itself() -> None:
    x = _cells()
    assert normalize_intensity(x, "none") is x


def test_standardize_undoes_gain_and_offset() -> None:
    x = _cells()
    gain = torch.tensor([0.75, 1.2, 1.0, 0.9]).view(-1, 1, 1, 1)
    offset = torch.tensor([0.05, -0.1, 0.0, 0.08]).view(-1, 1, 1, 1)
    drifted = x * gain + offset  # no clipping: the drift stays inside [0, 1]
    assert drifted.min() >= 0 and drifted.max() <= 1
    torch.testing.assert_close(
        normalize_intensity(drifted, "standardize"), normalize_intensity(x, "standardize")
    )
    out = normalize_intensity(x, "standardize")
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), torch.full((4,), STANDARD_MEAN))
    torch.testing.assert_close(out.std(dim=(1, 2, 3)), torch.full((4,), STANDARD_STD))


def test_standardize_keeps_the_pattern() -> None:
    x = _cells()
    out = normalize_intensity(x, "standardize")
    for image, normalised in zip(x, out, strict=True):
        correlation = torch.corrcoef(torch.stack([image.flatten(), normalised.flatten()]))[0, 1]
        assert correlation > 0.999


def test_a_flat_image_does_not_divide_by_zero() -> None:
    flat = torch.full((1, 3, 8, 8), 0.5)
    assert torch.isfinite(normalize_intensity(flat, "standardize")).all()


def test_equalize_undoes_an_increasing_curve() -> None:
    x = _cells()
    curved = x.pow(2.2)  # a gamma curve: increasing, not affine
    torch.testing.assert_close(
        normalize_intensity(curved, "equalize"),
        normalize_intensity(x, "equalize"),
        atol=2e-2,
        rtol=0,
    )
    out = normalize_intensity(x, "equalize")
    assert out.min() >= 0 and out.max() <= 1
    # Ranks: the order of the values is kept.
    first = x[0, 0].flatten()
    ranked = out[0, 0].flatten()
    assert torch.all(ranked[first.argsort()].diff() >= 0)


def test_unknown_mode_and_wrong_input() -> None:
    with pytest.raises(ValueError, match="not one of"):
        normalize_intensity(_cells(), "histogram")
    with pytest.raises(ValueError, match="float"):
        normalize_intensity(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), "standardize")
