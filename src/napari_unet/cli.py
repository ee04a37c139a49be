"""The ``napari-unet`` command line: train, predict, evaluate, info, gui.

Every subcommand documents its options (``napari-unet <command> --help``). Failures print one
line, ``napari-unet: error: <reason>``, to stderr and exit with status 1 (2 for a wrong
command line, 130 when interrupted). Outputs never replace an input, and never replace an
existing file unless ``--overwrite`` is given. Heavy modules (torch, dask, napari) are
imported inside the subcommands, so ``napari-unet --help`` is fast.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

PROG = "napari-unet"
#: Suffixes of the files ``predict`` writes (left out when a folder or pattern is expanded).
OUTPUT_SUFFIXES = ("_labels", "_probabilities", "_instances")


# ---------------------------------------------------------------------------- progress
class ProgressBar:
    """A small text progress bar on stderr (no dependency).

    On a terminal it redraws one line (at most 10 times a second); otherwise (logs, batch
    jobs) it prints one line when the work is done. Call it as ``bar(done, total)``; it is
    thread-safe, so dask threads can report to it.
    """

    def __init__(
        self, label: str, *, stream: TextIO | None = None, enabled: bool = True, width: int = 28
    ) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.done = 0
        self.total = 0
        self.suffix = ""
        self._last = 0.0
        self._lock = threading.Lock()
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        self.update(done, total)

    def update(self, done: int, total: int | None = None, suffix: str | None = None) -> None:
        with self._lock:
            self.done = done
            if total is not None:
                self.total = total
            if suffix is not None:
                self.suffix = suffix
            now = time.perf_counter()
            if self.enabled and self.tty and (now - self._last > 0.1 or done >= self.total):
                self._last = now
                self._draw()

    def _draw(self) -> None:
        frac = self.done / self.total if self.total else 0.0
        fill = int(round(self.width * min(max(frac, 0.0), 1.0)))
        bar = "#" * fill + "." * (self.width - fill)
        text = f"\r{self.label} [{bar}] {self.done}/{self.total} {self.suffix}".rstrip()
        self.stream.write(f"{text}  ")
        self.stream.flush()
        self._drawn = True

    def close(self, message: str = "") -> None:
        """Finish the bar; ``message`` (e.g. what was written) ends the line."""
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        with self._lock:
            if self.tty and self._drawn:
                self._draw()
                self.stream.write("\n")
            tail = f" ({self.suffix})" if self.suffix and not (self.tty and self._drawn) else ""
            end = f"; {message}" if message else ""
            self.stream.write(f"{self.label}: done in {format_seconds(elapsed)}{tail}{end}\n")
            self.stream.flush()


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def info(message: str, args: argparse.Namespace | None = None) -> None:
    """A status line on stderr (suppressed by --quiet); results go to stdout."""
    if args is None or not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


# ---------------------------------------------------------------------------- parser
class _Formatter(argparse.HelpFormatter):
    """Wrap description paragraphs (keeping indented lines as they are) and show each
    option's default when it has one."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        paragraphs = []
        for para in text.split("\n\n"):
            lines = para.split("\n")
            if any(line.startswith("  ") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(
                    textwrap.fill(
                        " ".join(lines), width, initial_indent=indent, subsequent_indent=indent
                    )
                )
        return "\n\n".join(paragraphs)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and default not in (None, False, "", argparse.SUPPRESS)
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or status lines")
    p.add_argument(
        "--debug", action="store_true", help="show the full traceback when something fails"
    )


def _add_model_source(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--model", metavar="MODEL.pt", help="a model file saved by napari-unet")
    g.add_argument(
        "--pretrained", metavar="NAME", help="a model bundled with the package (see `info`)"
    )


def _add_inference(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--channel-axis",
        type=int,
        default=None,
        metavar="AXIS",
        help="axis of the colour/channel dimension of the images (e.g. -1); by default RGB "
        "PNG/JPEG/TIFF images and the 'c' axis of OME-Zarr are recognised, and a colour "
        "image given to a 1-channel model is converted to grey (mean of R, G, B)",
    )
    p.add_argument(
        "--tile-size",
        type=int,
        default=None,
        metavar="PX",
        help="output tile side in pixels (rounded up to a valid size); memory grows with "
        "it; default depends on the model width",
    )
    p.add_argument("--batch-size", type=int, default=1, help="tiles per forward pass")
    p.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (auto = best available)"
    )
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="arithmetic for inference: bf16 on recent CPUs/GPUs, fp16 on GPUs only",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``napari-unet`` console script."""
    from . import __version__
    from .presets import DEFAULT_PRESET, PRESET_DESCRIPTIONS, PRESETS

    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=_Formatter,
        description="Train, run and inspect paper-faithful U-Nets (Ronneberger et al. 2015) "
        "without a GUI, on single files, folders, OME-Zarr volumes and dask clusters.",
        epilog="Run `napari-unet <command> --help` for the options of a command.\n\n"
        "Examples:\n"
        "  napari-unet gui --sample\n"
        "  napari-unet train --images imgs/ --labels masks/ --mode dense --out model.pt\n"
        "  napari-unet predict imgs/ --model model.pt --out results/\n"
        "  napari-unet evaluate --predictions results/ --labels masks/\n"
        "  napari-unet info model.pt",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # ---- train
    p = sub.add_parser(
        "train",
        formatter_class=_Formatter,
        help="train a U-Net on image/label files",
        description="Train a U-Net on pairs of image and label files and save it.\n\n"
        "Images and labels are files, folders or glob patterns (TIFF, PNG, JPEG, zarr / "
        "OME-Zarr); they are paired by file name (images/7.png <-> labels/7.tif) or, failing "
        "that, in sorted order. Stacks (Z, Y, X) with labels of the same shape train on every "
        "plane.\n\nLabel modes:\n"
        "  scribbles  0 = not annotated, value c >= 1 = class c (sparse strokes)\n"
        "  instances  0 = background, ids > 0 = cells; trained as background/cell with the\n"
        "             paper's border weight map if --weight-map is given\n"
        "  dense      every pixel holds a class value (e.g. a 0/255 mask); the distinct\n"
        "             values become classes in increasing order and predictions are\n"
        "             written back with the same values",
    )
    p.add_argument(
        "--images", nargs="+", required=True, metavar="PATH", help="image files/folders/globs"
    )
    p.add_argument(
        "--labels", nargs="+", required=True, metavar="PATH", help="label files/folders/globs"
    )
    p.add_argument(
        "--mode",
        choices=("scribbles", "instances", "dense"),
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
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
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
        "--class-names", nargs="+", metavar="NAME", help="names of the classes, in order"
    )
    p.add_argument(
        "--grey", action="store_true", help="convert colour images to grey (mean of R, G, B)"
    )
    p.add_argument(
        "--channel-axis",
        type=int,
        default=None,
        metavar="AXIS",
        help="axis of the channel dimension of multi-channel images (RGB PNG/JPEG/TIFF are "
        "recognised without it)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--seed", type=int, default=0, help="random seed (tiles, augmentation, init)")
    p.add_argument("--description", default="", help="a note stored in the model's history")
    _add_common(p)
    p.set_defaults(func=cmd_train)

    # ---- predict
    p = sub.add_parser(
        "predict",
        formatter_class=_Formatter,
        help="segment images, folders, globs or (OME-)Zarr volumes",
        description="Segment images with a trained model.\n\n"
        "For each input <stem>.<ext> the output folder gets <stem>_labels.tif (class values, "
        "as in the annotations), and on request <stem>_probabilities.tif (p_k(x), float32, "
        "classes first) and <stem>_instances.tif (one id per object).\n"
        "zarr / OME-Zarr inputs are predicted lazily, chunk by chunk with the model's context "
        "as halo (the result equals the in-memory prediction exactly), and written to "
        "<stem>_labels.zarr / .ome.zarr. --workers or --scheduler run the chunks on a "
        "dask.distributed cluster. Inputs are never overwritten; existing outputs only with "
        "--overwrite.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs, zarr")
    _add_model_source(p)
    p.add_argument("--out", required=True, metavar="FOLDER", help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument(
        "--format",
        choices=("tif", "png"),
        default="tif",
        help="file type of <stem>_labels for non-zarr inputs (png: 2D only)",
    )
    p.add_argument("--probabilities", action="store_true", help="also write <stem>_probabilities")
    p.add_argument(
        "--instances",
        action="store_true",
        help="also write <stem>_instances.tif: objects of --object-class split by watershed "
        "(not for zarr inputs)",
    )
    p.add_argument(
        "--object-class",
        type=int,
        default=None,
        metavar="K",
        help="class channel (1-based) holding the objects for --instances; default 2 (cell "
        "of an instances model, or the second class)",
    )
    p.add_argument("--threshold", type=float, default=0.5, help="--instances: p threshold")
    p.add_argument("--min-size", type=int, default=10, help="--instances: smallest object (px)")
    p.add_argument("--no-split", action="store_true", help="--instances: no watershed split")
    _add_inference(p)
    p.add_argument(
        "--chunk-size",
        type=int,
        default=None,
        metavar="PX",
        help="zarr/dask: output chunk side (rounded to the model's grid); default the "
        "input's chunk side",
    )
    p.add_argument(
        "--stats",
        choices=("plane", "global"),
        default="plane",
        help="zarr/dask: percentile normalisation per plane (as in memory) or over the whole "
        "volume",
    )
    cl = p.add_mutually_exclusive_group()
    cl.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running dask scheduler (e.g. tcp://host:8786) to run chunks on",
    )
    cl.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="start a local dask cluster with N worker processes for the chunks",
    )
    p.add_argument(
        "--threads-per-worker", type=int, default=1, help="threads of each --workers process"
    )
    _add_common(p)
    p.set_defaults(func=cmd_predict)

    # ---- evaluate
    p = sub.add_parser(
        "evaluate",
        formatter_class=_Formatter,
        help="score predictions against ground-truth labels",
        description="Compare segmentations with ground truth: pixel error, IoU per class, "
        "adapted Rand error and (for instances) object precision / recall / F1.\n\n"
        "Either give --predictions (files written by `predict`, paired with the ground truth "
        "by name: x_labels.tif <-> x.tif) or a model with --images to predict first.\n"
        "kind semantic: class images; with two classes the Rand error is computed on the "
        "connected components of the foreground class (the ISBI 2012 protocol).\n"
        "kind instances: object id images (0 = background).\n\n"
        "Predicted and true values must mean the same classes: `predict` writes a dense "
        "model's classes back with the values it was trained on (e.g. 0/255).",
    )
    p.add_argument(
        "--labels", nargs="+", required=True, metavar="PATH", help="ground-truth label files"
    )
    p.add_argument("--predictions", nargs="+", metavar="PATH", help="predicted label files")
    _add_model_source(p, required=False)
    p.add_argument("--images", nargs="+", metavar="PATH", help="images to predict (with a model)")
    p.add_argument(
        "--kind",
        choices=("auto", "semantic", "instances"),
        default="auto",
        help="what the label images hold; auto: instances for *_instances files or an "
        "instances model, else semantic",
    )
    p.add_argument(
        "--foreground",
        type=int,
        default=None,
        metavar="VALUE",
        help="semantic: the value of the object class for the Rand error (default: the larger "
        "of two values)",
    )
    p.add_argument(
        "--iou-threshold", type=float, default=0.5, help="instances: IoU for a matched object"
    )
    p.add_argument("--json", metavar="FILE", help="also write all scores to this JSON file")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    _add_inference(p)
    p.add_argument("--threshold", type=float, default=0.5, help="model + instances: threshold")
    p.add_argument("--min-size", type=int, default=10, help="model + instances: smallest object")
    _add_common(p)
    p.set_defaults(func=cmd_evaluate)

    # ---- info
    p = sub.add_parser(
        "info",
        formatter_class=_Formatter,
        help="what a model file (or bundled model) holds",
        description="Describe a model: architecture and size arithmetic (context, valid tile "
        "sizes), classes, normalisation and training history. Without MODEL, list the "
        "bundled models.",
    )
    p.add_argument("model", nargs="?", metavar="MODEL", help="a model file or bundled name")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    _add_common(p)
    p.set_defaults(func=cmd_info)

    # ---- gui
    p = sub.add_parser(
        "gui",
        formatter_class=_Formatter,
        help="open napari with the U-Net widget",
        description="Open napari with the U-Net dock widget, optionally with the nuclei "
        "sample (image, scribbles, instances) and/or your images.",
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="images to open in napari")
    p.add_argument("--sample", action="store_true", help="open the nuclei sample data")
    _add_common(p)
    p.set_defaults(func=cmd_gui)
    return parser


# ---------------------------------------------------------------------------- helpers
def _load_model(args: argparse.Namespace, device: str = "cpu") -> Any:
    from .checkpoint import load_model

    if getattr(args, "pretrained", None):
        from .pretrained import load_pretrained

        return load_pretrained(args.pretrained, device=device)
    path = Path(args.model)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model file")
    return load_model(path, device=device)


def _looks_rgb(image: Any, path: Path) -> bool:
    """An (H, W, 3|4) colour image: a colour PNG / JPEG or an RGB(A) TIFF."""
    from .io import PLAIN_SUFFIXES, TIFF_SUFFIXES

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

    from .data import InputError

    if channel_axis is not None:
        return image, channel_axis
    if _looks_rgb(image, path):
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


def _file_error(path: Path, err: Exception) -> Exception:
    """Prefix an error message with the file it is about (once)."""
    from .data import InputError

    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if str(path) in text or path.name in text:
        return InputError(text)
    return InputError(f"{path}: {text}")


def _label_lut(model: Any) -> Any:
    """Class channel k -> the label value written (label_values of dense models, else k+1)."""
    import numpy as np

    values = model.metadata.get("label_values")
    if values is None or len(values) != model.n_classes:
        return None
    values = np.asarray(values, dtype=np.int64)
    dtype = np.uint8 if values.max() < 256 else np.uint16 if values.max() < 65536 else np.int64
    return values.astype(dtype)


def _start_client(args: argparse.Namespace) -> tuple[Any, list[Any]]:
    """A dask.distributed Client for --scheduler / --workers (else None) and what to close."""
    if not (args.scheduler or args.workers):
        return None, []
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        from .data import InputError

        raise InputError(
            "--scheduler/--workers need dask.distributed: pip install 'napari-unet-explorer[dask]'"
        ) from err
    if args.scheduler:
        client = Client(args.scheduler, timeout="20s")
        info(f"connected to the dask scheduler at {args.scheduler}", args)
        return client, [client]
    if args.workers < 1:
        from .data import InputError

        raise InputError("--workers must be >= 1")
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        processes=True,
        dashboard_address=None,
    )
    client = Client(cluster)
    info(f"started a local dask cluster: {args.workers} workers", args)
    return client, [client, cluster]


# ---------------------------------------------------------------------------- train
def cmd_train(args: argparse.Namespace) -> int:
    import numpy as np

    from .checkpoint import save_model
    from .data import InputError, classes_in, prepare_sample
    from .io import check_output, expand_paths, pair_files, read_image, read_labels
    from .training import TrainConfig, train

    images = expand_paths(args.images, what="image")
    labels = expand_paths(args.labels, what="label")
    pairs = pair_files(images, labels)
    out = check_output(
        args.out,
        overwrite=args.overwrite,
        inputs=[p for pair in pairs for p in pair],
    )
    if args.from_model and Path(args.from_model).resolve() == out.resolve():
        info(f"{out} will be replaced by the fine-tuned model (--overwrite)", args)
    if args.weight_map and args.mode != "instances":
        raise InputError("--weight-map needs --mode instances (it is built from cell ids)")
    config = TrainConfig(
        steps=args.steps,
        learning_rate=args.lr,
        optimizer=args.optimizer,
        schedule=args.schedule,
        batch_size=args.batch_size,
        tile_size=args.tile_size,
        augment=not args.no_augment,
        elastic=not args.no_elastic,
        seed=args.seed,
        device=args.device,
    )
    config.validate()

    # ---- read everything first: a bad file fails before any training
    raw: list[tuple[Path, Any, Any]] = []
    for image_path, label_path in pairs:
        image = np.asarray(read_image(image_path, lazy=False))
        lab = read_labels(label_path)
        raw.append((image_path, image, lab))
        if lab.ndim < 2:
            raise InputError(f"{label_path}: labels must be 2D or a stack, got {lab.shape}")
        axis = args.channel_axis
        if axis is None and _looks_rgb(image, image_path):
            axis = -1
        spatial = _spatial_shape(image, axis)
        if tuple(lab.shape) != spatial:
            raise InputError(
                f"{label_path}: labels shape {tuple(lab.shape)} does not match the image "
                f"{image_path} ({spatial})"
            )
    label_values = None
    if args.mode == "dense":
        label_values = sorted(set().union(*(np.unique(lab).tolist() for _, _, lab in raw)))
        if len(label_values) < 2:
            raise InputError(
                f"dense labels need at least two values, found only {label_values} in all files"
            )
        lut = {v: i + 1 for i, v in enumerate(label_values)}
        raw = [(p, img, _map_values(lab, lut)) for p, img, lab in raw]
    mode = "instances" if args.mode == "instances" else "scribbles"
    n_classes = 2 if mode == "instances" else max(classes_in(lab, mode) for _, _, lab in raw)
    if args.mode == "scribbles":
        used = set().union(*(np.unique(lab).tolist() for _, _, lab in raw)) - {0}
        if n_classes > 8 and len(used) <= n_classes // 2:
            raise InputError(
                f"the labels use values {sorted(used)[:6]}: in scribbles mode value c is class "
                f"c, which would make {n_classes} classes; for masks such as 0/255 use "
                "--mode dense, for cell ids --mode instances"
            )

    # ---- the model
    colour = [_looks_rgb(img, p) and args.channel_axis is None for p, img, _ in raw]
    if args.from_model or args.pretrained:
        model = _load_model(argparse.Namespace(model=args.from_model, pretrained=args.pretrained))
        source = f"fine-tuned from {args.from_model or 'bundled:' + args.pretrained}"
        if model.n_classes < n_classes:
            info(
                f"the model has {model.n_classes} classes, the labels {n_classes}: "
                "replacing its output layer",
                args,
            )
            model.replace_head(n_classes)
    else:
        from .presets import DEFAULT_PRESET, build_model

        if args.channel_axis is not None:
            in_channels = int(raw[0][1].shape[args.channel_axis])
        elif any(colour) and not args.grey:
            if not all(colour):
                raise InputError(
                    "some images are colour and some grey: pass --grey to train on grey"
                )
            in_channels = 3
        else:
            in_channels = 1
        preset = args.preset or DEFAULT_PRESET
        model = build_model(preset, in_channels, n_classes, padding=args.padding)
        source = f"new {preset} U-Net"
    model.metadata["source"] = source
    if args.mode == "dense":
        model.metadata["label_values"] = [int(v) for v in label_values]  # type: ignore[union-attr]
        names = args.class_names or [f"value {v}" for v in label_values]  # type: ignore[union-attr]
    else:
        model.metadata.pop("label_values", None)
        names = args.class_names
    if names is not None and len(names) != model.n_classes:
        raise InputError(
            f"{len(names)} class names for {model.n_classes} classes: {', '.join(names)}"
        )
    if names is not None:
        model.metadata["class_names"] = list(names)  # train() records the rest

    # ---- samples: one per plane
    samples = []
    for path, image, lab in raw:
        img, axis = model_input(image, path, model.in_channels, args.channel_axis, args.grey)
        spatial = _spatial_shape(img, axis)
        if tuple(lab.shape) != spatial:
            raise InputError(
                f"{path}: labels shape {tuple(lab.shape)} does not match the image's "
                f"{spatial} (image shape {tuple(np.shape(image))})"
            )
        planes = list(np.ndindex(*spatial[:-2]))
        for index in planes:
            plane_img = _plane(img, axis, index)
            plane_lab = lab[index]
            if not plane_lab.any():
                continue  # an unannotated plane teaches nothing
            name = path.name + (f"[{','.join(map(str, index))}]" if index else "")
            try:
                samples.append(
                    prepare_sample(
                        plane_img,
                        plane_lab,
                        mode=mode,
                        in_channels=model.in_channels,
                        channel_axis=None if axis is None else -1,
                        normalization=model.metadata.get("normalization"),
                        use_weight_map=args.weight_map,
                        w0=args.w0,
                        sigma=args.sigma,
                        class_balance=args.class_balance,
                        name=name,
                    )
                )
            except (InputError, ValueError) as err:
                raise _file_error(path, err) from err
    if not samples:
        raise InputError("no annotated pixels in any label file")
    n_px = sum(s.n_annotated for s in samples)
    info(
        f"training a {model.depth}-level U-Net ({model.base_channels} channels at the top, "
        f"{model.n_classes} classes, {mode}) on {len(samples)} image plane(s), "
        f"{n_px} annotated pixels",
        args,
    )

    bar = ProgressBar("train", enabled=not args.quiet)
    last = None
    steps = train(model, samples, config, description=args.description)
    try:
        for progress in steps:
            last = progress
            bar.update(
                progress.step,
                progress.steps,
                f"loss {progress.loss:.4f}  {progress.steps_per_second:.2f} steps/s  "
                f"eta {format_seconds(progress.eta)}",
            )
    except KeyboardInterrupt:
        steps.close()
        if last is None:
            raise
        save_model(out, model, overwrite=True)
        info(f"interrupted at step {last.step}: saved the model trained so far to {out}", args)
        return 130
    save_model(out, model, overwrite=True)
    if last is not None:
        bar.suffix = f"{last.step} steps, final loss {last.loss:.4f}"
    bar.close(f"saved {out}")
    if last is not None:
        print(f"{out}: {last.step} steps, final loss {last.loss:.4f}")
    return 0


def _map_values(labels: Any, lut: dict[int, int]) -> Any:
    import numpy as np

    keys = np.array(sorted(lut), dtype=np.int64)
    idx = np.searchsorted(keys, labels.astype(np.int64))
    return np.asarray([lut[k] for k in keys], dtype=np.int64)[idx]


def _spatial_shape(image: Any, channel_axis: int | None) -> tuple[int, ...]:
    shape = list(image.shape)
    if channel_axis is not None:
        del shape[channel_axis % image.ndim]
    return tuple(shape)


def _plane(image: Any, channel_axis: int | None, index: tuple[int, ...]) -> Any:
    """Plane ``index`` of the leading axes, channels last if the image has channels."""
    import numpy as np

    if channel_axis is None:
        return image[index]
    moved = np.moveaxis(image, channel_axis % image.ndim, -1)
    return moved[index]


# ---------------------------------------------------------------------------- predict
def _output_paths(
    inputs: Sequence[Path], out: Path, args: argparse.Namespace
) -> list[dict[str, Path]]:
    from .data import InputError
    from .io import is_zarr, open_zarr, stem

    plans: list[dict[str, Path]] = []
    seen: dict[Path, Path] = {}
    for path in inputs:
        s = stem(path)
        plan: dict[str, Path] = {}
        if is_zarr(path):
            ext = ".ome.zarr" if open_zarr(path).ome else ".zarr"
            plan["labels"] = out / f"{s}_labels{ext}"
            if args.probabilities:
                plan["probabilities"] = out / f"{s}_probabilities{ext}"
            if args.instances:
                raise InputError(
                    f"{path}: --instances is not available for zarr inputs (objects can span "
                    "chunks); predict the labels, then split objects in napari"
                )
        else:
            plan["labels"] = out / f"{s}_labels.{args.format}"
            if args.probabilities:
                plan["probabilities"] = out / f"{s}_probabilities.tif"
            if args.instances:
                plan["instances"] = out / f"{s}_instances.tif"
        for target in plan.values():
            if target in seen:
                raise InputError(
                    f"{path} and {seen[target]} would both be written to {target}: rename one"
                )
            seen[target] = path
        plan["input"] = path
        plans.append(plan)
    return plans


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .data import InputError
    from .io import check_output, expand_paths, is_zarr, read_image

    model = _load_model(args)
    inputs = expand_paths(args.inputs, skip_suffixes=OUTPUT_SUFFIXES)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if any(out.resolve() == p.resolve() for p in inputs):
        raise InputError(f"{out}: refusing to write into an input")
    plans = _output_paths(inputs, out, args)
    for plan in plans:  # check every output before anything is computed
        for key, target in plan.items():
            if key != "input":
                check_output(target, overwrite=args.overwrite, inputs=inputs)
    if args.instances and model.n_classes < 2:
        raise InputError("--instances needs a model with at least two classes")
    object_class = (args.object_class or 2) - 1
    if args.instances and not 0 <= object_class < model.n_classes:
        raise InputError(f"--object-class must be between 1 and {model.n_classes}")
    lut = _label_lut(model)
    out.mkdir(parents=True, exist_ok=True)
    client, to_close = _start_client(args)
    try:
        for i, plan in enumerate(plans, 1):
            path = plan["input"]
            label = f"[{i}/{len(plans)}] {path.name}"
            bar = ProgressBar(label, enabled=not args.quiet)
            try:
                if is_zarr(path):
                    _predict_zarr_file(model, plan, args, lut, bar, client)
                else:
                    image = np.asarray(read_image(path, lazy=False))
                    _predict_file(model, image, plan, args, lut, object_class, bar, client)
            except (InputError, ValueError) as err:
                raise _file_error(path, err) from err
            written = ", ".join(str(p) for k, p in plan.items() if k != "input")
            bar.close(f"wrote {written}")
    finally:
        for obj in to_close:
            obj.close()
    print(f"predicted {len(plans)} image(s) into {out}")
    return 0


def _predict_file(
    model: Any,
    image: Any,
    plan: dict[str, Path],
    args: argparse.Namespace,
    lut: Any,
    object_class: int,
    bar: ProgressBar,
    client: Any,
) -> None:
    import numpy as np

    from .io import write_image, write_labels
    from .tiling import predict_tiled

    path = plan["input"]
    img, axis = model_input(image, path, model.in_channels, args.channel_axis)
    need_probs = "probabilities" in plan or "instances" in plan
    if client is not None:
        from .distributed import compute, predict_dask

        pred = predict_dask(
            model,
            img,
            channel_axis=axis,
            tile_size=args.tile_size,
            chunk_size=args.chunk_size,
            precision=args.precision,
            device=None if args.device == "auto" else args.device,
            batch_size=args.batch_size,
            client=client,
        )
        targets = [pred.labels] + ([pred.probabilities] if need_probs else [])
        results = compute(*targets, progress=bar, client=client)
        labels = results[0]
        probs = results[1] if need_probs else None
    else:
        result = predict_tiled(
            model,
            img,
            channel_axis=axis,
            tile_size=args.tile_size,
            batch_size=args.batch_size,
            device=args.device,
            precision=args.precision,
            return_logits=False,
            return_probabilities=need_probs,
            progress=bar,
        )
        labels, probs = result.labels, result.probabilities
    if lut is not None:
        labels = lut[labels.astype(np.int64) - 1]
    write_labels(plan["labels"], labels, overwrite=args.overwrite)
    if "probabilities" in plan:
        write_image(plan["probabilities"], probs, overwrite=args.overwrite)
    if "instances" in plan:
        from .instances import instances_from_prediction

        inst = instances_from_prediction(
            probs[object_class],
            threshold=args.threshold,
            split_touching=not args.no_split,
            min_size=args.min_size,
        )
        write_labels(plan["instances"], inst, overwrite=args.overwrite)


def _predict_zarr_file(
    model: Any,
    plan: dict[str, Path],
    args: argparse.Namespace,
    lut: Any,
    bar: ProgressBar,
    client: Any,
) -> None:
    from .distributed import predict_zarr
    from .io import open_zarr

    path = plan["input"]
    predict_zarr(
        model,
        path,
        plan["labels"],
        probabilities_path=plan.get("probabilities"),
        channel_axis=args.channel_axis,
        ome=open_zarr(path).ome,
        overwrite=args.overwrite,
        progress=bar if not args.quiet else None,
        client=client,
        tile_size=args.tile_size,
        chunk_size=args.chunk_size,
        stats=args.stats,
        precision=args.precision,
        device=None if args.device == "auto" else args.device,
        batch_size=args.batch_size,
        label_values=None if lut is None else [int(v) for v in lut],
    )


# ---------------------------------------------------------------------------- evaluate
def _strip_output_suffix(name: str) -> str:
    for suffix in OUTPUT_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _pair_by_stem(preds: Sequence[Path], gts: Sequence[Path]) -> list[tuple[Path, Path]]:
    from .data import InputError
    from .io import pair_files, stem

    by_stem = {stem(g): g for g in gts}
    keys = [_strip_output_suffix(stem(p)) for p in preds]
    if all(k in by_stem for k in keys) and len(set(keys)) == len(keys):
        return [(p, by_stem[k]) for p, k in zip(preds, keys, strict=True)]
    if len(preds) != len(gts):
        raise InputError(
            f"{len(preds)} prediction(s) but {len(gts)} ground-truth file(s), and the names do "
            "not match"
        )
    return pair_files(list(preds), list(gts))


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .data import InputError
    from .io import check_output, expand_paths, read_image, read_labels, stem

    if bool(args.predictions) == bool(args.model or args.pretrained):
        raise InputError("give either --predictions or a model (--model/--pretrained) + --images")
    if args.json:
        check_output(args.json, overwrite=args.overwrite)
    gts = expand_paths(args.labels, what="label")
    model = None
    if args.predictions:
        preds = expand_paths(args.predictions, what="prediction")
        kind = args.kind
        if kind == "auto":
            semantic = any(stem(p).endswith("_labels") for p in preds)
            instances = any(stem(p).endswith("_instances") for p in preds)
            kind = "instances" if instances and not semantic else "semantic"
        # a folder written by `predict` holds several outputs per image: keep the right one
        wanted = "_instances" if kind == "instances" else "_labels"
        if any(stem(p).endswith(wanted) for p in preds):
            preds = [p for p in preds if stem(p).endswith(wanted)]
        preds = [p for p in preds if not stem(p).endswith("_probabilities")]
        pairs = _pair_by_stem(preds, gts)
    else:
        if not args.images:
            raise InputError("--images is needed to evaluate a model")
        model = _load_model(args)
        from .io import pair_files

        pairs = pair_files(expand_paths(args.images), gts)
        kind = args.kind
        if kind == "auto":
            kind = "instances" if model.metadata.get("label_mode") == "instances" else "semantic"

    rows: list[dict[str, Any]] = []
    bar = ProgressBar("evaluate", enabled=not args.quiet)
    for i, (pred_path, gt_path) in enumerate(pairs):
        gt = read_labels(gt_path)
        try:
            if model is None:
                pred = read_labels(pred_path)
            else:
                pred = _predict_for_evaluation(
                    model, np.asarray(read_image(pred_path, lazy=False)), pred_path, kind, args
                )
            scores = _scores(pred, gt, kind, args)
        except (InputError, ValueError) as err:
            raise _file_error(pred_path, err) from err
        rows.append({"prediction": str(pred_path), "ground_truth": str(gt_path), **scores})
        bar.update(i + 1, len(pairs))
    bar.close()
    summary = _mean_scores(rows)
    _print_table(rows, summary, kind)
    if args.json:
        from .io import _atomic

        path = Path(args.json)
        text = json.dumps({"kind": kind, "mean": summary, "images": rows}, indent=2)
        with _atomic(path) as tmp:
            Path(tmp).write_text(text + "\n", encoding="utf-8")
        info(f"wrote {path}", args)
    return 0


def _predict_for_evaluation(
    model: Any, image: Any, path: Path, kind: str, args: argparse.Namespace
) -> Any:
    import numpy as np

    from .tiling import predict_tiled

    img, axis = model_input(image, path, model.in_channels, args.channel_axis)
    result = predict_tiled(
        model,
        img,
        channel_axis=axis,
        tile_size=args.tile_size,
        batch_size=args.batch_size,
        device=args.device,
        precision=args.precision,
        return_logits=False,
        return_probabilities=kind == "instances",
    )
    if kind == "instances":
        from .instances import instances_from_prediction

        return instances_from_prediction(
            result.probabilities[min(1, model.n_classes - 1)],
            threshold=args.threshold,
            min_size=args.min_size,
        )
    lut = _label_lut(model)
    labels = result.labels
    return labels if lut is None else lut[labels.astype(np.int64) - 1]


def _scores(pred: Any, gt: Any, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from . import metrics

    if pred.shape != gt.shape:
        raise ValueError(
            f"prediction shape {tuple(pred.shape)} differs from ground truth {tuple(gt.shape)}"
        )
    if kind == "instances":
        rand = metrics.adapted_rand_error(pred, gt) if gt.any() else float("nan")
        obj = metrics.object_scores(pred, gt, args.iou_threshold)
        return {
            "pixel_error": metrics.binary_pixel_error(pred, gt),
            "rand_error": rand,
            "precision": obj["precision"],
            "recall": obj["recall"],
            "f1": obj["f1"],
            "n_pred": obj["n_pred"],
            "n_true": obj["n_true"],
        }
    out: dict[str, Any] = {
        "pixel_error": metrics.pixel_error(pred, gt),
        "iou": {str(k): v for k, v in metrics.iou_per_class(pred, gt).items()},
    }
    values = np.union1d(np.unique(pred), np.unique(gt))
    fg = args.foreground
    if fg is None and len(values) == 2:
        fg = int(values.max())
    if fg is not None:
        isbi = metrics.isbi_scores(pred == fg, gt == fg)
        out["rand_error"] = isbi["rand_error"]
    return out


def _mean_scores(rows: list[dict[str, Any]]) -> dict[str, float]:
    import numpy as np

    keys = [k for k, v in rows[0].items() if isinstance(v, int | float)]
    summary = {}
    for k in keys:
        vals = np.array([r[k] for r in rows if isinstance(r.get(k), int | float)], float)
        summary[k] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
    ious: dict[str, list[float]] = {}
    for r in rows:
        for c, v in r.get("iou", {}).items():
            ious.setdefault(c, []).append(v)
    for c, vals in ious.items():
        arr = np.array(vals, float)
        summary[f"iou[{c}]"] = float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")
    return summary


def _print_table(rows: list[dict[str, Any]], summary: dict[str, float], kind: str) -> None:
    cols = [k for k in summary if not k.startswith("iou[") and k not in ("n_pred", "n_true")]
    cols += [k for k in summary if k.startswith("iou[")]
    width = max(12, *(len(Path(r["prediction"]).name) for r in rows))
    print(f"{'image':<{width}}  " + "  ".join(f"{c:>12}" for c in cols))
    for r in rows:
        vals = []
        for c in cols:
            v = r.get("iou", {}).get(c[4:-1]) if c.startswith("iou[") else r.get(c)
            vals.append(f"{v:>12.4f}" if isinstance(v, int | float) else f"{'-':>12}")
        print(f"{Path(r['prediction']).name:<{width}}  " + "  ".join(vals))
    print(f"{'mean':<{width}}  " + "  ".join(f"{summary[c]:>12.4f}" for c in cols))


# ---------------------------------------------------------------------------- info
def describe_model(model: Any, path: Path | None = None) -> dict[str, Any]:
    """A JSON-able description of a model: architecture, size arithmetic, classes, history."""
    from .tiling import tile_geometry

    cfg = model.config()
    n_params = sum(p.numel() for p in model.parameters())
    tile_in, tile_out, halo, step = tile_geometry(model, None)
    meta = dict(model.metadata)
    desc: dict[str, Any] = {
        "file": str(path) if path else None,
        "file_size_bytes": path.stat().st_size if path and path.is_file() else None,
        "architecture": cfg,
        "parameters": int(n_params),
        "size": {
            "context_per_side_px": int(model.margin),
            "size_multiple": int(model.size_multiple),
            "min_input_px": int(model.min_input_size),
            "min_output_px": int(model.output_size(model.min_input_size)),
            "default_tile": {"input": tile_in, "output": tile_out, "halo": halo, "step": step},
        },
        "classes": meta.pop("class_names", None),
        "label_values": meta.pop("label_values", None),
        "label_mode": meta.pop("label_mode", None),
        "normalization": meta.pop("normalization", None),
        "training": meta.pop("training", []),
        "other_metadata": meta,
    }
    if model.padding == "valid":
        n = model.valid_input_size(572)
        desc["size"]["example"] = {"input": n, "output": model.output_size(n)}
    return desc


def cmd_info(args: argparse.Namespace) -> int:
    from .pretrained import list_pretrained, model_card

    if not args.model:
        names = list_pretrained()
        if args.json:
            print(json.dumps({"bundled": names}))
        elif names:
            print("bundled models (use with --pretrained NAME, or `napari-unet info NAME`):")
            for name in names:
                card = model_card(name).strip().splitlines()
                first = next((ln.strip("# ").strip() for ln in card if ln.strip()), "")
                print(f"  {name:<20} {first}")
        else:
            print("no bundled models in this installation")
        return 0
    path = Path(args.model)
    if path.exists():
        from .checkpoint import load_model

        model = load_model(path)
    elif args.model in list_pretrained():
        from .pretrained import load_pretrained, pretrained_path

        model = load_pretrained(args.model)
        path = pretrained_path(args.model)
    else:
        raise FileNotFoundError(
            f"{args.model}: no such model file or bundled model "
            f"(bundled: {', '.join(list_pretrained()) or 'none'})"
        )
    desc = describe_model(model, path)
    if args.json:
        print(json.dumps(desc, indent=2, default=str))
        return 0
    _print_description(desc)
    return 0


def _print_description(d: dict[str, Any]) -> None:
    a, s = d["architecture"], d["size"]
    size = f" ({d['file_size_bytes'] / 1e6:.1f} MB)" if d.get("file_size_bytes") else ""
    print(f"model:          {d['file']}{size}")
    print(
        f"architecture:   U-Net, depth {a['depth']} (2x2 max-pools), {a['base_channels']} "
        f"channels at the top (x2 per level), {a['padding']} convolutions, "
        f"batch norm {'on' if a['batch_norm'] else 'off'}, dropout {a['dropout']}"
    )
    print(f"                {a['in_channels']} input channel(s) -> {a['n_classes']} classes")
    print(f"parameters:     {d['parameters']:,} ({d['parameters'] * 4 / 1e6:.1f} MB as float32)")
    t = s["default_tile"]
    if a["padding"] == "valid":
        context = f"context {s['context_per_side_px']} px per side (output = input - 2 x context)"
    else:
        context = f"zero-padded convolutions; tiles overlap by {t['halo']} px per side"
    print(
        f"size:           {context}; tiles on a {s['size_multiple']} px grid; smallest input "
        f"{s['min_input_px']} px -> output {s['min_output_px']} px"
    )
    if "example" in s:
        e = s["example"]
        print(f"                input tile {e['input']} px -> output tile {e['output']} px")
    print(
        f"                default prediction tile: input {t['input']} -> output {t['output']} "
        f"px, step {t['step']}"
    )
    classes = d.get("classes") or []
    values = d.get("label_values") or list(range(1, len(classes) + 1))
    if classes:
        pairs = ", ".join(f"{v} = {n}" for v, n in zip(values, classes, strict=False))
        print(f"classes:        {pairs} (label value = class)")
    mode = d.get("label_mode") or "unknown"
    if d.get("label_values") is not None:
        mode = "dense (class k is written as label value k above)"
    print(f"label mode:     {mode}")
    print(f"normalisation:  {json.dumps(d.get('normalization'))}")
    history = d.get("training") or []
    if not history:
        print("training:       none recorded")
    for i, run in enumerate(history, 1):
        cfg = run.get("config", {})
        loss = run.get("final_loss")
        print(
            f"training {i}:     {run.get('date', '?')}: {run.get('steps_done')} steps "
            f"({cfg.get('optimizer')}, lr {cfg.get('learning_rate')}, batch "
            f"{cfg.get('batch_size')} x {cfg.get('tile_size')} px), "
            f"{len(run.get('images', []))} image(s), {run.get('annotated_pixels')} annotated px"
            + (f", final loss {loss:.4f}" if isinstance(loss, int | float) else "")
        )
        if run.get("description"):
            print(f"                {run['description']}")
    for key, value in (d.get("other_metadata") or {}).items():
        print(f"{key + ':':<16}{value}")


# ---------------------------------------------------------------------------- gui
def cmd_gui(args: argparse.Namespace) -> int:
    from .data import InputError

    for image in args.images:
        if not Path(image).exists():
            raise FileNotFoundError(f"{image}: no such file or folder")
    try:
        import napari
    except ImportError as err:
        raise InputError("the GUI needs napari: pip install 'napari-unet-explorer[gui]'") from err
    viewer = napari.Viewer()
    if args.sample:
        viewer.open_sample("napari-unet-explorer", "nuclei")
    for image in args.images:
        viewer.open(image)
    viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    napari.run()
    return 0


# ---------------------------------------------------------------------------- main
def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) if str(err).strip() else ""
    known = isinstance(err, ValueError | OSError)
    if not known or not text:
        text = f"{type(err).__name__}: {text}" if text else type(err).__name__
        text += " (run with --debug for details)"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-unet`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (status 2)
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every failure becomes one line
        if getattr(args, "debug", False) or os.environ.get("NAPARI_UNET_DEBUG"):
            raise
        print(f"{PROG}: error: {_one_line(err)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
