"""Options shared by several ``adn`` commands, and turning them into configs and data."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from engine.config import BACKBONES, VARIANTS, AttentionConfig, DetectorConfig
from engine.data.elpv import make_elpv_split
from engine.data.sources import ImageRecord, folder_records, mvtec_split
from engine.errors import ConfigError, DatasetError
from engine.presets import PRESETS, apply_overrides, detector_config, model_for
from jobspec import JobSpecError, Overrides


def add_model_options(parser: argparse.ArgumentParser, *, several_variants: bool = False) -> None:
    """Architecture and schedule options."""
    group = parser.add_argument_group("model")
    if several_variants:
        group.add_argument(
            "--variants",
            nargs="+",
            choices=VARIANTS,
            default=list(VARIANTS),
            help="attention variants to compare (default: all three)",
        )
    else:
        group.add_argument(
            "--variant",
            choices=VARIANTS,
            default="none",
            help="attention: none (DifferNet), se (SENet blocks) or cbam (CBAM blocks)",
        )
    group.add_argument(
        "--backbone",
        choices=BACKBONES,
        default="mobilenet_v2",
        help="feature extractor; alexnet is the paper's and needs its ImageNet weights file "
        "(see `adn weights`); mobilenet_v2 and efficientnet_lite0 work offline",
    )
    group.add_argument(
        "--weights",
        choices=["imagenet", "random"],
        default="imagenet",
        help="pretrained ImageNet weights (default) or random initialisation",
    )
    group.add_argument("--weights-path", help="explicit backbone weights file (.pth)")
    group.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="fast",
        help="schedule: " + "; ".join(f"{k}: {v}" for k, v in PRESETS.items()),
    )
    group.add_argument("--epochs", type=int, help="override the preset's number of epochs")
    group.add_argument("--image-size", type=int, help="override the input size in pixels")
    group.add_argument("--cache-views", type=int, help="cached rotations per training image")
    group.add_argument("--test-views", type=int, help="rotations averaged per test image")
    group.add_argument(
        "--train-attention",
        action="store_true",
        help="train the attention blocks with the flow (convolutions stay frozen)",
    )
    group.add_argument(
        "--no-feature-cache",
        action="store_true",
        help="recompute features for every batch (DifferNet's original procedure)",
    )
    group.add_argument("--seed", type=int, default=0, help="seed of splits, augmentation and init")
    group.add_argument(
        "--device", default="auto", help="auto (CUDA, then MPS, then CPU), cuda, cpu"
    )
    group.add_argument(
        "--config",
        type=Path,
        help="a config JSON (as stored with a model); the options above then only "
        "override what they name explicitly",
    )


def config_from_args(args: argparse.Namespace, variant: str | None = None) -> DetectorConfig:
    """A :class:`DetectorConfig` from the preset, an optional JSON file and the overrides."""
    try:
        overrides = Overrides(
            epochs=args.epochs,
            image_size=args.image_size,
            test_views=args.test_views,
            cache_views_per_image=args.cache_views,
            seed=args.seed,
        )
    except JobSpecError as exc:
        raise ConfigError(str(exc)) from exc
    model = model_for(
        variant or args.variant, args.backbone, args.weights, weights_path=args.weights_path
    )
    model = dataclasses.replace(
        model, attention=AttentionConfig(train_attention=args.train_attention)
    )
    if args.config:
        stored = DetectorConfig.from_json(args.config.read_text())
        base = stored.replace(model=dataclasses.replace(stored.model, variant=model.variant))
        config = apply_overrides(base, overrides, args.device)
    else:
        config = detector_config(args.preset, model, overrides, args.device)
    if args.no_feature_cache:
        config = config.replace(train=dataclasses.replace(config.train, feature_cache=False))
    return config


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Where the images come from."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data",
        type=Path,
        help="an MVTec-AD-style root (with --category) or a folder of normal images",
    )
    group.add_argument("--category", help="category folder under an MVTec-AD-style --data root")
    group.add_argument(
        "--elpv",
        choices=["mono", "poly"],
        help="use the ELPV solar-cell set (pip package elpv-dataset), this cell type",
    )
    group.add_argument("--split-seed", type=int, default=0, help="seed of the ELPV split")


@dataclasses.dataclass(frozen=True)
class LabelledData:
    """Training (normal) and test (labelled) records of one category."""

    category: str
    train: list[ImageRecord]
    test: list[ImageRecord]


def resolve_data(args: argparse.Namespace, *, need_test: bool) -> LabelledData:
    """Records for ``--elpv``, ``--data --category`` or a plain ``--data`` folder."""
    if args.elpv:
        split = make_elpv_split(args.elpv, seed=args.split_seed)
        return LabelledData(f"elpv_{args.elpv}", list(split.train), list(split.test))
    if args.data is None:
        raise DatasetError("say where the images are: --data DIR [--category NAME] or --elpv TYPE")
    if args.category:
        category = mvtec_split(args.data, args.category)
        return LabelledData(args.category, list(category.train), list(category.test))
    if need_test:
        raise DatasetError(
            "evaluation needs labelled test images: give an MVTec-AD-style root with --category, "
            "or --elpv"
        )
    return LabelledData(args.data.name, folder_records(args.data, label=0), [])
