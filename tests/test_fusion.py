"""Inference copies: batch norm folded, conv + ReLU fused; the same function as the model."""

from __future__ import annotations

import platform

import pytest
import torch
import torch.nn.functional as F

from napari_unet import UNet
from napari_unet.runtime.fusion import (
    ConvReLU,
    fold_batch_norm,
    fuse_conv_relu,
    fused_conv_relu_available,
    inference_copy,
)


def trained_like(model: UNet) -> UNet:
    """Give batch-norm statistics and affine parameters non-trivial values, as after training."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_batch_norm_folding_is_exact_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = trained_like(UNet(depth=2, base_channels=4, batch_norm=True))
    folded = fold_batch_norm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x = torch.randn(1, 1, model.min_input_size + 16, model.min_input_size)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), atol=1e-4, rtol=1e-4)
    assert fold_batch_norm(UNet(depth=1, base_channels=2)) is not None


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64")
    or not torch.backends.mkldnn.is_available(),
    reason="the fused oneDNN path is checked on x86-64 builds with oneDNN",
)
def test_the_fused_path_exists_on_x86_builds_with_onednn():
    # if a torch upgrade drops or changes the op, this fails instead of silently slowing down
    assert fused_conv_relu_available()


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("channels_last", [True, False])
def test_inference_copy_is_the_same_function_and_leaves_the_model_alone(batch_norm, channels_last):
    torch.manual_seed(1)
    model = trained_like(UNet(depth=2, base_channels=8, batch_norm=batch_norm, dropout=0.0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    net = inference_copy(model)
    n_convs = sum(type(m) is torch.nn.Conv2d for m in model.modules()) - 1  # minus the 1x1 head
    assert sum(isinstance(m, ConvReLU) for m in net.modules()) == n_convs
    assert not any(isinstance(m, ConvReLU) for m in model.modules())
    assert not any(isinstance(m, torch.nn.ReLU) for m in net.modules())
    x = torch.randn(2, 1, model.min_input_size + 32, model.min_input_size + 16)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    with torch.inference_mode():
        ours = net.to(memory_format=fmt)(x.contiguous(memory_format=fmt))
        reference = model(x)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=1e-4)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_conv_relu_is_relu_of_the_convolution_with_and_without_the_fused_op():
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(3, 5, 3, padding=1)
    fused = fuse_conv_relu(torch.nn.Sequential(conv, torch.nn.ReLU()))[0]
    assert isinstance(fused, ConvReLU)
    x = torch.randn(2, 3, 11, 13)
    reference = F.relu(F.conv2d(x, conv.weight, conv.bias, padding=1))
    with torch.no_grad():  # the fused op where available
        torch.testing.assert_close(fused(x), reference, atol=1e-5, rtol=1e-5)
    # with autograd on, the eager path runs and gradients flow
    y = fused(x.requires_grad_())
    torch.testing.assert_close(y, reference, atol=1e-5, rtol=1e-5)
    y.sum().backward()
    assert x.grad is not None and fused.weight.grad is not None


def test_the_fused_op_is_what_runs_in_fp32_inference_and_autocast_falls_back():
    if not fused_conv_relu_available():
        pytest.skip("no fused oneDNN conv + ReLU in this torch build")
    conv = fuse_conv_relu(torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU()))
    x = torch.randn(1, 1, 16, 16)

    def ops(**autocast) -> set[str]:
        with torch.profiler.profile() as prof, torch.inference_mode():
            if autocast:
                with torch.autocast("cpu", **autocast):
                    out = conv(x)
                assert out.dtype == autocast["dtype"]
            else:
                conv(x)
        return {e.name for e in prof.events()}

    assert "mkldnn::_convolution_pointwise" in ops()
    bf16_ops = ops(dtype=torch.bfloat16)
    assert "mkldnn::_convolution_pointwise" not in bf16_ops
    assert "aten::relu" in bf16_ops
