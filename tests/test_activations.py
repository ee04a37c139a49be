import numpy as np
import pytest
import torch

from napari_unet import UNet, capture_activations, predict_tiled


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return UNet(depth=2, base_channels=4, n_classes=2).eval()


def test_all_levels_captured_with_channel_counts(model):
    acts = capture_activations(model, np.random.default_rng(0).random((30, 34)))
    assert list(acts) == model.level_names()
    assert acts["encoder.0"].channels.shape[0] == 4
    assert acts["encoder.1"].channels.shape[0] == 8
    assert acts["bottleneck"].channels.shape[0] == 16
    assert acts["bottleneck"].scale == 4 and acts["encoder.1"].scale == 2
    assert acts["decoder.1"].scale == 1


def test_head_activations_are_the_prediction(model):
    image = np.random.default_rng(1).random((30, 34)).astype(np.float32)
    head = capture_activations(model, image, ["head"])["head"]
    assert head.translate == (0.0, 0.0)
    logits = predict_tiled(model, image).logits
    np.testing.assert_allclose(head.channels[:, :30, :34], logits, atol=1e-4)


def test_overlay_geometry_centres_levels(model):
    """Level pixel j sits at translate + j * scale: the bottleneck's centre is the input's."""
    acts = capture_activations(model, np.zeros((40, 40)))
    for a in acts.values():
        h = a.channels.shape[-2]
        centre = a.translate[0] + (h - 1) / 2 * a.scale
        first = acts["head"].translate[0]
        head_h = acts["head"].channels.shape[-2]
        assert centre == pytest.approx(first + (head_h - 1) / 2)


def test_unknown_level_and_big_image(model):
    with pytest.raises(ValueError, match="unknown level"):
        capture_activations(model, np.zeros((10, 10)), ["nope"])
    with pytest.raises(ValueError, match="crop"):
        capture_activations(model, np.zeros((20, 2000)))
