"""Deprecated: ``UNet.metadata``, the format 1 dict as a view of the record."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, MutableMapping, MutableSequence, Sequence
from typing import Any

from .fields import to_plain
from .model_record import ModelRecord
from .summary import _as_record
from .training_runs import _RUN_FIELDS, TrainingRun


class MetadataView(MutableMapping):
    """Deprecated ``model.metadata``: the format 1 metadata dict as a view of the record.

    Kept for scripts written for 0.1; napari-unet itself uses the typed record. Reads
    give format 1 values (``metadata.get("normalization")``
    -> a dict, ``metadata["class_names"]`` -> a list); they are copies, except
    ``metadata["training"]``, a live list of live runs (``run["images"] = ...`` writes
    through). Writes (``metadata["label_values"] = [...]``, ``pop``, ``setdefault``,
    ``update``) are validated and go to the record; keys the record does not know go to
    ``record.extra``.
    """

    def __init__(self, owner: Any) -> None:
        self._owner = owner  # a UNet (its .record) or a ModelRecord

    @property
    def _record(self) -> ModelRecord:
        return _as_record(self._owner)

    def __getitem__(self, key: str) -> Any:
        rec = self._record
        if key == "training":
            if not rec.training:
                raise KeyError(key)
            return _RunsView(self._owner)
        return rec.to_v1()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"metadata keys are strings, got {key!r}")
        self._record.set_v1(key, value)

    def __delitem__(self, key: str) -> None:
        self._record._unset_v1(key)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._record.to_v1()))

    def __len__(self) -> int:
        return len(self._record.to_v1())

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        if key == "training":  # the live runs, even while there are none
            return _RunsView(self._owner)
        return self.get(key, default)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._record.to_v1() == to_plain(other)

    def __repr__(self) -> str:
        return f"MetadataView({self._record.to_v1()!r})"


class _RunsView(MutableSequence):
    """Deprecated ``metadata["training"]``: the record's runs as format 1 dicts."""

    def __init__(self, owner: Any) -> None:
        self._owner = owner

    @property
    def _runs(self) -> list[TrainingRun]:
        return _as_record(self._owner).training

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [_RunView(run) for run in self._runs[i]]
        return _RunView(self._runs[i])

    def __setitem__(self, i: Any, value: Any) -> None:
        if isinstance(i, slice):
            self._runs[i] = [TrainingRun.from_v1(to_plain(v)) for v in value]
        else:
            self._runs[i] = TrainingRun.from_v1(to_plain(value))

    def __delitem__(self, i: Any) -> None:
        del self._runs[i]

    def __len__(self) -> int:
        return len(self._runs)

    def insert(self, index: int, value: Any) -> None:
        self._runs.insert(index, TrainingRun.from_v1(to_plain(value)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return [run.to_v1() for run in self._runs] == to_plain(other)

    def __repr__(self) -> str:
        return repr([run.to_v1() for run in self._runs])


class _RunView(MutableMapping):
    """Deprecated: one training run as its format 1 dict, writing through to the run."""

    def __init__(self, run: TrainingRun) -> None:
        self._run = run

    def __getitem__(self, key: str) -> Any:
        return self._run.to_v1()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._run.set_v1(key, value)

    def __delitem__(self, key: str) -> None:
        if key in self._run.extra:
            del self._run.extra[key]
        elif key in _RUN_FIELDS and getattr(self._run, key) is not None:
            setattr(self._run, key, None)
        else:
            raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._run.to_v1()))

    def __len__(self) -> int:
        return len(self._run.to_v1())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._run.to_v1() == to_plain(other)

    def __repr__(self) -> str:
        return repr(self._run.to_v1())
