"""How much memory a forward pass will need, known before it runs.

Every layer's output of one forward pass is counted on PyTorch's meta device (shapes
only, nothing allocated). On a CPU the peak memory of a training step (forward and
backward) measured 1.0-1.1 times that sum for the bundled model and the presets, and of an
inference pass 0.35-0.41 times (most outputs are freed as soon as the next layer has
run). Training and prediction refuse a batch or tile that would not fit in the memory
available, with the size they would need, instead of swapping for minutes or being
killed.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import torch

from .errors import InputError

#: peak memory / sum of the layer outputs, with a margin over what was measured
TRAINING_FACTOR = 1.3
INFERENCE_FACTOR = 0.5


@functools.lru_cache(maxsize=64)
def _layer_output_bytes(config: tuple[tuple[str, Any], ...], batch: int, side: int) -> int:
    from .network import UNet as Network

    with torch.device("meta"):
        net = Network(**dict(config))
    total = 0

    def count(_module: torch.nn.Module, _inputs: Any, output: Any) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel() * 4  # float32
        elif isinstance(output, tuple | list):
            total += sum(o.numel() * 4 for o in output if isinstance(o, torch.Tensor))

    hooks = [m.register_forward_hook(count) for m in net.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            net(torch.empty(batch, net.in_channels, side, side, device="meta"))
    finally:
        for h in hooks:
            h.remove()
    return total


def layer_output_bytes(model: Any, batch: int, side: int) -> int:
    """The bytes of every layer's output of one pass on ``batch`` tiles of ``side``^2."""
    return _layer_output_bytes(tuple(sorted(model.config().items())), int(batch), int(side))


def training_bytes(model: Any, batch: int, side: int) -> int:
    """Peak memory of one training step: activations and their gradients, plus weights,
    gradients and two Adam moments."""
    weights = sum(p.numel() for p in model.parameters()) * 4
    return int(TRAINING_FACTOR * layer_output_bytes(model, batch, side)) + 4 * weights


def inference_bytes(model: Any, batch: int, side: int) -> int:
    """Peak memory of one inference pass (no gradients)."""
    return int(INFERENCE_FACTOR * layer_output_bytes(model, batch, side))


def available_bytes(device: torch.device) -> int | None:
    """Memory free for this process on ``device`` (None where it cannot be known)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def check_fits(needed: int, device: torch.device, what: str, advice: str) -> None:
    """Refuse work that needs more memory than ``device`` has available."""
    free = available_bytes(device)
    if free is not None and needed > free:
        raise InputError(
            f"{what} needs about {_gb(needed)} of memory, more than the {_gb(free)} "
            f"available on {device.type}: {advice}"
        )
