"""The paper's Tables 2–4 layout with one command, on any MVTec-AD-style root.

Runs ``adn reproduce`` (every category × none/se/cbam) with the paper's schedule and backbone by
default, and writes the table with the benchmark header (date, machine, versions, command)::

    python -m bench.reproduce_tables --root /data/mvtec_ad --out bench/results/reproduce-mvtec.md

Anything after ``--`` goes to ``adn reproduce`` and overrides the defaults (later options win),
e.g. ``-- --backbone mobilenet_v2 --epochs 4``. ``--elpv-root DIR`` first writes ELPV as
MVTec-AD-style categories there (``adn elpv-layout``) when DIR does not hold them yet.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.common import SHARED_MACHINE_NOTE, Report
from engine.cli.main import main as adn_main
from engine.device import select_device

PAPER_DEFAULTS = ["--preset", "paper", "--backbone", "alexnet"]


def build_parser() -> argparse.ArgumentParser:
    """Options of this script (the rest goes to ``adn reproduce``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.reproduce_tables", description=__doc__.split("\n")[0]
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--root", type=Path, help="MVTec-AD-style root (<category>/train/good ...)")
    where.add_argument("--elpv-root", type=Path, help="write/reuse ELPV categories under this root")
    parser.add_argument("--out", type=Path, default=Path("bench/results/reproduce.md"))
    parser.add_argument("--work-dir", type=Path, help="models and score CSVs (default: temporary)")
    parser.add_argument("--keep-models", action="store_true", help="keep the checkpoints")
    parser.add_argument("--device", default="auto")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="-- then adn reproduce options")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the ELPV layout if asked, run ``adn reproduce``, wrap its table with the header."""
    args = build_parser().parse_args(argv)
    extra = [a for a in args.extra if a != "--"]
    root = args.root or args.elpv_root
    if args.elpv_root is not None and not any(args.elpv_root.glob("elpv_*/train/good")):
        code = adn_main(["elpv-layout", "--root", str(args.elpv_root)])
        if code:
            return code
    with tempfile.TemporaryDirectory(prefix="adn-reproduce-") as scratch:
        work = args.work_dir or Path(scratch)
        command = [
            "reproduce",
            "--root",
            str(root),
            *PAPER_DEFAULTS,
            "--device",
            args.device,
            "--out-dir",
            str(work),
            *([] if args.keep_models else ["--no-keep-models"]),
            *extra,
        ]
        code = adn_main(command)
        table_file = work / "auroc-table.md"
        table = table_file.read_text(encoding="utf-8") if table_file.is_file() else ""
    report = Report(
        "The paper's Tables 2–4 layout (adn reproduce)",
        select_device(args.device),
        {"root": root, "adn command": "adn " + " ".join(command)},
        status="complete" if code == 0 and table else f"FAILED (adn exit code {code})",
    )
    report.notes.append(SHARED_MACHINE_NOTE)
    report.notes.append(
        "defaults: the paper's schedule (preset paper: 448 px, 192 epochs, 64 test views) and "
        "backbone (AlexNet, ImageNet weights); options after `--` override them"
    )
    report.add("adn reproduce output", table.split("\n", 1)[-1].strip() if table else "(no table)")
    report.write(args.out)
    print(f"table written to {args.out}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
