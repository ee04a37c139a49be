"""Reduced precision (bf16) prediction agrees with fp32 on real data (issue 5).

The label image predicted in bf16 must equal the fp32 one on at least 99.5% of the pixels
of a 256x256 crop of the real stardist nuclei image, for the bundled nuclei model (when one
is bundled) and for a small U-Net fitted for a few steps on the other half of that image
(random weights would make the comparison meaningless: near-tied logits everywhere).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from napari_unet import TrainConfig, UNet, fit, predict_tiled, prepare_sample

from .conftest import bundled_nuclei

MIN_AGREEMENT = 0.995


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: bf16 in hardware (elsewhere autocast emulates it, slowly)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in text or "amx_bf16" in text


def _bf16_usable() -> bool:
    try:
        conv = torch.nn.Conv2d(1, 2, 3)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            out = conv(torch.zeros(1, 1, 8, 8))
        return out.dtype == torch.bfloat16
    except (RuntimeError, NotImplementedError):
        return False


pytestmark = pytest.mark.skipif(
    not _bf16_usable(), reason="bfloat16 autocast is not supported by this CPU / torch build"
)


@pytest.fixture(scope="module")
def nuclei() -> tuple[np.ndarray, np.ndarray]:
    data = bundled_nuclei()  # the stardist image, bundled as the sample
    return data["image"], data["instances"]


@pytest.fixture(scope="module", params=["bundled", "fitted"])
def model(request: pytest.FixtureRequest, nuclei: tuple[np.ndarray, np.ndarray]) -> UNet:
    """The bundled nuclei model (skipped when none is bundled), and a small U-Net fitted
    for 30 steps on the right half of the image (the test crop is in the left half)."""
    from napari_unet import list_pretrained, load_pretrained

    if request.param == "bundled":
        names = list_pretrained()
        if not names:
            pytest.skip("no pretrained model is bundled")
        return load_pretrained("nuclei" if "nuclei" in names else names[0])
    image, labels = nuclei
    sample = prepare_sample(image[:, 256:], labels[:, 256:], mode="instances")
    torch.manual_seed(0)
    net = UNet(depth=3, base_channels=8, n_classes=2, batch_norm=True, dropout=0.0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net: one thread is as fast and never oversubscribes
    try:
        fit(
            net,
            [sample],
            TrainConfig(steps=30, batch_size=2, tile_size=96, learning_rate=3e-3, device="cpu"),
        )
    finally:
        torch.set_num_threads(threads)
    return net


def test_bf16_labels_agree_with_fp32_on_real_data(
    model: UNet, nuclei: tuple[np.ndarray, np.ndarray]
) -> None:
    image, truth = nuclei
    crop = image[:256, :256]
    fp32 = predict_tiled(model, crop, precision="fp32", device="cpu")
    bf16 = predict_tiled(model, crop, precision="bf16", device="cpu")

    # the model is not trivial: it finds nuclei (else any two predictions would agree)
    cell = 1 + int(model.n_classes > 1)
    found = fp32.labels == cell
    assert 0.05 < found.mean() < 0.6
    iou = (found & (truth[:256, :256] > 0)).sum() / (found | (truth[:256, :256] > 0)).sum()
    assert iou > 0.5

    # bf16 really ran (the option is not a silent no-op) ...
    assert not np.array_equal(bf16.logits, fp32.logits)
    # ... and changes the segmentation on at most 0.5% of the pixels
    agreement = float((bf16.labels == fp32.labels).mean())
    assert agreement >= MIN_AGREEMENT, f"bf16 agrees with fp32 on {agreement:.4%} of pixels"
    assert np.abs(bf16.probabilities - fp32.probabilities).mean() < 0.01


def test_bf16_output_is_float32_and_complete(model: UNet) -> None:
    rng = np.random.default_rng(1)
    image = rng.random((70, 90), dtype=np.float32)
    pred = predict_tiled(model, image, precision="bf16", device="cpu")
    assert pred.logits.dtype == np.float32 and pred.probabilities.dtype == np.float32
    assert pred.labels.shape == (70, 90)
    np.testing.assert_allclose(pred.probabilities.sum(axis=0), 1.0, atol=1e-5)


def test_native_bf16_flag_matches_torch() -> None:
    """On CPUs with bf16 hardware torch must report an AVX-512 capability (else oneDNN
    would not use it and the bf16 option would be slow)."""
    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no bf16 hardware (AVX-512 BF16 / AMX)")
    assert torch.backends.cpu.get_cpu_capability().startswith("AVX512")
