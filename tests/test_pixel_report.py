"""The pixel inspector's numbers (unet/pixel_report.py) against torch.nn.functional and
the paper's eq. 1 and 2 evaluated by hand at one pixel."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_unet.unet.data import IGNORE_INDEX, InputError
from napari_unet.unet.pixel_report import PixelTerms, pixel_report
from napari_unet.unet.weight_maps import border_term, class_balance_weights, weight_map


def random_logits(k: int = 3, h: int = 5, w: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 3, (k, h, w)).astype(np.float32)


def test_probabilities_and_loss_equal_torch_at_every_pixel() -> None:
    a = random_logits()
    target = np.random.default_rng(1).integers(-1, 3, a.shape[1:])
    target[target < 0] = IGNORE_INDEX
    weight = np.random.default_rng(2).uniform(0.5, 4, a.shape[1:]).astype(np.float32)
    p = F.softmax(torch.from_numpy(a).double(), dim=0).numpy()
    nll = F.cross_entropy(
        torch.from_numpy(a)[None].double(),
        torch.from_numpy(target)[None],
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )[0].numpy()
    terms = PixelTerms(target, weight)
    for row in range(a.shape[1]):
        for col in range(a.shape[2]):
            report = pixel_report(a, (row, col), terms=terms)
            np.testing.assert_allclose(report.probabilities, p[:, row, col], rtol=1e-12)
            np.testing.assert_allclose(report.logits, a[:, row, col])
            if target[row, col] == IGNORE_INDEX:
                assert report.label is None and report.loss is None
            else:
                assert report.label == target[row, col] + 1
                expected = weight[row, col] * nll[row, col]
                assert report.loss == pytest.approx(expected, rel=1e-9)


def test_the_text_writes_the_softmax_and_the_loss_out_with_the_numbers() -> None:
    a = np.zeros((2, 1, 1), np.float32)
    a[:, 0, 0] = (1.0, 3.0)
    terms = PixelTerms(np.array([[1]]), np.array([[2.5]], np.float32), np.array([[1.5]]))
    report = pixel_report(a, (0, 0), plane=(4,), terms=terms, class_names=("bg", "cell"))
    text = "\n".join(report.lines(("z",)))
    s = math.exp(1) + math.exp(3)
    p2 = math.exp(3) / s
    assert "x = (row 0, column 0) in Omega, z = 4" in text
    assert "a_1 = 1, a_2 = 3" in text
    assert f"S = exp(1) + exp(3) = {s:.5g}" in text
    assert f"p_2 = exp(3) / {s:.5g} = {p2:.4f} (cell)" in text
    assert "l(x) = 2 (cell)" in text
    assert "= 1 + 1.5 = 2.5" in text  # w_c + border = w
    assert f"= {-2.5 * math.log(p2):.4g}" in text
    assert "predicted: class 2 (cell)" in text
    assert report.class_weight == pytest.approx(1.0)


def test_not_annotated_and_no_border_term_say_so() -> None:
    a = random_logits(2, 2, 2)
    target = np.full((2, 2), IGNORE_INDEX)
    target[0, 0] = 0
    terms = PixelTerms(target, np.ones((2, 2), np.float32))
    assert "not annotated" in "\n".join(pixel_report(a, (1, 1), terms=terms).lines())
    text = "\n".join(pixel_report(a, (0, 0), terms=terms).lines())
    assert "w(x) = w_c(x) = 1 (no border term)" in text
    assert "class 1" in text  # default names


@pytest.mark.parametrize("position", [(-1, 0), (0, 6), (5, 0)])
def test_a_pixel_outside_the_plane_is_refused(position) -> None:
    with pytest.raises(InputError, match="outside"):
        pixel_report(random_logits(), position)


def test_a_label_the_model_does_not_have_is_refused() -> None:
    terms = PixelTerms(np.full((5, 6), 7), np.ones((5, 6), np.float32))
    with pytest.raises(InputError, match="not one of the model's 3 classes"):
        pixel_report(random_logits(), (0, 0), terms=terms)


def test_border_term_by_hand_between_two_cells() -> None:
    """Two single-pixel cells 6 px apart on one row: at the pixel between them, 2 px from
    one and 4 px from the other, the term is w0 exp(-(2 + 4)^2 / (2 sigma^2))."""
    cells = np.zeros((9, 15), np.uint8)
    cells[4, 3] = 1
    cells[4, 9] = 2
    term = border_term(cells, w0=10.0, sigma=5.0)
    assert term[4, 5] == pytest.approx(10 * math.exp(-36 / 50), rel=1e-6)
    assert term[4, 3] == 0 and term[4, 9] == 0  # only on background
    # eq. 2 is the sum of its two terms
    np.testing.assert_allclose(
        weight_map(cells, 10.0, 5.0, class_balance=True),
        class_balance_weights((cells > 0).astype(np.int8)) + term,
        rtol=1e-6,
    )
    assert not border_term(cells, w0=0.0).any()
    assert not border_term(cells[:, :6]).any()  # one cell: no second-nearest


def test_huge_activations_write_s_in_log_form() -> None:
    a = np.zeros((2, 1, 1), np.float32)
    a[:, 0, 0] = (1000.0, 998.0)
    report = pixel_report(a, (0, 0))
    text = "\n".join(report.lines())
    log_s = 1000 + math.log(1 + math.exp(-2))
    assert f"S = exp(1000) + exp(998) = exp({log_s:.5g})" in text
    np.testing.assert_allclose(
        report.probabilities, [1 / (1 + math.exp(-2)), 1 / (1 + math.exp(2))]
    )
    assert "l(x): no annotation given for this plane" in text
