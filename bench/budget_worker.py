"""One run of the quality-per-budget benchmark, in a process of its own (honest peak RSS).

``python -m bench.budget_worker JOB_JSON OUT_JSON`` trains one detector on an ELPV split as the
CLI would (``adn train --elpv TYPE --variant V``: the fast preset, or the paper's procedure for
``kind="differnet"``), traces the test AUROC after every epoch against training time, scores the
test cells as they are and with a simulated lot drift, and, for variant ``none``, fits the
Gaussian and PatchCore-style baselines on the same split and backbone. It writes one JSON record.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from bench.baselines import PatchCore, PatchCoreConfig, gaussian_scores
from bench.common import config_digest, peak_rss_mb
from bench.drift import drift_images
from bench.elpv_data import ImageCache
from engine.config import DetectorConfig
from engine.data.views import view_space
from engine.errors import TrainingCancelled
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.models.components.patch_memory import PatchMemory
from engine.presets import model_for, preset_config
from engine.scoring import (
    extract_views,
    flow_scores,
    patch_batches,
    patch_terms,
    test_features,
    test_view_ids,
    with_patch_term,
)
from engine.training import train
from engine.training.trainer import split_calibration


@dataclass(frozen=True)
class BudgetJob:
    """What one worker run does."""

    # "default": the CLI's fast preset; "switch": the same with one setting changed (``change``);
    # "differnet": the paper's procedure
    kind: str
    cell_type: str
    seed: int
    variant: str = "none"
    backbone: str = "mobilenet_v2"
    weights: str = "imagenet"
    image_size: int = 0  # 0: the preset's (other sizes and random weights serve the tests)
    budget_s: float = 0.0  # differnet: stop training after this many seconds
    differnet_views: int = 8  # differnet: test rotations for its curve
    change: str = ""  # switch: "section.field=value", e.g. "model.intensity=none"

    @property
    def key(self) -> str:
        """Identity of the run in the store (``change`` only when set, so that records stored
        before it existed keep their keys). A default or switch run also names a digest of the
        config it trains, so a run of an earlier default never stands in for today's."""
        fields: dict[str, Any] = dataclasses.asdict(self)
        if not self.change:
            del fields["change"]
        if self.kind != "differnet":
            fields["config"] = config_digest(self.config())
        return json.dumps(fields, sort_keys=True)

    def config(self) -> DetectorConfig:
        """The engine config this job trains."""
        model = model_for(self.variant, self.backbone, self.weights, download=False)
        if self.kind == "default":
            config = preset_config("fast", model)
        elif self.kind == "switch":
            config = changed(preset_config("fast", model), self.change)
        else:
            paper = preset_config("paper", model)
            config = paper.replace(
                train=dataclasses.replace(paper.train, feature_cache=False, epochs=10_000),
                score=dataclasses.replace(paper.score, test_views=self.differnet_views),
            )
        if self.image_size:
            model_cfg = dataclasses.replace(config.model, image_size=self.image_size)
            config = config.replace(model=model_cfg)
        return config.replace(
            train=dataclasses.replace(config.train, seed=self.seed, device="cpu"),
            score=dataclasses.replace(config.score, device="cpu"),
        )


def changed(config: DetectorConfig, change: str) -> DetectorConfig:
    """``config`` with one setting replaced: ``"model.intensity=none"``, ``"train.lr=0.0002"``,
    ``"model.flow.zero_init=false"`` (the value is read as the field's current type)."""
    path, _, text = change.partition("=")
    names = path.split(".")
    if len(names) < 2 or not text or names[0] not in ("model", "train", "score"):
        raise ValueError(f"a change reads section.field=value, got {change!r}")

    def replace(node: Any, rest: list[str]) -> Any:
        if not hasattr(node, rest[0]):
            raise ValueError(f"{change!r}: {type(node).__name__} has no field {rest[0]!r}")
        current = getattr(node, rest[0])
        if len(rest) > 1:
            value = replace(current, rest[1:])
        elif isinstance(current, bool):
            value = text.lower() in ("1", "true", "yes")
        elif isinstance(current, int | float):
            value = type(current)(text)
        else:
            value = text
        return dataclasses.replace(node, **{rest[0]: value})

    return replace(config, names)


class _Clock:
    """Training time with the benchmark's own evaluation work taken out."""

    def __init__(self) -> None:
        self.excluded = 0.0

    def training_s(self, elapsed: float) -> float:
        return elapsed - self.excluded


def run(job: BudgetJob, data_dir: Path | None = None) -> dict[str, Any]:
    """Train, trace, score and (variant none) fit the baselines; returns the record."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    config = job.config()
    images = ImageCache(data_dir).get(job.cell_type, config.model.image_size).split(job.seed)
    test = torch.cat([images.test_normal, images.test_defect])
    labels = np.r_[np.zeros(len(images.test_normal)), np.ones(len(images.test_defect))]
    view_ids = test_view_ids(config.model, config.score, config.score.test_views)
    clock, curve, cache = _Clock(), [], {}
    local = _LocalTerm(config, images.train, test)

    def on_epoch(epoch: int, model: AttentDifferNetModel, elapsed: float) -> None:
        started = time.monotonic()
        if "test" not in cache:  # frozen extractor: the test features never change
            cache["test"] = test_features(model, test, view_ids, torch.device("cpu"), 0)
        scores = local.scores(model, flow_scores(model, cache["test"]))
        auroc = float(roc_auc_score(labels, scores))
        train_s = clock.training_s(elapsed) + local.fit_s
        curve.append({"epoch": epoch, "train_s": train_s, "auroc": auroc})
        clock.excluded += time.monotonic() - started

    record: dict[str, Any] = {"job": dataclasses.asdict(job), "key": job.key}
    record["counts"] = {
        "train": images.train.shape[0],
        "test_normal": len(images.test_normal),
        "test_defect": len(images.test_defect),
    }
    started = time.monotonic()

    def over_budget() -> bool:
        return clock.training_s(time.monotonic() - started) > job.budget_s

    try:
        result = train(
            config,
            [record.path for record in images.split.train],
            should_cancel=over_budget if job.kind == "differnet" else None,
            on_epoch=on_epoch,
        )
    except TrainingCancelled:
        record |= {"train_s": clock.training_s(time.monotonic() - started), "curve": curve}
        record["peak_rss_mb"] = peak_rss_mb()
        return record
    record |= {
        "train_s": clock.training_s(result.elapsed_s),
        "peak_rss_mb": peak_rss_mb(),
        "selected_epoch": result.selected_epoch,
        "epochs_run": len(result.epoch_losses),
        "selection_curve": result.selection_curve,
        "curve": curve,
    }
    detector = result.detector
    with tempfile.TemporaryDirectory() as folder:
        path = detector.save(Path(folder) / "model.adn")
        record["checkpoint_mb"] = path.stat().st_size / 2**20
    model, device = detector.model, detector.device
    n_normal = len(images.test_normal)
    drifted = drift_images(test, seed=1000 + job.seed)
    features = {"clean": cache["test"], "drift": test_features(model, drifted, view_ids, device, 0)}
    flows = {name: flow_scores(model, values) for name, values in features.items()}
    record["scores"] = _split(flows["clean"], n_normal)
    record["drift_scores"] = _split(
        with_patch_term(model, flows["drift"], drifted, device, 0), n_normal
    )
    if model.patch_memory is not None:
        terms = patch_terms(model, test, device, 0)  # once: kept apart and combined
        record["scores"] = _split(PatchMemory.combine(flows["clean"], terms), n_normal)
        record["flow_scores"] = _split(flows["clean"], n_normal)
        record["patch_terms"] = _split(terms, n_normal)
    record["threshold"] = detector.default_threshold
    if job.variant == "none":
        tests = {"clean": test, "drift": drifted}
        record["baselines"] = _baselines(model, images.train, tests, features, config, n_normal)
    return record


class _LocalTerm:
    """The detector's score after any epoch, patch term included, for the AUROC curve.

    The trainer fills its patch memory once, after the last epoch; the curve asks what the
    detector would have scored had it stopped earlier, so this keeps the same memory (the same
    training images, order and seed), filled at the first call. Its fit time is kept out of the
    clock like the rest of the curve's work, then added to every point, as the trainer spends it
    once.
    """

    def __init__(self, config: DetectorConfig, train_u8: torch.Tensor, test_u8: torch.Tensor):
        self.config = config
        fit, _ = split_calibration(train_u8.shape[0], config)
        self.fit_images = train_u8[torch.from_numpy(fit)]
        self.test_images = test_u8
        self.terms: np.ndarray | None = None
        self.fit_s = 0.0

    def scores(self, model: AttentDifferNetModel, flow_test: np.ndarray) -> np.ndarray:
        """``flow_test`` combined with the local term (unchanged when the config has none)."""
        if not self.config.model.patch.enabled:
            return flow_test
        if self.terms is None:
            cpu = torch.device("cpu")
            started = time.monotonic()
            memory = PatchMemory(self.config.model.patch)
            memory.fit(patch_batches(model, self.fit_images, cpu, 0), self.config.train.seed)
            self.fit_s = time.monotonic() - started
            terms = [memory.image_terms(v) for v in patch_batches(model, self.test_images, cpu, 0)]
            self.terms = torch.cat(terms).double().numpy()
        return PatchMemory.combine(flow_test, self.terms)


def _split(scores: np.ndarray, n_normal: int) -> dict[str, list[float]]:
    return {"normal": scores[:n_normal].tolist(), "defect": scores[n_normal:].tolist()}


def _baselines(
    model: AttentDifferNetModel,
    train_u8: torch.Tensor,
    tests_u8: dict[str, torch.Tensor],
    test_features_by_name: dict[str, torch.Tensor],
    config: DetectorConfig,
    n_normal: int,
) -> dict[str, Any]:
    """Gaussian (8 views; view 0) and PatchCore-style scores on the same cells and backbone.

    The baselines fit on every training cell of the split, calibration cells included (they have
    no use for a held-out set), seen through the detector's own input pipeline; the test
    features (N×V×D) are the detector's own, for ``clean`` and ``drift`` cells.
    """
    device = torch.device("cpu")
    views = view_space(config.model.view_group).test(config.score.test_views)
    count, n_views = train_u8.shape[0], views.numel()
    index = torch.arange(count).repeat_interleave(n_views)
    extracted = extract_views(model, train_u8, index, views.repeat(count), device, 0)
    train_features = extracted.view(count, n_views, -1).double().numpy()
    patchcore = PatchCore(model, device, PATCHCORE, seed=config.train.seed)
    patchcore.fit(train_u8)
    out: dict[str, Any] = {}
    for name, images in tests_u8.items():
        test = test_features_by_name[name].double().numpy()
        flat = test.reshape(-1, test.shape[-1])
        per_view = gaussian_scores(train_features.reshape(-1, test.shape[-1]), flat)
        out[f"gauss8-{name}"] = _split(per_view.reshape(test.shape[:2]).mean(axis=1), n_normal)
        view0 = gaussian_scores(train_features[:, 0], test[:, 0])
        out[f"gauss0-{name}"] = _split(view0, n_normal)
        out[f"patchcore-{name}"] = _split(patchcore.score(images), n_normal)
    return out


# The PatchCore-style baseline: stride-8 and stride-16 patches, 3×3 averaged, a random
# 10 % memory bank, image score = the largest nearest-patch distance.
PATCHCORE = PatchCoreConfig(coreset="random", ratio=0.1, max_bank=200_000, taps="stride8-16")


def main(argv: list[str] | None = None) -> int:
    """Run the job in ``argv[0]`` (JSON) and write its record to ``argv[1]``."""
    args = sys.argv[1:] if argv is None else argv
    job = BudgetJob(**json.loads(args[0]))
    data_dir = Path(args[2]) if len(args) > 2 and args[2] else None
    record = run(job, data_dir)
    Path(args[1]).write_text(json.dumps(record), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
