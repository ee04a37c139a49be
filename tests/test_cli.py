"""The ``napari-unet`` command line, end to end on real data, and its failure modes.

The data are crops of the nuclei sample bundled with the package (runs in a bare clone);
the one test about the ISBI 2012 annotations themselves reads them from ../shared/data."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from napari_unet import load_model, metrics, predict_tiled
from napari_unet.cli import build_parser, main

from .conftest import bundled_nuclei, shared_data

CROP = (96, 120)  # small crops keep the whole file fast on 2 cores
CORNERS = ((40, 200), (300, 100))  # two crops of the bundled nuclei sample, both classes


def _nuclei_crop(index: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``index`` of the bundled nuclei sample as a user's 8-bit image (its values are
    0..235: exact in uint8) and a dense mask, 0 = background, 255 = nucleus."""
    data = bundled_nuclei()
    r, c = CORNERS[index]
    window = (slice(r, r + CROP[0]), slice(c, c + CROP[1]))
    image = data["image"][window]
    assert image.max() <= 255
    mask = np.where(data["instances"][window] > 0, 255, 0).astype(np.uint8)
    return image.astype(np.uint8), mask


def _write_pairs(root: Path, crop) -> Path:
    """imgs/0.tif, imgs/1.png and masks/0.png, masks/1.png from ``crop(0)``, ``crop(1)``,
    as a user would have them."""
    import imageio.v3 as iio

    (root / "imgs").mkdir()
    (root / "masks").mkdir()
    for i in (0, 1):
        image, mask = crop(i)
        if i == 0:
            tifffile.imwrite(root / "imgs" / "0.tif", image)
        else:
            iio.imwrite(root / "imgs" / "1.png", image)
        iio.imwrite(root / "masks" / f"{i}.png", mask)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Two crops of the bundled nuclei sample with their dense masks (0 = background,
    255 = nucleus): no ../shared needed."""
    return _write_pairs(tmp_path_factory.mktemp("cli"), _nuclei_crop)


def _isbi_crop(index: int) -> tuple[np.ndarray, np.ndarray]:
    import imageio.v3 as iio

    folder = shared_data("isbi2012_membrane")
    image = iio.imread(folder / "images" / f"{index}.png")[: CROP[0], : CROP[1]]
    mask = iio.imread(folder / "labels" / f"{index}.png")[: CROP[0], : CROP[1]]
    return image, mask


@pytest.fixture(scope="module")
def isbi_data(tmp_path_factory) -> Path:
    """The same layout from ISBI 2012 crops (0 = membrane, 255 = cell), for the tests
    about that data set itself; skipped without ../shared/data."""
    return _write_pairs(tmp_path_factory.mktemp("isbi"), _isbi_crop)


@pytest.fixture(scope="module")
def model_file(data) -> Path:
    out = data / "model.pt"
    rc = main(
        [
            "train",
            "--images", str(data / "imgs"),
            "--labels", str(data / "masks" / "*.png"),
            "--mode", "dense",
            "--preset", "tiny",
            "--steps", "2",
            "--batch-size", "1",
            "--tile-size", "32",
            "--class-names", "background", "nucleus",
            "--out", str(out),
            "--quiet",
        ]
    )  # fmt: skip
    assert rc == 0
    return out


def _error_line(capsys) -> str:
    """The single line printed on stderr by a failing command."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("napari-unet: error: ")
    return err[0]


# ---------------------------------------------------------------------------- help
def test_console_script_help_runs_fast():
    exe = shutil.which("napari-unet")
    cmd = [exe] if exe else [sys.executable, "-m", "napari_unet.cli"]
    res = subprocess.run([*cmd, "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    for command in ("train", "predict", "evaluate", "info", "gui"):
        assert command in res.stdout


def test_every_option_is_documented(capsys):
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            assert action.help and len(action.help) > 8, (name, action.option_strings)
        assert main([name, "--help"]) == 0
        out = capsys.readouterr().out
        for action in sub._actions:
            for opt in action.option_strings:
                assert opt in out, (name, opt)


def test_usage_errors_exit_with_2(capsys):
    assert main(["predict"]) == 2
    assert "required" in capsys.readouterr().err
    assert main(["no-such-command"]) == 2


# ---------------------------------------------------------------------------- end to end
def test_train_saves_a_model_that_records_what_it_learned(model_file):
    model = load_model(model_file)
    assert (model.depth, model.base_channels, model.batch_norm) == (3, 8, True)
    assert model.n_classes == 2 and model.in_channels == 1
    assert model.record.classes.label_values == [0, 255]
    assert model.record.classes.names == ["background", "nucleus"]
    run = model.record.training[-1]
    assert run.steps_done == 2 and run.annotated_pixels == 2 * CROP[0] * CROP[1]
    # --precision auto (the default) records what the hardware made of it
    assert run.config["precision"] == "auto" and run.precision_used in ("fp32", "bf16")


def test_info_describes_the_model(model_file, capsys):
    assert main(["info", str(model_file)]) == 0
    text = capsys.readouterr().out
    assert "depth 3" in text and "0 = background, 255 = nucleus" in text
    assert main(["info", str(model_file), "--json"]) == 0
    desc = json.loads(capsys.readouterr().out)
    model = load_model(model_file)
    assert desc["parameters"] == sum(p.numel() for p in model.parameters())
    # the context per side, measured by running the network on its smallest input
    n = desc["size"]["min_input_px"]
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, 1, n, n)).shape[-1]
    assert out == desc["size"]["min_output_px"]
    assert desc["size"]["context_per_side_px"] == (n - out) // 2
    assert desc["training"][-1]["steps_done"] == 2


def test_info_lists_bundled_models(capsys):
    assert main(["info", "--json"]) == 0
    names = json.loads(capsys.readouterr().out)["bundled"]
    if names:
        assert main(["info", names[0]]) == 0
        assert "architecture" in capsys.readouterr().out


def test_predict_then_evaluate(data, model_file, tmp_path, capsys):
    out = tmp_path / "results"
    rc = main(
        ["predict", str(data / "imgs"), "--model", str(model_file), "--out", str(out),
         "--probabilities", "--instances", "-q"]
    )  # fmt: skip
    assert rc == 0
    model = load_model(model_file)
    for i in (0, 1):
        labels = tifffile.imread(out / f"{i}_labels.tif")
        ref = predict_tiled(model, _nuclei_crop(i)[0])
        # dense model: class k is written back as its original value (0 / 255)
        np.testing.assert_array_equal(labels, np.array([0, 255])[ref.labels - 1])
        probs = tifffile.imread(out / f"{i}_probabilities.tif")
        np.testing.assert_allclose(probs, ref.probabilities, atol=1e-5)
        instances = tifffile.imread(out / f"{i}_instances.tif")
        assert instances.shape == CROP and instances.dtype == np.uint32
    capsys.readouterr()

    report = tmp_path / "scores.json"
    rc = main(
        ["evaluate", "--predictions", str(out), "--labels", str(data / "masks"),
         "--json", str(report), "-q"]
    )  # fmt: skip
    assert rc == 0
    table = capsys.readouterr().out
    assert "pixel_error" in table and "mean" in table
    scores = json.loads(report.read_text())
    assert scores["kind"] == "semantic" and len(scores["images"]) == 2
    errors, pooled = [], []
    for i in (0, 1):
        pred = tifffile.imread(out / f"{i}_labels.tif")
        gt = _nuclei_crop(i)[1]
        errors.append(np.mean(pred != gt))
        row = scores["images"][i]
        assert row["pixel_error"] == pytest.approx(errors[-1])
        assert row["rand_error"] == pytest.approx(
            metrics.isbi_scores(pred == 255, gt == 255)["rand_error"]
        )
        # the challenge's pixel error: 1 - F-score of the cells (255), counted here
        tp = np.sum((pred == 255) & (gt == 255))
        wrong = np.sum((pred == 255) != (gt == 255))
        assert row["challenge_pixel_error"] == pytest.approx(wrong / (2 * tp + wrong))
        pooled.append((tp, wrong))
    assert "challenge_pixel_error" in table
    tp, wrong = np.sum(pooled, axis=0)
    assert scores["mean"]["challenge_pixel_error"] == pytest.approx(wrong / (2 * tp + wrong))
    assert scores["mean"]["pixel_error"] == pytest.approx(np.mean(errors))

    # the same scores when the model predicts inside `evaluate`
    rc = main(
        ["evaluate", "--model", str(model_file), "--images", str(data / "imgs"),
         "--labels", str(data / "masks"), "--json", str(report), "--overwrite", "-q"]
    )  # fmt: skip
    assert rc == 0
    again = json.loads(report.read_text())
    assert again["mean"]["pixel_error"] == pytest.approx(np.mean(errors))


def test_predict_zarr_through_the_cli(data, model_file, tmp_path, capsys):
    zarr = pytest.importorskip("zarr")
    image = np.concatenate([_nuclei_crop(0)[0], _nuclei_crop(1)[0]], axis=1)  # 96 x 240
    z = zarr.create_array(str(tmp_path / "big.zarr"), shape=image.shape, chunks=(48, 64),
                          dtype=image.dtype)  # fmt: skip
    z[...] = image
    rc = main(["predict", str(tmp_path / "big.zarr"), "--model", str(model_file),
               "--out", str(tmp_path / "out"), "--chunk-size", "48", "-q"])  # fmt: skip
    assert rc == 0
    result = zarr.open_array(str(tmp_path / "out" / "big_labels.zarr"), mode="r")
    assert result.chunks == (48, 48)
    ref = predict_tiled(load_model(model_file), image)
    np.testing.assert_array_equal(result[...], np.array([0, 255])[ref.labels - 1])


def test_predict_with_test_time_augmentation(data, model_file, tmp_path, capsys):
    out = tmp_path / "tta"
    rc = main(["predict", str(data / "imgs" / "0.tif"), "--model", str(model_file),
               "--out", str(out), "--probabilities", "--tta", "-q"])  # fmt: skip
    assert rc == 0
    ref = predict_tiled(load_model(model_file), _nuclei_crop(0)[0], test_time_augmentation=True)
    probs = tifffile.imread(out / "0_probabilities.tif")
    np.testing.assert_allclose(probs, ref.probabilities, atol=1e-5)
    # zarr inputs go chunk by chunk through dask: no TTA there, and nothing is written
    zarr = pytest.importorskip("zarr")
    z = zarr.create_array(str(tmp_path / "v.zarr"), shape=(40, 40), dtype="uint8")
    z[...] = 1
    capsys.readouterr()
    rc = main(["predict", str(tmp_path / "v.zarr"), "--model", str(model_file),
               "--out", str(tmp_path / "none"), "--tta", "-q"])  # fmt: skip
    assert rc == 1 and "--tta" in _error_line(capsys)
    assert not (tmp_path / "none").exists()


def test_predict_instances_by_probability_seeds(data, model_file, tmp_path, capsys):
    from napari_unet import instances_from_prediction

    out = tmp_path / "seeded"
    rc = main(["predict", str(data / "imgs" / "0.tif"), "--model", str(model_file),
               "--out", str(out), "--instances", "--seed-threshold", "0.8", "-q"])  # fmt: skip
    assert rc == 0
    p = predict_tiled(load_model(model_file), _nuclei_crop(0)[0]).probabilities[1]
    ref = instances_from_prediction(p, 0.5, min_size=10, seed_threshold=0.8)
    np.testing.assert_array_equal(tifffile.imread(out / "0_instances.tif"), ref)
    capsys.readouterr()
    rc = main(["predict", str(data / "imgs" / "0.tif"), "--model", str(model_file),
               "--out", str(tmp_path / "no"), "--seed-threshold", "0.8", "-q"])  # fmt: skip
    assert rc == 1 and "--seed-threshold" in _error_line(capsys)
    assert not (tmp_path / "no").exists()


# ---------------------------------------------------------------------------- refusals
def test_outputs_are_not_overwritten_without_the_flag(data, model_file, tmp_path, capsys):
    args = ["predict", str(data / "imgs" / "0.tif"), "--model", str(model_file),
            "--out", str(tmp_path), "-q"]  # fmt: skip
    assert main(args) == 0
    target = tmp_path / "0_labels.tif"
    earlier = target.read_bytes()
    assert main(args) == 1
    assert "exists; pass --overwrite" in _error_line(capsys)
    assert target.read_bytes() == earlier
    os.utime(target, ns=(0, 0))
    assert main([*args, "--overwrite"]) == 0  # an earlier output of napari-unet is replaced
    assert target.stat().st_mtime_ns > 0 and tifffile.imread(target).shape == CROP
    # a file of the user's at that name is not, even with --overwrite
    target.write_bytes(b"my own result")
    assert main([*args, "--overwrite"]) == 1
    assert "not written by napari-unet" in _error_line(capsys)
    assert target.read_bytes() == b"my own result"

    # train: an existing model file is kept unless --overwrite
    out = tmp_path / "m.pt"
    out.write_bytes(b"keep me")
    rc = main(["train", "--images", str(data / "imgs"), "--labels", str(data / "masks"),
               "--mode", "dense", "--out", str(out), "-q"])  # fmt: skip
    assert rc == 1 and "exists" in _error_line(capsys)
    assert out.read_bytes() == b"keep me"


def test_inputs_are_never_overwritten(data, model_file, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(data / "imgs" / "0.tif", folder / "a.tif")
    shutil.copy(data / "imgs" / "0.tif", folder / "a_labels.tif")  # an input named like an output
    before = (folder / "a_labels.tif").read_bytes()
    rc = main(["predict", str(folder / "a.tif"), str(folder / "a_labels.tif"),
               "--model", str(model_file), "--out", str(folder), "--overwrite", "-q"])  # fmt: skip
    assert rc == 1
    assert "refusing to write over an input" in _error_line(capsys)
    assert (folder / "a_labels.tif").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["a.tif", "a_labels.tif"]
    # training cannot write its model over one of its images either
    rc = main(["train", "--images", str(folder / "a.tif"), "--labels", str(data / "masks/0.png"),
               "--mode", "dense", "--out", str(folder / "a.tif"), "--overwrite",
               "-q"])  # fmt: skip
    assert rc == 1 and "input" in _error_line(capsys)


# ---------------------------------------------------------------------------- bad input
@pytest.fixture
def bad_files(tmp_path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    files = {
        "garbage_tif": tmp_path / "garbage.tif",
        "garbage_png": tmp_path / "garbage.png",
        "garbage_model": tmp_path / "garbage.pt",
        "line": tmp_path / "line.tif",
        "small_labels": tmp_path / "small_labels.tif",
        "two_channels": tmp_path / "two_channels.tif",
        "text": tmp_path / "notes.txt",
    }
    files["garbage_tif"].write_bytes(rng.bytes(2000))
    files["garbage_png"].write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(100))
    files["garbage_model"].write_bytes(rng.bytes(500))
    tifffile.imwrite(files["line"], np.arange(7, dtype=np.uint8))
    tifffile.imwrite(files["small_labels"], np.ones((10, 10), np.uint8))
    tifffile.imwrite(files["two_channels"], np.zeros((2, 40, 40), np.uint8))
    files["text"].write_text("hello")
    return files


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_image", "missing.tif: no such file or folder"),
        ("garbage_tif", "garbage.tif: not a readable TIFF file"),
        ("garbage_png", "garbage.png: not a readable image file"),
        ("text", "notes.txt: unsupported image file type '.txt'"),
        ("line", "line.tif: not an image"),
        ("two_channels", "expects 1 channel"),
        ("missing_model", "nope.pt: no such model file"),
        ("garbage_model", "garbage.pt: "),  # refused or unreadable: either names the file
        ("empty_glob", "no image files found"),
    ],
)
def test_predict_bad_input_gives_one_line(case, expected, bad_files, model_file, tmp_path, capsys):
    model, extra = str(model_file), []
    if case == "missing_image":
        image = str(tmp_path / "missing.tif")
    elif case == "missing_model":
        image, model = str(bad_files["line"]), str(tmp_path / "nope.pt")
    elif case == "garbage_model":
        image, model = str(bad_files["small_labels"]), str(bad_files["garbage_model"])
    elif case == "empty_glob":
        image = str(tmp_path / "*.jpg")
    elif case == "two_channels":
        image, extra = str(bad_files[case]), ["--channel-axis", "0"]
    else:
        image = str(bad_files[case])
    out = tmp_path / "never"
    rc = main(["predict", image, "--model", model, "--out", str(out), *extra])
    assert rc == 1
    assert expected in _error_line(capsys)
    assert not out.exists() or not any(out.iterdir())  # nothing written


def test_train_and_evaluate_with_wrong_shapes(data, bad_files, tmp_path, capsys):
    rc = main(["train", "--images", str(data / "imgs" / "0.tif"),
               "--labels", str(bad_files["small_labels"]), "--mode", "dense",
               "--out", str(tmp_path / "m.pt"), "-q"])  # fmt: skip
    assert rc == 1
    line = _error_line(capsys)
    assert "0.tif" in line and "(10, 10) does not match" in line
    assert not (tmp_path / "m.pt").exists()

    rc = main(["evaluate", "--predictions", str(bad_files["small_labels"]),
               "--labels", str(data / "masks" / "0.png"), "-q"])  # fmt: skip
    assert rc == 1
    assert "differs from ground truth" in _error_line(capsys)

    rc = main(["train", "--images", str(data / "imgs"), "--labels", str(data / "masks"),
               "--mode", "scribbles", "--weight-map",
               "--out", str(tmp_path / "m.pt")])  # fmt: skip
    assert rc == 1
    assert "--weight-map needs --mode instances" in _error_line(capsys)

    # 0/255 masks read as scribbles would make 255 classes: refused with the fix named
    rc = main(["train", "--images", str(data / "imgs"), "--labels", str(data / "masks"),
               "--mode", "scribbles", "--out", str(tmp_path / "m.pt")])  # fmt: skip
    assert rc == 1
    assert "255 classes" in (line := _error_line(capsys)) and "'dense'" in line
    assert not (tmp_path / "m.pt").exists()


# ---------------------------------------------------------------------------- gui
def test_gui_opens_napari_with_the_widget(monkeypatch, tmp_path, capsys):
    calls: list[tuple] = []

    class Window:
        def add_plugin_dock_widget(self, plugin, widget):
            calls.append(("dock", plugin, widget))

    class Viewer:
        def __init__(self):
            self.window = Window()
            calls.append(("viewer",))

        def open_sample(self, plugin, sample):
            calls.append(("sample", plugin, sample))

        def open(self, path):
            calls.append(("open", path))

    fake = types.SimpleNamespace(Viewer=Viewer, run=lambda: calls.append(("run",)))
    monkeypatch.setitem(sys.modules, "napari", fake)
    image = tmp_path / "x.tif"
    tifffile.imwrite(image, np.zeros((8, 8), np.uint8))
    assert main(["gui", "--sample", str(image)]) == 0
    assert calls == [
        ("viewer",),
        ("sample", "napari-unet-explorer", "nuclei"),
        ("open", str(image)),
        ("dock", "napari-unet-explorer", "U-Net"),
        ("run",),
    ]
    calls.clear()
    assert main(["gui", str(tmp_path / "missing.tif")]) == 1
    assert "missing.tif: no such file" in _error_line(capsys)
    assert calls == []  # no window opened


def test_debug_flag_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["info", str(tmp_path / "nope.pt"), "--debug"])
    assert os.environ.get("NAPARI_UNET_DEBUG") is None


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_bad_worker_count_fails_before_creating_anything(
    workers, data, model_file, tmp_path, capsys
):
    out = tmp_path / "never"
    argv = ["predict", str(data / "imgs" / "0.tif"), "--model", str(model_file)]
    rc = main([*argv, "--out", str(out), "--workers", workers, "--quiet"])
    assert rc == 2  # a usage error, as for every bounded count
    assert f"argument --workers: must be at least 1, got {workers}" in capsys.readouterr().err
    assert not out.exists()


def test_train_notes_annotations_off_their_image(isbi_data, tmp_path, capsys):
    """The ISBI labels sit about half a pixel above their membranes (docs/accuracy.md),
    and train says so; labels drawn on their image's grid get no such note."""
    common = ["--preset", "tiny", "--steps", "1", "--batch-size", "1", "--tile-size", "32"]
    rc = main(["train", "--images", str(isbi_data / "imgs"), "--labels", str(isbi_data / "masks"),
               "--mode", "dense", "--out", str(tmp_path / "a.pt"), *common])  # fmt: skip
    assert rc == 0
    note = [line for line in capsys.readouterr().err.splitlines() if "may sit" in line]
    assert len(note) == 1
    dy = float(note[0].split("may sit ")[1].split(" px")[0])
    assert -0.7 < dy < -0.25  # above the membranes, as measured on the whole data set
    # without flips the note has nothing to say
    rc = main(["train", "--images", str(isbi_data / "imgs"), "--labels", str(isbi_data / "masks"),
               "--mode", "dense", "--no-flips", "--out", str(tmp_path / "c.pt"),
               *common])  # fmt: skip
    assert rc == 0
    assert "annotations may sit" not in capsys.readouterr().err

    yy, xx = np.mgrid[:96, :120]
    cells = np.zeros((96, 120), np.uint16)
    for i, (cy, cx) in enumerate([(20, 30), (50, 75), (75, 25), (30, 95)], start=1):
        cells[np.hypot(yy - cy, xx - cx) < 9] = i
    image = np.where(cells > 0, 200, 40).astype(np.uint8)
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "cells.tif", cells)
    rc = main(["train", "--images", str(tmp_path / "img.tif"), "--labels",
               str(tmp_path / "cells.tif"), "--mode", "instances",
               "--out", str(tmp_path / "b.pt"), *common])  # fmt: skip
    assert rc == 0
    assert "annotations may sit" not in capsys.readouterr().err


def test_train_recompute_batch_norm_flag(data, tmp_path):
    out = tmp_path / "m.pt"
    rc = main(["train", "--images", str(data / "imgs"), "--labels", str(data / "masks"),
               "--mode", "dense", "--preset", "tiny", "--steps", "2", "--batch-size", "2",
               "--tile-size", "32", "--recompute-batch-norm", "--out", str(out),
               "-q"])  # fmt: skip
    assert rc == 0
    model = load_model(out)
    assert model.record.training[-1].config["recompute_batch_norm"] is True
    counts = {int(m.num_batches_tracked) for m in model.modules() if hasattr(m, "running_var")}
    assert counts == {16}  # reset, then 32 tiles in batches of 2 (without: 2 training steps)


def test_evaluate_refuses_classes_with_no_value_in_common(tmp_path, capsys):
    gt = np.zeros((8, 8), np.uint8)
    gt[2:6, 2:6] = 255  # an ISBI-style 0/255 mask
    pred = np.where(gt > 0, 2, 1).astype(np.uint8)  # class values 1/2 of an instance model
    tifffile.imwrite(tmp_path / "a_labels.tif", pred)
    tifffile.imwrite(tmp_path / "a.tif", gt)
    report = tmp_path / "scores.json"
    rc = main(["evaluate", "--predictions", str(tmp_path / "a_labels.tif"),
               "--labels", str(tmp_path / "a.tif"), "--json", str(report), "-q"])  # fmt: skip
    assert rc == 1
    line = _error_line(capsys)
    assert "{1, 2}" in line and "{0, 255}" in line and "--kind instances" in line
    assert not report.exists()

    ids = np.arange(64, dtype=np.uint16).reshape(8, 8)  # an instance image, 64 ids
    tifffile.imwrite(tmp_path / "a.tif", ids)
    tifffile.imwrite(tmp_path / "a_labels.tif", (ids > 0).astype(np.uint8) + 1)
    rc = main(["evaluate", "--predictions", str(tmp_path / "a_labels.tif"),
               "--labels", str(tmp_path / "a.tif"), "--kind", "semantic", "-q"])  # fmt: skip
    assert rc == 1
    line = _error_line(capsys)
    assert "64 different values" in line and "--kind instances" in line


def test_evaluate_instances_against_a_mask_scores_its_components(tmp_path, capsys):
    gt = np.zeros((12, 12), np.uint8)
    gt[1:5, 1:5] = 255
    gt[7:11, 1:5] = 255  # two cells in a 0/255 mask: one object value
    pred = np.zeros((12, 12), np.uint32)
    pred[1:5, 1:5] = 1
    pred[7:11, 1:5] = 2  # both found
    pred[1:5, 7:11] = 3  # one false object
    tifffile.imwrite(tmp_path / "a_instances.tif", pred)
    tifffile.imwrite(tmp_path / "a.tif", gt)
    report = tmp_path / "scores.json"
    rc = main(["evaluate", "--predictions", str(tmp_path / "a_instances.tif"),
               "--labels", str(tmp_path / "a.tif"), "--json", str(report)])  # fmt: skip
    assert rc == 0
    assert "4-connected components are scored as the objects" in capsys.readouterr().err
    row = json.loads(report.read_text())["images"][0]
    # two true cells, both matched, one false positive: precision 2/3, recall 1
    assert (row["n_true"], row["n_pred"]) == (2, 3)
    assert row["precision"] == pytest.approx(2 / 3) and row["recall"] == 1.0


def test_threads_option_sets_torch_threads_for_the_command(
    data, model_file, tmp_path, monkeypatch, capsys
):
    import napari_unet.cli.predict as predict_command
    import napari_unet.cli.train as train_command

    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1
    seen = []

    def spy(module, name):
        real = getattr(module, name)

        def wrapper(*args):
            seen.append(torch.get_num_threads())
            return real(*args)

        monkeypatch.setattr(module, name, wrapper)

    spy(predict_command, "cmd_predict")
    spy(train_command, "cmd_train")
    image = str(data / "imgs" / "0.tif")
    rc = main(["predict", image, "--model", str(model_file), "--out", str(tmp_path / "t"),
               "--threads", str(wanted), "-q"])  # fmt: skip
    assert rc == 0 and (tmp_path / "t" / "0_labels.tif").is_file()
    assert seen == [wanted] and torch.get_num_threads() == before  # restored afterwards
    rc = main(["train", "--images", str(data / "imgs"), "--labels", str(data / "masks"),
               "--mode", "dense", "--preset", "tiny", "--steps", "1", "--tile-size", "32",
               "--threads", str(wanted), "--out", str(tmp_path / "m.pt"), "-q"])  # fmt: skip
    assert rc == 0 and seen == [wanted, wanted] and torch.get_num_threads() == before
    # without the option the command runs with the process's setting
    rc = main(["predict", image, "--model", str(model_file), "--out", str(tmp_path / "u"), "-q"])
    assert rc == 0 and seen[-1] == before
    # 0 threads is a usage error, and nothing is written
    capsys.readouterr()
    rc = main(["predict", image, "--model", str(model_file), "--out", str(tmp_path / "z"),
               "--threads", "0"])  # fmt: skip
    assert rc == 2 and "at least 1" in capsys.readouterr().err and not (tmp_path / "z").exists()


def test_threads_option_bounds_the_chunks_of_a_zarr_input(data, model_file, tmp_path, monkeypatch):
    zarr = pytest.importorskip("zarr")
    import dask

    import napari_unet.workflow.batch as batch

    z = zarr.create_array(str(tmp_path / "v.zarr"), shape=(48, 64), dtype="uint8")
    z[...] = _nuclei_crop(0)[0][:48, :64]
    workers = []
    real = batch.predict_zarr_input

    def spy(*args):
        workers.append(dask.config.get("num_workers", None))
        return real(*args)

    monkeypatch.setattr(batch, "predict_zarr_input", spy)
    for n, out in ((1, "a"), (None, "b")):
        extra = ["--threads", str(n)] if n else []
        rc = main(["predict", str(tmp_path / "v.zarr"), "--model", str(model_file),
                   "--out", str(tmp_path / out), "-q", *extra])  # fmt: skip
        assert rc == 0 and (tmp_path / out / "v_labels.zarr").exists()
    assert workers == [1, None]  # dask's default (one per core) without the option
