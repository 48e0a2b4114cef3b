"""Validators shared by every settings object: each raises ConfigError naming the field, the value and
what is allowed, so a bad value stops a run before any work.

Example::

    check_integer("epochs", 0, minimum=1)   # ConfigError: epochs=0 (int) is invalid: it must be an integer >= 1
"""

from __future__ import annotations

import math
import os
from typing import Any

from cifarhelpers.errors import ConfigError


def describe_value(value: Any) -> str:
    """A value as error messages show it: its repr and its type, e.g. ``"0.5 (float)"``."""
    return f"{value!r} ({type(value).__name__})"


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices`` (the message lists them)."""
    if value not in choices:
        raise ConfigError(f"{name}={describe_value(value)} is invalid: choose one of {list(choices)}")


def check_integer(name: str, value: Any, *, minimum: int, optional: bool = False) -> None:
    """Raise ConfigError unless ``value`` is an int (not a bool) >= ``minimum``, or None when ``optional``."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = " or None" if optional else ""
        raise ConfigError(f"{name}={describe_value(value)} is invalid: it must be an integer >= {minimum}{extra}")


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False, optional: bool = False) -> None:
    """Raise ConfigError unless ``value`` is a finite int or float (not a bool) within
    ``[low, high]`` (ends excluded where ``low_open`` / ``high_open``), or None when ``optional``."""
    if value is None and optional:
        return
    lo = "" if low is None else (f"> {low}" if low_open else f">= {low}")
    hi = "" if high is None else (f"< {high}" if high_open else f"<= {high}")
    rule = " and ".join(r for r in (lo, hi) if r)
    extra = " or None" if optional else ""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (low is None or (value > low if low_open else value >= low)) and (
            high is None or (value < high if high_open else value <= high))
    if not ok:
        raise ConfigError(f"{name}={describe_value(value)} is invalid: it must be a finite number {rule}{extra}")


def check_boolean(name: str, value: Any) -> None:
    """Raise ConfigError unless ``value`` is True or False."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={describe_value(value)} is invalid: it must be True or False")


def check_text(name: str, value: Any, *, optional: bool = False) -> None:
    """Raise ConfigError unless ``value`` is a non-empty str (an ``os.PathLike`` counts as its
    path), or None when ``optional``."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if value is None and optional:
        return
    if not isinstance(value, str) or value == "":
        extra = " or None" if optional else ""
        raise ConfigError(f"{name}={describe_value(value)} is invalid: it must be a non-empty string{extra}")



__all__ = ["check_boolean", "check_choice", "check_integer", "check_real", "check_text"]
