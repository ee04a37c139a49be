"""``napari-unet predict``: segment image files, folders, globs and (OME-)Zarr volumes."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import file_error
from .models import instance_options, load_model_arg, model_input, predict_options
from .options import (
    add_cluster,
    add_common,
    add_inference,
    add_model_source,
    add_overwrite,
    new_command,
    positive_int,
)
from .progress import ProgressBar, status

#: Suffixes of the files ``predict`` writes (``evaluate`` pairs <stem>_labels with <stem>).
#: Earlier outputs are recognised by the mark napari-unet writes into them, not by these.
OUTPUT_SUFFIXES = ("_labels", "_probabilities", "_instances", "_entropy")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(
        sub,
        "predict",
        help="segment images, folders, globs or (OME-)Zarr volumes",
        description="Segment images with a trained model.\n\n"
        "For each input <stem>.<ext> the output folder gets <stem>_labels.tif (class values, "
        "as in the annotations), and on request <stem>_probabilities.tif (p_k(x), float32, "
        "classes first), <stem>_instances.tif (one id per object) and <stem>_entropy.tif "
        "(H(x), the uncertainty of p_k(x), 0..1).\n"
        "zarr / OME-Zarr inputs are predicted lazily, chunk by chunk with the model's context "
        "as halo (the result equals the in-memory prediction exactly), and written to "
        "<stem>_labels.zarr / .ome.zarr. --workers or --scheduler run the chunks on a "
        "dask.distributed cluster.\n\n"
        "Inputs are never overwritten, and existing outputs only with --overwrite and only "
        "when napari-unet wrote them (it marks its outputs; a file of yours named like an "
        "output is an input). Every output appears only once every input succeeded: a run "
        "that fails writes nothing.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders, globs, zarr")
    add_model_source(p)
    p.add_argument("--out", required=True, metavar="FOLDER", help="output folder")
    add_overwrite(p, "replace existing output files")
    p.add_argument(
        "--format",
        choices=("tif", "png"),
        default="tif",
        help="file type of <stem>_labels for non-zarr inputs (png: 2D only)",
    )
    p.add_argument("--probabilities", action="store_true", help="also write <stem>_probabilities")
    p.add_argument(
        "--entropy",
        action="store_true",
        help="also write <stem>_entropy.tif: H(x) = -sum_k p_k log p_k / log K, 0 = certain, "
        "1 = every class equally likely; where to annotate next (not for zarr inputs)",
    )
    p.add_argument(
        "--instances",
        action="store_true",
        help="also write <stem>_instances.tif: objects of --object-class split by watershed "
        "(not for zarr inputs)",
    )
    p.add_argument(
        "--object-class",
        type=int,
        default=None,
        metavar="K",
        help="class channel (1-based) holding the objects for --instances; default 2 (cell "
        "of an instances model, or the second class)",
    )
    p.add_argument("--threshold", type=float, default=0.5, help="--instances: p threshold")
    p.add_argument("--min-size", type=int, default=10, help="--instances: smallest object (px)")
    p.add_argument("--no-split", action="store_true", help="--instances: no watershed split")
    p.add_argument(
        "--seed-threshold",
        type=float,
        default=None,
        metavar="P",
        help="--instances: split along weak borders by a watershed of p from seeds p > P "
        "(cells between membranes, EM) instead of the distance transform (round nuclei)",
    )
    add_inference(p)
    p.add_argument(
        "--chunk-size",
        type=positive_int,
        default=None,
        metavar="PX",
        help="zarr/dask: output chunk side (rounded to the model's grid); default the "
        "input's chunk side",
    )
    p.add_argument(
        "--stats",
        choices=("plane", "global"),
        default="plane",
        help="zarr/dask: percentile normalisation per plane (as in memory) or over the whole "
        "volume",
    )
    add_cluster(p)
    add_common(p, cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:

    from ..io.images import check_output, expand_paths, is_zarr
    from ..io.outputs import OutputBatch
    from ..unet.data import InputError
    from ..workflow import instance_channel
    from .cluster import start_client

    model = load_model_arg(args)
    inputs = expand_paths(args.inputs, skip_outputs=True)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if any(out.resolve() == p.resolve() for p in inputs):
        raise InputError(f"{out}: refusing to write into an input")
    plans = _output_paths(inputs, out, args)
    for plan in plans:  # check every output before anything is computed
        for key, target in plan.items():
            if key != "input":
                check_output(target, overwrite=args.overwrite, inputs=inputs)
    split = instance_options(args) if args.instances else None
    if split is not None:
        split.validate()
    object_channel = instance_channel(model, split, asked=True)  # checked before any work
    if getattr(args, "object_class", None) is not None and not args.instances:
        raise InputError("--object-class names the class split into objects: add --instances")
    _check_label_format(model, args.format, any(not is_zarr(p) for p in inputs))
    _check_zarr_outputs_fit(model, [p for p in inputs if is_zarr(p)], out, args)
    if args.seed_threshold is not None and (not args.instances or args.no_split):
        raise InputError(
            "--seed-threshold splits --instances: it needs --instances, not --no-split"
        )
    if args.tta and (args.workers or args.scheduler or any(is_zarr(p) for p in inputs)):
        raise InputError("--tta works on in-memory images, not with zarr inputs or a cluster")
    predict_options(args).validate()
    client, to_close = start_client(args)  # before creating anything: it may fail
    created = [d for d in [out, *out.absolute().parents] if not d.exists()]
    out.mkdir(parents=True, exist_ok=True)
    try:
        with OutputBatch() as batch:  # a failed run writes nothing: staged files removed
            for i, plan in enumerate(plans, 1):
                path = plan["input"]
                staged = {k: (v if k == "input" else batch.stage(v)) for k, v in plan.items()}
                bar = ProgressBar(f"[{i}/{len(plans)}] {path.name}", enabled=not args.quiet)
                try:
                    _predict_one(model, staged, args, object_channel, bar, client)
                except (InputError, ValueError) as err:
                    raise file_error(path, err) from err
                bar.close()
            written = batch.commit()  # only now, when every input has succeeded
    except BaseException:
        for folder in created:  # and leaves no empty output folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds while it is empty
        raise
    finally:
        for obj in to_close:
            obj.close()
    for target in written:
        status(f"wrote {target}", args)
    print(f"predicted {len(plans)} image(s) into {out}")
    return 0


def _check_zarr_outputs_fit(
    model: Any, inputs: Sequence[Path], out: Path, args: argparse.Namespace
) -> None:
    """Refuse zarr inputs whose outputs cannot fit on the output's disk, before any work (a
    store declaring 10^6 x 10^6 pixels would otherwise fail after minutes)."""
    import math
    import shutil

    from ..io.images import open_zarr
    from ..unet.data import InputError

    per_pixel = 1 + (4 * model.n_classes if args.probabilities else 0)
    need = 0
    for path in inputs:
        shape = open_zarr(path).array.shape
        channels = 1 if args.channel_axis is None else shape[args.channel_axis]
        need += math.prod(shape) // max(channels, 1) * per_pixel
    if not need:
        return
    existing = next(d for d in [out, *out.absolute().parents] if d.exists())
    free = shutil.disk_usage(existing).free
    if need > free:
        raise InputError(
            f"the zarr output(s) need up to {need / 1e9:,.1f} GB (uncompressed), more than the "
            f"{free / 1e9:,.1f} GB free under {existing}: predict a region, or write elsewhere"
        )


def _check_label_format(model: Any, fmt: str, any_file: bool) -> None:
    """Refuse ``--format png`` before any work when the model's label values exceed what a
    PNG holds (16 bits)."""
    from ..unet.data import InputError
    from ..workflow import label_values_table

    table = label_values_table(model)
    top = int(table.max()) if table is not None else model.n_classes
    if fmt == "png" and any_file and top > 65535:
        raise InputError(
            f"--format png: the model writes label values up to {top}, more than a PNG holds "
            "(65535); use --format tif"
        )


def _predict_one(
    model: Any,
    plan: dict[str, Path],
    args: argparse.Namespace,
    object_channel: int | None,
    bar: ProgressBar,
    client: Any,
) -> None:
    """Predict one input (zarr lazily, a file in memory) into the paths of ``plan``."""
    import numpy as np

    from ..io.images import is_zarr, read_image

    if is_zarr(plan["input"]):
        with _local_chunk_threads(args.threads if client is None else None):
            _predict_zarr_file(model, plan, args, bar, client)
    else:
        image = np.asarray(read_image(plan["input"], lazy=False))
        _predict_file(model, image, plan, args, object_channel, bar, client)


def _output_paths(
    inputs: Sequence[Path], out: Path, args: argparse.Namespace
) -> list[dict[str, Path]]:
    """For each input: the files to write (``labels``, ...) and the ``input`` itself."""
    from ..io.images import is_zarr, open_zarr, stem
    from ..unet.data import InputError

    plans: list[dict[str, Path]] = []
    seen: dict[Path, Path] = {}
    for path in inputs:
        s = stem(path)
        plan: dict[str, Path] = {}
        if is_zarr(path):
            ext = ".ome.zarr" if open_zarr(path).ome else ".zarr"
            plan["labels"] = out / f"{s}_labels{ext}"
            if args.probabilities:
                plan["probabilities"] = out / f"{s}_probabilities{ext}"
            if args.instances:
                raise InputError(
                    f"{path}: --instances is not available for zarr inputs (objects can span "
                    "chunks); predict the labels, then split objects in napari"
                )
            if args.entropy:
                raise InputError(
                    f"{path}: --entropy is not available for zarr inputs yet; write "
                    "--probabilities and compute H(x) from them"
                )
        else:
            plan["labels"] = out / f"{s}_labels.{args.format}"
            if args.probabilities:
                plan["probabilities"] = out / f"{s}_probabilities.tif"
            if args.instances:
                plan["instances"] = out / f"{s}_instances.tif"
            if args.entropy:
                plan["entropy"] = out / f"{s}_entropy.tif"
        for target in plan.values():
            if target in seen:
                raise InputError(
                    f"{path} and {seen[target]} would both be written to {target}: rename one"
                )
            seen[target] = path
        plan["input"] = path
        plans.append(plan)
    return plans


def _predict_file(
    model: Any,
    image: Any,
    plan: dict[str, Path],
    args: argparse.Namespace,
    object_channel: int | None,
    bar: ProgressBar,
    client: Any,
) -> None:
    """Predict an in-memory image (tiled, or as dask chunks on ``client``) and write it."""
    from ..io.images import write_image, write_labels
    from ..workflow import annotation_labels, segment, split_instances

    path = plan["input"]
    img, axis = model_input(
        image, path, model.in_channels, args.channel_axis, note=lambda t: status(t, args)
    )
    need_probs = any(name in plan for name in ("probabilities", "instances", "entropy"))
    if client is not None:
        from ..io.distributed import compute, predict_dask

        pred = predict_dask(
            model,
            img,
            channel_axis=axis,
            tile_size=args.tile_size,
            chunk_size=args.chunk_size,
            precision=args.precision,
            device=None if args.device == "auto" else args.device,
            batch_size=args.batch_size,
            client=client,
        )
        targets = [pred.labels] + ([pred.probabilities] if need_probs else [])
        results = compute(*targets, progress=bar, client=client)
        labels = annotation_labels(model, results[0])
        probs = results[1] if need_probs else None
    else:
        result = segment(
            model, img, axis, predict_options(args), probabilities=need_probs, progress=bar
        )
        labels, probs = result.labels, result.probabilities
    write_labels(plan["labels"], labels)  # staged names: checked, committed by cmd_predict
    if "probabilities" in plan:
        write_image(plan["probabilities"], probs)
    if "instances" in plan:
        inst = split_instances(probs[object_channel], instance_options(args))
        write_labels(plan["instances"], inst)
    if "entropy" in plan:
        from ..unet.uncertainty import normalized_entropy

        write_image(plan["entropy"], normalized_entropy(probs))


@contextlib.contextmanager
def _local_chunk_threads(threads: int | None) -> Iterator[None]:
    """--threads N for zarr inputs on this machine: dask's local scheduler runs N chunks at
    a time, one torch thread each (``distributed.compute``), instead of one per core."""
    if not threads:
        yield
        return
    import dask

    with dask.config.set(num_workers=threads):
        yield


def _predict_zarr_file(
    model: Any,
    plan: dict[str, Path],
    args: argparse.Namespace,
    bar: ProgressBar,
    client: Any,
) -> None:
    """Predict a zarr / OME-Zarr volume lazily, chunk by chunk, into zarr outputs."""
    from ..io.distributed import predict_zarr
    from ..io.images import open_zarr
    from ..workflow import label_values_table

    path = plan["input"]
    table = label_values_table(model)
    predict_zarr(
        model,
        path,
        plan["labels"],
        probabilities_path=plan.get("probabilities"),
        channel_axis=args.channel_axis,
        ome=open_zarr(path).ome,
        progress=bar if not args.quiet else None,
        client=client,
        tile_size=args.tile_size,
        chunk_size=args.chunk_size,
        stats=args.stats,
        precision=args.precision,
        device=None if args.device == "auto" else args.device,
        batch_size=args.batch_size,
        label_values=None if table is None else [int(v) for v in table],
    )
