"""The README's worked example of one pixel: every number it prints, recomputed here from
the bundled model and sample by the paper's formulas (torch.nn.functional for the softmax,
eq. 2 by hand for the border term), not taken from the inspector."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from .conftest import bundled_nuclei

README = Path(__file__).resolve().parents[1] / "README.md"


def example_rows() -> dict[str, str]:
    text = README.read_text()
    block = text.split("<!-- worked-example")[1].split("<!-- /worked-example -->")[0]
    rows = [line.split("|")[1:3] for line in block.splitlines() if line.startswith("| ")]
    return {name.strip(): value.strip() for name, value in rows}


def test_the_readme_pixel_is_recomputed_from_the_paper() -> None:
    from napari_unet import predict_tiled
    from napari_unet.pretrained import load_pretrained

    rows = example_rows()
    position = tuple(int(v) for v in re.findall(r"\d+", rows["symbol"]))
    assert len(position) == 2, rows["symbol"]
    row, col = position
    model = load_pretrained("nuclei")
    sample = bundled_nuclei()
    a = predict_tiled(model, sample["image"]).logits[:, row, col].astype(np.float64)
    p = F.softmax(torch.from_numpy(a), dim=0).numpy()
    assert rows["a_1(x), a_2(x) (background, nucleus)"] == f"{a[0]:.4g}, {a[1]:.4g}"
    assert rows["S = exp(a_1(x)) + exp(a_2(x))"] == f"{np.exp(a).sum():.5g}"
    assert rows["p_1(x) = exp(a_1(x)) / S"] == f"{p[0]:.4f}"
    assert rows["p_2(x) = exp(a_2(x)) / S"].startswith(f"{p[1]:.4f}: the segmentation says")
    assert p[1] > p[0]

    cells = sample["instances"]
    assert cells[row, col] == 0 and rows["l(x)"].startswith("1 (background")
    recipe = model.record.weight_map
    assert (recipe.w0, recipe.sigma, recipe.class_balance) == (5.0, 3.0, False)
    rr, cc = np.indices(cells.shape)
    dist = np.hypot(rr - row, cc - col)
    d1, d2 = sorted(dist[cells == i].min() for i in np.unique(cells) if i)[:2]
    border = recipe.w0 * math.exp(-((d1 + d2) ** 2) / (2 * recipe.sigma**2))
    w = 1.0 + border
    assert rows["w(x) = w_c(x) + w0 exp(-(d1 + d2)^2 / 2 sigma^2)"] == (
        f"1 + {border:.4g} = {w:.4g}"
    )
    loss = -w * math.log(p[0])
    assert rows["loss(x) = -w(x) log p_l(x)(x)"] == (f"-{w:.4g} x log({p[0]:.4g}) = {loss:.4g}")


def test_the_readme_receptive_field_is_the_architectures() -> None:
    from napari_unet.pretrained import load_pretrained
    from napari_unet.unet.receptive_field import receptive_field

    text = README.read_text()
    match = re.search(
        r"receptive field\s+of x is (\d+) x (\d+) pixels \(rows (-?\d+)\.\.(\d+), mirrored above "
        r"the top border, columns (\d+)\.\.(\d+)\)",
        text,
    )
    assert match, "the README's receptive-field sentence changed"
    h, w, r0, r1, c0, c1 = (int(v) for v in match.groups())
    field = receptive_field(load_pretrained("nuclei"), (43, 464))
    assert field.rows == (r0, r1 + 1) and field.cols == (c0, c1 + 1)
    assert field.shape == (h, w)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
