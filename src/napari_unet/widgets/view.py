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
