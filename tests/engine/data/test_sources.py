"""Plain folders, file lists and MVTec-AD-style category folders."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine.data.sources import (
    IMAGE_EXTENSIONS,
    CategorySplit,
    ImageRecord,
    file_records,
    folder_records,
    mvtec_categories,
    mvtec_split,
)
from engine.errors import DatasetError
from tests.fixtures.synthetic import write_images, write_mvtec_tree


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_common_extensions_are_known() -> None:
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"} <= IMAGE_EXTENSIONS


def test_folder_records_are_sorted_images_only(tmp_path: Path) -> None:
    for name in ["b.PNG", "a.jpg", "c.tiff", "notes.txt", "._a.png", ".hidden.png", "sub/d.bmp"]:
        touch(tmp_path / name)
    records = folder_records(tmp_path, label=0, category="widget")
    assert [r.path.relative_to(tmp_path).as_posix() for r in records] == [
        "a.jpg",
        "b.PNG",
        "c.tiff",
        "sub/d.bmp",
    ]
    assert all(r.label == 0 and r.category == "widget" and r.defect_type is None for r in records)


def test_folder_records_without_recursion(tmp_path: Path) -> None:
    touch(tmp_path / "top.png")
    touch(tmp_path / "sub" / "deep.png")
    records = folder_records(tmp_path, recursive=False)
    assert [r.path.name for r in records] == ["top.png"]
    assert records[0].label is None


def test_folder_records_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        folder_records(tmp_path / "nope")
    with pytest.raises(DatasetError, match="not a folder"):
        folder_records(touch(tmp_path / "file.png"))
    touch(tmp_path / "empty" / "readme.txt")
    with pytest.raises(DatasetError, match=r"no image files .*\.png"):
        folder_records(tmp_path / "empty")


def test_records_are_frozen_and_comparable(tmp_path: Path) -> None:
    record = ImageRecord(tmp_path / "a.png", 1, "widget", "scratch")
    same = ImageRecord(tmp_path / "a.png", label=1, category="widget", defect_type="scratch")
    assert record == same
    with pytest.raises(AttributeError):
        record.label = 0  # type: ignore[misc]


def test_file_records_keep_order_and_check_existence(tmp_path: Path) -> None:
    paths = write_images(tmp_path, 3)
    records = file_records([str(paths[2]), paths[0]], label=1)
    assert [r.path for r in records] == [paths[2], paths[0]]
    assert all(r.label == 1 for r in records)
    with pytest.raises(DatasetError, match=r"1 image file\(s\) not found: .*ghost\.png"):
        file_records([paths[0], tmp_path / "ghost.png"])
    with pytest.raises(DatasetError, match="no image files were given"):
        file_records([])


def test_mvtec_categories(tmp_path: Path) -> None:
    write_mvtec_tree(tmp_path, "zipper", n_train=1, n_test_good=1, n_test_defect=1)
    write_mvtec_tree(tmp_path, "bottle", n_train=1, n_test_good=1, n_test_defect=1)
    (tmp_path / "not_a_category" / "train").mkdir(parents=True)
    touch(tmp_path / "license.txt")
    assert mvtec_categories(tmp_path) == ["bottle", "zipper"]


def test_mvtec_categories_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset root not found"):
        mvtec_categories(tmp_path / "nope")
    (tmp_path / "x" / "test").mkdir(parents=True)
    with pytest.raises(DatasetError, match="train/good"):
        mvtec_categories(tmp_path)


def test_mvtec_split_labels_every_image(tmp_path: Path) -> None:
    root = write_mvtec_tree(tmp_path, "widget", n_train=5, n_test_good=2, n_test_defect=3)
    touch(root / "widget" / "test" / "crack" / "000.png")
    split = mvtec_split(root, "widget")
    assert isinstance(split, CategorySplit)
    assert split.category == "widget"
    assert len(split.train) == 5
    assert all(r.label == 0 and r.category == "widget" for r in split.train)
    assert all(r.path.parent.name == "good" for r in split.train)
    good = [r for r in split.test if r.label == 0]
    bad = [r for r in split.test if r.label == 1]
    assert len(good) == 2 and all(r.defect_type is None for r in good)
    assert sorted((r.defect_type or "") for r in bad) == ["crack", "defect", "defect", "defect"]
    assert split.defect_types == ["crack", "defect"]
    assert not any("ground_truth" in r.path.parts for r in split.train + split.test)


def test_mvtec_split_missing_category_lists_the_available_ones(tmp_path: Path) -> None:
    write_mvtec_tree(tmp_path, "widget", n_train=1, n_test_good=1, n_test_defect=1)
    with pytest.raises(DatasetError, match="available categories: widget"):
        mvtec_split(tmp_path, "gadget")


def test_mvtec_split_missing_parts(tmp_path: Path) -> None:
    (tmp_path / "widget").mkdir()
    with pytest.raises(DatasetError, match=r"missing .*train/good.*layout"):
        mvtec_split(tmp_path, "widget")
    write_images(tmp_path / "widget" / "train" / "good", 2)
    with pytest.raises(DatasetError, match=r"missing .*test"):
        mvtec_split(tmp_path, "widget")
    (tmp_path / "widget" / "test" / "good").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no test images"):
        mvtec_split(tmp_path, "widget")


def test_mvtec_split_empty_train_folder(tmp_path: Path) -> None:
    (tmp_path / "widget" / "train" / "good").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no image files"):
        mvtec_split(tmp_path, "widget")


def test_mvtec_split_skips_an_empty_defect_folder_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write_mvtec_tree(tmp_path, "widget", n_train=2, n_test_good=1, n_test_defect=1)
    (root / "widget" / "test" / "hole").mkdir()
    with caplog.at_level(logging.WARNING, logger="engine.data.sources"):
        split = mvtec_split(root, "widget")
    assert split.defect_types == ["defect"]
    assert "hole" in caplog.text
