"""Pretrained models bundled inside the package (no download at run time).

Each model is ``pretrained/<name>.pt`` (a :func:`napari_unet.save_model` file) with a model
card ``pretrained/<name>.md`` that says what it was trained on and how well it does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from .io.checkpoint import load_model
from .unet.model import UNet


def _folder() -> Path:
    return Path(str(resources.files("napari_unet") / "pretrained"))


def list_pretrained() -> list[str]:
    """Names of the bundled models (empty if none is bundled)."""
    return sorted(p.stem for p in _folder().glob("*.pt"))


def pretrained_path(name: str) -> Path:
    path = _folder() / f"{name}.pt"
    if not path.is_file():
        raise ValueError(f"no bundled model named {name!r}; bundled: {list_pretrained()}")
    return path


def model_card(name: str) -> str:
    """The model card (Markdown) of a bundled model, or '' if it has none."""
    card = _folder() / f"{name}.md"
    return card.read_text(encoding="utf-8") if card.is_file() else ""


def load_pretrained(name: str, device: str = "cpu") -> UNet:
    """Load a bundled model by name (see :func:`list_pretrained`)."""
    model = load_model(pretrained_path(name), device=device)
    if model.record.source is None:
        model.record.source = f"bundled:{name}"
    return model


# ------------------------------------------------------------------ training data (DSB 2018)
#: Modalities of ``dsb2018_nuclei/manifest.csv`` the bundled nuclei model is trained on
#: (grey images; the colour histology images are left out).
NUCLEI_MODALITIES: tuple[str, ...] = ("fluorescence", "brightfield_gray")
#: Every ``NUCLEI_HOLDOUT_EVERY``-th image (by sorted id, per modality, 0-based index
#: i % 5 == 4) is held out for evaluation and never used in training.
NUCLEI_HOLDOUT_EVERY = 5


def read_grey(path: str | Path) -> np.ndarray:
    """Read a DSB image (PNG, RGB or RGBA, grey ones have R = G = B) as float32 (H, W):
    the mean of the colour channels (alpha dropped), i.e. the grey value itself for grey
    images. Brightfield images are *not* inverted: the model sees dark nuclei on a bright
    background exactly as a user's brightfield image would look."""
    import imageio.v3 as iio

    image = np.asarray(iio.imread(path))
    if image.ndim == 3:
        image = image[..., :3].astype(np.float32).mean(axis=-1)
    return image.astype(np.float32)


def dsb_split(
    data_dir: str | Path,
    modalities: tuple[str, ...] = NUCLEI_MODALITIES,
    holdout_every: int = NUCLEI_HOLDOUT_EVERY,
) -> dict[str, list[dict[str, str]]]:
    """The fixed train / held-out split of ``dsb2018_nuclei`` used for the bundled model.

    Returns ``{"train": rows, "test": rows}``, rows of ``manifest.csv`` (dicts with
    ``image_id`` and ``modality``). Per modality, images are sorted by id and index
    i % holdout_every == holdout_every - 1 goes to "test".
    """
    import csv

    data_dir = Path(data_dir)
    with open(data_dir / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    split: dict[str, list[dict[str, str]]] = {"train": [], "test": []}
    for modality in modalities:
        chosen = [r for r in rows if r["modality"] == modality]
        chosen.sort(key=lambda r: r["image_id"])
        for i, row in enumerate(chosen):
            held_out = i % holdout_every == holdout_every - 1
            split["test" if held_out else "train"].append(row)
    return split


def read_dsb_pair(data_dir: str | Path, image_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(grey image float32 (H, W), instance labels uint16 (H, W)) of one DSB image."""
    import tifffile

    data_dir = Path(data_dir)
    image = read_grey(data_dir / "images" / f"{image_id}.png")
    labels = np.asarray(tifffile.imread(data_dir / "labels" / f"{image_id}.tif"))
    return image, labels


def model_summary(model: UNet) -> str:
    """Two or three lines for the GUI / CLI: which model this is and what it was trained on
    (:func:`napari_unet.unet.record.summary`)."""
    from .unet.record import summary

    return summary(model)
