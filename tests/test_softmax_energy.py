import math

import pytest
import torch
import torch.nn.functional as F

from napari_unet import energy, pixel_loss, pixel_softmax
from napari_unet.unet.data import IGNORE_INDEX


def test_softmax_hand_worked_2x2():
    # K = 2 channels over a 2x2 image
    a = torch.tensor([[[0.0, 1.0], [2.0, -1.0]], [[0.0, 0.0], [0.0, 1.0]]])
    p = pixel_softmax(a)
    e = math.e
    expected0 = torch.tensor([[0.5, e / (e + 1)], [e**2 / (e**2 + 1), e**-1 / (e**-1 + e)]])
    torch.testing.assert_close(p[0], expected0)
    torch.testing.assert_close(p.sum(0), torch.ones(2, 2))


def test_softmax_channel_axis_only_and_stable():
    logits = torch.randn(3, 4, 5, 6) * 50 + 1000  # huge values must not overflow
    p = pixel_softmax(logits)
    assert torch.isfinite(p).all()
    torch.testing.assert_close(p.sum(1), torch.ones(3, 5, 6))
    torch.testing.assert_close(p, torch.softmax(logits, dim=1))


def test_energy_equals_cross_entropy_without_weights():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7, 9)
    target = torch.randint(0, 4, (2, 7, 9))
    target[0, :3] = -1  # not annotated
    ref = F.cross_entropy(logits, target, ignore_index=-1)
    torch.testing.assert_close(energy(logits, target), ref)


def test_energy_weighted_matches_formula():
    torch.manual_seed(1)
    logits = torch.randn(1, 3, 5, 5)
    target = torch.randint(0, 3, (1, 5, 5))
    target[0, 0] = -1
    weight = torch.rand(1, 5, 5) * 3
    per_pixel = F.cross_entropy(logits, target, ignore_index=-1, reduction="none")
    mask = target != -1
    expected = (per_pixel * weight)[mask].sum() / mask.sum()
    torch.testing.assert_close(energy(logits, target, weight), expected)


def test_unannotated_pixels_contribute_nothing():
    logits = torch.zeros(1, 2, 2, 2, requires_grad=True)
    target = torch.tensor([[[0, -1], [-1, -1]]])
    e = energy(logits, target)
    assert e.item() == pytest.approx(math.log(2))
    e.backward()
    g = logits.grad[0]
    assert torch.all(g[:, 0, 1] == 0) and torch.all(g[:, 1, :] == 0)
    assert torch.any(g[:, 0, 0] != 0)


def test_pixel_loss_map_and_no_annotations():
    logits = torch.randn(1, 2, 3, 3)
    target = torch.full((1, 3, 3), -1)
    assert energy(logits, target).item() == 0.0
    target[0, 1, 1] = 1
    loss = pixel_loss(logits, target)
    expected = -torch.log_softmax(logits, 1)[0, 1, 1, 1]
    torch.testing.assert_close(loss[0, 1, 1], expected)
    assert loss.sum() == loss[0, 1, 1]


def test_energy_shape_errors():
    with pytest.raises(ValueError):
        energy(torch.zeros(2, 3, 3), torch.zeros(2, 3, dtype=torch.long))


def test_weights_on_unannotated_pixels_are_ignored_even_if_not_finite():
    logits = torch.zeros(1, 2, 1, 2)
    target = torch.tensor([[[1, IGNORE_INDEX]]])
    weight = torch.tensor([[[2.0, float("inf")]]])
    loss = pixel_loss(logits, target, weight)
    torch.testing.assert_close(loss, torch.tensor([[[2 * math.log(2), 0.0]]]))
