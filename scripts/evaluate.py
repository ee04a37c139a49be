"""Evaluate a nuclei model on the held-out DSB 2018 images (never seen in training).

    python scripts/evaluate.py nuclei                      # the bundled model
    python scripts/evaluate.py my_model.pt --json out.json

For every held-out image (split of :func:`napari_unet.pretrained.dsb_split`): overlap-tile
prediction, semantic labels = argmax, instances = connected components of p_nucleus > 0.5
(and, separately, a seeded watershed that splits touching nuclei), then
:mod:`napari_unet.metrics`: pixel error, IoU per class, adapted Rand error (on instances,
gt background excluded) and object precision / recall / F1 at IoU >= 0.5.
Totals: object counts are summed over images (micro F1), IoU is total intersection over
total union, pixel and Rand errors are means over images.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "dsb2018_nuclei"


def score_image(
    p_cell: np.ndarray, gt: np.ndarray, split_touching: bool, min_size: int = 10
) -> dict[str, Any]:
    """All metrics of one nucleus-probability map against instance labels (0 = background)."""
    from napari_unet import instances_from_prediction
    from napari_unet.metrics import adapted_rand_error, object_scores

    inst = instances_from_prediction(
        p_cell, threshold=0.5, split_touching=split_touching, min_size=min_size
    )
    fg_pred, fg_gt = p_cell > 0.5, gt > 0
    return {
        "inter": int(np.count_nonzero(fg_pred & fg_gt)),
        "union": int(np.count_nonzero(fg_pred | fg_gt)),
        "inter_bg": int(np.count_nonzero(~fg_pred & ~fg_gt)),
        "union_bg": int(np.count_nonzero(~fg_pred | ~fg_gt)),
        "pixel_error": float(np.mean(fg_pred != fg_gt)),
        "rand_error": float(adapted_rand_error(inst, gt)) if fg_gt.any() else float("nan"),
        "objects": object_scores(inst, gt, 0.5),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    tp = sum(r["objects"]["tp"] for r in rows)
    fp = sum(r["objects"]["fp"] for r in rows)
    fn = sum(r["objects"]["fn"] for r in rows)
    return {
        "images": len(rows),
        "object_f1": 2 * tp / max(2 * tp + fp + fn, 1),
        "object_precision": tp / max(tp + fp, 1),
        "object_recall": tp / max(tp + fn, 1),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "mean_image_f1": float(np.mean([r["objects"]["f1"] for r in rows])),
        "iou_nucleus": sum(r["inter"] for r in rows) / max(sum(r["union"] for r in rows), 1),
        "iou_background": sum(r["inter_bg"] for r in rows)
        / max(sum(r["union_bg"] for r in rows), 1),
        "pixel_error": float(np.mean([r["pixel_error"] for r in rows])),
        "rand_error": float(np.nanmean([r["rand_error"] for r in rows])),
    }


def evaluate_model(
    model: Any, data: Path, rows: list[dict[str, str]], log: Any = print
) -> dict[str, Any]:
    """Score ``model`` on manifest ``rows``; per modality and overall, both instance modes."""
    from napari_unet import predict_tiled
    from napari_unet.pretrained import read_dsb_pair

    results: dict[str, Any] = {}
    per_image: dict[str, list[dict[str, Any]]] = {"components": [], "watershed": []}
    for row in rows:
        image, gt = read_dsb_pair(data, row["image_id"])
        pred = predict_tiled(model, image, tile_size=256, return_logits=False)
        for mode, split in (("components", False), ("watershed", True)):
            r = score_image(pred.probabilities[1], gt, split)
            r.update(image_id=row["image_id"], modality=row["modality"])
            per_image[mode].append(r)
    for mode, scored in per_image.items():
        results[mode] = {"all": summarize(scored)}
        for modality in sorted({r["modality"] for r in scored}):
            results[mode][modality] = summarize([r for r in scored if r["modality"] == modality])
        s = results[mode]["all"]
        log(
            f"{mode:>10}: object F1@0.5 {s['object_f1']:.3f} (P {s['object_precision']:.3f}, "
            f"R {s['object_recall']:.3f}), IoU nucleus {s['iou_nucleus']:.3f}, "
            f"pixel error {s['pixel_error']:.4f}, adapted Rand error {s['rand_error']:.3f}"
        )
    results["per_image"] = {
        mode: [
            {
                "image_id": r["image_id"][:12],
                "modality": r["modality"],
                "f1": round(r["objects"]["f1"], 4),
                "iou": round(r["inter"] / max(r["union"], 1), 4),
            }
            for r in scored
        ]
        for mode, scored in per_image.items()
    }
    return results


def main(argv: list[str] | None = None) -> int:
    from napari_unet import load_model
    from napari_unet.pretrained import dsb_split, list_pretrained, load_pretrained

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model", help="a bundled model name or a model file (.pt)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--subset", default="test", choices=["test", "train"])
    ap.add_argument("--json", type=Path, default=None, help="write all results here")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.data / "manifest.csv").is_file():
        print(f"data not found: {args.data}", file=sys.stderr)
        return 2
    if args.model in list_pretrained():
        model = load_pretrained(args.model)
    else:
        model = load_model(args.model)
    rows = dsb_split(args.data)[args.subset]
    print(f"model: {model.record.name or args.model}; {len(rows)} {args.subset} images")
    t0 = time.perf_counter()
    with torch.inference_mode():
        results = evaluate_model(model, args.data, rows)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    results["model"] = args.model
    results["subset"] = args.subset
    print(f"evaluated in {results['seconds']:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
