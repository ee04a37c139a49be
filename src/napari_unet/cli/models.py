"""The model a command names, and images and labels adapted to it.

Shared by train, predict and evaluate.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def load_model_arg(args: argparse.Namespace, device: str = "cpu") -> Any:
    """The model of ``--pretrained NAME`` or ``--model FILE``."""
    from ..workflow import ModelChoice, open_model

    if getattr(args, "pretrained", None):
        return open_model(ModelChoice.bundled(args.pretrained), device=device)
    return open_model(ModelChoice.file(args.model), device=device)


def looks_rgb(image: Any, path: Path) -> bool:
    """An (H, W, 3|4) colour image: a colour PNG / JPEG or an RGB(A) TIFF."""
    from ..io.images import PLAIN_SUFFIXES, TIFF_SUFFIXES

    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        return False
    suffix = path.suffix.lower()
    if suffix in PLAIN_SUFFIXES:
        return True
    return suffix in TIFF_SUFFIXES and image.shape[-1] < min(image.shape[:2])


def model_input(
    image: Any, path: Path, in_channels: int, channel_axis: int | None, grey: bool = False
) -> tuple[Any, int | None]:
    """The image and channel axis to give a model with ``in_channels`` inputs.

    An explicit ``channel_axis`` is used as is. Otherwise an RGB(A) image gets
    ``channel_axis=-1`` (alpha dropped) for a 3-channel model, or becomes grey (mean of
    R, G, B) for a 1-channel model or with ``grey``.
    """
    import numpy as np

    from ..unet.data import InputError

    if channel_axis is not None:
        return image, channel_axis
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


def predict_options(args: argparse.Namespace) -> Any:
    """The workflow's :class:`PredictOptions` of the inference options
    (:func:`.options.add_inference`)."""
    from ..workflow import PredictOptions

    return PredictOptions(
        tile_size=args.tile_size,
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        tta=getattr(args, "tta", False),
    )


def instance_options(args: argparse.Namespace) -> Any:
    """The workflow's :class:`InstanceOptions` of ``--object-class``, ``--threshold``,
    ``--min-size``, ``--no-split`` and ``--seed-threshold``."""
    from ..workflow import InstanceOptions

    return InstanceOptions(
        object_class=getattr(args, "object_class", None),
        threshold=args.threshold,
        min_size=args.min_size,
        split=not getattr(args, "no_split", False),
        seed_threshold=args.seed_threshold,
    )
