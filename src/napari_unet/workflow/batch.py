"""Predicting files and folders into an output folder, for the command line and the widget.

A :class:`BatchRequest` says what to predict and write; :func:`plan_batch` works out every
output path and refuses, before any work, what would fail or overwrite something it must
not (an input, a file napari-unet did not write, an existing output without
``overwrite``); :func:`predict_batch` predicts input after input into staged files and
renames them only when every input succeeded: a failed or cancelled batch writes nothing.

For each input <stem>: <stem>_labels.tif (or .png; zarr inputs: <stem>_labels.zarr, read
and written chunk by chunk), and on request <stem>_probabilities, <stem>_instances and
<stem>_entropy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..unet.data import InputError
from .file_inputs import model_input
from .prediction import InstanceOptions, PredictOptions, instance_channel, segment

#: Suffixes of the files a batch writes (``evaluate`` pairs <stem>_labels with <stem>).
#: Earlier outputs are recognised by the mark napari-unet writes into them, not by these.
OUTPUT_SUFFIXES = ("_labels", "_probabilities", "_instances", "_entropy")
LABEL_FORMATS = ("tif", "png")


class BatchCancelled(Exception):
    """The user cancelled the batch; nothing was written."""


@dataclass(frozen=True)
class BatchRequest:
    """What to predict (files, folders, globs, zarr) and what to write into ``out``."""

    inputs: Sequence[Path]
    out: Path
    overwrite: bool = False
    label_format: str = "tif"
    probabilities: bool = False
    entropy: bool = False
    instances: InstanceOptions | None = None  # None: no <stem>_instances
    channel_axis: int | None = None
    options: PredictOptions = field(default_factory=PredictOptions)
    chunk_size: int | None = None  # zarr: output chunk side; None: the input's
    stats: str = "plane"  # zarr: percentiles per "plane" or over the "global" volume


@dataclass
class BatchPlan:
    """The checked request: its input files and, per input, the paths to write."""

    request: BatchRequest
    files: list[dict[str, Path]]  # "input" and each output kind -> path
    object_channel: int | None

    @property
    def targets(self) -> list[Path]:
        return [p for plan in self.files for k, p in plan.items() if k != "input"]


def plan_batch(model: Any, request: BatchRequest) -> BatchPlan:
    """Every input and output path, checked before any work (raises :class:`InputError`)."""
    from ..io.images import check_output, expand_paths, is_zarr

    if request.label_format not in LABEL_FORMATS:
        raise InputError(f"labels are written as {' or '.join(LABEL_FORMATS)}")
    inputs = expand_paths([str(p) for p in request.inputs], skip_outputs=True)
    out = Path(request.out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    if any(out.resolve() == p.resolve() for p in inputs):
        raise InputError(f"{out}: refusing to write into an input")
    files = output_paths(inputs, out, request)
    for plan in files:
        for key, target in plan.items():
            if key != "input":
                check_output(target, overwrite=request.overwrite, inputs=inputs)
    if request.instances is not None:
        request.instances.validate()
    channel = instance_channel(model, request.instances, asked=True)
    check_label_format(model, request.label_format, any(not is_zarr(p) for p in inputs))
    check_zarr_outputs_fit(model, [p for p in inputs if is_zarr(p)], out, request)
    if request.options.tta and any(is_zarr(p) for p in inputs):
        raise InputError("--tta works on in-memory images, not with zarr inputs or a cluster")
    request.options.validate()
    return BatchPlan(request, files, channel)


def output_paths(
    inputs: Sequence[Path], out: Path, request: BatchRequest
) -> list[dict[str, Path]]:
    """For each input: the files to write (``labels``, ...) and the ``input`` itself."""
    from ..io.images import is_zarr, open_zarr, stem

    plans: list[dict[str, Path]] = []
    seen: dict[Path, Path] = {}
    for path in inputs:
        s = stem(path)
        plan: dict[str, Path] = {}
        if is_zarr(path):
            ext = ".ome.zarr" if open_zarr(path).ome else ".zarr"
            plan["labels"] = out / f"{s}_labels{ext}"
            if request.probabilities:
                plan["probabilities"] = out / f"{s}_probabilities{ext}"
            if request.instances is not None:
                raise InputError(
                    f"{path}: --instances is not available for zarr inputs (objects can span "
                    "chunks); predict the labels, then split objects in napari"
                )
            if request.entropy:
                raise InputError(
                    f"{path}: --entropy is not available for zarr inputs yet; write "
                    "--probabilities and compute H(x) from them"
                )
        else:
            plan["labels"] = out / f"{s}_labels.{request.label_format}"
            if request.probabilities:
                plan["probabilities"] = out / f"{s}_probabilities.tif"
            if request.instances is not None:
                plan["instances"] = out / f"{s}_instances.tif"
            if request.entropy:
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


def check_label_format(model: Any, fmt: str, any_file: bool) -> None:
    """Refuse PNG labels before any work when the model's label values exceed what a PNG
    holds (16 bits)."""
    from .models import label_values_table

    table = label_values_table(model)
    top = int(table.max()) if table is not None else model.n_classes
    if fmt == "png" and any_file and top > 65535:
        raise InputError(
            f"--format png: the model writes label values up to {top}, more than a PNG holds "
            "(65535); use --format tif"
        )


def check_zarr_outputs_fit(
    model: Any, inputs: Sequence[Path], out: Path, request: BatchRequest
) -> None:
    """Refuse zarr inputs whose outputs cannot fit on the output's disk, before any work (a
    store declaring 10^6 x 10^6 pixels would otherwise fail after minutes)."""
    import math
    import shutil

    from ..io.images import open_zarr

    per_pixel = 1 + (4 * model.n_classes if request.probabilities else 0)
    need = 0
    for path in inputs:
        shape = open_zarr(path).array.shape
        channels = 1 if request.channel_axis is None else shape[request.channel_axis]
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


#: progress(input number (1-based), inputs, input path, tiles or chunks done, total)
BatchProgress = Callable[[int, int, Path, int, int], Any]


def predict_batch(
    model: Any,
    plan: BatchPlan,
    *,
    progress: BatchProgress | None = None,
    cancelled: Callable[[], bool] = lambda: False,
    note: Callable[[str], None] | None = None,
    client: Any = None,
    start: Callable[[int, Path], Any] | None = None,
    end: Callable[[int, Path], Any] | None = None,
) -> list[Path]:
    """Predict every input of ``plan`` and write its outputs; returns the paths written.

    Outputs are staged and renamed only once every input succeeded; an error or
    ``cancelled()`` (checked between tiles) removes them, and :class:`BatchCancelled` is
    raised. ``start``/``end`` are called around each input (the CLI's progress bars);
    ``client``: a dask.distributed client for the chunks.
    """
    from ..io.outputs import OutputBatch

    out = Path(plan.request.out)
    created = [d for d in [out, *out.absolute().parents] if not d.exists()]
    out.mkdir(parents=True, exist_ok=True)
    n = len(plan.files)
    try:
        with OutputBatch() as batch:
            for i, files in enumerate(plan.files, 1):
                path = files["input"]
                staged = {k: (v if k == "input" else batch.stage(v)) for k, v in files.items()}

                def tiles(done: int, total: int, i: int = i, path: Path = path) -> None:
                    if cancelled():
                        raise BatchCancelled("cancelled: nothing was written")
                    if progress is not None:
                        progress(i, n, path, done, total)

                if start is not None:
                    start(i, path)
                try:
                    predict_input(model, staged, plan, tiles, note, client)
                except (InputError, ValueError) as err:
                    raise about(path, err) from err
                if end is not None:
                    end(i, path)
                if cancelled():
                    raise BatchCancelled("cancelled: nothing was written")
            return batch.commit()
    except BaseException:
        for folder in created:  # and no empty output folder is left behind
            try:
                folder.rmdir()  # only succeeds while it is empty
            except OSError:
                pass
        raise


def about(path: Path, err: Exception) -> InputError:
    """The error's first line, prefixed with the file it is about (once)."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return InputError(text if str(path) in text or path.name in text else f"{path}: {text}")


def predict_input(
    model: Any,
    files: dict[str, Path],
    plan: BatchPlan,
    progress: Callable[[int, int], None],
    note: Callable[[str], None] | None = None,
    client: Any = None,
) -> None:
    """Predict one input (zarr lazily, a file in memory) into the paths of ``files``."""
    import numpy as np

    from ..io.images import is_zarr, read_image

    if is_zarr(files["input"]):
        predict_zarr_input(model, files, plan.request, progress, client)
    else:
        image = np.asarray(read_image(files["input"], lazy=False))
        predict_file(model, image, files, plan, progress, note, client)


def predict_file(
    model: Any,
    image: Any,
    files: dict[str, Path],
    plan: BatchPlan,
    progress: Callable[[int, int], None],
    note: Callable[[str], None] | None = None,
    client: Any = None,
) -> None:
    """Predict an in-memory image (tiled, or as dask chunks on ``client``) and write it."""
    from ..io.images import write_image, write_labels
    from .prediction import annotation_labels, split_instances

    request = plan.request
    path = files["input"]
    img, axis = model_input(image, path, model.in_channels, request.channel_axis, note=note)
    need_probs = any(name in files for name in ("probabilities", "instances", "entropy"))
    if client is not None:
        from ..io.distributed import compute, predict_dask

        options = request.options
        pred = predict_dask(
            model,
            img,
            channel_axis=axis,
            tile_size=options.tile_size,
            chunk_size=request.chunk_size,
            precision=options.precision,
            device=None if options.device == "auto" else options.device,
            batch_size=options.batch_size,
            client=client,
        )
        targets = [pred.labels] + ([pred.probabilities] if need_probs else [])
        results = compute(*targets, progress=progress, client=client)
        labels = annotation_labels(model, results[0])
        probs = results[1] if need_probs else None
    else:
        result = segment(
            model, img, axis, request.options, probabilities=need_probs, progress=progress
        )
        labels, probs = result.labels, result.probabilities
    write_labels(files["labels"], labels)  # staged names: committed by predict_batch
    if "probabilities" in files:
        write_image(files["probabilities"], probs)
    if "instances" in files:
        assert request.instances is not None and plan.object_channel is not None
        write_labels(
            files["instances"], split_instances(probs[plan.object_channel], request.instances)
        )
    if "entropy" in files:
        from ..unet.uncertainty import normalized_entropy

        write_image(files["entropy"], normalized_entropy(probs))


def predict_zarr_input(
    model: Any,
    files: dict[str, Path],
    request: BatchRequest,
    progress: Callable[[int, int], None] | None,
    client: Any = None,
) -> None:
    """Predict a zarr / OME-Zarr volume lazily, chunk by chunk, into zarr outputs."""
    from ..io.distributed import predict_zarr
    from ..io.images import open_zarr
    from .models import label_values_table

    path = files["input"]
    table = label_values_table(model)
    options = request.options
    predict_zarr(
        model,
        path,
        files["labels"],
        probabilities_path=files.get("probabilities"),
        channel_axis=request.channel_axis,
        ome=open_zarr(path).ome,
        progress=progress,
        client=client,
        tile_size=options.tile_size,
        chunk_size=request.chunk_size,
        stats=request.stats,
        precision=options.precision,
        device=None if options.device == "auto" else options.device,
        batch_size=options.batch_size,
        label_values=None if table is None else [int(v) for v in table],
    )
