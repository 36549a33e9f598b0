"""Where images come from: plain folders, explicit file lists and MVTec-AD-style categories.

An MVTec-AD-style dataset root holds one folder per category::

    <root>/<category>/train/good/*.png      normal training images
    <root>/<category>/test/good/*.png       normal test images
    <root>/<category>/test/<defect>/*.png   anomalous test images, one folder per defect type

Other folders (such as ``ground_truth``) are ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import DatasetError

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}
)
NORMAL_FOLDER = "good"
_LAYOUT = "<root>/<category>/train/good and <root>/<category>/test/<good|defect type>"


@dataclass(frozen=True)
class ImageRecord:
    """One image file and what is known about it (label 0 normal, 1 anomalous, None unknown)."""

    path: Path
    label: int | None = None
    category: str | None = None
    defect_type: str | None = None


@dataclass(frozen=True)
class CategorySplit:
    """The train and test records of one MVTec-AD-style category."""

    category: str
    train: tuple[ImageRecord, ...]
    test: tuple[ImageRecord, ...]

    @property
    def defect_types(self) -> list[str]:
        """The defect folder names present in the test set, sorted."""
        return sorted({r.defect_type for r in self.test if r.defect_type is not None})


def is_image_file(path: Path) -> bool:
    """True for a visible regular file whose extension is an image extension."""
    return (
        path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".") and path.is_file()
    )


def image_paths(folder: str | Path, *, recursive: bool = True) -> list[Path]:
    """The image files in ``folder`` (sorted); hidden files such as ``._x.png`` are skipped."""
    root = Path(folder)
    candidates = root.rglob("*") if recursive else root.iterdir()
    return sorted(p for p in candidates if is_image_file(p))


def folder_records(
    folder: str | Path,
    *,
    recursive: bool = True,
    label: int | None = None,
    category: str | None = None,
) -> list[ImageRecord]:
    """One record per image file in ``folder`` (sorted by path), all with the given label."""
    root = Path(folder)
    if not root.exists():
        raise DatasetError(f"image folder not found: {root}; check the path")
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; give the folder that holds the images")
    paths = image_paths(root, recursive=recursive)
    if not paths:
        where = "in it or its subfolders" if recursive else "directly in it"
        raise DatasetError(
            f"no image files {where}: {root}; expected files ending in "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    return [ImageRecord(path=p, label=label, category=category) for p in paths]


def file_records(
    paths: Iterable[str | Path],
    *,
    label: int | None = None,
    category: str | None = None,
) -> list[ImageRecord]:
    """One record per given file, in the given order; every file must exist."""
    records = [ImageRecord(path=Path(p), label=label, category=category) for p in paths]
    if not records:
        raise DatasetError("no image files were given; pass at least one path")
    missing = [str(r.path) for r in records if not r.path.is_file()]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        shown = ", ".join(missing[:5]) + more
        raise DatasetError(f"{len(missing)} image file(s) not found: {shown}; check the paths")
    return records


def mvtec_categories(root: str | Path) -> list[str]:
    """The sorted names of the subfolders of ``root`` that have a ``train/good`` folder."""
    base = Path(root)
    if not base.is_dir():
        raise DatasetError(f"dataset root not found: {base}; expected the layout {_LAYOUT}")
    names = sorted(
        child.name
        for child in base.iterdir()
        if child.is_dir() and (child / "train" / NORMAL_FOLDER).is_dir()
    )
    if not names:
        raise DatasetError(
            f"no category folders with train/good under {base}; expected the layout {_LAYOUT}"
        )
    return names


def mvtec_split(root: str | Path, category: str) -> CategorySplit:
    """Train (``train/good``, label 0) and test (``test/good`` 0, ``test/<defect>`` 1) records."""
    folder = Path(root) / category
    if not folder.is_dir():
        available = _available_categories(Path(root))
        raise DatasetError(
            f"category folder not found: {folder}; available categories: {available}. "
            f"Expected the layout {_LAYOUT}"
        )
    train_dir = folder / "train" / NORMAL_FOLDER
    if not train_dir.is_dir():
        raise DatasetError(f"missing {train_dir}; expected the layout {_LAYOUT}")
    train = folder_records(train_dir, label=0, category=category)
    test = _test_records(folder / "test", category)
    logger.debug("%s: %d train, %d test images", category, len(train), len(test))
    return CategorySplit(category=category, train=tuple(train), test=tuple(test))


def _test_records(test_dir: Path, category: str) -> list[ImageRecord]:
    """Records of every ``test/<kind>`` folder; ``good`` is normal, the rest are defect types."""
    if not test_dir.is_dir():
        raise DatasetError(f"missing {test_dir}; expected the layout {_LAYOUT}")
    records: list[ImageRecord] = []
    for kind in sorted(p for p in test_dir.iterdir() if p.is_dir()):
        paths = image_paths(kind)
        if not paths:
            logger.warning("%s: test folder %s has no images; skipped", category, kind)
            continue
        normal = kind.name == NORMAL_FOLDER
        records.extend(
            ImageRecord(
                path=p,
                label=0 if normal else 1,
                category=category,
                defect_type=None if normal else kind.name,
            )
            for p in paths
        )
    if not records:
        raise DatasetError(
            f"no test images under {test_dir}; put normal images in test/good and anomalous "
            "ones in test/<defect type>"
        )
    return records


def _available_categories(root: Path) -> str:
    """A readable list of the categories under ``root`` for error messages."""
    try:
        return ", ".join(mvtec_categories(root))
    except DatasetError:
        return "none"
