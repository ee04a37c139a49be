"""Validation of what a record reads: bounds, field checkers, plain JSON values."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, MutableSequence, Sequence
from typing import Any, NoReturn

RECORD_VERSION = 2

PADDINGS = ("valid", "same")
LABEL_MODES = ("scribbles", "instances", "dense")
NORMALIZATION_METHODS = ("percentile", "none")
BIOIMAGEIO_OUTPUTS = ("logits", "probabilities")

# ---------------------------------------------------------------- bounds of what is read
#: Architecture sizes a model file may declare. Checked before anything is allocated: the
#: bundled model (depth 3, base 16) and the presets (tiny, small, paper: depth <= 4, base
#: <= 64) fit with a wide margin.
MAX_DEPTH = 8
MAX_BASE_CHANNELS = 1024
MAX_IN_CHANNELS = 64
MAX_CLASSES = 256
#: 2**28 parameters (1 GiB of float32); the paper's network has 31 M.
MAX_PARAMETERS = 2**28
#: label values are written as integers up to int64 (``label_lut`` of the CLI)
LABEL_VALUE_MAX = 2**63 - 1
MAX_STEPS = 10**12
MAX_PIXELS = 2**63 - 1


class RecordError(ValueError):
    """A field of a model's record is missing, of the wrong type or out of range."""

    def __init__(self, where: str, text: str) -> None:
        self.where, self.text = where, text
        super().__init__(f"{where}: {text}" if where else text)


# ---------------------------------------------------------------- validation helpers
def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {value}"
    if isinstance(value, str):
        return f"the string {_short(repr(value))}"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return _short(json.dumps(value, default=repr))
    if isinstance(value, Mapping):
        return "an object " + _short(json.dumps(value, default=repr))
    return f"a {type(value).__name__}"


def _fail(where: str, name: str, expected: str, value: Any) -> NoReturn:
    raise RecordError(where, f"{name} must be {expected}, got {_describe(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def _int(value: Any, name: str, where: str, lo: int, hi: int) -> int:
    if not _is_int(value) or not lo <= value <= hi:
        _fail(where, name, f"a whole number from {lo} to {hi}", value)
    return int(value)


def _number(value: Any, name: str, where: str, lo: float | None = None, hi: float | None = None,
            expected: str = "a finite number") -> float:  # fmt: skip
    if not _is_number(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        _fail(where, name, expected, value)
    return float(value)


def _bool(value: Any, name: str, where: str) -> bool:
    if not isinstance(value, bool):
        _fail(where, name, "true or false", value)
    return value


def _str(value: Any, name: str, where: str) -> str:
    if not isinstance(value, str):
        _fail(where, name, "a string", value)
    return value


def _opt_str(value: Any, name: str, where: str) -> str | None:
    return None if value is None else _str(value, name, where)


def _choice(value: Any, name: str, where: str, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        _fail(where, name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def _list(value: Any, name: str, where: str, expected: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        _fail(where, name, expected, value)
    return list(value)


def _object(value: Any, name: str, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        _fail(where, name, "an object (a dict with string keys)", value)
    return dict(value)


def _keys(d: Mapping[str, Any], name: str, where: str, allowed: Sequence[str]) -> None:
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise RecordError(
            where, f"{name} has unknown field(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(allowed)})"
        )  # fmt: skip


def _json_numbers_finite(value: Any, name: str, where: str) -> Any:
    """A JSON value whose numbers are all finite (settings dicts of training runs)."""
    if isinstance(value, float) and not math.isfinite(value):
        _fail(where, name, "a finite number", value)
    if isinstance(value, Mapping):
        return {k: _json_numbers_finite(v, f"{name}.{k}", where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_numbers_finite(v, f"{name}[{i}]", where) for i, v in enumerate(value)]
    return value


def _pair(value: Any, name: str, where: str) -> tuple[float, float] | None:
    """An offset (dy, dx) in pixels, or None."""
    if value is None:
        return None
    items = _list(value, name, where, "a list of two numbers (dy, dx)")
    if len(items) != 2 or not all(_is_number(v) for v in items):
        _fail(where, name, "a list of two finite numbers (dy, dx)", value)
    return float(items[0]), float(items[1])


def to_plain(value: Any) -> Any:
    """Mappings -> dicts and sequences -> lists, recursively (views and YAML containers
    become plain JSON values)."""
    if isinstance(value, Mapping):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | MutableSequence):
        return [to_plain(v) for v in value]
    return value
