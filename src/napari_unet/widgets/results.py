"""Write the results of the workers into the stable output layers (main thread only).

A result covers one plane of the image, or a region of it (the live refresh during
training); it is written into the full-size (..., H, W) arrays of the output layers, so
predicting one plane keeps the others (see :func:`.layers.output_array`).
"""

from __future__ import annotations

from collections.abc import Callable
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


def prediction_steps(
    viewer: Any, r: PlaneResult, image: ImageInput, labels: LabelsInput | None
) -> list[Callable[[], None]]:
    """The writes of a_k(x), p_k(x), segmentation, H(x), instances, w(x) and loss(x) of one
    plane (or region), one call per output layer, in order. The widget runs them one per turn of
    the event loop: napari takes ~150 ms to add a layer under software OpenGL, and six new
    layers at once froze the window for a second.

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

    def logits() -> None:
        a = L.output_array(v, L.LOGITS, (k, *spatial), np.float32, image.name)
        a[kat] = r.logits
        limits = L.symmetric_limits(a)
        L.set_image(
            v,
            L.LOGITS,
            a,
            image,
            extra_axes=1,
            colormap="PiYG",
            contrast_limits=limits,
            visible=False,
        )

    def probabilities() -> None:
        new_p = L.find_output(v, L.PROBABILITIES) is None
        image_out(
            L.PROBABILITIES,
            r.probabilities,
            True,
            contrast_limits=(0.0, 1.0),
            blending="additive",
        )
        if new_p and k > 1:
            # show the last class (the object class for background/object models) first
            p_ndim = 1 + len(spatial)
            axis = v.dims.ndim - p_ndim
            step = list(v.dims.current_step)
            step[axis] = k - 1
            v.dims.current_step = tuple(step)

    def segmentation() -> None:
        # class values k + 1, or a dense model's annotation values (0/255, ...)
        seg_dtype = np.promote_types(np.uint8 if k < 255 else np.uint16, r.labels.dtype)
        seg = L.output_array(v, L.SEGMENTATION, spatial, seg_dtype, image.name)
        seg[at] = r.labels
        like = labels.layer if labels is not None else None
        seg_layer = L.set_labels(v, L.SEGMENTATION, seg, image, like=like, opacity=0.45)
        if r.classes:
            L.set_class_features(seg_layer, r.classes)
        colour_source = like if like is not None else seg_layer
        p = L.find_output(v, L.PROBABILITIES)
        if p is not None:
            p.metadata["class_colors"] = [
                [float(c) for c in colour_source.get_color(j + 1)[:3]] for j in range(k)
            ]
            p.metadata.pop("shown_class", None)
        L.recolour_probabilities(v)

    def instances() -> None:
        inst = L.output_array(v, L.INSTANCES, spatial, np.uint32, image.name)
        plane = inst[r.index]
        plane[y0:y1, x0:x1] = 0
        offset = int(inst.max())
        ids = r.instances.astype(np.uint32)
        ids[ids > 0] += offset
        plane[y0:y1, x0:x1] = ids
        L.set_labels(v, L.INSTANCES, inst, image)

    steps: list[Callable[[], None]] = []
    if r.logits is not None:
        steps.append(logits)
    steps += [probabilities, segmentation]
    if r.entropy is not None:
        steps.append(
            lambda: image_out(
                L.ENTROPY, r.entropy, False, colormap="viridis", contrast_limits=(0.0, 1.0),
                visible=False,
            )
        )  # fmt: skip
    if r.instances is not None:
        steps.append(instances)
    if r.weight is not None:
        steps.append(
            lambda: image_out(L.WEIGHTS, r.weight, False, colormap="inferno", visible=False)
        )
    if r.loss is not None:
        steps.append(lambda: image_out(L.LOSS, r.loss, False, colormap="magma", visible=False))
    return steps


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
