"""Image files adapted to a model: colour or grey, which axis holds the channels (the
file's metadata, the user's choice), and a note where a layout is ambiguous. Shared by the
command line and the widget's file prediction."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def looks_rgb(image: Any, path: Path) -> bool:
    """An (H, W, 3|4) colour image: a colour PNG / JPEG or an RGB(A) TIFF."""
    from ..io.images import PLAIN_SUFFIXES, TIFF_SUFFIXES

    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        return False
    suffix = path.suffix.lower()
    if suffix in PLAIN_SUFFIXES:
        return True
    return suffix in TIFF_SUFFIXES and image.shape[-1] < min(image.shape[:2])


def file_channel_axis(image: Any, axes: str | None) -> int | None:
    """The axis a TIFF's own metadata (``axes``, :func:`~napari_unet.io.images.tiff_axes`)
    names as channels (``C``, more than one), if any."""
    if axes and len(axes) == image.ndim and "C" in axes and image.shape[axes.index("C")] > 1:
        return axes.index("C")
    return None


def layout_note(image: Any, path: Path, axes: str | None) -> str | None:
    """A note for a 3D image whose first axis may be channels or planes, when neither
    ``--channel-axis`` nor the file's metadata (``axes``) says which."""
    if image.ndim != 3 or not 2 <= image.shape[0] <= 4:
        return None
    if looks_rgb(image, path) or file_channel_axis(image, axes) is not None:
        return None
    if axes and axes[0] not in "QIS":  # the file names the axis (Z, T, ...); S: planar
        return None  # samples, which tifffile writes for any (3 | 4, H, W) array
    return (
        f"{path.name}: shape {tuple(image.shape)} is read as {image.shape[0]} planes, each "
        f"segmented on its own; if they are {image.shape[0]} channels of one image, pass "
        "--channel-axis 0"
    )


def model_input(
    image: Any,
    path: Path,
    in_channels: int,
    channel_axis: int | None,
    grey: bool = False,
    note: Callable[[str], None] | None = None,
) -> tuple[Any, int | None]:
    """The image and channel axis to give a model with ``in_channels`` inputs.

    An explicit ``channel_axis`` is used as is, then the channel axis a TIFF's metadata
    names. Otherwise an RGB(A) image gets ``channel_axis=-1`` (alpha dropped) for a
    3-channel model, or becomes grey (mean of R, G, B) for a 1-channel model or with
    ``grey``. A layout that could be channels or planes is reported to ``note``.
    """
    import numpy as np

    from ..io.images import tiff_axes
    from ..unet.data import InputError

    if channel_axis is not None:
        return image, channel_axis
    axes = tiff_axes(path)  # read once: the header only
    named = file_channel_axis(image, axes)
    if named is not None:
        if image.shape[named] != in_channels:
            raise InputError(
                f"{path}: {image.shape[named]} channels (axis {named}, as its metadata "
                f"says), but the model takes {in_channels}: save the channel(s) it was "
                "trained on as their own file, or pass --channel-axis if the metadata is wrong"
            )
        return image, named
    if note is not None and (text := layout_note(image, path, axes)):
        note(text)
    if looks_rgb(image, path):
        rgb = image[..., :3]
        if grey or in_channels == 1:
            return np.asarray(rgb, dtype=np.float32).mean(axis=-1), None
        if in_channels == 3:
            return rgb, -1
        raise InputError(f"{path}: an RGB image, but the model expects {in_channels} channels")
    if in_channels != 1:
        raise InputError(
            f"{path}: a single-channel image (shape {tuple(image.shape)}), but the model "
            f"expects {in_channels} channels (use --channel-axis)"
        )
    return image, None
