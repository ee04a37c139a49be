"""Sample data for napari: real fluorescence nuclei with ready-made annotations.

The image and its instance labels are the DSB 2018 nuclei image shipped with stardist
(BSD-3, data CC0; see ``sample_data/LICENSE_stardist.txt``). The sparse scribbles
(1 = background, 2 = nucleus, ~1.8 % of the pixels) were derived from the instance labels by
``scripts/make_scribbles.py``. Everything is read from the package: works offline, no torch.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

LayerData = tuple[np.ndarray, dict[str, Any], str]


def _folder() -> Path:
    return Path(str(resources.files("napari_unet") / "sample_data"))


def load_nuclei() -> dict[str, np.ndarray]:
    """The sample as arrays: ``image`` (512, 512) uint16, ``scribbles`` (512, 512) uint8,
    ``instances`` (512, 512) uint16 cell ids."""
    import tifffile

    folder = _folder()
    with np.load(folder / "scribbles.npz") as npz:
        scribbles = npz["scribbles"]
    return {
        "image": tifffile.imread(folder / "image.tif"),
        "scribbles": scribbles,
        "instances": tifffile.imread(folder / "labels.tif"),
    }


def make_nuclei_sample() -> list[LayerData]:
    """napari sample data: image "nuclei", Labels "scribbles" and Labels "nuclei instances"."""
    data = load_nuclei()
    return [
        (data["image"], {"name": "nuclei", "colormap": "gray"}, "image"),
        (data["scribbles"], {"name": "scribbles", "opacity": 0.9}, "labels"),
        (data["instances"], {"name": "nuclei instances", "visible": False}, "labels"),
    ]
