"""The project's ELPV protocol (engine spec §5) on the ``elpv-dataset`` package.

ELPV holds 2,624 grayscale solar-cell images, each with a defect probability (0, 1/3, 2/3 or 1)
and a cell type (``mono`` or ``poly``). Per cell type: normal = probability 0, anomalous =
probability 1, and the mild cells (1/3, 2/3) are kept apart for a separate score distribution. A
seeded fraction of the normal cells trains; the rest of them and every defective cell test.

The split is decided by a keyed hash of each file name, so it is the same on every machine and
Python/numpy version, and it is written to JSON so runs can be compared. Only ``labels.csv`` is
read; images stay on disk.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.data.sources import ImageRecord
from engine.errors import ConfigError, DatasetError

logger = logging.getLogger(__name__)

CELL_TYPES: tuple[str, ...] = ("mono", "poly")
SPLIT_FORMAT = "elpv-split/1"
SPLIT_FILE_NAME = "elpv_split.json"
DEFECT_TYPE = "defect"
MILD_DEFECT_TYPES: dict[float, str] = {1 / 3: "mild-0.33", 2 / 3: "mild-0.67"}
_PROBABILITIES: tuple[float, ...] = (0.0, 1 / 3, 2 / 3, 1.0)
_INSTALL_HINT = "install it with `pip install elpv-dataset` (or the project's `elpv` extra)"


@dataclass(frozen=True)
class ElpvCell:
    """One row of ELPV's ``labels.csv``."""

    path: Path
    probability: float
    cell_type: str


@dataclass(frozen=True)
class ElpvSplit:
    """The seeded split of one cell type; ``mild`` records keep their probability in defect_type."""

    cell_type: str
    seed: int
    train_fraction: float
    train: tuple[ImageRecord, ...]
    test_normal: tuple[ImageRecord, ...]
    test_defect: tuple[ImageRecord, ...]
    mild: tuple[ImageRecord, ...]

    @property
    def category(self) -> str:
        """The category name of this cell type, e.g. ``elpv_mono``."""
        return category_name(self.cell_type)

    @property
    def test(self) -> tuple[ImageRecord, ...]:
        """The AUROC test set: held-out normal cells (label 0) and defective cells (label 1)."""
        return self.test_normal + self.test_defect

    def counts(self) -> dict[str, int]:
        """How many records each part holds."""
        return {
            "train": len(self.train),
            "test_normal": len(self.test_normal),
            "test_defect": len(self.test_defect),
            "mild": len(self.mild),
        }

    def to_json(self, data_dir: Path | None = None) -> str:
        """The split as JSON; paths under ``data_dir`` (default: the package's) are relative."""
        base = _resolved_or_none(data_dir)
        document: dict[str, Any] = {
            "format": SPLIT_FORMAT,
            "cell_type": self.cell_type,
            "category": self.category,
            "seed": self.seed,
            "train_fraction": self.train_fraction,
            "package_version": _package_version(),
            "counts": self.counts(),
            "train": [_portable(r.path, base) for r in self.train],
            "test_normal": [_portable(r.path, base) for r in self.test_normal],
            "test_defect": [_portable(r.path, base) for r in self.test_defect],
            "mild": [
                {"path": _portable(r.path, base), "probability": mild_probability(r)}
                for r in self.mild
            ],
        }
        return json.dumps(document, indent=1)

    @classmethod
    def from_json(cls, text: str, data_dir: Path | None = None) -> ElpvSplit:
        """Rebuild a split; relative paths resolve against ``data_dir`` (default: the package's)."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"ELPV split is not valid JSON ({exc}); write it again") from exc
        if not isinstance(document, dict) or document.get("format") != SPLIT_FORMAT:
            raise DatasetError(
                f"not an ELPV split file (expected format {SPLIT_FORMAT!r}); "
                "write one with ElpvSplit.write()"
            )
        try:
            cell_type = str(document["cell_type"])
            category = category_name(cell_type)
            base = _lazy_base(data_dir)
            train = [_record(base(p), 0, category) for p in document["train"]]
            normal = [_record(base(p), 0, category) for p in document["test_normal"]]
            defect = [_record(base(p), 1, category, DEFECT_TYPE) for p in document["test_defect"]]
            mild = [
                _mild_record(base(m["path"]), float(m["probability"]), category)
                for m in document["mild"]
            ]
            return cls(
                cell_type=cell_type,
                seed=int(document["seed"]),
                train_fraction=float(document["train_fraction"]),
                train=tuple(train),
                test_normal=tuple(normal),
                test_defect=tuple(defect),
                mild=tuple(mild),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"ELPV split file is incomplete ({exc!r}); write it again") from exc

    def write(self, path: str | Path, data_dir: Path | None = None) -> Path:
        """Write the split JSON to ``path`` (parent folders are created) and return the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_json(data_dir), encoding="utf-8")
        return target


def read_elpv_split(path: str | Path, data_dir: Path | None = None) -> ElpvSplit:
    """Read a split written by :meth:`ElpvSplit.write`."""
    source = Path(path)
    if not source.is_file():
        raise DatasetError(f"ELPV split file not found: {source}; create it with make_elpv_split")
    return ElpvSplit.from_json(source.read_text(encoding="utf-8"), data_dir)


def category_name(cell_type: str) -> str:
    """``elpv_mono`` or ``elpv_poly``; anything else is a ConfigError."""
    if cell_type not in CELL_TYPES:
        raise ConfigError(f"ELPV cell type must be one of {CELL_TYPES}, got {cell_type!r}")
    return f"elpv_{cell_type}"


def mild_probability(record: ImageRecord) -> float:
    """The defect probability (1/3 or 2/3) of a mild record."""
    for probability, defect_type in MILD_DEFECT_TYPES.items():
        if record.defect_type == defect_type:
            return probability
    raise ValueError(
        f"{record.path.name} is not a mild ELPV record (defect_type {record.defect_type!r})"
    )


def elpv_data_dir() -> Path:
    """The installed package's data folder (holding ``labels.csv`` and ``images/``)."""
    spec = importlib.util.find_spec("elpv_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"the ELPV dataset package is not installed; {_INSTALL_HINT}")
    data_dir = Path(next(iter(spec.submodule_search_locations))) / "data"
    if not (data_dir / "labels.csv").is_file():
        raise DatasetError(f"{data_dir / 'labels.csv'} is missing; reinstall elpv-dataset")
    return data_dir


def read_elpv_labels(data_dir: Path | None = None) -> list[ElpvCell]:
    """Every row of ``labels.csv`` (``images/cellNNNN.png probability type``)."""
    base = data_dir if data_dir is not None else elpv_data_dir()
    labels = base / "labels.csv"
    if not labels.is_file():
        raise DatasetError(f"ELPV labels not found at {labels}; {_INSTALL_HINT}")
    cells: list[ElpvCell] = []
    for number, line in enumerate(labels.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise DatasetError(f"{labels}:{number}: expected 'path probability type', got {line!r}")
        name, probability, cell_type = fields
        if cell_type not in CELL_TYPES:
            raise DatasetError(f"{labels}:{number}: unknown cell type {cell_type!r}")
        value = _snap_probability(probability, labels, number)
        cells.append(ElpvCell(path=base / name, probability=value, cell_type=cell_type))
    if not cells:
        raise DatasetError(f"{labels} holds no rows; reinstall elpv-dataset")
    return cells


def make_elpv_split(
    cell_type: str,
    seed: int = 0,
    train_fraction: float = 0.7,
    *,
    data_dir: Path | None = None,
) -> ElpvSplit:
    """Split one cell type: ``train_fraction`` of its normal cells train, the rest test."""
    category = category_name(cell_type)
    if not 0.0 < train_fraction < 1.0:
        raise ConfigError(
            f"train_fraction must be between 0 and 1 (exclusive), got {train_fraction}"
        )
    cells = [c for c in read_elpv_labels(data_dir) if c.cell_type == cell_type]
    _require_files(cells)
    normal = _seeded_order([c.path for c in cells if c.probability == 0.0], seed)
    if len(normal) < 2:
        raise DatasetError(
            f"ELPV {cell_type} has {len(normal)} normal cells; at least 2 are needed"
        )
    n_train = min(max(round(len(normal) * train_fraction), 1), len(normal) - 1)
    return ElpvSplit(
        cell_type=cell_type,
        seed=seed,
        train_fraction=train_fraction,
        train=tuple(_record(p, 0, category) for p in sorted(normal[:n_train])),
        test_normal=tuple(_record(p, 0, category) for p in sorted(normal[n_train:])),
        test_defect=tuple(
            _record(c.path, 1, category, DEFECT_TYPE) for c in cells if c.probability == 1.0
        ),
        mild=tuple(
            _mild_record(c.path, c.probability, category)
            for c in cells
            if c.probability in MILD_DEFECT_TYPES
        ),
    )


def write_elpv_mvtec_layout(
    root: Path,
    cell_types: Sequence[str] = CELL_TYPES,
    seed: int = 0,
    *,
    train_fraction: float = 0.7,
    data_dir: Path | None = None,
) -> list[str]:
    """Lay the splits out as MVTec-AD-style categories under ``root`` and return their names.

    Writes ``<root>/elpv_<type>/train/good``, ``test/good`` and ``test/defect`` (hard links where
    the file system allows, else copies) and the split JSON beside them. Mild cells are listed in
    the JSON only. A category already written with the same split is left as it is; one holding a
    different split is refused rather than mixed.
    """
    base = Path(root)
    base.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for cell_type in cell_types:
        split = make_elpv_split(cell_type, seed, train_fraction, data_dir=data_dir)
        _write_category(base, split, data_dir)
        written.append(split.category)
    return written


# --- helpers -------------------------------------------------------------------------------------


def _snap_probability(text: str, labels: Path, number: int) -> float:
    """The exact protocol probability (0, 1/3, 2/3, 1) closest to a label value."""
    try:
        value = float(text)
    except ValueError as exc:
        raise DatasetError(f"{labels}:{number}: probability {text!r} is not a number") from exc
    for probability in _PROBABILITIES:
        if abs(value - probability) < 1e-3:
            return probability
    raise DatasetError(f"{labels}:{number}: probability {value} is not 0, 1/3, 2/3 or 1")


def _seeded_order(paths: Iterable[Path], seed: int) -> list[Path]:
    """Paths in an order fixed by ``seed``: sorted by a SHA-256 of (seed, file name)."""

    def key(path: Path) -> str:
        return hashlib.sha256(f"{seed}:{path.name}".encode()).hexdigest()

    return sorted(paths, key=key)


def _record(path: Path, label: int, category: str, defect_type: str | None = None) -> ImageRecord:
    return ImageRecord(path=path, label=label, category=category, defect_type=defect_type)


def _mild_record(path: Path, probability: float, category: str) -> ImageRecord:
    """A mild cell: label unknown (excluded from AUROC), probability kept in defect_type."""
    for known, defect_type in MILD_DEFECT_TYPES.items():
        if abs(probability - known) < 1e-3:
            return ImageRecord(path=path, label=None, category=category, defect_type=defect_type)
    raise DatasetError(f"{path.name}: mild probability must be 1/3 or 2/3, got {probability}")


def _require_files(cells: Sequence[ElpvCell]) -> None:
    """Every listed image must exist (a stat each; nothing is read)."""
    missing = [c.path for c in cells if not c.path.is_file()]
    if missing:
        raise DatasetError(
            f"{len(missing)} ELPV image(s) listed in labels.csv are missing, e.g. {missing[0]}; "
            "reinstall elpv-dataset"
        )


def _package_version() -> str | None:
    try:
        return importlib.metadata.version("elpv-dataset")
    except importlib.metadata.PackageNotFoundError:
        return None


def _resolved_or_none(data_dir: Path | None) -> Path | None:
    """``data_dir`` or the package's data folder, or None when neither exists."""
    if data_dir is not None:
        return data_dir.resolve()
    try:
        return elpv_data_dir().resolve()
    except DatasetError:
        return None


def _portable(path: Path, base: Path | None) -> str:
    """``path`` relative to ``base`` when it lies inside it (POSIX separators), else absolute."""
    if base is not None:
        try:
            return path.resolve().relative_to(base).as_posix()
        except ValueError:
            pass
    return str(path)


def _lazy_base(data_dir: Path | None) -> Callable[[str], Path]:
    """A function turning a stored path into an absolute one; finds the package only if needed."""
    found: list[Path] = []

    def resolve(stored: str) -> Path:
        path = Path(stored)
        if path.is_absolute():
            return path
        if not found:
            found.append(data_dir if data_dir is not None else elpv_data_dir())
        return found[0] / path

    return resolve


def _write_category(root: Path, split: ElpvSplit, data_dir: Path | None) -> None:
    """Write one category folder atomically (built aside, then renamed into place)."""
    target = root / split.category
    manifest = split.to_json(data_dir)
    existing = target / SPLIT_FILE_NAME
    if target.exists():
        if existing.is_file() and _same_split(existing.read_text(encoding="utf-8"), manifest):
            logger.info("%s already holds this split; left as it is", target)
            return
        raise DatasetError(
            f"{target} already exists with a different or unknown split; delete it or choose "
            "another root"
        )
    staging = Path(tempfile.mkdtemp(prefix=f".{split.category}-", dir=root))
    try:
        linked = 0
        parts = (
            ("train/good", split.train),
            ("test/good", split.test_normal),
            (f"test/{DEFECT_TYPE}", split.test_defect),
        )
        for folder, records in parts:
            destination = staging / folder
            destination.mkdir(parents=True)
            for record in records:
                linked += _link_or_copy(record.path, destination / record.path.name)
        (staging / SPLIT_FILE_NAME).write_text(manifest, encoding="utf-8")
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    total = sum(split.counts().values()) - len(split.mild)
    logger.info("wrote %s: %d images (%d hard links)", target, total, linked)


def _link_or_copy(source: Path, destination: Path) -> int:
    """Hard-link ``source`` to ``destination``, or copy it; 1 if linked, 0 if copied."""
    try:
        os.link(source, destination)
        return 1
    except OSError:
        shutil.copy2(source, destination)
        return 0


def _same_split(stored: str, fresh: str) -> bool:
    """True when two split JSON texts describe the same records (versions may differ)."""
    try:
        old, new = json.loads(stored), json.loads(fresh)
    except json.JSONDecodeError:
        return False
    keys = ("format", "cell_type", "seed", "train_fraction", "train", "test_normal", "test_defect")
    return all(old.get(k) == new.get(k) for k in keys)
