"""``napari_unet.model.UNet``: the name that bioimage.io packages exported by version 0.1
give as their architecture. The network lives in :mod:`napari_unet.unet.model`."""

from .unet.model import UNet

__all__ = ["UNet"]
