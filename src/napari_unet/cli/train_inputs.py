"""The image/label files of ``napari-unet train`` (training and validation), read and
checked, and their annotated planes."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .errors import file_error
from .models import file_channel_axis, looks_rgb, model_input
from .progress import status

#: (path, image, labels) of one image/label pair, as read.
Pair = tuple[Path, Any, Any]


def read_pairs(pairs: list[tuple[Path, Path]], channel_axis: int | None) -> list[Pair]:
    """Every image and its labels, read and checked to have the same spatial shape."""
    import numpy as np

    from ..io import read_image, read_labels
    from ..io.images import tiff_axes
    from ..unet.data import InputError

    raw: list[Pair] = []
    for image_path, label_path in pairs:
        image = np.asarray(read_image(image_path, lazy=False))
        lab = read_labels(label_path)
        raw.append((image_path, image, lab))
        if lab.ndim < 2:
            raise InputError(f"{label_path}: labels must be 2D or a stack, got {lab.shape}")
        if channel_axis is not None and not -image.ndim <= channel_axis < image.ndim:
            raise InputError(
                f"{image_path}: --channel-axis {channel_axis} is not an axis of an image of "
                f"shape {tuple(image.shape)}"
            )
        if channel_axis is not None and image.ndim < 3:
            raise InputError(
                f"{image_path}: --channel-axis needs an image with a channel axis, at least "
                f"3D; got shape {tuple(image.shape)} (leave it out for a grey image)"
            )
        axis = channel_axis
        if axis is None:
            axis = file_channel_axis(image, tiff_axes(image_path))
        if axis is None and looks_rgb(image, image_path):
            axis = -1
        spatial = spatial_shape(image, axis)
        if tuple(lab.shape) != spatial:
            raise InputError(
                f"{label_path}: labels shape {tuple(lab.shape)} does not match the image "
                f"{image_path} ({spatial})"
            )
    return raw


def annotated_planes_of(model: Any, raw: list[Pair], args: argparse.Namespace) -> list[Any]:
    """The annotated planes of every image, adapted to the model's input channels."""
    from ..workflow import annotated_planes

    planes = []
    for path, image, lab in raw:
        img, axis = model_input(
            image, path, model.in_channels, args.channel_axis, args.grey, lambda t: status(t, args)
        )
        try:
            planes.extend(annotated_planes(img, lab, axis, name=path.name))
        except ValueError as err:
            raise file_error(path, err) from err
    return planes


def spatial_shape(image: Any, channel_axis: int | None) -> tuple[int, ...]:
    shape = list(image.shape)
    if channel_axis is not None:
        del shape[channel_axis % image.ndim]
    return tuple(shape)
