"""A new production lot and the studio's answer to it, on ELPV: drift statistics, then a child
model retrained from the normals a reviewer confirmed.

For each split seed: the parent is the CLI's default detector (``adn train --elpv TYPE``: the
``fast`` preset, MobileNetV2) trained on the split's normal training cells. The new lot is the
split's test cells under one acquisition change (``bench/lot_change.py``: by default a softer
focus and another tone curve, as a new lens or camera setting would give). A simulated reviewer
confirms ``k`` normal cells of the new lot (a seeded choice); the child is trained from scratch on
the parent's training cells plus those ``k`` (``plain``), or with the ``k`` repeated until they
make up ``--balanced-share`` of the training set (``balanced``). Both models are scored on the
rest of the new lot (the ``k`` left out). Reported per ``k``: AUROC and the share of the AUROC
lost to the lot that the child recovers, the false-alarm rate of each model at its own
calibration threshold (the studio's child starts from its own calibration), training time, and
what the studio's drift statistics (``dashboard/services/drift_statistics.py``) say of batches of
the old and the new lot before and after. ``python -m bench.drift_feedback`` writes
``bench/results/drift-feedback.md``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from bench.common import RESULTS_DIR, Report, config_digest, log, md_table
from bench.elpv_data import ImageCache, SplitImages
from bench.heatmaps import job_config
from bench.lot_change import LotChange
from dashboard.services.drift_statistics import drift_stats, reference
from dashboard.services.metrics import auroc
from engine import Detector, train

Record = dict[str, Any]
DEFAULT_LOT = LotChange(gamma=0.8, blur_sigma=1.5)
BATCH_NORMALS = 40
BATCH_DEFECTS = 2  # about 5 % defective, as an inspected batch of a working line
MODES = ("plain", "balanced")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell-type", default="mono", choices=("mono", "poly"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--confirmed", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--balanced-share", type=float, default=0.25)
    parser.add_argument(
        "--max-copies", type=int, default=None, help="at most this many copies of a cell"
    )
    parser.add_argument("--gamma", type=float, default=DEFAULT_LOT.gamma)
    parser.add_argument("--gain", type=float, default=DEFAULT_LOT.gain)
    parser.add_argument("--offset", type=float, default=DEFAULT_LOT.offset)
    parser.add_argument("--blur-sigma", type=float, default=DEFAULT_LOT.blur_sigma)
    parser.add_argument("--jobs", type=int, default=1, help="seeds run at once (1 thread each)")
    parser.add_argument("--store", type=Path, default=RESULTS_DIR / "drift-feedback-runs.jsonl")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "drift-feedback.md")
    parser.add_argument("--report-only", action="store_true", help="write the report, run nothing")
    parser.add_argument("--data-dir", type=Path, default=None)
    return parser.parse_args(argv)


def lot_of(args: argparse.Namespace) -> LotChange:
    """The lot change the options name."""
    return LotChange(
        gamma=args.gamma, gain=args.gain, offset=args.offset, blur_sigma=args.blur_sigma
    )


def _arrays(images: torch.Tensor) -> list[np.ndarray]:
    return [image.permute(1, 2, 0).numpy() for image in images]


def _scores(detector: Detector, images: torch.Tensor) -> np.ndarray:
    batch = detector.score(_arrays(images))
    if batch.failures:
        raise RuntimeError(f"{len(batch.failures)} cells could not be scored")
    return batch.scores


def _auroc(normal: np.ndarray, defect: np.ndarray) -> float:
    truth = np.r_[np.zeros(normal.size, bool), np.ones(defect.size, bool)]
    return auroc(np.r_[normal, defect], truth)


def _batches(normal: np.ndarray, defect: np.ndarray) -> list[np.ndarray]:
    """Inspected batches: ``BATCH_NORMALS`` normal and ``BATCH_DEFECTS`` defective cells each."""
    count = min(normal.size // BATCH_NORMALS, defect.size // BATCH_DEFECTS)
    return [
        np.r_[
            normal[i * BATCH_NORMALS : (i + 1) * BATCH_NORMALS],
            defect[i * BATCH_DEFECTS : (i + 1) * BATCH_DEFECTS],
        ]
        for i in range(count)
    ]


def _drift(detector: Detector, batches: list[np.ndarray]) -> dict[str, Any]:
    """How many batches the studio's drift rules flag, and their median figures."""
    ref = reference(detector.calibration.scores)
    stats = [drift_stats(ref, batch) for batch in batches]
    return {
        "batches": len(stats),
        "drifted": sum(s.drifted for s in stats),
        "share_above_p99": float(np.median([s.share_above for s in stats])),
        "expected_share": ref.expected_share,
        "psi": float(np.median([s.psi for s in stats])),
        "ks": float(np.median([s.ks_statistic for s in stats])),
    }


def _model_figures(
    detector: Detector, normal: np.ndarray, defect: np.ndarray, batches: list[np.ndarray]
) -> dict[str, Any]:
    threshold = detector.default_threshold
    return {
        "auroc": _auroc(normal, defect),
        "false_alarms": float(np.mean(normal >= threshold)) if threshold is not None else None,
        "recall": float(np.mean(defect >= threshold)) if threshold is not None else None,
        "drift": _drift(detector, batches),
    }


def _files(folder: Path, prefix: str, images: torch.Tensor) -> list[Path]:
    """The images as PNG files, so that a cell given twice is one source to the trainer (its
    copies are then held out for calibration whole or not at all, as in the studio)."""
    paths = []
    for index, image in enumerate(images):
        path = folder / f"{prefix}-{index:05d}.png"
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(path)
        paths.append(path)
    return paths


def _train(config: Any, images: list[Path]) -> tuple[Detector, float]:
    started = time.monotonic()
    detector = train(config, images).detector
    return detector, time.monotonic() - started


def run_seed(args: argparse.Namespace, seed: int) -> list[Record]:
    """The parent, the lot, and every child of one split seed."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    lot = lot_of(args)
    config = job_config("none", seed)
    images = ImageCache(args.data_dir).get(args.cell_type, config.model.image_size).split(seed)
    with tempfile.TemporaryDirectory() as folder:
        return _run_seed(args, seed, lot, config, images, Path(folder))


def _run_seed(
    args: argparse.Namespace,
    seed: int,
    lot: LotChange,
    config: Any,
    images: SplitImages,
    folder: Path,
) -> list[Record]:
    train_cells = _files(folder, "train", images.train)
    parent, parent_s = _train(config, train_cells)
    log(f"seed {seed}: parent trained on {len(train_cells)} cells in {parent_s:.0f} s")
    old_normal = _scores(parent, images.test_normal)
    old_defect = _scores(parent, images.test_defect)
    new_normal_images = lot.apply(images.test_normal)
    new_defect_images = lot.apply(images.test_defect)
    new_normal = _scores(parent, new_normal_images)
    new_defect = _scores(parent, new_defect_images)
    rng = np.random.default_rng(1000 + seed)
    order = rng.permutation(len(new_normal_images))
    records: list[Record] = []
    for k in args.confirmed:
        confirmed, rest = order[:k], np.sort(order[k:])
        rest_batches = _batches(new_normal[rest], new_defect)
        parent_record: Record = {
            "clean": _model_figures(
                parent, old_normal[rest], old_defect, _batches(old_normal[rest], old_defect)
            ),
            "lot": _model_figures(parent, new_normal[rest], new_defect, rest_batches),
            "train_s": parent_s,
        }
        added = _files(folder, f"confirmed-k{k}", new_normal_images[torch.as_tensor(confirmed)])
        for mode in args.modes:
            copies = 1
            if mode == "balanced":
                share = args.balanced_share
                copies = max(1, round(share * len(train_cells) / ((1 - share) * max(k, 1))))
                copies = min(copies, args.max_copies or copies)
            child, child_s = _train(config, train_cells + added * copies)
            child_normal = _scores(child, new_normal_images[torch.as_tensor(rest)])
            child_defect = _scores(child, new_defect_images)
            child_record = _model_figures(
                child, child_normal, child_defect, _batches(child_normal, child_defect)
            )
            child_record["train_s"] = child_s
            child_record["copies"] = copies
            record = {
                "cell_type": args.cell_type,
                "seed": seed,
                "config": config_digest(config),
                "k": k,
                "mode": mode,
                "lot": lot.describe(),
                "train_cells": len(train_cells),
                "rest_normal": int(rest.size),
                "defect": int(new_defect.size),
                "parent": parent_record,
                "child": child_record,
            }
            log(
                f"seed {seed} k {k} {mode}: parent {parent_record['lot']['auroc']:.3f} "
                f"(clean {parent_record['clean']['auroc']:.3f}), child {child_record['auroc']:.3f}"
            )
            records.append(record)
    return records


def recovered(record: Record) -> float | None:
    """The share of the AUROC the lot cost the parent that the child wins back."""
    clean = record["parent"]["clean"]["auroc"]
    lot = record["parent"]["lot"]["auroc"]
    lost = clean - lot
    if lost <= 0:
        return None
    return (record["child"]["auroc"] - lot) / lost


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}"


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def recovery_table(records: Sequence[Record]) -> str:
    """Per mode and k, means over seeds."""
    rows = []
    keys = sorted({(r["mode"], r["k"]) for r in records}, key=lambda m: (MODES.index(m[0]), m[1]))
    for mode, k in keys:
        group = [r for r in records if (r["mode"], r["k"]) == (mode, k)]
        seeds = " ".join(str(r["seed"]) for r in group)
        rows.append(
            [
                mode,
                k,
                seeds,
                _pct(_mean([r["parent"]["clean"]["auroc"] for r in group]), 2),
                _pct(_mean([r["parent"]["lot"]["auroc"] for r in group]), 2),
                _pct(_mean([r["child"]["auroc"] for r in group]), 2),
                _pct(_mean([recovered(r) for r in group]), 0),
                " / ".join(_pct(recovered(r), 0) for r in group),
                _pct(_mean([r["parent"]["lot"]["false_alarms"] for r in group])),
                _pct(_mean([r["child"]["false_alarms"] for r in group])),
                _pct(_mean([r["child"]["recall"] for r in group])),
                f"{_mean([r['child']['train_s'] for r in group]) or 0:.0f}",
            ]
        )
    return md_table(
        [
            "child",
            "k confirmed",
            "seeds",
            "parent AUROC %, old lot",
            "parent AUROC %, new lot",
            "child AUROC %, new lot",
            "recovered % (mean)",
            "recovered % per seed",
            "parent false alarms %, new lot",
            "child false alarms %, new lot",
            "child recall %, new lot",
            "child training s",
        ],
        rows,
    )


def drift_table(records: Sequence[Record]) -> str:
    """What the drift rules said of each lot's batches, per model."""
    rows = []
    by_seed: dict[int, Record] = {}
    for record in records:
        by_seed.setdefault(record["seed"], record)
    for label, pick in (
        ("parent, old lot", lambda r: r["parent"]["clean"]["drift"]),
        ("parent, new lot", lambda r: r["parent"]["lot"]["drift"]),
    ):
        figures = [pick(r) for r in by_seed.values()]
        rows.append(_drift_row(label, "–", figures))
    keys = sorted({(r["mode"], r["k"]) for r in records}, key=lambda m: (MODES.index(m[0]), m[1]))
    for mode, k in keys:
        figures = [r["child"]["drift"] for r in records if (r["mode"], r["k"]) == (mode, k)]
        rows.append(_drift_row(f"child ({mode}), new lot", str(k), figures))
    return md_table(
        [
            "model, batches",
            "k",
            "batches flagged / scored",
            "median share above p99 % (expected)",
            "median PSI",
            "median KS D",
        ],
        rows,
    )


def _drift_row(label: str, k: str, figures: list[dict[str, Any]]) -> list[object]:
    flagged = sum(f["drifted"] for f in figures)
    total = sum(f["batches"] for f in figures)
    share = _mean([f["share_above_p99"] for f in figures])
    expected = _mean([f["expected_share"] for f in figures])
    return [
        label,
        k,
        f"{flagged} / {total}",
        f"{_pct(share)} ({_pct(expected)})",
        f"{_mean([f['psi'] for f in figures]) or 0:.2f}",
        f"{_mean([f['ks'] for f in figures]) or 0:.2f}",
    ]


def targets(records: Sequence[Record]) -> str:
    """The issue's targets, measured."""
    plain25 = [r for r in records if r["k"] == 25]
    lines = []
    for mode in MODES:
        group = [r for r in plain25 if r["mode"] == mode]
        if not group:
            continue
        values = [recovered(r) for r in group]
        mean = _mean(values)
        verdict = "met" if mean is not None and mean >= 0.8 else "not met"
        lines.append(
            f"- 25 confirmed normals recover ≥ 80 % of the AUROC lost to the lot ({mode} child): "
            f"**{verdict}** (mean {_pct(mean, 0)} %, per seed "
            f"{' / '.join(_pct(v, 0) for v in values)})"
        )
    by_seed: dict[int, Record] = {}
    for record in records:
        by_seed.setdefault(record["seed"], record)
    old = [r["parent"]["clean"]["drift"] for r in by_seed.values()]
    new = [r["parent"]["lot"]["drift"] for r in by_seed.values()]
    old_flags = sum(f["drifted"] for f in old)
    new_flags = sum(f["drifted"] for f in new)
    fires = new_flags == sum(f["batches"] for f in new) and old_flags == 0
    lines.append(
        f"- the drift warning fires on the new lot's batches and not on the old lot's: "
        f"**{'met' if fires else 'not met'}** (new lot {new_flags} of "
        f"{sum(f['batches'] for f in new)} batches flagged, old lot {old_flags} of "
        f"{sum(f['batches'] for f in old)})"
    )
    return "\n".join(lines)


def read_store(path: Path) -> list[Record]:
    """Every stored record."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def write_report(args: argparse.Namespace, records: list[Record], status: str) -> Path:
    """The Markdown report from the stored records."""
    report = Report(
        "A new lot on ELPV: drift statistics and retraining from confirmed normals",
        None,
        {
            "cell_type": args.cell_type,
            "seeds": " ".join(map(str, sorted({r["seed"] for r in records}))),
            "confirmed": " ".join(map(str, args.confirmed)),
            "detector": "adn train defaults (fast preset, mobilenet_v2, ImageNet weights, 224 px)",
            "lot change": lot_of(args).describe(),
        },
        status=status,
    )
    report.notes += [
        "parent: trained on the split's normal training cells; new lot: the split's test cells "
        "under the lot change; the k confirmed normals are a seeded choice of the new lot's "
        "normal cells and are left out of every figure",
        f"balanced child: the k confirmed cells repeated until they make up "
        f"{args.balanced_share:.0%} of the training set"
        + (f", at most {args.max_copies} copies each" if args.max_copies else "")
        + " (a cell and its copies are held out for calibration whole or not at all)",
        f"drift batches: {BATCH_NORMALS} normal and {BATCH_DEFECTS} defective cells each, scored "
        "by the model named, against that model's calibration normals",
        "false alarms and recall: at each model's own calibration threshold",
        "one torch thread per seed; times include the backbone passes",
    ]
    if args.report_only:
        report.notes.append(
            "rebuilt from the stored runs without running any: the machine line is where the "
            "report was written, the times were measured when the runs ran"
        )
    report.add("Targets", targets(records))
    report.add("AUROC on the rest of the new lot, means over seeds", recovery_table(records))
    report.add("Drift statistics (the studio's rules), batches of each lot", drift_table(records))
    return report.write(args.out)


def of_today(records: Sequence[Record]) -> list[Record]:
    """The records of today's default detector (a run of an earlier default has another config
    digest, or none)."""
    digests = {
        seed: config_digest(job_config("none", seed)) for seed in {r["seed"] for r in records}
    }
    return [r for r in records if r.get("config") == digests[r["seed"]]]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the seeds not stored yet for today's default, then write the report."""
    args = parse_args(argv)
    done = {r["seed"] for r in of_today(read_store(args.store))}
    todo = [] if args.report_only else [s for s in args.seeds if s not in done]
    args.store.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for records in pool.map(run_seed, [args] * len(todo), todo):
            with args.store.open("a", encoding="utf-8") as handle:
                for record in records:
                    handle.write(json.dumps(record) + "\n")
            write_report(args, of_today(read_store(args.store)), "running")
    records = [r for r in of_today(read_store(args.store)) if r["seed"] in args.seeds]
    complete = {r["seed"] for r in records} >= set(args.seeds)
    path = write_report(args, records, "complete" if complete else "INCOMPLETE")
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
