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

from .architecture import Architecture
from .classes import Classes
from .fields import (
    BIOIMAGEIO_OUTPUTS,
    LABEL_MODES,
    LABEL_VALUE_MAX,
    MAX_BASE_CHANNELS,
    MAX_CLASSES,
    MAX_DEPTH,
    MAX_IN_CHANNELS,
    MAX_PARAMETERS,
    MAX_PIXELS,
    MAX_STEPS,
    NORMALIZATION_METHODS,
    PADDINGS,
    RECORD_VERSION,
    RecordError,
    to_plain,
)
from .metadata_view import MetadataView
from .model_record import BioimageioInfo, ModelRecord
from .recipes import DEFAULT_HIGH, DEFAULT_LOW, Normalization, WeightMapRecipe
from .summary import summary
from .training_runs import TrainingRun

__all__ = [
    "Architecture",
    "BIOIMAGEIO_OUTPUTS",
    "BioimageioInfo",
    "Classes",
    "DEFAULT_HIGH",
    "DEFAULT_LOW",
    "LABEL_MODES",
    "LABEL_VALUE_MAX",
    "MAX_BASE_CHANNELS",
    "MAX_CLASSES",
    "MAX_DEPTH",
    "MAX_IN_CHANNELS",
    "MAX_PARAMETERS",
    "MAX_PIXELS",
    "MAX_STEPS",
    "MetadataView",
    "ModelRecord",
    "NORMALIZATION_METHODS",
    "Normalization",
    "PADDINGS",
    "RECORD_VERSION",
    "RecordError",
    "TrainingRun",
    "WeightMapRecipe",
    "summary",
    "to_plain",
]
