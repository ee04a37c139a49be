"""The pixel inspector's reads and drawings (main thread): the report of the pixel under
the cursor from the last prediction's arrays, its receptive field as a rectangle, the
gradient map over it, and the "annotate next" window of H(x)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..unet.data import InputError
from ..workflow import class_names
from . import layers as L
from .inputs import ImageInput
from .workers import Index


def predicted_logits(viewer: Any, image: ImageInput, index: Index) -> np.ndarray | None:
    """a_k(x) of one predicted plane, (K, H, W), from the ``a_k(x)`` layer (None when that
    layer is gone or holds another image)."""
    layer = L.find_output(viewer, L.LOGITS)
    if layer is None or layer.metadata.get("source") != image.name:
        return None
    data = layer.data
    if not isinstance(data, np.ndarray) or data.shape[1:] != tuple(image.spatial_shape):
        return None
    return data[(slice(None), *index)]


def report_lines(
    viewer: Any,
    model: Any,
    image: ImageInput,
    index: Index,
    position: tuple[int, int],
    terms: Any,
) -> list[str] | None:
    """The inspector's text for pixel ``position`` of plane ``index``, or None when the
    ``a_k(x)`` layer of the image is gone."""
    from ..unet.pixel_report import pixel_report

    logits = predicted_logits(viewer, image, index)
    if logits is None:
        return None
    try:
        report = pixel_report(
            logits, position, plane=index, terms=terms, class_names=class_names(model)
        )
    except InputError as err:
        return [str(err)]
    return report.lines(image.axis_labels[:-2])


def draw_receptive_field(
    viewer: Any, model: Any, image: ImageInput, index: Index, position: tuple[int, int]
) -> str:
    """Draw the receptive field of pixel ``position`` as the "receptive field" rectangle;
    returns a line describing it."""
    from ..unet.receptive_field import receptive_field

    field = receptive_field(model, position)
    (r0, r1), (c0, c1) = field.rows, field.cols
    h, w = field.shape
    L.set_rectangle(
        viewer,
        L.RECEPTIVE_FIELD,
        (r0, r1, c0, c1),
        image,
        index,
        colour="cyan",
        text=f"receptive field of ({position[0]}, {position[1]}): {h} x {w} px",
        mark=(position[0], position[0] + 1, position[1], position[1] + 1),
    )
    mirrored = r0 < 0 or c0 < 0 or r1 > image.spatial_shape[-2] or c1 > image.spatial_shape[-1]
    return (
        f"receptive field of x = ({position[0]}, {position[1]}): rows {r0}..{r1 - 1}, "
        f"columns {c0}..{c1 - 1} ({h} x {w} input pixels)"
        + ("; beyond the border the input is mirrored" if mirrored else "")
    )


def write_gradient(
    viewer: Any,
    image: ImageInput,
    index: Index,
    gradient: np.ndarray,
    field: Any,
    k: int,
) -> str:
    """|d a_k(x) / d input| over the receptive field, as an image layer placed on it."""
    lead = len(index)
    data = gradient.reshape((1,) * lead + gradient.shape)
    translate = tuple(
        t + i * s
        for t, i, s in zip(image.translate, (*index, *field.start), image.scale, strict=True)
    )
    placement = {"scale": tuple(image.scale), "translate": translate}
    limits = L.robust_limits(data)
    layer = L.find_output(viewer, L.GRADIENT)
    meta = {L.MARKER: L.GRADIENT, "source": image.name}
    if layer is None:
        layer = viewer.add_image(
            data,
            name=L.GRADIENT,
            metadata=meta,
            colormap="viridis",
            contrast_limits=limits,
            opacity=0.8,
            axis_labels=image.axis_labels,
            **placement,
        )
        L.adopt(viewer, layer, image, new=True)
    else:
        L.adopt(viewer, layer, image, new=False)
        layer.data = data
        layer.scale, layer.translate = placement["scale"], placement["translate"]
        layer.contrast_limits_range = limits
        layer.contrast_limits = limits
        layer.metadata.update(meta)
    h, w = gradient.shape
    return f"|d a_{k}(x) / d input| over the {h} x {w} px receptive field"


def draw_annotation_hint(
    viewer: Any, image: ImageInput, index: Index, region: tuple[int, int, int, int]
) -> tuple[int, int, int, int] | None:
    """Draw "annotate next": the window of ``region`` (in view) with the highest mean H(x)
    of plane ``index``, from the ``H(x)`` layer; None (nothing drawn) without one."""
    from ..unet.uncertainty import where_to_annotate

    layer = L.find_output(viewer, L.ENTROPY)
    if layer is None or layer.metadata.get("source") != image.name:
        return None
    plane = np.asarray(layer.data[index])
    if not plane.any():
        return None
    box = where_to_annotate(plane, region)
    mean = float(plane[box[0] : box[1], box[2] : box[3]].mean())
    L.set_rectangle(
        viewer, L.HINT, box, image, index, colour="yellow", text=f"annotate next: H = {mean:.2f}"
    )
    return box
