"""The channel gallery in the viewer (main thread): one level's channels as a mosaic
beside the image, each channel numbered, and the per-channel statistics as a table; a
click on a cell (or a row) brings that channel up in the "activations: <level>" layer."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..unet.data import IGNORE_INDEX, labels_to_target
from . import layers as L
from .inputs import ImageInput, LabelsInput
from .workers import Index

#: pixels between the image and the gallery beside it
GALLERY_GAP = 16


def class_plane(labels: LabelsInput | None, index: Index) -> np.ndarray | None:
    """The annotation of plane ``index`` as classes 1..K (0 = not annotated), the way the
    energy reads it (instances: 1 = background, 2 = cell), or None without annotations."""
    if labels is None:
        return None
    drawn = np.array(labels.layer.data[index])
    plan = labels.plan
    target = labels_to_target(plan.to_core(drawn), plan.core_mode, drawn.shape)
    return np.where(target == IGNORE_INDEX, 0, target + 1)


def gallery_placement(
    image: ImageInput, index: Index, mosaic_shape: tuple[int, int]
) -> dict[str, tuple[float, ...]]:
    """The mosaic's place: on the plane ``index``, to the right of the image, scaled to
    the image's height (an overview; zoom in for detail)."""
    h, w = image.spatial_shape[-2:]
    lead_translate = tuple(
        t + i * s for t, i, s in zip(image.translate[:-2], index, image.scale[:-2], strict=True)
    )
    ty, tx = image.translate[-2:]
    sy, sx = image.scale[-2:]
    fit = h / max(mosaic_shape[0], 1)
    return {
        "scale": (*image.scale[:-2], sy * fit, sx * fit),
        "translate": (*lead_translate, ty, tx + (w + GALLERY_GAP) * sx),
        "axis_labels": image.axis_labels,
    }


def write_gallery(viewer: Any, level: str, mosaic: Any, image: ImageInput, index: Index) -> Any:
    """Add or update "gallery: <level>" and its "channel numbers"."""
    name = L.GALLERY + level
    lead = len(index)
    data = mosaic.image.reshape((1,) * lead + mosaic.image.shape)
    placement = gallery_placement(image, index, mosaic.image.shape)
    for old in [layer for layer in viewer.layers if L.is_output(layer)]:
        if old.name.startswith(L.GALLERY) and old.name != name:
            viewer.layers.remove(old)  # one gallery at a time: they share the place
    layer = L.find_output(viewer, name)
    meta = {L.MARKER: name, "source": image.name, "level": level}
    if layer is None:
        layer = viewer.add_image(
            data, name=name, metadata=meta, colormap="magma", contrast_limits=(0.0, 1.0),
            **placement,
        )  # fmt: skip
        L.adopt(viewer, layer, image, new=True)
    else:
        L.adopt(viewer, layer, image, new=False)
        layer.data = data
        layer.scale, layer.translate = placement["scale"], placement["translate"]
        layer.metadata.update(meta)
    layer.metadata["mosaic"] = mosaic
    _write_numbers(viewer, mosaic, image, index, placement)
    return layer


def _write_numbers(
    viewer: Any, mosaic: Any, image: ImageInput, index: Index, placement: dict[str, Any]
) -> None:
    positions = mosaic.label_positions()
    lead = (0,) * len(index)  # the layer's translate already puts it on plane ``index``
    coords = np.array([(*lead, y + 1, x + 1) for y, x in positions], dtype=float)
    features = {"channel": np.arange(mosaic.channels)}
    layer = L.find_output(viewer, L.CHANNEL_NUMBERS)
    if layer is not None and layer.ndim != coords.shape[1]:
        viewer.layers.remove(layer)  # captions of a gallery over an image of other dimensions
        layer = None
    meta = {L.MARKER: L.CHANNEL_NUMBERS, "source": image.name}
    text = {"string": "{channel}", "color": "white", "size": 8, "anchor": "upper_left"}
    if layer is None:
        layer = viewer.add_points(
            coords, name=L.CHANNEL_NUMBERS, metadata=meta, features=features, text=text,
            size=0.1, face_color="transparent", border_width=0, **placement,
        )  # fmt: skip
        L.adopt(viewer, layer, image, new=True)
    else:
        L.adopt(viewer, layer, image, new=False)
        layer.scale, layer.translate = placement["scale"], placement["translate"]
        layer.data = coords
        layer.features = features
        layer.text = text
        layer.metadata.update(meta)
    viewer.layers.selection.active = image.layer


def channel_under(layer: Any, world_position: Any) -> int | None:
    """The channel of the gallery cell under a world position, or None."""
    mosaic = layer.metadata.get("mosaic")
    if mosaic is None:
        return None
    y, x = np.asarray(layer.world_to_data(world_position), dtype=float)[-2:]
    return mosaic.channel_at(float(y), float(x))


def bring_up_channel(viewer: Any, level: str, channel: int) -> bool:
    """Show channel ``channel`` in "activations: <level>" (its slider, the first axis)."""
    layer = L.find_output(viewer, L.ACTIVATIONS + level)
    if layer is None or not 0 <= channel < layer.data.shape[0]:
        return False
    layer.visible = True
    axis = viewer.dims.ndim - layer.ndim
    step = list(viewer.dims.current_step)
    step[axis] = channel
    viewer.dims.current_step = tuple(step)
    return True
