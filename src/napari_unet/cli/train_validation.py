"""``napari-unet train --val-images/--val-labels``: validation during training, as the
widget's (workflow.validation_set)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .options import add_paths


def add_validation_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "validation",
        "score the model on held-out image/label files during training (loss, IoU of the "
        "object classes; object F1 for instance labels), keep the best step's weights",
    )
    add_paths(g, "--val-images", "validation image files/folders/globs")
    add_paths(g, "--val-labels", "their label files, paired by name as --labels")
    g.add_argument(
        "--val-every", type=int, default=25, metavar="N", help="validate every N steps (25)"
    )
    g.add_argument(
        "--patience",
        type=int,
        default=0,
        metavar="N",
        help="stop after N validations without a better score (default 0: never)",
    )
    g.add_argument(
        "--keep",
        choices=("best", "last"),
        default="best",
        help="the weights saved: the best validation step's (default) or the last step's",
    )


def validation_pairs(args: argparse.Namespace) -> list[tuple[Path, Path]]:
    """The validation (image, labels) files, paired by name; [] without --val-images."""
    from ..io import expand_paths, pair_files
    from ..unet.data import InputError

    if bool(args.val_images) != bool(args.val_labels):
        raise InputError("--val-images and --val-labels go together: give both")
    if not args.val_images:
        return []
    images = expand_paths(args.val_images, what="validation image")
    labels = expand_paths(args.val_labels, what="validation label")
    return pair_files(images, labels)


def read_validation(
    args: argparse.Namespace,
    pairs: list[tuple[Path, Path]],
    model: Any,
    plan: Any,
    recipe: Any,
    training: list[Any],
) -> tuple[Any, list[str]]:
    """The run's Validation (None without validation pairs) and notices for the user; read
    after the model is fitted to the training labels (its head, its normalisation)."""
    from ..workflow import ValidationOptions, validation_set
    from .train_inputs import annotated_planes_of, read_pairs

    if not pairs:
        return None, []
    raw = read_pairs(pairs, args.channel_axis)
    options = ValidationOptions(every=args.val_every, patience=args.patience, keep=args.keep)
    planes = annotated_planes_of(model, raw, args)
    return validation_set(model, planes, plan, recipe, options, training=training, mode=args.mode)
