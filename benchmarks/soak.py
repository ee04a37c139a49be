"""Soak run: thousands of training steps and hundreds of predictions, memory must stay flat.

    python benchmarks/soak.py            # full: 3000 steps (30 train() calls) + 300 predictions
    python benchmarks/soak.py --quick    # smoke test: 300 steps + 30 predictions, 1 thread

A "tiny" preset U-Net (depth 3, base 8, batch norm; what the widget trains by default) is
trained in chunks of ``--chunk`` steps, each a separate :func:`napari_unet.train` call as
the widget makes them (a new optimiser, sampler and prefetch thread each time), on a
256x256 image with scribbles (real ISBI 2012 slice 0 when ../shared/data is there, else a
synthetic one). Then :func:`napari_unet.predict_tiled` runs ``--predictions`` times on a
256x256 image (logits, probabilities and labels, as the widget asks for).

The resident memory of the process (RSS, psutil) is sampled after every chunk and every
``--every`` predictions, after a ``gc.collect()`` so that pending garbage does not count.
The first 10 % of each phase (at least 2 train() calls, 5 predictions) is warm-up
(allocator pools, oneDNN kernels, caches); the
verdict compares the peak RSS of the second half of each phase (after warm-up) with the
peak of the first half (RSS oscillates between allocator levels; a leak raises later
peaks): growth of at most 5 % or 20 MB (whichever is larger) per phase passes. The
number of live Python threads is checked too
(each train() call starts and must stop a batch-prefetch thread).

Writes the section between ``<!-- soak start -->`` and ``<!-- soak end -->`` of
docs/benchmarks.md (nothing else in the file changes).
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _speedlib as sl  # noqa: E402

#: growth after warm-up that still passes: this fraction of the warm RSS, or this many MB
TOLERANCE_FRACTION, TOLERANCE_MB = 0.05, 20.0


# ------------------------------------------------------------------------------ data
def training_data(size: int) -> tuple[np.ndarray, np.ndarray, str]:
    """(image, scribbles, description): ISBI slice 0 cropped to ``size`` with membrane (1)
    and cell (2) labels on every 4th row, or a synthetic image of bright discs."""
    if sl.ISBI.is_dir():
        import imageio.v3 as iio

        image = np.asarray(iio.imread(sl.ISBI / "images" / "0.png"))[:size, :size]
        cell = np.asarray(iio.imread(sl.ISBI / "labels" / "0.png"))[:size, :size] > 127
        labels = np.zeros(image.shape, np.uint8)
        rows = slice(None, None, 4)
        labels[rows] = np.where(cell[rows], 2, 1)
        return image, labels, f"ISBI 2012 slice 0, {size}x{size}, every 4th row annotated"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    image = rng.normal(40, 8, (size, size))
    labels = np.zeros((size, size), np.uint8)
    for cy, cx in rng.integers(16, size - 16, (12, 2)):
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 10**2
        image[disc] += 80
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 < 4**2] = 2
    labels[::16] = np.where(labels[::16] == 0, 1, labels[::16])
    labels[(labels == 1) & (image > 90)] = 0
    image = np.clip(image, 0, 255).astype(np.uint8)
    return image, labels, f"synthetic discs, {size}x{size}"


# ------------------------------------------------------------------------------ run
def sample(phase: str, done: int, samples: list[dict[str, Any]], t0: float) -> None:
    gc.collect()
    samples.append(
        {
            "phase": phase,
            "done": done,
            "rss_mb": round(sl.rss_mb(), 1),
            "threads": threading.active_count(),
            "seconds": round(time.perf_counter() - t0, 1),
        }
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    threads = sl.set_threads(args.threads)
    import torch

    from napari_unet import TrainConfig, predict_tiled, prepare_sample, train
    from napari_unet.unet.presets import build_model

    image, labels, data = training_data(args.size)
    torch.manual_seed(0)
    model = build_model("tiny")
    sample_ = prepare_sample(image, labels, name="soak")
    samples: list[dict[str, Any]] = []
    losses: list[float] = []
    t0 = time.perf_counter()
    sample("start", 0, samples, t0)

    chunks = max(1, args.steps // args.chunk)
    warm_chunks = max(min(2, chunks), round(0.1 * chunks))
    for c in range(chunks):
        config = TrainConfig(
            steps=args.chunk, batch_size=2, tile_size=64, seed=c, learning_rate=1e-3
        )
        for progress in train(model, [sample_], config):
            losses.append(progress.loss)
        sample("train", (c + 1) * args.chunk, samples, t0)
        if c + 1 == warm_chunks:
            samples[-1]["warm"] = True
        print(
            f"train {(c + 1) * args.chunk:>6}/{chunks * args.chunk} steps: loss "
            f"{np.mean(losses[-args.chunk :]):.4f}, RSS {samples[-1]['rss_mb']:.1f} MB, "
            f"{samples[-1]['threads']} threads",
            flush=True,
        )
    if not all(np.isfinite(losses)):
        raise SystemExit("the loss became NaN/inf during the soak run")

    rng = np.random.default_rng(1)
    test = image.astype(np.float32)
    warm_preds = max(min(5, args.predictions), round(0.1 * args.predictions))
    for i in range(args.predictions):
        noisy = test + rng.normal(0, 2, test.shape).astype(np.float32)  # a new input each time
        pred = predict_tiled(model, noisy)
        assert np.isfinite(pred.probabilities).all()
        del pred
        if (i + 1) % args.every == 0 or i + 1 == args.predictions or i + 1 == warm_preds:
            sample("predict", i + 1, samples, t0)
            if i + 1 == warm_preds:
                samples[-1]["warm"] = True
            print(
                f"predict {i + 1:>4}/{args.predictions}: RSS {samples[-1]['rss_mb']:.1f} MB",
                flush=True,
            )
    return {
        "quick": args.quick,
        "machine": sl.machine_info("cpu", threads),
        "data": data,
        "steps": chunks * args.chunk,
        "chunk": args.chunk,
        "predictions": args.predictions,
        "size": args.size,
        "samples": samples,
        "first_loss": float(np.mean(losses[: args.chunk])),
        "last_loss": float(np.mean(losses[-args.chunk :])),
        "seconds": round(time.perf_counter() - t0, 1),
    }


# ------------------------------------------------------------------------------ report
def phase_summary(samples: list[dict[str, Any]], phase: str) -> dict[str, Any]:
    rows = [s for s in samples if s["phase"] == phase]
    warm = next((s for s in rows if s.get("warm")), rows[0])
    end = rows[-1]
    after = [s for s in rows if s["done"] >= warm["done"]]
    slope = 0.0
    if len(after) >= 3:
        x = np.array([s["done"] for s in after], float)
        y = np.array([s["rss_mb"] for s in after], float)
        slope = float(np.polyfit(x, y, 1)[0])
    # the allocator makes RSS oscillate between a few levels; a leak shows as later
    # peaks above earlier ones, so compare the peak of the second half with the first
    half = max(len(after) // 2, 1)
    first_peak = max(s["rss_mb"] for s in after[:half])
    last_peak = max(s["rss_mb"] for s in after[half:]) if after[half:] else first_peak
    growth = last_peak - first_peak
    allowed = max(TOLERANCE_MB, TOLERANCE_FRACTION * warm["rss_mb"])
    return {
        "warm": warm,
        "end": end,
        "growth_mb": round(growth, 1),
        "slope_mb_per_1000": round(1000 * slope, 2),
        "allowed_mb": round(allowed, 1),
        "met": growth <= allowed,
        "peak_mb": max(s["rss_mb"] for s in rows),
        "threads": sorted({s["threads"] for s in after}),
    }


def report(results: dict[str, Any]) -> str:
    samples = results["samples"]
    start = samples[0]
    train_s = phase_summary(samples, "train")
    pred_s = phase_summary(samples, "predict")
    threads_flat = len(train_s["threads"]) == 1 and train_s["threads"] == pred_s["threads"]
    rows = [
        ["start (model and data ready)", "-", sl.fmt(start["rss_mb"], 1), start["threads"]],
        [
            f"training, after warm-up ({train_s['warm']['done']} steps)",
            train_s["warm"]["done"],
            sl.fmt(train_s["warm"]["rss_mb"], 1),
            train_s["warm"]["threads"],
        ],
        [
            f"training, end ({train_s['end']['done']} steps)",
            train_s["end"]["done"],
            sl.fmt(train_s["end"]["rss_mb"], 1),
            train_s["end"]["threads"],
        ],
        [
            f"prediction, after warm-up ({pred_s['warm']['done']} calls)",
            pred_s["warm"]["done"],
            sl.fmt(pred_s["warm"]["rss_mb"], 1),
            pred_s["warm"]["threads"],
        ],
        [
            f"prediction, end ({pred_s['end']['done']} calls)",
            pred_s["end"]["done"],
            sl.fmt(pred_s["end"]["rss_mb"], 1),
            pred_s["end"]["threads"],
        ],
    ]
    lines = [
        "## Soak run: memory over long training and many predictions "
        f"(`benchmarks/soak.py{' --quick' if results['quick'] else ''}`)",
        "",
        sl.quick_banner(results["quick"]) + sl.machine_line(results["machine"]),
        "",
        f'"tiny" preset U-Net (depth 3, base 8, batch norm), Adam 1e-3, batch 2 of 64 px '
        f"output tiles with full augmentation; {results['steps']} steps as "
        f"{results['steps'] // results['chunk']} separate `train()` calls of "
        f"{results['chunk']} steps (as the widget makes them), then "
        f"{results['predictions']} `predict_tiled` calls on a {results['size']}x"
        f"{results['size']} image (logits, probabilities, labels). Data: {results['data']}. "
        f"Loss {results['first_loss']:.3f} (first chunk) -> {results['last_loss']:.3f} "
        f"(last). RSS by psutil after `gc.collect()`; the first 10 % of each phase (at least "
        f"2 calls of train(), 5 predictions) is warm-up. Total {results['seconds']:.0f} s.",
        "",
        sl.table(["when", "steps / calls", "RSS MB", "threads"], rows),
        "",
        "Goal (issue 8): no memory growth after warm-up (at most 5 % or 20 MB per phase), "
        "no leaked threads.",
        "",
        sl.goal(
            "training",
            f"peak {train_s['growth_mb']:+.1f} MB between the halves of steps "
            f"{train_s['warm']['done']}-"
            f"{train_s['end']['done']} (allowed {train_s['allowed_mb']:.0f} MB; trend "
            f"{train_s['slope_mb_per_1000']:+.2f} MB per 1000 steps; peak "
            f"{train_s['peak_mb']:.1f} MB)",
            train_s["met"],
        ),
        sl.goal(
            "prediction",
            f"peak {pred_s['growth_mb']:+.1f} MB between the halves of calls "
            f"{pred_s['warm']['done']}-"
            f"{pred_s['end']['done']} (allowed {pred_s['allowed_mb']:.0f} MB; trend "
            f"{pred_s['slope_mb_per_1000']:+.2f} MB per 1000 calls; peak "
            f"{pred_s['peak_mb']:.1f} MB)",
            pred_s["met"],
        ),
        sl.goal(
            "threads",
            f"{', '.join(map(str, train_s['threads'] + pred_s['threads']))} live after warm-up",
            threads_flat,
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: 300 steps, 30 calls")
    parser.add_argument("--steps", type=int, help="training steps (default 3000; quick 300)")
    parser.add_argument("--chunk", type=int, help="steps per train() call (100; quick 50)")
    parser.add_argument("--predictions", type=int, help="predict calls (default 300; quick 30)")
    parser.add_argument("--every", type=int, help="sample RSS every N predictions (10; quick 5)")
    parser.add_argument("--size", type=int, default=256, help="image side (default 256)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    sl.add_output_options(parser)
    args = parser.parse_args(argv)
    if sl.rewrite_from_json(args, "soak", report, prefix=""):
        return 0
    quick = args.quick
    args.steps = args.steps or (300 if quick else 3000)
    args.chunk = args.chunk or (50 if quick else 100)
    args.predictions = args.predictions or (30 if quick else 300)
    args.every = args.every or (5 if quick else 10)
    if min(args.steps, args.chunk, args.predictions, args.every, args.size) < 1:
        parser.error("--steps, --chunk, --predictions, --every and --size must be >= 1")
    results = run(args)
    sl.save_json(args.json, results)
    text = report(results)
    print(text)
    if not args.no_doc:
        print(f"wrote {sl.write_section('soak', text, prefix='')}")
    ok = all(phase_summary(results["samples"], p)["met"] for p in ("train", "predict"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
