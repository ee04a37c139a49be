"""ISBI 2012: does averaging the weights of the last steps lower the pixel error?

    python benchmarks/isbi_weight_averaging.py --minutes 8 \\
        --json benchmarks/results/isbi_weight_averaging.json

One training run with the configuration of ``accuracy_isbi.py --precision bf16
--base-channels 32 --align-labels`` (8 minutes, 2 threads). While it runs, the caller of
``train()`` keeps uniform averages of the weights over the last 50 %, 25 % and 10 % of
the time budget (stochastic weight averaging, Izmailov et al. 2018) and an exponential
moving average (decay 0.995) from half-time on. Every variant of the same trajectory is
then scored on test images 15-19 as ``accuracy_isbi.py`` scores a model, after precise BN
(the statistics of averaged weights must be recomputed); the last weights are scored with
and without it. Comparing variants of one trajectory removes the run-to-run spread
(about 0.0025 in pixel error between two 8-minute runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy_isbi as isbi  # noqa: E402

from napari_unet import TrainConfig, train  # noqa: E402

SWA_STARTS = {"swa_last_50pct": 0.5, "swa_last_25pct": 0.75, "swa_last_10pct": 0.9}
EMA_DECAY, EMA_START = 0.995, 0.5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=isbi.DEFAULT_DATA)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train_set, test_set, offset, samples = isbi.run_i_setup(args.data)
    model = isbi.run_i_model()
    budget = args.minutes * 60 - (time.perf_counter() - started)
    config = TrainConfig(steps=10**7, max_seconds=budget, batch_size=2, tile_size=256,
                         seed=0, learning_rate=2e-3, device="cpu", precision="bf16")  # fmt: skip
    sums: dict[str, list[torch.Tensor]] = {}
    counts = dict.fromkeys(SWA_STARTS, 0)
    ema: list[torch.Tensor] = []
    steps = 0
    for progress in train(model, samples, config):
        steps, fraction = progress.step, progress.elapsed / budget
        with torch.no_grad():
            weights = [p.detach().float() for p in model.parameters()]
            for name, start in SWA_STARTS.items():
                if fraction >= start:
                    if name in sums:
                        torch._foreach_add_(sums[name], weights)
                    else:
                        sums[name] = [w.clone() for w in weights]
                    counts[name] += 1
            if fraction >= EMA_START:
                if ema:
                    torch._foreach_lerp_(ema, weights, 1 - EMA_DECAY)
                else:
                    ema = [w.clone() for w in weights]
    print(f"{steps} steps; snapshots averaged: {counts}", flush=True)
    variants: dict[str, list[torch.Tensor] | None] = {"last, training BN statistics": None}
    variants["last"] = [p.detach().clone() for p in model.parameters()]
    variants.update({name: [s / counts[name] for s in sums[name]] for name in SWA_STARTS})
    variants[f"ema_{EMA_DECAY}"] = ema
    out: dict = {
        "command": "python benchmarks/isbi_weight_averaging.py " + " ".join(argv or sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "steps": steps,
        "snapshots": counts,
        "label_offset": offset,
        "scores": {},
    }
    for name, weights in variants.items():
        if weights is not None:
            with torch.no_grad():
                for p, w in zip(model.parameters(), weights, strict=True):
                    p.copy_(w)
        out["scores"][name] = isbi.scored_after_precise_bn(
            model, samples, config, train_set, test_set, precise_bn=weights is not None
        )
        print(f"{name:>30}: {out['scores'][name]}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
