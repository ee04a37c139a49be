"""Memory is estimated before work, and work that cannot fit is refused, not started."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_unet import TrainConfig, UNet, fit, predict_tiled, prepare_sample
from napari_unet.unet import memory_estimate
from napari_unet.unet.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MEASURE = """
import json, sys, torch
from napari_unet import UNet
from napari_unet.unet.memory_estimate import inference_bytes, training_bytes
torch.set_num_threads(1)
mode, batch, side = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
model = UNet(1, 2, depth=3, base_channels=16, padding="same", batch_norm=True)
x = torch.randn(batch, 1, side, side)
def peak():  # VmHWM: ru_maxrss of a child can start at its parent's peak
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
before = peak()
if mode == "train":
    model.train()
    model(x).sum().backward()
    estimate = training_bytes(model, batch, side)
else:
    model.eval()
    with torch.no_grad():
        model(x)
    estimate = inference_bytes(model, batch, side)
used = peak() - before
print(json.dumps({"estimate": estimate, "used": used}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("mode, batch, side", [("train", 8, 192), ("infer", 2, 768)])
def test_the_estimate_bounds_the_measured_peak(mode, batch, side) -> None:
    """The peak memory growth of a real pass, measured in a fresh process, lies below the
    estimate and above a fifth of it (the estimate is a bound, not a wild guess)."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, mode, str(batch), str(side)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["estimate"] / 5 < r["used"] < r["estimate"], r


def scene() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = rng.normal(100, 10, (48, 48)).astype(np.float32)
    labels = np.zeros((48, 48), np.uint8)
    labels[2:6, 2:40], labels[30:34, 2:40] = 1, 2
    return image, labels


def tiny() -> UNet:
    torch.manual_seed(0)
    return UNet(1, 2, depth=2, base_channels=4, dropout=0).eval()


def test_training_too_large_for_the_memory_is_refused_untouched(monkeypatch) -> None:
    monkeypatch.setattr(memory_estimate, "available_bytes", lambda device: 50 * 2**20)
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    record = model.record.to_json()
    cfg = TrainConfig(steps=1, batch_size=64, tile_size=256)
    with pytest.raises(InputError, match="needs about .* more than the 52 MB available"):
        fit(model, [prepare_sample(*scene())], cfg)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.record.to_json() == record
    fit(model, [prepare_sample(*scene())], TrainConfig(steps=1, batch_size=1, tile_size=16))


def test_prediction_too_large_for_the_memory_is_refused(monkeypatch) -> None:
    monkeypatch.setattr(memory_estimate, "available_bytes", lambda device: 2**20)
    with pytest.raises(InputError, match="lower the tile size or the batch size"):
        predict_tiled(tiny(), np.zeros((300, 300), np.float32), tile_size=256)


def test_a_tile_larger_than_the_image_is_the_image() -> None:
    """--tile-size 100000 on a small image: the same a_k(x) as a tile of the image's size,
    without allocating a 100000 px tile."""
    image = scene()[0]
    model = tiny()
    ref = predict_tiled(model, image, tile_size=48).logits
    np.testing.assert_array_equal(predict_tiled(model, image, tile_size=100_000).logits, ref)
