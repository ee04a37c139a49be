"""Write the results of the workers into the stable output layers (main thread only).

A result covers one plane of the image, or a region of it (the live refresh during
training); it is written into the full-size (..., H, W) arrays of the output layers, so
predicting one plane keeps the others (see :func:`.layers.output_array`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import layers as L
from .inputs import ImageInput, LabelsInput
from .workers import ActivationResult, Index, PlaneResult


def write_weights(
    viewer: Any, image: ImageInput, planes: list[Index], weights: list[np.ndarray]
) -> None:
    """w(x) of the training planes into "w(x)" (0 where not annotated)."""
    arr = L.output_array(viewer, L.WEIGHTS, image.spatial_shape, np.float32, image.name)
    for idx, w in zip(planes, weights, strict=True):
        arr[idx] = w
    L.set_image(viewer, L.WEIGHTS, arr, image, colormap="inferno", visible=False)


def write_prediction(
    viewer: Any, r: PlaneResult, image: ImageInput, labels: LabelsInput | None
) -> None:
    """a_k(x), p_k(x), segmentation, instances, w(x) and loss(x) of one plane (or region).

    ``labels``: the annotation layer, whose colours the segmentation and p_k(x) reuse.
    """
    v = viewer
    spatial = image.spatial_shape
    k = r.probabilities.shape[0]
    y0, y1, x0, x1 = r.region
    at = (*r.index, slice(y0, y1), slice(x0, x1))
    kat = (slice(None), *at)

    def image_out(name: str, values: np.ndarray, class_axis: bool, **kwargs: Any) -> Any:
        shape = (k, *spatial) if class_axis else spatial
        arr = L.output_array(v, name, shape, np.float32, image.name)
        arr[kat if class_axis else at] = values
        return L.set_image(v, name, arr, image, extra_axes=int(class_axis), **kwargs)

    if r.logits is not None:
        a = L.output_array(v, L.LOGITS, (k, *spatial), np.float32, image.name)
        a[kat] = r.logits
        L.set_image(
            v,
            L.LOGITS,
            a,
            image,
            extra_axes=1,
            colormap="PiYG",
            contrast_limits=L.symmetric_limits(a),
            visible=False,
        )
    new_p = L.find_output(v, L.PROBABILITIES) is None
    p = image_out(
        L.PROBABILITIES,
        r.probabilities,
        True,
        contrast_limits=(0.0, 1.0),
        blending="additive",
    )
    # class values k + 1, or a dense model's annotation values (0/255, ...)
    seg_dtype = np.promote_types(np.uint8 if k < 255 else np.uint16, r.labels.dtype)
    seg = L.output_array(v, L.SEGMENTATION, spatial, seg_dtype, image.name)
    seg[at] = r.labels
    like = labels.layer if labels is not None else None
    seg_layer = L.set_labels(v, L.SEGMENTATION, seg, image, like=like, opacity=0.45)
    colour_source = like if like is not None else seg_layer
    p.metadata["class_colors"] = [
        [float(c) for c in colour_source.get_color(j + 1)[:3]] for j in range(k)
    ]
    p.metadata.pop("shown_class", None)
    if new_p and k > 1:
        # show the last class (the object class for background/object models) first
        axis = v.dims.ndim - p.ndim
        step = list(v.dims.current_step)
        step[axis] = k - 1
        v.dims.current_step = tuple(step)
    L.recolour_probabilities(v)
    if r.instances is not None:
        inst = L.output_array(v, L.INSTANCES, spatial, np.uint32, image.name)
        plane = inst[r.index]
        plane[y0:y1, x0:x1] = 0
        offset = int(inst.max())
        ids = r.instances.astype(np.uint32)
        ids[ids > 0] += offset
        plane[y0:y1, x0:x1] = ids
        L.set_labels(v, L.INSTANCES, inst, image)
    if r.weight is not None:
        image_out(L.WEIGHTS, r.weight, False, colormap="inferno", visible=False)
    if r.loss is not None:
        image_out(L.LOSS, r.loss, False, colormap="magma", visible=False)


def write_activations(viewer: Any, r: ActivationResult, image: ImageInput) -> str:
    """The channels of one level into "activations: <level>", over the plane they came
    from; returns a line for the status."""
    L.set_activations(
        viewer,
        r.level,
        r.channels,
        image,
        level_scale=r.scale,
        level_translate=r.translate,
        plane_index=r.index,
        offset=r.offset,
    )
    c, h, w = r.channels.shape
    return f"{r.level}: {c} channels of {h}x{w} (scale {r.scale:g})"
