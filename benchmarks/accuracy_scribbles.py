"""Scribbles: fine-tune the bundled model vs train from scratch vs a random forest.

    python benchmarks/accuracy_scribbles.py --seconds 60 --json benchmarks/results/scribbles.json

Data: the held-out DSB 2018 images (never seen by the bundled model) of one acquisition
type (fluorescence, 360 x 360, 9 images): sparse strokes are drawn on the first (by sorted
id), the other 8 are the test set. Strokes are simulated from the ground truth, as a user
would paint: a short line through the middle of some nuclei (value 2) and a few straight
lines through background at least 3 px from any nucleus (value 1), about 1% of the pixels.

Methods, each with the same strokes and the same wall-clock budget ``--seconds``:

- ``finetune``: the bundled ``nuclei`` model trained on the strokes (Adam 5e-4);
- ``scratch``: the same architecture from random weights (Adam 2e-3);
- ``random_forest``: scikit-learn RandomForestClassifier (100 trees) on
  ``skimage.feature.multiscale_basic_features`` (intensity, edges, texture; sigma 1-16),
  the ilastik / napari-apoc pixel classifier;
- ``pretrained_only``: the bundled model without fine-tuning (reference).

With ``--case brightfield`` the strokes go on the left half of the one held-out brightfield
image (1024 x 1024) and the right half is the test image.

Score: foreground IoU over the 8 test images (total intersection / total union of
p_nucleus > 0.5) and object F1 at IoU 0.5 (connected components, min size 10).
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
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "dsb2018_nuclei"


def simulate_strokes(gt: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Scribble labels (0 unannotated, 1 background, 2 nucleus) covering ~``fraction``."""
    from scipy import ndimage as ndi

    h, w = gt.shape
    budget = fraction * gt.size
    strokes = np.zeros(gt.shape, np.uint8)
    inner = ndi.binary_erosion(gt > 0, iterations=1)
    ids = [i for i in np.unique(gt) if i > 0]
    rng.shuffle(ids)
    # nuclei: a horizontal line through the centroid, inside the (eroded) nucleus
    for i in ids:
        if np.count_nonzero(strokes == 2) >= budget / 2:
            break
        ys, xs = np.nonzero(gt == i)
        cy = int(round(ys.mean()))
        row = np.nonzero(inner[cy] & (gt[cy] == i))[0]
        if len(row) >= 3:
            strokes[cy, row[1:-1]] = 2
    # background: straight lines far (>= 3 px) from any nucleus
    far = ndi.distance_transform_edt(gt == 0) >= 3
    while np.count_nonzero(strokes == 1) < budget / 2:
        y0, x0 = rng.integers(0, h), rng.integers(0, w)
        angle = rng.uniform(0, np.pi)
        t = np.arange(-20, 21)
        ys = np.clip(np.round(y0 + t * np.sin(angle)).astype(int), 0, h - 1)
        xs = np.clip(np.round(x0 + t * np.cos(angle)).astype(int), 0, w - 1)
        ok = far[ys, xs]
        strokes[ys[ok], xs[ok]] = 1
    return strokes


def rf_features(image: np.ndarray) -> np.ndarray:
    from skimage.feature import multiscale_basic_features

    from napari_unet.unet.data import normalize

    img = normalize(image[None])[0]
    return multiscale_basic_features(img, intensity=True, edges=True, texture=True,
                                     sigma_min=1, sigma_max=16)  # fmt: skip


def scores(prob_nucleus: list[np.ndarray], gts: list[np.ndarray]) -> dict[str, float]:
    from napari_unet import instances_from_prediction
    from napari_unet.metrics import object_scores

    inter = union = tp = fp = fn = 0
    for p, gt in zip(prob_nucleus, gts, strict=True):
        fg = p > 0.5
        inter += np.count_nonzero(fg & (gt > 0))
        union += np.count_nonzero(fg | (gt > 0))
        inst = instances_from_prediction(p, 0.5, split_touching=False, min_size=10)
        s = object_scores(inst, gt, 0.5)
        tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
    return {"iou_nucleus": inter / max(union, 1), "object_f1": 2 * tp / max(2 * tp + fp + fn, 1)}


def train_unet(
    model, sample, seconds: float, lr: float, seed: int, recompute_batch_norm: bool = False
) -> int:
    """Train until the wall-clock budget is used; cosine schedule sized from measured speed."""
    from napari_unet import TrainConfig, train

    deadline = time.perf_counter() + seconds
    base = dict(batch_size=4, tile_size=128, seed=seed, learning_rate=lr, device="cpu")
    steps = 0
    rate = 1.0
    for p in train(model, [sample], TrainConfig(steps=5, schedule="constant", **base)):
        steps, rate = p.step, p.steps_per_second
    n2 = max(int(rate * (deadline - time.perf_counter()) * 0.95), 1)
    config = TrainConfig(
        steps=n2, schedule="cosine", recompute_batch_norm=recompute_batch_norm, **base
    )
    gen = train(model, [sample], config)
    for _ in gen:
        steps += 1
        if time.perf_counter() >= deadline:
            gen.close()
            break
    return steps


def main(argv: list[str] | None = None) -> int:
    from napari_unet import UNet, predict_tiled, prepare_sample
    from napari_unet.pretrained import dsb_split, load_pretrained, read_dsb_pair

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--case", default="fluorescence", choices=["fluorescence", "brightfield"])
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--recompute-batch-norm",
        action="store_true",
        help="batch-norm statistics over un-augmented tiles after training (precise BN)",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.data / "manifest.csv").is_file():
        print(f"data not found: {args.data}", file=sys.stderr)
        return 2
    if args.case == "fluorescence":
        rows = [
            r
            for r in dsb_split(args.data)["test"]
            if r["modality"] == "fluorescence" and (r["height"], r["width"]) == ("360", "360")
        ]
        pairs = [read_dsb_pair(args.data, r["image_id"]) for r in rows]
        (train_img, train_gt), test = pairs[0], pairs[1:]
    else:  # the held-out brightfield image: strokes on the left half, test on the right
        rows = [r for r in dsb_split(args.data)["test"] if r["modality"] == "brightfield_gray"]
        img, gt = read_dsb_pair(args.data, rows[0]["image_id"])
        half = img.shape[1] // 2
        train_img, train_gt = img[:, :half], gt[:, :half]
        test = [(img[:, half:], gt[:, half:])]
        rows = rows + rows
    rng = np.random.default_rng(args.seed)
    strokes = simulate_strokes(train_gt, args.fraction, rng)
    annotated = float(np.mean(strokes > 0))
    print(f"strokes on {rows[0]['image_id'][:12]}: {annotated:.2%} of pixels annotated "
          f"({np.count_nonzero(strokes == 2)} nucleus, {np.count_nonzero(strokes == 1)} "
          f"background); {len(test)} test images", flush=True)  # fmt: skip
    test_imgs, test_gts = [t[0] for t in test], [t[1] for t in test]
    out = {
        "command": "python benchmarks/accuracy_scribbles.py " + " ".join(argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{args.threads} thread(s), CPU shared with other jobs",
        "train_image": rows[0]["image_id"],
        "test_images": [r["image_id"] for r in rows[1:]],
        "case": args.case,
        "annotated_fraction": annotated,
        "seconds_budget": args.seconds,
        "results": {},
    }

    def unet_probs(model) -> list[np.ndarray]:
        with torch.inference_mode():
            return [
                predict_tiled(model, im, tile_size=256, return_logits=False).probabilities[1]
                for im in test_imgs
            ]

    def record(name: str, probs: list[np.ndarray], seconds: float, **extra) -> None:
        res = scores(probs, test_gts) | {"train_seconds": round(seconds, 1)} | extra
        out["results"][name] = res
        print(f"{name:>16}: IoU {res['iou_nucleus']:.3f}, object F1 {res['object_f1']:.3f} "
              f"({seconds:.0f} s) {extra}", flush=True)  # fmt: skip

    # reference: the bundled model as is
    record("pretrained_only", unet_probs(load_pretrained("nuclei")), 0.0)

    # U-Nets: scribble mode, 1 = background -> channel 0, 2 = nucleus -> channel 1
    for name, lr in (("finetune", 5e-4), ("scratch", 2e-3)):
        if name == "finetune":
            model = load_pretrained("nuclei")
        else:
            ref = load_pretrained("nuclei")
            torch.manual_seed(args.seed)
            model = UNet(**ref.config())
            model.record.normalization = ref.record.normalization
        sample = prepare_sample(train_img, strokes, mode="scribbles",
                                normalization=model.record.normalization_dict())  # fmt: skip
        t0 = time.perf_counter()
        steps = train_unet(model, sample, args.seconds, lr, args.seed, args.recompute_batch_norm)
        record(name, unet_probs(model), time.perf_counter() - t0, steps=steps)

    # random forest pixel classifier on multiscale filter features
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    feats = rf_features(train_img)
    mask = strokes > 0
    rf = RandomForestClassifier(n_estimators=100, n_jobs=args.threads, random_state=args.seed)
    rf.fit(feats[mask], strokes[mask])
    t_rf = time.perf_counter() - t0
    probs = []
    for im in test_imgs:
        f = rf_features(im)
        probs.append(rf.predict_proba(f.reshape(-1, f.shape[-1]))[:, 1].reshape(im.shape))
    record("random_forest", probs, t_rf, features=int(feats.shape[-1]))

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
