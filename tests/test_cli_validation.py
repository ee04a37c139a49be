"""``napari-unet train --val-images/--val-labels``: validation during training from the
command line, on crops of the bundled nuclei sample (no ../shared needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_unet import load_model
from napari_unet.cli import main

from .conftest import bundled_nuclei

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CROPS = {"train": (slice(40, 136), slice(200, 320)), "val": (slice(300, 396), slice(100, 220))}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    """train/ and val/ folders of images/ and masks/ (0 = background, 255 = nucleus)."""
    root = tmp_path_factory.mktemp("val")
    nuclei = bundled_nuclei()
    for name, crop in CROPS.items():
        (root / name / "images").mkdir(parents=True)
        (root / name / "masks").mkdir()
        tifffile.imwrite(root / name / "images" / f"{name}.tif", nuclei["image"][crop])
        mask = np.where(nuclei["instances"][crop] > 0, 255, 0).astype(np.uint8)
        tifffile.imwrite(root / name / "masks" / f"{name}.tif", mask)
    return root


def train_args(root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--images", str(root / "train" / "images"),
        "--labels", str(root / "train" / "masks"),
        "--mode", "dense", "--preset", "tiny", "--steps", "3", "--batch-size", "1",
        "--tile-size", "32", "--precision", "fp32", "--out", str(out), "-q",
        *extra,
    ]  # fmt: skip


def val_args(root: Path) -> list[str]:
    return [
        "--val-images",
        str(root / "val" / "images"),
        "--val-labels",
        str(root / "val" / "masks"),
    ]


def test_train_records_the_validation_scores_and_keeps_the_best(folders, tmp_path, capsys):
    out = tmp_path / "m.pt"
    rc = main(train_args(folders, out, *val_args(folders), "--val-every", "1"))
    assert rc == 0
    printed = capsys.readouterr().out
    run = load_model(out).record.training[-1]
    record = run.extra["validation"]
    assert record["images"] == ["val.tif"] and record["every"] == 1
    assert [s["step"] for s in record["scores"]] == [1, 2, 3]
    best = max(record["scores"], key=lambda s: (s["iou"], -s["loss"]))
    assert record["best_step"] == best["step"] == record["weights_from_step"]
    assert f"validation: best IoU {best['iou']:.3f} at step {best['step']}" in printed
    assert run.steps_done == 3  # trained 3 steps, whichever step's weights it holds

    rc = main(["info", str(out)])
    assert rc == 0
    assert "validated on 1 image(s) every 1 steps: best IoU" in capsys.readouterr().out


def test_keep_last_saves_the_last_steps_weights(folders, tmp_path):
    out = tmp_path / "m.pt"
    rc = main(train_args(folders, out, *val_args(folders), "--val-every", "2", "--keep", "last"))
    assert rc == 0
    record = load_model(out).record.training[-1].extra["validation"]
    assert [s["step"] for s in record["scores"]] == [2, 3]
    assert record["weights_from_step"] == 3 and record["keep"] == "last"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--val-images", "VAL"], "--val-images and --val-labels go together"),
        (["--val-every", "0"], "validate every"),
        (["--patience", "-1"], "patience"),
    ],
)
def test_bad_validation_options_fail_before_writing_a_model(
    folders, tmp_path, capsys, extra, message
):
    out = tmp_path / "m.pt"
    extra = [str(folders / "val" / "images") if e == "VAL" else e for e in extra]
    assert main(train_args(folders, out, *extra)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not out.exists()


def test_validation_labels_with_a_value_training_lacks_are_refused(folders, tmp_path, capsys):
    odd = tmp_path / "odd"
    (odd / "images").mkdir(parents=True)
    (odd / "masks").mkdir()
    image = tifffile.imread(folders / "val" / "images" / "val.tif")
    mask = tifffile.imread(folders / "val" / "masks" / "val.tif").copy()
    mask[0, 0] = 7
    tifffile.imwrite(odd / "images" / "val.tif", image)
    tifffile.imwrite(odd / "masks" / "val.tif", mask)
    out = tmp_path / "m.pt"
    args = ["--val-images", str(odd / "images"), "--val-labels", str(odd / "masks")]
    assert main(train_args(folders, out, *args)) == 1
    err = capsys.readouterr().err
    assert "value(s) [7] that the training labels do not (0, 255)" in err
    assert not out.exists()


def test_validating_on_the_training_files_is_refused(folders, tmp_path, capsys):
    out = tmp_path / "m.pt"
    args = [
        "--val-images", str(folders / "train" / "images"),
        "--val-labels", str(folders / "train" / "masks"),
    ]  # fmt: skip
    assert main(train_args(folders, out, *args)) == 1
    assert "the validation labels are the training labels" in capsys.readouterr().err
    assert not out.exists()
