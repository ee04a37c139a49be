"""The whole record, versioned JSON (format 2) and the format 1 metadata dict."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .architecture import Architecture
from .classes import Classes, _colors, _label_mode, _label_values, _names
from .fields import (
    BIOIMAGEIO_OUTPUTS,
    RECORD_VERSION,
    RecordError,
    _choice,
    _keys,
    _object,
    _opt_str,
    _pair,
    _str,
    to_plain,
)
from .recipes import Normalization, WeightMapRecipe
from .training_runs import TrainingRun, _runs


# ---------------------------------------------------------------- bioimage.io
@dataclass(frozen=True)
class BioimageioInfo:
    """Where an imported bioimage.io package came from: its name, licence, and whether its
    output was logits a_k(x) or probabilities p_k(x)."""

    name: str
    license: str | None = None
    output: str = "logits"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "license": self.license, "output": self.output}

    @classmethod
    def from_dict(cls, value: Any, *, where: str = "", name: str = "bioimageio") -> BioimageioInfo:
        d = _object(value, name, where)
        _keys(d, name, where, ["name", "license", "output"])
        return cls(
            name=_str(d.get("name"), f"{name}.name", where),
            license=_opt_str(d.get("license"), f"{name}.license", where),
            output=_choice(
                d.get("output", "logits"), f"{name}.output", where, BIOIMAGEIO_OUTPUTS
            ),  # fmt: skip
        )


# ---------------------------------------------------------------- the record
#: top-level string fields (the same key in format 1 metadata and in the v2 record)
_TEXT_FIELDS = ("source", "name", "description", "preset", "trained_on")
_OFFSET_FIELDS = ("label_offset", "prediction_shift")
#: v1 metadata key -> Classes attribute
_V1_CLASS_KEYS = {
    "class_names": "names",
    "label_values": "label_values",
    "label_mode": "label_mode",
    "class_colors": "colors",
}
_V2_KEYS = (
    "record_version",
    "architecture",
    "classes",
    "normalization",
    "weight_map",
    "training",
    *_TEXT_FIELDS,
    *_OFFSET_FIELDS,
    "bioimageio",
    "extra",
)


@dataclass
class ModelRecord:
    """Everything a model file says about its network besides the weights.

    source: where the model came from ("new tiny U-Net", "bundled:nuclei", "file x.pt",
    "fine-tuned from x.pt", "bioimageio:pkg.zip"); name / description: of a published
    model; preset: the preset it was built from; trained_on: the data of a bundled model;
    label_offset / prediction_shift: (dy, dx) px of label-aligned training (benchmarks);
    extra: keys of a format 1 metadata dict this version does not know (kept as they were).
    """

    architecture: Architecture = field(default_factory=Architecture)
    classes: Classes = field(default_factory=Classes)
    normalization: Normalization | None = None
    weight_map: WeightMapRecipe | None = None
    training: list[TrainingRun] = field(default_factory=list)
    source: str | None = None
    name: str | None = None
    description: str | None = None
    preset: str | None = None
    trained_on: str | None = None
    label_offset: tuple[float, float] | None = None
    prediction_shift: tuple[float, float] | None = None
    bioimageio: BioimageioInfo | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------ reading
    def normalization_dict(self) -> dict[str, Any] | None:
        """The recorded normalisation as :func:`~napari_unet.unet.data.normalize` takes
        it, or None (not recorded: the default applies)."""
        return None if self.normalization is None else self.normalization.to_dict()

    def steps_trained(self) -> int:
        """Optimiser steps over all recorded training runs."""
        return sum(run.steps for run in self.training)

    @property
    def last_run(self) -> TrainingRun | None:
        return self.training[-1] if self.training else None

    # ------------------------------------------------------------ version 2
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "record_version": RECORD_VERSION,
            "architecture": self.architecture.to_dict(),
            "classes": self.classes.to_dict(),
            "normalization": None if self.normalization is None else self.normalization.to_dict(),
            "weight_map": None if self.weight_map is None else self.weight_map.to_dict(),
            "training": [run.to_dict() for run in self.training],
        }
        out.update({k: getattr(self, k) for k in _TEXT_FIELDS})
        out.update({k: to_plain(getattr(self, k)) for k in _OFFSET_FIELDS})
        out["bioimageio"] = None if self.bioimageio is None else self.bioimageio.to_dict()
        out["extra"] = dict(self.extra)
        return out

    def to_json(self) -> str:
        """The record as JSON text (``"record_version": 2``); TypeError if ``extra`` holds
        a value JSON cannot represent."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, value: Any, *, where: str = "") -> ModelRecord:
        """Validate a version 2 record (a dict as :meth:`to_dict` gives)."""
        d = _object(value, "record", where)
        if d.get("record_version") != RECORD_VERSION:
            raise RecordError(
                where, f"record version {d.get('record_version')!r} is not supported "
                f"(this version reads {RECORD_VERSION})"
            )  # fmt: skip
        _keys(d, "record", where, _V2_KEYS)
        arch = Architecture.from_dict(d.get("architecture"), where=where)
        rec = cls(architecture=arch)
        rec.classes = Classes.from_dict(d.get("classes") or {}, arch.n_classes, where=where)
        if d.get("normalization") is not None:
            rec.normalization = Normalization.from_dict(d["normalization"], where=where)
        if d.get("weight_map") is not None:
            rec.weight_map = WeightMapRecipe.from_dict(d["weight_map"], where=where)
        rec.training = _runs(d.get("training"), "training", where, v1=False)
        for key in _TEXT_FIELDS:
            setattr(rec, key, _opt_str(d.get(key), key, where))
        for key in _OFFSET_FIELDS:
            setattr(rec, key, _pair(d.get(key), key, where))
        if d.get("bioimageio") is not None:
            rec.bioimageio = BioimageioInfo.from_dict(d["bioimageio"], where=where)
        rec.extra = _object(d.get("extra") or {}, "extra", where)
        return rec

    @classmethod
    def from_json(cls, text: str | bytes, *, where: str = "") -> ModelRecord:
        try:
            value = json.loads(text)
        except (TypeError, ValueError) as err:
            raise RecordError(where, f"the record is not valid JSON: {err}") from None
        return cls.from_dict(value, where=where)

    def validate(self, where: str = "") -> ModelRecord:
        """The record as it would be read back from a file (a validated copy); raises
        :class:`RecordError` for any bad field."""
        return type(self).from_dict(to_plain(self.to_dict()), where=where)

    # ------------------------------------------------------------ version 1
    @classmethod
    def from_v1(
        cls,
        metadata: Mapping[str, Any],
        architecture: Architecture | Mapping[str, Any] | None = None,
        *,
        where: str = "",
    ) -> ModelRecord:
        """Convert the ``metadata`` dict of a format version 1 model file (validated).

        architecture: the file's ``architecture`` (``UNet.config()``), validated against
        the bounds; default: UNet's defaults. Keys this version does not know go to
        ``extra``.
        """
        if isinstance(architecture, Architecture):
            arch = architecture
        else:
            arch = Architecture.from_dict(architecture or {}, where=where)
        rec = cls(architecture=arch)
        for key, value in _object(metadata, "metadata", where).items():
            rec.set_v1(key, value, where=where)
        return rec

    def set_v1(self, key: str, value: Any, *, where: str = "") -> None:
        """Set one key as format 1 metadata holds it (validated); None unsets a field."""
        value = to_plain(value)
        k = self.architecture.n_classes
        if key in _V1_CLASS_KEYS:
            parse = {
                "class_names": lambda v: _names(v, k, key, where),
                "label_values": lambda v: _label_values(v, k, key, where),
                "label_mode": lambda v: _label_mode(v, key, where),
                "class_colors": lambda v: _colors(v, k, key, where),
            }[key]
            self.classes = replace(self.classes, **{_V1_CLASS_KEYS[key]: parse(value)})
        elif key == "normalization":
            self.normalization = (
                None if value is None else Normalization.from_dict(value, where=where)
            )
        elif key == "weight_map":
            self.weight_map = (
                None if value is None else WeightMapRecipe.from_dict(value, where=where)
            )
        elif key == "training":
            self.training = _runs(value, "training", where, v1=True)
        elif key in _TEXT_FIELDS:
            setattr(self, key, _opt_str(value, key, where))
        elif key in _OFFSET_FIELDS:
            setattr(self, key, _pair(value, key, where))
        elif key == "bioimageio":
            self.bioimageio = (
                None if value is None else BioimageioInfo.from_dict(value, where=where)
            )
        else:
            self.extra[key] = value

    def to_v1(self) -> dict[str, Any]:
        """The record as the ``metadata`` dict of format 1 (fields not recorded left out)."""
        out: dict[str, Any] = {}
        for key, attr in _V1_CLASS_KEYS.items():
            value = getattr(self.classes, attr)
            if value is not None:
                out[key] = to_plain(value)
        if self.normalization is not None:
            out["normalization"] = self.normalization.to_dict()
        if self.weight_map is not None:
            out["weight_map"] = self.weight_map.to_dict()
        if self.training:
            out["training"] = [run.to_v1() for run in self.training]
        for key in (*_TEXT_FIELDS, *_OFFSET_FIELDS):
            if getattr(self, key) is not None:
                out[key] = to_plain(getattr(self, key))
        if self.bioimageio is not None:
            out["bioimageio"] = self.bioimageio.to_dict()
        out.update(self.extra)
        return out

    def _unset_v1(self, key: str) -> None:
        if key in self.extra:
            del self.extra[key]
        elif key in self.to_v1():
            self.set_v1(key, None)
        else:
            raise KeyError(key)
