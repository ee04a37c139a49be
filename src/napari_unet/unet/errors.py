"""The error every part raises for input a user can fix."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input that the user can fix (wrong shape, no annotations, NaNs, ...)."""
