"""The ``ADN_*`` environment variables, read one way by every process (store, worker, studio)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

ENV_PREFIX = "ADN_"


def env_text(env: Mapping[str, str], name: str) -> str:
    """``ADN_<name>`` without surrounding blanks; ``""`` when unset."""
    return env.get(ENV_PREFIX + name, "").strip()


def env_int(env: Mapping[str, str], name: str, default: int, error: type[Exception]) -> int:
    """``ADN_<name>`` as a whole number (``1_000`` is allowed); ``default`` when unset or blank."""
    return _env_number(env, name, default, error, int, "a whole number")


def env_float(env: Mapping[str, str], name: str, default: float, error: type[Exception]) -> float:
    """``ADN_<name>`` as a number; ``default`` when unset or blank."""
    return _env_number(env, name, default, error, float, "a number")


Number = TypeVar("Number", int, float)


def _env_number(
    env: Mapping[str, str],
    name: str,
    default: Number,
    error: type[Exception],
    parse: Callable[[str], Number],
    what: str,
) -> Number:
    raw = env_text(env, name)
    if not raw:
        return default
    try:
        return parse(raw.replace("_", ""))
    except ValueError:
        raise error(
            f"{ENV_PREFIX}{name}={raw!r} is not {what}; set it to e.g. {default} or unset it"
        ) from None
