"""Baselines on the same split and backbone as the engine: Gaussian, k-NN and PatchCore-style.

- ``gauss-*``: Mahalanobis distance under a Gaussian fitted with Ledoit-Wolf shrinkage on the
  pooled multi-scale features of the model's ``extract`` (``view0``: un-rotated view; ``mean``:
  mean over the test views).
- ``knnK-*``: mean Euclidean distance to the K nearest training features (K = 1, 5).
- ``norm-mean``: the Euclidean norm of the mean feature (no training); a diagnostic that says
  whether defective cells have larger (AUROC > 50) or smaller (< 50) features than normal ones;
- ``patchcore``: 3×3-averaged patch features of the backbone's middle and last stages (the last
  upsampled to the middle grid, concatenated), a memory bank of training patches thinned by a
  greedy (k-centre, on a random projection) or random coreset; image score = the largest
  nearest-neighbour distance over the image's patches.

Run alone (features only, nothing is trained), e.g.
``python -m bench.baselines --types mono --seeds 0 --image-size 224``; ``bench.elpv_quality``
calls :func:`run_baselines` on the features it has already extracted.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench.common import SHARED_MACHINE_NOTE, Deadline, Report, log
from bench.elpv_data import ImageCache
from bench.views import ViewScores, score_views
from engine.data.transforms import to_unit
from engine.device import autocast_for, resolve_batch_size, select_device
from engine.evaluation import auroc_with_ci
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.models.components.patch_memory import patch_vectors
from engine.scoring import model_input, prepare_for_device
from engine.training.trainer import split_calibration

FEATURE_BASELINES = (
    "gauss-view0",
    "gauss-mean",
    "knn1-view0",
    "knn1-mean",
    "knn5-view0",
    "knn5-mean",
)
ALL_BASELINES = (*FEATURE_BASELINES, "norm-mean", "patchcore")


def gaussian_scores(train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance of ``test`` under a Ledoit-Wolf Gaussian fitted on ``train``.

    The shrinkage intensity is scikit-learn's (``ledoit_wolf_shrinkage``); the shrunk covariance
    ``(1 - s)·S + s·tr(S)/d·I`` is then factored with a Cholesky decomposition in float64.
    """
    from sklearn.covariance import ledoit_wolf_shrinkage

    x = torch.from_numpy(train.astype(np.float64))
    mean = x.mean(dim=0)
    centred = x - mean
    shrinkage = float(ledoit_wolf_shrinkage(centred.numpy(), assume_centered=True))
    empirical = centred.T @ centred / x.shape[0]
    target = torch.trace(empirical) / empirical.shape[0]
    covariance = (1 - shrinkage) * empirical
    covariance.diagonal().add_(shrinkage * target)
    factor = torch.linalg.cholesky(covariance)
    diff = (torch.from_numpy(test.astype(np.float64)) - mean).T
    whitened = torch.linalg.solve_triangular(factor, diff, upper=False)
    return whitened.pow(2).sum(dim=0).numpy()


def knn_scores(train: torch.Tensor, test: torch.Tensor, k: int, chunk: int = 4096) -> torch.Tensor:
    """Mean distance of each ``test`` row to its ``k`` nearest ``train`` rows (chunked cdist)."""
    k = min(k, train.shape[0])
    out = []
    for start in range(0, test.shape[0], chunk):
        distances = torch.cdist(test[start : start + chunk], train)
        out.append(distances.topk(k, dim=1, largest=False).values.mean(dim=1))
    return torch.cat(out)


@dataclass(frozen=True)
class PatchCoreConfig:
    """Memory-bank size and coreset method."""

    coreset: str = "greedy"  # or "random"
    ratio: float = 0.1
    max_bank: int = 20_000
    projection_dim: int = 128
    # Which maps are patches: the backbone's middle and last stage outputs ("stages"), or the
    # last layer outputs at strides 8 and 16 ("stride8-16").
    taps: str = "stages"

    def describe(self) -> str:
        """``greedy coreset 10 % (≤ 20000 patches), stages``."""
        return (
            f"{self.coreset} coreset {100 * self.ratio:g} % (<= {self.max_bank} patches), "
            f"maps: {self.taps}"
        )


def greedy_coreset(
    points: torch.Tensor, count: int, projection_dim: int, generator: torch.Generator
) -> torch.Tensor:
    """Indices of ``count`` points chosen by k-centre greedy on a random projection."""
    dim = points.shape[1]
    projection = torch.randn(dim, projection_dim, generator=generator) / math.sqrt(projection_dim)
    projected = points.float() @ projection.to(points.device)
    chosen = torch.empty(count, dtype=torch.long, device=points.device)
    first = int(torch.randint(points.shape[0], (1,), generator=generator))
    chosen[0] = first
    nearest = (projected - projected[first]).norm(dim=1)
    for i in range(1, count):
        pick = torch.argmax(nearest)
        chosen[i] = pick
        nearest = torch.minimum(nearest, (projected - projected[pick]).norm(dim=1))
    return chosen


class PatchCore:
    """PatchCore-style detector on the backbone of an engine model (see module docstring)."""

    def __init__(
        self,
        model: AttentDifferNetModel,
        device: torch.device,
        config: PatchCoreConfig,
        seed: int = 0,
        batch_size: int = 0,
    ) -> None:
        self.model = model
        self.device = device
        self.config = config
        self.seed = seed
        self.batch_size = max(1, resolve_batch_size(batch_size, device) // 2)
        self.bank: torch.Tensor | None = None

    def embed(self, images_u8: torch.Tensor) -> Iterator[torch.Tensor]:
        """Patch features (b, patches, channels), float32 on the device, batch by batch."""
        backbone = self.model.backbone
        with torch.inference_mode():
            for start in range(0, images_u8.shape[0], self.batch_size):
                x01 = to_unit(images_u8[start : start + self.batch_size].to(self.device))
                prepared = model_input(self.model.config, x01)
                x = self.model.normalize(prepared.contiguous(memory_format=torch.channels_last))
                with autocast_for(self.device):
                    if self.config.taps != "stages":
                        yield patch_vectors(backbone, x, (8, 16))
                        continue
                    maps = []
                    for stage, pool in zip(backbone.stages, backbone.pools, strict=True):
                        x = pool(stage(x))
                        maps.append(x.float())
                fine = F.avg_pool2d(maps[1], 3, stride=1, padding=1)
                coarse = F.avg_pool2d(maps[2], 3, stride=1, padding=1)
                coarse = F.interpolate(
                    coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False
                )
                both = torch.cat([fine, coarse], dim=1)
                yield both.flatten(2).transpose(1, 2).contiguous()

    def fit(self, train_u8: torch.Tensor) -> int:
        """Build the memory bank from normal images; returns its size."""
        patches = torch.cat([p.reshape(-1, p.shape[-1]) for p in self.embed(train_u8)])
        keep = min(self.config.max_bank, max(1, round(self.config.ratio * patches.shape[0])))
        generator = torch.Generator().manual_seed(self.seed)
        if keep >= patches.shape[0]:
            self.bank = patches
        elif self.config.coreset == "greedy":
            self.bank = patches[
                greedy_coreset(patches, keep, self.config.projection_dim, generator)
            ]
        else:
            pick = torch.randperm(patches.shape[0], generator=generator)[:keep]
            self.bank = patches[pick.to(patches.device)]
        return int(self.bank.shape[0])

    def score(self, test_u8: torch.Tensor) -> np.ndarray:
        """Largest nearest-neighbour distance over each image's patches."""
        if self.bank is None:
            raise RuntimeError("fit the memory bank first")
        scores = []
        for patches in self.embed(test_u8):
            flat = patches.reshape(-1, patches.shape[-1])
            nearest = knn_scores(self.bank, flat, 1, chunk=2048)
            scores.append(nearest.view(patches.shape[0], -1).amax(dim=1).cpu())
        return torch.cat(scores).double().numpy()


def run_baselines(
    model: AttentDifferNetModel,
    device: torch.device,
    train_u8: torch.Tensor,
    test_u8: torch.Tensor,
    labels: np.ndarray,
    train_views: ViewScores,
    test_views: ViewScores,
    *,
    which: Sequence[str] = ALL_BASELINES,
    seed: int = 0,
    n_bootstrap: int = 1000,
    patchcore: PatchCoreConfig | None = None,
) -> dict[str, dict[str, float]]:
    """AUROC (with bootstrap interval) of each baseline in ``which``."""
    results: dict[str, dict[str, float]] = {}
    features = {
        "view0": (train_views.feat0, test_views.feat0),
        "mean": (train_views.feat_mean, test_views.feat_mean),
    }
    for name in which:
        if name == "norm-mean":
            scores = np.linalg.norm(test_views.feat_mean.astype(np.float64), axis=1)
            extra = {}
        elif name == "patchcore":
            detector = PatchCore(model, device, patchcore or PatchCoreConfig(), seed)
            bank = detector.fit(train_u8)
            scores = detector.score(test_u8)
            extra = {"bank": float(bank)}
        else:
            family, kind = name.split("-")
            train, test = features[kind]
            extra = {}
            if family == "gauss":
                scores = gaussian_scores(train, test)
            else:
                k = int(family.removeprefix("knn"))
                to = torch.device(device)
                scores = (
                    knn_scores(torch.from_numpy(train).to(to), torch.from_numpy(test).to(to), k)
                    .cpu()
                    .double()
                    .numpy()
                )
        result = auroc_with_ci(labels, scores, n_bootstrap=n_bootstrap, seed=seed)
        results[name] = {
            "auroc": result.auroc,
            "ci_low": result.ci_low,
            "ci_high": result.ci_high,
            **extra,
        }
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Baselines alone: features of an untrained engine model (variant none), no flow training."""
    from bench.options import (  # here: bench.options imports this module
        add_baseline_options,
        add_common_options,
        base_spec,
        baseline_request,
        common_settings,
        subset_limits,
    )
    from bench.tables import auroc_summary, collect

    parser = argparse.ArgumentParser(
        prog="python -m bench.baselines", description=__doc__.split("\n")[0]
    )
    add_common_options(parser, default_out=Path("bench/results/baselines.md"))
    add_baseline_options(parser, default=list(ALL_BASELINES))
    args = parser.parse_args(argv)
    request = baseline_request(args)
    cache, limits, deadline = (
        ImageCache(args.data_dir),
        subset_limits(args),
        Deadline(args.budget_s),
    )
    device = select_device(args.device)
    records: list[dict[str, object]] = []
    status = "complete"
    for seed in args.seeds:
        for cell_type in args.types:
            if deadline.expired():
                status = f"CUT SHORT by --budget-s {args.budget_s:g}"
                break
            config = base_spec(args, cell_type, seed).config(args.device)
            torch.manual_seed(seed)
            model = prepare_for_device(AttentDifferNetModel(config.model), device).eval()
            images = cache.get(cell_type, args.image_size).split(seed, limits)
            rows, _ = split_calibration(images.train.shape[0], config)
            train_u8 = images.train[torch.from_numpy(rows)]
            test = torch.cat([images.test_normal, images.test_defect])
            labels = np.r_[np.zeros(len(images.test_normal)), np.ones(len(images.test_defect))]
            views = args.test_views
            results = run_baselines(
                model,
                device,
                train_u8,
                test,
                labels.astype(int),
                score_views(model, train_u8, views, device, with_flow=False),
                score_views(model, test, views, device, with_flow=False),
                which=request.names,
                seed=seed,
                n_bootstrap=args.bootstrap,
                patchcore=request.patchcore,
            )
            for name, entry in results.items():
                spec = {"cell_type": cell_type, "seed": seed}
                records.append({"spec": spec, "name": name, **entry})
                log(f"{cell_type} seed {seed} {name}: AUROC {100 * entry['auroc']:.2f}")
    settings = common_settings(args) | {"backbone": f"{args.backbone} ({args.weights})"}
    settings["patchcore"] = request.patchcore.describe()
    report = Report("ELPV baselines alone (no flow)", device, settings, status=status)
    report.notes.append(SHARED_MACHINE_NOTE)
    report.notes.append(
        "features: the engine model's extract (variant none) at the test views; fitted on the "
        "same training cells the flow would train on (calibration cells held out)"
    )
    values = collect(records, lambda r: str(r["name"]), lambda r: float(r["auroc"]))
    report.add("Image AUROC (%), mean ± std over seeds", auroc_summary(values, args.types))
    path = report.write(args.out)
    log(f"table written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
