"""The quality bench, its baselines and the ablations end to end on synthetic ELPV-like cells."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from bench import ablations, elpv_quality
from bench.runner import RunSpec
from bench.views import score_views
from engine.data.elpv import make_elpv_split
from engine.data.transforms import test_view_angles
from engine.inputs import load_images
from engine.models.attentdiffernet.torch_model import AttentDifferNetModel
from engine.scoring import score_images
from tests.bench.conftest import TINY_SCHEDULE


def _section(text: str, heading: str) -> str:
    return text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def test_quality_table_has_every_method_type_and_mild_row(fake_elpv: Path, tmp_path: Path) -> None:
    out, store = tmp_path / "quality.md", tmp_path / "runs.jsonl"
    code = elpv_quality.main(
        [
            "--data-dir", str(fake_elpv),
            "--types", "mono", "poly",
            "--seeds", "0", "1",
            "--backbones", "alexnet:random",
            "--variants", "none",
            "--baselines", "gauss-view0", "knn5-mean", "patchcore",
            "--out", str(out),
            "--store", str(store),
            *TINY_SCHEDULE,
        ]
    )  # fmt: skip
    assert code == 0
    text = out.read_text()
    assert "- status: complete" in text and "- command: `" in text and "- machine: " in text
    summary = _section(text, "Image AUROC")
    assert "| method | mono | poly | average |" in summary
    assert "| alexnet(random)/none | " in summary
    for baseline in ("gauss-view0", "knn5-mean", "patchcore"):
        assert f"| {baseline} (baseline; alexnet(random)/none features) | " in summary
    assert summary.count("(n=2)") == 3 * 4  # mono, poly, average for each of the 4 methods
    mild = _section(text, "Mild defects")
    assert mild.count("| mono | ") == 1 and mild.count("| poly | ") == 1
    assert (tmp_path / "quality.png").is_file()
    records = [json.loads(line) for line in store.read_text().splitlines()]
    assert len(records) == 4 and all("4" in r["views"] and "1" in r["views"] for r in records)


def test_ablations_reuse_stored_runs_and_write_every_group(fake_elpv: Path, tmp_path: Path) -> None:
    store, common = tmp_path / "runs.jsonl", ["--data-dir", str(fake_elpv), "--seeds", "0"]
    elpv_quality.main(
        [*common, "--types", "mono", "--backbones", "mobilenet_v2:imagenet",
         "--variants", "se", "--baselines", "--no-plot",
         "--out", str(tmp_path / "q.md"), "--store", str(store), *TINY_SCHEDULE]
    )  # fmt: skip
    before = len(store.read_text().splitlines())
    out = tmp_path / "ablations.md"
    code = ablations.main(
        [*common, "--types", "mono", "--groups", "views", "se-ratio", "position",
         "--variants", "se", "--out", str(out), "--store", str(store), *TINY_SCHEDULE]
    )  # fmt: skip
    assert code == 0
    text = out.read_text()
    for setting in (
        "se: 4 views (default)",
        "se: r = 2 (default)",
        "se: r = 16",
        "alexnet(random) se: pre-pool (default)",
        "alexnet(random) cbam: post-pool",
    ):
        assert f"| {setting} | " in text, setting
    # views and the r = 2 default reuse the stored se run: 1 + 4 new runs (r=16, position ×4)
    assert len(store.read_text().splitlines()) == before + 5


def test_score_views_matches_the_engine_scores(fake_elpv: Path) -> None:
    spec = RunSpec("mono", 0, variant="cbam", backbone="alexnet", weights="random",
                   image_size=64, flow="tiny")  # fmt: skip
    torch.manual_seed(0)
    model = AttentDifferNetModel(spec.config("cpu").model).eval()
    split = make_elpv_split("mono", 0, data_dir=fake_elpv)
    images = load_images([r.path for r in split.test], 64).tensor
    device = torch.device("cpu")
    mine = score_views(model, images, 8, device)
    for views in (8, 4):
        engine_scores = score_images(model, images, test_view_angles(views), device, 0)
        np.testing.assert_allclose(mine.scores(views), engine_scores, rtol=1e-5)
    with torch.inference_mode():
        unrotated = model.extract(images.float() / 255).numpy()
    np.testing.assert_allclose(mine.feat0, unrotated, rtol=1e-4, atol=1e-5)
