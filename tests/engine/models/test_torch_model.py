"""AttentDifferNetModel: feature sizes, scale handling, attention placement, the Grad-CAM anchor,
and which parameters train."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from FrEIA.modules import PermuteRandom
from torch import nn

from engine.config import BACKBONES, AttentionConfig, BackboneConfig, FlowConfig, ModelConfig
from engine.errors import ConfigError
from engine.models.attentdiffernet.loss import nll_loss
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel, pool_map
from engine.models.components.attention import CBAMBlock, SEBlock

# AlexNet runs as published from 63 px per scale: 256 px keeps all three scales above it.
SIZE = {"alexnet": 256, "mobilenet_v2": 64, "efficientnet_lite0": 64}
PER_SCALE = {"alexnet": 256, "mobilenet_v2": 320, "efficientnet_lite0": 320}


def _model(
    small_flow: FlowConfig,
    variant: str = "none",
    backbone: str = "alexnet",
    position: str = "pre_pool",
    train_attention: bool = False,
    **model_overrides: object,
) -> AttentDifferNetModel:
    config = ModelConfig(
        variant=variant,  # type: ignore[arg-type]
        backbone=BackboneConfig(name=backbone, weights="random"),  # type: ignore[arg-type]
        attention=AttentionConfig(position=position, train_attention=train_attention),  # type: ignore[arg-type]
        flow=small_flow,
        image_size=SIZE[backbone],
    )
    return AttentDifferNetModel(dataclasses.replace(config, **model_overrides))


@pytest.mark.parametrize("position", ["pre_pool", "post_pool"])
@pytest.mark.parametrize("variant", ["none", "se", "cbam"])
@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_combination_builds_with_the_right_feature_dim(
    small_flow: FlowConfig, backbone: str, variant: str, position: str
) -> None:
    torch.manual_seed(0)
    model = _model(small_flow, variant, backbone, position)
    assert model.feature_dim == 3 * PER_SCALE[backbone]
    expected_block = {"none": nn.Identity, "se": SEBlock, "cbam": CBAMBlock}[variant]
    assert all(isinstance(block, expected_block) for block in model.attention)
    with torch.no_grad():
        z, log_jac_det = model(torch.rand(1, 3, SIZE[backbone], SIZE[backbone]))
    assert z.shape == (1, model.feature_dim) and log_jac_det.shape == (1,)
    assert torch.isfinite(z).all() and torch.isfinite(log_jac_det).all()


def test_attention_settings_reach_the_blocks(small_flow: FlowConfig) -> None:
    attention = AttentionConfig(
        se_reduction=16, cbam_reduction=8, cbam_kernel=3, cbam_residual=False
    )
    se = _model(small_flow, "se", "mobilenet_v2", attention=attention)
    assert [block.fc1.out_features for block in se.attention] == [1, 6, 20]  # 24, 96, 320 // 16
    cbam = _model(small_flow, "cbam", "mobilenet_v2", attention=attention)
    assert [block.mlp[0].out_features for block in cbam.attention] == [3, 12, 40]
    assert all(block.kernel_size == 3 and not block.residual for block in cbam.attention)


def _manual_features(
    model: AttentDifferNetModel, x01: torch.Tensor, post_pool: bool
) -> torch.Tensor:
    mean = torch.tensor(model.backbone.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.backbone.std).view(1, 3, 1, 1)
    normalized = (x01 - mean) / std
    size = x01.shape[-1]
    vectors = []
    for scale in range(3):
        x = (
            F.interpolate(normalized, size=size // 2**scale, mode="nearest")
            if scale
            else normalized
        )
        for stage, pool, block in zip(
            model.backbone.stages, model.backbone.pools, model.attention, strict=True
        ):
            x = stage(x)
            x = block(pool(x)) if post_pool else pool(block(x))
        vectors.append(x.mean(dim=(2, 3)))
    return torch.cat(vectors, dim=1)


@pytest.mark.parametrize(
    ("variant", "backbone", "position"),
    [
        ("none", "alexnet", "pre_pool"),
        ("se", "alexnet", "pre_pool"),
        ("se", "alexnet", "post_pool"),
        ("cbam", "alexnet", "post_pool"),
        ("cbam", "mobilenet_v2", "pre_pool"),
    ],
)
def test_extract_equals_the_manual_multi_scale_pipeline(
    small_flow: FlowConfig, variant: str, backbone: str, position: str
) -> None:
    torch.manual_seed(1)
    model = _model(small_flow, variant, backbone, position)
    x01 = torch.rand(2, 3, SIZE[backbone], SIZE[backbone])
    with torch.no_grad():
        expected = _manual_features(model, x01, post_pool=position == "post_pool")
        torch.testing.assert_close(model.extract(x01), expected)


def test_pre_and_post_pool_differ_for_alexnet(small_flow: FlowConfig) -> None:
    torch.manual_seed(2)
    pre = _model(small_flow, "cbam", "alexnet", "pre_pool")
    post = _model(small_flow, "cbam", "alexnet", "post_pool")
    post.load_state_dict(pre.state_dict())
    x01 = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        assert not torch.allclose(pre.extract(x01), post.extract(x01))


@pytest.mark.parametrize(
    ("variant", "backbone", "position", "spatial"),
    [
        ("none", "alexnet", "pre_pool", 15),  # conv5's ReLU output at 256 px
        ("none", "alexnet", "post_pool", 15),  # no block after the pool: still the last ReLU
        ("se", "alexnet", "pre_pool", 15),
        ("cbam", "alexnet", "post_pool", 7),  # after pool5
        ("se", "mobilenet_v2", "pre_pool", 2),  # 64 px / 32; smaller scales would be 1×1
        ("cbam", "efficientnet_lite0", "post_pool", 2),
    ],
)
def test_cam_anchor_fires_once_on_the_full_size_map(
    small_flow: FlowConfig, variant: str, backbone: str, position: str, spatial: int
) -> None:
    model = _model(small_flow, variant, backbone, position)
    seen: list[torch.Tensor] = []
    handle = model.cam_anchor.register_forward_hook(lambda _m, _i, out: seen.append(out))
    x01 = torch.rand(2, 3, SIZE[backbone], SIZE[backbone])
    with torch.no_grad():
        model.extract(x01)
    handle.remove()
    assert len(seen) == 1
    assert seen[0].shape == (2, PER_SCALE[backbone], spatial, spatial)
    if variant == "none":  # the last conv stage's activation, before any pool
        with torch.no_grad():
            x = model.normalize(x01)
            for stage, pool in zip(
                model.backbone.stages[:2], model.backbone.pools[:2], strict=True
            ):
                x = pool(stage(x))
            torch.testing.assert_close(seen[0], model.backbone.stages[2](x))


def test_anchor_map_gets_gradients_from_the_score(small_flow: FlowConfig) -> None:
    model = _model(small_flow, "se", "mobilenet_v2")
    grads: list[torch.Tensor] = []

    def keep_gradient(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        output.register_hook(grads.append)

    model.cam_anchor.register_forward_hook(keep_gradient)
    x01 = torch.rand(1, 3, 64, 64, requires_grad=True)
    z, _ = model(x01)
    (z**2).sum().backward()
    assert len(grads) == 1 and grads[0].abs().sum() > 0


def test_trainable_parameters_without_attention_training(small_flow: FlowConfig) -> None:
    model = _model(small_flow, "se", "mobilenet_v2", train_attention=False)
    assert not model.attention_trainable and model.extractor_state_is_frozen
    assert all(not p.requires_grad for p in model.attention.parameters())
    trainable = {id(p) for p in model.trainable_parameters()}
    permutations = {
        id(p) for m in model.flow.modules() if isinstance(m, PermuteRandom) for p in m.parameters()
    }
    assert permutations and not trainable & permutations
    assert not trainable & {id(p) for p in model.attention.parameters()}
    flow_weights = {id(p) for p in model.flow.parameters() if p.requires_grad}
    assert trainable == flow_weights


@pytest.mark.parametrize("variant", ["se", "cbam"])
def test_trained_attention_is_in_the_optimiser_and_gets_gradients(
    small_flow: FlowConfig, variant: str
) -> None:
    model = _model(small_flow, variant, "mobilenet_v2", train_attention=True)
    assert model.attention_trainable and not model.extractor_state_is_frozen
    trainable = {id(p) for p in model.trainable_parameters()}
    attention = [p for p in model.attention.parameters()]
    assert attention and all(p.requires_grad and id(p) in trainable for p in attention)
    z, log_jac_det = model(torch.rand(2, 3, 64, 64))
    nll_loss(z, log_jac_det).backward()
    assert all(p.grad is not None for p in attention)
    assert all(p.grad is None for p in model.backbone.parameters())


def test_variant_none_never_trains_attention(small_flow: FlowConfig) -> None:
    model = _model(small_flow, "none", "mobilenet_v2", train_attention=True)
    assert not model.attention_trainable and model.extractor_state_is_frozen
    assert not list(model.attention.parameters())


def test_train_mode_keeps_the_backbone_in_eval(small_flow: FlowConfig) -> None:
    model = _model(small_flow, "cbam", "efficientnet_lite0")
    model.train()
    assert model.training and model.flow.training and model.attention.training
    assert not any(m.training for m in model.backbone.modules())
    norms = [m for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(m.training for m in norms)
    model.eval()
    assert not any(m.training for m in model.modules())
    assert all(not p.requires_grad for p in model.backbone.parameters())
    assert not [m for m in model.modules() if getattr(m, "inplace", False)]


def test_features_of_a_fixed_input_do_not_change_in_train_mode(small_flow: FlowConfig) -> None:
    model = _model(small_flow, "se", "mobilenet_v2")
    x01 = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        model.eval()
        before = model.extract(x01)
        model.train()
        model.extract(torch.rand(4, 3, 64, 64))
        torch.testing.assert_close(model.extract(x01), before)


def test_permutation_seed_offsets_every_block(small_flow: FlowConfig) -> None:
    model = _model(small_flow, "none", "mobilenet_v2", permutation_seed=5)
    permutations = [m for m in model.flow if isinstance(m, PermuteRandom)]
    for k, permute in enumerate(permutations):
        expected = np.random.RandomState(5 + k).permutation(model.feature_dim)
        assert permute.perm.tolist() == expected.tolist()


def test_state_dict_round_trip_rebuilds_the_same_model(small_flow: FlowConfig) -> None:
    torch.manual_seed(3)
    first = _model(small_flow, "cbam", "mobilenet_v2")
    torch.manual_seed(4)
    second = _model(small_flow, "cbam", "mobilenet_v2")
    second.load_state_dict(first.state_dict(), strict=True)
    x01 = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(first(x01), second(x01), strict=True):
            torch.testing.assert_close(a, b)


def test_small_alexnet_input_runs_with_a_warning(
    small_flow: FlowConfig, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"):
        model = _model(small_flow, "se", "alexnet", image_size=64)
    assert any("clipped" in record.message for record in caplog.records)
    with torch.no_grad():
        assert model.extract(torch.rand(1, 3, 64, 64)).shape == (1, 768)


def test_too_small_image_is_a_config_error(small_flow: FlowConfig) -> None:
    with pytest.raises(ConfigError, match="image_size"):
        _model(small_flow, "none", "alexnet", image_size=32, scales=4)


def test_extract_rejects_a_wrong_input_shape(small_flow: FlowConfig) -> None:
    model = _model(small_flow, "none", "mobilenet_v2")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model.extract(torch.rand(3, 64, 64))


def test_mean_max_std_pooling_gives_each_channels_mean_maximum_and_spread() -> None:
    stage_map = torch.tensor([[[[0.0, 2.0], [4.0, 6.0]], [[1.0, 1.0], [1.0, 1.0]]]])
    pooled = pool_map(stage_map, "mean_max_std")
    expected = [3.0, 1.0, 6.0, 1.0, float(np.std([0.0, 2.0, 4.0, 6.0])), 0.0]
    torch.testing.assert_close(pooled, torch.tensor([expected]))
    torch.testing.assert_close(pool_map(stage_map, "mean"), torch.tensor([[3.0, 1.0]]))


def test_mean_max_std_pooling_triples_the_feature_dim(small_flow: FlowConfig) -> None:
    plain = _model(small_flow, "none", "mobilenet_v2", "pre_pool", feature_stages="all")
    pooled = _model(
        small_flow,
        "none",
        "mobilenet_v2",
        "pre_pool",
        feature_stages="all",
        feature_pool="mean_max_std",
    )
    assert pooled.feature_dim == 3 * plain.feature_dim
    with torch.no_grad():
        features = pooled.extract(torch.rand(2, 3, 64, 64))
    assert features.shape == (2, pooled.feature_dim) and torch.isfinite(features).all()
