"""Overlap-tile prediction (paper, figure 2): a_k(x), p_k(x) and the label image.

With valid convolutions each output tile is computed from an input tile that holds all the
context it needs; context missing beyond the image border is mirrored. Tiles start on a
grid of 2**depth pixels so every max-pool sees the same pixel pairs as it would in one big
tile: the tiled result equals a single evaluation of the whole mirror-padded image (no
seams, no blending). Tiles are cut straight from the image with mirrored indices, so the
padded image is never materialised and working memory is bounded by the tile size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from ..runtime.allocator import keep_freed_memory
from ..runtime.devices import PRECISIONS, inference_context, resolve_device
from ..runtime.fusion import inference_copy
from .arguments import choice, flag, optional_whole_number, whole_number
from .data import as_channels_first, labels_from_logits, normalize
from .errors import InputError
from .memory_estimate import check_fits, inference_bytes
from .model import UNet, weights_finite


def default_tile_size(model: UNet) -> int:
    """Output tile side used when none is given: large tiles waste less context on halos,
    narrow networks afford larger ones for the same memory (about 1 GB at most). Measured
    for depth 4 on a 2-core CPU: 512 is the fastest for base 16 and base 32 (0.46 vs 0.42
    MPix/s at 384, same peak memory for a 4096^2 image), see docs/speed.md."""
    return 512 if model.base_channels <= 32 else 256


@dataclass
class Prediction:
    """The result of :func:`predict_tiled` for an image of spatial shape (..., H, W).

    logits: (K, ..., H, W) float32, the output feature channels a_k(x) (pre-softmax).
    probabilities: (K, ..., H, W) float32, p_k(x) = softmax over k (sums to 1 per pixel).
    labels: (..., H, W) argmax_k p_k(x) + 1, the class values of the annotation layer.
    """

    logits: np.ndarray | None
    probabilities: np.ndarray | None
    labels: np.ndarray


def mirror_indices(start: int, stop: int, n: int) -> np.ndarray:
    """Indices start..stop-1 into an axis of length n, mirrored at the borders.

    Mirroring excludes the edge pixel (numpy's "reflect": ... 2 1 | 0 1 2 ... n-1 | n-2 ...)
    and repeats as often as needed, so any index maps to the same pixel whatever the amount
    of padding. An axis of length 1 repeats its only pixel.
    """
    return mirror_index(np.arange(start, stop), n)


def mirror_index(index: np.ndarray, n: int) -> np.ndarray:
    """Integer indices of any value mirrored into 0..n-1, as :func:`mirror_indices`."""
    if n == 1:
        return np.zeros_like(index)
    period = 2 * (n - 1)
    index = np.mod(index, period)
    return np.where(index < n, index, period - index)


def context(model: UNet) -> int:
    """Input context read on each side of an output tile, a multiple of 2**depth.

    Valid padding needs ``model.margin`` pixels (92 for the paper's net); rounding up to
    the 2**depth grid puts every tile's max-pool grid on the image's own grid, so results
    do not depend on tiling and agree with tools that run the network on the unpadded
    image (bioimage.io consumers). "same" padding reads more context than the receptive
    field's valid margin so zero padding at tile borders never reaches the kept centre.
    """
    mult = model.size_multiple
    if model.padding == "valid":
        return mult * math.ceil(model.margin / mult)
    return mult * (_valid_margin(model.depth) // mult + 1)


def tile_geometry(model: UNet, tile_size: int | None) -> tuple[int, int, int, int]:
    """(input tile, output tile, halo, step) for a model and a requested output tile side.

    A tile for output rows [y0, y0 + output tile) reads input rows [y0 - halo,
    y0 - halo + input tile) and keeps network output rows [halo - margin, ...) (see
    :func:`tile_crop`). Tile starts y0 are multiples of ``step``, itself a multiple of
    2**depth, so all tiles share one pooling grid.
    """
    mult = model.size_multiple
    out_req = max(int(tile_size or default_tile_size(model)), 1)
    halo = context(model)
    crop = halo - model.margin
    if model.padding == "valid":
        tile_in = model.input_size_for_output(out_req + crop)
        tile_out = model.output_size(tile_in) - crop
    else:
        tile_out = mult * math.ceil(out_req / mult)
        tile_in = tile_out + 2 * halo
    step = max(mult, (tile_out // mult) * mult)
    return tile_in, tile_out, halo, step


def fitted_tile_size(
    tile_size: int | None, h: int, w: int, model: UNet | None = None
) -> int | None:
    """A tile side no larger than the image: a bigger tile computes nothing more
    (overlap-tile gives the same a_k(x) for any tile size), only costs time and memory.
    With ``model``, the default tile (``tile_size=None``) is fitted too: a 128 x 136 image
    ran as one 604-px tile, 3.5x slower than with a fitted one."""
    if tile_size is None and model is not None:
        tile_size = default_tile_size(model)
    return None if tile_size is None else min(tile_size, max(h, w, 1))


def tile_crop(model: UNet, halo: int) -> int:
    """Network output pixels to drop before a tile's kept output (halo minus the margin)."""
    return halo - model.margin


def _valid_margin(depth: int) -> int:
    return 2 * sum(2 * 2**i for i in range(depth)) + 2 * 2**depth


def tile_starts(length: int, tile_out: int, step: int) -> list[int]:
    """Output-coordinate starts of the tiles along one axis (on the 2**depth grid)."""
    if length <= tile_out:
        return [0]
    n = math.ceil((length - tile_out) / step) + 1
    return [i * step for i in range(n)]


def iter_tiles(
    plane: np.ndarray, tile_in: int, tile_out: int, halo: int, step: int
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (y0, x0, input tile) for a (C, H, W) plane; y0/x0 are output coordinates."""
    _, h, w = plane.shape
    for y0 in tile_starts(h, tile_out, step):
        rows = mirror_indices(y0 - halo, y0 - halo + tile_in, h)
        band = plane[:, rows]
        for x0 in tile_starts(w, tile_out, step):
            cols = mirror_indices(x0 - halo, x0 - halo + tile_in, w)
            yield y0, x0, band[:, :, cols]


def predict_plane_logits(
    model: UNet,
    plane: np.ndarray,
    *,
    tile_size: int | None = None,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    tile_done: Callable[[], None] | None = None,
) -> np.ndarray:
    """a_k(x) of one normalised (C, H, W) float32 plane by overlap-tile: (K, H, W) float32."""
    dev = resolve_device(device)
    _, h, w = plane.shape
    tile_in, tile_out, halo, step = tile_geometry(model, fitted_tile_size(tile_size, h, w, model))
    crop = tile_crop(model, halo)
    tiles = len(tile_starts(h, tile_out, step)) * len(tile_starts(w, tile_out, step))
    batch = min(batch_size, tiles)
    check_fits(
        inference_bytes(model, batch, tile_in),
        dev,
        f"predicting {batch} tile(s) of {tile_in} x {tile_in} pixels at a time",
        "lower the tile size or the batch size",
    )
    out = np.empty((model.n_classes, h, w), np.float32)
    pending: list[tuple[int, int, np.ndarray]] = []

    def flush() -> None:
        batch = torch.from_numpy(np.stack([t for _, _, t in pending]))  # run() copies it
        with inference_context(model, dev, precision) as run:
            logits = run(batch)
        logits = logits[..., crop : crop + tile_out, crop : crop + tile_out]
        logits = logits.float().cpu().numpy()
        for (y0, x0, _), tile_logits in zip(pending, logits, strict=True):
            y1, x1 = min(y0 + tile_out, h), min(x0 + tile_out, w)
            out[:, y0:y1, x0:x1] = tile_logits[:, : y1 - y0, : x1 - x0]
            if tile_done is not None:
                tile_done()
        pending.clear()

    for tile in iter_tiles(plane, tile_in, tile_out, halo, step):
        pending.append(tile)
        if len(pending) >= batch_size:
            flush()
    if pending:
        flush()
    return out


def count_tiles(model: UNet, spatial_shape: tuple[int, ...], tile_size: int | None) -> int:
    """How many tiles :func:`predict_tiled` runs for an image of shape (..., H, W)."""
    h, w = spatial_shape[-2:]
    _, tile_out, _, step = tile_geometry(model, fitted_tile_size(tile_size, h, w, model))
    planes = int(np.prod(spatial_shape[:-2], dtype=np.int64))
    return planes * len(tile_starts(h, tile_out, step)) * len(tile_starts(w, tile_out, step))


def check_prediction_settings(
    *, tile_size: int | None = None, batch_size: int = 1, precision: str = "fp32"
) -> None:
    """The settings of a prediction, checked before any work (API, CLI and widget)."""
    optional_whole_number(tile_size, "tile size")
    whole_number(batch_size, "batch size")
    choice(precision, "precision", PRECISIONS)


def check_model_weights(model: torch.nn.Module) -> None:
    """Refuse a model whose weights hold NaN or inf: it would predict one class everywhere."""
    if not weights_finite(model):
        raise InputError(
            "the model's weights contain NaN or infinite values (a diverged training?): it "
            "cannot predict; load or train another model"
        )


def predict_tiled(
    model: UNet,
    image: np.ndarray,
    *,
    channel_axis: int | None = None,
    tile_size: int | None = None,
    normalize_input: bool = True,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    precision: str = "fp32",
    return_logits: bool = True,
    return_probabilities: bool = True,
    test_time_augmentation: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> Prediction:
    """Overlap-tile prediction of a 2D image, a stack of planes or a multi-channel image.

    image: (..., H, W) grey planes, or with ``channel_axis`` naming the channel axis
        (``-1`` for napari RGB). Leading axes (Z, T, ...) are predicted plane by plane.
    tile_size: requested output tile side (rounded up to a valid size); memory is bounded
        by it, not by the image.
    normalize_input: apply the model's recorded normalisation (``model.record``) per plane.
    precision: "fp32", "bf16" (CPUs with AVX-512 BF16/AMX, GPUs) or "fp16" (GPUs).
    test_time_augmentation: predict the 8 flips/quarter turns of each plane and average
        their a_k(x) (the paper averages rotated versions of the input, section 4): about
        8x the time, usually fewer one-pixel errors.
    progress: called as progress(tiles_done, tiles_total).

    Returns a :class:`Prediction` whose arrays have the image's spatial size: a_k(x) and
    p_k(x) as (K, ..., H, W) float32 and labels (..., H, W) with values k + 1.
    """
    if not isinstance(model, UNet):
        raise TypeError(f"predict_tiled needs a napari-unet UNet, got {type(model).__name__}")
    check_prediction_settings(tile_size=tile_size, batch_size=batch_size, precision=precision)
    for name, value in [("normalize_input", normalize_input), ("return_logits", return_logits),
                        ("return_probabilities", return_probabilities),
                        ("test_time_augmentation", test_time_augmentation)]:  # fmt: skip
        flag(value, name)
    check_model_weights(model)
    planes = as_channels_first(image, channel_axis, model.in_channels)
    lead = planes.shape[:-3]
    h, w = planes.shape[-2:]
    k = model.n_classes
    logits = np.empty((k, *lead, h, w), np.float32) if return_logits else None
    probs = np.empty((k, *lead, h, w), np.float32) if return_probabilities else None
    labels = np.empty((*lead, h, w), np.uint8 if k < 255 else np.uint16)
    views = DIHEDRAL_VIEWS if test_time_augmentation else DIHEDRAL_VIEWS[:1]
    total = count_tiles(model, (*lead, h, w), tile_size) * len(views)
    done = 0

    def tile_done() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    norm = model.record.normalization_dict()
    net = inference_copy(model)  # once per call: the model may be trained in between
    for index in np.ndindex(*lead):
        plane = planes[index]
        plane = normalize(plane, norm) if normalize_input else plane.astype(np.float32)
        a: np.ndarray | None = None  # the sum over views, without a copy for one view
        # the tiles of every view in one block: freed feature maps are reused, not
        # re-faulted (allocator.py); the whole-plane steps below run outside it
        with keep_freed_memory():
            for turns, flip in views:
                view = np.ascontiguousarray(dihedral(plane, turns, flip))
                a_view = predict_plane_logits(
                    net,
                    view,
                    tile_size=tile_size,
                    batch_size=batch_size,
                    device=device,
                    precision=precision,
                    tile_done=tile_done,
                )
                a_view = undo_dihedral(a_view, turns, flip)
                if a is None:
                    a = a_view
                else:
                    a += a_view
        assert a is not None
        if len(views) > 1:
            a /= len(views)
        sl = (slice(None), *index)
        labels[index] = labels_from_logits(a)
        if logits is not None:
            logits[sl] = a
        if probs is not None:
            probs[sl] = softmax_numpy(a)
    return Prediction(logits, probs, labels)


#: the 8 symmetries of the square: (quarter turns, then flip left-right?)
DIHEDRAL_VIEWS: tuple[tuple[int, bool], ...] = tuple(
    (t, f) for f in (False, True) for t in range(4)
)


def dihedral(array: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    """Rotate the last two axes by ``turns`` quarter turns, then optionally flip columns."""
    out = np.rot90(array, turns, axes=(-2, -1))
    return out[..., ::-1] if flip else out


def undo_dihedral(array: np.ndarray, turns: int, flip: bool) -> np.ndarray:
    """The inverse of :func:`dihedral`."""
    out = array[..., ::-1] if flip else array
    return np.rot90(out, -turns, axes=(-2, -1))


def softmax_numpy(logits: np.ndarray) -> np.ndarray:
    """p_k(x) = exp(a_k(x)) / sum_k' exp(a_k'(x)) (paper, section 3) of a (K, ...) array
    over its first axis, as float32: torch's stable multi-threaded softmax, ~3x numpy's."""
    a = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))
    return torch.softmax(a, dim=0).numpy()


def predict_single_tile(model: UNet, plane: np.ndarray) -> np.ndarray:
    """Reference evaluation: the whole normalised (C, H, W) plane as one mirror-padded tile.

    The plane is padded by :func:`context` on the top/left (mirrored) and as much as needed
    on the bottom/right. Only for checking :func:`predict_tiled` (memory grows with the
    image).
    """
    _, h, w = plane.shape
    halo = context(model)
    crop = tile_crop(model, halo)
    if model.padding == "valid":
        size_h = model.valid_input_size(h + halo + crop + model.margin)
        size_w = model.valid_input_size(w + halo + crop + model.margin)
    else:
        size_h = model.size_multiple * math.ceil((h + 2 * halo) / model.size_multiple)
        size_w = model.size_multiple * math.ceil((w + 2 * halo) / model.size_multiple)
    rows = mirror_indices(-halo, size_h - halo, h)
    cols = mirror_indices(-halo, size_w - halo, w)
    tile = torch.from_numpy(np.ascontiguousarray(plane[:, rows][:, :, cols]))[None]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model(tile.to(next(model.parameters()).device))[0].float().cpu().numpy()
    finally:
        model.train(was_training)
    return out[:, crop : crop + h, crop : crop + w]
