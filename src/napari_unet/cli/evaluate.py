"""``napari-unet evaluate``: score predictions (or a model's) against ground-truth labels."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import file_error
from .models import instance_options, load_model_arg, model_input, predict_options
from .options import (
    add_common,
    add_inference,
    add_model_source,
    add_overwrite,
    add_paths,
    new_command,
)
from .predict import OUTPUT_SUFFIXES
from .progress import ProgressBar, status


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(
        sub,
        "evaluate",
        help="score predictions against ground-truth labels",
        description="Compare segmentations with ground truth: pixel error, IoU per class, "
        "adapted Rand error and (for instances) object precision / recall / F1.\n\n"
        "Either give --predictions (files written by `predict`, paired with the ground truth "
        "by name: x_labels.tif <-> x.tif) or a model with --images to predict first.\n"
        "kind semantic: class images; with two classes the Rand error is computed on the "
        "connected components of the foreground class (the ISBI 2012 protocol), and "
        "challenge_pixel_error is the ISBI 2012 challenge's pixel error, 1 - F-score of "
        "the foreground class (pixel_error is the fraction of pixels that differ).\n"
        "kind instances: object id images (0 = background).\n\n"
        "Predicted and true values must mean the same classes: `predict` writes a dense "
        "model's classes back with the values it was trained on (e.g. 0/255).",
    )
    add_paths(p, "--labels", "ground-truth label files", required=True)
    add_paths(p, "--predictions", "predicted label files")
    add_model_source(p, required=False)
    add_paths(p, "--images", "images to predict (with a model)")
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
    add_overwrite(p, "replace an existing --json file")
    add_inference(p)
    p.add_argument("--threshold", type=float, default=0.5, help="model + instances: threshold")
    p.add_argument("--min-size", type=int, default=10, help="model + instances: smallest object")
    p.add_argument(
        "--seed-threshold",
        type=float,
        default=None,
        metavar="P",
        help="model + instances: watershed of p from seeds p > P (see predict)",
    )
    add_common(p, cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from ..io.images import check_output, expand_paths, read_image, read_labels, stem
    from ..unet.data import InputError

    if bool(args.predictions) == bool(args.model or args.pretrained):
        raise InputError("give either --predictions or a model (--model/--pretrained) + --images")
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
        scored = [p for p in preds if not stem(p).endswith(("_probabilities", "_entropy"))]
        if preds and not scored:
            raise InputError(
                "--predictions: only *_probabilities / *_entropy files given; evaluate scores "
                "label images (the *_labels or *_instances files predict writes)"
            )
        pairs = _pair_by_stem(scored, gts)
    else:
        if not args.images:
            raise InputError("--images is needed to evaluate a model")
        model = load_model_arg(args)
        from ..io.images import pair_files

        pairs = pair_files(expand_paths(args.images), gts, allow_unused_labels=True)
        kind = args.kind
        if kind == "auto":
            kind = "instances" if model.record.classes.label_mode == "instances" else "semantic"
    if args.json:  # never over an input, only over an earlier report
        inputs = [p for pair in pairs for p in pair] + ([args.model] if args.model else [])
        check_output(args.json, overwrite=args.overwrite, inputs=inputs, kind="json")

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
            raise file_error(pred_path, err) from err
        rows.append({"prediction": str(pred_path), "ground_truth": str(gt_path), **scores})
        bar.update(i + 1, len(pairs))
    bar.close()
    summary = _mean_scores(rows)
    _print_table(rows, summary)
    if args.json:
        from ..io.outputs import SOFTWARE
        from ..runtime.atomic import atomic_path

        path = Path(args.json)
        report = {"written_by": SOFTWARE, "kind": kind, "mean": summary, "images": rows}
        text = json.dumps(report, indent=2)
        with atomic_path(path, suffix=path.suffix) as tmp:
            Path(tmp).write_text(text + "\n", encoding="utf-8")
        status(f"wrote {path}", args)
    return 0


def _strip_output_suffix(name: str) -> str:
    for suffix in OUTPUT_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _pair_by_stem(preds: Sequence[Path], gts: Sequence[Path]) -> list[tuple[Path, Path]]:
    """Predictions with their ground truth, by name (x_labels.tif <-> x.png): never by order.
    Ground-truth files without a prediction are left out (a subset can be scored)."""
    from ..io.images import pair_files, stem

    return pair_files(
        list(preds),
        list(gts),
        key=lambda p: _strip_output_suffix(stem(p)),
        allow_unused_labels=True,
    )


def _predict_for_evaluation(
    model: Any, image: Any, path: Path, kind: str, args: argparse.Namespace
) -> Any:
    """What ``predict`` would write for ``image``: class values, or instance ids."""
    from ..workflow import segment

    img, axis = model_input(
        image, path, model.in_channels, args.channel_axis, note=lambda t: status(t, args)
    )
    split = instance_options(args) if kind == "instances" else None
    result = segment(model, img, axis, predict_options(args), instances=split)
    return result.instances if kind == "instances" else result.labels


def _scores(pred: Any, gt: Any, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    """The scores of one image (see the module ``metrics``)."""
    import numpy as np

    from .. import metrics
    from ..unet.data import InputError

    if pred.shape != gt.shape:
        raise ValueError(
            f"prediction shape {tuple(pred.shape)} differs from ground truth {tuple(gt.shape)}"
        )
    if kind == "instances":
        gt_ids = np.unique(gt[gt != 0])
        if len(gt_ids) == 1 and len(np.unique(pred[pred != 0])) > 1:
            # a binary mask (e.g. ISBI 0/255) holds one "object": score its cells instead
            gt = metrics.connected_components(gt != 0)
            if not getattr(args, "mask_note_shown", False):
                status(
                    "note: the ground truth is a mask (one object value): its 4-connected "
                    "components are scored as the objects",
                    args,
                )
                args.mask_note_shown = True
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
    pred_values, gt_values = np.unique(pred), np.unique(gt)
    if len(gt_values) > max(16, 4 * len(pred_values)):
        raise InputError(
            f"the ground truth holds {len(gt_values)} different values against "
            f"{len(pred_values)} predicted classes: object ids rather than classes? Score "
            "objects with --kind instances (and the *_instances file of `predict`)"
        )
    shared = np.intersect1d(pred_values, gt_values)
    if len(pred_values) > 1 and len(gt_values) > 1 and not shared.size:
        raise InputError(
            f"the predictions hold the values {_listed(pred_values)} and the ground truth "
            f"{_listed(gt_values)}: none in common, so they cannot mean the same classes. A "
            "model trained on instances predicts 1 = background, 2 = object: score it with "
            "--kind instances, or train with --mode dense on labels like these"
        )
    out: dict[str, Any] = {
        "pixel_error": metrics.pixel_error(pred, gt),
        "iou": {str(k): v for k, v in metrics.iou_per_class(pred, gt).items()},
    }
    values = np.union1d(pred_values, gt_values)
    fg = args.foreground
    if fg is None and len(values) == 2:
        fg = int(values.max())
    if fg is not None:
        isbi = metrics.isbi_scores(pred == fg, gt == fg)
        out["rand_error"] = isbi["rand_error"]
        # the challenge's definition, 1 - F-score of the object class (a binary proposal
        # has a single threshold)
        challenge = metrics.challenge_pixel_error((pred == fg).astype(np.float32), gt == fg)
        out["challenge_pixel_error"] = challenge["error_at_0.5"]
        out["challenge_counts"] = [challenge[k] for k in ("tp", "fp", "fn")]
    return out


def _listed(values: Any, most: int = 6) -> str:
    shown = ", ".join(str(v) for v in values[:most])
    return f"{{{shown}{', ...' if len(values) > most else ''}}}"


def _mean_scores(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The mean of each score over the images (NaNs left out), IoU class by class."""
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
    if all("challenge_counts" in r for r in rows):  # pooled over the images, as the challenge
        tp, fp, fn = np.sum([r["challenge_counts"] for r in rows], axis=0)
        total = 2 * tp + fp + fn
        summary["challenge_pixel_error"] = float((fp + fn) / total) if total else float("nan")
    return summary


def _print_table(rows: list[dict[str, Any]], summary: dict[str, float]) -> None:
    """The scores on stdout: one row per image, then the means."""
    cols = [k for k in summary if not k.startswith("iou[") and k not in ("n_pred", "n_true")]
    cols += [k for k in summary if k.startswith("iou[")]
    width = max(12, *(len(Path(r["prediction"]).name) for r in rows))
    n = {c: max(12, len(c)) for c in cols}  # column widths
    print(f"{'image':<{width}}  " + "  ".join(f"{c:>{n[c]}}" for c in cols))
    for r in rows:
        vals = []
        for c in cols:
            v = r.get("iou", {}).get(c[4:-1]) if c.startswith("iou[") else r.get(c)
            vals.append(f"{v:>{n[c]}.4f}" if isinstance(v, int | float) else f"{'-':>{n[c]}}")
        print(f"{Path(r['prediction']).name:<{width}}  " + "  ".join(vals))
    print(f"{'mean':<{width}}  " + "  ".join(f"{summary[c]:>{n[c]}.4f}" for c in cols))
