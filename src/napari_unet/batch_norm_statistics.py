"""Batch-norm statistics recomputed for prediction after training ("precise BN").

During training each BatchNorm keeps an exponential moving average (momentum 0.1) of the
mean and variance of its input over the last few batches. With batches of two tiles
that average is noisy. It also lags the weights and describes *augmented* tiles
(intensity jitter, elastic deformation), not the images prediction will see. The paper's
network has no batch norm; it is an option here for short runs (``UNet(batch_norm=True)``).

:func:`recompute_batch_norm_statistics` replaces the running statistics with the plain
average over un-augmented tiles, computed with the final weights. This is "precise BN"
(Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021, section 3). Only the BatchNorm
layers switch to training mode for the pass: dropout stays off and no weight changes.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def batch_norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recompute_batch_norm_statistics(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Set every BatchNorm's running mean and variance to their average over ``batches``.

    Each statistic is the mean over the batches of the per-batch statistic (the running
    variance averages the unbiased per-batch variances, as BatchNorm's own update does).
    Returns the number of batches used; with no batch or no BatchNorm layer, the model is
    left as it was. The model ends in eval mode.
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    saved = [
        (layer.running_mean.clone(), layer.running_var.clone(), layer.num_batches_tracked.clone())
        for layer in layers
    ]
    momenta = [layer.momentum for layer in layers]
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average over the batches, not a moving one
        layer.train()
    used = 0
    try:
        for x in batches:
            model(x)
            used += 1
    except BaseException:
        _restore(layers, saved)
        raise
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        model.eval()
    if used == 0:
        _restore(layers, saved)
    return used


def _restore(layers: list, saved: list) -> None:
    for layer, (mean, var, count) in zip(layers, saved, strict=True):
        layer.running_mean.copy_(mean)
        layer.running_var.copy_(var)
        layer.num_batches_tracked.copy_(count)
