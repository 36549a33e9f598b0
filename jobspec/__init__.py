"""The job contract shared by the dashboard, the worker, the command line and the benchmarks.

One place names every preset, backbone, attention variant, schedule override and job kind, and
defines the parameters of train and score jobs as typed, validated values that round-trip to the
JSON stored in ``jobs.params_json``. It imports nothing but the standard library, so the light
dashboard process and the engine can both use it; the engine maps a preset and its overrides to
a model config (``engine.presets.detector_config``). ``jobspec.env`` reads the ``ADN_*``
settings the same way for every process.
"""

from jobspec.errors import JobSpecError
from jobspec.jobs import JOB_KINDS, ScoreSpec, TrainSpec, model_version_of, parse_params
from jobspec.overrides import OVERRIDE_LIMITS, Overrides
from jobspec.vocabulary import (
    DEFAULT_HEATMAP_METHOD,
    GPU_QUEUE,
    HEATMAP_METHOD_NAMES,
    LIGHT_QUEUE,
    MAX_TEST_VIEWS,
    PRESET_HELP,
    QUEUE_OF_KIND,
    VARIANT_NAMES,
    Backbone,
    HeatmapMethod,
    JobKind,
    Preset,
    Variant,
    values_of,
)

__all__ = [
    "DEFAULT_HEATMAP_METHOD",
    "GPU_QUEUE",
    "HEATMAP_METHOD_NAMES",
    "JOB_KINDS",
    "LIGHT_QUEUE",
    "MAX_TEST_VIEWS",
    "OVERRIDE_LIMITS",
    "PRESET_HELP",
    "QUEUE_OF_KIND",
    "VARIANT_NAMES",
    "Backbone",
    "HeatmapMethod",
    "JobKind",
    "JobSpecError",
    "Overrides",
    "Preset",
    "ScoreSpec",
    "TrainSpec",
    "Variant",
    "model_version_of",
    "parse_params",
    "values_of",
]
