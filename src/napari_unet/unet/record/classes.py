"""What the K output channels mean: names, label values, label mode, colours."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .fields import (
    LABEL_MODES,
    LABEL_VALUE_MAX,
    _choice,
    _fail,
    _is_int,
    _is_number,
    _keys,
    _list,
    _object,
)


# ---------------------------------------------------------------- classes
def _names(value: Any, k: int, name: str, where: str) -> list[str] | None:
    if value is None:
        return None
    expected = f"a list of {k} strings"
    items = _list(value, name, where, expected)
    if len(items) != k or not all(isinstance(v, str) for v in items):
        _fail(where, name, expected, value)
    if len(set(items)) != len(items):
        _fail(where, name, f"{k} different strings", value)
    return items


def _label_values(value: Any, k: int, name: str, where: str) -> list[int] | None:
    if value is None:
        return None
    expected = f"a list of {k} distinct whole numbers from 0 to {LABEL_VALUE_MAX}"
    items = _list(value, name, where, expected)
    if (
        len(items) != k
        or not all(_is_int(v) and 0 <= v <= LABEL_VALUE_MAX for v in items)
        or len(set(items)) != len(items)
    ):
        _fail(where, name, expected, value)
    return [int(v) for v in items]


def _colors(value: Any, k: int, name: str, where: str) -> list[list[float]] | None:
    if value is None:
        return None
    expected = f"a list of {k} colours, each 3 or 4 numbers from 0 to 1 (RGB[A])"
    items = _list(value, name, where, expected)
    ok = len(items) == k and all(
        isinstance(c, list | tuple)
        and len(c) in (3, 4)
        and all(_is_number(x) and 0 <= x <= 1 for x in c)
        for c in items
    )
    if not ok:
        _fail(where, name, expected, value)
    return [[float(x) for x in c] for c in items]


def _label_mode(value: Any, name: str, where: str) -> str | None:
    return None if value is None else _choice(value, name, where, LABEL_MODES)


@dataclass
class Classes:
    """What the K output channels mean.

    names: one name per class channel (None: not recorded). label_values: the annotation
    value written for each class channel (dense labels, e.g. [0, 255]); None: channel k is
    label value k + 1. label_mode: "scribbles", "instances" or "dense" as trained (files
    of format 1 record dense CLI training as "scribbles" with label_values). colors: one
    RGB(A) colour (0..1) per class, if recorded.
    """

    names: list[str] | None = None
    label_values: list[int] | None = None
    label_mode: str | None = None
    colors: list[list[float]] | None = None

    @property
    def mode(self) -> str | None:
        """The label mode as shown to people: "dense" where label values are recorded."""
        return "dense" if self.label_values is not None else self.label_mode

    def values(self, k: int) -> list[int]:
        """The label value of each of the ``k`` class channels."""
        if self.label_values is not None and len(self.label_values) == k:
            return list(self.label_values)
        return list(range(1, k + 1))

    def names_of(self, k: int) -> list[str]:
        """A name for each of the ``k`` class channels: the recorded names when there are
        ``k`` distinct ones, else "class 1" ... "class k"."""
        names = [str(n) for n in self.names or []]
        if len(names) != k or len(set(names)) != k:
            names = [f"class {i + 1}" for i in range(k)]
        return names

    def to_dict(self) -> dict[str, Any]:
        return {
            "names": None if self.names is None else list(self.names),
            "label_values": None if self.label_values is None else list(self.label_values),
            "label_mode": self.label_mode,
            "colors": None if self.colors is None else [list(c) for c in self.colors],
        }

    @classmethod
    def from_dict(cls, value: Any, k: int, *, where: str = "", name: str = "classes") -> Classes:
        d = _object(value, name, where)
        _keys(d, name, where, ["names", "label_values", "label_mode", "colors"])
        return cls(
            names=_names(d.get("names"), k, f"{name}.names", where),
            label_values=_label_values(d.get("label_values"), k, f"{name}.label_values", where),
            label_mode=_label_mode(d.get("label_mode"), f"{name}.label_mode", where),
            colors=_colors(d.get("colors"), k, f"{name}.colors", where),
        )
