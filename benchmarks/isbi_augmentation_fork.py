"""ISBI 2012: does weaker augmentation at the end of training lower the pixel error?

    python benchmarks/isbi_augmentation_fork.py --fork 0.75 \\
        --json benchmarks/results/isbi_augmentation_fork.json

Bicubic resampling under elastic deformation softens every training tile a little, and
nearest-neighbour sampling of the labels moves their edges by up to half a pixel; test
images are neither. So: train the configuration of ``accuracy_isbi.py --precision bf16
--base-channels 32 --align-labels`` for the first ``--fork`` of an 8-minute budget, then
continue from the same weights, optimiser state and random stream in branches that differ
only in the augmentation of the rest of their own budget (same cosine schedule by elapsed
time): the control (elastic, sigma 10 px), no elastic deformation (flips and intensity
jitter only), and elastic with sigma 5 px. Each branch ends with precise BN and is scored
as ``accuracy_isbi.py`` scores a model. The training step is ``train()``'s, written out so
that the run can fork.
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy_isbi as isbi  # noqa: E402

import napari_unet.unet.training as training  # noqa: E402
from napari_unet import TrainConfig  # noqa: E402
from napari_unet.runtime.allocator import keep_freed_memory  # noqa: E402
from napari_unet.unet.augment import random_displacement_field  # noqa: E402
from napari_unet.unet.softmax_energy import energy  # noqa: E402

BRANCHES = {
    "control (elastic, sigma 10)": {"elastic": True, "sigma": 10.0},
    "no elastic deformation": {"elastic": False, "sigma": 10.0},
    "elastic, sigma 5": {"elastic": True, "sigma": 5.0},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=isbi.DEFAULT_DATA)
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--fork", type=float, default=0.75, help="fraction of the budget shared")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    train_set, test_set, offset, samples = isbi.run_i_setup(args.data)
    model = isbi.run_i_model()
    config = TrainConfig(steps=10**7, batch_size=2, tile_size=256, seed=0,
                         learning_rate=2e-3, device="cpu", precision="bf16")  # fmt: skip
    training.prepare_model_metadata(model, samples)
    cpu = torch.device("cpu")
    memory_format = training.training_memory_format(model, cpu)
    model.to(memory_format=memory_format)
    optimizer = training.make_optimizer(model, config, cpu)
    tile_in, tile_out = training.training_tile_sizes(model, config.tile_size)
    budget = args.minutes * 60 - (time.perf_counter() - started)

    def run(rng: np.random.Generator, t_from: float, t_to: float, elastic: bool,
            sigma: float) -> int:  # fmt: skip
        """Train from second ``t_from`` to ``t_to`` of the budget; the steps made."""
        training.random_displacement_field = functools.partial(  # type: ignore[assignment]
            random_displacement_field, sigma=sigma
        )
        sampler = training.TileSampler(samples, tile_in, tile_out, rng, True, elastic, True)
        batches = training.BatchPrefetcher(sampler, config.batch_size)
        clock = time.perf_counter() - t_from
        steps = 0
        model.train()
        try:
            with keep_freed_memory():
                while (elapsed := time.perf_counter() - clock) < t_to:
                    cosine = 0.5 * (1 + math.cos(math.pi * min(elapsed / budget, 1.0)))
                    for group in optimizer.param_groups:
                        group["lr"] = config.learning_rate * (0.05 + 0.95 * cosine)
                    x, t, w = batches.get()
                    with torch.autocast("cpu", dtype=torch.bfloat16):
                        logits = model(x.contiguous(memory_format=memory_format))
                    loss = energy(logits, t, w)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    steps += 1
        finally:
            batches.close()
            training.random_displacement_field = random_displacement_field
        return steps

    rng = np.random.default_rng(config.seed)
    shared = run(rng, 0.0, args.fork * budget, elastic=True, sigma=10.0)
    print(f"{shared} shared steps", flush=True)
    fork = copy.deepcopy((model.state_dict(), optimizer.state_dict(), rng))
    out: dict = {"command": "python benchmarks/isbi_augmentation_fork.py "
                 + " ".join(argv or sys.argv[1:]), "date": time.strftime("%Y-%m-%d %H:%M"),
                 "fork": args.fork, "shared_steps": shared, "label_offset": offset,
                 "branches": {}}  # fmt: skip
    for name, augmentation in BRANCHES.items():
        weights, optimizer_state, branch_rng = copy.deepcopy(fork)
        model.load_state_dict(weights)
        optimizer.load_state_dict(optimizer_state)
        steps = shared + run(branch_rng, args.fork * budget, budget, **augmentation)
        scores = isbi.scored_after_precise_bn(model, samples, config, train_set, test_set)
        out["branches"][name] = {"steps": steps, **scores}
        print(f"{name:>30}: {out['branches'][name]}", flush=True)
        if args.json:
            args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
