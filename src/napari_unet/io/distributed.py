"""Chunk-by-chunk prediction of large images with dask, exactly equal to ``predict_tiled``.

How the result stays exact (paper, figure 2: overlap-tile):

- Output chunks start on the model's 2**depth grid (chunk sides are multiples of 2**depth),
  so every tile inside a chunk starts where :func:`~napari_unet.unet.tiling.predict_tiled`'s
  tiles could start, and every max-pool sees the same pixel pairs as in one big tile.
- Each output chunk is computed from an input window of the chunk plus the model's
  context (the halo) on every side, cut from the *whole* image with
  :func:`~napari_unet.unet.tiling.mirror_indices`: context beyond the image border is mirrored
  exactly as the in-memory prediction mirrors it, and context inside the image comes from
  the neighbouring chunks. (dask's own ``map_overlap`` boundaries are not this mirror and
  would need chunks wider than the halo, so the graph is built here: one task per output
  chunk, depending on the input chunks its window touches.)
- Normalisation must use the same numbers as the in-memory path: by default per-plane
  percentiles like ``predict_tiled`` (computed exactly when a plane has at most
  ``max_samples`` pixels, from an even subsample otherwise), or statistics you pass in.

The model enters the graph once, as one key (``dask.delayed``), or, when a
``distributed.Client`` is active, as one future broadcast to every worker with
``client.scatter(..., broadcast=True)``: it is shipped to each worker once, not per chunk.
Memory per task is bounded by the chunk size (plus halo), not by the image size. Torch runs
one thread per dask thread (inside distributed workers, and during :func:`compute`): dask's
own threads give the parallelism.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..unet.data import InputError, as_channels_first
from ..unet.normalization import apply_bounds, percentile_bounds, percentiles_of

DEFAULT_CHUNK = 1024  # output chunk side when the input has no chunks of its own
MAX_SAMPLES = 2**22  # pixels per channel used to compute normalisation percentiles

_PREPARE_LOCK = threading.Lock()


@dataclass
class DaskPrediction:
    """Lazy results of :func:`predict_dask` for an image of spatial shape (..., H, W).

    logits: (K, ..., H, W) float32 a_k(x); probabilities: (K, ..., H, W) float32 p_k(x);
    labels: (..., H, W) class values (k + 1, or ``label_values[k]``). All share the same
    prediction tasks, so storing several of them in one ``dask.array.store`` call predicts
    each chunk once.
    """

    logits: Any
    probabilities: Any
    labels: Any


# ---------------------------------------------------------------------------- helpers
def _chunk_sizes(length: int, chunk: int) -> tuple[int, ...]:
    full, rest = divmod(length, chunk)
    return (chunk,) * full + ((rest,) if rest else ())


def normalization_stats(
    image: Any,
    normalization: dict[str, Any] | None,
    *,
    per_plane: bool = True,
    max_samples: int = MAX_SAMPLES,
) -> np.ndarray | None:
    """Percentile statistics (p_low, p_high) of a (..., C, H, W) array, as in
    :func:`napari_unet.unet.data.normalize`.

    Returns an array (..., C, 2) (``per_plane``) or (C, 2), or None when the recipe is
    ``{"method": "none"}``. Exact (the same numbers as the in-memory ``normalize``) when
    each plane has at most ``max_samples`` pixels; otherwise from an evenly strided
    subsample of about ``max_samples`` pixels per channel in total, so memory stays bounded.
    """
    import dask.array as da

    percentiles = percentiles_of(normalization)
    if percentiles is None:
        return None
    darr = da.asarray(image)
    lead = darr.shape[:-3]
    n_planes = int(np.prod(lead, dtype=np.int64))
    h, w = darr.shape[-2:]
    budget = max(max_samples // max(n_planes, 1), 1)  # samples per plane and channel
    stride = max(1, math.ceil(math.sqrt(h * w / budget)))
    sample = np.asarray(darr[..., ::stride, ::stride].compute(), dtype=np.float32)
    if not np.isfinite(sample).all():
        raise InputError("the image contains NaN or infinite pixels")
    c = sample.shape[-3]
    if per_plane:
        flat = sample.reshape(*lead, c, -1).astype(np.float64)
    else:
        flat = np.moveaxis(sample.reshape(-1, c, sample.shape[-2] * sample.shape[-1]), 1, 0)
        flat = flat.reshape(c, -1).astype(np.float64)
    lo, hi = percentile_bounds(flat, *percentiles)
    return np.stack([lo, hi], axis=-1)


def _apply_stats(window: np.ndarray, stats: np.ndarray | None) -> np.ndarray:
    """(x - p_low) / (p_high - p_low) per channel, computed as ``data.normalize`` does."""
    x = np.asarray(window, dtype=np.float32)
    if not np.isfinite(x).all():
        raise InputError("the image contains NaN or infinite pixels")
    if stats is None:
        return x
    return apply_bounds(x, stats[..., 0], stats[..., 1])


def _prepared(model: Any, device: Any) -> Any:
    """Put the model on ``device`` in eval mode once per process (thread-safe)."""
    import torch

    with _PREPARE_LOCK:
        key = str(device)
        if getattr(model, "_napari_unet_ready", None) != key:
            model.to(device=device, memory_format=torch.channels_last)
            model.eval()
            model.requires_grad_(False)
            model._napari_unet_ready = key
    return model


def _predict_block(
    model: Any,
    blocks: list,
    *,
    plane: tuple[int, ...],
    rows: np.ndarray,
    cols: np.ndarray,
    out_h: int,
    out_w: int,
    starts_y: list[int],
    starts_x: list[int],
    tile_in: int,
    tile_out: int,
    halo: int,
    stats: np.ndarray | None,
    precision: str,
    device: str | None,
    batch_size: int,
    torch_threads: int | None,
    n_lead: int,
) -> np.ndarray:
    """a_k(x) of one output chunk: (K, 1, ..., 1, out_h, out_w) float32.

    ``blocks`` are the input chunks (1, ..., C, h, w) around the output chunk; ``rows`` /
    ``cols`` index the mirrored global input window into their concatenation.
    """
    import torch

    from ..runtime.devices import autocast_dtype, resolve_device

    threads = torch_threads if torch_threads is not None else (1 if _in_worker() else None)
    if threads and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    region = np.concatenate([np.concatenate(row, axis=-1) for row in blocks], axis=-2)
    region = region.reshape(region.shape[-3:])  # (C, h, w)
    window = region[:, rows][:, :, cols]
    window = _apply_stats(window, None if stats is None else stats[plane])
    dev = resolve_device(device)
    net = _prepared(model, dev)
    dtype = autocast_dtype(precision)
    if dev.type == "cpu" and dtype is torch.float16:
        raise ValueError("fp16 is for GPUs; use bf16 on the CPU")
    out = np.empty((net.n_classes, out_h, out_w), np.float32)
    tiles = [(y, x) for y in starts_y for x in starts_x]
    for b in range(0, len(tiles), max(batch_size, 1)):
        batch_pos = tiles[b : b + max(batch_size, 1)]
        batch = np.stack([window[:, y : y + tile_in, x : x + tile_in] for y, x in batch_pos])
        xb = torch.from_numpy(batch).to(dev).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if dtype is None:
                logits = net(xb)
            else:
                with torch.autocast(device_type=dev.type, dtype=dtype):
                    logits = net(xb)
        crop = halo - net.margin
        logits = logits[..., crop : crop + tile_out, crop : crop + tile_out]
        logits = logits.float().cpu().numpy()
        for (y, x), a in zip(batch_pos, logits, strict=True):
            y1, x1 = min(y + tile_out, out_h), min(x + tile_out, out_w)
            out[:, y:y1, x:x1] = a[:, : y1 - y, : x1 - x]
    return out.reshape(net.n_classes, *([1] * n_lead), out_h, out_w)


def _in_worker() -> bool:
    """True inside a ``dask.distributed`` worker."""
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _labels_block(logits: np.ndarray, lut: np.ndarray) -> np.ndarray:
    return lut[logits.argmax(axis=0)]


def _client(client: Any = None) -> Any:
    """The given client, else the active default ``distributed.Client``, else None."""
    if client is not None:
        return client
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - distributed is optional
        return None
    try:
        return default_client()
    except ValueError:
        return None


def model_node(model: Any, client: Any = None) -> Any:
    """The model as one dask graph node: broadcast to every worker once with
    ``client.scatter`` when a distributed client is active, else a single delayed key."""
    import dask

    from ..runtime.fusion import inference_copy

    ship = inference_copy(model).cpu()
    ship.requires_grad_(False)
    client = _client(client)
    if client is not None:
        future = client.scatter(ship, broadcast=True, hash=False)
        return dask.delayed(future)
    return dask.delayed(ship, name=f"unet-model-{uuid.uuid4().hex}", traverse=False)


# ---------------------------------------------------------------------------- prediction
def predict_dask(
    model: Any,
    image: Any,
    *,
    channel_axis: int | None = None,
    tile_size: int | None = None,
    chunk_size: int | Sequence[int] | None = None,
    normalize_input: bool = True,
    stats: str | np.ndarray = "plane",
    precision: str = "fp32",
    device: str | None = None,
    batch_size: int = 1,
    torch_threads: int | None = None,
    label_values: Sequence[int] | None = None,
    client: Any = None,
) -> DaskPrediction:
    """Overlap-tile prediction of a (large) image as lazy dask arrays, chunk by chunk.

    image: a dask or numpy array (..., H, W), with ``channel_axis`` naming its channel
        axis if it has one (as :func:`~napari_unet.unet.tiling.predict_tiled`).
    chunk_size: output chunk side (per spatial axis), rounded up to a multiple of
        2**depth; defaults to the input's chunk side (or 1024).
    stats: normalisation statistics: ``"plane"`` (percentiles per plane, as
        ``predict_tiled``), ``"global"`` (one set over the whole array, for volumes), or an
        array (C, 2) / (..., C, 2) of (p_low, p_high) values mapped to 0 and 1. Ignored when
        ``normalize_input`` is False or the model records ``{"method": "none"}``.
    torch_threads: torch threads per task; default: 1 inside a ``distributed`` worker (its
        threads give the parallelism), unchanged elsewhere (:func:`compute` sets 1 for the
        duration of a local computation).
    label_values: the label value of each class channel (default k + 1).
    client: a ``distributed.Client`` to ship the model to (default: the active one, if any).

    With the same normalisation the result equals ``predict_tiled`` to float precision:
    no seams at chunk borders. Nothing is computed until the arrays are.
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    from ..unet.tiling import default_tile_size, mirror_indices, tile_geometry, tile_starts

    x = as_channels_first(da.asarray(image), channel_axis, model.in_channels)
    lead = x.shape[:-3]
    n_lead = len(lead)
    c = x.shape[-3]
    h, w = x.shape[-2:]
    mult = model.size_multiple

    # ---- output chunk grid and tile geometry. Valid padding: any tile placed on the
    # 2**depth grid gives exactly the same values, so chunk sides are multiples of 2**depth
    # and tiles need not be larger than a chunk. "same" padding: the kept centre of a tile
    # still depends a little on where the tile lies, so the tiles are laid exactly as
    # predict_tiled lays them (chunk sides multiples of the output tile).
    if chunk_size is None:
        sizes = (x.chunks[-2][0], x.chunks[-1][0]) if isinstance(image, da.Array) else None
        sizes = sizes or (DEFAULT_CHUNK, DEFAULT_CHUNK)
    elif isinstance(chunk_size, int):
        sizes = (chunk_size, chunk_size)
    else:
        sizes = tuple(int(s) for s in chunk_size)  # type: ignore[assignment]
    requested = int(tile_size or default_tile_size(model))
    if model.padding == "valid":
        grid = mult
        cy, cx = (max(grid, grid * math.ceil(int(s) / grid)) for s in sizes)
        requested = min(requested, max(cy, cx))
        tile_in, tile_out, halo, step = tile_geometry(model, requested)
    else:
        tile_in, tile_out, halo, step = tile_geometry(model, requested)
        grid = step
        cy, cx = (max(grid, grid * math.ceil(int(s) / grid)) for s in sizes)
    x = x.rechunk((1,) * n_lead + (c, cy, cx))
    ychunks, xchunks = _chunk_sizes(h, cy), _chunk_sizes(w, cx)

    # ---- normalisation statistics (global, so chunks agree with the in-memory result)
    norm = model.record.normalization_dict()
    if not normalize_input or (norm or {}).get("method") == "none":
        stats_arr = None
    elif isinstance(stats, str):
        if stats not in ("plane", "global"):
            raise ValueError(f"stats must be 'plane', 'global' or an array, got {stats!r}")
        stats_arr = normalization_stats(x, norm, per_plane=stats == "plane")
    else:
        stats_arr = np.asarray(stats, dtype=np.float64)
    if stats_arr is not None:
        if stats_arr.shape[-2:] != (c, 2):
            raise InputError(f"normalisation stats must have shape (..., {c}, 2)")
        stats_arr = np.broadcast_to(stats_arr, (*lead, c, 2)).copy()

    mnode = model_node(model, client)
    token = tokenize(x.name, mnode.key, tile_size, cy, cx, precision, stats_arr, device)
    name = f"unet-logits-{token}"
    xkeys = x.__dask_keys__()
    ystarts = np.cumsum((0,) + x.chunks[-2])
    xstarts = np.cumsum((0,) + x.chunks[-1])
    layer: dict[tuple, Any] = {}

    def window(start: int, length: int, n: int, chunk_starts: np.ndarray, tiles: list[int]):
        stop = start + tiles[-1] + tile_in
        idx = mirror_indices(start - halo, stop - halo, n)
        first = int(np.searchsorted(chunk_starts, idx.min(), side="right") - 1)
        last = int(np.searchsorted(chunk_starts, idx.max(), side="right") - 1)
        return idx - int(chunk_starts[first]), range(first, last + 1)

    spatial: list[tuple[int, int, Any]] = []
    for by, bh in enumerate(ychunks):
        sy = tile_starts(bh, tile_out, step)
        rows, yblocks = window(by * cy, bh, h, ystarts, sy)
        for bx, bw in enumerate(xchunks):
            sx = tile_starts(bw, tile_out, step)
            cols, xblocks = window(bx * cx, bw, w, xstarts, sx)
            spatial.append((by, bx, (bh, bw, sy, sx, rows, cols, yblocks, xblocks)))
    for plane in np.ndindex(*lead):
        sub = xkeys
        for i in plane:
            sub = sub[i]
        sub = sub[0]  # the single channel chunk
        for by, bx, (bh, bw, sy, sx, rows, cols, yblocks, xblocks) in spatial:
            func = partial(
                _predict_block,
                plane=plane,
                rows=rows,
                cols=cols,
                out_h=bh,
                out_w=bw,
                starts_y=sy,
                starts_x=sx,
                tile_in=tile_in,
                tile_out=tile_out,
                halo=halo,
                stats=stats_arr,
                precision=precision,
                device=device,
                batch_size=batch_size,
                torch_threads=torch_threads,
                n_lead=n_lead,
            )
            blocks = [[sub[ky][kx] for kx in xblocks] for ky in yblocks]
            layer[(name, 0, *plane, by, bx)] = (func, mnode.key, blocks)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[x, mnode])
    k = model.n_classes
    chunks = ((k,), *(((1,) * n) for n in lead), ychunks, xchunks)
    logits = da.Array(graph, name, chunks=chunks, dtype=np.float32)

    values = np.arange(1, k + 1) if label_values is None else np.asarray(label_values)
    if len(values) != k:
        raise ValueError(f"{len(values)} label values for {k} classes")
    if values.min() >= 0 and values.max() < 256:
        dtype: Any = np.uint8
    elif values.min() >= 0 and values.max() < 65536:
        dtype = np.uint16
    else:
        dtype = np.int64
    from ..unet.tiling import softmax_numpy

    lut = values.astype(dtype)
    labels = logits.map_blocks(partial(_labels_block, lut=lut), drop_axis=0, dtype=dtype)
    probabilities = logits.map_blocks(softmax_numpy, dtype=np.float32)
    return DaskPrediction(logits, probabilities, labels)


# ---------------------------------------------------------------------------- computing
def compute(
    *targets: Any,
    progress: Callable[[int, int], None] | None = None,
    client: Any = None,
    block_prefix: str = "unet-logits-",
) -> list[Any]:
    """Compute dask collections (or a ``store(..., compute=False)`` result).

    ``progress(done, total)`` is called as prediction chunks finish (threaded / local
    schedulers); with a distributed client, distributed's own text progress bar is shown
    on stderr instead when ``progress`` is given and stderr is a terminal.
    """
    import dask

    client = _client(client)
    if client is not None:
        import sys

        futures = client.compute(list(targets))
        if progress is not None and sys.stderr.isatty():
            import contextlib

            from distributed import progress as dist_progress

            with contextlib.redirect_stdout(sys.stderr):
                dist_progress(futures)
            print(file=sys.stderr)
        return client.gather(futures)
    import torch

    threads = torch.get_num_threads()
    if dask.config.get("scheduler", None) not in ("sync", "synchronous", "single-threaded"):
        torch.set_num_threads(1)  # dask's threads give the parallelism
    try:
        return _compute_local(targets, progress, block_prefix)
    finally:
        torch.set_num_threads(threads)


def _compute_local(
    targets: Sequence[Any], progress: Callable[[int, int], None] | None, block_prefix: str
) -> list[Any]:
    import dask

    if progress is None:
        return list(dask.compute(*targets))
    from dask.callbacks import Callback

    class _Blocks(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.total = 0
            self.done = 0
            self.lock = threading.Lock()

        def _start(self, dsk: Any) -> None:
            self.total = sum(
                1 for key in dsk if isinstance(key, tuple) and str(key[0]).startswith(block_prefix)
            )
            progress(0, self.total)

        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            if isinstance(key, tuple) and str(key[0]).startswith(block_prefix):
                with self.lock:
                    self.done += 1
                    done = self.done
                progress(done, self.total)

    with _Blocks():
        return list(dask.compute(*targets))


def predict_zarr(
    model: Any,
    source: str | Path,
    labels_path: str | Path | None,
    *,
    probabilities_path: str | Path | None = None,
    channel_axis: int | None = None,
    ome: bool = True,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    client: Any = None,
    **kwargs: Any,
) -> list[Path]:
    """Predict a zarr / OME-Zarr image chunk by chunk and write the labels (and optionally
    the probabilities) to new zarr / OME-Zarr stores, chunk by chunk.

    The OME axes of the input (if any) carry over: its "c" axis is the channel axis and is
    dropped from the labels; probabilities get a leading "c" axis (one per class). Keyword
    arguments go to :func:`predict_dask`. Returns the paths written.
    """
    import dask.array as da

    from .images import check_output, default_axes, open_zarr, remove_store

    src = open_zarr(source)
    if channel_axis is None:
        channel_axis = src.channel_axis
    pred = predict_dask(model, src.array, channel_axis=channel_axis, client=client, **kwargs)
    nd = src.array.ndim
    axes = src.axes or default_axes(nd - (channel_axis is not None))
    scale = src.scale
    if src.axes and channel_axis is not None:
        ci = channel_axis % nd
        axes = [a for i, a in enumerate(src.axes) if i != ci]
        scale = [s for i, s in enumerate(scale) if i != ci] if scale else None
    elif not src.axes and channel_axis is not None:
        scale = None
    inputs = [Path(source)]
    for path in (labels_path, probabilities_path):  # check both before creating either
        if path is not None:
            check_output(path, overwrite=overwrite, inputs=inputs)
    attrs = {"napari_unet": {"source": str(source), "classes": model.record.classes.names}}
    sources, targets, written = [], [], []
    if labels_path is not None:
        arr = pred.labels
        targets.append(
            _create(labels_path, arr, axes, scale, src.units, ome, overwrite, inputs, attrs)
        )
        sources.append(arr)
        written.append(Path(labels_path))
    if probabilities_path is not None:
        arr = pred.probabilities
        p_axes = ["c", *axes] if "c" not in axes else ["class", *axes]
        p_scale = [1.0, *scale] if scale else None
        targets.append(
            _create(
                probabilities_path, arr, p_axes, p_scale, src.units, ome, overwrite, inputs, attrs
            )
        )
        sources.append(arr)
        written.append(Path(probabilities_path))
    if not sources:
        raise ValueError("nothing to write: give a labels and/or a probabilities path")
    store = da.store(sources, targets, lock=False, compute=False)
    try:
        compute(store, progress=progress, client=client)
    except BaseException:
        for path in written:  # no half-written results
            remove_store(path)
        raise
    return written


def _create(
    path: str | Path,
    arr: Any,
    axes: list[str],
    scale: list[float] | None,
    units: dict[str, str],
    ome: bool,
    overwrite: bool,
    inputs: list[Path],
    attrs: dict[str, Any],
) -> Any:
    from .images import create_zarr_array

    return create_zarr_array(
        path,
        shape=arr.shape,
        dtype=arr.dtype,
        chunks=[c[0] for c in arr.chunks],
        ome=ome,
        axes=axes,
        scale=scale,
        units=units,
        overwrite=overwrite,
        inputs=inputs,
        attrs=attrs,
    )
