"""The shared fixtures do what other tests rely on: alike normals, visible defects, bad files."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
import pytest

from engine.data.images import load_image
from engine.errors import ImageLoadError
from tests.fixtures.bad_images import (
    write_bad_corpus,
    zip_bomb,
    zip_with_absolute_path,
    zip_with_symlink,
    zip_with_traversal,
)
from tests.fixtures.synthetic import defect_image, textured_image, write_images, write_mvtec_tree


def as_array(image: object) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


# --- synthetic images ----------------------------------------------------------------------------


def test_textured_images_are_seeded_and_alike() -> None:
    first, second = textured_image(64, seed=0), textured_image(64, seed=1)
    assert first.mode == "RGB" and first.size == (64, 64)
    assert np.array_equal(as_array(first), as_array(textured_image(64, seed=0)))
    difference = np.abs(as_array(first) - as_array(second))
    assert 0 < difference.mean() < 8  # only the noise differs
    assert as_array(first).std() > 12  # a real texture, not a flat colour


def test_defect_is_inside_its_box_and_nowhere_else() -> None:
    image, (x0, y0, x1, y1) = defect_image(64, seed=3)
    assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
    difference = np.abs(as_array(image) - as_array(textured_image(64, seed=3))).sum(axis=2)
    inside = np.zeros_like(difference, dtype=bool)
    inside[y0:y1, x0:x1] = True
    assert difference[~inside].max() == 0
    assert difference[inside].mean() > 60


def test_defect_box_can_be_chosen() -> None:
    image, box = defect_image(32, seed=0, box=(2, 3, 12, 10))
    assert box == (2, 3, 12, 10)
    assert image.size == (32, 32)
    with pytest.raises(ValueError, match="inside"):
        defect_image(32, box=(20, 20, 40, 30))


def test_default_boxes_move_with_the_seed() -> None:
    boxes = {defect_image(64, seed=s)[1] for s in range(8)}
    assert len(boxes) > 1


def test_write_images(tmp_path: Path) -> None:
    normal = write_images(tmp_path / "n", 3, size=32, seed=10)
    defects = write_images(tmp_path / "d", 2, defect=True, size=32)
    assert [p.name for p in normal] == ["000.png", "001.png", "002.png"]
    assert np.array_equal(as_array(load_image(normal[1])), as_array(textured_image(32, seed=11)))
    assert np.array_equal(as_array(load_image(defects[0])), as_array(defect_image(32, seed=0)[0]))


def test_write_mvtec_tree_returns_the_root(tmp_path: Path) -> None:
    root = write_mvtec_tree(tmp_path, "widget", n_train=3, n_test_good=2, n_test_defect=2, size=32)
    assert root == tmp_path
    folder = root / "widget"
    assert len(list((folder / "train" / "good").iterdir())) == 3
    assert len(list((folder / "test" / "good").iterdir())) == 2
    defects = sorted((folder / "test" / "defect").iterdir())
    masks = sorted((folder / "ground_truth" / "defect").iterdir())
    assert [m.name for m in masks] == ["000_mask.png", "001_mask.png"]
    _, (x0, y0, x1, y1) = defect_image(32, seed=2000)
    mask = as_array(load_image(masks[0]))[..., 0]
    assert mask[y0:y1, x0:x1].min() == 255 and mask.sum() == 255 * (x1 - x0) * (y1 - y0)
    assert len(defects) == 2


# --- bad image corpus ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("corpus")
    return folder, write_bad_corpus(folder)


def test_corpus_covers_every_case(corpus: tuple[Path, dict[str, str]]) -> None:
    folder, outcomes = corpus
    assert sorted(p.name for p in folder.iterdir()) == sorted(outcomes)
    assert set(outcomes.values()) == {"ok", "rejected"}
    assert (folder / "empty.png").stat().st_size == 0
    assert (folder / "huge_dimensions.png").stat().st_size < 200_000


REASONS = {
    "empty.png": "empty",
    "truncated.png": "truncated",
    "truncated.jpg": "truncated",
    "corrupt.png": "corrupt",
    "random_bytes.png": "not a recognised image format",
    "text.jpg": "not a recognised image format",
    "huge_dimensions.png": "20000×20000",
}


@pytest.mark.parametrize(
    "name",
    [
        "valid.png",
        "valid.jpg",
        "grayscale.png",
        "gray16.png",
        "cmyk.jpg",
        "rgba.png",
        "palette_transparent.png",
        *REASONS,
    ],
)
def test_every_corpus_file_has_its_outcome(corpus: tuple[Path, dict[str, str]], name: str) -> None:
    folder, outcomes = corpus
    if outcomes[name] == "ok":
        image = load_image(folder / name)
        assert image.mode == "RGB" and image.size == (64, 64)
        return
    with pytest.raises(ImageLoadError, match=REASONS[name]) as caught:
        load_image(folder / name)
    assert caught.value.source == name


def test_corpus_modes_are_what_their_names_say(corpus: tuple[Path, dict[str, str]]) -> None:
    from PIL import Image

    folder, _ = corpus
    modes = {n: Image.open(folder / n).mode for n in ["grayscale.png", "cmyk.jpg", "rgba.png"]}
    assert modes == {"grayscale.png": "L", "cmyk.jpg": "CMYK", "rgba.png": "RGBA"}
    assert Image.open(folder / "gray16.png").mode.startswith("I")
    palette = Image.open(folder / "palette_transparent.png")
    assert palette.mode == "P" and "transparency" in palette.info


# --- hostile archives ----------------------------------------------------------------------------


def member_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_zip_with_traversal(tmp_path: Path) -> None:
    path = zip_with_traversal(tmp_path / "t.zip")
    names = member_names(path)
    assert "images/ok.png" in names
    assert any(".." in PurePosixPath(n).parts for n in names)


def test_zip_with_absolute_path(tmp_path: Path) -> None:
    names = member_names(zip_with_absolute_path(tmp_path / "a.zip"))
    assert any(n.startswith("/") for n in names)


def test_zip_with_symlink(tmp_path: Path) -> None:
    with zipfile.ZipFile(zip_with_symlink(tmp_path / "s.zip")) as archive:
        link = archive.getinfo("images/link.png")
        assert stat.S_ISLNK(link.external_attr >> 16)
        assert archive.read(link) == b"/etc/passwd"


def test_zip_bomb_is_small_but_inflates_hugely(tmp_path: Path) -> None:
    path = zip_bomb(tmp_path / "b.zip")
    with zipfile.ZipFile(path) as archive:
        (info,) = archive.infolist()
    assert info.file_size == 200 * 2**20
    assert path.stat().st_size < info.file_size / 500


def test_small_zip_bomb_is_a_valid_archive(tmp_path: Path) -> None:
    path = zip_bomb(tmp_path / "small.zip", uncompressed_mb=3)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # CRCs check out
        data = archive.read("bomb.png")
    assert len(data) == 3 * 2**20 and not any(data)
