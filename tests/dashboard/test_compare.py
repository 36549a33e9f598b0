"""Compare page and service: grouping by training images, the AUROC table in the paper's
format, overlaid curves, disagreements, and heatmaps side by side."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from dashboard.services import compare as service
from dashboard.services import compare_images
from dashboard.services.models import ModelChoice
from db.repositories import (
    add_verdict,
    claim_job,
    create_job,
    create_model_version,
    finish_succeeded,
    get_heatmap_png,
    get_user,
    list_scores,
    mark_model_ready,
    save_threshold,
    set_model_job,
    upsert_score,
)
from db.session import session_scope
from jobspec import DEFAULT_HEATMAP_METHOD, HeatmapMethod
from tests.dashboard.conftest import OpenPage, StudioData, heatmap_pngs

PAGE = "dashboard/pages/compare.py"
# SENet scores of the 4 normal then 4 anomalous inspect images: it ranks worse than CBAM.
SE_NORMAL = (0.10, 0.50, 0.30, 0.60)
SE_ANOMALOUS = (0.40, 0.70, 0.80, 0.90)


def _add_model(
    studio: StudioData,
    variant: str,
    scores: dict[int, float],
    batch_ids: list[int],
    *,
    threshold: float | None = 0.5,
) -> int:
    with session_scope(studio.factory) as session:
        reviewer = get_user(session, studio.users["reviewer"].id)
        model = create_model_version(
            session,
            project_id=studio.project.id,
            name=f"widget {variant}",
            variant=variant,
            backbone="mobilenet_v2",
            category=studio.category,
            actor=reviewer,
        )
        job = create_job(
            session,
            kind="train",
            project_id=studio.project.id,
            params={
                "model_version_id": model.id,
                "batch_ids": batch_ids,
                "image_ids": None,
                "category": studio.category,
                "preset": "tiny",
                "overrides": {},
            },
            actor=reviewer,
        )
        set_model_job(session, model.id, job.id)
        claim_job(session, job.id, worker_name="test")
        finish_succeeded(session, job.id)
        mark_model_ready(session, model.id, artifact_path=f"models/{model.id}/model.adn")
        for index, (image_id, value) in enumerate(scores.items()):
            upsert_score(
                session,
                image_id=image_id,
                model_version_id=model.id,
                score=value,
                heatmap_pngs=heatmap_pngs(48, 48, seed=50 + index),
            )
        if threshold is not None:
            save_threshold(session, model_version_id=model.id, value=threshold, method="manual")
        return model.id


def _se_scores(studio: StudioData) -> dict[int, float]:
    batch = studio.inspect_batch
    return dict(zip(batch.normal_ids + batch.anomalous_ids, SE_NORMAL + SE_ANOMALOUS, strict=True))


def test_compare_page_shows_the_table_for_two_variants(
    studio: StudioData, open_page: OpenPage
) -> None:
    _add_model(studio, "se", _se_scores(studio), [studio.train_batch.id])
    app = open_page(PAGE).run()
    assert not app.exception
    table = next(m.value for m in app.markdown if m.value.startswith("| Category"))
    lines = table.splitlines()
    assert lines[0] == "| Category | CBAM | SENet | anomalous / normal |"
    widget = next(line for line in lines if line.startswith("| widget"))
    assert "**100.0 (100.0–100.0)**" in widget  # CBAM separates perfectly: best, bold
    assert "| 87.5 (" in widget  # SENet: 14 of 16 pairs ranked right
    assert widget.endswith("| 4 / 4 |")
    assert any(line.startswith("| **Mean**") for line in lines)

    charts = app.get("plotly_chart")
    assert len(charts) == 2  # overlaid ROC and distributions
    disagree = app.dataframe[0].value
    assert len(disagree) == 3  # SENet flips a normal at 0.5 and 0.6 and passes a defect at 0.4
    assert set(disagree["truth"]) == {"normal", "anomalous"}
    assert len(app.image) == 3  # original + one overlay per model


def test_models_are_grouped_by_training_images(studio: StudioData, open_page: OpenPage) -> None:
    _add_model(studio, "se", _se_scores(studio), [studio.train_batch.id])
    other = _add_model(
        studio, "none", _se_scores(studio), [studio.train_batch.id, studio.inspect_batch.id]
    )
    groups = service.training_groups(studio.factory, studio.project.id)
    assert [len(g.models) for g in groups] == [1, 2]  # the newest group first
    assert groups[0].models[0].id == other
    assert groups[0].batch_ids == tuple(sorted([studio.train_batch.id, studio.inspect_batch.id]))
    assert [m.variant for m in groups[1].models] == ["cbam", "se"]
    assert groups[1].label.startswith(f"batch {studio.train_batch.name} · ")
    both = sorted([studio.train_batch, studio.inspect_batch], key=lambda b: b.id)
    assert groups[0].label.startswith(f"batches {both[0].name}, {both[1].name} · ")
    app = open_page(PAGE).run()
    assert any("Only one model was trained on these images" in i.value for i in app.info)
    app.selectbox(key="adn_cmp_group").set_value(groups[1].key).run()
    assert any(m.value.startswith("| Category | CBAM | SENet") for m in app.markdown)


def test_without_thresholds_there_is_no_disagreement_but_heatmaps_still_show(
    studio: StudioData, open_page: OpenPage
) -> None:
    _add_model(studio, "se", _se_scores(studio), [studio.train_batch.id], threshold=None)
    app = open_page(PAGE).run()
    assert not app.dataframe
    assert any("same verdict on every common image" in c.value for c in app.caption)
    assert len(app.image) == 3


def test_compare_shows_each_models_map_by_the_chosen_method(
    studio: StudioData, open_page: OpenPage
) -> None:
    _add_model(studio, "se", _se_scores(studio), [studio.train_batch.id])
    app = open_page(PAGE).run()
    captions = [i.captions[0] for i in app.image]
    assert len(captions) == 3 and "LayerCAM, every stage (default)" in captions[0]
    app.button_group(key="adn_cmp_method").set_value(HeatmapMethod.INPUT_GRADIENT.value).run()
    assert "input gradient" in app.image[0].captions[0] and len(app.image) == 3
    app.button_group(key="adn_cmp_method").set_value("every").run()
    assert len(app.image) == 6  # a row of original and two maps per stored method


def _choice(model_id: int, variant: str) -> ModelChoice:
    return ModelChoice(model_id, f"m{model_id}", variant, "b", None, datetime.now(UTC))


def test_model_labels_name_the_variant_once() -> None:
    now = datetime.now(UTC)
    several = ModelChoice(4, "line 3 · SENet", "se", "mobilenet_v2", "cell", now)
    assert several.label == "#4 line 3 · SENet · mobilenet_v2 · cell"
    single = ModelChoice(5, "line 3", "cbam", "mobilenet_v2", None, now)
    assert single.label == "#5 line 3 · CBAM · mobilenet_v2 · all categories"
    assert "\u202e" not in ModelChoice(6, "a\u202eb", "none", "b", None, now).label


def test_column_names_disambiguate_repeated_variants() -> None:
    names = service.column_names([_choice(1, "cbam"), _choice(2, "cbam"), _choice(3, "se")])
    assert names == ["CBAM #1", "CBAM #2", "SENet"]


def _comparison(
    scores: np.ndarray, categories: list[str], truths: list[str | None]
) -> service.Comparison:
    n = len(categories)
    return service.Comparison(
        models=(_choice(1, "none"), _choice(2, "cbam")),
        columns=["No attention", "CBAM"],
        image_ids=np.arange(n),
        categories=np.array(categories, dtype=object),
        truths=np.array(truths, dtype=object),
        scores=scores,
        verdicts=np.full((2, n), None, dtype=object),
    )


def test_auroc_table_per_category_mean_and_undefined_cells() -> None:
    rng = np.random.default_rng(0)
    categories = ["a"] * 40 + ["b"] * 40 + ["c"] * 4
    truths: list[str | None] = (
        (["anomalous"] * 15 + ["normal"] * 25 + ["anomalous"] * 10 + ["normal"] * 30)
        + ["normal"] * 3
        + [None]
    )
    positives = np.array([t == "anomalous" for t in truths])
    scores = np.vstack(
        [rng.normal(0, 1, 84) + positives * 0.8, rng.normal(0, 1, 84) + positives * 2]
    )
    table = service.auroc_table(_comparison(scores, categories, truths), n_boot=300)
    assert table.rows == ["a", "b", "c", service.MEAN_ROW]
    for row, mask in (("a", slice(0, 40)), ("b", slice(40, 80))):
        for index, column in enumerate(table.columns):
            cell = table.cells[(row, column)]
            assert cell is not None
            assert cell.auroc == pytest.approx(roc_auc_score(positives[mask], scores[index, mask]))
            assert cell.low <= cell.auroc <= cell.high
        assert table.best(row) == {"CBAM"}
    assert table.cells[("c", "CBAM")] is None  # only normals there
    mean = table.cells[(service.MEAN_ROW, "CBAM")]
    assert mean is not None
    assert mean.auroc == pytest.approx(
        (table.cells[("a", "CBAM")].auroc + table.cells[("b", "CBAM")].auroc) / 2  # type: ignore[union-attr]
    )
    assert table.counts["c"] == (0, 3)
    text = service.table_markdown(table)
    assert "| c | – | – | 0 / 3 |" in text
    assert text.count("**") >= 2 * 3  # best cells of a, b and the mean row are bold


def test_normalised_scores_are_scaled_per_model() -> None:
    scores = np.array([[0.0, 5.0, 10.0], [100.0, 300.0, 200.0]])
    frame = service.normalised_scores(
        _comparison(scores, ["a", "a", "a"], ["normal", "anomalous", "anomalous"])
    )
    assert frame[frame["model"] == "CBAM"]["scaled"].tolist() == [0.0, 1.0, 0.5]
    assert frame["scaled"].between(0, 1).all()


def test_verdicts_follow_the_same_rule_as_the_review_queue(studio: StudioData) -> None:
    se = _add_model(studio, "se", _se_scores(studio), [studio.train_batch.id])
    with session_scope(studio.factory) as session:
        # A band for the whole model, then the category's own single threshold wins over it.
        save_threshold(session, model_version_id=se, value=0.3, upper_value=0.75, method="manual")
        save_threshold(
            session, model_version_id=studio.model.id, value=0.4, upper_value=0.8, method="manual"
        )
        save_threshold(
            session, model_version_id=studio.model.id, value=0.6, category="widget", method="manual"
        )
    groups = service.training_groups(studio.factory, studio.project.id)
    comparison = service.load_comparison(studio.factory, groups[0].models)
    with session_scope(studio.factory) as session:
        for row, model in enumerate(comparison.models):
            page = list_scores(session, model_version_id=model.id, limit=100)
            expected = {r.image_id: r.model_verdict for r in page.items}
            got = dict(zip(comparison.image_ids.tolist(), comparison.verdicts[row], strict=True))
            assert got == expected
    assert "review" in comparison.verdicts[1].tolist()  # SENet's band is in force
    assert "review" not in comparison.verdicts[0].tolist()  # CBAM: the category's own wins


def test_truth_is_the_current_verdict_else_the_known_label(studio: StudioData) -> None:
    _add_model(studio, "se", _se_scores(studio), [studio.train_batch.id])
    normal, other_normal = studio.inspect_batch.normal_ids[:2]
    defect = studio.inspect_batch.anomalous_ids[0]
    with session_scope(studio.factory) as session:
        reviewer = get_user(session, studio.users["reviewer"].id)
        # A changed mind: the latest verdict counts. "Unsure" falls back to the known label.
        add_verdict(session, image_id=normal, label="normal", user=reviewer)
        add_verdict(session, image_id=normal, label="anomalous", user=reviewer)
        add_verdict(session, image_id=defect, label="unsure", user=reviewer)
        add_verdict(session, image_id=other_normal, label="unsure", user=reviewer)
        add_verdict(session, image_id=other_normal, label="anomalous", user=reviewer)
    groups = service.training_groups(studio.factory, studio.project.id)
    comparison = service.load_comparison(studio.factory, groups[0].models)
    truths = dict(zip(comparison.image_ids.tolist(), comparison.truths.tolist(), strict=True))
    assert truths[normal] == "anomalous" and truths[other_normal] == "anomalous"
    assert truths[defect] == "anomalous"  # the known label
    assert sum(t == "anomalous" for t in truths.values()) == 6
    assert comparison.labelled.all()


def test_heatmaps_of_one_image_come_per_model_and_method(studio: StudioData) -> None:
    se = _add_model(studio, "se", _se_scores(studio), [studio.train_batch.id])
    image_id = studio.inspect_batch.image_ids[0]
    (group,) = service.training_groups(studio.factory, studio.project.id)
    methods = service.heatmap_methods(studio.factory, image_id, group.models)
    assert methods == [DEFAULT_HEATMAP_METHOD.value, HeatmapMethod.INPUT_GRADIENT.value]
    by_method = {
        m: service.heatmap_pngs(studio.factory, image_id, group.models, m) for m in methods
    }
    with session_scope(studio.factory) as session:
        for method, pngs in by_method.items():
            expected = [
                get_heatmap_png(session, image_id=image_id, model_version_id=m.id, method=method)
                for m in group.models
            ]
            assert pngs == expected
    assert [m.id for m in group.models] == [studio.model.id, se]
    pngs = by_method[DEFAULT_HEATMAP_METHOD.value]
    assert all(p is not None and p.startswith(b"\x89PNG") for p in pngs)
    assert pngs[0] != pngs[1] and pngs[0] != by_method[HeatmapMethod.INPUT_GRADIENT.value][0]
    missing = service.heatmap_pngs(studio.factory, image_id, group.models, "gradcam")
    assert missing == [None, None]
    files = compare_images.image_files(studio.factory, [image_id])
    assert compare_images.image_path(studio.settings.data_dir, files[image_id]).is_file()
