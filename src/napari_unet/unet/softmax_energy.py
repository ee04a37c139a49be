"""The pixel-wise softmax p_k(x) and the energy function E of the paper (section 3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import IGNORE_INDEX


def pixel_softmax(logits: torch.Tensor) -> torch.Tensor:
    """p_k(x) = exp(a_k(x)) / sum_k' exp(a_k'(x)): softmax over the channel axis only.

    ``logits`` is (N, K, H, W) or (K, H, W); the channel axis is the third from the end.
    """
    return torch.softmax(logits, dim=-3)


def pixel_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """-w(x) log p_{l(x)}(x) at every pixel; 0 where the pixel is not annotated.

    logits: (N, K, H, W) output feature channels a_k(x).
    target: (N, H, W) integer class l(x) in 0..K-1, or ``ignore_index``.
    weight: (N, H, W) weight map w(x), or None for w = 1.
    """
    if logits.ndim != 4 or target.ndim != 3:
        raise ValueError(
            f"expected logits (N, K, H, W) and target (N, H, W), got "
            f"{tuple(logits.shape)} and {tuple(target.shape)}"
        )
    # -log p_{l(x)}(x), with log p = a - logsumexp(a) computed stably, and 0 where
    # l(x) = ignore_index: one fused op (log_softmax + NLL), forward and backward
    nll = F.cross_entropy(
        logits.float(), target.long(), ignore_index=ignore_index, reduction="none"
    )
    if weight is None:
        return nll
    # zero where not annotated whatever the weight there (0 * inf would be NaN)
    return torch.where(target != ignore_index, nll * weight, torch.zeros_like(nll))


def energy(
    logits: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """E / N_annotated with E = - sum_x w(x) log p_{l(x)}(x) (paper, eq. 1).

    The mean over annotated pixels of the weighted cross-entropy. Pixels whose target is
    ``ignore_index`` (not annotated) contribute nothing; with ``weight=None`` this equals
    ``F.cross_entropy(logits, target, ignore_index=ignore_index)``. Returns 0 (with a
    gradient) when no pixel is annotated.
    """
    losses = pixel_loss(logits, target, weight, ignore_index)
    n_annotated = (target != ignore_index).sum()
    return losses.sum() / n_annotated.clamp(min=1)
