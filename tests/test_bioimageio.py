"""bioimage.io packages: export -> validate (bioimageio.spec, offline) -> import.

The checks use bioimageio.spec's own loader and the package's files as read from disk, not
napari-unet's code paths: the test pair is recomputed here from the rdf's preprocessing.
"""

import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import napari_unet
from napari_unet import CheckpointError, InputError, UNet, predict_tiled
from napari_unet.interchange.bioimageio import (
    BioimageioNotInstalled,
    PackageError,
    export_bioimageio,
    import_bioimageio,
)
from napari_unet.unet.record import Classes, Normalization, TrainingRun

from .conftest import bundled_nuclei

try:
    import bioimageio.spec as spec
except ImportError:  # the plugin works without the extra; most tests here need it
    spec = None
needs_spec = pytest.mark.skipif(
    spec is None, reason="needs the bioimageio extra (bioimageio.spec)"
)

NAME = "tiny test U-Net"
DESCRIPTION = "A tiny U-Net used by the napari-unet tests."


@pytest.fixture(scope="module", autouse=True)
def _offline_and_one_thread():
    """Fail any network access (export and validation must work offline); one thread."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket, "getaddrinfo", refuse)
        patch.setattr(socket.socket, "connect", refuse)
        yield
    torch.set_num_threads(threads)


def _model(**kwargs):
    torch.manual_seed(0)
    options = {"depth": 2, "base_channels": 4, "batch_norm": True} | kwargs
    model = UNet(**options).eval()
    names = (
        ["membrane", "cell"] if model.n_classes == 2 else [f"c{k}" for k in range(model.n_classes)]
    )
    model.record.classes = Classes(names=names, label_mode="scribbles")
    model.record.training = [
        TrainingRun(steps_done=5, images=["isbi 0"], config={"optimizer": "adam"})
    ]
    return model


def _image(seed=0, shape=(64, 64)):
    rng = np.random.default_rng(seed)
    return (rng.gamma(2.0, 50.0, shape) + 20 * np.arange(shape[1]) / shape[1]).astype(np.uint16)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One model exported once as a zip (reused read-only by several tests)."""
    model = _model()
    path = tmp_path_factory.mktemp("zip") / "unet.zip"
    export_bioimageio(model, path, name=NAME, description=DESCRIPTION, test_image=_image())
    return model, path


def _validate(path):
    descr = spec.load_description(path, perform_io_checks=True)
    assert not isinstance(descr, spec.InvalidDescr), descr.validation_summary.format()
    return descr


# ---------------------------------------------------------------------------- export
@needs_spec
def test_export_validates_and_imports_with_identical_predictions(exported):
    model, path = exported
    descr = _validate(path)
    assert descr.type == "model"
    assert descr.format_version == spec.ModelDescr.implemented_format_version
    assert str(descr.license) == "BSD-3-Clause"
    assert [str(c.doi) for c in descr.cite] == ["10.1007/978-3-319-24574-4_28"]
    assert descr.weights.pytorch_state_dict is not None
    assert descr.weights.torchscript is not None
    arch = descr.weights.pytorch_state_dict.architecture
    assert str(arch.callable) == "UNet" and dict(arch.kwargs) == model.config()

    loaded = import_bioimageio(path)
    assert loaded.config() == model.config()
    assert loaded.record.classes.names == ["membrane", "cell"]
    assert loaded.record.normalization == Normalization("percentile", 1.0, 99.8)
    assert loaded.record.training == model.record.training
    image = _image(seed=3, shape=(70, 90))
    a, b = predict_tiled(model, image), predict_tiled(loaded, image)
    assert np.array_equal(a.logits, b.logits)
    assert np.array_equal(a.labels, b.labels)


@needs_spec
def test_package_test_pair_reproduces(exported):
    model, path = exported
    descr = _validate(path)
    with zipfile.ZipFile(path) as z:
        x = np.load(io.BytesIO(z.read("test_input.npy")))
        y = np.load(io.BytesIO(z.read("test_output.npy")))
    inp, out = descr.inputs[0], descr.outputs[0]
    # the test input has a size the rdf declares valid: min + n * step
    size = inp.axes[2].size
    assert x.shape[0] == 1 and x.shape[1] == 1 and x.shape[2] == x.shape[3]
    assert (x.shape[2] - size.min) % size.step == 0 and size.step == 2**model.depth
    assert model.is_valid_input_size(x.shape[2])
    # the output is smaller by the margin on each side, as the rdf's size offset says
    assert out.axes[2].size.offset == -2 * model.margin
    assert y.shape == (1, 2, x.shape[2] - 2 * model.margin, x.shape[3] - 2 * model.margin)
    # preprocessing exactly as the rdf states it: scale_range over (y, x) per channel
    (step,) = [p for p in inp.preprocessing if p.id == "scale_range"]
    kw = step.kwargs
    assert [str(a) for a in kw.axes] == ["y", "x"]
    lo = np.percentile(x, kw.min_percentile, axis=(2, 3), keepdims=True)
    hi = np.percentile(x, kw.max_percentile, axis=(2, 3), keepdims=True)
    xn = ((x - lo) / (hi - lo + kw.eps)).astype(np.float32)
    loaded = import_bioimageio(path)
    for net in (model, loaded):
        with torch.no_grad():
            got = net(torch.from_numpy(xn)).numpy()
        np.testing.assert_allclose(got, y, rtol=1e-3, atol=1e-4)
    # the TorchScript weights give the same output (deepImageJ and other non-Python tools)
    with zipfile.ZipFile(path) as z:
        scripted = torch.jit.load(io.BytesIO(z.read("weights_torchscript.pt")))
    with torch.no_grad():
        np.testing.assert_allclose(scripted(torch.from_numpy(xn)).numpy(), y, rtol=1e-3, atol=1e-4)


@needs_spec
def test_package_documents_and_shows_the_model(exported):
    import imageio.v3 as iio

    _, path = exported
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        readme = z.read("README.md").decode()
        cover = iio.imread(io.BytesIO(z.read("cover.png")))
    assert {"rdf.yaml", "weights.pt", "unet.py", "cover.png", "README.md"} <= names
    assert "Ronneberger" in readme and "10.1007/978-3-319-24574-4_28" in readme
    assert "## Training data" in readme and "isbi 0" in readme and "licence" in readme
    assert "## Validation" in readme
    h, w = cover.shape[:2]
    assert w == 2 * h and h >= 256 and cover.ndim == 3
    # the right half shows the prediction: not a blank image
    assert cover[:, w // 2 :].std() > 0


@needs_spec
def test_folder_export_same_padding_probabilities(tmp_path):
    model = _model(padding="same", n_classes=3, batch_norm=False)
    folder = export_bioimageio(
        model, tmp_path / "pkg", name=NAME, description=DESCRIPTION, probabilities=True
    )
    assert (folder / "rdf.yaml").is_file()
    descr = _validate(folder)
    out = descr.outputs[0]
    assert [p.id for p in out.postprocessing if p.id != "ensure_dtype"] == ["softmax"]
    y = np.load(folder / "test_output.npy")
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    x = np.load(folder / "test_input.npy")
    assert y.shape[2:] == x.shape[2:]  # same padding keeps the size; a halo is declared
    assert out.axes[2].halo > 0 and x.shape[2] - 2 * out.axes[2].halo >= 1
    loaded = import_bioimageio(folder / "rdf.yaml")  # the description file works too
    assert loaded.config() == model.config()
    assert loaded.record.bioimageio.output == "probabilities"
    # no test image given: the test input is the centre of the bundled sample image
    sample = Path(napari_unet.__file__).parent / "sample_data" / "image.tif"
    if sample.is_file():
        import tifffile

        image = tifffile.imread(sample)
        side = x.shape[-1]
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        expected = image[top : top + side, left : left + side].astype(np.float32)
        assert np.array_equal(x[0, 0], expected)


@needs_spec
def test_rgb_model_library_architecture(tmp_path):
    model = _model(in_channels=3, batch_norm=False)
    image = np.stack([_image(s) for s in range(3)], axis=-1)  # napari RGB layout (H, W, 3)
    path = export_bioimageio(
        model,
        tmp_path / "rgb.zip",
        name=NAME,
        description=DESCRIPTION,
        test_image=image,
        channel_axis=-1,
        architecture="library",
        torchscript=False,
    )
    descr = _validate(path)
    architecture = descr.weights.pytorch_state_dict.architecture
    assert str(architecture.import_from) == "napari_unet.unet.model"
    assert descr.weights.torchscript is None
    loaded = import_bioimageio(path)
    a = predict_tiled(model, image, channel_axis=-1)
    b = predict_tiled(loaded, image, channel_axis=-1)
    assert np.array_equal(a.logits, b.logits)


@needs_spec
def test_bad_export_arguments_write_nothing(tmp_path):
    model = _model()
    with pytest.raises(InputError, match="name"):
        export_bioimageio(model, tmp_path / "a.zip", name="x/y", description=DESCRIPTION)
    with pytest.raises(InputError, match="test image"):
        export_bioimageio(
            model,
            tmp_path / "a.zip",
            name=NAME,
            description=DESCRIPTION,
            test_image=np.zeros((2, 3, 64, 64)),
        )
    with pytest.raises(InputError, match="NaN"):
        export_bioimageio(
            model,
            tmp_path / "a.zip",
            name=NAME,
            description=DESCRIPTION,
            test_image=np.full((64, 64), np.nan),
        )
    assert list(tmp_path.iterdir()) == []


@needs_spec
def test_existing_targets_are_protected(tmp_path):
    model = _model()
    target = tmp_path / "unet.zip"
    target.write_bytes(b"old")
    with pytest.raises(FileExistsError):
        export_bioimageio(model, target, name=NAME, description=DESCRIPTION)
    assert target.read_bytes() == b"old"
    folder = tmp_path / "my_data"
    folder.mkdir()
    (folder / "precious.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not a bioimage.io package"):
        export_bioimageio(model, folder, name=NAME, description=DESCRIPTION, overwrite=True)
    assert (folder / "precious.txt").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my_data", "unet.zip"]
    # overwrite=True replaces only a package napari-unet exported, never a user's zip
    # or another program's package (an rdf.yaml without our config section)
    with pytest.raises(FileExistsError, match="not a bioimage.io package exported"):
        export_bioimageio(model, target, name=NAME, description=DESCRIPTION, overwrite=True)
    assert target.read_bytes() == b"old"
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "rdf.yaml").write_text("type: model\nconfig: {stardist: {}}\n")
    with pytest.raises(FileExistsError, match="not a bioimage.io package exported"):
        export_bioimageio(model, theirs, name=NAME, description=DESCRIPTION, overwrite=True)
    assert (theirs / "rdf.yaml").read_text().startswith("type: model")
    ours = tmp_path / "ours.zip"
    export_bioimageio(model, ours, name=NAME, description=DESCRIPTION)
    export_bioimageio(model, ours, name=NAME, description=DESCRIPTION, overwrite=True)


def test_missing_spec_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "bioimageio.spec", None)  # import now fails
    with pytest.raises(BioimageioNotInstalled, match=r"napari-unet-explorer\[bioimageio\]"):
        export_bioimageio(_model(), tmp_path / "a.zip", name=NAME, description=DESCRIPTION)
    with pytest.raises(ImportError, match="pip install"):
        import_bioimageio(tmp_path / "a.zip")
    assert list(tmp_path.iterdir()) == []


def test_plugin_modules_import_without_the_extra(tmp_path):
    """interchange.bioimageio / torchscript import, and TorchScript exports, with no spec."""
    code = (
        "import sys; sys.modules['bioimageio'] = None; sys.modules['bioimageio.spec'] = None\n"
        "import napari_unet.interchange.bioimageio, napari_unet.interchange.bioimageio_import\n"
        "from napari_unet import UNet\n"
        "from napari_unet.interchange.torchscript import export_torchscript\n"
        f"export_torchscript(UNet(depth=1, base_channels=2), {str(tmp_path / 'm.pt')!r})\n"
        "try:\n"
        "    napari_unet.interchange.bioimageio.export_bioimageio(\n"
        f"        UNet(depth=1), {str(tmp_path / 'x.zip')!r}, name='abcde', description='d')\n"
        "except ImportError as err:\n"
        "    print('MESSAGE', err)\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "napari-unet-explorer[bioimageio]" in result.stdout
    assert (tmp_path / "m.pt").is_file() and not (tmp_path / "x.zip").exists()


# ---------------------------------------------------------------------------- refusals
def _unzip(path, folder):
    with zipfile.ZipFile(path) as z:
        z.extractall(folder)
    return folder


def _edit_rdf(folder, edit):
    yaml = pytest.importorskip("yaml")
    rdf = folder / "rdf.yaml"
    content = yaml.safe_load(rdf.read_text())
    edit(content)
    rdf.write_text(yaml.safe_dump(content, sort_keys=False))


def _set_file(folder, entry, name, data):
    (folder / name).write_bytes(data)
    entry["sha256"] = hashlib.sha256(data).hexdigest()


def _callable(c):
    c["weights"]["pytorch_state_dict"]["architecture"]["callable"] = "UNet2d"


def _foreign_library(c):
    arch = c["weights"]["pytorch_state_dict"]["architecture"]
    arch.pop("source"), arch.pop("sha256")
    arch["import_from"] = "torch_em.model"


def _wrong_kwargs(c):
    c["weights"]["pytorch_state_dict"]["architecture"]["kwargs"]["base_channels"] = 8


def _unknown_kwarg(c):
    c["weights"]["pytorch_state_dict"]["architecture"]["kwargs"]["attention"] = True


def _preprocessing(c):
    c["inputs"][0]["preprocessing"] = [
        {"id": "zero_mean_unit_variance", "kwargs": {"axes": ["y", "x"]}}
    ]


def _no_state_dict(c):
    del c["weights"]["pytorch_state_dict"]
    c["weights"]["torchscript"].pop("parent")


def _url_weights(c):
    entry = c["weights"]["pytorch_state_dict"]
    entry["source"] = "https://example.com/weights.pt"


@needs_spec
@pytest.mark.parametrize(
    "edit,reason",
    [
        (_callable, "architecture UNet2d from file unet.py is not a napari-unet U-Net"),
        (_foreign_library, "from module torch_em.model is not a napari-unet U-Net"),
        (_wrong_kwargs, "weights do not fit"),
        (_unknown_kwarg, "does not take the argument"),
        (_preprocessing, "preprocessing .*zero_mean_unit_variance.* is not supported"),
        (_no_state_dict, "no PyTorch state-dict weights"),
        (_url_weights, "nothing is downloaded"),
    ],
)
def test_foreign_or_unsupported_packages_are_refused(exported, tmp_path, edit, reason):
    folder = _unzip(exported[1], tmp_path / "pkg")
    _edit_rdf(folder, edit)
    with pytest.raises(PackageError, match=reason):
        import_bioimageio(folder)


@needs_spec
def test_missing_rdf_is_refused(exported, tmp_path):
    folder = _unzip(exported[1], tmp_path / "pkg")
    (folder / "rdf.yaml").unlink()
    with pytest.raises(PackageError, match="no rdf.yaml"):
        import_bioimageio(folder)
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(bare, "w") as z:
        z.writestr("weights.pt", b"123")
    with pytest.raises(PackageError, match="no rdf.yaml"):
        import_bioimageio(bare)
    not_zip = tmp_path / "model.zip"
    not_zip.write_bytes(b"this is not a zip file")
    with pytest.raises(CheckpointError, match="not a bioimage.io package"):
        import_bioimageio(not_zip)
    broken = _unzip(exported[1], tmp_path / "broken")
    (broken / "rdf.yaml").write_text("type: model\nname: [unclosed\n")
    with pytest.raises(PackageError, match="cannot read|not a valid"):
        import_bioimageio(broken)


@needs_spec
def test_corrupt_weights_are_refused(exported, tmp_path):
    folder = _unzip(exported[1], tmp_path / "pkg")
    weights = folder / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(PackageError, match="corrupt"):
        import_bioimageio(folder)
    # truncated weights whose hash was updated to match: not readable
    _edit_rdf(
        folder,
        lambda c: _set_file(
            folder, c["weights"]["pytorch_state_dict"], "weights.pt", bytes(data[:100])
        ),
    )
    with pytest.raises(PackageError, match="not readable PyTorch weights"):
        import_bioimageio(folder)


@needs_spec
def test_weights_that_would_run_code_are_refused(exported, tmp_path):
    folder = _unzip(exported[1], tmp_path / "pkg")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    buffer = io.BytesIO()
    torch.save({"head.weight": Evil()}, buffer)
    _edit_rdf(
        folder,
        lambda c: _set_file(
            folder, c["weights"]["pytorch_state_dict"], "weights.pt", buffer.getvalue()
        ),
    )
    with pytest.raises(PackageError, match="refused"):
        import_bioimageio(folder)
    assert not marker.exists()


@needs_spec
def test_test_output_that_does_not_reproduce_is_refused(exported, tmp_path):
    folder = _unzip(exported[1], tmp_path / "pkg")
    y = np.load(folder / "test_output.npy")
    buffer = io.BytesIO()
    np.save(buffer, y + 0.5)
    _edit_rdf(
        folder,
        lambda c: _set_file(
            folder, c["outputs"][0]["test_tensor"], "test_output.npy", buffer.getvalue()
        ),
    )
    with pytest.raises(PackageError, match="does not reproduce"):
        import_bioimageio(folder)
    # without the check the weights themselves are fine
    assert import_bioimageio(folder, check_test_outputs=False).config() == exported[0].config()


@needs_spec
def test_zip_slip_is_refused(exported, tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(exported[1]) as src, zipfile.ZipFile(evil, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("../escaped.txt", b"outside")
    with pytest.raises(PackageError, match="zip slip"):
        import_bioimageio(evil)
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()


@needs_spec
def test_rdf_pointing_outside_the_folder_is_refused(exported, tmp_path):
    outside = tmp_path / "outside.pt"
    shutil.copy(_unzip(exported[1], tmp_path / "a") / "weights.pt", outside)
    folder = _unzip(exported[1], tmp_path / "pkg")
    _edit_rdf(folder, lambda c: c["weights"]["pytorch_state_dict"].update(source="../outside.pt"))
    with pytest.raises(PackageError, match="outside the package"):
        import_bioimageio(folder)
    # a symbolic link inside the package that leads out of it
    (folder / "link.pt").symlink_to(outside)
    _edit_rdf(folder, lambda c: c["weights"]["pytorch_state_dict"].update(source="link.pt"))
    with pytest.raises(PackageError, match="outside the package"):
        import_bioimageio(folder)


@needs_spec
def test_real_image_package_reproduces(tmp_path):
    """The stardist nuclei image (real data, the bundled sample) as the test image,
    through the whole loop."""
    image = bundled_nuclei()["image"]
    model = _model()
    path = export_bioimageio(
        model, tmp_path / "n.zip", name=NAME, description=DESCRIPTION, test_image=image
    )
    _validate(path)
    with zipfile.ZipFile(path) as z:
        x = np.load(io.BytesIO(z.read("test_input.npy")))
    h, w = image.shape
    side = x.shape[-1]
    top, left = (h - side) // 2, (w - side) // 2
    # the test input is the centre of the real image, raw (unnormalised) values
    assert np.array_equal(x[0, 0], image[top : top + side, left : left + side].astype(np.float32))
    assert side <= 256 and model.is_valid_input_size(side)
    loaded = import_bioimageio(path)
    a = predict_tiled(model, image[:100, :120])
    b = predict_tiled(loaded, image[:100, :120])
    assert np.array_equal(a.logits, b.logits)


@needs_spec
def test_napari_tiled_prediction_agrees_with_consumers_on_the_test_pair(exported):
    """predict_tiled keeps its tiles on the image's own 2**depth pooling grid, so where
    the consumer's valid output exists (the interior), both evaluations are identical."""
    model, path = exported
    with zipfile.ZipFile(path) as z:
        x = np.load(io.BytesIO(z.read("test_input.npy")))
        y = np.load(io.BytesIO(z.read("test_output.npy")))
    m = model.margin
    ours = predict_tiled(model, x[0, 0], tile_size=40).logits
    np.testing.assert_allclose(ours[:, m:-m, m:-m], y[0], atol=1e-3)


def test_package_says_what_each_channel_means() -> None:
    """Channel k is class k + 1, or, for a model trained on dense labels, the label value
    it records (the description must not claim 'class k+1' for a 0/255 model)."""
    from napari_unet.interchange.bioimageio import channel_meaning

    model = UNet(in_channels=1, n_classes=2, depth=1, base_channels=4)
    assert channel_meaning(model) == "channel k is class k+1"
    model.record.classes.label_values = [0, 255]
    assert channel_meaning(model) == "channel k is label value (0: 0, 1: 255)"
