"""ISBI 2012 membranes: train on images 0-14 for a fixed wall-clock budget, test on 15-19.

    python benchmarks/accuracy_isbi.py --minutes 8 --json benchmarks/results/isbi.json

Labels: 255 = cell interior, 0 = membrane. The model is trained in instance mode on the
4-connected components of the interior (class 0 = membrane, class 1 = interior), so the
weight map w(x) (paper eq. 2) can put its border term on the membranes between cells.
Each variant trains from scratch for ``--minutes`` of wall time (the time to prepare the
weight maps included), with the cosine learning-rate schedule following elapsed time
(``TrainConfig.max_seconds``).
Scores on images 15-19 (:func:`napari_unet.metrics.isbi_scores`): pixel error of the
binary interior mask (p_interior > 0.5) and adapted Rand error of the predicted cells
against the true ones (true membranes excluded). Predicted cells are (1) the 4-connected
components of the mask, at threshold 0.5 and at the threshold that minimises the Rand
error on training images 10-14, and (2) a watershed of p_interior from seeds
p_interior > s (``instances_from_prediction(..., seed_threshold=s)``), s chosen the same
way on training images 10-14. ``--tta`` scores the same with test-time augmentation
(a_k(x) averaged over the 8 flips/quarter turns, as the paper). ``--precision bf16``
trains in bf16 mixed precision (what ``precision="auto"`` picks on this CPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "isbi2012_membrane"

VARIANTS = {
    # name: (w0, sigma, class_balance)
    "plain": (0.0, 5.0, False),
    "weightmap": (10.0, 5.0, False),
}


def load(data: Path, ids: range) -> list[tuple[np.ndarray, np.ndarray]]:
    import imageio.v3 as iio

    return [
        (
            np.asarray(iio.imread(data / "images" / f"{i}.png"), np.float32),
            np.asarray(iio.imread(data / "labels" / f"{i}.png")) > 127,
        )
        for i in ids
    ]


SEED_THRESHOLDS = (0.7, 0.8, 0.9, 0.95)


def align_to_labels(train_set: list, test_set: list) -> tuple[list, list, tuple]:
    """Measure the labels' sub-pixel offset on the training images only, and move every
    image (training and test alike) onto it: a network trained with flips cannot learn
    an offset fixed in image coordinates (label_alignment.py)."""
    from napari_unet.label_alignment import align_image, estimate_label_offset

    offset = estimate_label_offset([img for img, _ in train_set], [m for _, m in train_set])
    return (
        [(align_image(img, offset), m) for img, m in train_set],
        [(align_image(img, offset), m) for img, m in test_set],
        offset,
    )


def run_i_setup(data: Path) -> tuple[list, list, tuple, list]:
    """Run I's data for the experiment scripts: training images 0-14 and test images
    15-19 aligned to the labels, and the training samples (plain cross-entropy, instance
    mode); the model is seeded and built as run I's (base 32, batch norm, same padding)."""
    from napari_unet import prepare_sample
    from napari_unet.metrics import connected_components

    train_set, test_set = load(data, range(15)), load(data, range(15, 20))
    train_set, test_set, offset = align_to_labels(train_set, test_set)
    samples = [
        prepare_sample(img, connected_components(m), mode="instances", use_weight_map=False)
        for img, m in train_set
    ]
    return train_set, test_set, offset, samples


def run_i_model():
    from napari_unet import UNet

    torch.manual_seed(0)
    return UNet(1, 2, depth=4, base_channels=32, padding="same", batch_norm=True, dropout=0.0)


def scored_after_precise_bn(
    model, samples: list, config, train_set: list, test_set: list, precise_bn: bool = True
) -> dict:
    """The scores the experiment scripts keep, of a copy of ``model`` whose batch-norm
    statistics are first recomputed on the training tiles (precise BN, as ``train()``
    does with ``recompute_batch_norm``)."""
    import copy

    from napari_unet.runtime.devices import training_memory_format
    from napari_unet.unet.training import _recompute_batch_norm, training_tile_sizes

    scored = copy.deepcopy(model)
    if precise_bn:
        cpu = torch.device("cpu")
        tile_in, tile_out = training_tile_sizes(scored, config.tile_size)
        memory_format = training_memory_format(scored, cpu)
        _recompute_batch_norm(scored, samples, tile_in, tile_out, config, cpu, memory_format)
    scored.eval()
    r = evaluate(scored, train_set, test_set, tta=False)
    train_errors = r["pixel_error_at_threshold_chosen_for_it"]["train_pixel_error_by_threshold"]
    return {
        "pixel_error": r["pixel_error"],
        "rand_error_components": r["rand_error"],
        "rand_error_watershed": r["watershed"]["rand_error"],
        "pixel_error_training_images_10_14": train_errors[0.5],
    }


def evaluate(
    model, train_set: list, test_set: list, tta: bool, shift: tuple | None = None
) -> dict:
    """Scores on the test images (``shift``: move p_interior by this many pixels first,
    ``--shift-predictions``). Cells are the 4-connected components of p_interior > t
    (at t = 0.5 and at the t with the lowest Rand error on training images 10-14), and,
    as ``watershed``, a watershed of p_interior from seeds p_interior > s
    (``instances_from_prediction(..., seed_threshold=s)``, foreground p > 0.5, s chosen
    the same way). Every choice is made on training images, never on the test images."""
    from napari_unet import instances_from_prediction, predict_tiled
    from napari_unet.metrics import challenge_pixel_error, isbi_scores

    thresholds = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)

    def p_interior(img: np.ndarray) -> np.ndarray:
        pred = predict_tiled(
            model, img, tile_size=256, return_logits=False, test_time_augmentation=tta
        )
        if shift is None:
            return pred.probabilities[1]
        from scipy import ndimage

        return ndimage.shift(pred.probabilities[1], shift, order=1, mode="nearest")

    def watershed(p: np.ndarray, seed: float) -> np.ndarray:
        return instances_from_prediction(p, 0.5, seed_threshold=seed, min_size=1)

    def mean(scores: list[dict]) -> dict:
        return {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}

    with torch.inference_mode():
        fit_probs = [(p_interior(img), interior) for img, interior in train_set[10:15]]
        test_probs = [(p_interior(img), interior) for img, interior in test_set]
    rand_by_t = {
        t: float(np.mean([isbi_scores(p > t, g)["rand_error"] for p, g in fit_probs]))
        for t in thresholds
    }
    rand_by_seed = {
        s: float(np.mean([isbi_scores(p > 0.5, g, watershed(p, s))["rand_error"]
                          for p, g in fit_probs]))
        for s in SEED_THRESHOLDS
    }  # fmt: skip
    pixel_by_t = {
        t: float(np.mean([isbi_scores(p > t, g)["pixel_error"] for p, g in fit_probs]))
        for t in thresholds
    }
    best_t = min(rand_by_t, key=rand_by_t.get)
    best_pixel_t = min(pixel_by_t, key=pixel_by_t.get)
    best_seed = min(rand_by_seed, key=rand_by_seed.get)
    scores = [isbi_scores(p > 0.5, g) for p, g in test_probs]
    result = mean(scores)
    result["chosen_threshold"] = best_t
    result["train_rand_error_by_threshold"] = rand_by_t
    result["at_chosen_threshold"] = mean([isbi_scores(p > best_t, g) for p, g in test_probs])
    result["pixel_error_at_threshold_chosen_for_it"] = {
        "threshold": best_pixel_t,
        "train_pixel_error_by_threshold": pixel_by_t,
        "pixel_error": float(np.mean([isbi_scores(p > best_pixel_t, g)["pixel_error"]
                                      for p, g in test_probs])),
    }  # fmt: skip
    ws = [isbi_scores(p > 0.5, g, watershed(p, best_seed)) for p, g in test_probs]
    result["watershed"] = mean(ws) | {
        "chosen_seed_threshold": best_seed,
        "train_rand_error_by_seed_threshold": rand_by_seed,
        "per_image_rand_error": [round(s["rand_error"], 4) for s in ws],
    }
    # the challenge's own definition: 1 - best F-score of the interior class over the
    # thresholds 0, 0.1, ..., 1, counts pooled over the test images
    result["challenge_pixel_error"] = challenge_pixel_error(
        [p for p, _ in test_probs], [g for _, g in test_probs]
    )
    result["per_image"] = [{k: round(v, 4) for k, v in s.items()} for s in scores]
    return result


def run_variant(
    name: str,
    train_set: list,
    test_set: list,
    seconds: float,
    args: argparse.Namespace,
    offset: tuple | None = None,
    shift: tuple | None = None,
) -> dict:
    from napari_unet import TrainConfig, UNet, prepare_sample, train
    from napari_unet.metrics import connected_components

    w0, sigma, balance = VARIANTS[name]
    t_start = time.perf_counter()
    deadline = t_start + seconds
    samples = [
        prepare_sample(
            img,
            connected_components(interior),
            mode="instances",
            use_weight_map=w0 > 0,
            w0=w0,
            sigma=sigma,
            class_balance=balance,
            name=str(i),
        )
        for i, (img, interior) in enumerate(train_set)
    ]
    torch.manual_seed(args.seed)
    model = UNet(1, 2, depth=args.depth, base_channels=args.base_channels, padding="same",
                 batch_norm=True, dropout=args.dropout)  # fmt: skip
    base = dict(batch_size=args.batch_size, tile_size=args.tile_size, seed=args.seed,
                learning_rate=args.lr, weight_decay=args.weight_decay, device="cpu",
                precision=args.precision,
                flips=not args.no_flips, elastic=not args.no_elastic,
                recompute_batch_norm=args.recompute_batch_norm)  # fmt: skip
    # one cosine schedule over the wall-clock time left (TrainConfig.max_seconds)
    remaining = max(deadline - time.perf_counter(), 1.0)
    config = TrainConfig(steps=10**7, schedule="cosine", max_seconds=remaining, **base)
    steps, loss = 0, float("nan")
    for p in train(model, samples, config):
        steps, loss = p.step, p.loss
    train_seconds = time.perf_counter() - t_start
    if args.save_model:
        from napari_unet import save_model

        # the images it must be evaluated on: moved by this offset (--align-labels)
        model.record.label_offset = tuple(offset) if offset else None
        # scored with its predictions moved by this offset (--shift-predictions)
        model.record.prediction_shift = tuple(shift) if shift else None
        save_model(args.save_model.with_name(f"{args.save_model.stem}-{name}.pt"), model)
    result = evaluate(model, train_set, test_set, tta=False, shift=shift)
    if args.tta:
        result["tta"] = evaluate(model, train_set, test_set, tta=True, shift=shift)
    result.update(
        variant=name,
        w0=w0,
        sigma=sigma,
        class_balance=balance,
        steps=steps,
        train_seconds=round(train_seconds, 1),
        final_loss=loss,
    )
    for label, r in (("", result), (" + TTA", result.get("tta"))):
        if r is not None:
            w = r["watershed"]
            pt = r["pixel_error_at_threshold_chosen_for_it"]
            print(
                f"{name:>10}{label}: pixel error at p > {pt['threshold']} (the threshold "
                f"with the lowest pixel error on training images 10-14): {pt['pixel_error']:.4f}"
            )
            c = r["challenge_pixel_error"]
            print(
                f"{name:>10}{label}: ISBI challenge pixel error (1 - best F of the interior) "
                f"{c['error']:.4f} at p > {c['threshold']}, {c['error_at_0.5']:.4f} at p > 0.5"
            )
            print(
                f"{name:>10}{label}: pixel error {r['pixel_error']:.4f}, Rand (components) "
                f"{r['rand_error']:.4f}, Rand (watershed, seeds p > "
                f"{w['chosen_seed_threshold']}) {w['rand_error']:.4f}"
            )
    best_t = result["chosen_threshold"]
    print(
        f"{name:>10}: pixel error {result['pixel_error']:.4f}, adapted Rand error "
        f"{result['rand_error']:.4f} at threshold 0.5; at {best_t} (chosen on training "
        f"images): {result['at_chosen_threshold']['pixel_error']:.4f}, "
        f"{result['at_chosen_threshold']['rand_error']:.4f} ({steps} steps in "
        f"{train_seconds:.0f} s)",
        flush=True,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--variants", nargs="+", default=["weightmap", "plain"], choices=VARIANTS)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--base-channels", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--tile-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--dropout", type=float, default=0.0, help="end of the contracting path (paper: 0.5)"
    )
    ap.add_argument("--weight-decay", type=float, default=0.0, help="Adam's L2 penalty")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    ap.add_argument("--no-flips", action="store_true", help="no flips / quarter turns")
    ap.add_argument("--no-elastic", action="store_true", help="no elastic deformation")
    placement = ap.add_mutually_exclusive_group()
    placement.add_argument(
        "--align-labels",
        action="store_true",
        help="measure the labels' sub-pixel offset on the training images and align every "
        "image to it (label_alignment.py); counted in the budget",
    )
    placement.add_argument(
        "--shift-predictions",
        action="store_true",
        help="instead of --align-labels: train on the images as read, and move each "
        "p_interior by the labels' offset measured on the training images before scoring",
    )
    ap.add_argument(
        "--recompute-batch-norm",
        action="store_true",
        help="batch-norm statistics over un-augmented tiles after training (precise BN)",
    )
    ap.add_argument("--save-model", type=Path, default=None, help="save each trained model")
    ap.add_argument("--tta", action="store_true", help="also score with test-time augmentation")
    ap.add_argument("--evaluate", type=Path, default=None, help="only score this saved model")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.data / "images" / "0.png").is_file():
        print(f"ISBI data not found at {args.data}", file=sys.stderr)
        return 2
    train_set, test_set = load(args.data, range(15)), load(args.data, range(15, 20))
    started = time.perf_counter()
    offset = None
    if args.align_labels:
        train_set, test_set, offset = align_to_labels(train_set, test_set)
        print(f"labels offset from the training images: {offset} px (dy, dx); images aligned")
    shift = None
    if args.shift_predictions:
        from napari_unet.label_alignment import estimate_label_offset

        shift = estimate_label_offset([i for i, _ in train_set], [m for _, m in train_set])
        print(f"labels offset from the training images: {shift} px (dy, dx); predictions moved")
    align_seconds = time.perf_counter() - started
    if args.evaluate:
        from napari_unet import load_model

        model = load_model(args.evaluate)
        trained_aligned = model.record.label_offset is not None
        if trained_aligned != args.align_labels:
            print(
                f"{args.evaluate.name} was trained on images "
                + ("aligned to the labels: add" if trained_aligned else "as read: drop")
                + " --align-labels",
                file=sys.stderr,
            )
            return 2
        scored: dict = {"command": "python benchmarks/accuracy_isbi.py "
                        + " ".join(argv or sys.argv[1:]),
                        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "model": str(args.evaluate),
                        "label_offset": offset,
                        "prediction_shift": shift,
                        "training": [r.to_v1() for r in model.record.training[-1:]]}  # fmt: skip
        for tta in (False, True) if args.tta else (False,):
            r = evaluate(model, train_set, test_set, tta, shift=shift)
            scored["tta" if tta else "plain"] = r
            c, w = r["at_chosen_threshold"], r["watershed"]
            ch = r["challenge_pixel_error"]
            print(
                f"{args.evaluate.name} tta={tta}: ISBI challenge pixel error {ch['error']:.4f} "
                f"(p > {ch['threshold']}), {ch['error_at_0.5']:.4f} (p > 0.5)"
            )
            print(f"{args.evaluate.name} tta={tta}: pixel error {r['pixel_error']:.4f}, Rand "
                  f"{r['rand_error']:.4f} at 0.5; at {r['chosen_threshold']}: "
                  f"{c['pixel_error']:.4f}, {c['rand_error']:.4f}; watershed (seeds > "
                  f"{w['chosen_seed_threshold']}): {w['rand_error']:.4f} "
                  f"{w['per_image_rand_error']}")  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps(scored, indent=1), encoding="utf-8")
        return 0
    out = {
        "command": "python benchmarks/accuracy_isbi.py " + " ".join(argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} threads",
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "label_offset": offset,
        "prediction_shift": shift,
        "align_seconds": round(align_seconds, 1),
        "results": [],
    }
    for name in args.variants:
        # the first variant pays for measuring the offset out of its budget
        seconds = args.minutes * 60 - (align_seconds if not out["results"] else 0.0)
        out["results"].append(run_variant(name, train_set, test_set, seconds, args, offset, shift))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
