"""Unit costs on this device (one view, one flow update, ...) and run-time estimates from them.

``python -m bench.probe --out probe.json`` measures, in a few seconds, what a benchmark run is
made of; the quality bench and the ablations take ``--probe probe.json`` and then skip a run that
would not finish inside ``--budget-s`` (saying so), and ``bench.gpu.run_all`` picks the epoch count
that fits its budget from the same numbers.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.common import sync
from bench.runner import FLOWS, RunSpec
from engine.data.transforms import random_angles
from engine.device import autocast_for, select_device
from engine.models.attentdiffernet.loss import nll_loss
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.scoring import prepare_for_device, view_batch

Probe = dict[str, Any]


def _per_view(model: AttentDifferNetModel, size: int, batch: int, device: torch.device) -> float:
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    index = torch.arange(batch)
    generator = torch.Generator().manual_seed(0)
    views = lambda: view_batch(model.config, images, index, random_angles(batch, generator), device)  # noqa: E731
    with torch.inference_mode(), autocast_for(device):
        model.extract(views())
        sync(device)
        started = time.perf_counter()
        for _ in range(3):
            model.extract(views())
        sync(device)
    return (time.perf_counter() - started) / (3 * batch)


def measure(spec: RunSpec, device: torch.device, batch: int) -> Probe:
    """Time the pieces of a run of ``spec`` on ``device``."""
    started = time.perf_counter()
    torch.manual_seed(0)
    model = prepare_for_device(AttentDifferNetModel(spec.config(str(device)).model), device)
    sync(device)
    build_s = time.perf_counter() - started
    model.eval()
    view_s = _per_view(model, spec.image_size, batch, device)
    view_half_s = _per_view(model, spec.image_size // 2, batch, device)
    optimizer = torch.optim.Adam(model.trainable_parameters(), lr=2e-4, betas=(0.8, 0.8), eps=1e-4)
    features = torch.randn(96, model.feature_dim, device=device)

    def step() -> None:
        z, log_jac_det = model.flow_forward(features)
        loss = nll_loss(z, log_jac_det)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    sync(device)
    started = time.perf_counter()
    for _ in range(5):
        step()
    sync(device)
    step_s = (time.perf_counter() - started) / 5
    alexnet = spec.replace(backbone="alexnet", weights="random")
    other = prepare_for_device(AttentDifferNetModel(alexnet.config(str(device)).model), device)
    alexnet_view_s = _per_view(other.eval(), spec.image_size, batch, device)
    return {
        "device": str(device),
        "spec": spec.__dict__,
        "build_s": build_s,
        "view_s": view_s,
        "view_half_size_s": view_half_s,
        "alexnet_view_s": alexnet_view_s,
        "flow_update_s": step_s,
    }


def estimate_seconds(
    spec: RunSpec, probe: Probe, n_train: int, n_test: int, n_mild: int, baselines: bool
) -> float:
    """Expected wall time of one run of ``spec`` (training, scoring, optional baselines)."""
    size = probe["spec"]["image_size"]
    view = probe["alexnet_view_s"] if spec.backbone == "alexnet" else probe["view_s"]
    if spec.image_size < size:
        view *= probe["view_half_size_s"] / probe["view_s"]
    n_cal = max(2, round(0.1 * n_train))
    n_flow = n_train - n_cal
    steps = spec.epochs * math.ceil(n_flow / 24)
    cached = spec.feature_cache and not (spec.train_attention and spec.variant != "none")
    views = (n_cal + n_test + n_mild) * spec.test_views
    if cached:
        training = n_flow * spec.cache_views * view + steps * probe["flow_update_s"]
    else:  # fresh features every update; trained attention also needs a backward pass
        factor = 3.0 if spec.train_attention else 1.0
        training = steps * (96 * view * factor + probe["flow_update_s"])
    extra = (n_flow * (spec.test_views + 1) + n_test) * view + 5.0 if baselines else 0.0
    return probe["build_s"] + training + views * view + extra + 2.0


def auto_epochs(probe: Probe, runs: int, budget_s: float, n_train: int) -> int:
    """Epochs (a multiple of 4, 16 to 192) whose flow updates take ``budget_s`` over ``runs`` runs.

    On a GPU the flow updates are a small part of a run (scoring 64 views of every test cell
    dominates), so a share of the budget buys many epochs; the floor of 16 epochs keeps the flow
    from being evaluated close to its random initialisation.
    """
    n_flow = n_train - max(2, round(0.1 * n_train))
    per_epoch = math.ceil(n_flow / 24) * probe["flow_update_s"]
    epochs = budget_s / runs / max(per_epoch, 1e-9)
    return int(min(192, max(16, 4 * math.floor(epochs / 4))))


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and write the probe JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench.probe", description=__doc__)
    parser.add_argument("--image-size", type=int, default=448)
    parser.add_argument("--variant", default="se")
    parser.add_argument("--flow", choices=list(FLOWS), default="paper")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch", type=int, default=0, help="views per pass (0: 128 GPU, 8 CPU)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/probe.json"))
    args = parser.parse_args(argv)
    device = select_device(args.device)
    batch = args.batch or (128 if device.type == "cuda" else 8)
    spec = RunSpec("mono", 0, variant=args.variant, image_size=args.image_size, flow=args.flow)
    probe = measure(spec, device, batch)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(probe, indent=1))
    print(json.dumps(probe))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
