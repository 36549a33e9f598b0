"""Detection quality per CPU-minute on ELPV: the CLI's default detector against the baselines.

For each cell type and split seed (engine spec §5, full split) it trains one detector per
attention variant exactly as ``adn train --elpv TYPE --variant V`` does (the ``fast`` preset,
MobileNetV2), each in a fresh process (``bench/budget_worker.py``), and reports:

- image AUROC of the default and of the baselines fitted on the same split and backbone
  (Gaussian on the default's own features, over its 8 views and on the un-rotated view alone;
  PatchCore-style on stride-8/16 patches), with paired bootstrap intervals against the Gaussian;
- training wall time, peak RSS and checkpoint size;
- the drift test (``bench/drift.py``): the same test cells after a per-cell gain and offset;
- each default that differs from the paper, reverted alone (``--switches``), against the default
  on the same cells, with a paired interval;
- AUROC against training time after every epoch (epoch 0 is the untrained flow), with DifferNet's
  original procedure (the paper's schedule, features recomputed every step) on the same data
  side by side, and the time each needs to reach the default's AUROC; a plot of the curves.

Runs are stored in a JSON-lines file keyed by their job, so an interrupted run resumes.
``python -m bench.quality_budget --jobs 2`` runs everything (hours on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.budget_tables import write_report
from bench.budget_worker import BudgetJob
from bench.common import REPO_ROOT, RESULTS_DIR, log

Record = dict[str, Any]


# Each default that differs from the paper, reverted alone (variant none): why it is the default.
SWITCHES = (
    "model.flow_input=standardize",
    "model.intensity=none",
    "model.view_group=rotations",
    "model.feature_stages=last",
    "model.feature_pool=mean",
    "model.patch.enabled=false",
)


def plan(
    types: Sequence[str],
    seeds: Sequence[int],
    variants: Sequence[str],
    differnet_s: float,
    switches: Sequence[str] = (),
    switch_types: Sequence[str] = ("poly",),
) -> list[BudgetJob]:
    """Every run of the benchmark; the DifferNet comparison on the first type and seed, each
    switch on the first seed of ``switch_types``, or on one split when written
    ``TYPE:SEED:section.field=value``."""
    jobs = [
        BudgetJob("default", cell_type, seed, variant)
        for seed in seeds
        for cell_type in types
        for variant in variants
    ]
    for switch in switches:
        pinned = switch.split(":", 2)
        if len(pinned) == 3:
            jobs.append(BudgetJob("switch", pinned[0], int(pinned[1]), "none", change=pinned[2]))
            continue
        jobs += [
            BudgetJob("switch", cell_type, seeds[0], "none", change=switch)
            for cell_type in switch_types
        ]
    if differnet_s > 0:
        jobs.append(BudgetJob("differnet", types[0], seeds[0], "none", budget_s=differnet_s))
    return jobs


def read_store(path: Path) -> dict[str, Record]:
    """Finished records by job key (a half-written last line is ignored)."""
    found: dict[str, Record] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            found[record["key"]] = record
    return found


def run_job(job: BudgetJob, threads: int, data_dir: Path | None) -> Record:
    """One worker process; its record, or the error it died with."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "record.json"
        command = [
            sys.executable,
            "-m",
            "bench.budget_worker",
            json.dumps(job.__dict__),
            str(out),
            str(data_dir or ""),
        ]
        done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{job.key} failed:\n{done.stderr[-4000:]}")
        return dict(json.loads(out.read_text(encoding="utf-8")))


def main(argv: Sequence[str] | None = None) -> int:
    """Run what the store lacks, then write the report."""
    parser = argparse.ArgumentParser(prog="python -m bench.quality_budget", description=__doc__)
    parser.add_argument("--types", nargs="+", default=["mono", "poly"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=["none", "se", "cbam"])
    parser.add_argument(
        "--differnet-s",
        type=float,
        default=3600.0,
        help="training budget of DifferNet's original procedure (0 skips it)",
    )
    parser.add_argument(
        "--switches",
        nargs="*",
        default=list(SWITCHES),
        help="settings of the default to change one at a time (section.field=value, or "
        "TYPE:SEED:section.field=value for one split; none: skip)",
    )
    parser.add_argument("--switch-types", nargs="+", default=["poly"])
    parser.add_argument("--jobs", type=int, default=1, help="worker processes at a time")
    parser.add_argument("--data-dir", type=Path, help="ELPV data folder (default: the package)")
    parser.add_argument("--store", type=Path, default=RESULTS_DIR / "quality-budget-runs.jsonl")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "quality-budget.md")
    parser.add_argument("--report-only", action="store_true", help="write the report, run nothing")
    args = parser.parse_args(argv)
    jobs = plan(
        args.types, args.seeds, args.variants, args.differnet_s, args.switches, args.switch_types
    )
    done = read_store(args.store)
    todo = [] if args.report_only else [job for job in jobs if job.key not in done]
    threads = 1 if args.jobs > 1 else max(1, os.cpu_count() or 1)
    log(f"{len(jobs) - len(todo)} runs stored, {len(todo)} to run, {args.jobs} at a time")
    args.store.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []

    def work(job: BudgetJob) -> None:
        log(f"start {job.kind} {job.cell_type} seed {job.seed} {job.variant}")
        try:
            record = run_job(job, threads, args.data_dir)
        except RuntimeError as exc:
            failures.append(str(exc))
            log(str(exc))
            return
        with args.store.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        log(f"done {job.kind} {job.cell_type} seed {job.seed} {job.variant}")

    # The long DifferNet run first, so it overlaps the others.
    ordered = sorted(todo, key=lambda job: job.kind != "differnet")
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        list(pool.map(work, ordered))
    records = [r for r in read_store(args.store).values() if r["key"] in {j.key for j in jobs}]
    path = write_report(records, args, complete=len(records) == len(jobs))
    log(f"report written to {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
