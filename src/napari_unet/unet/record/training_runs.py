"""One entry per training run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .fields import (
    MAX_PIXELS,
    MAX_STEPS,
    _fail,
    _int,
    _json_numbers_finite,
    _keys,
    _list,
    _number,
    _object,
    _str,
    to_plain,
)

# ---------------------------------------------------------------- training runs
#: TrainingRun fields in their v1 order (the keys of a run in format version 1 files)
_RUN_FIELDS = (
    "config",
    "steps_done",
    "precision_used",
    "batch_norm_recomputed",
    "final_loss",
    "images",
    "annotated_pixels",
    "date",
    "description",
)


def _run_field(key: str, value: Any, name: str, where: str) -> Any:
    """One known field of a training run, validated (None: not recorded)."""
    if value is None:
        return None
    if key == "config":
        return _json_numbers_finite(_object(value, name, where), name, where)
    if key in ("steps_done", "batch_norm_recomputed"):
        return _int(value, name, where, 0, MAX_STEPS)
    if key == "annotated_pixels":
        return _int(value, name, where, 0, MAX_PIXELS)
    if key == "final_loss":
        return _number(value, name, where)
    if key == "images":
        items = _list(value, name, where, "a list of strings (image names)")
        if not all(isinstance(v, str) for v in items):
            _fail(where, name, "a list of strings (image names)", value)
        return items
    return _str(value, name, where)  # precision_used, date, description


@dataclass
class TrainingRun:
    """One training run (napari_unet.unet.training records one per run).

    config: the TrainConfig settings (a dict); steps_done: optimiser steps made;
    precision_used: the arithmetic "auto" resolved to; batch_norm_recomputed: batches of
    the precise-BN pass (0: not done); final_loss: mean loss of the last 10 steps; images:
    their names; annotated_pixels; date ("YYYY-MM-DD HH:MM:SS"); description. None: not
    recorded (older runs). extra: anything else the run recorded (e.g. training_seconds).
    """

    config: dict[str, Any] | None = None
    steps_done: int | None = None
    precision_used: str | None = None
    batch_norm_recomputed: int | None = None
    final_loss: float | None = None
    images: list[str] | None = None
    annotated_pixels: int | None = None
    date: str | None = None
    description: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return self.steps_done or 0

    def to_v1(self) -> dict[str, Any]:
        """The run as format version 1 files hold it (fields not recorded are left out)."""
        out = {k: getattr(self, k) for k in _RUN_FIELDS if getattr(self, k) is not None}
        return {**{k: to_plain(v) for k, v in out.items()}, **self.extra}

    def to_dict(self) -> dict[str, Any]:
        return {**{k: to_plain(getattr(self, k)) for k in _RUN_FIELDS}, "extra": dict(self.extra)}

    def set_v1(self, key: str, value: Any, name: str = "", where: str = "") -> None:
        """Set one key of the run's v1 dict (a known field, validated, or an extra)."""
        name = name or key
        if key in _RUN_FIELDS:
            setattr(self, key, _run_field(key, to_plain(value), name, where))
        else:
            self.extra[key] = value

    @classmethod
    def from_v1(cls, value: Any, *, where: str = "", name: str = "training[0]") -> TrainingRun:
        run = cls()
        for key, v in _object(value, name, where).items():
            run.set_v1(key, v, f"{name}.{key}", where)
        return run

    @classmethod
    def from_dict(cls, value: Any, *, where: str = "", name: str = "training[0]") -> TrainingRun:
        d = _object(value, name, where)
        _keys(d, name, where, [*_RUN_FIELDS, "extra"])
        run = cls(extra=_object(d.get("extra") or {}, f"{name}.extra", where))
        for key in _RUN_FIELDS:
            setattr(run, key, _run_field(key, d.get(key), f"{name}.{key}", where))
        return run


def _runs(value: Any, name: str, where: str, v1: bool) -> list[TrainingRun]:
    if value is None:
        return []
    items = _list(value, name, where, "a list of training runs")
    parse = TrainingRun.from_v1 if v1 else TrainingRun.from_dict
    return [parse(r, where=where, name=f"{name}[{i}]") for i, r in enumerate(items)]
