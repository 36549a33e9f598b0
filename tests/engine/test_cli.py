"""The ``adn`` command line end to end on a tiny MVTec-style tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from engine.cli.main import EXIT_ERROR, build_parser, main
from engine.visualize import heatmap_from_png
from tests.fixtures.synthetic import write_mvtec_tree

TINY = ["--preset", "tiny", "--backbone", "alexnet", "--weights", "random", "--device", "cpu"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mvtec_tree(tmp_path_factory.mktemp("mvtec"), "widget", size=64)


@pytest.fixture(scope="module")
def model(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "widget.adn"
    code = main(
        [
            "train",
            "--data",
            str(tree),
            "--category",
            "widget",
            "--variant",
            "se",
            *TINY,
            "--out",
            str(out),
        ]
    )
    assert code == 0 and out.is_file()
    return out


def test_score_prints_one_json_row_per_image(
    model: Path, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tree / "widget" / "test" / "good"
    code = main(
        ["score", "--model", str(model), str(folder), "--format", "json", "--device", "cpu"]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(list(folder.iterdir()))
    assert {"image", "score", "percentile", "threshold", "verdict"} <= set(rows[0])


def test_score_with_a_bad_file_exits_partial(
    model: Path, tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    good = next((tree / "widget" / "test" / "good").iterdir())
    code = main(["score", "--model", str(model), str(good), str(bad), "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 3
    assert "bad.png" in captured.err and str(good) in captured.out


def test_eval_prints_auroc_with_interval(
    model: Path, tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "scores.csv"
    code = main(
        [
            "eval",
            "--model",
            str(model),
            "--data",
            str(tree),
            "--category",
            "widget",
            "--bootstrap",
            "50",
            "--scores-csv",
            str(csv_path),
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "image AUROC" in out and "[" in out
    assert len(csv_path.read_text().splitlines()) == 1 + 8


def test_explain_writes_heatmap_and_overlay(model: Path, tree: Path, tmp_path: Path) -> None:
    image = next((tree / "widget" / "test" / "defect").iterdir())
    heat, overlay = tmp_path / "h.png", tmp_path / "o.png"
    code = main(
        [
            "explain",
            "--model",
            str(model),
            str(image),
            "--out",
            str(heat),
            "--overlay",
            str(overlay),
            "--device",
            "cpu",
        ]
    )
    assert code == 0 and heat.stat().st_size > 0 and overlay.stat().st_size > 0
    written = heatmap_from_png(heat.read_bytes())
    with Image.open(image) as picture:
        assert written.shape == (picture.height, picture.width)
    # A real Grad-CAM map spans [0, 1]; a zero or flat one would still make a valid PNG.
    assert written.max() > 0.9 and written.min() < 0.1 and written.std() > 0.05


def test_reproduce_writes_the_paper_table(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "reproduce",
            "--root",
            str(tree),
            "--variants",
            "none",
            "cbam",
            *TINY,
            "--out-dir",
            str(tmp_path),
            "--no-keep-models",
        ]
    )
    assert code == 0
    table = (tmp_path / "auroc-table.md").read_text()
    assert "| category | none | cbam |" in table and "| widget |" in table
    assert not list(tmp_path.glob("*.adn"))


def test_errors_are_one_readable_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_a_model = tmp_path / "m.adn"
    not_a_model.write_text("hello")
    assert main(["score", "--model", str(not_a_model), "x.png"]) == EXIT_ERROR
    assert "adn score: error:" in capsys.readouterr().err
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "nowhere"),
                "--category",
                "x",
                *TINY,
                "--out",
                str(tmp_path / "o.adn"),
            ]
        )
        == EXIT_ERROR
    )
    assert "adn train: error:" in capsys.readouterr().err


def test_alexnet_without_weights_explains_how_to_supply_them(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            "--data",
            str(tree),
            "--category",
            "widget",
            "--backbone",
            "alexnet",
            "--weights-path",
            str(tmp_path / "alexnet-owt-7be5be79.pth"),
            "--preset",
            "tiny",
            "--out",
            str(tmp_path / "o.adn"),
        ]
    )
    assert code == EXIT_ERROR
    assert "alexnet-owt-7be5be79.pth" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", ["train", "score", "eval", "explain", "reproduce", "demo", "weights", "elpv-layout"]
)
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: adn" in capsys.readouterr().out
