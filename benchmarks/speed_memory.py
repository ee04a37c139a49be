"""Peak memory of prediction: in memory (predict_tiled) and chunk by chunk from zarr.

    python benchmarks/speed_memory.py            # full: 4096^2 in memory; zarr 4096^2..16384^2
    python benchmarks/speed_memory.py --quick    # smoke test: 2048^2 / zarr up to 4096^2

Each configuration runs in a fresh process and reports its own peak resident memory
(``ru_maxrss``): the whole process, python, torch and dask included, and the resident
memory before the prediction started (imports, model, input) for comparison.

- In memory: ``predict_tiled`` of a 4096x4096 uint8 image with the base 16 network
  (depth 4, valid, batch norm, the "small" preset), returning logits, probabilities and
  labels (what the widget asks for), fp32 and bf16; and labels only.
- Zarr: a uint8 image of N x N pixels written to a zarr store on disk chunk by chunk
  (1024^2 chunks of real ISBI data, never held whole in memory), predicted with
  ``napari_unet.io.distributed.predict_zarr`` (dask, threaded scheduler, one task per chunk,
  one torch thread per task) into a labels zarr store. Peak memory must not grow with N.

Writes the section between ``<!-- speed:memory start/end -->`` of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _speedlib as sl  # noqa: E402

SCRIPT = Path(__file__).resolve()
CHUNK = 1024


# ------------------------------------------------------------------------------ workers
def worker_tiled(config: dict[str, Any]) -> dict[str, Any]:
    from napari_unet import load_model, predict_tiled

    model = load_model(config["model_path"])
    image = np.load(config["image_path"])
    predict_tiled(model, image[:256, :256], precision=config["precision"])  # warm-up
    before = sl.rss_mb()
    t0 = time.perf_counter()
    outputs = config["outputs"] == "all"
    pred = predict_tiled(
        model,
        image,
        precision=config["precision"],
        return_logits=outputs,
        return_probabilities=outputs,
    )
    seconds = time.perf_counter() - t0
    assert pred.labels.shape == image.shape
    return {"seconds": seconds, "mpix_s": image.size / seconds / 1e6, "rss_before_mb": before}


def worker_zarr(config: dict[str, Any]) -> dict[str, Any]:
    import dask

    from napari_unet import load_model
    from napari_unet.io.distributed import predict_zarr

    model = load_model(config["model_path"])
    workers = config.get("threads") or os.cpu_count() or 1
    before = sl.rss_mb()
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=workers):
        predict_zarr(
            model,
            config["source"],
            config["labels"],
            ome=False,
            overwrite=True,
            chunk_size=CHUNK,
            precision=config["precision"],
            torch_threads=1,
        )
    seconds = time.perf_counter() - t0
    side = config["side"]
    return {
        "seconds": seconds,
        "mpix_s": side * side / seconds / 1e6,
        "rss_before_mb": before,
        "dask_workers": workers,
    }


# ------------------------------------------------------------------------------ parent
def write_zarr_image(path: Path, side: int) -> None:
    """An N x N uint8 zarr store of 1024^2 chunks of real ISBI data, written chunk by
    chunk (the whole image is never in memory)."""
    import zarr

    cell = sl.isbi_mosaic(CHUNK)
    arr = zarr.create_array(
        str(path), shape=(side, side), chunks=(CHUNK, CHUNK), dtype=np.uint8, zarr_format=2
    )
    for i in range(0, side, CHUNK):
        for j in range(0, side, CHUNK):
            k = (i // CHUNK + j // CHUNK) % 4
            block = np.rot90(cell, k)[: min(CHUNK, side - i), : min(CHUNK, side - j)]
            arr[i : i + block.shape[0], j : j + block.shape[1]] = block


def check_labels(path: Path, side: int) -> str:
    """Read one chunk of the written labels back: shape and values must be right."""
    import zarr

    arr = zarr.open_array(str(path), mode="r")
    corner = np.asarray(arr[:CHUNK, :CHUNK])
    values = set(np.unique(corner).tolist())
    if tuple(arr.shape) != (side, side) or not values <= {1, 2}:
        return f"bad output: shape {arr.shape}, values {sorted(values)}"
    return "ok"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke test: small, 1 thread")
    parser.add_argument("--threads", type=int, help="torch threads / dask workers (quick 1)")
    parser.add_argument("--size", type=int, help="in-memory image side (default 4096; quick 2048)")
    parser.add_argument(
        "--zarr-sizes",
        type=int,
        nargs="+",
        help="zarr image sides (default 4096 8192 16384; quick 2048 4096)",
    )
    parser.add_argument("--base", type=int, default=16)
    parser.add_argument("--tmp", help="folder for the zarr stores (default: system temp)")
    sl.add_output_options(parser)
    args = parser.parse_args(argv)
    if sl.rewrite_from_json(args, "memory", report):
        return
    quick = args.quick
    threads = args.threads or (1 if quick else None)
    size = args.size or (2048 if quick else 4096)
    zarr_sizes = args.zarr_sizes or ([2048, 4096] if quick else [4096, 8192, 16384])

    from napari_unet import save_model

    sl.set_threads(threads)
    info = sl.machine_info("cpu", threads)
    print(sl.machine_line(info), flush=True)
    results: dict[str, Any] = {
        "machine": info,
        "quick": quick,
        "size": size,
        "base": args.base,
        "tiled": {},
        "zarr": {},
    }
    with tempfile.TemporaryDirectory(prefix="unet-mem-", dir=args.tmp) as tmp:
        tmpdir = Path(tmp)
        model_path = tmpdir / "model.pt"
        save_model(model_path, sl.small_unet(args.base))
        image_path = tmpdir / "image.npy"
        np.save(image_path, sl.isbi_mosaic(size))
        common = {"model_path": str(model_path), "threads": threads}
        for precision, outputs in (("fp32", "all"), ("bf16", "all"), ("fp32", "labels")):
            key = f"{precision}/{outputs}"
            res = sl.run_worker(
                SCRIPT,
                {
                    "kind": "tiled",
                    "image_path": str(image_path),
                    "precision": precision,
                    "outputs": outputs,
                    **common,
                },
                threads,
            )
            print(f"in memory {size}^2 {key}: {res}", flush=True)
            results["tiled"][key] = res
        for side in zarr_sizes:
            source, labels = tmpdir / f"image{side}.zarr", tmpdir / f"labels{side}.zarr"
            t0 = time.perf_counter()
            write_zarr_image(source, side)
            res = sl.run_worker(
                SCRIPT,
                {
                    "kind": "zarr",
                    "source": str(source),
                    "labels": str(labels),
                    "side": side,
                    "precision": "fp32",
                    **common,
                },
                threads,
            )
            if "error" not in res:
                res["check"] = check_labels(labels, side)
            res["write_input_s"] = time.perf_counter() - t0 - res.get("seconds", 0.0)
            print(f"zarr {side}^2: {res}", flush=True)
            results["zarr"][side] = res
            shutil.rmtree(source, ignore_errors=True)
            shutil.rmtree(labels, ignore_errors=True)
    sl.save_json(args.json, results)
    if not args.no_doc:
        print(f"wrote {sl.write_section('memory', report(results))}")


def report(results: dict[str, Any]) -> str:
    size = results["size"]
    lines = [
        "## Peak memory of prediction (`benchmarks/speed_memory.py"
        + (" --quick" if results["quick"] else "")
        + "`)",
        "",
        sl.quick_banner(results["quick"]) + sl.machine_line(results["machine"]),
        "",
        f"Base {results['base']} network (depth 4, valid, batch norm), default tiles, "
        "untrained weights (memory does not depend on them). Peak RSS is the whole "
        "process (python, torch, dask, the image and the outputs); 'before' is its "
        "resident memory just before the prediction started. Goals: at most 1.5 GB for a "
        "4096^2 prediction, at most 2 GB for a 16384^2 zarr image, flat in the image size.",
        "",
    ]
    rows = []
    for key, res in results["tiled"].items():
        precision, outputs = key.split("/")
        what = "logits + probabilities + labels" if outputs == "all" else "labels only"
        rows.append(_row(f"in memory {size}^2, {precision}, {what}", res))
    for side, res in results["zarr"].items():
        label = f"zarr {side}^2 -> zarr labels, fp32"
        rows.append(_row(label, res, extra=res.get("check", "")))
    lines += [
        sl.table(["prediction", "peak RSS MB", "before MB", "MPix/s", "seconds", "check"], rows),
        "",
        "Goals (issue 5):",
        "",
    ]
    tiled = results["tiled"].get("fp32/all", {})
    if size == 4096 and "peak_rss_mb" in tiled:
        peak = tiled["peak_rss_mb"]
        lines.append(sl.goal("4096^2 in memory, fp32", f"{peak:.0f} MB (<= 1536)", peak <= 1536))
    zarr = {int(k): v for k, v in results["zarr"].items() if "peak_rss_mb" in v}
    if 16384 in zarr:
        peak = zarr[16384]["peak_rss_mb"]
        lines.append(sl.goal("16384^2 zarr", f"{peak:.0f} MB (<= 2048)", peak <= 2048))
    if len(zarr) > 1:
        peaks = [zarr[k]["peak_rss_mb"] for k in sorted(zarr)]
        sides = sorted(zarr)
        growth = peaks[-1] - peaks[0]
        lines.append(
            sl.goal(
                f"zarr peak from {sides[0]}^2 to {sides[-1]}^2 "
                f"({(sides[-1] / sides[0]) ** 2:.0f}x the pixels)",
                f"{peaks[0]:.0f} -> {peaks[-1]:.0f} MB ({growth:+.0f} MB)",
                None,
            )
        )
    return "\n".join(lines + [""])


def _row(label: str, res: dict[str, Any], extra: str = "") -> list[str]:
    if "error" in res:
        return [label, res["error"], "", "", "", ""]
    return [
        label,
        f"{res['peak_rss_mb']:.0f}",
        f"{res['rss_before_mb']:.0f}",
        f"{res['mpix_s']:.2f}",
        f"{res['seconds']:.1f}",
        extra,
    ]


if __name__ == "__main__":
    if not sl.worker_main({"tiled": worker_tiled, "zarr": worker_zarr}):
        main()
