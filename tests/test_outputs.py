"""Nothing the user made is overwritten, and a failing batch writes nothing.

Outputs are recognised by the mark napari-unet writes into them (io/outputs.py), never by
their names; where a run will write is checked before it starts; a batch's outputs
appear only when every input succeeded. docs/bad-inputs.md, "Image files and outputs".
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_unet import UNet, save_model
from napari_unet.cli import main
from napari_unet.io.outputs import STAGING_PREFIX, OutputBatch
from napari_unet.io.writable import check_writable
from napari_unet.unet.errors import InputError
from napari_unet.unet.record import Normalization

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_model() -> UNet:
    torch.manual_seed(0)
    model = UNet(1, 2, depth=2, base_channels=4, dropout=0).eval()
    model.record.normalization = Normalization.from_dict(
        {"method": "percentile", "low": 1.0, "high": 99.8}
    )
    return model


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (40, 40), dtype=np.uint8)


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: its hash and modification time."""
    return {
        str(p.relative_to(folder)): (
            hashlib.sha256(p.read_bytes()).hexdigest(),
            p.stat().st_mtime_ns,
        )
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt"
    save_model(path, tiny_model())
    return path


def predict(folder: Path, out: Path, model_file: Path, *extra: str) -> int:
    return main(["predict", str(folder), "--out", str(out), "--model", str(model_file), "-q",
                 *extra])  # fmt: skip


# ---------------------------------------------------------------- the user's files
@pytest.mark.parametrize("suffix", ["_labels", "_probabilities", "_instances"])
def test_a_users_file_named_like_an_output_is_never_overwritten(
    tmp_path, model_file, capsys, suffix
) -> None:
    """predict FOLDER --out FOLDER --overwrite, where the folder holds x.tif and the user's
    own x<suffix>.tif: that file is an input, and nothing is written."""
    folder = tmp_path / "data"
    folder.mkdir()
    tifffile.imwrite(folder / "x.tif", image())
    tifffile.imwrite(folder / f"x{suffix}.tif", image(1))  # ground truth named like an output
    before = snapshot(folder)
    extra = ["--overwrite", "--probabilities", "--instances"]
    assert predict(folder, folder, model_file, *extra) == 1
    err = capsys.readouterr().err
    assert "refusing to write over an input" in err and f"x{suffix}.tif" in err
    assert snapshot(folder) == before


def test_earlier_outputs_are_recognised_and_replaced_only_with_the_flag(
    tmp_path, model_file, capsys
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    tifffile.imwrite(folder / "x.tif", image())
    assert predict(folder, folder, model_file) == 0
    assert sorted(os.listdir(folder)) == ["x.tif", "x_labels.tif"]
    # a second run skips its own output as an input (by its mark) ...
    assert predict(folder, folder, model_file) == 1
    assert "x_labels.tif: exists; pass --overwrite" in capsys.readouterr().err
    # ... and replaces it with --overwrite
    os.utime(folder / "x_labels.tif", ns=(0, 0))
    assert predict(folder, folder, model_file, "--overwrite") == 0
    assert (folder / "x_labels.tif").stat().st_mtime_ns > 0
    assert sorted(os.listdir(folder)) == ["x.tif", "x_labels.tif"]


def test_a_user_file_at_an_output_name_survives_overwrite(tmp_path, model_file, capsys) -> None:
    """The output folder holds a file of the user's where an output goes (not an input)."""
    tifffile.imwrite(tmp_path / "x.tif", image())
    out = tmp_path / "out"
    out.mkdir()
    tifffile.imwrite(out / "x_labels.tif", image(2))  # edited and saved by another tool
    before = snapshot(out)
    assert main(["predict", str(tmp_path / "x.tif"), "--out", str(out), "--model",
                 str(model_file), "--overwrite", "-q"]) == 1  # fmt: skip
    assert "was not written by napari-unet: not replaced" in capsys.readouterr().err
    assert snapshot(out) == before


def test_train_replaces_only_a_model_file(tmp_path, model_file, capsys) -> None:
    tifffile.imwrite(tmp_path / "img.tif", image())
    labels = np.zeros((40, 40), np.uint8)
    labels[2:6, 2:30], labels[20:24, 2:30] = 1, 2
    tifffile.imwrite(tmp_path / "lab.tif", labels)
    (tmp_path / "notes.pt").write_bytes(b"my notes, not a model")
    argv = ["train", "--images", str(tmp_path / "img.tif"), "--labels",
            str(tmp_path / "lab.tif"), "--from", str(model_file), "--steps", "1",
            "--tile-size", "16", "--overwrite", "-q"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "notes.pt")]) == 1
    assert "not written by napari-unet" in capsys.readouterr().err
    assert (tmp_path / "notes.pt").read_bytes() == b"my notes, not a model"
    assert main([*argv, "--out", str(model_file)]) == 0  # a model file is replaced


def test_the_api_replaces_only_its_own_kind_of_file(tmp_path) -> None:
    """save_model (overwrite=True by default) and export_torchscript(overwrite=True) replace
    a file only when napari-unet wrote it as the same kind: a model, an export."""
    from napari_unet.interchange.torchscript import export_torchscript

    model = tiny_model()
    users = tmp_path / "cells.tif"
    tifffile.imwrite(users, image())
    (tmp_path / "notes.pt").write_bytes(b"mine")
    save_model(tmp_path / "model.pt", model)
    export_torchscript(model, tmp_path / "traced.pt")
    before = snapshot(tmp_path)
    refusals = [
        (lambda: save_model(users, model), "not a napari-unet model file: not replaced"),
        (lambda: save_model(tmp_path / "notes.pt", model), "not a napari-unet model file"),
        (lambda: save_model(tmp_path / "traced.pt", model), "not a napari-unet model file"),
        (
            lambda: export_torchscript(model, users, overwrite=True),
            "not written by napari-unet",
        ),
        (
            lambda: export_torchscript(model, tmp_path / "model.pt", overwrite=True),
            "model file, not a TorchScript export",
        ),
    ]
    for call, message in refusals:
        with pytest.raises(InputError, match=message):
            call()
    assert snapshot(tmp_path) == before
    save_model(tmp_path / "model.pt", model)  # its own kind is replaced
    export_torchscript(model, tmp_path / "traced.pt", overwrite=True)


def test_a_report_or_model_never_replaces_another_kind_of_output(
    tmp_path, model_file, capsys
) -> None:
    """evaluate --json over a model file or over the prediction it scores, and train --out
    over a prediction, are refused even with --overwrite."""
    tifffile.imwrite(tmp_path / "x.tif", image())
    out = tmp_path / "out"
    assert predict(tmp_path / "x.tif", out, model_file) == 0
    prediction = out / "x_labels.tif"
    tifffile.imwrite(tmp_path / "x_mask.tif", tifffile.imread(prediction))
    before = snapshot(tmp_path)
    score = ["evaluate", "--predictions", str(prediction), "--labels",
             str(tmp_path / "x_mask.tif"), "--overwrite", "-q", "--json"]  # fmt: skip
    assert main([*score, str(model_file)]) == 1
    assert "is a napari-unet model file, not a JSON report" in capsys.readouterr().err
    assert main([*score, str(prediction)]) == 1
    assert "refusing to write over an input" in capsys.readouterr().err
    labels = np.zeros((40, 40), np.uint8)
    labels[2:6, 2:30], labels[20:24, 2:30] = 1, 2
    tifffile.imwrite(tmp_path / "lab.tif", labels)
    assert main(["train", "--images", str(tmp_path / "x.tif"), "--labels",
                 str(tmp_path / "lab.tif"), "--steps", "1", "--tile-size", "16",
                 "--overwrite", "-q", "--out", str(prediction)]) == 1  # fmt: skip
    assert "image or label image, not a model file" in capsys.readouterr().err
    after = snapshot(tmp_path)
    after.pop("lab.tif")
    assert after == before
    assert main([*score, str(tmp_path / "report.json")]) == 0
    assert main([*score, str(tmp_path / "report.json")]) == 0  # its own report is replaced


# ---------------------------------------------------------------- where a run writes
@pytest.mark.parametrize("depth", [0, 1, 2])
def test_train_into_a_location_under_a_file_fails_before_training(
    tmp_path, model_file, capsys, monkeypatch, depth
) -> None:
    import napari_unet.unet.training as training

    def must_not_train(*args, **kwargs):
        raise AssertionError("training started although the output cannot be written")

    monkeypatch.setattr(training, "train", must_not_train)
    tifffile.imwrite(tmp_path / "img.tif", image())
    tifffile.imwrite(tmp_path / "lab.tif", np.ones((40, 40), np.uint8))
    (tmp_path / "afile.txt").write_text("x")
    out = tmp_path / "afile.txt" / Path(*(["sub"] * depth)) / "m.pt"
    before = snapshot(tmp_path)
    t0 = time.perf_counter()
    rc = main(["train", "--images", str(tmp_path / "img.tif"), "--labels",
               str(tmp_path / "lab.tif"), "--steps", "1500", "--out", str(out), "-q"])  # fmt: skip
    assert rc == 1 and time.perf_counter() - t0 < 5
    assert "afile.txt is a file, not a folder" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only folders")
def test_an_unwritable_folder_is_refused(tmp_path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(InputError, match="is not writable"):
            check_writable(folder / "m.pt")
    finally:
        folder.chmod(0o700)


# ---------------------------------------------------------------- a failing batch
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n_good=st.integers(1, 3), bad_at=st.integers(0, 3), earlier=st.booleans())
def test_a_failing_batch_writes_nothing(tmp_path_factory, n_good, bad_at, earlier) -> None:
    """One unreadable file among good ones, anywhere in the order: no output is written,
    no earlier output is replaced, and no staged file or empty folder is left."""
    work = tmp_path_factory.mktemp("batch")
    save_model(work / "model.pt", tiny_model())
    folder = work / "in"
    folder.mkdir()
    names = [f"{i:02d}.tif" for i in range(n_good + 1)]
    bad = names[min(bad_at, n_good)]
    for i, name in enumerate(names):
        if name == bad:
            (folder / name).write_bytes(b"II*\x00 not really a TIFF")
        else:
            tifffile.imwrite(folder / name, image(i))
    out = work / "out" / "nested"
    if earlier:  # an earlier run's output, which --overwrite would replace on success
        good = next(n for n in names if n != bad)
        assert main(["predict", str(folder / good), "--out", str(out), "--model",
                     str(work / "model.pt"), "-q"]) == 0  # fmt: skip
    before = snapshot(work)
    rc = main(["predict", str(folder), "--out", str(out), "--model", str(work / "model.pt"),
               "--overwrite", "--probabilities", "-q"])  # fmt: skip
    assert rc == 1
    assert snapshot(work) == before
    if not earlier:
        assert not (work / "out").exists()
    else:
        assert not any(p.name.startswith(STAGING_PREFIX) for p in out.iterdir())


def test_output_batch_commits_all_or_nothing(tmp_path) -> None:
    (tmp_path / "kept.txt").write_text("earlier")
    with pytest.raises(RuntimeError), OutputBatch() as batch:
        batch.stage(tmp_path / "kept.txt").write_text("new")
        batch.stage(tmp_path / "new.txt").write_text("new")
        raise RuntimeError("the next input fails")
    assert sorted(os.listdir(tmp_path)) == ["kept.txt"]
    assert (tmp_path / "kept.txt").read_text() == "earlier"
    batch = OutputBatch()
    batch.stage(tmp_path / "kept.txt").write_text("new")
    (batch.stage(tmp_path / "store.zarr")).mkdir()
    assert sorted(p.name for p in batch.commit()) == ["kept.txt", "store.zarr"]
    assert sorted(os.listdir(tmp_path)) == ["kept.txt", "store.zarr"]
    assert (tmp_path / "kept.txt").read_text() == "new"


def test_a_folder_that_refuses_new_files_is_refused(tmp_path, monkeypatch) -> None:
    """As root a read-only folder is still writable; simulate the refusal the OS gives."""
    import tempfile

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(InputError, match="is not writable \\(Permission denied\\)"):
        check_writable(tmp_path / "m.pt")
