"""The one error of the job contract."""

from __future__ import annotations


class JobSpecError(ValueError):
    """A job's parameters are not valid; the message names the field and what is allowed."""
