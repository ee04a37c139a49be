"""The model's record: what a U-Net is, what it is for and how it was made, as typed data.

A :class:`ModelRecord` holds

- :class:`Architecture`: the ``UNet(**kwargs)`` arguments (kept in step with the network:
  ``model.record.architecture`` is derived from ``model.config()`` on every access);
- :class:`Classes`: the K class names, the label value written for each class channel
  (dense labels such as 0/255 masks), the label mode, optional class colours;
- :class:`Normalization`: how images are normalised before they enter the network;
- :class:`WeightMapRecipe`: w0, sigma and class balancing of the weight map w(x), if any;
- :class:`TrainingRun`: one entry per training run (its settings, steps, loss, images...);
- where the model came from (``source``), its ``name``, ``description``, ``preset``,
  ``trained_on``, the label offset / prediction shift of aligned training, and
  :class:`BioimageioInfo` for models imported from a bioimage.io package;
- ``extra``: any other key of an old (format version 1) metadata dict, kept as it was.

:meth:`ModelRecord.to_json` / :meth:`ModelRecord.from_json` write and read the record
(``"record_version": 2``); :meth:`ModelRecord.from_v1` converts the ``metadata`` dict that
model files of format version 1 carry. Everything read is validated (types, finite
numbers, lengths, ranges, architecture bounds that keep a hostile file from allocating
gigabytes) and a bad field raises :class:`RecordError` naming the field and the file.

:func:`summary` is the one description of a model for people (GUI, CLI, packages).

Pure Python: no torch, no numpy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, MutableMapping, MutableSequence, Sequence
from dataclasses import dataclass, field, replace
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


# ---------------------------------------------------------------- architecture
@dataclass(frozen=True)
class Architecture:
    """The ``UNet(**kwargs)`` arguments (``UNet.config()``); the defaults are UNet's."""

    in_channels: int = 1
    n_classes: int = 2
    depth: int = 4
    base_channels: int = 64
    padding: str = "valid"
    batch_norm: bool = False
    dropout: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "n_classes": self.n_classes,
            "depth": self.depth,
            "base_channels": self.base_channels,
            "padding": self.padding,
            "batch_norm": self.batch_norm,
            "dropout": self.dropout,
        }

    def parameter_count(self) -> int:
        """The number of learnable parameters of ``UNet(**self.to_dict())``, computed
        without building it (arbitrary-precision integers: no overflow)."""
        bn = self.batch_norm

        def double(c_in: int, c_out: int) -> int:
            convs = 9 * c_in * c_out + 9 * c_out * c_out + (0 if bn else 2 * c_out)
            return convs + (4 * c_out if bn else 0)

        chans = [self.base_channels * 2**i for i in range(self.depth + 1)]
        total, prev = 0, self.in_channels
        for c in chans[:-1]:
            total += double(prev, c)
            prev = c
        total += double(chans[-2], chans[-1])
        for i in range(self.depth):
            total += 4 * chans[i + 1] * chans[i] + chans[i] + double(2 * chans[i], chans[i])
        return total + chans[0] * self.n_classes + self.n_classes

    @classmethod
    def from_dict(cls, value: Any, *, where: str = "", name: str = "architecture") -> Architecture:
        """Validate an architecture read from a file against the bounds above (before
        anything is allocated)."""
        try:
            d = _object(value, name, where)
            _keys(d, name, where, list(cls().to_dict()))
            full = cls().to_dict() | d
            arch = cls(
                in_channels=_int(full["in_channels"], f"{name}.in_channels", where, 1,
                                 MAX_IN_CHANNELS),
                n_classes=_int(full["n_classes"], f"{name}.n_classes", where, 1, MAX_CLASSES),
                depth=_int(full["depth"], f"{name}.depth", where, 1, MAX_DEPTH),
                base_channels=_int(full["base_channels"], f"{name}.base_channels", where, 1,
                                   MAX_BASE_CHANNELS),
                padding=_choice(full["padding"], f"{name}.padding", where, PADDINGS),
                batch_norm=_bool(full["batch_norm"], f"{name}.batch_norm", where),
                dropout=_number(full["dropout"], f"{name}.dropout", where, 0.0, None,
                                "a number in [0, 1)"),
            )  # fmt: skip
            if arch.dropout >= 1.0:
                _fail(where, f"{name}.dropout", "a number in [0, 1)", full["dropout"])
            n = arch.parameter_count()
            if n > MAX_PARAMETERS:
                raise RecordError(
                    where, f"{name}: depth {arch.depth} with {arch.base_channels} base "
                    f"channels has {n:,} parameters, more than the {MAX_PARAMETERS:,} allowed"
                )  # fmt: skip
        except RecordError as err:
            raise RecordError(where, "unknown or invalid architecture: " + err.text) from None
        return arch


# ---------------------------------------------------------------- classes
def _names(value: Any, k: int, name: str, where: str) -> list[str] | None:
    if value is None:
        return None
    expected = f"a list of {k} strings"
    items = _list(value, name, where, expected)
    if len(items) != k or not all(isinstance(v, str) for v in items):
        _fail(where, name, expected, value)
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


# ---------------------------------------------------------------- normalisation
DEFAULT_LOW, DEFAULT_HIGH = 1.0, 99.8


@dataclass(frozen=True)
class Normalization:
    """``percentile``: the low / high percentiles of each channel map to 0 / 1 (not
    clipped); ``none``: raw values, cast to float32 (low and high are None)."""

    method: str = "percentile"
    low: float | None = DEFAULT_LOW
    high: float | None = DEFAULT_HIGH

    def to_dict(self) -> dict[str, Any]:
        """The dict :func:`napari_unet.unet.data.normalize` takes."""
        if self.method == "none":
            return {"method": "none"}
        return {"method": self.method, "low": self.low, "high": self.high}

    def describe(self) -> str:
        if self.method == "none":
            return "none (raw values, cast to float32)"
        return f"percentiles {self.low:g} / {self.high:g} of each channel -> 0 / 1"

    @classmethod
    def from_dict(
        cls, value: Any, *, where: str = "", name: str = "normalization"
    ) -> Normalization:
        d = _object(value, name, where)
        method = _choice(d.get("method", "percentile"), f"{name}.method", where,
                         NORMALIZATION_METHODS)  # fmt: skip
        if method == "none":
            _keys(d, f"{name} (method 'none')", where, ["method"])
            return cls("none", None, None)
        _keys(d, name, where, ["method", "low", "high"])
        expected = "a number from 0 to 100 (a percentile)"
        low = _number(d.get("low", DEFAULT_LOW), f"{name}.low", where, 0, 100, expected)
        high = _number(d.get("high", DEFAULT_HIGH), f"{name}.high", where, 0, 100, expected)
        if not low < high:
            raise RecordError(
                where, f"{name} must have 0 <= low < high <= 100, got low {low:g}, high {high:g}"
            )
        return cls("percentile", low, high)


# ---------------------------------------------------------------- weight map
@dataclass(frozen=True)
class WeightMapRecipe:
    """w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / 2 sigma^2) as the model was trained with."""

    w0: float = 10.0
    sigma: float = 5.0
    class_balance: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"w0": self.w0, "sigma": self.sigma, "class_balance": self.class_balance}

    def describe(self) -> str:
        return f"w0 {self.w0:g}, sigma {self.sigma:g} px, class balancing " + (
            "on" if self.class_balance else "off"
        )

    @classmethod
    def from_dict(
        cls, value: Any, *, where: str = "", name: str = "weight_map"
    ) -> WeightMapRecipe:
        d = _object(value, name, where)
        _keys(d, name, where, ["w0", "sigma", "class_balance"])
        w0 = _number(d.get("w0", cls.w0), f"{name}.w0", where, 0, None,
                     "a finite number >= 0")  # fmt: skip
        sigma = _number(d.get("sigma", cls.sigma), f"{name}.sigma", where, None, None,
                        "a finite number > 0")  # fmt: skip
        if sigma <= 0:
            _fail(where, f"{name}.sigma", "a finite number > 0", d.get("sigma"))
        balance = _bool(d.get("class_balance", cls.class_balance), f"{name}.class_balance", where)
        return cls(w0, sigma, balance)


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


# ---------------------------------------------------------------- the summary
def _as_record(model_or_record: Any) -> ModelRecord:
    rec = getattr(model_or_record, "record", model_or_record)
    if not isinstance(rec, ModelRecord):
        raise TypeError(f"expected a UNet or a ModelRecord, got {type(model_or_record).__name__}")
    return rec


def _run_text(run: TrainingRun) -> str:
    cfg = run.config or {}
    settings = ", ".join(
        s
        for s in (
            cfg.get("optimizer"),
            f"lr {cfg['learning_rate']:g}" if _is_number(cfg.get("learning_rate")) else None,
            f"batch {cfg.get('batch_size', '?')} x {cfg.get('tile_size', '?')} px"
            if "batch_size" in cfg or "tile_size" in cfg
            else None,
            run.precision_used,
        )
        if s
    )
    parts = [f"{run.date or '?'}: {run.steps} steps" + (f" ({settings})" if settings else "")]
    if run.images is not None:
        parts.append(f"{len(run.images)} image(s)")
    if run.annotated_pixels is not None:
        parts.append(f"{run.annotated_pixels} annotated px")
    if run.batch_norm_recomputed:
        parts.append(f"batch norm recomputed on {run.batch_norm_recomputed} batches")
    if run.final_loss is not None:
        parts.append(f"final loss {run.final_loss:.4f}")
    parts += [f"{key} {json.dumps(value, default=repr)}" for key, value in run.extra.items()]
    text = ", ".join(parts)
    return text + (f"; {run.description}" if run.description else "")


def summary(model_or_record: Any, *, detail: bool = False) -> str:
    """What a model is, for people: the one description the widget, ``napari-unet info``,
    the bioimage.io README, the TorchScript file and :func:`~napari_unet.pretrained.
    model_summary` show.

    Short (two or three lines): ``name: architecture -> classes``, ``source: ...; trained
    ...; mode``, and what a bundled model was originally trained on. ``detail=True``: one
    labelled line per field (normalisation, weight map, every training run, extras too).
    """
    rec = _as_record(model_or_record)
    a, c = rec.architecture, rec.classes
    k = a.n_classes
    if c.names is not None and c.label_values is not None:
        labels = ", ".join(f"{v} = {n}" for v, n in zip(c.label_values, c.names, strict=False))
    elif c.names is not None:
        labels = ", ".join(c.names)
    elif c.label_values is not None:
        labels = "label values " + ", ".join(map(str, c.label_values))
    else:
        labels = ""
    arch = (
        f"U-Net depth {a.depth}, base {a.base_channels}, {a.padding} padding"
        + (", batch norm" if a.batch_norm else "")
        + (f", dropout {a.dropout:g}" if a.dropout else "")
        + f"; {a.in_channels} input channel(s) -> {k} classes"
        + (f" ({labels})" if labels else "")
    )
    if rec.training:
        last = rec.training[-1].final_loss
        trained = f"trained {rec.steps_trained()} steps in {len(rec.training)} run(s)"
        trained += f", last loss {last:.3g}" if last is not None else ""
        images = sorted({i for run in rec.training for i in run.images or []})
        if images and not rec.trained_on:
            trained += " on " + ", ".join(images[:3]) + (", ..." if len(images) > 3 else "")
    else:
        trained = "untrained"
    source = rec.source or "new"
    if not detail:
        lines = [f"{rec.name}: {arch}" if rec.name else arch]
        lines.append(f"source: {source}; {trained}" + (f"; {c.mode} mode" if c.mode else ""))
        if rec.trained_on:
            lines.append(f"originally trained on {rec.trained_on}")
        return "\n".join(lines)
    norm = (
        rec.normalization.describe()
        if rec.normalization
        else f"not recorded (the default: percentiles {DEFAULT_LOW:g} / {DEFAULT_HIGH:g})"
    )
    mode = c.mode or "not recorded"
    if c.label_values is not None:
        mode += " (class channel k is written as the label value shown above)"
    pairs: list[tuple[str, str | None]] = [
        ("name", rec.name),
        ("architecture", arch),
        ("description", rec.description),
        ("source", source),
        ("preset", rec.preset),
        ("trained on", rec.trained_on),
        ("training", trained.removeprefix("trained ")),
        ("label mode", mode),
        ("normalisation", norm),
        ("weight map", rec.weight_map.describe() if rec.weight_map else None),
        ("label offset", f"{rec.label_offset} px (dy, dx)" if rec.label_offset else None),
        (
            "pred. shift",
            f"{rec.prediction_shift} px (dy, dx)" if rec.prediction_shift else None,
        ),
        (
            "bioimage.io",
            f"{rec.bioimageio.name}, licence {rec.bioimageio.license or '?'}, "
            f"output {rec.bioimageio.output}"
            if rec.bioimageio
            else None,
        ),
    ]
    pairs += [(f"run {i}", _run_text(run)) for i, run in enumerate(rec.training, 1)]
    pairs += [(key, json.dumps(value, default=repr)) for key, value in rec.extra.items()]
    return "\n".join(f"{label + ':':<16}{text}" for label, text in pairs if text is not None)


# ---------------------------------------------------------------- transitional: metadata
class MetadataView(MutableMapping):
    """TRANSITIONAL: ``model.metadata``, the format 1 metadata dict as a view of the record.

    Kept only so that code not yet converted to ``model.record`` keeps working; new code
    uses the typed record. Reads give format 1 values (``metadata.get("normalization")``
    -> a dict, ``metadata["class_names"]`` -> a list); they are copies, except
    ``metadata["training"]``, a live list of live runs (``run["images"] = ...`` writes
    through). Writes (``metadata["label_values"] = [...]``, ``pop``, ``setdefault``,
    ``update``) are validated and go to the record; keys the record does not know go to
    ``record.extra``. Remove when nothing uses it (the users are listed in
    ``UNet.metadata``'s docstring).
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
    """TRANSITIONAL: ``metadata["training"]``: the record's runs as format 1 dicts."""

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
    """TRANSITIONAL: one training run as its format 1 dict, writing through to the run."""

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
