"""The exact receptive field of predict_tiled's output pixels (unet/receptive_field.py)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from napari_unet import UNet, predict_tiled
from napari_unet.unet.data import normalize
from napari_unet.unet.errors import InputError
from napari_unet.unet.receptive_field import (
    ReceptiveField,
    input_gradient,
    phase_extents,
    receptive_field,
    receptive_field_1d,
)
from napari_unet.unet.tiling import context, mirror_index

from .conftest import bundled_nuclei

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def structural_copy(model: UNet) -> UNet:
    """A linear, positive copy: conv weights 1, biases 0, no ReLU, average pooling, float64.

    Its input gradient is nonzero exactly where some path connects input and output."""
    net = copy.deepcopy(model).double().eval()
    for module in list(net.modules()):
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.ones_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        for child_name, child in module.named_children():
            if isinstance(child, nn.ReLU):
                setattr(module, child_name, nn.Identity())
    net.pool = nn.AvgPool2d(2, 2)
    return net


def structural_rows(model: UNet, rows: range) -> dict[int, set[int]]:
    """{image row x: image rows with a nonzero input gradient of a(x)} for a grid-aligned
    tile, image row 0 on the pooling grid as in predict_tiled."""
    net = structural_copy(model)
    halo = context(model)
    last = rows[-1] + 1
    if model.padding == "valid":
        offset = model.margin  # network output row j is image row -halo + margin + j
        n = model.input_size_for_output(last + halo - model.margin)
        width = model.min_input_size
    else:  # enough context that zero padding at the tile borders never matters
        offset, mult = 0, model.size_multiple
        n = mult * -(-(last + 2 * halo) // mult)
        width = mult
    x = torch.zeros(1, 1, n, width, dtype=torch.float64, requires_grad=True)
    out = net(x)
    result = {}
    for row in rows:
        (grad,) = torch.autograd.grad(out[0, 0, row + halo - offset, 0], x, retain_graph=True)
        nonzero = np.flatnonzero(grad[0, 0].abs().sum(1).numpy() > 0)
        result[row] = set((nonzero - halo).tolist())
    return result


CASES = [(d, "valid") for d in (1, 2, 3, 4)] + [(d, "same") for d in (1, 2, 3)]


@pytest.mark.parametrize(("depth", "padding"), CASES)
def test_field_equals_structural_dependence_for_every_phase(depth, padding):
    model = UNet(depth=depth, padding=padding, base_channels=1, n_classes=1, dropout=0.0)
    mult = 2**depth
    rows = range(mult - 1, 3 * mult + 1)  # every phase, and a grid step either side
    for row, support in structural_rows(model, rows).items():
        start, stop = receptive_field_1d(model, row)
        assert support == set(range(start, stop)), (row, start, stop, min(support))


def test_paper_net_fields_contain_185_window_and_are_188_or_204_wide():
    # The deepest path decides (m = 2**4 = 16, margin = 6m - 4 = 92, p = (x - 92) mod 16):
    # going back, the up-convolutions floor (x + 4(m - 1) - ...) / 2 per level, the
    # poolings give back whole 2x2 cells, so the first row is x - 92 - p (the cell start)
    # and the last x + 7m - 5 - ((p - 4) mod m) = x + 107 - ((p - 4) mod 16). Width:
    # 13m - 4 = 204 for p >= 4 (12 phases), 12m - 4 = 188 for p < 4 (4 phases); both
    # ends always at least 92 from x, at most 107. The structural test above confirms.
    model = UNet(depth=4, padding="valid", base_channels=1)
    assert 2 * model.margin + 1 == 185
    widths = []
    for x in range(1000, 1016):
        start, stop = receptive_field_1d(model, x)
        assert start <= x - 92 and stop >= x + 93
        assert start >= x - 107 and stop <= x + 108
        widths.append(stop - start)
    assert sorted(set(widths)) == [188, 204]
    assert widths.count(188) == 4
    extents = phase_extents(model)
    assert len(extents) == 16 and extents[12] == (-92, 96) and extents[0] == (-96, 108)


def test_field_is_periodic_and_separable():
    model = UNet(depth=2, base_channels=1)
    for x in range(-9, 9):
        a, b = receptive_field_1d(model, x)
        assert receptive_field_1d(model, x + 4 * 7) == (a + 28, b + 28)
    rf = receptive_field(model, (3, -5))
    assert rf.rows == receptive_field_1d(model, 3) and rf.cols == receptive_field_1d(model, -5)


def test_receptive_field_rectangle():
    rf = ReceptiveField(rows=(-3, 7), cols=(2, 12))
    assert rf.shape == (10, 10) and rf.start == (-3, 2)
    assert rf.clipped((5, 8)) == ReceptiveField((0, 5), (2, 8))
    assert rf.clipped((5, 1)).shape == (5, 0)
    corners = rf.corners()
    assert corners.shape == (4, 2)
    np.testing.assert_array_equal(corners.min(0), [-3.5, 1.5])
    np.testing.assert_array_equal(corners.max(0), [6.5, 11.5])


# ------------------------------------------------------------------ the real pipeline
def affects(rf: ReceptiveField, pixel: tuple[int, int], shape: tuple[int, int]) -> bool:
    """Whether some mirrored copy of image ``pixel`` lies in the field."""
    rows = mirror_index(np.arange(*rf.rows), shape[0])
    cols = mirror_index(np.arange(*rf.cols), shape[1])
    return pixel[0] in rows and pixel[1] in cols


def edge_pixels(rf: ReceptiveField, x: tuple[int, int]) -> list[tuple[int, int]]:
    """Just inside and just outside each of the four edges, level with x."""
    (r0, r1), (c0, c1) = rf.rows, rf.cols
    rows = [(r, x[1]) for r in (r0, r1 - 1, r0 - 1, r1)]
    return rows + [(x[0], c) for c in (c0, c1 - 1, c0 - 1, c1)]


def logits_at(model, planes: list[np.ndarray], x: tuple[int, int], k: int) -> np.ndarray:
    """a_k(x) of each (H, W) plane, all in one predict_tiled call (several small tiles:
    the field must not depend on where the tile borders fall)."""
    pred = predict_tiled(
        model, np.stack(planes), tile_size=64, normalize_input=False, return_probabilities=False
    )
    return pred.logits[k][:, x[0], x[1]]


def split_edges(rf, x, shape):
    """The edge pixels mirrored into the image: (inside the field, outside it)."""
    inside, outside = [], []
    for edge in edge_pixels(rf, x):
        pixel = (int(mirror_index(np.array(edge[0]), shape[0])),
                 int(mirror_index(np.array(edge[1]), shape[1])))  # fmt: skip
        (inside if affects(rf, pixel, shape) else outside).append(pixel)
    return inside, outside


def perturbed(image: np.ndarray, pixels: list[tuple[int, int]], amount: float) -> np.ndarray:
    out = image.copy()
    for pixel in pixels:
        out[pixel] += amount
    return out


@pytest.fixture(scope="module")
def random_model():
    torch.manual_seed(3)
    model = UNet(depth=3, base_channels=8, batch_norm=False, dropout=0.0).eval()
    image = np.random.default_rng(1).normal(size=(128, 136)).astype(np.float32)
    return model, image


@pytest.mark.parametrize(("x", "n_outside"), [((64, 70), 4), ((3, 131), 2)])
def test_perturbation_through_predict_tiled(random_model, x, n_outside):
    # each edge pixel just inside the field by +-500 (the larger change counts: a ReLU may
    # hide one sign), all those just outside at once; near the border (3, 131) some
    # "outside" pixels are mirrored copies of pixels inside the field and count as inside
    model, image = random_model
    rf = receptive_field(model, x)
    inside, outside = split_edges(rf, x, image.shape)
    assert len(outside) == n_outside and len(inside) == 8 - n_outside
    planes = [image, perturbed(image, outside, 500.0)]
    planes += [perturbed(image, [p], a) for p in inside for a in (500.0, -500.0)]
    a = logits_at(model, planes, x, 1)
    assert abs(a[1] - a[0]) < 1e-5
    change = np.abs(a[2:] - a[0]).reshape(-1, 2).max(1)
    assert np.all(change > 1e-3), change


def test_bundled_model_field():
    from napari_unet.pretrained import load_pretrained

    model = load_pretrained("nuclei")  # depth 3, "same", batch norm
    image = bundled_nuclei()["image"]
    plane = normalize(image[None], model.record.normalization_dict())[:, 200:304, 210:314]
    x = (52, 51)
    grad, rf = input_gradient(model, plane, x, 1)
    assert rf.clipped(plane.shape[1:]) == rf  # the field lies in the crop
    for edge in (grad[0], grad[-1], grad[:, 0], grad[:, -1]):
        assert edge.max() > 0
    inside, outside = split_edges(rf, x, plane.shape[1:])
    assert len(inside) == len(outside) == 4
    planes = [plane[0], perturbed(plane[0], outside, 50.0), perturbed(plane[0], inside, 50.0)]
    a = logits_at(model, planes, x, 1)
    assert abs(a[1] - a[0]) < 1e-5 and abs(a[2] - a[0]) > 1e-3


# ------------------------------------------------------------------ input gradient
def direct_gradient(model, plane, x, k):
    """|d a_k(x) / d input| on the reflect-padded plane (image row 0 on the grid), with
    the padded image's origin."""
    pad = context(model)
    h, w = plane.shape[1:]
    mult = model.size_multiple
    n_h, n_w = (mult * -(-(n + 2 * pad) // mult) for n in (h, w))
    if model.padding == "valid":
        n_h, n_w = model.valid_input_size(n_h), model.valid_input_size(n_w)
    padded = np.pad(plane, ((0, 0), (pad, n_h - h - pad), (pad, n_w - w - pad)), "reflect")
    t = torch.from_numpy(padded)[None].requires_grad_(True)
    out = model(t)[0, k, x[0] + pad - model.margin, x[1] + pad - model.margin]
    (grad,) = torch.autograd.grad(out, t)
    return grad[0].abs().sum(0).numpy(), pad


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_input_gradient_matches_autograd_on_padded_image(padding):
    torch.manual_seed(5)
    model = UNet(in_channels=2, n_classes=3, depth=2, base_channels=4, padding=padding)
    model.eval()
    plane = np.random.default_rng(2).normal(size=(2, 60, 50)).astype(np.float32)
    x, k = (4, 45), 2
    model.train()
    grad, rf = input_gradient(model, plane, x, k)
    assert model.training and all(p.grad is None and p.requires_grad for p in model.parameters())
    assert grad.dtype == np.float32 and grad.shape == rf.shape
    assert rf == receptive_field(model, x) and rf.rows[0] < 0 and rf.cols[1] > 50
    model.eval()
    full, pad = direct_gradient(model, plane, x, k)
    (r0, r1), (c0, c1) = rf.rows, rf.cols
    np.testing.assert_allclose(grad, full[r0 + pad : r1 + pad, c0 + pad : c1 + pad], atol=1e-6)
    inside = np.zeros(full.shape, bool)
    inside[r0 + pad : r1 + pad, c0 + pad : c1 + pad] = True
    assert np.all(full[~inside] == 0)
    for edge in (grad[0], grad[-1], grad[:, 0], grad[:, -1]):
        assert edge.max() > 0


def test_input_gradient_rejects_bad_input():
    model = UNet(depth=1, base_channels=2, n_classes=2)
    plane = np.zeros((1, 20, 30), np.float32)
    for position in [(20, 0), (0, 30), (-1, 3), (1.5, 2), (1, 2, 3), "ab"]:
        with pytest.raises(InputError, match="position"):
            input_gradient(model, plane, position, 0)
    for k in (-1, 2, 0.5, True):
        with pytest.raises(InputError, match="class index"):
            input_gradient(model, plane, (3, 4), k)
    with pytest.raises(InputError, match="channels"):
        input_gradient(model, np.zeros((20, 30), np.float32), (3, 4), 0)
    with pytest.raises(InputError, match="channels"):
        input_gradient(model, np.zeros((2, 20, 30), np.float32), (3, 4), 0)
