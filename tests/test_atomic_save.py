"""Saving never destroys the previous file: faults injected at every stage of a save.

``save_model``, ``export_torchscript`` and ``napari-unet train --out`` write to a temporary
name beside the target and rename it over the target only when complete. Here the write
fails half-way through the file (disk full), the flush or the fsync fails (I/O error), the
final rename fails, and Ctrl+C arrives in the middle of the write. Each time the file
that was there stays byte-identical and loadable as the model it was, and no temporary
file is left in the folder. Then, with the fault gone, the same call replaces the file:
so the checks above are not passed by a save that writes nothing.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from napari_unet import UNet, export_torchscript, load_model, save_model
from napari_unet.cli import main
from napari_unet.unet.record import Normalization

FAULTS = ("write", "flush", "fsync", "replace", "interrupt")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _model(seed: int) -> UNet:
    torch.manual_seed(seed)
    model = UNet(1, 2, depth=2, base_channels=4, dropout=0).eval()
    model.record.normalization = Normalization("none", None, None)
    model.record.extra["seed"] = seed
    return model


def _same_weights(a: UNet, b: UNet) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class Injected:
    """Counts how often the injected fault fired (a fault never reached proves nothing)."""

    def __init__(self) -> None:
        self.hits = 0


def _half_then_raise(real_save, exc: BaseException, injected: Injected):
    """A stand-in for torch.save / torch.jit.save that writes half the file, then raises."""

    def save(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        data = buffer.getvalue()
        injected.hits += 1
        if isinstance(f, (str, os.PathLike)):
            with builtins.open(f, "wb") as out:
                out.write(data[: len(data) // 2])
        else:
            f.write(data[: len(data) // 2])
            f.flush()
        raise exc

    return save


def inject(fault: str, monkeypatch, folder: Path, *, jit: bool = False) -> tuple[type, Injected]:
    """Make the next save into ``folder`` fail at ``fault``; returns the exception type."""
    injected = Injected()
    name = "save"
    module = torch.jit if jit else torch
    if fault == "write":
        exc = OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(module, name, _half_then_raise(getattr(module, name), exc, injected))
        return OSError, injected
    if fault == "interrupt":
        exc = KeyboardInterrupt()
        monkeypatch.setattr(module, name, _half_then_raise(getattr(module, name), exc, injected))
        return KeyboardInterrupt, injected
    if fault == "flush":
        real_open = builtins.open

        class FailingFlush(io.BufferedWriter):
            def flush(self):
                injected.hits += 1
                raise OSError(errno.EIO, "Input/output error")

        def opener(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, os.PathLike)) and Path(file).parent == folder:
                if "w" in mode and "b" in mode:
                    return FailingFlush(io.FileIO(file, "w"))
            return real_open(file, mode, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", opener)
        return OSError, injected
    if fault == "fsync":

        def fsync(fd):
            injected.hits += 1
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(os, "fsync", fsync)
        return OSError, injected
    if fault == "replace":
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if Path(dst).parent == folder:
                injected.hits += 1
                raise OSError(errno.EACCES, "Permission denied")
            return real_replace(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, "replace", replace)
        return OSError, injected
    raise AssertionError(fault)


# ---------------------------------------------------------------------------- save_model
@pytest.mark.parametrize("fault", FAULTS)
def test_save_model_keeps_the_old_file_when_the_save_fails(tmp_path, monkeypatch, fault):
    old, new = _model(0), _model(1)
    assert not _same_weights(old, new)
    path = save_model(tmp_path / "m.pt", old)
    before = path.read_bytes()

    error, injected = inject(fault, monkeypatch, tmp_path)
    with pytest.raises(error):
        save_model(path, new)
    assert injected.hits >= 1
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temporary file
    kept = load_model(path)
    assert _same_weights(kept, old) and kept.record.extra["seed"] == 0

    # the fault gone, the same call replaces the file
    save_model(path, new)
    assert _same_weights(load_model(path), new)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


@pytest.mark.parametrize("fault", FAULTS)
def test_failed_first_save_leaves_nothing(tmp_path, monkeypatch, fault):
    error, injected = inject(fault, monkeypatch, tmp_path)
    with pytest.raises(error):
        save_model(tmp_path / "m.pt", _model(0))
    assert injected.hits >= 1
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- TorchScript
@pytest.mark.parametrize("fault", ("write", "replace", "interrupt"))
def test_export_torchscript_keeps_the_old_file(tmp_path, monkeypatch, fault):
    old, new = _model(0), _model(1)
    path = export_torchscript(old, tmp_path / "m.ts.pt")
    before = path.read_bytes()
    side = next(n for n in range(40, 200) if old.is_valid_input_size(n))
    x = torch.from_numpy(np.random.default_rng(0).random((1, 1, side, side), np.float32))
    with torch.no_grad():
        expected = old(x)

    error, injected = inject(fault, monkeypatch, tmp_path, jit=True)
    with pytest.raises(error):
        export_torchscript(new, path, overwrite=True)
    assert injected.hits >= 1
    monkeypatch.undo()

    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ts.pt"]
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(path))(x), expected)

    export_torchscript(new, path, overwrite=True)
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(path))(x), new(x))


# ---------------------------------------------------------------------------- CLI
@pytest.fixture
def work(tmp_path) -> Path:
    """img.tif + lab.tif (scribbles 1 / 2 on a bright band), and out/model.pt to replace."""
    rng = np.random.default_rng(0)
    image = rng.normal(60, 10, (48, 48))
    image[24:32] += 100
    labels = np.zeros((48, 48), np.uint8)
    labels[4:7, 4:44] = 1
    labels[26:29, 4:44] = 2
    tifffile.imwrite(tmp_path / "img.tif", np.clip(image, 0, 255).astype(np.uint8))
    tifffile.imwrite(tmp_path / "lab.tif", labels)
    (tmp_path / "out").mkdir()
    save_model(tmp_path / "out" / "model.pt", _model(0))
    return tmp_path


@pytest.mark.parametrize("fault", FAULTS)
def test_cli_train_keeps_the_old_model_when_saving_fails(work, monkeypatch, capsys, fault):
    out = work / "out" / "model.pt"
    before = out.read_bytes()
    args = ["train", "--images", str(work / "img.tif"), "--labels", str(work / "lab.tif"),
            "--preset", "tiny", "--steps", "1", "--tile-size", "16", "--batch-size", "1",
            "--out", str(out), "--overwrite", "-q"]  # fmt: skip
    _, injected = inject(fault, monkeypatch, out.parent)
    rc = main(args)
    assert injected.hits >= 1
    monkeypatch.undo()
    err = capsys.readouterr().err.strip().splitlines()
    if fault == "interrupt":
        assert rc == 130 and err[-1] == "napari-unet: interrupted", err
    else:
        assert rc == 1, err
        assert len(err) == 1 and err[0].startswith("napari-unet: error: "), err
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.pt"]
    assert _same_weights(load_model(out), _model(0))

    assert main(args) == 0  # without the fault the model is replaced
    assert load_model(out).record.training[-1].steps_done == 1
    assert sorted(p.name for p in out.parent.iterdir()) == ["model.pt"]
