"""Batch-norm statistics recomputed for prediction after training ("precise BN").

During training each BatchNorm keeps an exponential moving average (momentum 0.1) of the
mean and variance of its input over the last few batches. With batches of two tiles
that average is noisy. It also lags the weights and describes *augmented* tiles
(intensity jitter, elastic deformation), not the images prediction will see. The paper's
network has no batch norm; it is an option here for short runs (``UNet(batch_norm=True)``).

:func:`recompute_batch_norm_statistics` replaces the running statistics with the
population mean and variance of each BatchNorm's input over given batches, computed with
the final weights ("precise BN": Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021;
the population variance over all batches together, not the mean of per-batch variances,
which leaves out how much the batch means differ and so underestimates it for small
batches).
During the pass the BatchNorm layers normalise with batch statistics, as in training, so
every layer sees the inputs it was trained on; dropout stays off and no weight changes.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn


def batch_norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [
        m
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
    ]


class _Moments:
    """Per-channel count, mean and sum of squared deviations (float64, on the CPU) of a
    BatchNorm's inputs, merged batch by batch (Chan et al.'s pairwise update). Each batch's
    mean and variance are taken on its own device in float32: Apple MPS has no float64."""

    def __init__(self) -> None:
        self.count = 0
        self.batches = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def __call__(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].detach().float()
        dims = [d for d in range(x.dim()) if d != 1]
        var, mean = torch.var_mean(x, dims, correction=0)
        n = x.numel() // x.shape[1]
        mean, m2 = mean.to("cpu", torch.float64), var.to("cpu", torch.float64) * n
        self.batches += 1
        if self.mean is None or self.m2 is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.count * n / total)
        self.count = total


@torch.no_grad()
def recompute_batch_norm_statistics(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Set every BatchNorm's running mean and variance to those of its input over ``batches``.

    The variance is the unbiased population variance over all pixels of all batches; a
    layer's ``num_batches_tracked`` becomes the number of batches that reached it, and a
    layer that no batch reached keeps its statistics. Returns the number of batches used;
    with no batch or no BatchNorm layer, or when a batch fails, the running statistics are
    left as they were. The model ends in eval mode.
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    moments = [_Moments() for _ in layers]
    hooks = [layer.register_forward_pre_hook(m) for layer, m in zip(layers, moments, strict=True)]
    saved = [
        (layer.running_mean.clone(), layer.running_var.clone(), layer.num_batches_tracked.clone())
        for layer in layers
    ]
    model.eval()
    for layer in layers:
        layer.train()  # batch statistics inside the pass, as in training
    used = 0
    try:
        for x in batches:
            model(x)
            used += 1
    except BaseException:
        _restore(layers, saved)
        raise
    finally:
        for hook in hooks:
            hook.remove()
        model.eval()
    if used == 0:
        _restore(layers, saved)
        return 0
    for layer, m in zip(layers, moments, strict=True):
        if m.mean is None or m.m2 is None:
            continue  # a layer the forward pass never reached keeps its statistics
        var = m.m2 / max(m.count - 1, 1)  # unbiased, over all pixels of all batches
        layer.running_mean.copy_(m.mean)
        layer.running_var.copy_(var)
        layer.num_batches_tracked.fill_(m.batches)
    return used


def _restore(layers: list, saved: list) -> None:
    for layer, (mean, var, count) in zip(layers, saved, strict=True):
        layer.running_mean.copy_(mean)
        layer.running_var.copy_(var)
        layer.num_batches_tracked.copy_(count)
