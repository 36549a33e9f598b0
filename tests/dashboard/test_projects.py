"""Projects & upload: creating projects, uploading mixed batches, batches and thumbnails."""

from __future__ import annotations

import io
import zipfile

import pytest

from dashboard.context import PROJECT_KEY
from db.repositories import count_images, get_project_by_name, list_batches
from db.session import session_scope
from tests.dashboard.conftest import (
    BatchInfo,
    OpenPage,
    ProjectInfo,
    StudioUser,
    png_bytes,
)
from tests.fixtures.synthetic import textured_image

PAGE = "dashboard/pages/projects.py"


def good_png(seed: int) -> bytes:
    return png_bytes(textured_image(40, seed=seed))


def test_reviewer_creates_a_project_and_it_becomes_current(
    open_page: OpenPage, studio_factory, studio_users: dict[str, StudioUser]
) -> None:
    app = open_page(PAGE, role="reviewer", project_id=None).run()
    assert "Create a project" in app.info[0].value
    app.text_input[0].input("Bottle caps")
    app.text_area[0].input("line 3")
    app.button[0].click().run()
    assert not app.error
    with session_scope(studio_factory) as session:
        project = get_project_by_name(session, "Bottle caps")
        assert project is not None and project.description == "line 3"
    assert app.session_state[PROJECT_KEY] == project.id
    assert "created" in app.success[0].value


def test_duplicate_project_name_is_refused(
    open_page: OpenPage, studio_project: ProjectInfo
) -> None:
    app = open_page(PAGE, role="admin").run()
    app.text_input[0].input(studio_project.name)
    app.button[0].click().run()
    assert "already exists" in app.error[0].value


def test_upload_mixed_batch_through_the_page(
    open_page: OpenPage, studio_factory, studio_project: ProjectInfo
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    next(t for t in app.text_input if t.label == "Batch name").input("monday")
    next(t for t in app.text_input if t.label.startswith("Category")).input("caps")
    app.file_uploader[0].set_value(
        [
            ("a.png", good_png(1), "image/png"),
            ("b.png", good_png(2), "image/png"),
            ("copy-of-a.png", good_png(1), "image/png"),
            ("broken.png", b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "image/png"),
        ]
    )
    next(b for b in app.button if b.label == "Upload batch").click().run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {"Accepted": "2", "Duplicates": "1", "Rejected": "1"}
    table = app.dataframe[0].value.set_index("file")
    assert table.loc["a.png", "result"] == "accepted"
    assert table.loc["copy-of-a.png", "result"] == "duplicate"
    assert table.loc["broken.png", "result"] == "rejected"
    assert table.loc["broken.png", "reason"]
    assert "rejected" in app.warning[0].value and "`broken.png`" in app.warning[0].value
    with session_scope(studio_factory) as session:
        (batch,) = list_batches(session, studio_project.id)
        assert (batch.name, batch.purpose) == ("monday", "train")
        assert count_images(session, project_id=studio_project.id, category="caps") == 2
    # The batch list and the thumbnail grid show the new batch.
    batches = app.dataframe[1].value
    assert batches.iloc[0]["batch"] == "monday" and batches.iloc[0]["images"] == 2
    assert len(app.get("image")) == 2


def test_upload_with_bad_label_csv_stores_nothing(
    open_page: OpenPage, studio_factory, studio_project: ProjectInfo
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    app.radio(key="adn_upload_labels").set_value("csv").run()
    next(t for t in app.text_input if t.label == "Batch name").input("with labels")
    csv_uploader, files = app.file_uploader[0], app.file_uploader[1]
    csv_uploader.set_value(("labels.csv", b"a.png,maybe\n", "text/csv"))
    files.set_value([("a.png", good_png(3), "image/png")])
    next(b for b in app.button if b.label == "Upload batch").click().run()
    assert "label file cannot be used" in app.error[0].value
    assert "line 1" in app.error[0].value
    with session_scope(studio_factory) as session:
        assert list_batches(session, studio_project.id) == []


def test_upload_without_files_says_so(open_page: OpenPage, studio_project: ProjectInfo) -> None:
    app = open_page(PAGE, role="reviewer").run()
    next(b for b in app.button if b.label == "Upload batch").click().run()
    assert "No files chosen" in app.error[0].value


def test_viewer_sees_batches_and_images_but_cannot_upload(
    open_page: OpenPage, train_batch: BatchInfo
) -> None:
    app = open_page(PAGE, role="viewer").run()
    assert not app.exception
    assert not app.file_uploader
    assert not [b for b in app.button if b.label in ("Upload batch", "Create project")]
    assert any("cannot upload" in i.value for i in app.info)
    assert app.dataframe[0].value.iloc[0]["batch"] == train_batch.name
    assert len(app.get("image")) == len(train_batch.image_ids)


def test_thumbnail_grid_pages(
    open_page: OpenPage, studio_factory, studio_store, studio_users, studio_project, monkeypatch
) -> None:
    from dashboard.pages import projects as page_module  # noqa: F401  (constants only)

    files = [(f"img{i}.png", good_png(50 + i)) for i in range(30)]
    from dashboard.services.uploads import UploadedItem, upload_batch

    result = upload_batch(
        studio_factory,
        settings=studio_store,
        project_id=studio_project.id,
        batch_name="many",
        purpose="inspect",
        files=[UploadedItem(n, d) for n, d in files],
        actor_id=studio_users["reviewer"].id,
    )
    assert result.accepted == len(files)
    app = open_page(PAGE, role="viewer").run()
    assert len(app.get("image")) == 24
    page_input = next(n for n in app.number_input if n.label == "Page")
    assert page_input.max == 2
    page_input.set_value(2).run()
    assert len(app.get("image")) == 6


@pytest.fixture
def zipped_batch() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("widget/test/good/001.png", good_png(70))
        archive.writestr("widget/test/crack/002.png", good_png(71))
    return buffer.getvalue()


def test_upload_zip_with_folder_labels_through_the_page(
    open_page: OpenPage, studio_factory, studio_project: ProjectInfo, zipped_batch: bytes
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    app.radio(key="adn_upload_purpose").set_value("inspect")
    app.radio(key="adn_upload_labels").set_value("folders").run()
    next(t for t in app.text_input if t.label == "Batch name").input("zipped")
    app.file_uploader[0].set_value([("week.zip", zipped_batch, "application/zip")])
    next(b for b in app.button if b.label == "Upload batch").click().run()
    assert not app.error
    table = app.dataframe[0].value.set_index("file")
    assert list(table["result"]) == ["accepted", "accepted"]
    with session_scope(studio_factory) as session:
        labels = {
            lbl: count_images(session, project_id=studio_project.id, known_label=lbl)
            for lbl in ("normal", "anomalous")
        }
    assert labels == {"normal": 1, "anomalous": 1}


def test_label_csv_gaps_and_a_duplicate_only_upload_are_reported(
    open_page: OpenPage, studio_factory, studio_project: ProjectInfo
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    app.radio(key="adn_upload_labels").set_value("csv").run()
    next(t for t in app.text_input if t.label == "Batch name").input("labelled")
    app.file_uploader[0].set_value(("labels.csv", b"a.png,normal\ngone.png,bad\n", "text/csv"))
    app.file_uploader[1].set_value(
        [("a.png", good_png(4), "image/png"), ("new.png", good_png(5), "image/png")]
    )
    next(b for b in app.button if b.label == "Upload batch").click().run()
    warnings = " ".join(w.value for w in app.warning)
    assert "1 row(s) of the label CSV name no uploaded file" in warnings and "gone.png" in warnings
    assert "1 uploaded file(s) have no row in the label CSV" in warnings and "new.png" in warnings
    # The same files again: nothing new, so no second, empty batch.
    app.radio(key="adn_upload_labels").set_value("none").run()
    next(t for t in app.text_input if t.label == "Batch name").input("again")
    app.file_uploader[0].set_value([("a.png", good_png(4), "image/png")])
    next(b for b in app.button if b.label == "Upload batch").click().run()
    assert any("no batch 'again' was created" in i.value for i in app.info)
    with session_scope(studio_factory) as session:
        assert [b.name for b in list_batches(session, studio_project.id)] == ["labelled"]
