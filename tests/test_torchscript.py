"""TorchScript export: the file runs without napari_unet's Python code and matches the model."""

import pytest
import torch

from napari_unet import CheckpointError, UNet
from napari_unet.interchange.torchscript import export_torchscript, read_torchscript_info
from napari_unet.unet.errors import InputError
from napari_unet.unet.record import ModelRecord, Normalization, summary


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(**kwargs):
    torch.manual_seed(0)
    model = UNet(depth=2, base_channels=4, n_classes=3, **kwargs)
    model.record.classes.names = ["a", "b", "c"]
    model.record.normalization = Normalization("none", None, None)
    return model


@pytest.mark.parametrize("padding,batch_norm", [("valid", True), ("same", False)])
def test_torchscript_matches_eager_model_on_valid_sizes(tmp_path, padding, batch_norm):
    model = _model(padding=padding, batch_norm=batch_norm)
    model.train()  # export must trace the inference network (dropout off, running stats)
    path = export_torchscript(model, tmp_path / "unet.pt")
    assert model.training, "export must not change the caller's model"
    loaded = torch.jit.load(str(path))
    model.eval()
    step = 2**model.depth
    # sizes other than the traced one, non-square, batch of two: the graph is size-generic
    for h, w in [(model.min_input_size + 3 * step, model.min_input_size + step), (96, 112)]:
        x = torch.randn(2, 1, h, w)
        with torch.no_grad():
            expected, got = model(x), loaded(x)
        out = (h - 2 * model.margin, w - 2 * model.margin)
        assert tuple(expected.shape) == (2, 3, *out)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_stored_size_rule_is_the_models_rule(tmp_path):
    """The traced graph does not check sizes: the rule stored with it must be exact."""
    model = _model()
    info = read_torchscript_info(export_torchscript(model, tmp_path / "unet.pt"))
    smallest, step = info["min_input_size"], info["size_step"]
    for side in range(1, 200):
        by_rule = side >= smallest and (side - smallest) % step == 0
        assert by_rule == model.is_valid_input_size(side), side


def test_info_stored_in_the_file(tmp_path):
    model = _model()
    info = read_torchscript_info(export_torchscript(model, tmp_path / "unet.pt"))
    assert info["architecture"] == model.config()
    assert ModelRecord.from_dict(info["record"]) == model.record
    assert info["summary"] == summary(model, detail=True)
    assert "3 classes (a, b, c)" in info["summary"]
    assert info["margin"] == model.margin == 20  # depth 2: 2 * (2 + 4) + 2 * 4
    assert info["min_input_size"] == 44 and info["size_step"] == 4


def test_existing_file_kept_without_overwrite(tmp_path):
    target = tmp_path / "unet.pt"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        export_torchscript(_model(), target)
    assert target.read_bytes() == b"keep me"
    with pytest.raises(InputError, match="not written by napari-unet"):  # not our export
        export_torchscript(_model(), target, overwrite=True)
    assert target.read_bytes() == b"keep me"
    target.unlink()
    export_torchscript(_model(), target)
    export_torchscript(_model(), target, overwrite=True)  # an earlier export is replaced
    assert torch.jit.load(str(target)) is not None
    assert [p.name for p in tmp_path.iterdir()] == ["unet.pt"]  # no temporary left behind


def test_not_torchscript_is_a_clear_error(tmp_path):
    bogus = tmp_path / "bogus.pt"
    bogus.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="not a readable TorchScript"):
        read_torchscript_info(bogus)
