"""Predicting an image and turning p_k(x) into what the user asked for: labels with the
annotation's values, the probabilities, instances of the object class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..unet.arguments import flag, real_number, whole_number
from ..unet.data import InputError
from .models import label_values_table, object_channel


@dataclass(frozen=True)
class PredictOptions:
    """How the model runs: tiles, device, arithmetic, test-time augmentation."""

    tile_size: int | None = None
    batch_size: int = 1
    device: str = "auto"
    precision: str = "fp32"
    tta: bool = False

    def validate(self) -> None:
        """The checks :func:`~napari_unet.unet.tiling.predict_tiled` makes, before any work."""
        from ..unet.tiling import check_prediction_settings  # torch: imported when used

        check_prediction_settings(
            tile_size=self.tile_size, batch_size=self.batch_size, precision=self.precision
        )
        flag(self.tta, "test-time augmentation")
        if not isinstance(self.device, str):
            raise InputError(f"device must be a name such as 'cpu', got {self.device!r}")


@dataclass(frozen=True)
class InstanceOptions:
    """How objects of the object class become instances (:mod:`napari_unet.instances`)."""

    object_class: int | None = None  # 1-based; None: the model's object class
    threshold: float = 0.5
    min_size: int = 10
    split: bool = True
    seed_threshold: float | None = None

    def validate(self) -> None:
        if self.object_class is not None:
            whole_number(self.object_class, "object class", minimum=1)
        real_number(self.threshold, "the threshold", low=0, high=1, open_low=True, open_high=True)
        whole_number(self.min_size, "the smallest object size", minimum=0)
        flag(self.split, "split")
        if self.seed_threshold is not None:
            real_number(self.seed_threshold, "the seed threshold", low=0, high=1)
        if self.seed_threshold is not None and not self.split:
            raise InputError("a seed threshold splits objects: it needs splitting on")
        if self.seed_threshold is not None and not self.threshold < self.seed_threshold < 1:
            raise InputError(
                f"the seed threshold must lie above the threshold ({self.threshold}) and "
                f"below 1, got {self.seed_threshold}"
            )


@dataclass
class Segmentation:
    """What a prediction gives: a_k(x), p_k(x) and H(x) on request, the class channel + 1
    of every pixel, the labels with the annotation's values, and instances on request."""

    classes: np.ndarray  # argmax_k p_k(x) + 1
    labels: np.ndarray  # the annotation's values (dense models) or classes
    probabilities: np.ndarray | None = None
    logits: np.ndarray | None = None
    instances: np.ndarray | None = None
    entropy: np.ndarray | None = None  # H(x) in [0, 1] (unet/uncertainty.py)


def instance_channel(model: Any, options: InstanceOptions | None, asked: bool) -> int | None:
    """The channel to split into instances: ``options.object_class`` if given, else the
    model's object class; a user who ``asked`` for instances of a model without one gets
    the second class (the CLI's documented default)."""
    if options is None:
        return None
    channel = object_channel(model, options.object_class)
    if channel is None and asked:
        if model.n_classes < 2:
            raise InputError("instances need a model with at least two classes")
        channel = 1
    return channel


def segment(
    model: Any,
    image: Any,
    channel_axis: int | None = None,
    options: PredictOptions = PredictOptions(),
    *,
    instances: InstanceOptions | None = None,
    instances_asked: bool = True,
    probabilities: bool = False,
    logits: bool = False,
    entropy: bool = False,
    normalized: bool = False,
    progress: Callable[[int, int], Any] | None = None,
) -> Segmentation:
    """Overlap-tile prediction of ``image`` and its post-processing, for every front-end.

    ``normalized``: the image is already normalised by the model's recipe. With
    ``instances`` the object channel is split (see :func:`instance_channel`). ``entropy``:
    also H(x), the normalised entropy of p_k(x) (:mod:`napari_unet.unet.uncertainty`).
    """
    from ..unet.tiling import predict_tiled
    from ..unet.uncertainty import normalized_entropy

    options.validate()
    channel = instance_channel(model, instances, instances_asked)
    if channel is not None:
        instances.validate()
    pred = predict_tiled(
        model,
        image,
        channel_axis=channel_axis,
        tile_size=options.tile_size,
        batch_size=options.batch_size,
        device=options.device,
        precision=options.precision,
        normalize_input=not normalized,
        return_logits=logits,
        return_probabilities=probabilities or entropy or channel is not None,
        test_time_augmentation=options.tta,
        progress=progress,
    )
    result = Segmentation(pred.labels, annotation_labels(model, pred.labels))
    result.logits = pred.logits if logits else None
    result.probabilities = pred.probabilities if probabilities else None
    result.entropy = normalized_entropy(pred.probabilities) if entropy else None
    if channel is not None:
        result.instances = split_instances(pred.probabilities[channel], instances)
    return result


def split_instances(probability: np.ndarray, options: InstanceOptions) -> np.ndarray:
    """Instances of one object probability map p_k(x) (a plane or a stack of planes)."""
    from ..instances import instances_from_prediction

    return instances_from_prediction(
        probability,
        threshold=options.threshold,
        split_touching=options.split,
        min_size=options.min_size,
        seed_threshold=options.seed_threshold,
    )


def annotation_labels(model: Any, classes: np.ndarray) -> np.ndarray:
    """Predicted classes (channel + 1) -> the values of the annotation (dense models)."""
    table = label_values_table(model)
    if table is None:
        return classes
    return table[np.asarray(classes, dtype=np.int64) - 1]
