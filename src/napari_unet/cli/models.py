"""The model a command names, and images and labels adapted to it.

Shared by train, predict and evaluate.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..workflow.file_inputs import file_channel_axis, layout_note, looks_rgb, model_input

__all__ = [
    "file_channel_axis",
    "instance_options",
    "layout_note",
    "load_model_arg",
    "looks_rgb",
    "model_input",
    "predict_options",
]


def load_model_arg(args: argparse.Namespace, device: str = "cpu") -> Any:
    """The model of ``--pretrained NAME`` or ``--model FILE``."""
    from ..workflow import ModelChoice, open_model

    if getattr(args, "pretrained", None):
        return open_model(ModelChoice.bundled(args.pretrained), device=device)
    return open_model(ModelChoice.file(args.model), device=device)


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
