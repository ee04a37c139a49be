"""Device selection (CPU, CUDA, MPS), precision options, and GPU prediction/training.

The CPU tests run everywhere; the CUDA and MPS tests run only where such a device is
present and are skipped with a reason elsewhere.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_unet import TrainConfig, UNet, fit, predict_tiled, prepare_sample
from napari_unet.runtime import devices
from napari_unet.runtime.devices import (
    autocast_dtype,
    available_devices,
    inference_context,
    native_bf16,
    resolve_device,
    resolve_precision,
    training_memory_format,
)
from napari_unet.unet.record import Normalization

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")
needs_mps = pytest.mark.skipif(not HAS_MPS, reason="no Apple MPS device on this machine")


@pytest.fixture(scope="module")
def tiny_model() -> UNet:
    torch.manual_seed(0)
    model = UNet(depth=2, base_channels=4, n_classes=3, batch_norm=True, dropout=0.0).eval()
    model.record.normalization = Normalization("none", None, None)
    return model


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.random((150, 170), dtype=np.float32)


def _no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


# ------------------------------------------------------------------------------ selection
def test_available_devices_always_end_with_cpu() -> None:
    found = available_devices()
    assert found[-1] == "cpu"
    assert ("cuda" in found) == HAS_CUDA
    assert ("mps" in found) == HAS_MPS


def test_auto_falls_back_to_cpu_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_gpu(monkeypatch)
    for name in (None, "", "auto"):
        assert resolve_device(name) == torch.device("cpu")


def test_auto_prefers_cuda_then_mps(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_gpu(monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
        assert resolve_device("auto").type == "mps"


def test_named_and_torch_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "tpu", "cuda0", "npu:0"])
def test_unknown_device_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "mps"])
def test_unavailable_device_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    _no_gpu(monkeypatch)
    with pytest.raises(ValueError, match="not available"):
        resolve_device(name)


def test_unavailable_device_refused_by_prediction(
    monkeypatch: pytest.MonkeyPatch, tiny_model: UNet, image: np.ndarray
) -> None:
    _no_gpu(monkeypatch)
    with pytest.raises(ValueError, match="not available"):
        predict_tiled(tiny_model, image, device="cuda")


# ------------------------------------------------------------------------------ precision
def test_autocast_dtypes() -> None:
    assert autocast_dtype("fp32") is None
    assert autocast_dtype("bf16") is torch.bfloat16
    assert autocast_dtype("fp16") is torch.float16
    with pytest.raises(ValueError, match="precision"):
        autocast_dtype("int8")


def test_fp16_on_cpu_refused(tiny_model: UNet, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="fp16"):
        predict_tiled(tiny_model, image, device="cpu", precision="fp16")


def test_unknown_precision_refused(tiny_model: UNet, image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="precision"):
        predict_tiled(tiny_model, image, device="cpu", precision="fp8")


def test_inference_context_restores_mode_and_uses_channels_last(tiny_model: UNet) -> None:
    tiny_model.train()
    try:
        with inference_context(tiny_model, torch.device("cpu")) as run:
            assert not tiny_model.training
            assert not torch.is_grad_enabled()
            x = torch.zeros(1, 1, *(tiny_model.valid_input_size(40),) * 2)
            out = run(x)
            assert out.shape[:2] == (1, 3)
            weight = tiny_model.encoder[0][0].weight
            assert weight.is_contiguous(memory_format=torch.channels_last)
        assert tiny_model.training
    finally:
        tiny_model.eval()


def test_cpu_channels_last_equals_nchw_reference(tiny_model: UNet, image: np.ndarray) -> None:
    """The channels-last fast path computes the same a_k(x) as a plain NCHW pass."""
    from napari_unet.unet.tiling import predict_single_tile

    ours = predict_tiled(tiny_model, image, device="cpu").logits
    ref = predict_single_tile(tiny_model.to(memory_format=torch.contiguous_format), image[None])
    np.testing.assert_allclose(ours, ref, atol=1e-5 * max(1.0, np.abs(ref).max()))


# ------------------------------------------------------------------------------ GPUs
def _gpu_checks(device: str, model: UNet, image: np.ndarray, precisions: list[str]) -> None:
    """fp32 on the GPU equals the CPU within TF32-level tolerance; reduced precision
    labels agree with CPU fp32 labels on nearly every pixel."""
    cpu = predict_tiled(model, image, device="cpu")
    gpu = predict_tiled(model, image, device=device)
    scale = max(1.0, float(np.abs(cpu.logits).max()))
    np.testing.assert_allclose(gpu.logits, cpu.logits, atol=5e-3 * scale)
    assert (gpu.labels == cpu.labels).mean() >= 0.999
    for precision in precisions:
        low = predict_tiled(model, image, device=device, precision=precision)
        assert low.logits.dtype == np.float32
        assert np.isfinite(low.logits).all()
        np.testing.assert_allclose(low.probabilities, cpu.probabilities, atol=0.1)
        assert (low.labels == cpu.labels).mean() >= 0.99


def _train_few_steps(device: str) -> UNet:
    rng = np.random.default_rng(0)
    img = rng.random((96, 96), dtype=np.float32)
    labels = np.where(img > 0.5, 2, 1).astype(np.uint8)
    sample = prepare_sample(img, labels)
    torch.manual_seed(0)
    model = UNet(depth=2, base_channels=4, n_classes=2, batch_norm=True, dropout=0.0)
    losses = fit(model, [sample], TrainConfig(steps=3, tile_size=32, device=device))
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert next(model.parameters()).device.type == torch.device(device).type
    return model


@needs_cuda
def test_cuda_prediction_matches_cpu(tiny_model: UNet, image: np.ndarray) -> None:
    _gpu_checks("cuda", tiny_model, image, ["fp16", "bf16"])


@needs_cuda
def test_cuda_inference_uses_pinned_memory(
    monkeypatch: pytest.MonkeyPatch, tiny_model: UNet, image: np.ndarray
) -> None:
    calls = []
    original = torch.Tensor.pin_memory

    def pin(self: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        calls.append(self.shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "pin_memory", pin)
    predict_tiled(tiny_model, image, device="cuda")
    assert calls, "host tiles were not pinned before the copy to the GPU"


@needs_cuda
def test_cuda_training_runs_on_the_gpu() -> None:
    model = _train_few_steps("cuda")
    pred = predict_tiled(model, np.zeros((64, 64), np.float32), device="cuda")
    assert pred.labels.shape == (64, 64)


@needs_mps
def test_mps_prediction_matches_cpu(tiny_model: UNet, image: np.ndarray) -> None:
    _gpu_checks("mps", tiny_model, image, ["fp16"])


@needs_mps
def test_mps_training_runs_on_the_gpu() -> None:
    _train_few_steps("mps")


def test_module_exposes_precisions() -> None:
    assert devices.PRECISIONS == ("fp32", "bf16", "fp16")


def test_precision_auto_follows_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert not native_bf16(cpu) and resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert native_bf16(cpu) and resolve_precision("auto", cpu) == "bf16"
    assert resolve_precision("fp32", cpu) == "fp32"
    assert not native_bf16(torch.device("mps"))
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("half", cpu)


def test_training_memory_format_by_width() -> None:
    cpu = torch.device("cpu")
    assert training_memory_format(UNet(depth=2, base_channels=8), cpu) == torch.contiguous_format
    assert training_memory_format(UNet(depth=2, base_channels=16), cpu) == torch.channels_last
    assert training_memory_format(UNet(depth=2, base_channels=8), torch.device("cuda")) == (
        torch.channels_last
    )
