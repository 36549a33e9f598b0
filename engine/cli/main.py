"""Argument parsing and dispatch for ``adn``; engine errors become one readable line and exit 1."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from engine.cli import commands
from engine.cli.options import add_data_options, add_model_options
from engine.errors import EngineError
from engine.models.attentdiffernet.heatmaps import DEFAULT_HEATMAP_METHOD, HEATMAP_METHODS

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The full ``adn`` parser with one sub-command per engine capability."""
    parser = argparse.ArgumentParser(
        prog="adn",
        description="AttentDifferNet anomaly detection: train on normal images, score, evaluate "
        "and explain with heatmaps.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="train a detector on normal images",
        description="Train a detector on normal images and save it.",
    )
    add_data_options(train)
    add_model_options(train)
    train.add_argument("--out", required=True, help="checkpoint file to write (.adn)")
    train.set_defaults(handler=commands.train_command)

    score = sub.add_parser(
        "score",
        help="score images with a trained detector",
        description="Score images; prints one line per image (or CSV/JSON).",
    )
    score.add_argument("--model", required=True, help="checkpoint written by `adn train`")
    score.add_argument("images", nargs="+", help="image files or folders")
    score.add_argument("--threshold", type=float, help="decision threshold (default: calibrated)")
    score.add_argument("--views", type=int, help="rotations averaged per image (default: model's)")
    score.add_argument(
        "--format",
        choices=["table", "csv", "json"],
        default="table",
        help="output format on stdout",
    )
    score.add_argument("--device", default="auto", help="auto, cuda or cpu")
    score.set_defaults(handler=commands.score_command)

    evaluate = sub.add_parser(
        "eval",
        help="AUROC of a detector on labelled test images",
        description="Image AUROC with a bootstrap 95 %% interval.",
    )
    evaluate.add_argument("--model", required=True, help="checkpoint written by `adn train`")
    add_data_options(evaluate)
    evaluate.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    evaluate.add_argument("--scores-csv", help="also write per-image scores to this CSV")
    evaluate.add_argument("--device", default="auto", help="auto, cuda or cpu")
    evaluate.set_defaults(handler=commands.eval_command)

    explain = sub.add_parser(
        "explain",
        help="heatmap of one image",
        description="Write the heatmap and an overlay of one image.",
    )
    explain.add_argument("--model", required=True, help="checkpoint written by `adn train`")
    explain.add_argument("image", help="image file")
    explain.add_argument("--out", required=True, help="heatmap PNG to write (grayscale)")
    explain.add_argument("--overlay", help="also write the heatmap blended over the image")
    explain.add_argument("--alpha", type=float, default=0.5, help="overlay opacity in [0, 1]")
    explain.add_argument(
        "--method",
        default=DEFAULT_HEATMAP_METHOD,
        choices=HEATMAP_METHODS,
        help="heatmap method (bench/results/heatmaps.md measures each)",
    )
    explain.add_argument("--device", default="auto", help="auto, cuda or cpu")
    explain.set_defaults(handler=commands.explain_command)

    reproduce = sub.add_parser(
        "reproduce",
        help="the paper's AUROC tables on an MVTec-AD-style root",
        description="Train and evaluate every category × variant and write a table in the layout "
        "of the paper's Tables 2-4 (use --preset paper for the paper's schedule).",
    )
    reproduce.add_argument("--root", required=True, help="MVTec-AD-style root folder")
    reproduce.add_argument("--categories", nargs="+", help="categories (default: all found)")
    add_model_options(reproduce, several_variants=True)
    reproduce.add_argument(
        "--out-dir", default="results", help="where models, scores and the table go"
    )
    reproduce.add_argument(
        "--no-keep-models", action="store_true", help="do not keep the checkpoints (they are large)"
    )
    reproduce.set_defaults(handler=commands.reproduce_command)

    demo = sub.add_parser(
        "demo",
        help="train and evaluate on the ELPV sample (a few minutes)",
        description="Train a detector on ELPV cells, print its AUROC and write "
        "the model and a few heatmaps.",
    )
    demo.add_argument("--cell-type", choices=["mono", "poly"], default="mono")
    demo.add_argument("--variant", choices=["none", "se", "cbam"], default="se")
    demo.add_argument("--out-dir", default="artifacts/demo", help="where outputs go")
    demo.add_argument("--epochs", type=int, default=8, help="training epochs")
    demo.set_defaults(handler=commands.demo_command)

    weights = sub.add_parser(
        "weights",
        help="which backbone weights are available offline",
        description="Show where each backbone's ImageNet weights come from.",
    )
    weights.set_defaults(handler=commands.weights_command)

    layout = sub.add_parser(
        "elpv-layout",
        help="write ELPV as MVTec-AD-style folders",
        description="Write ELPV cells as <root>/elpv_<type>/{train,test}/...",
    )
    layout.add_argument("--root", required=True, help="target folder")
    layout.add_argument("--split-seed", type=int, default=0, help="seed of the split")
    layout.set_defaults(handler=commands.elpv_layout_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``adn``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.handler(args)
    except EngineError as exc:
        print(f"adn {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"adn {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
