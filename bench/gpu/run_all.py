"""Every benchmark on the GPU box in one go, inside a time budget, tables written as it goes.

Stages, in priority order (each starts only with time left, each failure is logged and the next
stage still runs): probe (unit costs, epoch count), scoring speed, the ELPV quality table with
baselines (3 seeds × none/se/cbam on mobilenet_v2, then AlexNet with random weights), the
ablations (seed 0), and the training-speed comparison. Output: flat files in ``--out`` ($OUT).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from bench import ablations, elpv_quality, speed
from bench.common import machine_description, versions
from bench.probe import auto_epochs, measure
from bench.runner import RunSpec
from engine.data.elpv import make_elpv_split
from engine.device import select_device


class Tee:
    """Write to the console and to the log file."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def build_parser() -> argparse.ArgumentParser:
    """Options (the shell wrapper passes the cell type and the environment's settings)."""
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.run_all", description=__doc__)
    parser.add_argument("cell_type", choices=["mono", "poly"])
    parser.add_argument(
        "--out", type=Path, default=Path(os.environ.get("OUT", "bench/results/gpu"))
    )
    parser.add_argument("--data-dir", type=Path, default=Path(".gpu_payload/elpv"))
    parser.add_argument("--epochs", default="auto", help="an integer, or auto (fit the budget)")
    parser.add_argument(
        "--budget-s", type=float, help="whole script, seconds (default 285; 3600 with --tiny)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tiny", action="store_true", help="tiny settings: a CPU dry run")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stages; always exit 0 after writing what was finished (failures are in the log)."""
    args = build_parser().parse_args(argv)
    if args.budget_s is None:
        args.budget_s = 3600.0 if args.tiny else 285.0
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    log_file = (args.out / "log.txt").open("a", encoding="utf-8")
    console = sys.__stderr__ or sys.stderr
    sys.stderr = Tee(console, log_file)

    def left() -> float:
        return args.budget_s - (time.monotonic() - started)

    def say(message: str) -> None:
        print(f"[run_all {time.monotonic() - started:6.1f} s] {message}", file=sys.stderr)

    def stage(name: str, action: Callable[[], object]) -> None:
        say(f"{name}: start ({left():.0f} s left)")
        try:
            action()
            say(f"{name}: done")
        except Exception:  # one failed stage must not lose the others' tables
            say(f"{name}: FAILED\n{traceback.format_exc()}")

    device = select_device(args.device)
    say(f"{machine_description(device)}; {versions()}; budget {args.budget_s:.0f} s")
    tiny = args.tiny
    size, test_views, cache_views = (64, 4, 4) if tiny else (448, 64, 32)
    flow = "tiny" if tiny else "paper"
    data = ["--data-dir", str(args.data_dir), "--device", args.device]
    subset = (
        ["--max-train", "16", "--max-test-normal", "6", "--max-test-defect", "6", "--max-mild", "4"]
        if tiny
        else []
    )
    probe_file = args.out / "probe.json"
    epochs = {"value": 2 if tiny else 48}

    def probe() -> None:
        spec = RunSpec(args.cell_type, 0, variant="se", image_size=size, flow=flow)
        found = measure(spec, device, 8 if tiny else 128)
        split = make_elpv_split(args.cell_type, 0, data_dir=args.data_dir)
        counts = (len(split.train), len(split.test), len(split.mild))
        if args.epochs != "auto":
            epochs["value"] = int(args.epochs)
        elif not tiny:
            epochs["value"] = auto_epochs(found, 9, 0.2 * args.budget_s, counts[0])
        found |= {"counts": counts, "epochs": epochs["value"]}
        probe_file.write_text(json.dumps(found, indent=1))
        say(f"probe: {json.dumps(found)}")

    def schedule() -> list[str]:
        return [
            "--epochs", str(epochs["value"]),
            "--image-size", str(size),
            "--test-views", str(test_views),
            "--cache-views", str(cache_views),
            "--flow", flow,
        ]  # fmt: skip

    def quality() -> None:
        elpv_quality.main(
            [
                "--types", args.cell_type,
                "--seeds", "0", "1", "2",
                "--backbones", "mobilenet_v2:imagenet", "alexnet:random",
                *schedule(), *data, *subset,
                "--out", str(args.out / "quality.md"),
                "--store", str(args.out / "runs.jsonl"),
                "--probe", str(probe_file),
                "--baseline-train-views", "4" if tiny else "16",
                "--budget-s", f"{max(1.0, left() - 0.3 * args.budget_s):.0f}",
            ]
        )  # fmt: skip

    def ablation_stage() -> None:
        ablations.main(
            [
                "--types", args.cell_type,
                "--seeds", "0",
                "--groups", "views", "epochs", "image-size", "se-ratio", "cbam-kernel",
                "cbam-residual", "position", "train-attention",
                "--size-variants", "none",
                *schedule(), *data, *subset,
                "--out", str(args.out / "ablations.md"),
                "--store", str(args.out / "runs.jsonl"),
                "--probe", str(probe_file),
                "--budget-s", f"{max(1.0, left() - 0.12 * args.budget_s):.0f}",
            ]
        )  # fmt: skip

    def scoring_speed() -> None:
        speed.main(
            [
                "--cell-type", args.cell_type, *data, "--flow", flow, "--skip-train",
                "--score-size", str(size),
                "--views", *(["8", "4", "2"] if tiny else ["64", "16", "4"]),
                "--view-budget", "16" if tiny else "2048",
                "--explain-images", "1" if tiny else "8",
                "--score-backbones", "mobilenet_v2:imagenet",
                "--out", str(args.out / "speed.md"), "--no-json",
            ]
        )  # fmt: skip

    def training_speed() -> None:
        if left() < (10 if tiny else 45):
            say("training speed: skipped, not enough time left")
            return
        speed.main(
            [
                "--cell-type", args.cell_type, *data, "--flow", flow, "--skip-score",
                "--train-images", "16" if tiny else "0",
                "--train-size", str(size),
                "--epochs", "2" if tiny else "4",
                "--cache-views", "2" if tiny else "8",
                "--eval-normal", "4" if tiny else "0",
                "--eval-defect", "4" if tiny else "0",
                "--eval-views", "4" if tiny else "16",
                "--out", str(args.out / "speed-train.md"), "--no-json",
            ]
        )  # fmt: skip

    stage("probe", probe)
    stage("scoring speed", scoring_speed)
    stage("quality", quality)
    stage("ablations", ablation_stage)
    stage("training speed", training_speed)
    say(f"finished; files in {args.out}: {', '.join(sorted(p.name for p in args.out.iterdir()))}")
    log_file.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
