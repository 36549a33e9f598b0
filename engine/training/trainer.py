"""Training: normal images only, feature cache for frozen extractors, epoch chosen on held-out
normals (their likelihood, or how well the flow tells them from copies with planted defects),
calibration of the default threshold."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.calibration import Calibration
from engine.config import DetectorConfig
from engine.data.planted_defects import plant_defects
from engine.data.views import view_space
from engine.detector import Detector
from engine.device import autocast_for, select_device
from engine.errors import DatasetError, ImageLoadError
from engine.evaluation import auroc_two_samples
from engine.inputs import ImageInput, load_images
from engine.models.attentdiffernet.loss import nll_loss
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.scoring import (
    extract_views,
    flow_scores,
    patch_batches,
    patch_terms,
    prepare_for_device,
    test_features,
    test_view_ids,
    view_batch,
)
from engine.training.collapse_guard import CollapseGuard
from engine.training.progress import CancelCheck, ProgressCallback, ProgressTracker

logger = logging.getLogger(__name__)

# Called once the features are ready (epoch 0: the untrained flow) and after every epoch, with
# (epoch, model, seconds since the start); the model is in eval mode and must not be changed.
# Benchmarks use it to trace quality against time.
EpochCallback = Callable[[int, AttentDifferNetModel, float], None]


@dataclass
class TrainResult:
    """A trained detector with its history and what went wrong on the way."""

    detector: Detector
    epoch_losses: list[float]
    n_train: int
    n_calibration: int
    used_feature_cache: bool
    elapsed_s: float
    # The epoch whose flow was kept (the last one with epoch_selection="last"), and the selection
    # criterion from epoch 0 (the untrained flow) on: the held-out normals' loss ("validation")
    # or their AUROC against planted defects ("planted"); empty with "last".
    selected_epoch: int = 0
    selection_curve: list[float] = field(default_factory=list)
    failures: list[ImageLoadError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def split_calibration(
    count: int, config: DetectorConfig, sources: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``count`` normal images into (train indices, calibration indices).

    With ``sources`` (one name per image), an image given more than once (a confirmed normal a
    retraining repeats) is held out whole or not at all, and calibrates once: a copy of a training
    image would make the calibration normals look more typical than new ones are.
    """
    train_cfg = config.train
    names = list(sources) if sources is not None else [str(i) for i in range(count)]
    distinct = list(dict.fromkeys(names))
    order = np.random.default_rng(train_cfg.seed).permutation(len(distinct))
    if train_cfg.calibration_fraction <= 0:
        return np.arange(count), np.empty(0, dtype=np.int64)
    n_cal = max(
        train_cfg.calibration_min_images, round(train_cfg.calibration_fraction * len(distinct))
    )
    if len(distinct) - n_cal < 1:
        raise DatasetError(
            f"{len(distinct)} usable training images cannot hold out {n_cal} for calibration and "
            "still train; add normal images or lower calibration_fraction"
        )
    held_out = {distinct[i] for i in order[:n_cal]}
    first = {name: index for index, name in reversed(list(enumerate(names)))}
    train_rows = [i for i, name in enumerate(names) if name not in held_out]
    cal_rows = sorted(first[name] for name in held_out)
    return np.array(train_rows, dtype=np.int64), np.array(cal_rows, dtype=np.int64)


def train(
    config: DetectorConfig,
    images: Sequence[ImageInput],
    *,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train a detector on normal ``images`` and calibrate its default threshold.

    Images that cannot be read are skipped and listed in ``TrainResult.failures``. Progress goes
    to ``on_progress``; ``should_cancel`` is polled between steps and stops the run with
    :class:`~engine.errors.TrainingCancelled`.
    """
    started = time.monotonic()
    run = _Run.start(config, images, on_progress, should_cancel)
    epoch_losses, selection_curve, selected = run.fit(on_epoch, started)
    cal_scores = run.with_patch_memory(flow_scores(run.model, run.calibration_features()))
    calibration = Calibration.from_scores(cal_scores, config.score.threshold_quantile)
    detector = Detector(run.model, config, calibration, run.device)
    warnings = [run.guard.warning] if run.guard.warning else []
    if calibration.threshold is None:
        warnings.append("no calibration images were held out, so there is no default threshold")
    run.tracker.advance(0, phase="done", epoch=selected, message="training finished")
    return TrainResult(
        detector=detector,
        epoch_losses=epoch_losses,
        n_train=run.n_train,
        n_calibration=run.cal_images.shape[0],
        used_feature_cache=run.bank is not None,
        elapsed_s=time.monotonic() - started,
        selected_epoch=selected,
        selection_curve=selection_curve,
        failures=run.failures,
        warnings=warnings,
    )


@dataclass
class _Run:
    """One training run's state: data, model, optimiser, feature bank and progress."""

    config: DetectorConfig
    device: torch.device
    model: AttentDifferNetModel
    train_images: torch.Tensor
    cal_images: torch.Tensor
    failures: list[ImageLoadError]
    generator: torch.Generator
    tracker: ProgressTracker
    guard: CollapseGuard
    optimizer: torch.optim.Optimizer
    bank: torch.Tensor | None = None
    _cal_features: torch.Tensor | None = None
    _planted_features: torch.Tensor | None = None

    @property
    def n_train(self) -> int:
        """Number of training images (calibration images excluded)."""
        return int(self.train_images.shape[0])

    @property
    def steps(self) -> int:
        """Optimiser steps per epoch."""
        return math.ceil(self.n_train / self.config.train.batch_images)

    @classmethod
    def start(
        cls,
        config: DetectorConfig,
        images: Sequence[ImageInput],
        on_progress: ProgressCallback | None,
        should_cancel: CancelCheck | None,
    ) -> _Run:
        """Load and split the images, build the model, then its feature bank or statistics."""
        train_cfg, model_cfg = config.train, config.model
        torch.manual_seed(train_cfg.seed)
        device = select_device(train_cfg.device)
        loaded = load_images(images, model_cfg.image_size)
        for failure in loaded.failures:
            logger.warning("skipping training image %s", failure)
        if loaded.tensor.shape[0] < 2:
            raise DatasetError(
                f"training needs at least 2 readable normal images, got {loaded.tensor.shape[0]} "
                f"({len(loaded.failures)} could not be read)"
            )
        train_idx, cal_idx = split_calibration(loaded.tensor.shape[0], config, loaded.names)
        model = prepare_for_device(AttentDifferNetModel(model_cfg), device)
        run = cls(
            config=config,
            device=device,
            model=model,
            train_images=loaded.tensor[torch.from_numpy(train_idx)],
            cal_images=loaded.tensor[torch.from_numpy(cal_idx)],
            failures=list(loaded.failures),
            generator=torch.Generator().manual_seed(train_cfg.seed),
            tracker=ProgressTracker(0, train_cfg.epochs, on_progress, should_cancel),
            guard=CollapseGuard(train_cfg.collapse_variance_ratio, train_cfg.collapse_action),
            optimizer=torch.optim.Adam(
                model.trainable_parameters(),
                lr=train_cfg.lr,
                betas=train_cfg.betas,
                eps=train_cfg.eps,
                weight_decay=train_cfg.weight_decay,
            ),
        )
        run._prepare_features()
        return run

    def _prepare_features(self) -> None:
        train_cfg, model_cfg = self.config.train, self.config.model
        use_cache = train_cfg.feature_cache and not self.model.attention_trainable
        bank_views = self.n_train * train_cfg.cache_views_per_image if use_cache else 0
        cal_views = self.cal_images.shape[0] * self.config.score.test_views
        if train_cfg.epoch_selection == "planted":
            cal_views *= 1 + train_cfg.planted_copies
        if model_cfg.patch.enabled:
            cal_views += self.n_train + self.cal_images.shape[0]  # one pass per image
        # Work units: one per extracted view, plus one flow step counted as a batch of views.
        step_units = train_cfg.batch_images * train_cfg.views_per_image
        self.tracker.plan(
            {
                "features": bank_views,
                "training": train_cfg.epochs * self.steps * step_units,
                "calibrating": cal_views,
            }
        )
        self.tracker.advance(
            0,
            phase="loading",
            message=f"{self.n_train} training, {self.cal_images.shape[0]} calibration images",
        )
        logger.info(
            "training %s/%s on %d images (%d held out), %d epochs, device %s, feature cache %s",
            model_cfg.backbone.name,
            model_cfg.variant,
            self.n_train,
            self.cal_images.shape[0],
            train_cfg.epochs,
            self.device,
            "on" if use_cache else "off",
        )
        if use_cache:
            self.bank = _feature_bank(
                self.model,
                self.train_images,
                self.config,
                self.device,
                self.generator,
                self.tracker,
            )
            self.model.set_feature_statistics(self.bank.flatten(0, 1))
        elif model_cfg.flow_input != "raw":
            self.model.set_feature_statistics(
                _one_pass_features(self.model, self.train_images, self.config, self.device)
            )

    def fit(
        self, on_epoch: EpochCallback | None, started: float
    ) -> tuple[list[float], list[float], int]:
        """Run the epochs; returns (epoch losses, selection curve from epoch 0, kept epoch)."""
        train_cfg = self.config.train
        criterion = self._criterion()
        epoch_losses: list[float] = []
        curve: list[float] = []
        best_epoch, best_state = 0, None
        if criterion is not None:
            curve.append(criterion.measure())
            best_state = self._trainable_state()
            logger.info("epoch 0 (untrained flow): %s %.4f", criterion.name, curve[0])
        if on_epoch is not None:
            self.model.eval()
            on_epoch(0, self.model, time.monotonic() - started)
        for epoch in range(1, train_cfg.epochs + 1):
            epoch_losses.append(self._train_epoch(epoch))
            self.model.eval()
            message = f"epoch {epoch}/{train_cfg.epochs}: loss {epoch_losses[-1]:.4f}"
            if criterion is not None:
                curve.append(criterion.measure())
                message += f", {criterion.name} {curve[-1]:.4f}"
                if criterion.better(curve[-1], curve[best_epoch]):
                    best_epoch, best_state = epoch, self._trainable_state()
            logger.info(message)
            if on_epoch is not None:
                on_epoch(epoch, self.model, time.monotonic() - started)
            waited = epoch - best_epoch
            if criterion is not None and train_cfg.patience and waited >= train_cfg.patience:
                logger.info("no better %s for %d epochs: stopping", criterion.name, waited)
                break
        if criterion is None:
            return epoch_losses, curve, len(epoch_losses)
        if best_state is not None:
            self._restore(best_state)
        logger.info("kept epoch %d (%s %.4f)", best_epoch, criterion.name, curve[best_epoch])
        return epoch_losses, curve, best_epoch

    def _criterion(self) -> _Criterion | None:
        """How epochs are compared, or None to keep the last one."""
        train_cfg = self.config.train
        if self.cal_images.shape[0] == 0 or train_cfg.epoch_selection == "last":
            return None
        if train_cfg.epoch_selection == "planted":
            return _Criterion(
                "planted-defect AUROC", self.planted_auroc, True, train_cfg.planted_min_gain
            )
        return _Criterion("validation loss", self.validation_loss, False, 0.0)

    def _train_epoch(self, epoch: int) -> float:
        train_cfg = self.config.train
        self.model.train()
        order = torch.randperm(self.n_train, generator=self.generator)
        losses = []
        for step in range(self.steps):
            chosen = order[step * train_cfg.batch_images : (step + 1) * train_cfg.batch_images]
            if self.bank is not None:
                features = _cached_features(
                    self.bank, chosen, train_cfg.views_per_image, self.generator
                )
            else:
                features = _fresh_features(
                    self.model,
                    self.train_images,
                    chosen,
                    self.config,
                    self.device,
                    self.generator,
                )
                if self.model.attention_trainable:
                    self.guard.check(features, epoch)
            z, log_jac_det = self.model.flow_forward(features)
            loss = nll_loss(z, log_jac_det)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(float(loss.detach()))
            self.tracker.advance(
                chosen.numel() * train_cfg.views_per_image,
                phase="training",
                epoch=epoch,
                step=step + 1,
                steps=self.steps,
                loss=losses[-1],
            )
        return float(np.mean(losses))

    def with_patch_memory(self, cal_flow_scores: np.ndarray) -> np.ndarray:
        """Fill the model's patch memory (if it keeps one) from the training images; returns the
        calibration normals' detector scores."""
        memory = self.model.patch_memory
        if memory is None:
            return cal_flow_scores
        batch_size = self.config.score.batch_size

        def advance(count: int) -> None:
            self.tracker.advance(count, phase="calibrating", message="patch memory")

        kept = memory.fit(
            patch_batches(self.model, self.train_images, self.device, batch_size, advance),
            self.config.train.seed,
        )
        logger.info("patch memory: %d patch vectors of %d images", kept, self.n_train)
        cal_terms = patch_terms(self.model, self.cal_images, self.device, batch_size, advance)
        return memory.combine(cal_flow_scores, cal_terms)

    def calibration_features(self) -> torch.Tensor:
        """Test-view features of the held-out images (N×V×D), extracted once if frozen."""
        if self._cal_features is None or not self.model.extractor_state_is_frozen:
            self._cal_features = self._test_view_features(self.cal_images, "held-out normal images")
        return self._cal_features

    def planted_features(self) -> torch.Tensor:
        """Test-view features of the held-out images with planted defects, extracted once if
        frozen (the same defects every epoch)."""
        if self._planted_features is None or not self.model.extractor_state_is_frozen:
            train_cfg = self.config.train
            planted = plant_defects(self.cal_images, train_cfg.planted_copies, train_cfg.seed)
            self._planted_features = self._test_view_features(planted, "planted defects")
        return self._planted_features

    def _test_view_features(self, images_u8: torch.Tensor, message: str) -> torch.Tensor:
        score_cfg = self.config.score
        view_ids = test_view_ids(self.config.model, score_cfg, score_cfg.test_views)
        with torch.inference_mode():
            return test_features(
                self.model,
                images_u8,
                view_ids,
                self.device,
                score_cfg.batch_size,
                on_batch=lambda k: self.tracker.advance(k, phase="calibrating", message=message),
            )

    def validation_loss(self) -> float:
        """The flow's loss (negative log-likelihood per dimension) on the held-out normals."""
        features = self.calibration_features().flatten(0, 1)
        self.model.eval()
        with torch.inference_mode():
            z, log_jac_det = self.model.flow_forward(features)
            return float(nll_loss(z, log_jac_det))

    def planted_auroc(self) -> float:
        """AUROC of the flow's scores: held-out normals against their planted-defect copies."""
        normal = flow_scores(self.model, self.calibration_features())
        return auroc_two_samples(normal, flow_scores(self.model, self.planted_features()))

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        """A copy of what training changes: the flow, and attention when it is trained."""
        prefixes = ("flow.", "attention.") if self.model.attention_trainable else ("flow.",)
        state = self.model.state_dict()
        return {k: v.detach().clone() for k, v in state.items() if k.startswith(prefixes)}

    def _restore(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state, strict=False)


@dataclass(frozen=True)
class _Criterion:
    """A label-free measure of a trained flow, and when a new value beats the kept one."""

    name: str
    measure: Callable[[], float]
    higher_is_better: bool
    min_gain: float

    def better(self, value: float, kept: float) -> bool:
        """Whether ``value`` beats ``kept`` by more than ``min_gain``."""
        gain = value - kept if self.higher_is_better else kept - value
        return gain > self.min_gain


def _feature_bank(
    model: AttentDifferNetModel,
    images_u8: torch.Tensor,
    config: DetectorConfig,
    device: torch.device,
    generator: torch.Generator,
    tracker: ProgressTracker,
) -> torch.Tensor:
    """Features of ``cache_views_per_image`` random views of every image: N×V×D."""
    views = config.train.cache_views_per_image
    count = images_u8.shape[0]
    image_index = torch.arange(count).repeat_interleave(views)
    view_ids = view_space(config.model.view_group).training(count, views, generator)
    model.eval()
    features = extract_views(
        model,
        images_u8,
        image_index,
        view_ids,
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
    """Features of ``views_per_image`` seeded random views of every image, for the statistics."""
    views = config.train.views_per_image
    count = images_u8.shape[0]
    image_index = torch.arange(count).repeat_interleave(views)
    generator = torch.Generator().manual_seed(config.train.seed)
    view_ids = view_space(config.model.view_group).training(count, views, generator)
    model.eval()
    return extract_views(
        model, images_u8, image_index, view_ids, device, config.train.extractor_batch_size
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
    view_ids = view_space(config.model.view_group).training(chosen.numel(), views, generator)
    batch = view_batch(
        config.model,
        images_u8,
        image_index,
        view_ids,
        device,
        config.train.color_jitter,
        generator,
    )
    if model.attention_trainable:
        with autocast_for(device):
            return model.extract(batch).float()
    with torch.no_grad(), autocast_for(device):
        return model.extract(batch).float()
