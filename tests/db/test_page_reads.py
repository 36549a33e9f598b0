"""The narrow reads behind the Review and Compare pages' first open give what the wider reads
they replaced gave, on SQLite and on PostgreSQL: score columns, listed images' files, the
category walk, the newest score, verdicts by image id range, and heatmaps by score id."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Image
from db.repositories import (
    add_verdict,
    current_labels,
    current_labels_between,
    get_heatmap_png,
    get_heatmap_pngs,
    get_project,
    heatmap_methods_of,
    image_files,
    list_categories,
    list_scored_images,
    newest_score,
    score_columns,
    scored_batches,
    upsert_score,
)
from db.session import session_scope
from jobspec import DEFAULT_HEATMAP_METHOD, HeatmapMethod
from tests.db.factories import (
    make_batch,
    make_image,
    make_model,
    make_project,
    make_user,
    png_bytes,
)


@dataclass(frozen=True)
class Store:
    """Two batches of images with mixed categories and labels, two models that scored some."""

    project_id: int
    models: tuple[int, int]
    batches: tuple[int, int]
    images: tuple[int, ...]


CATEGORIES = ("screw", None, "", "nut", "screw", "bolt", None, "nut")
LABELS = ("anomalous", "normal", None, "normal", None, "anomalous", "normal", None)


def _store(session: Session) -> Store:
    project = make_project(session)
    first, second = make_batch(session, project), make_batch(session, project)
    images = [
        make_image(session, first if i < 5 else second, category=c, known_label=k)
        for i, (c, k) in enumerate(zip(CATEGORIES, LABELS, strict=True))
    ]
    make_image(session, make_batch(session, make_project(session)), category="washer")
    model, other = make_model(session, project), make_model(session, project)
    for index, image in enumerate(images):
        upsert_score(session, image_id=image.id, model_version_id=model.id, score=index / 10)
        if index % 3:
            upsert_score(session, image_id=image.id, model_version_id=other.id, score=-index)
    return Store(
        project.id, (model.id, other.id), (first.id, second.id), tuple(i.id for i in images)
    )


def test_score_columns_hold_what_the_scored_images_held(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        store = _store(session)
        for model_id in store.models:
            wide = list_scored_images(session, model_version_id=model_id)
            narrow = score_columns(session, model_version_id=model_id)
            assert narrow.categories == () and narrow.known_labels == ()
            assert sorted(zip(narrow.image_ids, narrow.scores, strict=True)) == sorted(
                (r.image_id, r.score) for r in wide
            )
            joined = score_columns(session, model_version_id=model_id, with_images=True)
            assert len(joined) == len(wide)
            assert sorted(
                zip(
                    joined.image_ids,
                    joined.scores,
                    joined.categories,
                    joined.known_labels,
                    strict=True,
                ),
                key=str,
            ) == sorted(((r.image_id, r.score, r.category, r.known_label) for r in wide), key=str)
        idle = make_model(session, get_project(session, store.project_id))
        assert len(score_columns(session, model_version_id=idle.id, with_images=True)) == 0


def test_image_files_name_the_listed_images_only(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        store = _store(session)
        wanted = np.array([store.images[4], store.images[1], 10**9], dtype=np.int64)
        files = image_files(session, wanted)
        assert sorted(files) == sorted(store.images[i] for i in (1, 4))
        for image_id, found in files.items():
            image = session.get_one(Image, image_id)
            assert found == (image.original_name, image.storage_path)
        assert image_files(session, []) == {}


def test_the_category_walk_finds_what_distinct_found(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        store = _store(session)
        distinct = session.scalars(
            select(Image.category)
            .distinct()
            .where(Image.project_id == store.project_id, Image.category.is_not(None))
            .order_by(Image.category)
        )
        assert list_categories(session, store.project_id) == [c for c in distinct if c]
        assert list_categories(session, store.project_id) == ["bolt", "nut", "screw"]
        assert list_categories(session, store.project_id, batch_ids=[store.batches[1]]) == [
            "bolt",
            "nut",
        ]
        assert list_categories(session, make_project(session).id) == []


def test_the_newest_score_is_the_newest_batch_s(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        store = _store(session)
        model = store.models[0]
        # The first batch's third image is scored again last.
        upsert_score(session, image_id=store.images[2], model_version_id=model, score=0.5)
        newest = newest_score(session, model)
        assert newest is not None and newest.batch_id == store.batches[0]
        (batch,) = scored_batches(session, model_version_id=model, batch_id=newest.batch_id)
        assert newest.scored_at == batch.scored_at


def test_labels_by_id_range_are_the_current_labels(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        store = _store(session)
        reviewer = make_user(session)
        for index, label in ((0, "anomalous"), (0, "normal"), (3, "unsure"), (6, "anomalous")):
            add_verdict(session, image_id=store.images[index], label=label, user=reviewer)
        model = store.models[0]
        everything = current_labels_between(session, min(store.images), max(store.images))
        assert everything == current_labels(session, model_version_id=model)
        assert everything == {
            store.images[0]: "normal",
            store.images[3]: "unsure",
            store.images[6]: "anomalous",
        }
        assert current_labels_between(session, store.images[1], store.images[5]) == {
            store.images[3]: "unsure"
        }


def test_heatmaps_are_found_by_the_score_id(factory: sessionmaker[Session]) -> None:
    default, other_method = DEFAULT_HEATMAP_METHOD.value, HeatmapMethod.INPUT_GRADIENT.value
    with session_scope(factory) as session:
        store = _store(session)
        image, model, other = store.images[1], *store.models
        both = {other_method: png_bytes(color=(1, 2, 3)), default: png_bytes(color=(4, 5, 6))}
        upsert_score(session, image_id=image, model_version_id=model, score=1, heatmap_pngs=both)
        one = {default: png_bytes(color=(7, 8, 9))}
        upsert_score(session, image_id=image, model_version_id=other, score=2, heatmap_pngs=one)
        pngs = get_heatmap_pngs(session, image_id=image, model_version_id=model)
        assert list(pngs) == [default, other_method] and pngs == both
        found = get_heatmap_png(session, image_id=image, model_version_id=other, method=default)
        assert found == one[default]
        assert (
            get_heatmap_png(session, image_id=image, model_version_id=other, method=other_method)
            is None
        )
        assert heatmap_methods_of(
            session, image_id=image, model_version_ids=[model, other, 10**9]
        ) == {model: (default, other_method), other: (default,), 10**9: ()}
        unscored = store.images[0]
        assert get_heatmap_pngs(session, image_id=unscored, model_version_id=other) == {}
        assert heatmap_methods_of(session, image_id=unscored, model_version_ids=[other]) == {
            other: ()
        }
