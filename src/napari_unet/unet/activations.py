"""Look inside the network: capture any level's activations with forward hooks.

Each captured level comes with the scale and translation that place its pixels over the
input image in napari (level l of the contracting path has pixels 2**l input pixels apart;
valid convolutions shrink every level symmetrically around the centre).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..runtime.devices import inference_context, resolve_device
from .data import as_channels_first, normalize
from .model import UNet
from .tiling import context, mirror_indices


@dataclass
class LevelActivations:
    """Channels of one level, (C, h, w) float32, and how to overlay them on the input.

    In napari: ``viewer.add_image(a.channels, scale=(1, s, s), translate=(0, ty, tx))``
    with ``s = a.scale`` and ``(ty, tx) = a.translate`` places them over the input.
    """

    name: str
    channels: np.ndarray
    scale: float
    translate: tuple[float, float]


def level_scale(model: UNet, name: str) -> int:
    """Input pixels per pixel of a level: 2**l for encoder.l / decoder level l."""
    if name == "bottleneck":
        return 2**model.depth
    if name == "head":
        return 1
    kind, index = name.split(".")
    i = int(index)
    return 2**i if kind == "encoder" else 2 ** (model.depth - 1 - i)


def _module(model: UNet, name: str) -> torch.nn.Module:
    if name not in model.level_names():
        raise ValueError(f"unknown level {name!r}; choose one of {model.level_names()}")
    return model.get_submodule(name)


def capture_activations(
    model: UNet,
    image: np.ndarray,
    levels: list[str] | None = None,
    *,
    channel_axis: int | None = None,
    normalize_input: bool = True,
    device: str | torch.device | None = "cpu",
    max_side: int = 1024,
) -> dict[str, LevelActivations]:
    """Run one 2D image through the model and return the activations of ``levels``.

    The image is mirror-padded by the model's margin (valid padding) so the output covers
    it, exactly as overlap-tile prediction does; images larger than ``max_side`` raise (use
    a crop: activations of all levels of a big image need a lot of memory).
    """
    levels = levels or model.level_names()
    plane = as_channels_first(image, channel_axis, model.in_channels)
    if plane.ndim != 3:
        raise ValueError("activations are shown for one 2D plane at a time")
    _, h, w = plane.shape
    if max(h, w) > max_side:
        raise ValueError(f"image is {h}x{w}; inspect a crop of at most {max_side} px per side")
    x = normalize(plane, model.record.normalization_dict()) if normalize_input else plane
    # pad exactly as overlap-tile prediction does, so the head equals predict_tiled's a_k(x)
    halo = context(model)
    crop = halo - model.margin
    if model.padding == "valid":
        size_h = model.valid_input_size(h + halo + crop + model.margin)
        size_w = model.valid_input_size(w + halo + crop + model.margin)
    else:
        m = model.size_multiple
        size_h, size_w = -(-(h + 2 * halo) // m) * m, -(-(w + 2 * halo) // m) * m
    rows = mirror_indices(-halo, size_h - halo, h)
    cols = mirror_indices(-halo, size_w - halo, w)
    tile = torch.from_numpy(np.ascontiguousarray(x[:, rows][:, :, cols], np.float32))[None]

    captured: dict[str, torch.Tensor] = {}
    hooks = [
        _module(model, name).register_forward_hook(
            lambda _m, _i, out, name=name: captured.__setitem__(name, out.detach())
        )
        for name in levels
    ]
    try:
        dev = resolve_device(device)
        with inference_context(model, dev) as run:
            run(tile)
    finally:
        for hook in hooks:
            hook.remove()

    result = {}
    for name in levels:
        act = captured[name][0].float().cpu().numpy()
        s = level_scale(model, name)
        # the level is centred on the padded input; shift by the halo into image coordinates
        ty = (size_h - 1) / 2 - (act.shape[-2] - 1) / 2 * s - halo
        tx = (size_w - 1) / 2 - (act.shape[-1] - 1) / 2 * s - halo
        result[name] = LevelActivations(name, act, float(s), (ty, tx))
    return result
