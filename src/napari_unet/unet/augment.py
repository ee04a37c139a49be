"""Data augmentation of the U-Net paper (Ronneberger et al. 2015, section 3.1).

Elastic deformation: random displacement vectors on a coarse 3 x 3 grid, drawn from a
Gaussian with 10 px standard deviation, interpolated bicubically to per-pixel
displacements. Plus the 8 flips/90-degree rotations and a random intensity scale and
shift. Every random choice is drawn from the ``rng`` argument
(``np.random.default_rng(seed)``), so a seed reproduces an augmentation exactly.

Sampling convention: a displacement field u = (u_y, u_x) of shape (2, H, W) maps the
input to ``out[y, x] = in[y + u_y[y, x], x + u_x[y, x]]`` (backward mapping, so every
output pixel gets exactly one value). Images are sampled with bicubic convolution (Keys,
a = -0.75: exact at integer positions; ``torch.nn.functional.grid_sample``, about 10x
faster than a cubic spline with ``scipy.ndimage``), labels and weights with nearest
neighbour; both mirrored at the border (``... 2 1 | 0 1 2 ... n-1 | n-2 ...``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .tiling import mirror_index

__all__ = [
    "augment_tile",
    "elastic_deform",
    "flip_rotate",
    "intensity_jitter",
    "nearest_pixels",
    "random_displacement_field",
    "sample_bicubic",
    "sample_nearest",
]


@functools.lru_cache(maxsize=64)
def _cubic_upsample_matrix(n: int, grid: int) -> np.ndarray:
    """(n, grid) matrix R with R @ v = the cubic spline through v sampled at n points.

    Grid point 0 sits on pixel 0 and grid point grid-1 on pixel n-1 (corners aligned).
    Cubic-spline interpolation is linear in the data and separable, so the 2D upsampling
    of a (grid, grid) array c is R_y @ c @ R_x.T, identical to map_coordinates(order=3).
    """
    pos = np.zeros(1) if n == 1 else np.linspace(0.0, grid - 1.0, n)
    eye = np.eye(grid)
    matrix = np.stack(
        [ndimage.map_coordinates(eye[j], pos[None], order=3, mode="mirror") for j in range(grid)],
        axis=1,
    )
    matrix.flags.writeable = False  # cached and shared between calls
    return matrix


def random_displacement_field(
    shape: tuple[int, int],
    rng: np.random.Generator,
    grid: int = 3,
    sigma: float = 10.0,
) -> np.ndarray:
    """Random smooth displacement field (2, H, W), float32 (paper, section 3.1).

    Draws (2, grid, grid) displacement vectors from N(0, sigma^2) on a coarse grid whose
    points sit at the image corners, edge midpoints and centre (for grid = 3), and
    interpolates them with bicubic splines to every pixel: at the grid points the field
    equals the drawn vectors. Channel 0 is the y displacement, channel 1 the x one.
    """
    h, w = (int(s) for s in shape)
    if h < 1 or w < 1:
        raise ValueError(f"shape must be positive, got {tuple(shape)}")
    if grid < 2:
        raise ValueError(f"grid must be >= 2, got {grid}")
    coarse = rng.normal(0.0, sigma, size=(2, grid, grid))
    ry = _cubic_upsample_matrix(h, grid)
    rx = _cubic_upsample_matrix(w, grid)
    field = ry @ coarse @ rx.T  # (2, H, W): separable bicubic upsampling
    return field.astype(np.float32)


def sample_bicubic(image: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Sample a (C, H, W) image at pixel coordinates ``coords`` (2, h, w) -> (C, h, w).

    Bicubic convolution (Keys, a = -0.75), mirrored at the image border however far
    outside the coordinates fall; computed in float32 (values and coordinates: positions
    are exact to ~1e-3 px on a 10^4 px axis; integers above 2^24 are not exact).
    Coordinates are (row, column) in pixels of ``image``: a whole image can be sampled
    around any tile without cutting it first.
    """
    image = np.asarray(image)
    _, h, w = image.shape
    scale = [2.0 / (n - 1) if n > 1 else 0.0 for n in (h, w)]
    grid = np.empty((1, *coords.shape[1:], 2), dtype=np.float32)
    grid[0, ..., 0] = coords[1] * scale[1] - (1.0 if w > 1 else 0.0)  # x first
    grid[0, ..., 1] = coords[0] * scale[0] - (1.0 if h > 1 else 0.0)
    source = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
    with torch.no_grad():
        out = F.grid_sample(
            source,
            torch.from_numpy(grid),
            mode="bicubic",
            padding_mode="reflection",
            align_corners=True,
        )
    return out[0].numpy()


def nearest_pixels(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Nearest pixel of (row, column) coordinates (broadcast together) in an array of
    ``shape``: ``(index, inside)``, where ``index`` is clipped into the array (use it for
    any number of arrays of that shape) and ``inside`` marks coordinates within it."""
    h, w = shape
    r = np.rint(rows).astype(np.intp)
    c = np.rint(cols).astype(np.intp)
    inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
    return (np.clip(r, 0, h - 1), np.clip(c, 0, w - 1)), inside


def sample_nearest(array: np.ndarray, coords: np.ndarray, fill: float | None = None) -> np.ndarray:
    """Nearest-neighbour sample of a (H, W) array at ``coords`` (2, h, w) -> (h, w).

    Outside the array the value is ``fill``, or the mirrored pixel when ``fill`` is None.
    Keeps the exact set of values (labels stay labels) and the dtype, promoted only where
    ``fill`` does not fit it (-1 for uint8 labels gives int16).
    """
    array = np.asarray(array)
    h, w = array.shape
    if fill is None:
        rows = mirror_index(np.rint(coords[0]).astype(np.intp), h)
        return array[rows, mirror_index(np.rint(coords[1]).astype(np.intp), w)]
    index, inside = nearest_pixels(coords[0], coords[1], (h, w))
    dtype = array.dtype
    if not np.can_cast(np.min_scalar_type(fill), dtype):  # e.g. -1 outside uint8 labels
        dtype = np.promote_types(dtype, np.min_scalar_type(fill))
    return np.where(inside, array[index].astype(dtype, copy=False), np.asarray(fill, dtype))


def _as_dtype(sampled: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Interpolated float32 values back to the input's dtype (rounded for integers)."""
    if dtype.kind == "f":
        return sampled.astype(dtype, copy=False)
    if dtype.kind == "b":
        return sampled >= 0.5
    info = np.iinfo(dtype)
    return np.clip(np.rint(sampled), info.min, info.max).astype(dtype)


def elastic_deform(
    image: np.ndarray,
    labels: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    grid: int = 3,
    sigma: float = 10.0,
    field: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Elastic deformation of image, labels and weight map with one field (paper, 3.1).

    ``image`` is (C, H, W) or (H, W); ``labels`` (H, W) integer classes (may hold -1 =
    not annotated); ``weight`` (H, W). The field is ``field`` if given (shape (2, H, W),
    see the module docstring for the convention), else
    :func:`random_displacement_field` drawn from ``rng``. The image is sampled with cubic
    convolution (:func:`sample_bicubic`), labels and weight with nearest neighbour
    (:func:`sample_nearest`), so labels keep exactly their set of values; all mirrored at
    the border. Output dtypes equal input
    dtypes; a zero field returns copies of the inputs.
    """
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W) or (C, H, W), got shape {image.shape}")
    spatial = image.shape[-2:]
    for name, arr in (("labels", labels), ("weight", weight)):
        if arr is not None and np.shape(arr) != spatial:
            raise ValueError(
                f"{name} shape {np.shape(arr)} does not match the image's spatial shape {spatial}"
            )
    if field is None:
        if rng is None:
            rng = np.random.default_rng()
        field = random_displacement_field(spatial, rng, grid=grid, sigma=sigma)
    field = np.asarray(field)
    if field.shape != (2, *spatial):
        raise ValueError(f"field must have shape {(2, *spatial)}, got {field.shape}")
    labels = None if labels is None else np.asarray(labels)
    weight = None if weight is None else np.asarray(weight)
    if not np.any(field):
        return (
            image.copy(),
            None if labels is None else labels.copy(),
            None if weight is None else weight.copy(),
        )
    coords = np.indices(spatial, dtype=np.float32)
    coords += field
    channels = image if image.ndim == 3 else image[None]
    out_image = _as_dtype(sample_bicubic(channels, coords), image.dtype)
    if image.ndim == 2:
        out_image = out_image[0]
    out_labels = None if labels is None else sample_nearest(labels, coords)
    out_weight = None if weight is None else sample_nearest(weight, coords)
    return out_image, out_labels, out_weight


def flip_rotate(
    arrays: Sequence[np.ndarray | None], rng: np.random.Generator
) -> list[np.ndarray | None]:
    """Apply one random element of the 8 flips/90-degree rotations to all arrays.

    The same transform (``np.rot90`` by k in 0..3 on the last two axes, then an optional
    flip of the last axis) is applied to every array, so arrays may carry leading channel
    axes. Returns C-contiguous copies; ``None`` entries pass through.
    """
    choice = int(rng.integers(8))
    k, flip = choice % 4, choice >= 4
    out: list[np.ndarray | None] = []
    for arr in arrays:
        if arr is None:
            out.append(None)
            continue
        arr = np.rot90(np.asarray(arr), k, axes=(-2, -1))
        if flip:
            arr = arr[..., ::-1]
        out.append(np.array(arr, order="C", copy=True))
    return out


def intensity_jitter(
    image: np.ndarray, rng: np.random.Generator, scale: float = 0.1, shift: float = 0.1
) -> np.ndarray:
    """image * (1 + a) + b with a ~ U(-scale, scale), b ~ U(-shift, shift), as float32.

    One (a, b) pair per call, shared by all channels.
    """
    a = rng.uniform(-scale, scale)
    b = rng.uniform(-shift, shift)
    return (np.asarray(image, dtype=np.float32) * np.float32(1.0 + a) + np.float32(b)).astype(
        np.float32, copy=False
    )


def augment_tile(
    image: np.ndarray,
    labels: np.ndarray | None,
    weight: np.ndarray | None,
    rng: np.random.Generator,
    elastic: bool = True,
    flips: bool = True,
    intensity: bool = True,
    grid: int = 3,
    sigma: float = 10.0,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Augment one cut tile: elastic -> flip_rotate -> intensity_jitter (paper, 3.1).

    ``image`` (C, H, W) or (H, W), ``labels`` and ``weight`` (H, W) or None. Flips and
    rotations of a non-square tile swap H and W for odd quarter turns. The deformation
    mirrors at the tile's border; training (``training.TileSampler``) does the same steps
    but samples its tiles straight from the whole image, so it mirrors at the image's.
    """
    if elastic:
        image, labels, weight = elastic_deform(
            image, labels, weight, rng=rng, grid=grid, sigma=sigma
        )
    if flips:
        image, labels, weight = flip_rotate([image, labels, weight], rng)
    if intensity:
        image = intensity_jitter(image, rng)
    return image, labels, weight
