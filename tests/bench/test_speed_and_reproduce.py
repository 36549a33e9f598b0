"""The speed bench (fresh worker processes) and the reproduce-tables wrapper, tiny settings."""

from __future__ import annotations

from pathlib import Path

from bench import reproduce_tables, speed
from tests.fixtures.synthetic import write_mvtec_tree


def test_speed_table_has_both_procedures_and_every_view_count(
    fake_elpv: Path, tmp_path: Path
) -> None:
    out = tmp_path / "speed.md"
    code = speed.main(
        [
            "--data-dir", str(fake_elpv), "--device", "cpu", "--flow", "tiny",
            "--backbone", "alexnet", "--weights", "random", "--variant", "se",
            "--train-images", "10", "--train-size", "64", "--epochs", "1", "--cache-views", "2",
            "--eval-normal", "3", "--eval-defect", "3", "--eval-views", "4", "--bootstrap", "10",
            "--score-size", "64", "--views", "4", "2", "--view-budget", "4",
            "--explain-images", "1", "--score-backbones", "alexnet:random",
            "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    text = out.read_text()
    assert "- status: complete" in text and "failed" not in text
    assert "| feature cache (engine default) | " in text
    assert "| no cache (DifferNet procedure) | " in text
    assert "| alexnet:random | 4 | " in text and "| alexnet:random | 2 | " in text
    assert "| alexnet:random: 2 views | " in text
    assert (tmp_path / "speed.json").is_file()


def test_reproduce_tables_writes_the_paper_layout(tmp_path: Path) -> None:
    root = write_mvtec_tree(tmp_path / "mvtec", "widget", n_train=6, n_test_good=2, n_test_defect=2)
    out = tmp_path / "reproduce.md"
    code = reproduce_tables.main(
        ["--root", str(root), "--out", str(out), "--device", "cpu", "--",
         "--preset", "tiny", "--weights", "random", "--variants", "none", "se"]
    )  # fmt: skip
    assert code == 0
    text = out.read_text()
    assert "| category | none | se |" in text and "| widget | " in text and "| mean | " in text
    assert "adn reproduce --root" in text
