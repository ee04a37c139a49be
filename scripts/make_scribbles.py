"""Make the sample data's sparse scribbles from the stardist nuclei instance labels.

Run from the repository root (deterministic: the same file every time)::

    python scripts/make_scribbles.py

Writes ``src/napari_unet/sample_data/scribbles.npz`` (one uint8 array ``scribbles``):
0 = not annotated, 1 = background, 2 = nucleus, about 1-2 % of the pixels, the way a user
would paint a few strokes: a short line through the eroded interior of some nuclei, and
background strokes that keep a safe distance from every nucleus.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage as ndi
from skimage.draw import line

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "napari_unet" / "sample_data"

NUCLEUS_FRACTION = 0.5  # share of the nuclei that get a stroke
BACKGROUND_STROKES = 32
BACKGROUND_DISTANCE = 6.0  # px: background strokes stay this far from any nucleus
SEED = 2015


def nucleus_strokes(instances: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A stroke along the major axis of the eroded interior of a random subset of nuclei."""
    out = np.zeros(instances.shape, bool)
    ids = np.unique(instances)
    ids = ids[ids > 0]
    chosen = rng.choice(ids, size=int(round(NUCLEUS_FRACTION * len(ids))), replace=False)
    for i, sl in enumerate(ndi.find_objects(instances), start=1):
        if sl is None or i not in chosen:
            continue
        mask = instances[sl] == i
        inner = ndi.binary_erosion(mask, iterations=3)
        if inner.sum() < 6:
            continue
        ys, xs = np.nonzero(inner)
        cy, cx = ys.mean(), xs.mean()
        # major axis of the interior from the second moments
        cov = np.cov(np.stack([ys - cy, xs - cx]))
        _, vecs = np.linalg.eigh(cov)
        dy, dx = vecs[:, -1]
        half = 0.35 * np.sqrt(inner.sum())
        r0, c0 = int(round(cy - half * dy)), int(round(cx - half * dx))
        r1, c1 = int(round(cy + half * dy)), int(round(cx + half * dx))
        rr, cc = line(r0, c0, r1, c1)
        keep = (rr >= 0) & (rr < mask.shape[0]) & (cc >= 0) & (cc < mask.shape[1])
        stroke = np.zeros_like(mask)
        stroke[rr[keep], cc[keep]] = True
        stroke = ndi.binary_dilation(stroke) & inner
        out[sl] |= stroke
    return out


def background_strokes(instances: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Straight 3 px wide strokes, 30-90 px long, only where no nucleus is near."""
    h, w = instances.shape
    far = ndi.distance_transform_edt(instances == 0) > BACKGROUND_DISTANCE
    out = np.zeros(instances.shape, bool)
    made = 0
    while made < BACKGROUND_STROKES:
        r0, c0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        if not far[r0, c0]:
            continue
        angle = rng.uniform(0, np.pi)
        length = rng.uniform(30, 90)
        r1 = int(np.clip(round(r0 + length * np.sin(angle)), 0, h - 1))
        c1 = int(np.clip(round(c0 + length * np.cos(angle)), 0, w - 1))
        rr, cc = line(r0, c0, r1, c1)
        stroke = np.zeros(instances.shape, bool)
        stroke[rr, cc] = True
        stroke = ndi.binary_dilation(stroke) & far
        # keep only the piece connected to the start (a stroke does not jump over nuclei)
        pieces, _ = ndi.label(stroke)
        stroke = pieces == pieces[r0, c0]
        if stroke.sum() < 20:
            continue
        out |= stroke
        made += 1
    return out


def make_scribbles(instances: np.ndarray, seed: int = SEED) -> np.ndarray:
    """uint8 scribbles: 1 = background, 2 = nucleus, 0 = not annotated."""
    rng = np.random.default_rng(seed)
    scribbles = np.zeros(instances.shape, np.uint8)
    scribbles[background_strokes(instances, rng)] = 1
    scribbles[nucleus_strokes(instances, rng)] = 2
    return scribbles


def main() -> None:
    instances = tifffile.imread(SAMPLE / "labels.tif")
    scribbles = make_scribbles(instances)
    np.savez_compressed(SAMPLE / "scribbles.npz", scribbles=scribbles)
    n = scribbles.size
    print(
        f"scribbles: {np.count_nonzero(scribbles == 1)} background + "
        f"{np.count_nonzero(scribbles == 2)} nucleus pixels = "
        f"{100 * np.count_nonzero(scribbles) / n:.2f} % of {n}"
    )


if __name__ == "__main__":
    main()
