"""Turn core results into napari layers: add or update by a stable name, never touch others.

Every layer the widget writes carries ``metadata["napari_unet"] = <its stable name>``. A
run updates the layer that carries the marker *and* still has that name (so a user's own
layer called "segmentation", or a duplicated/renamed result, is never overwritten), or adds
a new one. Results have the image's full spatial shape (..., H, W) and the image layer's
scale and translate, so they overlay it; the class axis k of a_k(x) and p_k(x) comes first
(napari aligns trailing axes) and becomes a slider named "class k"; the other sliders
are named "z" (or "t", "z"), or as the image layer names them.

Results belong to their image: a new result goes right above its image (layers the user
adds later, on top, do not cover it), and when results of another image are written the
results of the earlier image are hidden (their ``metadata["source"]`` names the image).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from napari.layers import Image, Labels, Layer, Shapes
from napari.utils import Colormap

from .inputs import ImageInput

MARKER = "napari_unet"

# the stable names (the paper's notation where there is one)
LOGITS = "a_k(x)"
PROBABILITIES = "p_k(x)"
WEIGHTS = "w(x)"
LOSS = "loss(x)"
SEGMENTATION = "segmentation"
INSTANCES = "instances"
ENTROPY = "H(x)"  # the uncertainty of p_k(x)
HINT = "annotate next"  # the window in view with the highest mean H(x)
RECEPTIVE_FIELD = "receptive field"  # of the inspected pixel
GRADIENT = "|da_k(x)/dinput|"  # over the receptive field
ACTIVATIONS = "activations: "  # + level name, e.g. "activations: encoder.0"
GALLERY = "gallery: "  # + level name: the channels side by side
CHANNEL_NUMBERS = "channel numbers"  # the gallery's captions

OUTPUT_NAMES = (LOGITS, PROBABILITIES, WEIGHTS, LOSS, SEGMENTATION, INSTANCES, ENTROPY)


def _owns(layer: Layer, name: str) -> bool:
    """The layer carries our marker for ``name`` and still has that name, or the name napari
    gave it because a user layer already had it ("segmentation [1]"). A duplicate
    ("segmentation copy") or a renamed result belongs to the user."""
    if layer.metadata.get(MARKER) != name:
        return False
    return (
        layer.name == name or re.fullmatch(re.escape(name) + r" \[\d+\]", layer.name) is not None
    )


def is_output(layer: Layer) -> bool:
    """True for a layer this plugin wrote and still owns."""
    marker = layer.metadata.get(MARKER)
    return isinstance(marker, str) and _owns(layer, marker)


def input_images(viewer: Any) -> list[tuple[str, Any]]:
    """(name, layer) of the Image layers a user can pick as input (no results)."""
    return [
        (layer.name, layer)
        for layer in viewer.layers
        if isinstance(layer, Image)
        and not is_output(layer)
        and not layer.name.startswith(ACTIVATIONS)
    ]


def input_labels(viewer: Any) -> list[tuple[str, Any]]:
    """(name, layer) of the Labels layers a user can pick as annotations (no results)."""
    return [
        (layer.name, layer)
        for layer in viewer.layers
        if isinstance(layer, Labels) and not is_output(layer)
    ]


def find_output(viewer: Any, name: str) -> Layer | None:
    """The layer holding the result ``name`` (exact name first), or None."""
    owned = [layer for layer in viewer.layers if _owns(layer, name)]
    owned.sort(key=lambda layer: layer.name != name)
    return owned[0] if owned else None


CLASS_AXIS = "class k"  # the slider of a_k(x) and p_k(x)
CHANNEL_AXIS = "channel"  # the slider of a level's activations


def _placement(image: ImageInput, extra_axes: int) -> dict[str, tuple[Any, ...]]:
    """scale/translate/axis_labels for a layer of shape (extra..., *image.spatial_shape):
    the extra axis is the class axis k."""
    return {
        "scale": (1.0,) * extra_axes + tuple(image.scale),
        "translate": (0.0,) * extra_axes + tuple(image.translate),
        "axis_labels": (CLASS_AXIS,) * extra_axes + image.axis_labels,
    }


def _place(layer: Layer, placement: dict[str, tuple[Any, ...]]) -> None:
    """Set an existing layer's scale, translate and axis names."""
    layer.scale, layer.translate = placement["scale"], placement["translate"]
    layer.axis_labels = placement["axis_labels"]


def adopt(
    viewer: Any, layer: Layer, image: ImageInput, *, new: bool, visible: bool = True
) -> None:
    """Give a result layer to ``image``: a ``new`` layer, or a reused one that showed
    another image's results (it is then made ``visible`` as a new layer would be, even if
    it was hidden as stale), goes right above the image and its other results, so layers
    the user adds later do not cover it; the results of other images are hidden."""
    if not new:
        if layer.metadata.get("source") == image.name:
            return
        layer.visible = visible
        layer.metadata["source"] = image.name
    if image.layer in viewer.layers:
        _place_above(viewer.layers, layer, image.layer)
    for other in viewer.layers:
        if is_output(other) and other.metadata.get("source") != image.name:
            other.visible = False


def _place_above(layers: Any, layer: Layer, source: Layer) -> None:
    """Move ``layer`` just above ``source`` and the results of ``source`` already there."""
    top = layers.index(source)
    while (
        top + 1 < len(layers)
        and layers[top + 1] is not layer
        and is_output(layers[top + 1])
        and layers[top + 1].metadata.get("source") == source.name
    ):
        top += 1
    current = layers.index(layer)
    final = top + 1 if current > top else top
    if current != final:
        # napari's move takes the destination before the item is removed
        layers.move(current, final if current > final else final + 1)


def output_array(
    viewer: Any, name: str, shape: tuple[int, ...], dtype: Any, source: str
) -> np.ndarray:
    """The array to write results into: the existing layer's data if it has this shape,
    dtype and source image (so predicting one plane keeps the other planes), else zeros."""
    layer = find_output(viewer, name)
    if layer is not None:
        data = layer.data
        if (
            isinstance(data, np.ndarray)
            and data.shape == tuple(shape)
            and data.dtype == np.dtype(dtype)
            and layer.metadata.get("source") == source
        ):
            return data
    return np.zeros(shape, dtype)


def set_image(
    viewer: Any,
    name: str,
    data: np.ndarray,
    image: ImageInput,
    *,
    extra_axes: int = 0,
    contrast_limits: tuple[float, float] | None = None,
    **kwargs: Any,
) -> Image:
    """Add the Image layer ``name`` or update it in place (same layer object)."""
    placement = _placement(image, extra_axes)
    limits = contrast_limits or _limits(data)
    layer = find_output(viewer, name)
    if layer is not None and not isinstance(layer, Image):
        layer = None
    meta = {MARKER: name, "source": image.name}
    if layer is None:
        layer = viewer.add_image(
            data,
            name=name,
            metadata=meta,
            contrast_limits=limits,
            **placement,
            **kwargs,
        )
        adopt(viewer, layer, image, new=True)
        return layer
    adopt(viewer, layer, image, new=False, visible=kwargs.get("visible", True))
    if layer.data is not data or layer.ndim != data.ndim:
        layer.data = data
    else:
        layer.refresh()
    _place(layer, placement)
    layer.contrast_limits_range = limits
    layer.contrast_limits = limits
    layer.metadata.update(meta)
    return layer


def set_labels(
    viewer: Any,
    name: str,
    data: np.ndarray,
    image: ImageInput,
    *,
    like: Labels | None = None,
    **kwargs: Any,
) -> Labels:
    """Add the Labels layer ``name`` or update it in place (same layer object).

    ``like``: the annotation layer whose colours the result should reuse, so that class c
    has the same colour in the annotation and in the segmentation.
    """
    placement = _placement(image, 0)
    layer = find_output(viewer, name)
    if layer is not None and not isinstance(layer, Labels):
        layer = None
    meta = {MARKER: name, "source": image.name}
    if layer is None:
        layer = viewer.add_labels(data, name=name, metadata=meta, **placement, **kwargs)
        adopt(viewer, layer, image, new=True)
    else:
        adopt(viewer, layer, image, new=False, visible=kwargs.get("visible", True))
        if layer.data is not data:
            layer.data = data
        else:
            layer.refresh()
        _place(layer, placement)
        layer.metadata.update(meta)
    if like is not None:
        try:
            layer.colormap = like.colormap
        except Exception:  # noqa: BLE001 - colours are cosmetic; keep napari's default
            pass
    return layer


def set_activations(
    viewer: Any,
    level: str,
    channels: np.ndarray,
    image: ImageInput,
    *,
    level_scale: float,
    level_translate: tuple[float, float],
    plane_index: tuple[int, ...],
    offset: tuple[int, int] = (0, 0),
) -> Image:
    """Show one level's channels (C, h, w) over the input plane they were computed from.

    ``level_scale``/``level_translate`` place the level on the input crop (in pixels),
    ``offset`` is the crop's top-left corner in the plane and ``plane_index`` the plane in
    a stack: the layer is (C, 1.., h, w) placed on that plane only.
    """
    name = ACTIVATIONS + level
    lead = len(plane_index)
    data = channels.reshape(channels.shape[0], *(1,) * lead, *channels.shape[-2:])
    sy, sx = image.scale[-2:]
    ty0, tx0 = image.translate[-2:]
    scale = (1.0, *image.scale[:-2], level_scale * sy, level_scale * sx)
    translate = (
        0.0,
        *(
            t + i * s
            for t, i, s in zip(image.translate[:-2], plane_index, image.scale[:-2], strict=True)
        ),
        ty0 + (offset[0] + level_translate[0]) * sy,
        tx0 + (offset[1] + level_translate[1]) * sx,
    )
    placement = {
        "scale": scale,
        "translate": translate,
        "axis_labels": (CHANNEL_AXIS, *image.axis_labels),
    }
    limits = robust_limits(data)
    layer = find_output(viewer, name)
    meta = {MARKER: name, "source": image.name}
    if layer is None or not isinstance(layer, Image):
        layer = viewer.add_image(
            data,
            name=name,
            metadata=meta,
            **placement,
            colormap="magma",
            contrast_limits=limits,
            blending="additive",
        )
        adopt(viewer, layer, image, new=True)
        return layer
    adopt(viewer, layer, image, new=False)
    layer.data = data
    _place(layer, placement)
    layer.contrast_limits_range = limits
    layer.contrast_limits = limits
    layer.metadata.update(meta)
    return layer


def set_class_features(layer: Labels, classes: list[tuple[int, str]]) -> None:
    """The segmentation's features table: each label value and the name of its class
    (napari shows it in the status bar under the cursor)."""
    values = [v for v, _ in classes]
    layer.features = {"index": values, "class": [name for _, name in classes]}


def rename_class_features(viewer: Any, names: list[str]) -> None:
    """New class names in the segmentation's features (the values stay)."""
    layer = find_output(viewer, SEGMENTATION)
    if layer is None or "class" not in layer.features or len(layer.features) != len(names):
        return
    set_class_features(layer, list(zip(layer.features["index"], names, strict=True)))


def plane_rectangle(
    box: tuple[float, float, float, float], plane_index: tuple[int, ...]
) -> np.ndarray:
    """The 4 corners (4, lead + 2) of the rectangle over pixels [y0, y1) x [x0, x1) of the
    plane ``plane_index``, on the pixel edges (napari pixel centres are integers)."""
    y0, y1, x0, x1 = (float(v) - 0.5 for v in box)
    corners = [(y0, x0), (y0, x1), (y1, x1), (y1, x0)]
    return np.array([(*plane_index, y, x) for y, x in corners], dtype=float)


def set_rectangle(
    viewer: Any,
    name: str,
    box: tuple[float, float, float, float],
    image: ImageInput,
    plane_index: tuple[int, ...],
    *,
    colour: str,
    text: str = "",
    mark: tuple[float, float, float, float] | None = None,
) -> Shapes:
    """Draw the rectangle of the Shapes layer ``name`` (added, or updated in place) over
    pixels ``box`` = (y0, y1, x0, x1) of the plane ``plane_index`` of ``image``, and, with
    ``mark``, a second uncaptioned one (the pixel a receptive field belongs to)."""
    placement = _placement(image, 0)
    shapes = [plane_rectangle(b, plane_index) for b in (box, mark) if b is not None]
    corners = shapes[0]
    layer = find_output(viewer, name)
    if layer is not None and (not isinstance(layer, Shapes) or layer.ndim != corners.shape[1]):
        viewer.layers.remove(layer)  # a drawing of ours, for an image of other dimensions
        layer = None
    meta = {MARKER: name, "source": image.name}
    features = {"caption": [text] + [""] * (len(shapes) - 1)}
    if layer is None:
        layer = viewer.add_shapes(
            shapes,
            shape_type="rectangle",
            name=name,
            metadata=meta,
            edge_color=colour,
            edge_width=2,
            face_color="transparent",
            features=features,
            text={"string": "{caption}", "color": colour, "anchor": "upper_left", "size": 9},
            **placement,
        )
        adopt(viewer, layer, image, new=True)
        viewer.layers.selection.active = image.layer  # keep the user's layer selected
        return layer
    adopt(viewer, layer, image, new=False)
    _place(layer, placement)
    layer.data = shapes
    layer.shape_type = ["rectangle"] * len(shapes)
    layer.features = features
    layer.edge_color = colour
    layer.face_color = "transparent"
    layer.metadata.update(meta)
    layer.refresh()
    return layer


def remove_output(viewer: Any, name: str) -> None:
    """Remove the result layer ``name`` if this plugin owns it."""
    layer = find_output(viewer, name)
    if layer is not None:
        viewer.layers.remove(layer)


def class_colormap(rgba: Any, k: int) -> Colormap:
    """Black -> the class colour: p_k(x) of class k drawn in the annotation's colour."""
    r, g, b = (float(c) for c in np.asarray(rgba, dtype=float)[:3])
    if r + g + b < 0.3:  # a dark class colour would be invisible: use white
        r = g = b = 1.0
    return Colormap([[0.0, 0.0, 0.0, 1.0], [r, g, b, 1.0]], name=f"p_{k + 1}(x) colour")


def class_index_shown(viewer: Any, layer: Layer) -> int:
    """The class k whose p_k(x) the viewer currently shows (the slider of the first axis)."""
    axis = viewer.dims.ndim - layer.ndim
    step = viewer.dims.current_step[axis] if 0 <= axis < viewer.dims.ndim else 0
    return int(np.clip(step, 0, layer.data.shape[0] - 1))


def recolour_probabilities(viewer: Any) -> None:
    """Colour p_k(x) with the colour of class k (value k + 1) in the annotation layer."""
    layer = find_output(viewer, PROBABILITIES)
    if layer is None:
        return
    colours = layer.metadata.get("class_colors")
    if not colours:
        return
    k = class_index_shown(viewer, layer)
    if layer.metadata.get("shown_class") == k:
        return
    layer.colormap = class_colormap(colours[min(k, len(colours) - 1)], k)
    layer.metadata["shown_class"] = k


def _limits(data: np.ndarray) -> tuple[float, float]:
    """Contrast limits from finite values; never a zero-width range."""
    finite = data[np.isfinite(data)] if data.dtype.kind == "f" else data
    if finite.size == 0:
        return (0.0, 1.0)
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        hi = lo + 1.0
    return (lo, hi)


def robust_limits(data: np.ndarray) -> tuple[float, float]:
    """(min, 99.5th percentile): a few very strong responses do not darken the rest."""
    lo, hi = _limits(data)
    finite = data[np.isfinite(data)]
    if finite.size:
        p = float(np.percentile(finite, 99.5))
        if p > lo:
            hi = p
    return (lo, hi)


def symmetric_limits(data: np.ndarray) -> tuple[float, float]:
    """(-m, m) with m = max |a|: a diverging colour map centred on a_k(x) = 0."""
    m = float(np.nanmax(np.abs(data))) if data.size else 1.0
    m = m if np.isfinite(m) and m > 0 else 1.0
    return (-m, m)
