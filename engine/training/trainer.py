"""Training loop: normal images only, paper schedule, feature cache for frozen extractors."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.calibration import Calibration
from engine.config import DetectorConfig
from engine.data.transforms import random_angles
from engine.detector import Detector
from engine.device import autocast_for, select_device
from engine.errors import DatasetError, ImageLoadError
from engine.inputs import ImageInput, load_images
from engine.models.attentdiffernet.loss import nll_loss
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.scoring import extract_views, prepare_for_device, score_images, view_batch
from engine.training.collapse_guard import CollapseGuard
from engine.training.progress import CancelCheck, ProgressCallback, ProgressTracker

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """A trained detector with its history and what went wrong on the way."""

    detector: Detector
    epoch_losses: list[float]
    n_train: int
    n_calibration: int
    used_feature_cache: bool
    elapsed_s: float
    failures: list[ImageLoadError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def split_calibration(count: int, config: DetectorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``count`` normal images into (train indices, calibration indices)."""
    train_cfg = config.train
    order = np.random.default_rng(train_cfg.seed).permutation(count)
    if train_cfg.calibration_fraction <= 0:
        return np.sort(order), np.empty(0, dtype=np.int64)
    n_cal = max(train_cfg.calibration_min_images, round(train_cfg.calibration_fraction * count))
    if count - n_cal < 1:
        raise DatasetError(
            f"{count} usable training images cannot hold out {n_cal} for calibration and still "
            "train; add normal images or lower calibration_fraction"
        )
    return np.sort(order[n_cal:]), np.sort(order[:n_cal])


def train(
    config: DetectorConfig,
    images: Sequence[ImageInput],
    *,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> TrainResult:
    """Train a detector on normal ``images`` and calibrate its default threshold.

    Images that cannot be read are skipped and listed in ``TrainResult.failures``. Progress goes
    to ``on_progress``; ``should_cancel`` is polled between steps and stops the run with
    :class:`~engine.errors.TrainingCancelled`.
    """
    started = time.monotonic()
    train_cfg, model_cfg = config.train, config.model
    torch.manual_seed(train_cfg.seed)
    generator = torch.Generator().manual_seed(train_cfg.seed)
    device = select_device(train_cfg.device)

    loaded = load_images(images, model_cfg.image_size)
    for failure in loaded.failures:
        logger.warning("skipping training image %s", failure)
    if loaded.tensor.shape[0] < 2:
        raise DatasetError(
            f"training needs at least 2 readable normal images, got {loaded.tensor.shape[0]} "
            f"({len(loaded.failures)} could not be read)"
        )
    train_idx, cal_idx = split_calibration(loaded.tensor.shape[0], config)
    train_images = loaded.tensor[torch.from_numpy(train_idx)]
    cal_images = loaded.tensor[torch.from_numpy(cal_idx)]

    model = prepare_for_device(AttentDifferNetModel(model_cfg), device)
    use_cache = train_cfg.feature_cache and not model.attention_trainable
    n = train_images.shape[0]
    steps = math.ceil(n / train_cfg.batch_images)
    bank_views = n * train_cfg.cache_views_per_image if use_cache else 0
    score_cfg = config.score
    cal_views = cal_images.shape[0] * score_cfg.test_views
    # Work units: one per extracted view, plus one flow step counted as a batch of views.
    step_units = train_cfg.batch_images * train_cfg.views_per_image
    tracker = ProgressTracker(
        bank_views + train_cfg.epochs * steps * step_units + cal_views,
        train_cfg.epochs,
        on_progress,
        should_cancel,
    )
    tracker.advance(0, phase="loading", message=f"{n} training, {len(cal_idx)} calibration images")
    logger.info(
        "training %s/%s on %d images (%d held out), %d epochs, device %s, feature cache %s",
        model_cfg.backbone.name,
        model_cfg.variant,
        n,
        len(cal_idx),
        train_cfg.epochs,
        device,
        "on" if use_cache else "off",
    )

    optimizer = torch.optim.Adam(
        model.trainable_parameters(),
        lr=train_cfg.lr,
        betas=train_cfg.betas,
        eps=train_cfg.eps,
        weight_decay=train_cfg.weight_decay,
    )
    guard = CollapseGuard(train_cfg.collapse_variance_ratio, train_cfg.collapse_action)
    bank = None
    if use_cache:
        bank = _feature_bank(model, train_images, config, device, generator, tracker)
        if model_cfg.standardize_features:
            model.set_feature_statistics(bank.flatten(0, 1))
    elif model_cfg.standardize_features:
        model.set_feature_statistics(_one_pass_features(model, train_images, config, device))

    model.train()
    epoch_losses: list[float] = []
    for epoch in range(1, train_cfg.epochs + 1):
        order = torch.randperm(n, generator=generator)
        losses = []
        for step in range(steps):
            chosen = order[step * train_cfg.batch_images : (step + 1) * train_cfg.batch_images]
            if bank is not None:
                features = _cached_features(bank, chosen, train_cfg.views_per_image, generator)
            else:
                features = _fresh_features(model, train_images, chosen, config, device, generator)
                if model.attention_trainable:
                    guard.check(features, epoch)
            z, log_jac_det = model.flow_forward(features)
            loss = nll_loss(z, log_jac_det)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            tracker.advance(
                chosen.numel() * train_cfg.views_per_image,
                phase="training",
                epoch=epoch,
                step=step + 1,
                steps=steps,
                loss=losses[-1],
            )
        epoch_losses.append(float(np.mean(losses)))
        logger.info("epoch %d/%d: loss %.4f", epoch, train_cfg.epochs, epoch_losses[-1])

    model.eval()
    cal_scores = score_images(
        model,
        cal_images,
        score_cfg.test_views,
        device,
        score_cfg.batch_size,
        on_batch=lambda k: tracker.advance(k, phase="calibrating", epoch=train_cfg.epochs),
    )
    calibration = Calibration.from_scores(cal_scores, score_cfg.threshold_quantile)
    detector = Detector(model, config, calibration, device)
    warnings = [guard.warning] if guard.warning else []
    if calibration.threshold is None:
        warnings.append("no calibration images were held out, so there is no default threshold")
    tracker.advance(0, phase="done", epoch=train_cfg.epochs, message="training finished")
    return TrainResult(
        detector=detector,
        epoch_losses=epoch_losses,
        n_train=n,
        n_calibration=len(cal_idx),
        used_feature_cache=use_cache,
        elapsed_s=time.monotonic() - started,
        failures=list(loaded.failures),
        warnings=warnings,
    )


def _feature_bank(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    config: DetectorConfig,
    device: torch.device,
    generator: torch.Generator,
    tracker: ProgressTracker,
) -> torch.Tensor:
    """Features of ``cache_views_per_image`` random rotations of every image: N×V×D."""
    views = config.train.cache_views_per_image
    count = images_u8.shape[0]
    image_index = torch.arange(count).repeat_interleave(views)
    degrees = random_angles(count * views, generator)
    model.eval()
    features = extract_views(
        model,
        images_u8,
        image_index,
        degrees,
        device,
        config.train.extractor_batch_size,
        jitter=config.train.color_jitter,
        generator=generator,
        on_batch=lambda k: tracker.advance(k, phase="features", message="computing feature cache"),
    )
    return features.view(count, views, -1)


def _one_pass_features(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    config: DetectorConfig,
    device: torch.device,
) -> torch.Tensor:
    """Features of ``views_per_image`` seeded rotations of every image, for the statistics."""
    views = config.train.views_per_image
    image_index = torch.arange(images_u8.shape[0]).repeat_interleave(views)
    degrees = random_angles(image_index.numel(), torch.Generator().manual_seed(config.train.seed))
    model.eval()
    return extract_views(
        model, images_u8, image_index, degrees, device, config.train.extractor_batch_size
    )


def _cached_features(
    bank: torch.Tensor, chosen: torch.Tensor, views_per_image: int, generator: torch.Generator
) -> torch.Tensor:
    """``views_per_image`` random cached views of each chosen image."""
    pick = torch.randint(bank.shape[1], (chosen.numel(), views_per_image), generator=generator)
    rows = chosen.repeat_interleave(views_per_image).to(bank.device)
    return bank[rows, pick.flatten().to(bank.device)]


def _fresh_features(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    chosen: torch.Tensor,
    config: DetectorConfig,
    device: torch.device,
    generator: torch.Generator,
) -> torch.Tensor:
    """Augment the chosen images now and run the extractor (DifferNet's original procedure)."""
    views = config.train.views_per_image
    image_index = chosen.repeat_interleave(views)
    degrees = random_angles(image_index.numel(), generator)
    batch = view_batch(
        images_u8, image_index, degrees, device, config.train.color_jitter, generator
    )
    if model.attention_trainable:
        with autocast_for(device):
            return model.extract(batch).float()
    with torch.no_grad(), autocast_for(device):
        return model.extract(batch).float()
