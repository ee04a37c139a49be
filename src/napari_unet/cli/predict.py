"""``napari-unet predict``: segment image files, folders, globs and (OME-)Zarr volumes."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..workflow.batch import OUTPUT_SUFFIXES  # noqa: F401 - evaluate pairs by them
from .models import instance_options, load_model_arg, predict_options
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


def batch_request(args: argparse.Namespace) -> Any:
    """The workflow's :class:`~napari_unet.workflow.batch.BatchRequest` of the arguments."""
    from ..unet.data import InputError
    from ..workflow.batch import BatchRequest

    if getattr(args, "object_class", None) is not None and not args.instances:
        raise InputError("--object-class names the class split into objects: add --instances")
    if args.seed_threshold is not None and (not args.instances or args.no_split):
        raise InputError(
            "--seed-threshold splits --instances: it needs --instances, not --no-split"
        )
    return BatchRequest(
        inputs=[Path(p) for p in args.inputs],
        out=Path(args.out),
        overwrite=args.overwrite,
        label_format=args.format,
        probabilities=args.probabilities,
        entropy=args.entropy,
        instances=instance_options(args) if args.instances else None,
        channel_axis=args.channel_axis,
        options=predict_options(args),
        chunk_size=args.chunk_size,
        stats=args.stats,
    )


def cmd_predict(args: argparse.Namespace) -> int:
    from ..unet.data import InputError
    from ..workflow.batch import plan_batch, predict_batch
    from .cluster import start_client

    model = load_model_arg(args)
    plan = plan_batch(model, batch_request(args))  # every check before any work
    if args.tta and (args.workers or args.scheduler):
        raise InputError("--tta works on in-memory images, not with zarr inputs or a cluster")
    client, to_close = start_client(args)  # before creating anything: it may fail
    bars: list[ProgressBar] = []
    n = len(plan.files)

    def start(i: int, path: Path) -> None:
        bars.append(ProgressBar(f"[{i}/{n}] {path.name}", enabled=not args.quiet))

    try:
        with _local_chunk_threads(args.threads if client is None else None):
            written = predict_batch(
                model,
                plan,
                progress=lambda i, n, path, done, total: bars[-1](done, total),
                note=lambda text: status(text, args),
                client=client,
                start=start,
                end=lambda i, path: bars[-1].close(),
            )
    finally:
        for obj in to_close:
            obj.close()
    for target in written:
        status(f"wrote {target}", args)
    print(f"predicted {n} image(s) into {Path(args.out)}")
    return 0


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
