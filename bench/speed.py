"""Speed and memory: feature-cache training vs DifferNet's procedure, scoring, checkpoints.

Training: the engine's default (features of a fixed bank of rotations computed once, the flow
trained on the cache) against DifferNet's original procedure (``feature_cache=False``: features
recomputed for every augmented batch), with the same flow updates and data; wall time, peak RSS
(each run in a fresh process) and the AUROC each reaches on a held-out ELPV subset. Scoring:
images/s and per-image latency at 64/16/4 views, batched and one image at a time, Grad-CAM
heatmaps, the extractor alone on the same views, checkpoint size, load time and memory.

Example (the CPU table in bench/results/speed-cpu.md)::

    python -m bench.speed --out bench/results/speed-cpu.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.common import REPO_ROOT, SHARED_MACHINE_NOTE, Report, load_average, log
from bench.elpv_data import SubsetLimits, payload_note
from bench.runner import FLOWS, RunSpec
from bench.speed_report import add_sections
from engine.calibration import Calibration
from engine.data.elpv import make_elpv_split
from engine.detector import Detector
from engine.device import select_device
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel

DEFAULT_OUT = Path("bench/results/speed-cpu.md")


def build_parser() -> argparse.ArgumentParser:
    """Options of this script."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.speed",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--cell-type", choices=["mono", "poly"], default="mono")
    parser.add_argument("--data-dir", type=Path, help="ELPV folder (labels.csv + images/)")
    parser.add_argument("--backbone", default="mobilenet_v2")
    parser.add_argument("--weights", default="imagenet", choices=["imagenet", "random"])
    parser.add_argument("--variant", default="se", choices=["none", "se", "cbam"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--flow", choices=list(FLOWS), default="paper")
    train = parser.add_argument_group("training comparison")
    train.add_argument("--skip-train", action="store_true")
    train.add_argument(
        "--train-images", type=int, default=27, help="normal cells given to train() (0 = split)"
    )
    train.add_argument("--train-size", type=int, default=224, help="image size for training")
    train.add_argument("--epochs", type=int, default=12)
    train.add_argument("--cache-views", type=int, default=8)
    train.add_argument(
        "--eval-normal", type=int, default=20, help="held-out normal cells (0 = all)"
    )
    train.add_argument("--eval-defect", type=int, default=20, help="defective cells (0 = all)")
    train.add_argument("--eval-views", type=int, default=16)
    score = parser.add_argument_group("scoring")
    score.add_argument("--skip-score", action="store_true")
    score.add_argument("--score-size", type=int, default=448)
    score.add_argument("--views", nargs="+", type=int, default=[64, 16, 4])
    score.add_argument(
        "--view-budget",
        type=int,
        default=64,
        help="views per batched measurement (images = this / views)",
    )
    score.add_argument("--explain-images", type=int, default=2)
    score.add_argument(
        "--score-backbones",
        nargs="+",
        default=["mobilenet_v2:imagenet", "alexnet:random"],
        help="name:weights; timings do not depend on the weights (alexnet = the paper's backbone)",
    )
    project = parser.add_argument_group("projection to the paper's schedule")
    project.add_argument(
        "--project-images", type=int, default=371, help="ELPV mono: 412 - 41 held out"
    )
    project.add_argument("--project-epochs", type=int, default=192)
    project.add_argument("--project-cache-views", type=int, default=32)
    parser.add_argument(
        "--thread-check",
        action="store_true",
        help="first time the extractor under three OpenMP settings (shared-machine diagnosis)",
    )
    parser.add_argument("--thread-rounds", type=int, default=3)
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--worker-timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--json", action=argparse.BooleanOptionalAction, default=True, help="also write raw JSON"
    )
    return parser


def run_worker(
    job: dict[str, Any], timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``job`` in a fresh ``python -m bench.speed_worker`` process; its JSON result or error.

    ``env`` entries are added to (or, when empty, removed from) the child's environment.
    """
    child_env = dict(os.environ)
    for key, value in (env or {}).items():
        if value:
            child_env[key] = value
        else:
            child_env.pop(key, None)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(job, handle)
    flags = ["-S"] if sys.flags.no_site else []  # keep the parent's isolation in the child
    command = [sys.executable, *flags, "-m", "bench.speed_worker", handle.name]
    try:
        done = subprocess.run(
            command,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=child_env,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    finally:
        Path(handle.name).unlink(missing_ok=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"error": f"exit {done.returncode}: {' / '.join(tail)}"}
    return json.loads(lines[-1])


def data_paths(args: argparse.Namespace) -> tuple[list[str], list[str], list[int]]:
    """Training paths, evaluation paths and labels (seeded subsets of split seed 0)."""
    limits = SubsetLimits(
        train=args.train_images or None,
        test_normal=args.eval_normal or None,
        test_defect=args.eval_defect or None,
    )
    split = limits.apply(make_elpv_split(args.cell_type, 0, data_dir=args.data_dir))
    train = [str(r.path) for r in split.train]
    evaluation = [str(r.path) for r in split.test]
    labels = [int(r.label or 0) for r in split.test]
    return train, evaluation, labels


def train_comparison(args: argparse.Namespace, results: dict[str, Any], save: Any) -> None:
    """Both procedures, cache first (same seed, data, epochs and flow updates)."""
    train, evaluation, labels = data_paths(args)
    spec = RunSpec(
        cell_type=args.cell_type,
        seed=0,
        variant=args.variant,
        backbone=args.backbone,
        weights=args.weights,
        image_size=args.train_size,
        epochs=args.epochs,
        cache_views=args.cache_views,
        test_views=args.eval_views,
        flow=args.flow,
    )
    for cache in (True, False):
        name = "feature cache (engine default)" if cache else "no cache (DifferNet procedure)"
        log(f"training: {name}")
        job = {
            "kind": "train",
            "spec": spec.replace(feature_cache=cache).__dict__,
            "device": args.device,
            "train": train,
            "eval": evaluation,
            "labels": labels,
            "bootstrap": args.bootstrap,
        }
        results.setdefault("train", {})[name] = run_worker(job, args.worker_timeout)
        results["train_data"] = {
            "train": len(train),
            "eval": len(evaluation),
            "defect": sum(labels),
        }
        save()


def make_checkpoint(args: argparse.Namespace, backbone: str, weights: str, folder: Path) -> Path:
    """A detector at the scoring size (untrained flow: timings do not depend on its weights)."""
    spec = RunSpec(
        cell_type=args.cell_type,
        seed=0,
        variant=args.variant,
        backbone=backbone,
        weights=weights,
        image_size=args.score_size,
        flow=args.flow,
    )
    config = spec.config(args.device)
    torch.manual_seed(0)
    model = AttentDifferNetModel(config.model)
    detector = Detector(model, config, Calibration.from_scores([1.0], 0.99), torch.device("cpu"))
    return detector.save(folder / f"{backbone}-{args.variant}.adn")


def scoring(args: argparse.Namespace, results: dict[str, Any], save: Any) -> None:
    """One fresh process per backbone: load, then time scoring at each view count."""
    _, evaluation, _ = data_paths(args)
    for item in args.score_backbones:
        backbone, _, weights = item.partition(":")
        log(f"scoring: {backbone}")
        with tempfile.TemporaryDirectory(prefix="adn-speed-") as folder:
            checkpoint = make_checkpoint(args, backbone, weights or "imagenet", Path(folder))
            job = {
                "kind": "score",
                "checkpoint": str(checkpoint),
                "device": args.device,
                "images": evaluation,
                "views": args.views,
                "view_budget": args.view_budget,
                "explain_images": args.explain_images,
            }
            results.setdefault("score", {})[item] = run_worker(job, args.worker_timeout)
        save()


THREAD_SETTINGS = {
    "2 threads, OMP_WAIT_POLICY unset (default)": {"OMP_WAIT_POLICY": "", "OMP_NUM_THREADS": ""},
    "2 threads, OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": ""},
    "1 thread": {"OMP_WAIT_POLICY": "", "OMP_NUM_THREADS": "1"},
}


def thread_check(args: argparse.Namespace, results: dict[str, Any], save: Any) -> None:
    """Extractor speed under three OpenMP settings, one fresh process each, interleaved rounds."""
    spec = RunSpec(args.cell_type, 0, variant=args.variant, backbone=args.backbone,
                   weights=args.weights, image_size=args.train_size, flow="tiny")  # fmt: skip
    for round_number in range(1, args.thread_rounds + 1):
        for label, env in THREAD_SETTINGS.items():
            log(f"threads, round {round_number}: {label}")
            load = load_average()
            job = {"kind": "views", "spec": spec.__dict__}
            found = run_worker(job, args.worker_timeout, env) | {"load": load}
            results.setdefault("threads", {})[f"{round_number}: {label}"] = found
            save()


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and write the table (rewritten after every stage)."""
    args = build_parser().parse_args(argv)
    device = select_device(args.device)
    results: dict[str, Any] = {}
    settings = {
        "cell type": args.cell_type,
        "backbone": f"{args.backbone} ({args.weights})",
        "variant": args.variant,
        "flow": args.flow,
        "train": f"{args.train_images or 'all'} images given to train() (10 % held out), "
        f"{args.train_size} px, {args.epochs} epochs, 24 images × 4 views per step, "
        f"cache {args.cache_views} views/image",
        "eval": f"{args.eval_normal or 'all'} normal + {args.eval_defect or 'all'} defective "
        f"held-out cells, {args.eval_views} views",
        "scoring": f"{args.score_size} px, views {' '.join(map(str, args.views))}, "
        f"view budget {args.view_budget}",
    }
    report = Report("Speed and memory", device, settings, status="running")
    report.notes.append(SHARED_MACHINE_NOTE)
    note = payload_note(args.data_dir)
    if note:
        report.notes.append(f"data: {note}")

    def save() -> None:
        add_sections(report, results, args)
        report.write(args.out)
        if args.json:
            args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))

    if args.thread_check:
        thread_check(args, results, save)
    if not args.skip_train:
        train_comparison(args, results, save)
    if not args.skip_score:
        scoring(args, results, save)
    report.status = "complete"
    save()
    log(f"table written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
