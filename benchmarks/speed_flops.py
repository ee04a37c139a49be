"""Achieved GFLOP/s of U-Net inference against a large dense matmul timed in the same run.

    python benchmarks/speed_flops.py            # full: default tiles, 4096^3 matmul
    python benchmarks/speed_flops.py --quick    # smoke test: small tiles, 1 thread

The FLOPs of one inference tile are counted with ``torch.utils.flop_counter`` (convolutions
and transposed convolutions, 2 FLOPs per multiply-add; batch norm, ReLU and max-pool are
not counted, so the figure is a slight underestimate of the work done). The tile is timed
in three forms: fp32 in the default NCHW memory format, fp32 channels-last (what
``predict_tiled`` runs) and bf16 autocast channels-last; the machine's practical peak is an
n x n fp32 (and bf16) matmul timed in the same process. A sweep over output tile sides
shows the cost of the halo: FLOPs per *output* pixel and output MPix/s per tile side.

Writes the section between ``<!-- speed:flops start/end -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _speedlib as sl  # noqa: E402


def count_flops(model: Any, x: Any) -> int:
    """FLOPs of one forward pass of ``x`` (torch.utils.flop_counter)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    return int(counter.get_total_flops())


def time_forward(model: Any, x: Any, form: str, repeats: int) -> float:
    """Median seconds of one forward pass in ``form``: nchw, cl (channels-last), bf16."""
    import torch

    fmt = torch.contiguous_format if form == "nchw" else torch.channels_last
    model.to(memory_format=fmt)
    x = x.contiguous(memory_format=fmt)

    def run() -> None:
        with torch.inference_mode():
            if form == "bf16":
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    model(x)
            else:
                model(x)

    median, _ = sl.timed(run, repeats=repeats, warmup=1)
    return median


def time_matmul(n: int, dtype: Any, repeats: int) -> float:
    """GFLOP/s of an n x n @ n x n matmul (2 n^3 FLOPs), median of ``repeats``."""
    import torch

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    median, _ = sl.timed(lambda: torch.mm(a, b), repeats=repeats, warmup=1)
    return 2 * n**3 / median / 1e9


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: small, 1 thread")
    parser.add_argument("--threads", type=int, help="torch threads (default: all; quick 1)")
    parser.add_argument("--bases", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--repeats", type=int, help="timed runs per figure (default 5; quick 2)")
    parser.add_argument("--matmul", type=int, help="matmul side (default 4096; quick 1024)")
    sl.add_output_options(parser)
    args = parser.parse_args(argv)
    if sl.rewrite_from_json(args, "flops", report):
        return
    quick = args.quick
    threads = sl.set_threads(args.threads or (1 if quick else None))
    repeats = args.repeats or (2 if quick else 5)
    n = args.matmul or (1024 if quick else 4096)

    import torch

    from napari_unet.unet.tiling import tile_geometry

    info = sl.machine_info("cpu", threads)
    print(sl.machine_line(info), flush=True)
    results: dict[str, Any] = {"machine": info, "quick": quick, "matmul_n": n}
    results["matmul_fp32_gflops"] = time_matmul(n, torch.float32, repeats)
    results["matmul_bf16_gflops"] = time_matmul(n, torch.bfloat16, repeats)
    print(
        f"matmul {n}: fp32 {results['matmul_fp32_gflops']:.1f} GFLOP/s, "
        f"bf16 {results['matmul_bf16_gflops']:.1f}",
        flush=True,
    )
    results["bases"] = {}
    for base in args.bases:
        model = sl.small_unet(base)
        tile_in, tile_out, _, _ = tile_geometry(model, 128 if quick else None)
        x = torch.randn(1, 1, tile_in, tile_in, generator=torch.Generator().manual_seed(0))
        flops = count_flops(model, x)
        row: dict[str, Any] = {"tile_in": tile_in, "tile_out": tile_out, "gflop": flops / 1e9}
        for form in ("nchw", "cl", "bf16"):
            seconds = time_forward(model, x, form, repeats)
            row[form] = {"seconds": seconds, "gflops": flops / seconds / 1e9}
            print(f"base {base} tile {tile_in} {form}: {row[form]}", flush=True)
        results["bases"][base] = row

    # halo cost: output tile side sweep (base 16, channels-last fp32 and bf16)
    model = sl.small_unet(16)
    sweep = []
    for req in (64, 128, 256) if quick else (128, 256, 512, 768, 1024):
        tile_in, tile_out, _, _ = tile_geometry(model, req)
        x = torch.randn(1, 1, tile_in, tile_in)
        flops = count_flops(model, x)
        entry: dict[str, Any] = {"tile_in": tile_in, "tile_out": tile_out, "gflop": flops / 1e9}
        for form in ("cl", "bf16"):
            seconds = time_forward(model, x, form, repeats)
            entry[form] = {
                "seconds": seconds,
                "gflops": flops / seconds / 1e9,
                "out_mpix_s": tile_out**2 / seconds / 1e6,
            }
        print(f"sweep {entry}", flush=True)
        sweep.append(entry)
    results["sweep"] = sweep
    sl.save_json(args.json, results)
    if not args.no_doc:
        print(f"wrote {sl.write_section('flops', report(results))}")


def report(results: dict[str, Any]) -> str:
    peak, peak16 = results["matmul_fp32_gflops"], results["matmul_bf16_gflops"]
    n = results["matmul_n"]
    lines = [
        "## Achieved GFLOP/s (`benchmarks/speed_flops.py"
        + (" --quick" if results["quick"] else "")
        + "`)",
        "",
        sl.quick_banner(results["quick"]) + sl.machine_line(results["machine"]),
        "",
        f"Practical peak: {n}x{n} matmul, fp32 **{peak:.1f} GFLOP/s**, bf16 {peak16:.1f} "
        "GFLOP/s. FLOPs of one tile by `torch.utils.flop_counter` (convolutions only). "
        "Networks: depth 4, valid, batch norm; one tile, batch 1, eval mode.",
        "",
    ]
    rows = []
    for base, row in results["bases"].items():
        for form, label in (
            ("nchw", "fp32 NCHW"),
            ("cl", "fp32 channels-last"),
            ("bf16", "bf16 channels-last"),
        ):
            g = row[form]["gflops"]
            rows.append(
                [
                    f"base {base}",
                    f"{row['tile_in']} -> {row['tile_out']}",
                    f"{row['gflop']:.1f}",
                    label,
                    f"{row[form]['seconds']:.3f}",
                    f"{g:.1f}",
                    f"{100 * g / peak:.0f}%",
                    f"{100 * g / peak16:.0f}%" if form == "bf16" else "-",
                ]
            )
    lines += [
        sl.table(
            [
                "network",
                "tile in -> out",
                "GFLOP/tile",
                "form",
                "s/tile",
                "GFLOP/s",
                "of fp32 matmul",
                "of bf16 matmul",
            ],
            rows,
        ),
        "",
        "Output tile side (base 16): the halo (92 px per side) is recomputed by neighbouring "
        "tiles, so FLOPs per output pixel fall as tiles grow.",
        "",
    ]
    rows = []
    for e in results["sweep"]:
        rows.append(
            [
                f"{e['tile_in']} -> {e['tile_out']}",
                f"{e['gflop'] * 1e9 / e['tile_out'] ** 2 / 1e3:.1f}",
                f"{e['cl']['gflops']:.1f}",
                f"{e['cl']['out_mpix_s']:.2f}",
                f"{e['bf16']['gflops']:.1f}",
                f"{e['bf16']['out_mpix_s']:.2f}",
            ]
        )
    if "16" in results["bases"] or 16 in results["bases"]:
        row = results["bases"].get(16, results["bases"].get("16"))
        share = row["cl"]["gflops"] / peak
        lines += [
            sl.goal(
                "base 16, fp32 channels-last, share of the fp32 matmul GFLOP/s",
                f"{100 * share:.0f}% (>= 60%)",
                share >= 0.6,
            ),
            "",
        ]
    lines += [
        sl.table(
            [
                "tile in -> out",
                "kFLOP per output px",
                "fp32 CL GFLOP/s",
                "fp32 CL out MPix/s",
                "bf16 GFLOP/s",
                "bf16 out MPix/s",
            ],
            rows,
        ),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
