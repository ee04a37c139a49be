import numpy as np
import pytest
import torch

from napari_unet import UNet, predict_tiled
from napari_unet.unet.data import normalize
from napari_unet.unet.record import Normalization
from napari_unet.unet.tiling import count_tiles, mirror_indices, predict_single_tile


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    model = UNet(depth=3, base_channels=4, n_classes=3).eval()
    model.record.normalization = Normalization("none", None, None)
    return model


def test_mirror_indices_match_numpy_reflect():
    n = 7
    a = np.arange(n)
    for pad in (1, 3, 6):
        ref = np.pad(a, pad, mode="reflect")
        assert np.array_equal(a[mirror_indices(-pad, n + pad, n)], ref)
    assert np.array_equal(mirror_indices(-3, 4, 1), np.zeros(7, int))


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 13), (45, 31), (97, 130)])
def test_tiled_equals_single_tile(small_model, shape):
    rng = np.random.default_rng(sum(shape))
    image = rng.normal(size=shape).astype(np.float32)
    pred = predict_tiled(small_model, image, tile_size=20, batch_size=3)
    ref = predict_single_tile(small_model, image[None])
    np.testing.assert_allclose(pred.logits, ref, atol=1e-4)
    assert pred.logits.shape == (3, *shape) and pred.logits.dtype == np.float32
    np.testing.assert_allclose(pred.probabilities.sum(0), 1, atol=1e-5)
    assert np.array_equal(pred.labels, ref.argmax(0) + 1)
    assert count_tiles(small_model, shape, 20) >= 1


def test_many_tiles_really_used(small_model):
    image = np.random.default_rng(0).normal(size=(100, 100)).astype(np.float32)
    seen = []
    predict_tiled(small_model, image, tile_size=20, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] > 4


def test_probabilities_are_softmax_of_logits(small_model):
    image = np.random.default_rng(1).random((30, 40)).astype(np.float32)
    pred = predict_tiled(small_model, image)
    ref = torch.softmax(torch.from_numpy(pred.logits), dim=0).numpy()
    np.testing.assert_allclose(pred.probabilities, ref, atol=1e-6)


def test_stack_is_predicted_plane_by_plane(small_model):
    stack = np.random.default_rng(2).random((3, 25, 20)).astype(np.float32)
    pred = predict_tiled(small_model, stack, tile_size=20)
    assert pred.logits.shape == (3, 3, 25, 20) and pred.labels.shape == (3, 25, 20)
    for z in range(3):
        single = predict_tiled(small_model, stack[z], tile_size=20)
        np.testing.assert_allclose(pred.logits[:, z], single.logits, atol=1e-6)


def test_rgb_channel_axis():
    torch.manual_seed(0)
    model = UNet(in_channels=3, depth=2, base_channels=4).eval()
    rgb = (np.random.default_rng(3).random((30, 30, 3)) * 255).astype(np.uint8)
    pred = predict_tiled(model, rgb, channel_axis=-1)
    ref = predict_single_tile(model, normalize(np.moveaxis(rgb, -1, 0), None))
    np.testing.assert_allclose(pred.logits, ref, atol=1e-4)
    with pytest.raises(ValueError, match="channel"):
        predict_tiled(model, rgb)  # a grey reading of an RGB image is refused


def test_same_padding_model_predicts_full_size():
    torch.manual_seed(0)
    model = UNet(depth=2, base_channels=4, padding="same").eval()
    image = np.random.default_rng(4).random((37, 50)).astype(np.float32)
    pred = predict_tiled(model, image, tile_size=16)
    assert pred.logits.shape == (2, 37, 50)
    assert np.isfinite(pred.logits).all()


def test_nan_image_refused(small_model):
    image = np.ones((20, 20), np.float32)
    image[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        predict_tiled(small_model, image)


def test_model_training_mode_restored(small_model):
    small_model.train()
    predict_tiled(small_model, np.zeros((10, 10), np.float32))
    assert small_model.training
    small_model.eval()


def test_test_time_augmentation_is_the_mean_over_the_8_views_and_equivariant(small_model):
    rng = np.random.default_rng(3)
    image = rng.normal(size=(23, 30)).astype(np.float32)
    calls = []
    tta = predict_tiled(
        small_model,
        image,
        tile_size=20,
        test_time_augmentation=True,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert calls[-1] == (8 * count_tiles(small_model, image.shape, 20),) * 2
    # independent composition: predict each rotated / flipped image, turn it back, average
    views = []
    for flip in (False, True):
        for k in range(4):
            view = np.rot90(image, k)
            view = np.fliplr(view) if flip else view
            a = predict_tiled(small_model, np.ascontiguousarray(view), tile_size=20).logits
            a = np.flip(a, axis=-1) if flip else a
            views.append(np.rot90(a, -k, axes=(1, 2)))
    np.testing.assert_allclose(tta.logits, np.mean(views, axis=0), atol=1e-5)
    p = np.exp(tta.logits) / np.exp(tta.logits).sum(0)
    np.testing.assert_allclose(tta.probabilities, p, atol=1e-5)
    # so the prediction of a rotated image is the rotated prediction (not true without TTA)
    turned = predict_tiled(
        small_model, np.ascontiguousarray(np.rot90(image)), tile_size=20,
        test_time_augmentation=True,
    )  # fmt: skip
    np.testing.assert_allclose(turned.logits, np.rot90(tta.logits, axes=(1, 2)), atol=1e-5)
    plain = predict_tiled(small_model, np.ascontiguousarray(np.rot90(image)), tile_size=20)
    plain_ref = predict_tiled(small_model, image, tile_size=20)
    assert not np.allclose(plain.logits, np.rot90(plain_ref.logits, axes=(1, 2)), atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.uint8])
def test_a_torch_tensor_predicts_as_its_numpy_twin(small_model, dtype):
    """A PyTorch user's tensor (with grad, any dtype numpy lacks) is read as the array it
    holds, not refused with numpy's internals in the message."""
    torch.manual_seed(1)
    tensor = (torch.rand(23, 31) * 200).to(dtype).requires_grad_(dtype.is_floating_point)
    reference = tensor.detach().float().numpy() if dtype == torch.bfloat16 else None
    twin = reference if reference is not None else tensor.detach().numpy()
    got = predict_tiled(small_model, tensor, tile_size=20)
    want = predict_tiled(small_model, twin, tile_size=20)
    np.testing.assert_array_equal(got.logits, want.logits)


def test_what_is_not_an_image_is_refused_by_name(small_model):
    from napari_unet import InputError

    with pytest.raises(InputError, match="image must be an array, got a list"):
        predict_tiled(small_model, [[1.0, 2.0], [3.0]])
    with pytest.raises(InputError, match="image must be numeric"):
        predict_tiled(small_model, object())
