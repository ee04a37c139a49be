"""``napari-unet pixel``: the numbers behind one pixel, as the widget's pixel inspector
shows them (a_k(x), the softmax written out, l(x), w(x) term by term, the loss, the
receptive field), and optionally the gradient map over the receptive field."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from .options import add_channel_axis, add_common, add_device, add_model_source, new_command


def _pair(text: str) -> tuple[int, int]:
    try:
        row, col = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ROW,COLUMN, got {text!r}") from None
    return row, col


def _index(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a plane index such as 3 or 0,3, got {text!r}"
        ) from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(
        sub,
        "pixel",
        help="explain one pixel: a_k(x), p_k(x), w(x), loss, receptive field",
        description="Predict one plane of IMAGE and print the numbers behind pixel x = "
        "(ROW, COLUMN), as the widget's pixel inspector shows them: a_k(x), the softmax "
        "p_k(x) written out, the predicted class and, with --labels, l(x), w(x) = w_c(x) + "
        "the border term (by the model's recorded weight-map recipe) and the loss "
        "-w(x) log p_l(x)(x); then the receptive field of x.",
    )
    p.add_argument("image", metavar="IMAGE", help="an image file (TIFF, PNG, JPEG, zarr)")
    p.add_argument("--at", required=True, type=_pair, metavar="ROW,COLUMN", help="the pixel x")
    p.add_argument(
        "--plane", type=_index, default=(), metavar="INDEX", help="the plane of a stack (e.g. 3)"
    )
    add_model_source(p)
    p.add_argument("--labels", metavar="FILE", help="the annotation of IMAGE (same shape)")
    p.add_argument(
        "--mode",
        choices=("auto", "scribbles", "instances", "dense"),
        default="auto",
        help="how to read --labels (as `train` reads them)",
    )
    p.add_argument(
        "--weight-map",
        action="store_true",
        default=None,
        help="w(x) with the paper's border term (instances); default: the model's recorded "
        "recipe, as the widget adopts it",
    )
    p.add_argument("--w0", type=float, default=None, help="border weight w0 (default: recorded)")
    p.add_argument("--sigma", type=float, default=None, help="border width (default: recorded)")
    p.add_argument(
        "--class-balance",
        action="store_true",
        default=None,
        help="w_c by inverse class frequency (default: recorded)",
    )
    p.add_argument("--tta", action="store_true", help="a_k(x) averaged over the 8 flips/rotations")
    p.add_argument(
        "--gradient",
        metavar="FILE.tif",
        help="also write |d a_k(x) / d input| over the receptive field (k: the predicted class)",
    )
    add_channel_axis(p, "axis of the colour/channel dimension of IMAGE (e.g. -1)")
    add_device(p)
    p.add_argument("--json", action="store_true", help="print the numbers as JSON")
    add_common(p, cmd_pixel)


def cmd_pixel(args: argparse.Namespace) -> int:
    from ..io import read_image, read_labels
    from ..io.images import check_output
    from ..unet.data import InputError
    from ..workflow import PredictOptions, distinct_values, explain_pixel, interpret_labels
    from .models import load_model_arg, model_input

    path = Path(args.image)
    model = load_model_arg(args)
    image = np.asarray(read_image(path, lazy=False))
    img, axis = model_input(image, path, model.in_channels, args.channel_axis)
    plane, spatial = _plane(img, axis, args.plane, path)
    labels = plan = None
    if args.labels:
        full = np.asarray(read_labels(args.labels))
        if full.shape != spatial:
            raise InputError(
                f"{args.labels}: labels of shape {full.shape} do not match the image's "
                f"spatial shape {spatial}"
            )
        # the mode is read from the whole file, as `train` and the widget read it
        plan = interpret_labels(distinct_values([full]), args.mode, what=str(args.labels))
        labels = full[tuple(args.plane)]
    gradient_path = None
    if args.gradient:
        gradient_path = check_output(args.gradient, inputs=[path, args.labels or path])
        if gradient_path.suffix.lower() not in (".tif", ".tiff"):
            raise InputError(f"{gradient_path}: write the gradient map as .tif")
    explained = explain_pixel(
        model,
        plane,
        args.at,
        labels=labels,
        plan=plan,
        recipe=_recipe(model, args),
        index=tuple(args.plane),
        options=PredictOptions(device=args.device, tta=args.tta),
    )
    if args.json:
        print(json.dumps(_as_dict(explained), indent=2))
    else:
        print("\n".join(explained.lines(("plane",) * len(args.plane))))
    if gradient_path is not None:
        _write_gradient(model, plane, explained, gradient_path, args)
    return 0


def _plane(
    img: np.ndarray, axis: int | None, index: tuple[int, ...], path: Path
) -> tuple[np.ndarray, tuple[int, ...]]:
    """Plane ``index`` of the image as (C, H, W), and the image's spatial shape."""
    from ..unet.data import InputError

    first = img[..., None, :, :] if axis is None else np.moveaxis(img, axis % img.ndim, -3)
    lead = first.shape[:-3]
    if len(index) != len(lead) or any(not 0 <= i < n for i, n in zip(index, lead, strict=True)):
        what = f"a stack of {lead} planes: pass --plane" if lead else "one plane: drop --plane"
        raise InputError(f"{path}: plane {index or '()'} does not exist ({what})")
    spatial = (*lead, *first.shape[-2:])
    return np.ascontiguousarray(first[index], dtype=np.float32), spatial


def _recipe(model: Any, args: argparse.Namespace) -> Any:
    """The w(x) recipe: the model's recorded one (or the defaults), with the options given
    on the command line replacing its parts."""
    from dataclasses import replace

    from ..workflow import WeightRecipe

    recipe = WeightRecipe.recorded(model) or WeightRecipe()
    given = {
        "border": args.weight_map,
        "w0": args.w0,
        "sigma": args.sigma,
        "class_balance": args.class_balance,
    }
    recipe = replace(recipe, **{k: v for k, v in given.items() if v is not None})
    recipe.validate()
    return recipe


def _as_dict(explained: Any) -> dict[str, Any]:
    r = explained.report
    return {
        "position": list(r.position),
        "plane": list(r.plane),
        "classes": list(r.class_names),
        "a_k": [float(v) for v in r.logits],
        "p_k": [float(v) for v in r.probabilities],
        "predicted": r.predicted,
        "label": r.label,
        "w": r.weight,
        "w_c": r.class_weight,
        "border": r.border,
        "loss": r.loss,
        "receptive_field": {
            "rows": list(explained.field.rows),
            "cols": list(explained.field.cols),
        },
    }


def _write_gradient(model: Any, plane: np.ndarray, explained: Any, out: Path, args: Any) -> None:
    from ..io.images import write_image
    from ..runtime.devices import resolve_device
    from ..unet.data import normalize
    from ..unet.receptive_field import input_gradient
    from .progress import status

    normalized = normalize(plane, model.record.normalization_dict())
    k = explained.report.predicted - 1
    gradient, _ = input_gradient(
        model, normalized, explained.report.position, k, device=resolve_device(args.device)
    )
    write_image(out, gradient)
    (r0, _), (c0, _) = explained.field.rows, explained.field.cols
    status(f"wrote {out}: |d a_{k + 1}(x) / d input|, its pixel (0, 0) is ({r0}, {c0})", args)
