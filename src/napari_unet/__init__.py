"""napari-unet: train, fine-tune and look inside a paper-faithful U-Net from napari.

The public API is re-exported here lazily, so that ``import napari_unet`` (which napari
does when it reads the plugin manifest) does not import torch.

The paper's notation in code (Ronneberger, Fischer & Brox 2015, section 3):

- a_k(x)  ``UNet.forward`` / ``Prediction.logits``: output feature channel k at pixel x
- p_k(x)  :func:`pixel_softmax`: softmax over k
- E       :func:`energy`: - sum_x w(x) log p_{l(x)}(x), averaged over annotated pixels
- w(x)    :func:`weight_map`: w_c(x) + w0 exp(-(d1(x) + d2(x))^2 / (2 sigma^2))
- one x   :func:`pixel_report`: the numbers above at one pixel; :func:`receptive_field`
- H(x)    :func:`normalized_entropy`: -sum_k p_k(x) log p_k(x) / log K
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "UNet": "unet.model",
    "pixel_softmax": "unet.softmax_energy",
    "energy": "unet.softmax_energy",
    "pixel_loss": "unet.softmax_energy",
    "IGNORE_INDEX": "unet.data",
    "weight_map": "unet.weight_maps",
    "class_balance_weights": "unet.weight_maps",
    "border_distances": "unet.weight_maps",
    "border_term": "unet.weight_maps",
    "pixel_report": "unet.pixel_report",
    "receptive_field": "unet.receptive_field",
    "input_gradient": "unet.receptive_field",
    "normalized_entropy": "unet.uncertainty",
    "where_to_annotate": "unet.uncertainty",
    "channel_mosaic": "unet.channel_gallery",
    "channel_statistics": "unet.channel_gallery",
    "elastic_deform": "unet.augment",
    "flip_rotate": "unet.augment",
    "augment_tile": "unet.augment",
    "predict_tiled": "unet.tiling",
    "Prediction": "unet.tiling",
    "train": "unet.training",
    "fit": "unet.training",
    "TrainConfig": "unet.training",
    "Progress": "unet.training",
    "TrainingDiverged": "unet.training",
    "Validation": "unet.validation",
    "ValidationScore": "unet.validation",
    "save_model": "io.checkpoint",
    "load_model": "io.checkpoint",
    "CheckpointError": "io.checkpoint",
    "prepare_sample": "unet.data",
    "TrainingSample": "unet.data",
    "labels_to_target": "unet.data",
    "normalize": "unet.data",
    "InputError": "unet.data",
    "capture_activations": "unet.activations",
    "instances_from_prediction": "instances",
    "load_pretrained": "pretrained",
    "model_summary": "pretrained",
    "pixel_error": "metrics",
    "iou_per_class": "metrics",
    "adapted_rand_error": "metrics",
    "object_scores": "metrics",
    "isbi_scores": "metrics",
    "evaluate_segmentation": "metrics",
    "export_bioimageio": "interchange.bioimageio",
    "import_bioimageio": "interchange.bioimageio_import",
    "export_torchscript": "interchange.torchscript",
    "list_pretrained": "pretrained",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
