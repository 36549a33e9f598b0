"""A job's stored params read as its typed spec (the contract lives in :mod:`jobspec`)."""

from __future__ import annotations

from typing import Any, TypeVar

from jobspec import JobSpecError, ScoreSpec, TrainSpec
from worker.errors import JobParamsError

Spec = TypeVar("Spec", TrainSpec, ScoreSpec)


def read_spec(spec_type: type[Spec], params: Any) -> Spec:
    """``params`` as a ``spec_type``, or :class:`JobParamsError` naming what is wrong."""
    try:
        return spec_type.from_params(params)
    except JobSpecError as exc:
        raise JobParamsError(str(exc)) from exc
