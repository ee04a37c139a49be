"""Bad input in the U-Net dock widget: one clear error notification, no layer changed,
and the widget and its model still work afterwards.

The widget is created through the plugin manifest and driven through the public
attributes the other widget tests use. Data are synthetic (no shared data needed); the
model is a tiny U-Net loaded with "From file..." so each step takes milliseconds. The
catalogue of bad inputs is docs/bad-inputs.md.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

import torch  # noqa: E402

from napari_unet import UNet, save_model, weight_map  # noqa: E402
from napari_unet.unet.record import Normalization

from .conftest import assert_unchanged, snapshot

NORM = {"method": "percentile", "low": 1.0, "high": 99.8}
SIDE = 64  # above the tiny model's smallest input (44 px)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def scene(h: int = SIDE, w: int = SIDE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 image with a bright band, and scribbles 1 = background, 2 = band."""
    rng = np.random.default_rng(seed)
    image = rng.normal(60, 10, (h, w))
    image[h // 2 : h // 2 + 8] += 100
    labels = np.zeros((h, w), np.uint8)
    labels[4:7, 4 : w - 4] = 1
    labels[h // 2 + 2 : h // 2 + 5, 4 : w - 4] = 2
    return np.clip(image, 0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = UNet(1, 2, depth=2, base_channels=4, dropout=0).eval()
    model.record.normalization = Normalization.from_dict(NORM)
    return save_model(tmp_path_factory.mktemp("model") / "tiny.pt", model)


@pytest.fixture
def setup(make_napari_viewer, model_path):
    """A viewer with 'img' + 'scribbles', the widget with the tiny model loaded."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    image, labels = scene()
    viewer.add_image(image, name="img")
    viewer.add_labels(labels, name="scribbles")
    widget.image_layer.value = viewer.layers["img"]
    widget.labels_layer.value = viewer.layers["scribbles"]
    widget.model_source.value = "From file..."
    widget.model_file.value = model_path
    widget.make_model()
    assert widget.model is not None
    widget.steps.value = 2
    widget.tile_size.value = 16
    widget.batch_size.value = 1
    widget.augment.value = False
    return viewer, widget


def weights(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


@contextlib.contextmanager
def case(name: str):
    """Name the case a failure happened in (several cases share one viewer: faster)."""
    try:
        yield
    except AssertionError as err:
        raise AssertionError(f"[{name}] {err}") from err


def wait_idle(qtbot, widget, timeout: float = 60) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=int(timeout * 1000))


def refused(viewer, widget, errors, qtbot, action, phrase: str) -> None:
    """Run a widget action that must be refused: exactly one new error notification with
    ``phrase``, no layer added, removed or changed, the model's weights unchanged."""
    before = snapshot(viewer)
    n_errors = len(errors())
    model = widget.model
    state = weights(model) if model is not None else None
    action()
    wait_idle(qtbot, widget)
    new = errors()[n_errors:]
    assert len(new) == 1 and phrase in new[0], new
    assert "Traceback" not in new[0]
    assert_unchanged(viewer, before)
    if state is not None:
        assert widget.model is model
        for k, v in weights(model).items():
            np.testing.assert_array_equal(v, state[k], err_msg=k)
    assert widget.train_button.enabled and widget.predict_button.enabled


def still_usable(viewer, widget, errors, qtbot) -> None:
    """Back on good layers, the widget predicts (and the result is a proper p_k(x))."""
    n_errors = len(errors())
    widget.image_layer.value = viewer.layers["img"]
    widget.channel_axis.value = None
    widget.labels_layer.value = viewer.layers["scribbles"]
    widget.predict()
    wait_idle(qtbot, widget)
    assert errors()[n_errors:] == []
    p = viewer.layers["p_k(x)"].data
    assert p.shape == (2, SIDE, SIDE)
    np.testing.assert_allclose(p.sum(axis=0), 1, atol=1e-5)


# ---------------------------------------------------------------------------- images
def test_non_finite_pixels(setup, errors, qtbot) -> None:
    viewer, widget = setup
    for value in (np.nan, np.inf, -np.inf):
        image = scene()[0].astype(np.float32)
        image[10:12, 10:12] = value
        viewer.add_image(image, name=f"bad {value}")
        for action in ("train", "predict"):
            with case(f"{action}, {value}"):
                widget.image_layer.value = viewer.layers[f"bad {value}"]
                assert widget.labels_layer.value is viewer.layers["scribbles"]
                refused(viewer, widget, errors, qtbot, getattr(widget, action), "NaN or infinite")
    still_usable(viewer, widget, errors, qtbot)


def test_constant_uint16_and_float64_images_predict(setup, errors, qtbot) -> None:
    """No error, and percentile normalisation makes dtype, scale and offset irrelevant."""
    viewer, widget = setup
    image = scene()[0]
    results = {}
    for name, data in [
        ("u8", image),
        ("u16", image.astype(np.uint16) * 257),
        ("f64", image.astype(np.float64) / 255 - 0.5),
        ("flat", np.full((SIDE, SIDE), 4000, np.uint16)),
    ]:
        viewer.add_image(data, name=name)
        widget.image_layer.value = viewer.layers[name]
        widget.predict()
        wait_idle(qtbot, widget)
        results[name] = np.array(viewer.layers["p_k(x)"].data, copy=True)
    assert errors() == []
    np.testing.assert_allclose(results["u16"], results["u8"], atol=2e-4)
    np.testing.assert_allclose(results["f64"], results["u8"], atol=2e-4)
    assert np.isfinite(results["flat"]).all()
    np.testing.assert_allclose(results["flat"].sum(axis=0), 1, atol=1e-5)


def test_image_smaller_than_the_model(setup, errors, qtbot) -> None:
    """Training needs the model's smallest input (44 px); prediction mirrors the missing
    context, so any size predicts."""
    viewer, widget = setup
    for shape in [(1, SIDE), (SIDE, 1), (20, 20)]:
        with case(f"{shape}"):
            image = np.arange(np.prod(shape), dtype=np.uint8).reshape(shape)
            labels = np.zeros(shape, np.uint8)
            labels.flat[0], labels.flat[-1] = 1, 2
            name = f"small {shape}"
            viewer.add_image(image, name=name)
            viewer.add_labels(labels, name=f"{name} scribbles")
            widget.image_layer.value = viewer.layers[name]
            widget.labels_layer.value = viewer.layers[f"{name} scribbles"]
            refused(viewer, widget, errors, qtbot, widget.train, "smaller than this model's")
            n_errors = len(errors())
            widget.predict()
            wait_idle(qtbot, widget)
            assert errors()[n_errors:] == []
            assert viewer.layers["segmentation"].data.shape == shape


def test_channel_confusions(setup, errors, qtbot) -> None:
    """RGB for a grey model; a (2, H, W) stack declared as two channels; a pyramid."""
    viewer, widget = setup
    grey = scene()[0]
    viewer.add_image(np.stack([grey, grey // 2, 255 - grey], -1), name="rgb", rgb=True)
    viewer.add_image(np.stack([grey, 255 - grey]), name="two")
    viewer.add_image([grey, grey[::2, ::2]], name="pyramid", multiscale=True)
    cases = [
        ("rgb", None, "train", "takes 1 channel(s) but 'rgb' has 3"),
        ("rgb", None, "predict", "takes 1 channel(s) but 'rgb' has 3"),
        ("two", 0, "predict", "takes 1 channel(s) but 'two' has 2"),
        ("two", 0, "show_activations", "takes 1 channel(s) but 'two' has 2"),
        ("pyramid", None, "predict", "multiscale (pyramid) image"),
        ("pyramid", None, "train", "multiscale (pyramid) image"),
    ]
    for name, axis, action, phrase in cases:
        with case(f"{name}, {action}"):
            widget.image_layer.value = viewer.layers[name]
            if not viewer.layers[name].rgb:  # an RGB layer has its channel axis fixed
                widget.channel_axis.value = axis
            widget.labels_layer.value = viewer.layers["scribbles"]
            refused(viewer, widget, errors, qtbot, getattr(widget, action), phrase)
    still_usable(viewer, widget, errors, qtbot)


# ---------------------------------------------------------------------------- labels
#: kind -> (layer data, label mode, phrase of the message)
def _labels(kind: str) -> tuple[np.ndarray, str, str]:
    _, labels = scene()
    if kind == "negative":
        return labels.astype(np.int8) - 1, "auto", "negative values"
    if kind == "huge ids as scribbles":
        return labels.astype(np.uint32) * 2_000_000_000, "scribbles", "an instance layer"
    if kind == "instances without background":
        return labels + 1, "instances", "no background"
    if kind == "empty":
        return np.zeros_like(labels), "auto", "no annotated pixels"
    if kind == "single class":
        return (labels > 0).astype(np.uint8), "auto", "only one class"
    if kind == "shape mismatch":
        return labels[:40], "auto", "they must match pixel for pixel"
    if kind == "stack for a plane":
        return np.stack([labels, labels]), "auto", "they must match pixel for pixel"
    raise AssertionError(kind)


LABEL_KINDS = [
    "negative",
    "huge ids as scribbles",
    "instances without background",
    "empty",
    "single class",
    "shape mismatch",
    "stack for a plane",
]


def test_bad_annotations_are_refused(setup, errors, qtbot) -> None:
    viewer, widget = setup
    for kind in LABEL_KINDS:
        with case(kind):
            data, mode, phrase = _labels(kind)
            viewer.add_labels(data, name=kind)
            widget.labels_layer.value = viewer.layers[kind]
            widget.label_mode.value = mode
            refused(viewer, widget, errors, qtbot, widget.train, phrase)
    widget.label_mode.value = "auto"
    still_usable(viewer, widget, errors, qtbot)


def test_huge_instance_ids_train(setup, errors, qtbot) -> None:
    viewer, widget = setup
    cells = np.zeros((SIDE, SIDE), np.uint32)
    cells[20:30, 5:25] = 4_000_000_000
    cells[20:30, 28:50] = 3_999_999_999  # 3 px apart: the border term applies
    viewer.add_labels(cells, name="cells")
    widget.labels_layer.value = viewer.layers["cells"]
    widget.label_mode.value = "instances"
    widget.train()
    wait_idle(qtbot, widget)
    assert errors() == []
    assert widget.model.record.classes.label_mode == "instances"
    small = (cells == 4_000_000_000) * 1 + (cells == 3_999_999_999) * 2
    expected = weight_map(small, w0=widget.w0.value, sigma=widget.sigma.value, class_balance=False)
    np.testing.assert_allclose(viewer.layers["w(x)"].data, expected, rtol=1e-5)
    np.testing.assert_array_equal(viewer.layers["cells"].data, cells)  # never written to


# ---------------------------------------------------------------------------- model files
class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


MODEL_FILE_KINDS = [
    "empty",
    "random bytes",
    "truncated",
    "an image",
    "other architecture",
    "NaN weights",
    "pickle that runs code",
]


def _bad_model_file(kind: str, good: Path, folder: Path, marker: Path) -> tuple[Path, str]:
    import tifffile

    bad = folder / f"{kind.replace(' ', '_')}.pt"
    data = good.read_bytes()
    phrase = "not a readable model file"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "random bytes":
        bad.write_bytes(np.random.default_rng(0).bytes(3000))
    elif kind == "truncated":
        bad.write_bytes(data[: len(data) * 2 // 3])
    elif kind == "an image":
        bad = folder / "image.tif"
        tifffile.imwrite(bad, scene()[0])
    elif kind == "other architecture":
        payload = torch.load(good, weights_only=True)
        payload["state_dict"] = UNet(depth=3, base_channels=4).state_dict()
        torch.save(payload, bad)
        phrase = "weights do not fit the architecture"
    elif kind == "NaN weights":
        payload = torch.load(good, weights_only=True)
        payload["state_dict"]["head.bias"][0] = float("nan")
        torch.save(payload, bad)
        phrase = "NaN or infinite values"
    else:
        torch.save({"format": "napari-unet", "x": _Evil(marker)}, bad)
        phrase = "refused"
    return bad, phrase


def test_bad_model_files_keep_the_current_model(
    setup, errors, qtbot, tmp_path, model_path
) -> None:
    viewer, widget = setup
    marker = tmp_path / "pwned"
    for kind in MODEL_FILE_KINDS:
        with case(kind):
            bad, phrase = _bad_model_file(kind, model_path, tmp_path, marker)
            before = bad.read_bytes(), bad.stat().st_mtime_ns
            widget.model_file.value = bad
            refused(viewer, widget, errors, qtbot, widget.make_model, phrase)
            assert (bad.read_bytes(), bad.stat().st_mtime_ns) == before
            assert not marker.exists()
    still_usable(viewer, widget, errors, qtbot)
