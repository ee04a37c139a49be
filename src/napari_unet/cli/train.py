"""``napari-unet train``: train (or fine-tune) a U-Net on image/label files and save it."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import EXIT_INTERRUPTED
from .models import file_channel_axis, looks_rgb
from .options import (
    add_channel_axis,
    add_common,
    add_device,
    add_overwrite,
    add_paths,
    new_command,
)
from .progress import ProgressBar, format_seconds, status
from .train_inputs import Pair, annotated_planes_of, read_pairs
from .train_validation import add_validation_arguments, read_validation, validation_pairs


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..unet.presets import DEFAULT_PRESET, PRESET_DESCRIPTIONS, PRESETS
    from ..workflow import LABEL_MODES

    p = new_command(
        sub,
        "train",
        help="train a U-Net on image/label files",
        description="Train a U-Net on pairs of image and label files and save it.\n\n"
        "Images and labels are files, folders or glob patterns (TIFF, PNG, JPEG, zarr / "
        "OME-Zarr); they are paired by file name only (images/7.png <-> labels/7.tif, or "
        "7.png <-> 7_mask.png: one suffix shared by every pair), never by order. "
        "Stacks (Z, Y, X) with labels of the same shape train on every "
        "plane.\n\nLabel modes (the same as the widget's):\n"
        "  auto       instance ids if more than 10 distinct values or one above 10, a mask\n"
        "             if a single value above 10 (0/255), else scribbles\n"
        "  scribbles  0 = not annotated, value c >= 1 = class c (sparse strokes)\n"
        "  instances  0 = background, ids > 0 = cells; trained as background/cell with the\n"
        "             paper's border weight map if --weight-map is given\n"
        "  dense      every pixel holds a class value (e.g. a 0/255 mask); the distinct\n"
        "             values become classes in increasing order and predictions are\n"
        "             written back with the same values",
    )
    add_paths(p, "--images", "image files/folders/globs", required=True)
    add_paths(p, "--labels", "label files/folders/globs", required=True)
    p.add_argument(
        "--mode",
        choices=LABEL_MODES,
        default="scribbles",
        help="what the label values mean (see above)",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="train a new U-Net of this size: "
        + "; ".join(f"{k}: {v}" for k, v in PRESET_DESCRIPTIONS.items())
        + f" (default {DEFAULT_PRESET} when neither --from nor --pretrained is given)",
    )
    src.add_argument("--from", dest="from_model", metavar="MODEL.pt", help="fine-tune this model")
    src.add_argument("--pretrained", metavar="NAME", help="fine-tune a bundled model")
    p.add_argument(
        "--padding",
        choices=("valid", "same"),
        default="valid",
        help="convolution padding of a new model: valid = the paper's (exact tiling)",
    )
    p.add_argument("--out", required=True, metavar="MODEL.pt", help="where to save the model")
    add_overwrite(p, "replace --out if it exists")
    p.add_argument("--steps", type=int, default=200, help="training steps (batches)")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    p.add_argument(
        "--optimizer",
        choices=("adam", "sgd"),
        default="adam",
        help="adam, or sgd with momentum 0.99 (the paper's)",
    )
    p.add_argument(
        "--schedule",
        choices=("cosine", "constant"),
        default="cosine",
        help="learning-rate schedule (cosine decays to 5%% at the end)",
    )
    p.add_argument("--batch-size", type=int, default=2, help="tiles per step")
    p.add_argument(
        "--tile-size", type=int, default=128, help="output tile side of training tiles (px)"
    )
    p.add_argument(
        "--weight-map",
        action="store_true",
        help="instances mode: weigh pixels by the paper's w(x) = w_c(x) + w0 exp(-(d1+d2)^2 "
        "/ 2 sigma^2) to separate touching cells",
    )
    p.add_argument("--w0", type=float, default=10.0, help="border weight w0 of the weight map")
    p.add_argument(
        "--sigma", type=float, default=5.0, help="border width sigma (px) of the weight map"
    )
    p.add_argument(
        "--class-balance",
        action="store_true",
        help="weigh classes by inverse frequency (w_c of the paper)",
    )
    p.add_argument(
        "--no-augment", action="store_true", help="no flips, rotations, elastic deformation"
    )
    p.add_argument("--no-elastic", action="store_true", help="augment without elastic deformation")
    p.add_argument(
        "--no-flips",
        action="store_true",
        help="augment without flips / quarter turns (annotations with an orientation-"
        "dependent convention, e.g. borders drawn consistently off-centre)",
    )
    p.add_argument(
        "--recompute-batch-norm",
        action="store_true",
        help="after the last step, recompute the batch-norm statistics over un-augmented "
        "training tiles ('precise BN'; helped dense EM labels, hurt sparse strokes)",
    )
    p.add_argument(
        "--class-names", nargs="+", metavar="NAME", help="names of the classes, in order"
    )
    p.add_argument(
        "--grey", action="store_true", help="convert colour images to grey (mean of R, G, B)"
    )
    add_channel_axis(
        p,
        "axis of the channel dimension of multi-channel images (RGB PNG/JPEG/TIFF are "
        "recognised without it)",
    )
    add_device(p)
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="arithmetic of the training steps: auto = bf16 mixed precision where the "
        "CPU/GPU computes it natively (AVX-512 BF16/AMX, recent GPUs), else fp32; fp16 on "
        "CUDA only",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (tiles, augmentation, init)")
    p.add_argument("--description", default="", help="a note stored in the model's history")
    add_validation_arguments(p)
    add_common(p, cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from ..io import check_output, expand_paths, pair_files
    from ..unet.data import InputError
    from ..unet.training import TrainConfig
    from ..workflow import (
        ValidationOptions,
        WeightRecipe,
        distinct_values,
        interpret_labels,
        prepare_training,
    )

    images = expand_paths(args.images, what="image")
    labels = expand_paths(args.labels, what="label")
    pairs = pair_files(images, labels)
    val_pairs = validation_pairs(args)
    out = check_output(
        args.out,
        overwrite=args.overwrite,
        inputs=[p for pair in pairs + val_pairs for p in pair],
        kind="model",
    )
    if args.from_model and Path(args.from_model).resolve() == out.resolve():
        status(f"{out} will be replaced by the fine-tuned model (--overwrite)", args)
    if args.weight_map and args.mode not in ("instances", "auto"):
        raise InputError("--weight-map needs --mode instances (it is built from cell ids)")
    recipe = WeightRecipe(args.weight_map, args.w0, args.sigma, args.class_balance)
    recipe.validate()
    config = TrainConfig(
        steps=args.steps,
        learning_rate=args.lr,
        optimizer=args.optimizer,
        schedule=args.schedule,
        batch_size=args.batch_size,
        tile_size=args.tile_size,
        augment=not args.no_augment,
        elastic=not args.no_elastic,
        flips=not args.no_flips,
        recompute_batch_norm=args.recompute_batch_norm,
        seed=args.seed,
        device=args.device,
        precision=args.precision,
    )
    config.validate()
    ValidationOptions(args.val_every, args.patience, args.keep).validate()

    raw = read_pairs(pairs, args.channel_axis)  # a bad file fails before any training
    plan = interpret_labels(
        distinct_values(lab for _, _, lab in raw), args.mode, what="the label files"
    )
    if args.weight_map and plan.mode != "instances":
        raise InputError(
            f"--weight-map needs instance labels (cell ids), but the labels read as "
            f"{plan.mode}: pass --mode instances"
        )
    model = _open_model(args, raw)
    planes = annotated_planes_of(model, raw, args)
    prepared = prepare_training(
        model,
        planes,
        plan,
        recipe,
        class_names=args.class_names,
        flips=not (args.no_augment or args.no_flips),
    )
    validation, notes = read_validation(args, val_pairs, model, plan, recipe, planes)
    for notice in prepared.notices + notes:
        status(notice, args)
    status(prepared.describe(), args)
    if validation is not None:
        status(
            f"validating every {validation.every} steps on {len(validation.samples)} plane(s)"
            f", keeping the {validation.keep} weights",
            args,
        )
    return _run_training(model, prepared.samples, config, out, args, validation)


def _open_model(args: argparse.Namespace, raw: list[Pair]) -> Any:
    """The model to fine-tune (--from / --pretrained) or a new one of --preset."""
    from ..io.images import tiff_axes
    from ..unet.data import InputError
    from ..workflow import ModelChoice, open_model

    if args.from_model:
        return open_model(ModelChoice.file(args.from_model))
    if args.pretrained:
        return open_model(ModelChoice.bundled(args.pretrained))
    colour = [looks_rgb(img, p) and args.channel_axis is None for p, img, _ in raw]
    first_path, first = raw[0][0], raw[0][1]
    named = file_channel_axis(first, tiff_axes(first_path))
    if args.channel_axis is not None:
        in_channels = int(first.shape[args.channel_axis])
    elif named is not None:
        in_channels = int(first.shape[named])
    elif any(colour) and not args.grey:
        if not all(colour):
            raise InputError("some images are colour and some grey: pass --grey to train on grey")
        in_channels = 3
    else:
        in_channels = 1
    return open_model(ModelChoice.new(args.preset, args.padding), in_channels)


def _run_training(
    model: Any,
    samples: list[Any],
    config: Any,
    out: Path,
    args: argparse.Namespace,
    validation: Any = None,
) -> int:
    """Train with a progress bar and save to ``out``; Ctrl-C saves what was trained so far
    (with validation: the weights ``--keep`` names)."""
    from ..io.checkpoint import save_model
    from ..unet.training import train

    bar = ProgressBar("train", enabled=not args.quiet)
    last = scored = None
    steps = train(model, samples, config, description=args.description, validation=validation)
    try:
        with _sigterm_as_interrupt():
            for progress in steps:
                last = progress
                scored = progress.validation or scored
                val = f"  {scored.describe()}" if scored is not None else ""
                bar.update(
                    progress.step,
                    progress.steps,
                    f"loss {progress.loss:.4f}{val}  {progress.steps_per_second:.2f} steps/s"
                    f"  eta {format_seconds(progress.eta)}",
                )
    except KeyboardInterrupt:
        steps.close()
        if last is None:
            raise
        save_model(out, model, overwrite=True)
        status(f"interrupted at step {last.step}: saved the model trained so far to {out}", args)
        if validation is not None:
            status(f"validation: {validation.summary()}", args)
        return EXIT_INTERRUPTED
    save_model(out, model, overwrite=True)
    if last is not None:
        bar.suffix = f"{last.step} steps, final loss {last.loss:.4f}"
    bar.close(f"saved {out}")
    if last is not None:
        print(f"{out}: {last.step} steps, final loss {last.loss:.4f}")
    if validation is not None:
        print(f"validation: {validation.summary()}")
    return 0


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a job scheduler's time limit) stops training as Ctrl-C does: the
    model trained so far is saved."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    before = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
