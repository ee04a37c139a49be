"""napari-unet's U-Net: the paper's network (:mod:`.network`) with its record.

:class:`UNet` is :class:`napari_unet.unet.network.UNet` (figure 1 of Ronneberger, Fischer
& Brox 2015 and its size arithmetic) plus :attr:`UNet.record`, the typed
:class:`~napari_unet.unet.record.ModelRecord` of what the model is for and how it was
made, saved with the weights by :func:`napari_unet.save_model`. The network itself lives
in :mod:`.network`, a file that imports nothing but torch (bioimage.io packages ship it).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from . import network
from .network import PADDINGS, DoubleConv, Up, center_crop, crop_to
from .record import Architecture, Classes, MetadataView, ModelRecord

if TYPE_CHECKING:
    import torch

METADATA_DEPRECATED = (
    "UNet.metadata is deprecated: use the typed UNet.record (napari_unet.unet.record)"
)

__all__ = ["PADDINGS", "DoubleConv", "UNet", "Up", "center_crop", "crop_to"]


class UNet(network.UNet):
    __doc__ = network.UNet.__doc__

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 2,
        depth: int = 4,
        base_channels: int = 64,
        padding: str = "valid",
        batch_norm: bool = False,
        dropout: float = 0.5,
    ) -> None:
        Architecture.from_dict(  # types and size bounds, before anything is allocated
            dict(in_channels=in_channels, n_classes=n_classes, depth=depth,
                 base_channels=base_channels, padding=padding, batch_norm=batch_norm,
                 dropout=dropout)
        )  # fmt: skip
        super().__init__(
            in_channels, n_classes, depth, base_channels, padding, batch_norm, dropout
        )
        self._record = ModelRecord(architecture=Architecture(**self.config()))

    # ------------------------------------------------------------------ the record
    @property
    def record(self) -> ModelRecord:
        """What the model is for and how it was made (classes, normalisation, training
        runs, source...), saved with the weights by :func:`napari_unet.save_model`. Its
        ``architecture`` is derived from :meth:`config` on every access, so it always
        describes this network."""
        self._record.architecture = Architecture(**self.config())
        return self._record

    @record.setter
    def record(self, record: ModelRecord) -> None:
        if not isinstance(record, ModelRecord):
            raise TypeError(f"a ModelRecord is needed, got {type(record).__name__}")
        arch = Architecture(**self.config())
        if record.architecture != arch:
            raise ValueError(
                f"the record describes another network ({record.architecture}) than this "
                f"one ({arch})"
            )
        record.validate()
        self._record = record

    @property
    def metadata(self) -> MetadataView:
        """Deprecated: the record as the format 1 metadata dict; use :attr:`record`.

        Kept for scripts written for 0.1 (``get``, ``[]``, ``pop``, ``setdefault``,
        ``update``, assigning a whole dict): validated and written through to
        :attr:`record`. Nothing in napari-unet uses it.
        """
        warnings.warn(METADATA_DEPRECATED, DeprecationWarning, stacklevel=2)
        return MetadataView(self)

    @metadata.setter
    def metadata(self, metadata: Any) -> None:
        warnings.warn(METADATA_DEPRECATED, DeprecationWarning, stacklevel=2)
        self.record = ModelRecord.from_v1(metadata, Architecture(**self.config()))

    def replace_head(self, n_classes: int) -> None:
        """Give the network a new, freshly initialised 1x1 head with ``n_classes`` outputs.

        Used to fine-tune a pretrained model on a task with a different number of classes;
        the class names, label values and colours of the old head are dropped.
        """
        super().replace_head(n_classes)
        self.record.classes = Classes(label_mode=self._record.classes.label_mode)


def weights_finite(model: torch.nn.Module) -> bool:
    """True when every floating-point parameter and buffer of ``model`` is finite (one
    fused norm per tensor: a NaN or inf makes its norm non-finite)."""
    import torch

    tensors = [t.detach() for t in model.state_dict().values() if t.is_floating_point()]
    if not tensors:
        return True
    norms = torch._foreach_norm([t.float() if t.dtype != torch.float32 else t for t in tensors])
    return bool(torch.isfinite(torch.stack(norms)).all())
