"""Where the user is looking: the plane in view and the region around the camera centre,
in the image's pixel coordinates (the live refresh and the activations use them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .inputs import ImageInput
from .workers import Index, Region, view_region

#: the live refresh during training and the activations use at most this crop of a plane
LIVE_MAX_SIDE = 512


def camera(viewer: Any) -> Any:
    """napari >= 0.9 keeps the camera on ``viewer.scene``; older versions on the viewer."""
    scene = getattr(viewer, "scene", None)
    return scene.camera if scene is not None else viewer.camera


def current_index(viewer: Any, image: ImageInput) -> Index:
    """The leading (Z, T, ...) index of the plane the viewer shows, in image pixels."""
    lead = image.lead_shape
    if not lead:
        return ()
    coords = list(np.asarray(image.layer.world_to_data(viewer.dims.point), dtype=float))
    if image.channel_axis is not None and image.channel_axis >= 0:
        del coords[image.channel_axis]
    return tuple(
        int(np.clip(round(c), 0, n - 1)) for c, n in zip(coords[: len(lead)], lead, strict=True)
    )


def view_center(viewer: Any, image: ImageInput) -> tuple[float, float]:
    """The camera centre as (row, column) in the image's pixels (the plane's centre if the
    view is unusual)."""
    h, w = image.spatial_shape[-2:]
    try:
        point = list(viewer.dims.point)
        displayed = viewer.dims.displayed
        center = camera(viewer).center
        for axis, c in zip(displayed, center[-len(displayed) :], strict=True):
            point[axis] = c
        data = np.asarray(image.layer.world_to_data(point), dtype=float)
        if image.channel_axis is not None and image.channel_axis >= 0:
            data = np.delete(data, image.channel_axis)
        return float(data[-2]), float(data[-1])
    except Exception:  # noqa: BLE001 - any odd view: fall back to the plane's centre
        return h / 2, w / 2


def region_in_view(viewer: Any, image: ImageInput, max_side: int = LIVE_MAX_SIDE) -> Region:
    """A window of at most ``max_side`` pixels per side of the plane, around the view."""
    h, w = image.spatial_shape[-2:]
    return view_region((h, w), view_center(viewer, image), max_side)


def pixel_at(image: ImageInput, world_position: Any) -> tuple[Index, tuple[int, int]] | None:
    """The plane index and (row, column) of the image pixel under a world position (the
    mouse), or None outside the image."""
    data = list(np.asarray(image.layer.world_to_data(world_position), dtype=float))
    if image.channel_axis is not None and image.channel_axis >= 0:
        del data[image.channel_axis]
    if len(data) != len(image.spatial_shape):
        return None
    pixel = tuple(int(round(c)) for c in data)
    if any(not 0 <= p < n for p, n in zip(pixel, image.spatial_shape, strict=True)):
        return None
    return pixel[:-2], (pixel[-2], pixel[-1])


def visible_region(viewer: Any, image: ImageInput) -> Region:
    """The part of the plane the canvas shows (from the camera's centre and zoom), or the
    window around the view centre when the canvas size is not known."""
    h, w = image.spatial_shape[-2:]
    # napari >= 0.6: viewer.canvas.size (height, width); older: viewer._canvas_size
    size = getattr(getattr(viewer, "canvas", None), "size", None)
    size = size or getattr(viewer, "_canvas_size", None)
    zoom = getattr(camera(viewer), "zoom", None)
    if not size or not zoom or min(size) <= 1:
        return region_in_view(viewer, image)
    cy, cx = view_center(viewer, image)
    sy, sx = (abs(float(s)) or 1.0 for s in image.scale[-2:])
    half_h, half_w = size[0] / zoom / sy / 2, size[1] / zoom / sx / 2
    y0, y1 = int(max(0, np.floor(cy - half_h))), int(min(h, np.ceil(cy + half_h) + 1))
    x0, x1 = int(max(0, np.floor(cx - half_w))), int(min(w, np.ceil(cx + half_w) + 1))
    if y1 <= y0 or x1 <= x0:
        return region_in_view(viewer, image)
    return (y0, y1, x0, x1)
