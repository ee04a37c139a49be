"""The checks of user-given settings, one set for the Python API, the CLI and the widget.

Each check raises :class:`~napari_unet.unet.errors.InputError` with the setting's name and
the value given, before any work: a wrong type or range never reaches numpy or torch.
The CLI's argparse types (``cli/options.py``) call the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np

from .errors import InputError


def whole_number(
    value: Any, name: str, *, minimum: int | None = 1, maximum: int | None = None
) -> int:
    """``value`` as an int, refusing bools, floats, text and values out of range."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InputError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise InputError(f"{name} must be <= {maximum}, got {value}")
    return value


def optional_whole_number(value: Any, name: str, *, minimum: int = 1) -> int | None:
    """None, or a whole number >= ``minimum``."""
    return None if value is None else whole_number(value, name, minimum=minimum)


def real_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """A finite real number in [low, high] (or open at either end), refusing bools/text."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    below = low is not None and (value <= low if open_low else value < low)
    above = high is not None and (value >= high if open_high else value > high)
    if below or above:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        bounds = f"{'(' if open_low else '['}{lo}, {hi}{')' if open_high else ']'}"
        raise InputError(f"{name} must lie in {bounds}, got {value:g}")
    return value


def choice(value: Any, name: str, options: Sequence[str]) -> str:
    """One of ``options`` (strings)."""
    if not isinstance(value, str) or value not in options:
        raise InputError(f"{name} must be one of {', '.join(options)}, got {value!r}")
    return value


def flag(value: Any, name: str) -> bool:
    """A bool (numpy bools included), not 0/1 or text."""
    if not isinstance(value, bool | np.bool_):
        raise InputError(f"{name} must be True or False, got {value!r}")
    return bool(value)
