"""What a bioimage.io package of a napari-unet U-Net is: its names and files, the spec
library, and how consumers run it (preprocessing, the network). Shared by export
(:mod:`.bioimageio`), its docs (:mod:`.bioimageio_docs`) and import
(:mod:`.bioimageio_import`), which import this module and not each other.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np
import torch

from ..io.checkpoint import CheckpointError
from ..unet.model import UNet
from ..unet.normalization import scale_range

INSTALL_HINT = "pip install 'napari-unet-explorer[bioimageio]'"
PAPER_CITATION = (
    "Ronneberger, O., Fischer, P., Brox, T. (2015). U-Net: Convolutional Networks for "
    "Biomedical Image Segmentation. MICCAI 2015, LNCS 9351, 234-241."
)
PAPER_DOI = "10.1007/978-3-319-24574-4_28"
#: How an imported package's architecture must be named (library form).
#: (the first is written; packages exported by 0.1 name napari_unet.model, still accepted)
ARCHITECTURE_IMPORTS = ("napari_unet.unet.model", "napari_unet.model", "napari_unet")
ARCHITECTURE_CALLABLE = "UNet"
ARCHITECTURE_ID = "napari_unet.unet.model.UNet"
#: Longest test-input side (pixels) unless the model needs more.
MAX_TEST_SIDE = 256
INPUT_ID, AXES = "image", ("batch", "channel", "y", "x")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_+\- ()]{5,128}$")
YAML_NAMES = ("rdf.yaml", "bioimageio.yaml")

FILE_WEIGHTS = "weights.pt"
FILE_TORCHSCRIPT = "weights_torchscript.pt"
FILE_ARCHITECTURE = "unet.py"
FILE_TEST_IN, FILE_TEST_OUT = "test_input.npy", "test_output.npy"
FILE_SAMPLE_IN, FILE_SAMPLE_OUT = "sample_input.tif", "sample_output.tif"
FILE_COVER, FILE_README = "cover.png", "README.md"


class BioimageioNotInstalled(ImportError):
    """bioimage.io support was asked for but ``bioimageio.spec`` is not installed."""


class PackageError(CheckpointError):
    """A bioimage.io package that napari-unet cannot import (with the reason)."""


def require_spec() -> ModuleType:
    """Import ``bioimageio.spec`` or raise :class:`BioimageioNotInstalled` saying what to do."""
    try:
        return importlib.import_module("bioimageio.spec")
    except ImportError as err:
        raise BioimageioNotInstalled(
            f"bioimage.io model packages need the optional bioimageio.spec package: {INSTALL_HINT}"
        ) from err


# ---------------------------------------------------------------------------- running
def preprocess(x: np.ndarray, normalization: Mapping[str, Any]) -> np.ndarray:
    """The package's preprocessing of a raw (N, C, H, W) tensor, as consumers apply it."""
    if normalization.get("method") == "none":
        return np.asarray(x, np.float32)
    return scale_range(x, normalization["low"], normalization["high"])


def run_model(model: UNet, x: np.ndarray, probabilities: bool = False) -> np.ndarray:
    """The network on a preprocessed (N, C, H, W) tensor: a_k(x), or p_k(x), float32."""
    with torch.inference_mode():
        out = model(torch.from_numpy(np.ascontiguousarray(x, np.float32)))
        if probabilities:
            out = torch.softmax(out, dim=1)
    return out.numpy().astype(np.float32)


# ---------------------------------------------------------------------------- naming
def class_names(model: UNet) -> list[str]:
    return model.record.classes.names_of(model.n_classes)


def invalid_reason(descr: Any) -> str:
    """Why bioimageio.spec found a description invalid, in one line per error."""
    with contextlib.suppress(Exception):
        reason = descr.get_reason()
        if reason:
            return str(reason)
    with contextlib.suppress(Exception):
        errors = descr.validation_summary.errors
        return "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors)
    return "unknown reason"
