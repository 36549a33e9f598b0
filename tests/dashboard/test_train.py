"""The Train page: queueing training and scoring with the exact params contract."""

from __future__ import annotations

import json

from db.repositories import get_model_version, list_model_versions, list_recent_jobs
from db.session import session_scope
from jobspec import ScoreSpec, TrainSpec
from tests.dashboard.conftest import BatchInfo, ModelInfo, OpenPage, ProjectInfo

PAGE = "dashboard/pages/train.py"


def _queue(app, variants: list[str], preset: str = "tiny", name: str = "caps") -> None:
    app.multiselect(key="adn_train_variants").set_value(variants)
    app.radio(key="adn_train_preset").set_value(preset)
    app.text_input(key="adn_train_name").set_value(name)
    app.button(key="adn_queue_training").click().run()


def test_queue_training_creates_one_model_and_job_per_variant(
    open_page: OpenPage,
    studio_factory,
    studio_project: ProjectInfo,
    train_batch: BatchInfo,
    inspect_batch: BatchInfo,
    dispatch_calls: list[tuple[int, str]],
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    assert not app.exception
    assert app.multiselect(key="adn_train_batches").value == [train_batch.id]
    app.selectbox(key="adn_train_category").set_value("widget")
    app.selectbox(key="adn_train_backbone").set_value("mobilenet_v2")
    app.toggle(key="adn_train_override").set_value(True).run()
    app.number_input(key="adn_epochs").set_value(3)
    app.number_input(key="adn_size").set_value(64)
    _queue(app, ["none", "se", "cbam"])
    assert not app.error, [e.value for e in app.error]
    assert "Queued 3 job(s)" in app.success[0].value
    with session_scope(studio_factory) as session:
        jobs = sorted(list_recent_jobs(session, project_id=studio_project.id), key=lambda j: j.id)
        assert [j.kind for j in jobs] == ["train"] * 3
        for job, variant, label in zip(
            jobs, ["none", "se", "cbam"], ["no attention", "SENet", "CBAM"], strict=True
        ):
            model = get_model_version(session, job.params_json["model_version_id"])
            assert job.params_json == {
                "model_version_id": model.id,
                "batch_ids": [train_batch.id],
                "image_ids": None,
                "category": "widget",
                "preset": "tiny",
                "overrides": {"epochs": 3, "image_size": 64},
            }
            # The worker's reader accepts it unchanged.
            assert TrainSpec.from_params(job.params_json).to_params() == job.params_json
            assert (model.status, model.variant, model.backbone) == (
                "pending",
                variant,
                "mobilenet_v2",
            )
            assert model.category == "widget" and model.job_id == job.id
            assert model.name == f"caps · {label}"
            assert model.training_image_count == len(train_batch.image_ids)
            assert job.status == "queued"
    assert dispatch_calls == [(j.id, "train") for j in jobs]
    table = app.dataframe[0].value
    assert list(table["job"]) == [j.id for j in jobs]
    assert all(table["sent to workers"])


def test_broker_down_keeps_the_job_queued_with_a_clear_message(
    open_page: OpenPage,
    studio_factory,
    studio_project: ProjectInfo,
    train_batch: BatchInfo,
    broker_down: list[tuple[int, str]],
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    _queue(app, ["cbam"])
    errors = [e.value for e in app.error]
    assert len(errors) == 1 and "cannot be reached" in errors[0]
    assert "Nothing is lost" in errors[0] and "stays queued" in errors[0]
    with session_scope(studio_factory) as session:
        (job,) = list_recent_jobs(session, project_id=studio_project.id)
        assert job.status == "queued"
        assert get_model_version(session, job.params_json["model_version_id"]).status == "pending"
    assert broker_down == [(job.id, "train")]
    assert app.dataframe[0].value.iloc[0]["sent to workers"] == False  # noqa: E712


def test_no_variant_is_refused_and_nothing_is_written(
    open_page: OpenPage, studio_factory, studio_project, train_batch, dispatch_calls
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    _queue(app, [])
    assert "no attention variant chosen" in app.error[0].value
    with session_scope(studio_factory) as session:
        assert list_recent_jobs(session, project_id=studio_project.id) == []
        assert list_model_versions(session, project_id=studio_project.id) == []
    assert dispatch_calls == []


def test_without_training_images_the_page_says_so(
    open_page: OpenPage, inspect_batch: BatchInfo
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    assert any("No training images yet" in i.value for i in app.info)
    assert not [b for b in app.button if b.label == "Queue training"]


def test_viewer_sees_no_train_or_score_buttons(open_page: OpenPage, ready_model: ModelInfo) -> None:
    app = open_page(PAGE, role="viewer").run()
    assert not app.exception
    labels = [b.label for b in app.button]
    assert "Queue training" not in labels and "Queue scoring" not in labels
    assert any("Viewers cannot start training" in i.value for i in app.info)


def test_queue_scoring_creates_one_score_job(
    open_page: OpenPage,
    studio_factory,
    studio_project: ProjectInfo,
    inspect_batch: BatchInfo,
    ready_model: ModelInfo,
    dispatch_calls: list[tuple[int, str]],
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    assert app.selectbox(key="adn_score_model").value == ready_model.id
    assert app.multiselect(key="adn_score_batches").value == []  # nothing chosen by default
    assert app.button(key="adn_queue_scoring").disabled
    app.multiselect(key="adn_score_batches").set_value([inspect_batch.id]).run()
    assert not app.button(key="adn_queue_scoring").disabled
    app.button(key="adn_queue_scoring").click().run()
    assert not app.error, [e.value for e in app.error]
    with session_scope(studio_factory) as session:
        (job,) = list_recent_jobs(session, project_id=studio_project.id, kind="score")
        assert job.params_json == {
            "model_version_id": ready_model.id,
            "batch_ids": [inspect_batch.id],
            "image_ids": None,
            "heatmaps": ["layercam_stages"],  # the default method, chosen for the user
        }
        assert ScoreSpec.from_params(job.params_json).to_params() == job.params_json
    assert dispatch_calls == [(job.id, "score")]


def test_scoring_stores_the_heatmap_methods_chosen(
    open_page: OpenPage,
    studio_factory,
    studio_project: ProjectInfo,
    inspect_batch: BatchInfo,
    ready_model: ModelInfo,
    dispatch_calls: list[tuple[int, str]],
) -> None:
    app = open_page(PAGE, role="reviewer").run()
    picker = app.multiselect(key="adn_score_heatmaps")
    assert picker.value == ["layercam_stages"]
    assert picker.options[0] == "LayerCAM, every stage (default)" and len(picker.options) == 4
    app.multiselect(key="adn_score_batches").set_value([inspect_batch.id])
    picker.set_value(["input_gradient", "gradcam"]).run()
    app.button(key="adn_queue_scoring").click().run()
    app.multiselect(key="adn_score_heatmaps").set_value([]).run()
    app.button(key="adn_queue_scoring").click().run()
    with session_scope(studio_factory) as session:
        jobs = list_recent_jobs(session, project_id=studio_project.id, kind="score")
        stored = sorted((j.id, j.params_json["heatmaps"]) for j in jobs)
    assert [methods for _, methods in stored] == [["input_gradient", "gradcam"], []]


def test_worker_reports_show_weights_availability(
    open_page: OpenPage, studio_store, train_batch: BatchInfo
) -> None:
    folder = studio_store.data_dir / "workers"
    folder.mkdir()
    (folder / "gpu-1.json").write_text(
        json.dumps(
            {
                "name": "gpu-1",
                "device": "cuda:0",
                "queues": ["gpu"],
                "weights": {
                    "mobilenet_v2": "available: bundled offline weights",
                    "alexnet": "missing: no internet to download them",
                },
                "updated_at": "2026-01-02T03:04:05Z",
            }
        )
    )
    app = open_page(PAGE, role="reviewer").run()
    box = app.selectbox(key="adn_train_backbone")
    assert "mobilenet_v2 (weights available)" in box.options
    assert "alexnet (weights missing)" in box.options
    assert "efficientnet_lite0 (weights: no worker has reported yet)" in box.options
    assert app.dataframe[0].value.iloc[0]["device"] == "cuda:0"
    # The report is months old: the worker stopped, and the page says so before queueing.
    assert app.dataframe[0].value.iloc[0]["health"].startswith("silent for")
    assert any(
        "No worker is listening on queue 'gpu': gpu-1 is silent" in w.value for w in app.warning
    )
    # Picking the backbone without weights says why, and the button cannot queue it.
    assert app.button(key="adn_queue_training").disabled is False
    app.selectbox(key="adn_train_backbone").set_value("alexnet").run()
    assert any("pretrained weights of alexnet" in w.value for w in app.warning)
    assert app.button(key="adn_queue_training").disabled is True


def test_page_without_worker_reports_warns(open_page: OpenPage, train_batch: BatchInfo) -> None:
    app = open_page(PAGE, role="reviewer").run()
    # One warning says it, not two.
    assert [w.value for w in app.warning if "worker" in w.value.lower()] == [
        "No worker is listening on queue 'gpu'. Train jobs stay queued until one starts "
        "(`adn-studio` starts one in embedded mode; in team mode start the worker service)."
    ]
