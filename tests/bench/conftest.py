"""A tiny ELPV-like data dir (labels.csv + images/) of synthetic cells for the bench tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.fixtures.synthetic import defect_image, textured_image

# per cell type: (normal, defect p=1, mild p=1/3, mild p=2/3)
COUNTS = {"mono": (20, 5, 2, 2), "poly": (20, 5, 2, 2)}


def write_fake_elpv(root: Path, size: int = 64) -> Path:
    """Write synthetic cells laid out like the elpv-dataset package's data dir; return it."""
    images = root / "images"
    images.mkdir(parents=True)
    lines = []
    number = 0
    for cell_type, (normal, defect, third, two_thirds) in COUNTS.items():
        plan = [(0.0, normal), (1.0, defect), (1 / 3, third), (2 / 3, two_thirds)]
        for probability, count in plan:
            for _ in range(count):
                number += 1
                name = f"images/cell{number:04d}.png"
                if probability == 0.0:
                    picture = textured_image(size, seed=number)
                else:
                    picture, _ = defect_image(size, seed=number)
                picture.convert("L").save(root / name)
                lines.append(f"{name}  {probability!r:<19} {cell_type}")
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture(autouse=True)
def one_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """One torch thread here and in worker processes: on a shared, oversubscribed CPU, OpenMP
    threads that spin while waiting for each other make tiny runs many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def fake_elpv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic ELPV data dir (shared by the bench tests)."""
    return write_fake_elpv(tmp_path_factory.mktemp("elpv"))


TINY_SCHEDULE = [
    "--flow", "tiny",
    "--image-size", "64",
    "--epochs", "1",
    "--cache-views", "2",
    "--test-views", "4",
    "--bootstrap", "20",
    "--device", "cpu",
]  # fmt: skip
