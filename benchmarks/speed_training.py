"""Training steps per second of ``napari_unet.train`` against a plain eager PyTorch loop.

    python benchmarks/speed_training.py            # full: tile 128, batch 2, 40 steps x 2
    python benchmarks/speed_training.py --quick    # smoke test: tile 64, few steps, 1 thread

Same network (the widget's presets "tiny" and "small": valid, batch norm), same optimiser
(Adam, lr 1e-3), same batch and tile size, same ISBI 2012 slice, same thread count. The
peer is the loop everyone writes first: tiles sampled once into memory beforehand, NCHW,
no augmentation, ``F.cross_entropy``. Ours runs the whole pipeline per step (class-balanced
sampling, elastic deformation, flips, intensity, the weighted energy) with its background
batch prefetcher. Rows:

- ``plain eager loop (NCHW)``: the peer; ``plain loop, channels-last``: the peer in our
  memory format (separates the format from the pipeline).
- ``ours, full augmentation, fp32``: ``train()`` with its defaults but fp32 arithmetic,
  the same arithmetic as the peer: what the pipeline costs.
- ``ours, no augmentation``: pipeline overhead alone, against the same work as the peer.
- ``ours + weight map``: instance mode with w(x) (paper eq. 2), w0 = 10, sigma = 5; the
  weight map is computed once per image before training (its time is given separately).
- ``ours, precision auto``: exactly ``train()``'s defaults (what the widget runs): bf16
  mixed precision where the CPU has AVX-512 BF16 / AMX, else fp32.

Configurations are run in interleaved rounds (A B C ... A B C), each run in a fresh
process, and the median rate is kept, so a change of load during the run hits all of them
alike and no run inherits another's allocator or thread state. The first steps of each run
(oneDNN kernel selection, the prefetcher filling its queue) are not timed.

Writes the section between ``<!-- speed:training start/end -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _speedlib as sl  # noqa: E402

SCRIPT = Path(__file__).resolve()

CONFIGS = {
    "plain": "plain eager loop (NCHW, pre-sampled tiles)",
    "plain-cl": "plain loop, channels-last",
    "ours": "ours, full augmentation, fp32",
    "ours-noaug": "ours, no augmentation, fp32",
    "ours-wmap": "ours + weight map, full augmentation, fp32",
    "ours-auto": "ours, full augmentation, precision auto (train() default)",
}


def _model(preset: str) -> Any:
    import torch

    from napari_unet.unet.presets import build_model

    torch.manual_seed(0)
    return build_model(preset)


def plain_loop(
    preset: str, sample: Any, tile: int, batch: int, steps: int, channels_last: bool
) -> Iterator[int]:
    """The peer: pre-sampled tiles in memory, Adam, cross-entropy; yields after each step."""
    import torch
    import torch.nn.functional as F

    from napari_unet.unet.softmax_energy import IGNORE_INDEX
    from napari_unet.unet.training import TileSampler, training_tile_sizes

    model = _model(preset)
    tile_in, tile_out = training_tile_sizes(model, tile)
    sampler = TileSampler([sample], tile_in, tile_out, np.random.default_rng(0), augment=False)
    batches = [sampler.batch(batch) for _ in range(8)]  # sampled once, before the clock
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model.to(memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(steps):
        x, t, _ = batches[step % len(batches)]
        x = x.contiguous(memory_format=fmt)
        loss = F.cross_entropy(model(x), t, ignore_index=IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()  # a real loop logs its loss
        yield step + 1


def ours_loop(
    preset: str,
    sample: Any,
    tile: int,
    batch: int,
    steps: int,
    augment: bool,
    precision: str = "fp32",
) -> Iterator[int]:
    from napari_unet import TrainConfig, train

    model = _model(preset)
    config = TrainConfig(
        steps=steps,
        batch_size=batch,
        tile_size=tile,
        augment=augment,
        device="cpu",
        seed=0,
        precision=precision,
    )
    for progress in train(model, [sample], config):
        yield progress.step


def rate(loop: Iterator[int], warmup: int) -> float:
    """Steps per second after ``warmup`` untimed steps, up to the last step (what a loop
    does once after its last step, such as ours recomputing batch-norm statistics, is not
    a step and is not timed)."""
    t0, t_end, done = None, 0.0, 0
    for step in loop:
        if step == warmup:
            t0 = time.perf_counter()
        t_end, done = time.perf_counter(), step
    assert t0 is not None and done > warmup, "no timed step"
    return (done - warmup) / (t_end - t0)


def sampler_rate(sample: Any, model: Any, tile: int, batch: int, n: int) -> float:
    """Batches per second the sampling + full augmentation produce on their own."""
    from napari_unet.unet.training import TileSampler, training_tile_sizes

    tile_in, tile_out = training_tile_sizes(model, tile)
    sampler = TileSampler([sample], tile_in, tile_out, np.random.default_rng(0), augment=True)
    sampler.batch(batch)
    t0 = time.perf_counter()
    for _ in range(n):
        sampler.batch(batch)
    return n / (time.perf_counter() - t0)


def worker_rate(config: dict[str, Any]) -> dict[str, Any]:
    """Steps per second of one configuration, in a fresh process: allocator and thread
    state left behind by one loop cannot speed up or slow down the next."""
    name, preset = config["config"], config["preset"]
    sample = sl.isbi_training_sample(config["image"], instances=name == "ours-wmap")
    tile, batch, total = config["tile"], config["batch"], config["total"]
    if name.startswith("plain"):
        loop = plain_loop(preset, sample, tile, batch, total, name == "plain-cl")
    else:
        precision = "auto" if name == "ours-auto" else "fp32"
        loop = ours_loop(preset, sample, tile, batch, total, name != "ours-noaug", precision)
    return {"steps_per_s": rate(loop, config["warmup"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: small, 1 thread")
    parser.add_argument("--threads", type=int, help="torch threads (default: all; quick 1)")
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--tile", type=int, help="output tile side (default 128; quick 64)")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, help="timed steps per run (default 40; quick 8)")
    parser.add_argument(
        "--warmup", type=int, help="untimed first steps, >= 1 (default 5; quick 2)"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 2)")
    parser.add_argument("--image", type=int, default=0, help="ISBI slice index")
    sl.add_output_options(parser)
    args = parser.parse_args(argv)
    if sl.rewrite_from_json(args, "training", report):
        return
    quick = args.quick
    threads = sl.set_threads(args.threads or (1 if quick else None))
    tile = args.tile or (64 if quick else 128)
    steps = args.steps or (8 if quick else 40)
    warmup = max(1, args.warmup if args.warmup is not None else (2 if quick else 5))
    rounds = args.rounds or 2

    info = sl.machine_info("cpu", threads)
    print(sl.machine_line(info), flush=True)
    plain_sample = sl.isbi_training_sample(args.image)
    t0 = time.perf_counter()
    sl.isbi_training_sample(args.image, instances=True)  # timed: the weight map's cost
    prep_wmap = time.perf_counter() - t0
    results: dict[str, Any] = {
        "machine": info,
        "quick": quick,
        "tile": tile,
        "batch": args.batch,
        "steps": steps,
        "rounds": rounds,
        "prepare_with_weight_map_s": prep_wmap,
        "presets": {},
    }
    total = steps + warmup
    for preset in args.presets:
        rates: dict[str, list[float]] = {name: [] for name in CONFIGS}
        for _ in range(rounds):
            for name in CONFIGS:
                res = sl.run_worker(
                    SCRIPT,
                    {
                        "kind": "rate",
                        "preset": preset,
                        "config": name,
                        "image": args.image,
                        "tile": tile,
                        "batch": args.batch,
                        "total": total,
                        "warmup": warmup,
                        "threads": threads,
                    },
                    threads,
                )
                if "error" in res:
                    raise SystemExit(f"{preset} {name} failed: {res['error']}")
                rates[name].append(res["steps_per_s"])
                print(f"{preset} {name}: {rates[name][-1]:.3f} steps/s", flush=True)
        results["presets"][preset] = {
            "steps_per_s": {k: statistics.median(v) for k, v in rates.items()},
            "all": rates,
            "sampler_batches_per_s": sampler_rate(
                plain_sample, _model(preset), tile, args.batch, 3 if quick else 20
            ),
        }
    sl.save_json(args.json, results)
    if not args.no_doc:
        print(f"wrote {sl.write_section('training', report(results))}")


def report(results: dict[str, Any]) -> str:
    lines = [
        "## Training speed (`benchmarks/speed_training.py"
        + (" --quick" if results["quick"] else "")
        + "`)",
        "",
        sl.quick_banner(results["quick"]) + sl.machine_line(results["machine"]),
        "",
        f"ISBI 2012 slice, Adam lr 1e-3, batch {results['batch']}, output tile "
        f"{results['tile']}, median of {results['rounds']} interleaved round(s) of "
        f"{results['steps']} timed steps, each run in a fresh process. Preparing the "
        f"sample with its weight map took {results['prepare_with_weight_map_s']:.2f} s "
        "(once, before training).",
        "",
    ]
    rows = []
    for preset, data in results["presets"].items():
        sps = data["steps_per_s"]
        for name, label in CONFIGS.items():
            rows.append(
                [
                    preset,
                    label,
                    f"{sps[name]:.2f}",
                    f"{sps[name] / sps['plain']:.2f}x",
                ]
            )
        rows.append(
            [
                preset,
                "(sampling + full augmentation alone, one thread, batches/s)",
                f"{data['sampler_batches_per_s']:.1f}",
                "",
            ]
        )
    lines += [sl.table(["preset", "loop", "steps/s", "vs plain NCHW"], rows), ""]
    lines += ["Goal (issue 5): training at least as fast as the plain eager loop.", ""]
    for preset, data in results["presets"].items():
        sps = data["steps_per_s"]
        for name in ("ours-noaug", "ours", "ours-auto"):
            ratio = sps[name] / sps["plain"]
            lines.append(
                sl.goal(f"{preset}: {CONFIGS[name]}", f"{ratio:.2f}x the plain loop", ratio >= 1.0)
            )
    return "\n".join(lines + [""])


if __name__ == "__main__":
    if not sl.worker_main({"rate": worker_rate}):
        main()
