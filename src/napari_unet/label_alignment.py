"""Sub-pixel registration of dense annotations to their image.

Ground truth made outside napari is sometimes offset from its image by a fraction of a
pixel: a pixel-corner vs pixel-centre convention, or labels drawn or resized on another
grid. The copy of ISBI 2012 in the shared data is such a case (labels about half a pixel
up and a fifth of a pixel left of the membranes). A network trained with flips and
quarter turns cannot learn an offset that is fixed in image coordinates: each flip
reverses it, so the targets jitter by twice the offset at every edge, and the network
learns the edge in the middle, off the annotators' convention everywhere.

:func:`estimate_label_offset` measures the offset from the training data alone: the
sub-pixel shift of the annotated foreground that correlates best with the image
(|Pearson r| summed over the images, the sign taken per image at zero shift, so dark
membranes and bright nuclei work alike; the mask is moved by a band-limited Fourier
shift).
:func:`align_image` resamples an image by that offset (cubic spline), so that its
structures lie where the annotations put them. Training and prediction images must be
aligned the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


class _CrossCorrelation:
    """Pearson r between each image and its mask moved by a sub-pixel shift, summed.

    The mask is moved by a Fourier (band-limited) shift: unlike linear or spline
    interpolation, it does not blur the mask more at fractional shifts (only the Nyquist
    row and column of even sizes are weighted by cos(pi s), a 1/64 px effect on ISBI),
    so a fractional shift is not favoured for smoothing the mask's edges. Each image's
    term carries the sign of its r at zero shift (dark or bright objects). Evaluated
    from the spectra, with the separable phase ramp, in O(pixels) per shift.
    """

    def __init__(self, images: list[np.ndarray], masks: list[np.ndarray]) -> None:
        self.terms = []
        for image, mask in zip(images, masks, strict=True):
            image = image - image.mean()
            mask = mask - mask.mean()
            norm = np.sqrt(float((image * image).sum()) * float((mask * mask).sum()))
            if norm == 0:
                continue  # a flat image or an empty mask says nothing about the offset
            cross = np.conj(np.fft.fft2(image)) * np.fft.fft2(mask) / (norm * image.size)
            if float(np.real(cross.sum())) < 0:  # r at zero shift: dark objects on bright
                cross = -cross
            freq_y = np.fft.fftfreq(image.shape[0])
            freq_x = np.fft.fftfreq(image.shape[1])
            self.terms.append((cross, freq_y, freq_x))

    def __call__(self, shift: tuple[float, float]) -> float:
        total = 0.0
        for cross, freq_y, freq_x in self.terms:
            ramp_y = np.exp(-2j * np.pi * freq_y * shift[0])
            ramp_x = np.exp(-2j * np.pi * freq_x * shift[1])
            total += float(np.real(ramp_y @ cross @ ramp_x))
        return total


def estimate_label_offset(
    images: Sequence[np.ndarray],
    foreground: Sequence[np.ndarray],
    *,
    max_shift: float = 1.0,
    resolution: float = 1 / 16,
) -> tuple[float, float]:
    """Offset (dy, dx) in pixels of the annotations relative to the image structures.

    ``foreground`` holds one boolean mask per image from *dense* annotations (for
    instance labels, ``labels > 0``). The result is the position of the annotated
    structures minus their position in the image: (-0.5, 0) means the annotations sit
    half a pixel above. Searched on a grid of ``max_shift / 4`` pixels, then refined to
    ``resolution`` around the best point; an offset beyond ``max_shift`` comes back at
    that limit.
    """
    if not (max_shift > 0 and resolution > 0):
        raise ValueError("max_shift and resolution must be positive")
    if len(images) == 0 or len(images) != len(foreground):
        raise ValueError("give one foreground mask per image, and at least one image")
    checked, masks = [], []
    for image, mask in zip(images, foreground, strict=True):
        image = np.asarray(image, np.float64)
        mask = np.asarray(mask)
        if image.ndim != 2 or image.shape != mask.shape:
            raise ValueError(
                f"each image must be 2-D with a mask of its shape, got {image.shape} "
                f"and {mask.shape}"
            )
        if not np.isfinite(image).all():
            raise ValueError("the image contains NaN or infinite values")
        checked.append(image)
        masks.append((mask != 0).astype(np.float64))
    score = _CrossCorrelation(checked, masks)
    if not score.terms:
        raise ValueError("every image is flat or every mask is empty or full")

    best = (0.0, 0.0)
    step = max_shift / 4
    while True:
        offsets = np.arange(-4, 5) * step
        candidates = [(best[0] + dy, best[1] + dx) for dy in offsets for dx in offsets]
        candidates = [c for c in candidates if max(abs(c[0]), abs(c[1])) <= max_shift + 1e-9]
        best = max(candidates, key=score)
        if step <= resolution + 1e-12:
            break
        step = max(step / 4, resolution)
    # the mask moved by s matches the image, so the annotations sit at image - s
    return (-float(best[0]) + 0.0, -float(best[1]) + 0.0)


def align_image(
    image: np.ndarray, offset: tuple[float, float], channel_axis: int | None = None
) -> np.ndarray:
    """Move the image's structures by ``offset`` (dy, dx) so they lie on the annotations.

    Cubic spline interpolation, mirrored at the border; the dtype becomes float32. A
    multichannel image needs its ``channel_axis`` (first or last); channels shift alike.
    """
    image = np.asarray(image, np.float32)
    if channel_axis is None:
        if image.ndim != 2:
            raise ValueError(
                f"expected a 2-D image, got shape {image.shape}: give channel_axis for channels"
            )
        return ndimage.shift(image, tuple(offset), order=3, mode="mirror").astype(np.float32)
    if image.ndim != 3 or channel_axis not in (0, -1, 2):
        raise ValueError(f"expected (C, Y, X) or (Y, X, C), got shape {image.shape}")
    channels = np.moveaxis(image, channel_axis, 0)
    moved = np.stack([align_image(c, offset) for c in channels])
    return np.moveaxis(moved, 0, channel_axis)
