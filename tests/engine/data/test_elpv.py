"""The ELPV protocol: label counts, the seeded split, its JSON form and the MVTec-style layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.data import elpv
from engine.data.elpv import (
    ElpvSplit,
    make_elpv_split,
    mild_probability,
    read_elpv_labels,
    read_elpv_split,
    write_elpv_mvtec_layout,
)
from engine.data.sources import mvtec_categories, mvtec_split
from engine.errors import ConfigError, DatasetError
from tests.fixtures.synthetic import textured_image

# (normal, 1/3, 2/3, defective) cells per type in elpv-dataset 1.x.
PACKAGE_COUNTS = {"mono": (588, 117, 56, 313), "poly": (920, 178, 50, 402)}


def fake_dataset(root: Path, per_type: tuple[int, int, int, int] = (10, 2, 1, 3)) -> Path:
    """A tiny ELPV-shaped data folder: labels.csv and 8×8 PNG cells."""
    (root / "images").mkdir(parents=True)
    lines: list[str] = []
    number = 0
    for cell_type in ("mono", "poly"):
        for probability, count in zip(
            ("0.0", "0.3333333333333333", "0.6666666666666666", "1.0"), per_type, strict=True
        ):
            for _ in range(count):
                number += 1
                name = f"images/cell{number:04d}.png"
                textured_image(8, seed=number).convert("L").save(root / name)
                lines.append(f"{name}  {probability}   {cell_type}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return fake_dataset(tmp_path / "elpv_data")


# --- the installed package -----------------------------------------------------------------------


def test_package_labels_have_the_expected_counts() -> None:
    cells = read_elpv_labels()
    assert len(cells) == 2624
    for cell_type, expected in PACKAGE_COUNTS.items():
        found = tuple(
            sum(1 for c in cells if c.cell_type == cell_type and c.probability == p)
            for p in (0.0, 1 / 3, 2 / 3, 1.0)
        )
        assert found == expected


@pytest.mark.parametrize(
    ("cell_type", "train", "test_normal"), [("mono", 412, 176), ("poly", 644, 276)]
)
def test_package_split_sizes(cell_type: str, train: int, test_normal: int) -> None:
    normal, third, two_thirds, defect = PACKAGE_COUNTS[cell_type]
    split = make_elpv_split(cell_type, seed=0)
    assert split.counts() == {
        "train": train,
        "test_normal": test_normal,
        "test_defect": defect,
        "mild": third + two_thirds,
    }
    assert train + test_normal == normal
    assert split.category == f"elpv_{cell_type}"
    assert all(r.category == split.category for r in split.train + split.test + split.mild)


def test_package_split_json_stores_relative_paths() -> None:
    split = make_elpv_split("mono", seed=3)
    document = json.loads(split.to_json())
    assert document["format"] == "elpv-split/1"
    assert document["train"][0].startswith("images/cell")
    assert document["counts"]["train"] == 412
    assert ElpvSplit.from_json(split.to_json()) == split


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(elpv.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetError, match="pip install elpv-dataset"):
        make_elpv_split("mono")


# --- the split -----------------------------------------------------------------------------------


def test_split_parts_are_disjoint_and_labelled(data_dir: Path) -> None:
    split = make_elpv_split("mono", seed=0, data_dir=data_dir)
    assert split.counts() == {"train": 7, "test_normal": 3, "test_defect": 3, "mild": 3}
    train = {r.path for r in split.train}
    held_out = {r.path for r in split.test_normal}
    assert not train & held_out and len(train | held_out) == 10
    assert all(r.label == 0 and r.defect_type is None for r in split.train + split.test_normal)
    assert all(r.label == 1 and r.defect_type == "defect" for r in split.test_defect)
    assert split.test == split.test_normal + split.test_defect
    mild_types = sorted(r.defect_type or "" for r in split.mild)
    assert mild_types == ["mild-0.33", "mild-0.33", "mild-0.67"]
    assert all(r.label is None for r in split.mild)
    assert sorted(mild_probability(r) for r in split.mild) == pytest.approx([1 / 3, 1 / 3, 2 / 3])
    poly = make_elpv_split("poly", seed=0, data_dir=data_dir)
    assert not {r.path for r in poly.train} & train  # one model per cell type


def test_split_is_deterministic_per_seed(data_dir: Path) -> None:
    first = make_elpv_split("mono", seed=1, data_dir=data_dir)
    assert make_elpv_split("mono", seed=1, data_dir=data_dir) == first
    trains = {
        tuple(r.path.name for r in make_elpv_split("mono", seed=s, data_dir=data_dir).train)
        for s in range(6)
    }
    assert len(trains) > 1


def test_train_fraction_is_respected(data_dir: Path) -> None:
    split = make_elpv_split("poly", seed=0, train_fraction=0.5, data_dir=data_dir)
    assert (len(split.train), len(split.test_normal)) == (5, 5)
    tiny = make_elpv_split("poly", seed=0, train_fraction=0.01, data_dir=data_dir)
    assert len(tiny.train) == 1  # never empty


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5, 1.5])
def test_bad_train_fraction(data_dir: Path, fraction: float) -> None:
    with pytest.raises(ConfigError, match="train_fraction"):
        make_elpv_split("mono", train_fraction=fraction, data_dir=data_dir)


def test_unknown_cell_type(data_dir: Path) -> None:
    with pytest.raises(ConfigError, match="mono"):
        make_elpv_split("amorphous", data_dir=data_dir)


def test_missing_images_are_reported(data_dir: Path) -> None:
    (data_dir / "images" / "cell0001.png").unlink()
    with pytest.raises(DatasetError, match=r"missing.*cell0001"):
        make_elpv_split("mono", data_dir=data_dir)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("images/a.png 0.5 mono", "not 0, 1/3, 2/3 or 1"),
        ("images/a.png x mono", "not a number"),
        ("images/a.png 1.0 thin", "unknown cell type"),
        ("images/a.png 1.0", "expected 'path probability type'"),
    ],
)
def test_bad_label_rows_name_the_line(tmp_path: Path, line: str, words: str) -> None:
    (tmp_path / "labels.csv").write_text(f"images/ok.png 0.0 mono\n{line}\n")
    with pytest.raises(DatasetError, match=f"labels.csv:2: .*{words}"):
        read_elpv_labels(tmp_path)


# --- JSON ----------------------------------------------------------------------------------------


def test_json_round_trip_through_a_file(data_dir: Path, tmp_path: Path) -> None:
    split = make_elpv_split("poly", seed=4, data_dir=data_dir)
    path = split.write(tmp_path / "out" / "split.json", data_dir)
    text = path.read_text()
    assert str(data_dir) not in text  # portable: relative to the data folder
    assert read_elpv_split(path, data_dir) == split
    moved = tmp_path / "moved"
    data_dir.rename(moved)
    again = read_elpv_split(path, moved)
    expected = [moved / r.path.relative_to(data_dir) for r in split.train]
    assert [r.path for r in again.train] == expected


def test_json_keeps_mild_probabilities(data_dir: Path) -> None:
    split = make_elpv_split("mono", data_dir=data_dir)
    mild = json.loads(split.to_json(data_dir))["mild"]
    assert sorted(m["probability"] for m in mild) == pytest.approx([1 / 3, 1 / 3, 2 / 3])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "not valid JSON"),
        ('{"format": "something-else"}', "not an ELPV split file"),
        ('{"format": "elpv-split/1", "cell_type": "mono"}', "incomplete"),
    ],
)
def test_bad_json_is_a_dataset_error(text: str, words: str) -> None:
    with pytest.raises(DatasetError, match=words):
        ElpvSplit.from_json(text)


def test_reading_a_missing_split_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        read_elpv_split(tmp_path / "none.json")


# --- MVTec-style layout --------------------------------------------------------------------------


def test_layout_is_an_mvtec_tree_with_the_split_beside_it(data_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "layout"
    assert write_elpv_mvtec_layout(root, seed=2, data_dir=data_dir) == ["elpv_mono", "elpv_poly"]
    assert mvtec_categories(root) == ["elpv_mono", "elpv_poly"]
    expected = make_elpv_split("mono", seed=2, data_dir=data_dir)
    tree = mvtec_split(root, "elpv_mono")
    assert [r.path.name for r in tree.train] == [r.path.name for r in expected.train]
    assert sum(r.label == 0 for r in tree.test) == 3
    assert tree.defect_types == ["defect"]
    assert read_elpv_split(root / "elpv_mono" / "elpv_split.json", data_dir) == expected
    linked = root / "elpv_mono" / "train" / "good" / expected.train[0].path.name
    assert os.path.samefile(linked, expected.train[0].path)  # a hard link, not a copy
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no staging left


def test_layout_copies_when_links_fail(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(source: object, destination: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(elpv.os, "link", refuse)
    root = tmp_path / "copied"
    write_elpv_mvtec_layout(root, cell_types=("poly",), data_dir=data_dir)
    first = next((root / "elpv_poly" / "test" / "defect").iterdir())
    assert first.read_bytes() == (data_dir / "images" / first.name).read_bytes()
    assert not os.path.samefile(first, data_dir / "images" / first.name)


def test_layout_rerun_is_idempotent_and_a_different_seed_is_refused(
    data_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "layout"
    write_elpv_mvtec_layout(root, cell_types=("mono",), seed=0, data_dir=data_dir)
    marker = root / "elpv_mono" / "train" / "good"
    before = sorted(p.name for p in marker.iterdir())
    write_elpv_mvtec_layout(root, cell_types=("mono",), seed=0, data_dir=data_dir)
    assert sorted(p.name for p in marker.iterdir()) == before
    with pytest.raises(DatasetError, match="different or unknown split"):
        write_elpv_mvtec_layout(root, cell_types=("mono",), seed=1, data_dir=data_dir)
    assert sorted(p.name for p in marker.iterdir()) == before  # nothing mixed in


def test_layout_from_the_package(tmp_path: Path) -> None:
    root = tmp_path / "elpv"
    write_elpv_mvtec_layout(root, cell_types=("mono",))
    tree = mvtec_split(root, "elpv_mono")
    assert (len(tree.train), len(tree.test)) == (412, 176 + 313)
