"""From the semantic prediction to one id per object (connected components or watershed)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def instances_from_prediction(
    cell_probability: np.ndarray,
    threshold: float = 0.5,
    split_touching: bool = True,
    min_size: int = 10,
    min_distance: int = 3,
) -> np.ndarray:
    """Instance labels (uint32, 0 = background) from a cell-probability map (..., H, W).

    Pixels with p_cell > ``threshold`` form the foreground. Without splitting, each
    connected component is one object. With ``split_touching`` a seeded watershed on the
    distance transform separates touching cells (seeds: local maxima at least
    ``min_distance`` apart). Objects smaller than ``min_size`` pixels are dropped.
    Leading axes are processed plane by plane with ids unique across planes.
    """
    prob = np.asarray(cell_probability, dtype=np.float32)
    if prob.ndim < 2:
        raise ValueError(f"expected a (..., H, W) probability map, got shape {prob.shape}")
    out = np.zeros(prob.shape, np.uint32)
    offset = 0
    for index in np.ndindex(*prob.shape[:-2]):
        labels = _instances_2d(prob[index] > threshold, split_touching, min_size, min_distance)
        labels[labels > 0] += offset
        offset = max(offset, int(labels.max(initial=0)))
        out[index] = labels
    return out


def _instances_2d(
    mask: np.ndarray, split_touching: bool, min_size: int, min_distance: int
) -> np.ndarray:
    if not mask.any():
        return np.zeros(mask.shape, np.uint32)
    if split_touching:
        from skimage.feature import peak_local_max
        from skimage.segmentation import watershed

        distance = ndi.distance_transform_edt(mask)
        components, _ = ndi.label(mask)
        peaks = peak_local_max(
            distance, min_distance=min_distance, labels=components, exclude_border=False
        )
        markers = np.zeros(mask.shape, np.int32)
        markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
        labels = watershed(-distance, markers, mask=mask)
    else:
        labels, _ = ndi.label(mask)
    if min_size > 1:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        labels[small[labels]] = 0
    # renumber 1..N
    ids = np.unique(labels)
    ids = ids[ids > 0]
    lut = np.zeros(int(labels.max()) + 1, np.uint32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.uint32)
    return lut[labels]
