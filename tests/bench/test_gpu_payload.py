"""The GPU payload: what fits under the size limit, and the data dir it writes."""

from __future__ import annotations

import json
from pathlib import Path

from bench.elpv_data import payload_note
from bench.gpu.payload import choose_cells, write_cells
from engine.data.elpv import make_elpv_split

ROWS = [(f"images/n{i}.png", 0.0, "poly") for i in range(10)]
ROWS += [(f"images/d{i}.png", 1.0, "poly") for i in range(4)]
ROWS += [(f"images/m{i}.png", 0.333333, "poly") for i in range(3)]
SIZES = {name: 10 for name, _, _ in ROWS}


def test_everything_kept_when_it_fits() -> None:
    kept, note = choose_cells(ROWS, SIZES, 170)
    assert len(kept) == 17 and note == "all cells of this type"


def test_mild_cells_go_first_then_a_subset_of_normals() -> None:
    kept, note = choose_cells(ROWS, SIZES, 150)
    assert len(kept) == 15 and "2 of 3 mild" in note
    kept, note = choose_cells(ROWS, SIZES, 100)
    names = {name for name, _, _ in kept}
    assert {f"images/d{i}.png" for i in range(4)} <= names
    assert len(kept) == 10 and "4 of 10 normal" in note


def test_payload_data_dir_works_as_an_elpv_data_dir(fake_elpv: Path, tmp_path: Path) -> None:
    target = tmp_path / "elpv"
    summary = write_cells("mono", target, 10**9, source=fake_elpv)
    assert summary["cells"] == 29
    split = make_elpv_split("mono", 0, data_dir=target)
    assert len(split.train) == 14 and len(split.test_defect) == 5 and len(split.mild) == 4
    assert "all cells" in (payload_note(target) or "")
    assert json.loads((target / "payload.json").read_text())["cell_type"] == "mono"
