"""What the benches plan to run: specs, ablation rows, per-backbone variants, a shared store."""

from __future__ import annotations

from pathlib import Path

from bench import elpv_quality
from bench.ablations import group_rows
from bench.runner import FLOWS, RunSpec, RunStore


def test_spec_config_carries_flow_size_and_standardisation() -> None:
    spec = RunSpec("mono", 0, flow="compact", standardize=False)
    model = spec.config("cpu").model
    assert model.flow == FLOWS["compact"] and model.flow.subnet_hidden == 512
    assert model.flow_input == "raw"
    assert RunSpec("mono", 0).config("cpu").model.flow_input == "standardize"
    assert spec.key != RunSpec("mono", 0, flow="compact").key


def test_standardize_and_flow_width_rows_pair_the_default_with_one_change() -> None:
    base = RunSpec("mono", 0, image_size=224)
    rows = group_rows("standardize", base, ["none"], ["se"])
    assert [(r.setting, r.default) for r in rows] == [
        ("se: standardised input", True),
        ("se: raw features (paper)", False),
    ]
    assert rows[0].spec == base.replace(variant="se")
    assert rows[1].spec == base.replace(variant="se", standardize=False)
    width = group_rows("flow-width", base, ["none"], ["none", "se"])
    assert [r.spec.flow for r in width] == ["paper", "compact", "paper", "compact"]
    assert [r.default for r in width] == [True, False, True, False]
    assert (
        group_rows("flow-width", base.replace(flow="compact"), [], ["se"])[1].spec.flow == "paper"
    )


def test_cache_views_row_quadruples_the_bank_up_to_64() -> None:
    rows = group_rows("cache-views", RunSpec("mono", 0, cache_views=4), [], ["none"])
    assert [(r.spec.cache_views, r.default) for r in rows] == [(4, True), (16, False)]
    assert len(group_rows("cache-views", RunSpec("mono", 0, cache_views=64), [], ["se"])) == 1


def test_image_size_row_compares_against_the_paper_size() -> None:
    small = group_rows("image-size", RunSpec("mono", 0, image_size=224), [], ["se"])
    assert [r.spec.image_size for r in small] == [224, 448]
    paper = group_rows("image-size", RunSpec("mono", 0, image_size=448), [], ["se"])
    assert [r.spec.image_size for r in paper] == [448, 224]


def test_backbones_may_name_their_own_variants() -> None:
    args = elpv_quality.build_parser().parse_args(
        ["--types", "mono", "--seeds", "0", "1",
         "--backbones", "mobilenet_v2", "alexnet:random:none,se", "--variants", "none", "cbam"]
    )  # fmt: skip
    labels = [(s.seed, s.label) for s in elpv_quality.plan(args)]
    assert labels == [
        (0, "mobilenet_v2/none"), (0, "mobilenet_v2/cbam"),
        (1, "mobilenet_v2/none"), (1, "mobilenet_v2/cbam"),
        (0, "alexnet(random)/none"), (0, "alexnet(random)/se"),
        (1, "alexnet(random)/none"), (1, "alexnet(random)/se"),
    ]  # fmt: skip


def test_store_sees_runs_another_process_appended(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    reader, writer = RunStore(path), RunStore(path)
    spec = RunSpec("poly", 2, variant="se")
    assert reader.get(spec) is None
    writer.add({"key": spec.key, "label": spec.label})
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"key": "half-written')  # no newline yet: skipped until complete
    found = reader.get(spec)
    assert found is not None and found["label"] == "mobilenet_v2/se"
