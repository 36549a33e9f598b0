"""Export: per-image CSV/JSON contents (including odd file names) and checkpoint download."""

from __future__ import annotations

import csv
import io
import json

import pytest

from dashboard.services import export
from db.errors import InvalidValueError
from db.ingest import ingest_files
from db.repositories import (
    add_verdict,
    create_batch,
    create_model_version,
    get_user,
    save_threshold,
    upsert_score,
)
from db.session import session_scope
from tests.dashboard.conftest import OpenPage, StudioData, png_bytes
from tests.fixtures.synthetic import textured_image

PAGE = "dashboard/pages/export.py"
ODD_NAME = 'we,ird "name"\nline two =1+1.png'
FORMULA_NAME = "=HYPERLINK(evil).png"


@pytest.fixture
def reviewed(studio: StudioData) -> StudioData:
    """Two verdicts on the inspect images and two images with awkward names, scored."""
    with session_scope(studio.factory) as session:
        reviewer = get_user(session, studio.users["reviewer"].id)
        flagged = studio.inspect_batch.anomalous_ids[0]
        add_verdict(session, image_id=flagged, label="anomalous", user=reviewer)
        add_verdict(
            session, image_id=studio.inspect_batch.normal_ids[0], label="unsure", user=reviewer
        )
        batch = create_batch(
            session, project_id=studio.project.id, name="odd", purpose="inspect", actor=reviewer
        )
        outcomes = ingest_files(
            session,
            project_id=studio.project.id,
            batch_id=batch.id,
            files=[
                (ODD_NAME, png_bytes(textured_image(40, seed=900))),
                (FORMULA_NAME, png_bytes(textured_image(40, seed=901))),
            ],
            settings=studio.settings,
            actor=reviewer,
        )
        for outcome, value in zip(outcomes, (0.01, 0.02), strict=True):
            upsert_score(
                session, image_id=outcome.image_id, model_version_id=studio.model.id, score=value
            )
    return studio


def test_rows_carry_every_field(reviewed: StudioData) -> None:
    rows = export.rows_for_model(reviewed.factory, reviewed.model.id)
    assert len(rows) == 10
    assert [r.score for r in rows] == sorted((r.score for r in rows), reverse=True)
    top = rows[0]
    assert top.image_id == reviewed.inspect_batch.anomalous_ids[-1]
    assert (top.model_name, top.variant, top.backbone) == ("widget cbam", "cbam", "mobilenet_v2")
    assert (top.threshold_version, top.threshold_value) == (1, 0.5)
    assert top.threshold_scope == "all categories"
    assert top.model_verdict == "anomalous" and top.known_label == "anomalous"
    by_image = {r.image_id: r for r in rows}
    flagged = by_image[reviewed.inspect_batch.anomalous_ids[0]]
    assert (flagged.reviewer_verdict, flagged.reviewer) == ("anomalous", "reviewer")
    assert flagged.verdict_at is not None and flagged.scored_at is not None
    assert by_image[reviewed.inspect_batch.normal_ids[0]].reviewer_verdict == "unsure"
    assert by_image[reviewed.inspect_batch.normal_ids[1]].reviewer is None


def test_csv_escapes_odd_names_and_neutralises_formulas(reviewed: StudioData) -> None:
    rows = export.rows_for_model(reviewed.factory, reviewed.model.id)
    text = export.to_csv(rows)
    parsed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(parsed[0]) == list(export.COLUMNS)
    assert len(parsed) == len(rows)
    names = {r["file_name"] for r in parsed}
    assert ODD_NAME in names  # commas, quotes and the line break survive a round trip
    assert "'" + FORMULA_NAME in names  # a spreadsheet will not run it
    assert '"we,ird ""name""' in text
    first = parsed[0]
    assert float(first["score"]) == rows[0].score
    assert first["threshold_version"] == "1" and first["model_verdict"] == "anomalous"
    unreviewed = next(p for p in parsed if p["file_name"] == ODD_NAME)
    assert unreviewed["reviewer_verdict"] == "" and unreviewed["percentile"] == ""


def test_json_keeps_names_exact_and_times_iso(reviewed: StudioData) -> None:
    rows = export.rows_for_model(reviewed.factory, reviewed.model.id)
    records = json.loads(export.to_json(rows))
    assert len(records) == len(rows) and set(records[0]) == set(export.COLUMNS)
    names = {r["file_name"] for r in records}
    assert ODD_NAME in names and FORMULA_NAME in names
    flagged = next(r for r in records if r["reviewer_verdict"] == "anomalous")
    assert flagged["verdict_at"].endswith("+00:00")
    assert records[-1]["percentile"] is None


def test_project_export_covers_every_model_version(reviewed: StudioData) -> None:
    with session_scope(reviewed.factory) as session:
        other = create_model_version(
            session, project_id=reviewed.project.id, name="other", variant="se", backbone="alexnet"
        )
        upsert_score(
            session,
            image_id=reviewed.inspect_batch.image_ids[0],
            model_version_id=other.id,
            score=3.5,
        )
    rows = export.rows_for_project(reviewed.factory, reviewed.project.id)
    assert len(rows) == 11
    assert {r.model_version_id for r in rows} == {reviewed.model.id, other.id}


def test_checkpoint_of_ready_and_pending_models(studio: StudioData) -> None:
    info = export.checkpoint_file(studio.factory, studio.settings.data_dir, studio.model.id)
    stored = studio.settings.data_dir / studio.model.artifact_path
    assert info.path == stored
    assert info.size_bytes == stored.stat().st_size
    assert info.download_name == f"widget-cbam-cbam-mobilenet_v2-v{studio.model.id}.adn"
    with session_scope(studio.factory) as session:
        pending = create_model_version(
            session, project_id=studio.project.id, name="p", variant="se", backbone="alexnet"
        ).id
    with pytest.raises(InvalidValueError, match="only a ready model"):
        export.checkpoint_file(studio.factory, studio.settings.data_dir, pending)
    stored.unlink()
    with pytest.raises(InvalidValueError, match="missing"):
        export.checkpoint_file(studio.factory, studio.settings.data_dir, studio.model.id)
    assert export.human_size(512) == "512 bytes"
    assert export.human_size(3 * 1024 * 1024) == "3.0 MB"


def test_export_page_offers_downloads(open_page: OpenPage, reviewed: StudioData) -> None:
    app = open_page(PAGE, role="viewer").run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert (metrics["Images"], metrics["Reviewed"]) == ("10", "2")
    downloads = app.get("download_button")
    labels = [d.proto.label for d in downloads]
    assert labels == ["Download CSV", "Download JSON", "Download checkpoint"]
    preview = app.dataframe[0].value
    assert list(preview.columns) == list(export.COLUMNS) and len(preview) == 10
    size = export.human_size(
        (reviewed.settings.data_dir / reviewed.model.artifact_path).stat().st_size
    )
    assert any(size in m.value for m in app.markdown)
    app.toggle(key="adn_export_all").set_value(True).run()
    assert {m.label: m.value for m in app.metric}["Images"] == "10"


def test_export_page_without_models(open_page: OpenPage, train_batch) -> None:
    app = open_page(PAGE, role="viewer").run()
    assert "No model version" in app.info[0].value


def test_threshold_scope_column_names_a_category_threshold(reviewed: StudioData) -> None:
    rows = export.rows_for_model(reviewed.factory, reviewed.model.id)
    category = rows[0].category
    assert category is not None
    with session_scope(reviewed.factory) as session:
        save_threshold(
            session,
            model_version_id=reviewed.model.id,
            category=category,
            value=0.9,
            method="manual",
        )
    after = export.rows_for_model(reviewed.factory, reviewed.model.id)
    assert {r.threshold_scope for r in after if r.category == category} == {f"category {category}"}
    assert {(r.threshold_scope, r.threshold_version) for r in after if r.category == category} == {
        (f"category {category}", 1)
    }
    assert "threshold_scope" in export.COLUMNS


def test_summary_and_preview_agree_with_the_full_export(reviewed: StudioData) -> None:
    project = reviewed.project.id
    rows = export.rows_for_model(reviewed.factory, reviewed.model.id)
    counts = export.summary(
        reviewed.factory, project_id=project, model_version_id=reviewed.model.id
    )
    assert counts.images == len(rows)
    assert counts.reviewed == sum(1 for r in rows if r.reviewer_verdict)
    assert counts.anomalous == sum(1 for r in rows if r.model_verdict == "anomalous")
    preview = export.preview_rows(
        reviewed.factory, project_id=project, model_version_id=None, limit=3
    )
    assert preview == export.rows_for_project(reviewed.factory, project)[:3]
