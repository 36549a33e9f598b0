"""ELPV images for the benchmarks: one decode per (cell type, size), shared by every run.

The split is the engine's (``make_elpv_split``); images are decoded with the engine's own loader
at model size and kept as uint8 tensors, so a benchmark never decodes a PNG twice. ``data_dir``
reads a plain folder laid out like the package's data dir (``labels.csv`` + ``images/``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.data.elpv import ElpvSplit, make_elpv_split, mild_probability, read_elpv_labels
from engine.errors import DatasetError
from engine.inputs import load_images

PAYLOAD_NOTE_FILE = "payload.json"


@dataclass(frozen=True)
class SplitImages:
    """One seeded split with its images decoded (uint8, N×3×S×S)."""

    split: ElpvSplit
    train: torch.Tensor
    test_normal: torch.Tensor
    test_defect: torch.Tensor
    mild: torch.Tensor
    mild_probability: np.ndarray


class ElpvImages:
    """Decoded ELPV cells of one type at one size, indexed by file path."""

    def __init__(self, cell_type: str, size: int, data_dir: Path | None = None) -> None:
        self.cell_type = cell_type
        self.size = size
        self.data_dir = data_dir
        cells = [c for c in read_elpv_labels(data_dir) if c.cell_type == cell_type]
        loaded = load_images([c.path for c in cells], size)
        if loaded.failures:
            raise DatasetError(
                f"{len(loaded.failures)} ELPV images unreadable: {loaded.failures[0]}"
            )
        self.tensor = loaded.tensor
        self.row = {Path(name).resolve(): i for i, name in enumerate(loaded.names)}

    def take(self, paths: list[Path]) -> torch.Tensor:
        """The images of ``paths`` in that order."""
        rows = [self.row[p.resolve()] for p in paths]
        return self.tensor[torch.tensor(rows, dtype=torch.long)]

    def split(self, seed: int, limits: SubsetLimits | None = None) -> SplitImages:
        """The seeded split of this type (optionally a seeded subset, see :class:`SubsetLimits`)."""
        split = make_elpv_split(self.cell_type, seed, data_dir=self.data_dir)
        if limits is not None:
            split = limits.apply(split)
        return SplitImages(
            split=split,
            train=self.take([r.path for r in split.train]),
            test_normal=self.take([r.path for r in split.test_normal]),
            test_defect=self.take([r.path for r in split.test_defect]),
            mild=self.take([r.path for r in split.mild]),
            mild_probability=np.array([mild_probability(r) for r in split.mild]),
        )


@dataclass(frozen=True)
class SubsetLimits:
    """Keep at most this many records of each part (a seeded choice) to shrink a CPU run."""

    train: int | None = None
    test_normal: int | None = None
    test_defect: int | None = None
    mild: int | None = None

    def active(self) -> bool:
        """Whether any part is limited."""
        return any(
            v is not None for v in (self.train, self.test_normal, self.test_defect, self.mild)
        )

    def describe(self) -> str:
        """``train<=48, test_normal<=32, ...`` or ``full split``."""
        parts = [
            f"{name}<={value}"
            for name, value in (
                ("train", self.train),
                ("test_normal", self.test_normal),
                ("test_defect", self.test_defect),
                ("mild", self.mild),
            )
            if value is not None
        ]
        return ", ".join(parts) if parts else "full split"

    def apply(self, split: ElpvSplit) -> ElpvSplit:
        """A split holding a seeded subset of each limited part (order kept)."""
        rng = np.random.default_rng(10_000 + split.seed)

        def cut(records: tuple, limit: int | None) -> tuple:
            if limit is None or len(records) <= limit:
                return records
            keep = np.sort(rng.choice(len(records), limit, replace=False))
            return tuple(records[i] for i in keep)

        return ElpvSplit(
            cell_type=split.cell_type,
            seed=split.seed,
            train_fraction=split.train_fraction,
            train=cut(split.train, self.train),
            test_normal=cut(split.test_normal, self.test_normal),
            test_defect=cut(split.test_defect, self.test_defect),
            mild=cut(split.mild, self.mild),
        )


class ImageCache:
    """:class:`ElpvImages` per (cell type, size); the oldest is dropped to bound memory."""

    def __init__(self, data_dir: Path | None = None, keep: int = 2) -> None:
        self.data_dir = data_dir
        self.keep = keep
        self._items: dict[tuple[str, int], ElpvImages] = {}

    def get(self, cell_type: str, size: int) -> ElpvImages:
        """Decoded images of ``cell_type`` at ``size`` (decoded on first use)."""
        key = (cell_type, size)
        if key not in self._items:
            while len(self._items) >= self.keep:
                self._items.pop(next(iter(self._items)))
            self._items[key] = ElpvImages(cell_type, size, self.data_dir)
        return self._items[key]


_SHARED: dict[str, ImageCache] = {}


def shared_cache(data_dir: Path | None) -> ImageCache:
    """One :class:`ImageCache` per data folder for the whole process (scripts run in-process by
    ``bench.gpu.run_all`` then decode every image once)."""
    key = str(data_dir.resolve()) if data_dir is not None else ""
    if key not in _SHARED:
        _SHARED[key] = ImageCache(data_dir)
    return _SHARED[key]


def payload_note(data_dir: Path | None) -> str | None:
    """What a GPU payload left out of the data dir (``payload.json``), or None."""
    if data_dir is None:
        return None
    note = data_dir / PAYLOAD_NOTE_FILE
    if not note.is_file():
        return None
    return str(json.loads(note.read_text(encoding="utf-8")).get("note", ""))
