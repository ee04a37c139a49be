import math

import pytest
import torch
import torch.nn.functional as F

from napari_unet import UNet


def test_paper_sizes_572_to_388():
    model = UNet()  # the paper's defaults: depth 4, 64 channels, valid convolutions
    assert model.output_size(572) == 388
    assert model.margin == (572 - 388) // 2
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 1, 572, 572))
    assert out.shape == (1, 2, 388, 388)


def test_paper_channel_progression():
    model = UNet()
    enc = [level[0].out_channels for level in model.encoder]
    assert enc == [64, 128, 256, 512]
    assert model.bottleneck[0].out_channels == 1024
    assert [up.upconv.out_channels for up in model.decoder] == [512, 256, 128, 64]
    assert model.head.kernel_size == (1, 1)


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_valid_sizes_agree_with_forward(depth):
    model = UNet(depth=depth, base_channels=2).eval()
    sizes = [s for s in range(1, 260) if model.is_valid_input_size(s)]
    assert sizes, "some input size must be valid"
    assert model.valid_input_size(1) == sizes[0]
    # consecutive valid sizes are 2**depth apart, output = input - 2 * margin
    assert all(b - a == 2**depth for a, b in zip(sizes, sizes[1:], strict=False))
    for s in sizes[:3]:
        with torch.no_grad():
            out = model(torch.zeros(1, 1, s, s))
        assert out.shape[-1] == model.output_size(s) == s - 2 * model.margin
    bad = sizes[0] + 1
    with pytest.raises(ValueError, match="not valid"):
        model.output_size(bad)
    with pytest.raises(ValueError, match="not valid"):
        model(torch.zeros(1, 1, bad, bad))


def test_same_padding_keeps_size():
    model = UNet(depth=3, base_channels=4, padding="same").eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 64, 48)).shape == (1, 2, 64, 48)
    assert model.margin == 0


def test_he_initialisation_std():
    torch.manual_seed(0)
    model = UNet(depth=2, base_channels=32)
    conv = model.encoder[1][2]  # 3x3 conv with 64 input channels
    fan_in = conv.in_channels * 9
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / fan_in), rel=0.05)
    assert torch.all(conv.bias == 0)


def test_skip_crop_is_centred():
    from napari_unet.unet.model import center_crop

    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    assert torch.equal(center_crop(x, (2, 2)), x[..., 2:4, 2:4])


def test_replace_head_changes_classes_keeps_body():
    model = UNet(depth=2, base_channels=4, n_classes=2)
    body = model.encoder[0][0].weight.clone()
    model.replace_head(5)
    assert model.n_classes == 5 and model.config()["n_classes"] == 5
    assert torch.equal(model.encoder[0][0].weight, body)
    with torch.no_grad():
        s = model.min_input_size
        assert model.eval()(torch.zeros(1, 1, s, s)).shape[1] == 5


def test_config_rebuilds_same_network():
    model = UNet(in_channels=3, n_classes=4, depth=2, base_channels=6, batch_norm=True)
    clone = UNet(**model.config())
    clone.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, model.min_input_size, model.min_input_size)
    model.eval(), clone.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), clone(x))


def test_forward_matches_functional_reference():
    """A depth-1 U-Net computed by hand with torch.nn.functional."""
    torch.manual_seed(1)
    m = UNet(depth=1, base_channels=2, n_classes=3, dropout=0).eval()
    x = torch.randn(1, 1, 20, 20)
    e0 = F.relu(
        F.conv2d(
            F.relu(F.conv2d(x, m.encoder[0][0].weight, m.encoder[0][0].bias)),
            m.encoder[0][2].weight,
            m.encoder[0][2].bias,
        )
    )
    b = F.max_pool2d(e0, 2)
    b = F.relu(F.conv2d(b, m.bottleneck[0].weight, m.bottleneck[0].bias))
    b = F.relu(F.conv2d(b, m.bottleneck[2].weight, m.bottleneck[2].bias))
    up = m.decoder[0]
    u = F.conv_transpose2d(b, up.upconv.weight, up.upconv.bias, stride=2)
    off = (e0.shape[-1] - u.shape[-1]) // 2
    cat = torch.cat([e0[..., off : off + u.shape[-2], off : off + u.shape[-1]], u], 1)
    d = F.relu(F.conv2d(cat, up.conv[0].weight, up.conv[0].bias))
    d = F.relu(F.conv2d(d, up.conv[2].weight, up.conv[2].bias))
    ref = F.conv2d(d, m.head.weight, m.head.bias)
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref)


@pytest.mark.parametrize(
    "kwargs", [{"padding": "full"}, {"depth": 0}, {"dropout": 1.5}, {"n_classes": 0}]
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        UNet(**kwargs)
