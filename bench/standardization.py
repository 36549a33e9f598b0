"""Does standardising the features before the flow matter on short schedules? (ELPV mono)

Features of a seeded subset of cells are extracted once (random training rotations, fixed test
rotations); then the same flow is trained twice on them, on raw features (the paper) and on
standardised features (the engine's default), and scored at a few points of training.

    python -m bench.standardization --out bench/results/standardization-cpu.md
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from bench.common import (
    command_line,
    load_average,
    machine_description,
    md_table,
    utc_now,
    versions,
)
from engine.config import BackboneConfig, ModelConfig
from engine.data.elpv import make_elpv_split
from engine.data.transforms import random_angles, test_view_angles
from engine.inputs import load_images
from engine.models.attentdiffernet.loss import anomaly_score, nll_loss
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.scoring import extract_views
from jobspec import Backbone, Variant


def _features(
    model: AttentDifferNetModel, paths: list[Path], views: int, seed: int | None
) -> torch.Tensor:
    images = load_images(paths, model.image_size).tensor
    index = torch.arange(len(paths)).repeat_interleave(views)
    if seed is None:
        degrees = test_view_angles(views).repeat(len(paths))
    else:
        degrees = random_angles(index.numel(), torch.Generator().manual_seed(seed))
    return extract_views(model, images, index, degrees, torch.device("cpu"), 16).view(
        len(paths), views, -1
    )


def _train_and_score(
    config: ModelConfig,
    train: torch.Tensor,
    test: torch.Tensor,
    labels: np.ndarray,
    standardize: bool,
    steps: int,
    checkpoints: set[int],
) -> list[tuple[int, float, float]]:
    torch.manual_seed(0)
    model = AttentDifferNetModel(config)
    if standardize:
        model.set_feature_statistics(train.flatten(0, 1))
    optimizer = torch.optim.Adam(
        model.trainable_parameters(), lr=2e-4, betas=(0.8, 0.8), eps=1e-4, weight_decay=1e-5
    )
    generator = torch.Generator().manual_seed(0)
    rows = []
    for step in range(1, steps + 1):
        chosen = torch.randint(train.shape[0], (24,), generator=generator)
        pick = torch.randint(train.shape[1], (24, 4), generator=generator)
        z, log_jac_det = model.flow_forward(train[chosen.repeat_interleave(4), pick.flatten()])
        loss = nll_loss(z, log_jac_det)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in checkpoints:
            with torch.no_grad():
                z_test, _ = model.flow_forward(test.flatten(0, 1))
                scores = anomaly_score(z_test).view(test.shape[0], -1).mean(dim=1).numpy()
            rows.append((step, float(loss.detach()), float(roc_auc_score(labels, scores))))
    return rows


def main() -> None:
    """Run the comparison and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=48, help="training cells")
    parser.add_argument("--test", type=int, default=24, help="normal and defective test cells each")
    parser.add_argument("--steps", type=int, default=48, help="flow updates (24 cells × 4 views)")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--out", type=Path, default=Path("bench/results/standardization-cpu.md"))
    args = parser.parse_args()
    started = time.monotonic()
    split = make_elpv_split("mono", seed=0)
    train_paths = [r.path for r in split.train[: args.train]]
    test_paths = [r.path for r in split.test_normal[: args.test]] + [
        r.path for r in split.test_defect[: args.test]
    ]
    labels = np.r_[np.zeros(args.test), np.ones(args.test)]
    config = ModelConfig(
        variant=Variant.NONE,
        image_size=args.image_size,
        backbone=BackboneConfig(name=Backbone.MOBILENET_V2),
    )
    extractor = AttentDifferNetModel(config).eval()
    train = _features(extractor, train_paths, 4, seed=1)
    test = _features(extractor, test_paths, 2, seed=None)
    norms = [
        train.norm(dim=-1).mean(),
        test[: args.test].norm(dim=-1).mean(),
        test[args.test :].norm(dim=-1).mean(),
    ]
    checkpoints = {1, args.steps // 2, args.steps}
    rows = []
    for standardize in (False, True):
        for step, loss, auroc in _train_and_score(
            config, train, test, labels, standardize, args.steps, checkpoints
        ):
            rows.append(
                [
                    "standardised" if standardize else "raw (paper)",
                    step,
                    f"{loss:.3f}",
                    f"{100 * auroc:.1f}",
                ]
            )
    text = "\n".join(
        [
            "# Feature standardisation before the flow (ELPV mono, MobileNetV2, variant none)",
            "",
            f"- date: {utc_now()}; machine: {machine_description()}; load average {load_average()}",
            f"- versions: {versions()}",
            f"- command: `{command_line()}`",
            f"- data: {args.train} training cells × 4 random rotations; {args.test} normal + "
            f"{args.test} defective test cells × 2 rotations; {args.image_size} px; one seed; "
            f"{time.monotonic() - started:.0f} s",
            f"- mean feature norm: training {norms[0]:.2f}, test normal {norms[1]:.2f}, "
            f"test defective {norms[2]:.2f}",
            "",
            md_table(["flow input", "flow updates", "loss", "AUROC %"], rows),
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
