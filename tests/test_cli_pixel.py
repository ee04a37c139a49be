"""``napari-unet pixel``: the numbers behind one pixel on the command line, checked
against torch.nn.functional and eq. 1 / 2 computed here; bad input fails with one line
and touches no file (tests/test_bad_inputs_cli.py's rules)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile
import torch
import torch.nn.functional as F

from napari_unet import predict_tiled
from napari_unet.cli import main

from .test_bad_inputs_cli import fails, work  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def pixel_args(folder, *extra) -> list:
    return ["pixel", folder / "img.tif", "--model", folder / "model.pt", *extra]


def run_json(capsys, argv) -> dict:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_numbers_are_the_papers(work, capsys) -> None:  # noqa: F811
    from napari_unet import load_model

    model = load_model(work / "model.pt")
    image = tifffile.imread(work / "img.tif")
    labels = tifffile.imread(work / "lab.tif")
    row, col = 5, 10  # annotated as class 1
    assert labels[row, col] == 1
    out = run_json(
        capsys, pixel_args(work, "--at", f"{row},{col}", "--labels", work / "lab.tif", "--json")
    )
    a = predict_tiled(model, image).logits[:, row, col].astype(np.float64)
    p = F.softmax(torch.from_numpy(a), dim=0).numpy()
    np.testing.assert_allclose(out["a_k"], a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["p_k"], p, rtol=1e-5, atol=1e-7)
    assert out["label"] == 1 and out["w"] == 1.0 and out["border"] is None
    assert out["loss"] == pytest.approx(-math.log(p[0]), rel=1e-5)
    assert out["predicted"] == int(np.argmax(a)) + 1
    rows, cols = out["receptive_field"]["rows"], out["receptive_field"]["cols"]
    assert rows[0] <= row - model.margin and rows[1] > row + model.margin
    assert cols[0] <= col - model.margin and cols[1] > col + model.margin

    # not annotated: no l(x), no loss; the text form says so
    capsys.readouterr()
    assert (
        main([str(a) for a in pixel_args(work, "--at", "20,20", "--labels", work / "lab.tif")])
        == 0
    )
    text = capsys.readouterr().out
    assert "x = (row 20, column 20) in Omega" in text and "not annotated" in text
    assert "receptive field: rows" in text


def test_the_gradient_map_covers_the_receptive_field(work, capsys) -> None:  # noqa: F811
    out = run_json(
        capsys, pixel_args(work, "--at", "24,24", "--json", "--gradient", work / "g.tif")
    )
    grad = tifffile.imread(work / "g.tif")
    (r0, r1), (c0, c1) = out["receptive_field"]["rows"], out["receptive_field"]["cols"]
    assert grad.shape == (r1 - r0, c1 - c0)
    assert grad.max() > 0 and np.isfinite(grad).all()


def test_a_stack_reads_its_label_mode_from_the_whole_file(work, capsys) -> None:  # noqa: F811
    """Instance ids on two planes; plane 0 alone (ids 1, 2) would read as scribbles."""
    image = tifffile.imread(work / "img.tif")
    tifffile.imwrite(work / "stack.tif", np.stack([image, image[::-1]]))
    cells = np.zeros((2, 48, 48), np.uint16)
    cells[0, 5:15, 5:15], cells[0, 5:15, 17:27] = 1, 2
    for i in range(12):
        cells[1, 4 * i : 4 * i + 3, 30:34] = 3 + i
    tifffile.imwrite(work / "cells.tif", cells)
    argv = ["pixel", work / "stack.tif", "--model", work / "model.pt", "--plane", "0"]
    argv += ["--at", "10,16", "--labels", work / "cells.tif", "--json"]
    out = run_json(capsys, argv)
    assert out["label"] == 1 and out["border"] is None  # background of an instance image
    out = run_json(capsys, [*argv, "--weight-map", "--w0", "10", "--sigma", "5"])
    d1, d2 = 1.0, 2.0  # (10, 16): column 17 starts cell 2, column 14 ends cell 1
    assert out["border"] == pytest.approx(10 * math.exp(-((d1 + d2) ** 2) / 50), rel=1e-5)


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        (["--at", "48,0"], "outside the 48 x 48 plane"),
        (["--at", "3,3", "--plane", "2"], "does not exist"),
        (["--at", "3,3", "--labels", "wrong.tif"], "do not match"),
        (["--at", "3,3", "--sigma", "0", "--weight-map"], "sigma must be > 0"),
        (["--at", "3,3", "--gradient", "img.tif"], "refusing to write over an input"),
        (["--at", "3,3", "--gradient", "g.png"], "as .tif"),
    ],
)
def test_bad_input_fails_with_one_line(work, capsys, extra, phrase) -> None:  # noqa: F811
    tifffile.imwrite(work / "wrong.tif", np.zeros((20, 20), np.uint8))
    extra = [str(work / e) if e.endswith((".tif", ".png")) else e for e in extra]
    fails(capsys, work, pixel_args(work, *extra), phrase)


def test_export_writes_what_the_widget_writes(work, capsys) -> None:  # noqa: F811
    from napari_unet import load_model

    out = work / "ts.pt"
    assert main(["export", "--model", str(work / "model.pt"), "--torchscript", str(out)]) == 0
    scripted = torch.jit.load(str(out))
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(scripted(x), load_model(work / "model.pt").eval()(x), atol=1e-5)
    argv = ["export", "--model", work / "model.pt", "--torchscript", out]
    fails(capsys, work, argv, "exists: choose another name")
    fails(capsys, work, [*argv[:3], "--torchscript", work / "img.tif", "--overwrite"], ".pt file")
    fails(capsys, work, [*argv[:3], "--bioimageio", work / "p.zip"], "needs a description")
