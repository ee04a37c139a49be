import os
import pickle

import numpy as np
import pytest
import torch

from napari_unet import CheckpointError, UNet, load_model, predict_tiled, save_model
from napari_unet.unet.record import Classes, Normalization


def _model():
    torch.manual_seed(0)
    model = UNet(depth=2, base_channels=4, n_classes=3, batch_norm=True)
    model.record.classes = Classes(names=["a", "b", "c"])
    model.record.normalization = Normalization("none", None, None)
    return model.eval()


def test_save_load_identical_predictions(tmp_path):
    model = _model()
    path = save_model(tmp_path / "m.pt", model)
    loaded = load_model(path)
    assert loaded.config() == model.config()
    assert loaded.record == model.record
    image = np.random.default_rng(0).random((40, 33)).astype(np.float32)
    a, b = predict_tiled(model, image), predict_tiled(loaded, image)
    assert np.array_equal(a.logits, b.logits)


def test_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "napari-unet", "payload": Evil()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)
    assert not marker.exists()
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(CheckpointError):
        load_model(tmp_path / "evil.pkl")
    assert not marker.exists()


def test_corrupt_truncated_foreign_files(tmp_path):
    good = save_model(tmp_path / "good.pt", _model())
    data = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(5000))
    torch.save(_model().state_dict(), tmp_path / "bare.pt")  # a bare state dict
    for name in ("trunc.pt", "random.pt", "bare.pt", "missing.pt"):
        with pytest.raises(CheckpointError):
            load_model(tmp_path / name)


def test_wrong_architecture_weights_refused(tmp_path):
    model = _model()
    save_model(tmp_path / "m.pt", model)
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    other = UNet(depth=3, base_channels=4)
    payload["state_dict"] = other.state_dict()
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(tmp_path / "mismatch.pt")


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    path = save_model(tmp_path / "m.pt", _model())
    before = path.read_bytes()

    def broken_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, UNet(depth=1, base_channels=2))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temp file left


def test_refuse_overwrite_when_asked(tmp_path):
    path = save_model(tmp_path / "m.pt", _model())
    with pytest.raises(FileExistsError):
        save_model(path, _model(), overwrite=False)


def test_metadata_must_be_json(tmp_path):
    model = _model()
    model.record.extra["bad"] = object()
    with pytest.raises(ValueError, match="JSON"):
        save_model(tmp_path / "m.pt", model)
    assert not (tmp_path / "m.pt").exists()


def test_saved_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = save_model(tmp_path / "m.pt", _model())
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
