"""Limits that a user can raise through the environment (``SEQATTN_MAX_*``), read one way everywhere."""

from __future__ import annotations

import os

from seqattn.errors import InputError


def env_positive_int(name: str, default: int | None) -> int | None:
    """``int(os.environ[name])`` if the variable is set, else ``default``.

    Raises:
        InputError: the variable is set but is not a positive integer of at most 18 digits.
    """
    text = os.environ.get(name)
    if text is None:
        return default
    if not text.strip().isdecimal() or len(text.strip()) > 18 or int(text) < 1:
        raise InputError(f"{name}={text!r} must be a positive integer")
    return int(text)
