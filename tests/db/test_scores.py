from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.errors import InvalidValueError
from db.models import Heatmap, Score
from db.repositories import (
    find_score,
    get_heatmap,
    get_heatmap_png,
    get_heatmap_pngs,
    heatmap_methods_of,
    upsert_score,
)
from jobspec import DEFAULT_HEATMAP_METHOD, HeatmapMethod
from tests.db.factories import make_batch, make_image, make_model, make_project, png_bytes

DEFAULT = DEFAULT_HEATMAP_METHOD.value


def test_upsert_is_idempotent_and_replaces(session: Session) -> None:
    project = make_project(session)
    image = make_image(session, make_batch(session, project))
    model = make_model(session, project)
    first, again = (
        upsert_score(
            session,
            image_id=image.id,
            model_version_id=model.id,
            score=1.5,
            percentile=97.0,
            heatmap_pngs={DEFAULT: png_bytes(4, 3)},
        )
        for _ in range(2)
    )
    assert again.id == first.id
    assert session.scalar(select(func.count(Score.id))) == 1
    assert session.scalar(select(func.count(Heatmap.id))) == 1

    replaced = upsert_score(
        session,
        image_id=image.id,
        model_version_id=model.id,
        score=2.25,
        heatmap_pngs={DEFAULT: png_bytes(6, 5, (0, 0, 255))},
    )
    assert replaced.id == first.id
    assert (replaced.score, replaced.percentile) == (2.25, None)
    heatmap = get_heatmap(session, first.id)
    assert heatmap is not None
    assert (heatmap.width, heatmap.height) == (6, 5)
    assert heatmap.png == png_bytes(6, 5, (0, 0, 255))
    assert get_heatmap_png(session, image_id=image.id, model_version_id=model.id) == heatmap.png

    kept = upsert_score(session, image_id=image.id, model_version_id=model.id, score=3.0)
    assert kept.score == 3.0
    assert get_heatmap(session, first.id) is not None
    assert find_score(session, image_id=image.id, model_version_id=model.id) is kept


def test_same_image_under_two_models(session: Session) -> None:
    project = make_project(session)
    image = make_image(session, make_batch(session, project))
    se, cbam = make_model(session, project, "se"), make_model(session, project, "cbam")
    upsert_score(session, image_id=image.id, model_version_id=se.id, score=0.1)
    upsert_score(session, image_id=image.id, model_version_id=cbam.id, score=0.9)
    assert session.scalar(select(func.count(Score.id))) == 2
    assert get_heatmap_png(session, image_id=image.id, model_version_id=se.id) is None


def test_bad_scores_and_heatmaps_are_refused(session: Session) -> None:
    project = make_project(session)
    image = make_image(session, make_batch(session, project))
    model = make_model(session, project)
    with pytest.raises(InvalidValueError, match="finite"):
        upsert_score(session, image_id=image.id, model_version_id=model.id, score=float("inf"))
    with pytest.raises(InvalidValueError, match="percentile"):
        upsert_score(session, image_id=image.id, model_version_id=model.id, score=1, percentile=101)
    with pytest.raises(InvalidValueError, match="PNG"):
        upsert_score(
            session,
            image_id=image.id,
            model_version_id=model.id,
            score=1,
            heatmap_pngs={DEFAULT: b"nope"},
        )
    with pytest.raises(InvalidValueError, match="unknown heatmap method 'sharpie'"):
        upsert_score(
            session,
            image_id=image.id,
            model_version_id=model.id,
            score=1,
            heatmap_pngs={"sharpie": png_bytes()},
        )
    assert find_score(session, image_id=image.id, model_version_id=model.id) is None


def test_heatmaps_of_several_methods_are_kept_apart(session: Session) -> None:
    project = make_project(session)
    image = make_image(session, make_batch(session, project))
    model, other = make_model(session, project), make_model(session, project, "se")
    gradient = HeatmapMethod.INPUT_GRADIENT.value
    upsert_score(
        session,
        image_id=image.id,
        model_version_id=model.id,
        score=1.0,
        heatmap_pngs={gradient: png_bytes(3, 3, (9, 9, 9)), DEFAULT: png_bytes(4, 4)},
    )
    # A later job with one method replaces that method's map and keeps the other.
    upsert_score(
        session,
        image_id=image.id,
        model_version_id=model.id,
        score=1.0,
        heatmap_pngs={gradient: png_bytes(5, 5, (1, 2, 3))},
    )
    pngs = get_heatmap_pngs(session, image_id=image.id, model_version_id=model.id)
    assert list(pngs) == [DEFAULT, gradient]
    assert pngs[gradient] == png_bytes(5, 5, (1, 2, 3)) and pngs[DEFAULT] == png_bytes(4, 4)
    assert session.scalar(select(func.count(Heatmap.id))) == 2
    assert (
        get_heatmap_png(
            session, image_id=image.id, model_version_id=model.id, method=HeatmapMethod.GRADCAM
        )
        is None
    )
    assert heatmap_methods_of(
        session, image_id=image.id, model_version_ids=[model.id, other.id]
    ) == {model.id: (DEFAULT, gradient), other.id: ()}
