"""From the semantic prediction to one id per object (connected components or watershed)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def instances_from_prediction(
    cell_probability: np.ndarray,
    threshold: float = 0.5,
    split_touching: bool = True,
    min_size: int = 10,
    seed_threshold: float | None = None,
    max_solidity: float = 0.9,
    depth: float = 0.2,
) -> np.ndarray:
    """Instance labels (uint32, 0 = background) from a cell-probability map (..., H, W).

    Pixels with p_cell > ``threshold`` form the foreground. Without splitting, each
    connected component is one object. With ``split_touching`` a seeded watershed
    separates touching cells:

    - seeds from the distance transform (default), for round, convex objects (nuclei):
      only a component that is clearly not convex (solidity, its area over its convex
      hull's, below ``max_solidity``) is split, at the h-maxima of its distance transform
      with h = ``depth`` x the median object radius (at least 1 px), flooding -distance.
      A single convex nucleus, round or elongated, stays whole; two touching nuclei make
      a waist (solidity drops) and two maxima. Both criteria are relative, so the split
      behaves the same at every object size. A strongly curved single nucleus can still
      be cut;
    - seeds from the probability (``seed_threshold`` given): the 4-connected components of
      p_cell > ``seed_threshold``, flooding 1 - p_cell, so two cells stay apart where a
      thin border between them is weak but present (cells between membranes, EM). A
      foreground component without a seed stays one object.

    Objects smaller than ``min_size`` pixels are dropped. Leading axes are processed plane
    by plane with ids unique across planes.
    """
    if seed_threshold is not None and not threshold < seed_threshold < 1:
        raise ValueError(
            f"the seed threshold ({seed_threshold}) must lie above the foreground threshold "
            f"({threshold}) and below 1"
        )
    prob = np.asarray(cell_probability, dtype=np.float32)
    if prob.ndim < 2:
        raise ValueError(f"expected a (..., H, W) probability map, got shape {prob.shape}")
    out = np.zeros(prob.shape, np.uint32)
    offset = 0
    for index in np.ndindex(*prob.shape[:-2]):
        plane = prob[index]
        if split_touching and seed_threshold is not None:
            labels = _probability_watershed(plane, threshold, seed_threshold, min_size)
        else:
            labels = _instances_2d(
                plane > threshold, split_touching, min_size, max_solidity, depth
            )
        labels[labels > 0] += offset
        offset = max(offset, int(labels.max(initial=0)))
        out[index] = labels
    return out


def _probability_watershed(
    prob: np.ndarray, threshold: float, seed_threshold: float, min_size: int
) -> np.ndarray:
    from skimage.segmentation import watershed

    mask = prob > threshold
    seeds, n_seeds = ndi.label(prob > seed_threshold)
    labels = watershed(1.0 - prob, seeds, mask=mask, connectivity=1)
    unseeded, _ = ndi.label(mask & (labels == 0))
    labels = np.where(unseeded > 0, unseeded + n_seeds, labels)
    return _drop_small_and_renumber(labels, min_size)


def _instances_2d(
    mask: np.ndarray, split_touching: bool, min_size: int, max_solidity: float, depth: float
) -> np.ndarray:
    labels, n = ndi.label(mask)
    if n and split_touching:
        labels = _split_non_convex(mask, labels, n, max_solidity, depth, min_size)
    return _drop_small_and_renumber(labels, min_size)


def _split_non_convex(
    mask: np.ndarray,
    components: np.ndarray,
    n: int,
    max_solidity: float,
    depth: float,
    min_size: int,
) -> np.ndarray:
    """Split the components whose solidity is below ``max_solidity`` at the h-maxima of the
    distance transform (h = ``depth`` x the median largest distance of the components of
    at least ``min_size`` pixels: specks that are dropped later do not lower it)."""
    from skimage.measure import regionprops
    from skimage.morphology import h_maxima
    from skimage.segmentation import watershed

    distance = ndi.distance_transform_edt(mask)
    ids = np.arange(1, n + 1)
    radii = ndi.maximum(distance, components, ids)
    sizes = ndi.sum_labels(mask, components, ids)
    kept = radii[sizes >= max(min_size, 1)]
    h = max(1.0, depth * float(np.median(kept if len(kept) else radii)))
    out = components.astype(np.int64)
    next_id = n + 1
    for region in regionprops(components):
        if region.solidity >= max_solidity:
            continue
        inside = components[region.slice] == region.label
        d = np.where(inside, distance[region.slice], 0.0)
        # h_maxima's plateaus are 8-connected: a diagonal ridge is one seed, not several
        seeds, n_seeds = ndi.label(h_maxima(d, h).astype(bool) & inside, np.ones((3, 3)))
        if n_seeds < 2:
            continue
        parts = watershed(-d, seeds, mask=inside)
        part_ids = out[region.slice]
        for i in range(2, n_seeds + 1):
            part_ids[parts == i] = next_id
            next_id += 1
    return out


def _drop_small_and_renumber(labels: np.ndarray, min_size: int) -> np.ndarray:
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
