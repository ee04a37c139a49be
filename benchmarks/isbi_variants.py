"""ISBI 2012 recipe variants judged on validation images, one training run per call.

    python benchmarks/isbi_variants.py --variant base --seed 0 --device cuda --out r.json

Run I's recipe (``accuracy_isbi.py``: base 32, bf16, images aligned to the labels, precise
batch norm, plain cross-entropy, instance mode) trained on images 0-11 for a fixed number
of steps (or ``--max-seconds``), then scored on validation images 12-14, where variants
are compared, and on test images 15-19, only to see whether validation predicts them.
The offset is measured on images 0-11 alone. Many calls run side by side on a GPU machine
(one process per variant and seed, ``--threads 1``); on this project's 2-core CPU one
call takes about as long as an 8-minute benchmark run.

Variants: ``base``; ``perimage`` (each training image aligned by its own measured offset,
validation and test images by the offset of images 0-11 together); ``wd1e-4`` (Adam's L2
penalty); ``lr1e-3`` (half the learning rate); ``dropout0.5`` (the paper's dropout at the
end of the contracting path).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_isbi import DEFAULT_DATA, load  # noqa: E402

VARIANTS: dict[str, dict] = {
    "base": {},
    "perimage": {"per_image": True},
    "wd1e-4": {"weight_decay": 1e-4},
    "lr1e-3": {"lr": 1e-3},
    "dropout0.5": {"dropout": 0.5},
}


def fraction_and_challenge_error(model, pairs: list, device: str) -> tuple[float, float]:
    """Fraction of misclassified pixels at p_interior > 0.5 (mean over images) and the
    challenge's pixel error (1 - best F of the interior, counts pooled)."""
    from napari_unet import predict_tiled
    from napari_unet.metrics import challenge_pixel_error

    with torch.inference_mode():
        probs = [
            predict_tiled(
                model, img, tile_size=256, device=device, return_logits=False
            ).probabilities[1]
            for img, _ in pairs
        ]
    fraction = float(
        np.mean([np.mean((p > 0.5) != g) for p, (_, g) in zip(probs, pairs, strict=True)])
    )
    return fraction, float(challenge_pixel_error(probs, [g for _, g in pairs])["error"])


def main(argv: list[str] | None = None) -> int:
    from napari_unet import TrainConfig, UNet, prepare_sample, train
    from napari_unet.label_alignment import align_image, estimate_label_offset
    from napari_unet.metrics import connected_components

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--variant", choices=VARIANTS, default="base")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--max-seconds", type=float, default=None, help="stop (and decay) by then")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the result as JSON")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not (args.data / "images" / "0.png").is_file():
        print(f"ISBI data not found at {args.data}", file=sys.stderr)
        return 2
    variant = VARIANTS[args.variant]
    raw_train = load(args.data, range(12))
    val, test = load(args.data, range(12, 15)), load(args.data, range(15, 20))
    offset = estimate_label_offset([i for i, _ in raw_train], [m for _, m in raw_train])
    offsets = [
        estimate_label_offset([i], [m]) if variant.get("per_image") else offset
        for i, m in raw_train
    ]
    samples = [
        prepare_sample(align_image(img, off), connected_components(m), mode="instances",
                       use_weight_map=False)
        for (img, m), off in zip(raw_train, offsets, strict=True)
    ]  # fmt: skip
    val = [(align_image(i, offset), m) for i, m in val]
    test = [(align_image(i, offset), m) for i, m in test]
    torch.manual_seed(args.seed)
    model = UNet(1, 2, depth=4, base_channels=32, padding="same", batch_norm=True,
                 dropout=variant.get("dropout", 0.0))  # fmt: skip
    config = TrainConfig(steps=args.steps, schedule="cosine", batch_size=2, tile_size=256,
                         seed=args.seed, learning_rate=variant.get("lr", 2e-3),
                         weight_decay=variant.get("weight_decay", 0.0), device=args.device,
                         precision="bf16", recompute_batch_norm=True,
                         max_seconds=args.max_seconds)  # fmt: skip
    started = time.perf_counter()
    steps = 0
    for progress in train(model, samples, config):
        steps = progress.step
    seconds = time.perf_counter() - started
    val_fraction, val_challenge = fraction_and_challenge_error(model, val, args.device)
    test_fraction, test_challenge = fraction_and_challenge_error(model, test, args.device)
    result = {
        "variant": args.variant,
        "seed": args.seed,
        "steps": steps,
        "train_s": round(seconds, 1),
        "val_fraction": val_fraction,
        "val_challenge": val_challenge,
        "test_fraction": test_fraction,
        "test_challenge": test_challenge,
        "offset": offset,
        "device": str(args.device),
        "torch": torch.__version__,
    }
    print(json.dumps(result), flush=True)
    if args.out:
        args.out.write_text(json.dumps(result) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
