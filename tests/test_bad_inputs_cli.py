"""Bad input to the ``napari-unet`` command line: one clear line, exit 1, no file touched.

Every failing command is checked for: exit status 1 and a single ``napari-unet: error:``
line naming the problem; every file in the working folder (inputs, models, earlier
outputs) byte-for-byte and mtime unchanged, and no new file; and, where it applies, that
the same command works once the input is fixed. The catalogue is docs/bad-inputs.md.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
import torch

from napari_unet import UNet, load_model, predict_tiled, save_model
from napari_unet.cli import main
from napari_unet.unet.record import Normalization

NORM = {"method": "percentile", "low": 1.0, "high": 99.8}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def scene(h: int = 48, w: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 image with a bright band, and scribbles 1 = background, 2 = band."""
    rng = np.random.default_rng(seed)
    image = rng.normal(60, 10, (h, w))
    image[h // 2 : h // 2 + 6] += 100
    labels = np.zeros((h, w), np.uint8)
    labels[4:7, 4 : w - 4] = 1
    labels[h // 2 + 1 : h // 2 + 4, 4 : w - 4] = 2
    return np.clip(image, 0, 255).astype(np.uint8), labels


def tiny_model(in_channels: int = 1) -> UNet:
    torch.manual_seed(0)
    model = UNet(in_channels, 2, depth=2, base_channels=4, dropout=0).eval()
    model.record.normalization = Normalization.from_dict(NORM)
    return model


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder as a user has it: img.tif, lab.tif (scribbles) and model.pt."""
    image, labels = scene()
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "lab.tif", labels)
    save_model(tmp_path / "model.pt", tiny_model())
    return tmp_path


def tree(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under ``folder``: content hash and mtime."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        if p.is_dir():
            out[rel + "/"] = ("dir", 0)
        else:
            out[rel] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def fails(capsys, folder: Path, argv: list, phrase: str) -> str:
    """Run a command that must fail: exit 1, one error line with ``phrase``, no file
    in ``folder`` changed, created or removed. Returns the line."""
    before = tree(folder)
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 1, (rc, err)
    assert len(err) == 1, err
    assert err[0].startswith("napari-unet: error: "), err
    assert phrase in err[0], err[0]
    assert "Traceback" not in err[0]
    after = tree(folder)
    # a new *empty* output folder is tolerated here and tested on its own (
    # test_failed_predict_creates_no_output_folder); any new or changed file is not
    if "out/" in after and "out/" not in before and not any((folder / "out").iterdir()):
        del after["out/"]
    assert after == before
    return err[0]


def works(capsys, argv: list) -> None:
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    assert rc == 0, capsys.readouterr().err


def predict_args(work: Path, image: Path, *extra) -> list:
    return ["predict", image, "--model", work / "model.pt", "--out", work / "out", "-q", *extra]


def train_args(work: Path, image: Path, labels: Path, *extra) -> list:
    return [
        "train", "--images", image, "--labels", labels, "--out", work / "new.pt", "-q",
        "--steps", "2", "--batch-size", "1", "--tile-size", "16",
        "--from", work / "model.pt", *extra,
    ]  # fmt: skip


# ---------------------------------------------------------------------------- predict
@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_predict_non_finite_pixels(work, capsys, value) -> None:
    image = scene()[0].astype(np.float32)
    image[5, 5] = value
    tifffile.imwrite(work / "bad.tif", image)
    line = fails(capsys, work, predict_args(work, work / "bad.tif"), "NaN or infinite pixels")
    assert "bad.tif" in line
    works(capsys, predict_args(work, work / "img.tif"))  # a good image still works


def test_predict_non_numeric_image(work, capsys) -> None:
    tifffile.imwrite(work / "complex.tif", scene()[0].astype(np.complex64))
    fails(capsys, work, predict_args(work, work / "complex.tif"), "must be numeric")


@pytest.fixture
def library_logs_on_stderr(capsys):
    """What a user sees: with no logging configured, Python prints a library's warnings
    on stderr (logging.lastResort). Under pytest the root logger has pytest's capture
    handler, which would hide those lines from ``fails``: cut the libraries off from it."""
    import logging

    loggers = [logging.getLogger(name) for name in ("tifffile", "imageio", "PIL")]
    before = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.propagate = False  # no handler is found: lastResort writes to sys.stderr
    yield
    for logger, propagate in zip(loggers, before, strict=True):
        logger.propagate = propagate


@pytest.mark.parametrize(
    "cut",
    [
        0,
        None,
        -5,
        8,
        200,
    ],
    ids=["empty", "random bytes", "truncated data", "header only", "truncated header"],
)
def test_predict_broken_tiff(work, capsys, library_logs_on_stderr, cut) -> None:
    data = tifffile_bytes()
    if cut is None:
        data = np.random.default_rng(0).bytes(3000)
    (work / "broken.tif").write_bytes(data[:cut])
    line = fails(capsys, work, predict_args(work, work / "broken.tif"), "not a readable TIFF")
    assert "broken.tif" in line


def test_predict_truncated_png(work, capsys, library_logs_on_stderr) -> None:
    iio.imwrite(work / "img.png", scene()[0])
    data = (work / "img.png").read_bytes()
    (work / "cut.png").write_bytes(data[: len(data) // 2])
    fails(capsys, work, predict_args(work, work / "cut.png"), "not a readable image file")


def tifffile_bytes() -> bytes:
    import io

    buf = io.BytesIO()
    tifffile.imwrite(buf, scene()[0])
    return buf.getvalue()


@pytest.mark.parametrize(
    "kind",
    ["empty", "random bytes", "truncated", "text", "other architecture", "NaN weights"],
)
def test_predict_with_a_bad_model_file(work, capsys, kind) -> None:
    bad = work / "bad.pt"
    good = (work / "model.pt").read_bytes()
    phrase = "not a readable model file"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "random bytes":
        bad.write_bytes(np.random.default_rng(0).bytes(2000))
    elif kind == "truncated":
        bad.write_bytes(good[: len(good) // 2])
    elif kind == "text":
        bad.write_text("weights: none\n")
    elif kind == "other architecture":
        payload = torch.load(work / "model.pt", weights_only=True)
        payload["state_dict"] = UNet(depth=3, base_channels=4).state_dict()
        torch.save(payload, bad)
        phrase = "weights do not fit the architecture"
    else:
        payload = torch.load(work / "model.pt", weights_only=True)
        payload["state_dict"]["head.weight"][:] = float("inf")
        torch.save(payload, bad)
        phrase = "NaN or infinite values"
    argv = ["predict", work / "img.tif", "--model", bad, "--out", work / "out", "-q"]
    line = fails(capsys, work, argv, phrase)
    assert "bad.pt" in line
    for command in (["info", bad], train_args(work, work / "img.tif", work / "lab.tif")):
        if command[0] == "train":
            command[command.index(work / "model.pt")] = bad
        fails(capsys, work, command, phrase)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("how", ["torch", "pickle"])
def test_model_file_that_would_run_code(work, capsys, how) -> None:
    marker = work.parent / f"pwned-{work.name}"
    evil = work / "evil.pt"
    if how == "torch":
        torch.save({"format": "napari-unet", "x": _Evil(marker)}, evil)
    else:
        evil.write_bytes(pickle.dumps(_Evil(marker)))
    phrase = "refused" if how == "torch" else "not a readable model file"
    fails(capsys, work, predict_args(work, work / "img.tif")[:2] + [
        "--model", evil, "--out", work / "out", "-q"], phrase)  # fmt: skip
    fails(capsys, work, ["info", evil], phrase)
    argv = train_args(work, work / "img.tif", work / "lab.tif")
    argv[argv.index(work / "model.pt")] = evil
    fails(capsys, work, argv, phrase)
    assert not marker.exists()


def test_model_path_is_a_folder(work, capsys) -> None:
    argv = ["predict", work / "img.tif", "--model", work, "--out", work / "out", "-q"]
    fails(capsys, work, argv, "no such model file")


@pytest.mark.parametrize(
    "image, in_channels, extra, phrase",
    [
        ("grey", 3, [], "the model expects 3 channels"),
        ("grey", 1, ["--channel-axis", "0"], "channel axis must be at least 3D"),
        ("two channels", 1, ["--channel-axis", "0"], "expects 1 channel(s), the image has 2"),
        ("two channels", 2, ["--channel-axis", "1"], "cannot be one of the two spatial axes"),
    ],
    ids=["grey to RGB model", "channel axis on 2D", "2 channels to grey", "spatial channel"],
)
def test_predict_channel_confusions(work, capsys, image, in_channels, extra, phrase) -> None:
    grey = scene()[0]
    if image == "two channels":
        tifffile.imwrite(work / "x.tif", np.stack([grey, 255 - grey]))
    else:
        tifffile.imwrite(work / "x.tif", grey)
    save_model(work / "model.pt", tiny_model(in_channels))
    fails(capsys, work, predict_args(work, work / "x.tif", *extra), phrase)


@pytest.mark.parametrize("sizes", [[(48, 48), (30, 30)], [(48, 48), (48, 40), (48, 48)]])
def test_tiff_pages_of_different_sizes_are_refused_not_dropped(work, capsys, sizes) -> None:
    with tifffile.TiffWriter(work / "pages.tif") as tif:
        for shape in sizes:
            tif.write(np.zeros(shape, np.uint8))
    line = fails(capsys, work, predict_args(work, work / "pages.tif"), "images of different")
    assert f"holds {len(sizes)} images" in line and "pages.tif" in line


@pytest.mark.parametrize("planes", [2, 3, 4])
def test_a_stack_that_may_be_channels_gets_a_note(work, capsys, planes) -> None:
    image = scene()[0]
    tifffile.imwrite(work / "stack.tif", np.stack([image] * planes))  # axes unnamed: "QYX"
    argv = [a for a in predict_args(work, work / "stack.tif") if a != "-q"]
    works(capsys, argv)
    err = capsys.readouterr().err
    assert f"read as {planes} planes" in err and "--channel-axis 0" in err
    assert tifffile.imread(work / "out" / "stack_labels.tif").shape == (planes, 48, 48)
    # the file's metadata says Z: no note
    tifffile.imwrite(work / "z.tif", np.stack([image] * planes), imagej=True,
                     metadata={"axes": "ZYX"})  # fmt: skip
    works(capsys, [a for a in predict_args(work, work / "z.tif") if a != "-q"])
    assert "planes" not in capsys.readouterr().err


def test_channels_named_by_the_file_are_channels(work, capsys) -> None:
    """An ImageJ hyperstack with 2 channels ('CYX'): refused by a 1-channel model with the
    reason, used as channels by a 2-channel model."""
    image = scene()[0]
    tifffile.imwrite(work / "two.tif", np.stack([image, 255 - image]), imagej=True,
                     metadata={"axes": "CYX"})  # fmt: skip
    line = fails(capsys, work, predict_args(work, work / "two.tif"), "2 channels (axis 0")
    assert "the model takes 1" in line
    save_model(work / "model2.pt", tiny_model(in_channels=2))
    argv = ["predict", work / "two.tif", "--model", work / "model2.pt", "--out", work / "o2", "-q"]
    works(capsys, argv)
    assert tifffile.imread(work / "o2" / "two_labels.tif").shape == (48, 48)


def test_a_plain_zarr_with_channels_last_is_refused_not_read_as_planes(work, capsys) -> None:
    """(48, 48, 3) in a zarr without axes: not 48 planes 3 pixels wide."""
    zarr = pytest.importorskip("zarr")
    image = scene()[0]
    store = zarr.open(str(work / "rgb.zarr"), mode="w", shape=(48, 48, 3), dtype="u1")
    store[:] = np.stack([image] * 3, axis=-1)
    line = fails(capsys, work, predict_args(work, work / "rgb.zarr"), "3 values per pixel")
    assert "--channel-axis -1" in line
    save_model(work / "model3.pt", tiny_model(in_channels=3))
    works(capsys, ["predict", work / "rgb.zarr", "--model", work / "model3.pt", "--out",
                   work / "o3", "--channel-axis", "-1", "-q"])  # fmt: skip
    assert zarr.open(str(work / "o3" / "rgb_labels.zarr"), mode="r").shape == (48, 48)


def test_a_single_plane_tiff_with_a_unit_axis_is_one_plane(work, capsys) -> None:
    image = scene()[0]
    tifffile.imwrite(work / "hw1.tif", image[..., None])
    works(capsys, predict_args(work, work / "hw1.tif"))
    assert tifffile.imread(work / "out" / "hw1_labels.tif").shape == (48, 48)


def test_png_labels_that_cannot_hold_the_values_are_refused_before_work(work, capsys) -> None:
    model = tiny_model()
    model.record.classes.label_values = [0, 70000]  # a dense model of ids above 16 bits
    model.record.classes.label_mode = "dense"
    save_model(work / "model.pt", model)
    line = fails(capsys, work, predict_args(work, work / "img.tif", "--format", "png"),
                 "label values up to 70000, more than a PNG holds")  # fmt: skip
    assert "--format tif" in line and "part-" not in line  # not a staging file's name
    works(capsys, predict_args(work, work / "img.tif"))  # as TIFF
    assert tifffile.imread(work / "out" / "img_labels.tif").max() in (0, 70000)


def test_object_class_without_instances_is_refused(work, capsys) -> None:
    fails(capsys, work, predict_args(work, work / "img.tif", "--object-class", "1"),
          "--object-class names the class split into objects: add --instances")  # fmt: skip


def test_a_zarr_too_large_for_the_disk_is_refused_at_once(work, capsys) -> None:
    import shutil
    import time

    zarr = pytest.importorskip("zarr")
    free = shutil.disk_usage(work).free
    side = int((2 * free) ** 0.5) + 1  # a uint8 label plane larger than the free space
    zarr.open(str(work / "huge.zarr"), mode="w", shape=(side, side), chunks=(4096, 4096),
              dtype="u1")  # fmt: skip
    start = time.perf_counter()
    fails(capsys, work, predict_args(work, work / "huge.zarr"), "GB free under")
    assert time.perf_counter() - start < 10


@pytest.mark.parametrize("option", ["--threads", "--workers", "--threads-per-worker"])
def test_thread_and_worker_counts_are_bounded(work, capsys, option) -> None:
    from napari_unet.cli.options import max_threads

    capsys.readouterr()
    assert main([str(a) for a in predict_args(work, work / "img.tif", option, "100000")]) == 2
    assert f"100000 is more than {max_threads()}" in capsys.readouterr().err
    assert not (work / "out").exists()


def test_rgb_image_to_a_grey_model_is_converted_to_grey(work, capsys) -> None:
    """Documented behaviour, not an error: a colour image becomes the mean of R, G, B."""
    grey = scene()[0]
    iio.imwrite(work / "rgb.png", np.stack([grey, grey // 2, 255 - grey], axis=-1))
    works(capsys, predict_args(work, work / "rgb.png"))
    expected = predict_tiled(
        load_model(work / "model.pt"),
        np.stack([grey, grey // 2, 255 - grey], -1).astype(np.float32).mean(-1),
    )
    np.testing.assert_array_equal(
        tifffile.imread(work / "out" / "rgb_labels.tif"), expected.labels
    )


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a,
        lambda a: a.astype(np.uint16) * 257,
        lambda a: a.astype(np.float64) / 255,
        lambda a: a.astype(np.float32) * 1e6 - 5e6,
    ],
    ids=["uint8", "uint16", "float64", "float32 big"],
)
def test_predict_any_range_gives_the_same_labels(work, capsys, convert) -> None:
    tifffile.imwrite(work / "x.tif", convert(scene()[0]))
    works(capsys, predict_args(work, work / "x.tif", "--probabilities"))
    ref = predict_tiled(load_model(work / "model.pt"), scene()[0])
    probs = tifffile.imread(work / "out" / "x_probabilities.tif")
    np.testing.assert_allclose(probs, ref.probabilities, atol=2e-4)


@pytest.mark.parametrize("shape", [(1, 40), (40, 1), (1, 1), (5, 9)])
def test_predict_images_smaller_than_a_tile(work, capsys, shape) -> None:
    tifffile.imwrite(work / "small.tif", np.arange(np.prod(shape), dtype=np.uint8).reshape(shape))
    works(capsys, predict_args(work, work / "small.tif"))
    assert tifffile.imread(work / "out" / "small_labels.tif").shape == shape


def test_predict_constant_image(work, capsys) -> None:
    tifffile.imwrite(work / "flat.tif", np.full((48, 48), 700, np.uint16))
    works(capsys, predict_args(work, work / "flat.tif", "--probabilities"))
    probs = tifffile.imread(work / "out" / "flat_probabilities.tif")
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=0), 1, atol=1e-5)


def test_one_image_named_twice_by_different_paths_is_predicted_once(work, capsys) -> None:
    """``x.tif`` and ``sub/../x.tif`` are one file: predicted once, not refused as two
    inputs that would write to one output."""
    (work / "sub").mkdir()
    roundabout = work / "sub" / ".." / "img.tif"
    works(
        capsys,
        ["predict", work / "img.tif", roundabout, *predict_args(work, "-")[2:], "--probabilities"],
    )
    assert sorted(p.name for p in (work / "out").iterdir()) == [
        "img_labels.tif",
        "img_probabilities.tif",
    ]


def test_output_folder_is_a_file(work, capsys) -> None:
    (work / "out").write_text("my notes")
    fails(capsys, work, predict_args(work, work / "img.tif"), "exists and is not a folder")


@pytest.mark.parametrize(
    "option", [["--tile-size", "0"], ["--tile-size", "-3"], ["--batch-size", "0"]]
)
def test_predict_non_positive_sizes_refused(work, capsys, option) -> None:
    before = tree(work)
    rc = main([str(a) for a in predict_args(work, work / "img.tif", *option)])
    assert rc in (1, 2)
    assert option[0] in capsys.readouterr().err
    assert tree(work) == before


def test_failed_predict_creates_no_output_folder(work, capsys) -> None:
    image = scene()[0].astype(np.float32)
    image[0, 0] = np.nan
    tifffile.imwrite(work / "nan.tif", image)
    assert main([str(a) for a in predict_args(work, work / "nan.tif")]) == 1
    assert not (work / "out").exists()


# ---------------------------------------------------------------------------- train
def _labels(kind: str) -> tuple[np.ndarray, str]:
    _, labels = scene()
    if kind == "empty":
        return np.zeros_like(labels), "no annotated pixels"
    if kind == "single class":
        return (labels > 0).astype(np.uint8), "only one class"
    if kind == "fractional":
        return labels.astype(np.float32) + 0.5, "whole numbers"
    if kind == "negative":
        return labels.astype(np.int16) - 1, "must not be negative"
    if kind == "shape mismatch":
        return labels[:40], "does not match"
    if kind == "huge values as scribbles":
        return labels.astype(np.uint32) * 2_000_000_000, "'dense'"
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["single class", "fractional", "negative", "shape mismatch", "huge values as scribbles"],
)
def test_train_bad_labels_write_no_model(work, capsys, kind) -> None:
    labels, phrase = _labels(kind)
    tifffile.imwrite(work / "bad_lab.tif", labels)
    fails(capsys, work, train_args(work, work / "img.tif", work / "bad_lab.tif"), phrase)
    assert not (work / "new.pt").exists()


def test_train_empty_labels_new_model(work, capsys) -> None:
    tifffile.imwrite(work / "zero.tif", np.zeros((48, 48), np.uint8))
    argv = ["train", "--images", work / "img.tif", "--labels", work / "zero.tif",
            "--out", work / "new.pt", "-q"]  # fmt: skip
    fails(capsys, work, argv, "no annotated pixels")


def test_train_empty_labels_fine_tuning(work, capsys) -> None:
    tifffile.imwrite(work / "zero.tif", np.zeros((48, 48), np.uint8))
    fails(capsys, work, train_args(work, work / "img.tif", work / "zero.tif"), "no annotated")


@pytest.mark.parametrize("value", [np.nan, -np.inf])
def test_train_non_finite_image(work, capsys, value) -> None:
    image = scene()[0].astype(np.float64)
    image[30, 30] = value
    tifffile.imwrite(work / "bad.tif", image)
    fails(capsys, work, train_args(work, work / "bad.tif", work / "lab.tif"), "NaN or infinite")


@pytest.mark.parametrize(
    "option, phrase",
    [
        (["--lr", "nan"], "learning rate"),
        (["--lr", "-1"], "learning rate"),
        (["--steps", "0"], "steps must be >= 1"),
        (["--tile-size", "0"], "tile size must be >= 1"),
        (["--batch-size", "0"], "batch size"),
        (["--class-names", "only-one"], "1 class names for 2 classes"),
        (["--mode", "instances", "--weight-map", "--sigma", "0"], "sigma must be > 0"),
        (["--mode", "scribbles", "--weight-map"], "--weight-map needs --mode instances"),
    ],
)
def test_train_bad_settings(work, capsys, option, phrase) -> None:
    argv = train_args(work, work / "img.tif", work / "lab.tif")
    fails(capsys, work, [*argv, *option], phrase)


def test_train_channel_axis_on_a_grey_image(work, capsys) -> None:
    argv = train_args(work, work / "img.tif", work / "lab.tif", "--channel-axis", "0")
    fails(capsys, work, argv, "at least 3D")


def test_train_dense_single_value_and_colour_grey_mix(work, capsys) -> None:
    tifffile.imwrite(work / "all255.tif", np.full((48, 48), 255, np.uint8))
    argv = train_args(work, work / "img.tif", work / "all255.tif", "--mode", "dense")
    fails(capsys, work, argv, "dense labels need at least two values")
    (work / "imgs").mkdir()
    (work / "labs").mkdir()
    grey, labels = scene()
    iio.imwrite(work / "imgs" / "a.png", np.stack([grey, grey // 2, 255 - grey], -1))
    iio.imwrite(work / "imgs" / "b.png", grey)
    tifffile.imwrite(work / "labs" / "a.tif", labels)
    tifffile.imwrite(work / "labs" / "b.tif", labels)
    argv = ["train", "--images", work / "imgs", "--labels", work / "labs",
            "--out", work / "new.pt", "-q", "--steps", "1"]  # fmt: skip
    fails(capsys, work, argv, "some images are colour and some grey: pass --grey")


def test_train_huge_instance_ids_work(work, capsys) -> None:
    cells = np.zeros((48, 48), np.uint32)
    cells[20:30, 5:20] = 4_000_000_000
    cells[20:30, 23:40] = 3_999_999_999
    tifffile.imwrite(work / "cells.tif", cells)
    argv = train_args(work, work / "img.tif", work / "cells.tif", "--mode", "instances",
                      "--weight-map")  # fmt: skip
    works(capsys, argv)
    model = load_model(work / "new.pt")
    assert model.record.classes.label_mode == "instances"


def test_diverging_training_keeps_the_previous_model_file(work, capsys) -> None:
    """--overwrite of an existing model, and the loss becomes NaN: the old file stays."""
    save_model(work / "new.pt", tiny_model())
    argv = train_args(work, work / "img.tif", work / "lab.tif", "--overwrite", "--lr", "1e30",
                      "--optimizer", "sgd", "--steps", "20")  # fmt: skip
    line = fails(capsys, work, argv, "became")  # the loss, or first the weights
    assert "restored" in line and "lower learning rate" in line


# ---------------------------------------------------------------------------- evaluate
def test_evaluate_unreadable_prediction(work, capsys, library_logs_on_stderr) -> None:
    (work / "pred.tif").write_bytes(tifffile_bytes()[:300])
    argv = ["evaluate", "--predictions", work / "pred.tif", "--labels", work / "lab.tif", "-q"]
    fails(capsys, work, argv, "pred.tif: not a readable TIFF file")
    tifffile.imwrite(work / "pred.tif", np.zeros((10, 10), np.uint8))
    fails(capsys, work, argv, "differs from ground truth")
