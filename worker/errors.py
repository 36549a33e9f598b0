"""The worker package's exception hierarchy: every message says what was wrong and how to fix it."""

from __future__ import annotations


class WorkerError(Exception):
    """Base class of every error the worker package raises on purpose."""


class SettingsError(WorkerError, ValueError):
    """A worker setting is missing, malformed or inconsistent with another one."""


class BrokerUnavailableError(WorkerError):
    """A job could not be handed to the broker (Redis down, broker file not writable).

    The job row stays ``queued``; the sweep sends it again once the broker is back.
    """


class JobParamsError(WorkerError, ValueError):
    """A job's ``params_json`` does not follow the contract in :mod:`jobspec`."""


class JobInputError(WorkerError):
    """A job refers to rows or files that are missing or unusable (no images, model not ready)."""


class JobCancelled(WorkerError):
    """The job stopped because someone asked it to (cooperative cancel)."""


class JobLostError(WorkerError):
    """The job's row was taken away from this worker (re-queued or failed by the sweep)."""
