from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from db.errors import ConflictError, InvalidValueError, NotFoundError
from db.repositories import (
    UNLABELLED,
    count_images,
    create_batch,
    create_project,
    get_image,
    get_project,
    image_file_path,
    list_batches,
    list_categories,
    list_image_ids,
    list_images,
    list_projects,
    require_project_by_name,
    set_known_label,
)
from db.settings import StoreSettings
from tests.db.factories import make_batch, make_image, make_project


def test_projects(session: Session) -> None:
    screws = create_project(session, name=" screws ", description="M4 line")
    create_project(session, name="bottles")
    assert screws.name == "screws"
    assert [p.name for p in list_projects(session)] == ["bottles", "screws"]
    assert get_project(session, screws.id) is screws
    assert require_project_by_name(session, "screws") is screws
    with pytest.raises(ConflictError, match="already exists"):
        create_project(session, name="screws")
    with pytest.raises(InvalidValueError, match="empty"):
        create_project(session, name="   ")
    with pytest.raises(NotFoundError, match="project 12345"):
        get_project(session, 12345)


def test_batches(session: Session) -> None:
    project = make_project(session)
    train = create_batch(session, project_id=project.id, name="normals", purpose="train")
    inspect = create_batch(session, project_id=project.id, name="monday", purpose="inspect")
    assert (train.file_count, train.accepted_count) == (0, 0)
    assert {b.id for b in list_batches(session, project.id)} == {train.id, inspect.id}
    assert [b.id for b in list_batches(session, project.id, purpose="train")] == [train.id]
    with pytest.raises(InvalidValueError, match="purpose 'test'"):
        create_batch(session, project_id=project.id, name="x", purpose="test")
    with pytest.raises(NotFoundError):
        create_batch(session, project_id=999, name="x", purpose="train")


def test_image_filters_and_paths(session: Session, store_settings: StoreSettings) -> None:
    project = make_project(session)
    other = make_project(session)
    train = make_batch(session, project, "train")
    inspect = make_batch(session, project, "inspect")
    a = make_image(session, train, category="screw", known_label="normal")
    b = make_image(session, inspect, category="screw", known_label="anomalous")
    c = make_image(session, inspect, category="nut")
    make_image(session, make_batch(session, other), category="screw")

    assert [i.id for i in list_images(session, project_id=project.id)] == [a.id, b.id, c.id]
    assert [i.id for i in list_images(session, project_id=project.id, purpose="train")] == [a.id]
    assert [i.id for i in list_images(session, project_id=project.id, batch_id=inspect.id)] == [
        b.id,
        c.id,
    ]
    assert [i.id for i in list_images(session, project_id=project.id, category="screw")] == [
        a.id,
        b.id,
    ]
    assert [i.id for i in list_images(session, project_id=project.id, known_label=UNLABELLED)] == [
        c.id
    ]
    assert [i.id for i in list_images(session, project_id=project.id, known_label="anomalous")] == [
        b.id
    ]
    assert [i.id for i in list_images(session, project_id=project.id, limit=1, offset=1)] == [b.id]
    assert count_images(session, project_id=project.id, category="screw") == 2
    assert list_image_ids(session, project_id=project.id, purpose="inspect") == [b.id, c.id]
    assert list_categories(session, project.id) == ["nut", "screw"]

    path = image_file_path(store_settings, get_image(session, a.id))
    assert path == store_settings.data_dir / a.storage_path
    assert path.is_absolute()

    set_known_label(session, c.id, "anomalous")
    assert get_image(session, c.id).known_label == "anomalous"
    with pytest.raises(InvalidValueError):
        set_known_label(session, c.id, "broken")
    with pytest.raises(InvalidValueError):
        list_images(session, project_id=project.id, known_label="maybe")
