"""The drift-feedback benchmark keeps only runs of today's default detector."""

from __future__ import annotations

import dataclasses

from bench.common import config_digest
from bench.drift_feedback import of_today
from bench.heatmaps import job_config


def test_runs_of_an_earlier_default_are_left_out() -> None:
    today = {"seed": 1, "config": config_digest(job_config("none", 1)), "k": 25}
    earlier = job_config("none", 1)
    earlier = earlier.replace(model=dataclasses.replace(earlier.model, feature_pool="mean"))
    records = [
        today,
        {"seed": 1, "config": config_digest(earlier), "k": 25},
        {"seed": 1, "k": 25},  # stored before runs named their config
        {"seed": 2, "config": config_digest(job_config("none", 1)), "k": 25},  # another seed's
    ]
    assert of_today(records) == [today]


def test_the_digest_names_the_seed_and_every_setting() -> None:
    base = job_config("none", 0)
    assert config_digest(base) == config_digest(job_config("none", 0))
    assert config_digest(base) != config_digest(job_config("none", 1))
    assert config_digest(base) != config_digest(job_config("cbam", 0))
