"""The model a command names, and images and labels adapted to it.

Shared by train, predict and evaluate.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def load_model_arg(args: argparse.Namespace, device: str = "cpu") -> Any:
    """The model of ``--pretrained NAME`` or ``--model FILE``."""
    from ..io.checkpoint import load_model

    if getattr(args, "pretrained", None):
        from ..pretrained import load_pretrained

        return load_pretrained(args.pretrained, device=device)
    path = Path(args.model)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    return load_model(path, device=device)


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


def predict_in_memory(
    model: Any,
    image: Any,
    channel_axis: int | None,
    args: argparse.Namespace,
    probabilities: bool,
    progress: Any = None,
) -> Any:
    """``predict_tiled`` with the inference options of the command line
    (:func:`.parser.add_inference`): labels, and p_k(x) if ``probabilities``."""
    from ..unet.tiling import predict_tiled

    return predict_tiled(
        model,
        image,
        channel_axis=channel_axis,
        tile_size=args.tile_size,
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        return_logits=False,
        return_probabilities=probabilities,
        test_time_augmentation=args.tta,
        progress=progress,
    )


def label_lut(model: Any) -> Any:
    """Class channel k -> the label value written (label_values of dense models, else k+1)."""
    import numpy as np

    values = model.metadata.get("label_values")
    if values is None or len(values) != model.n_classes:
        return None
    values = np.asarray(values, dtype=np.int64)
    dtype = np.uint8 if values.max() < 256 else np.uint16 if values.max() < 65536 else np.int64
    return values.astype(dtype)
