"""Bad input to the core (no Qt): a clear InputError / CheckpointError, nothing changed.

Every test checks three things: the message names the problem (a phrase is matched), the
caller's arrays and files are left exactly as they were, and the model is still usable
afterwards (its weights unchanged and finite, and it predicts). The catalogue of all bad
inputs, across the core, the widget and the CLI, is docs/bad-inputs.md.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from napari_unet import (
    CheckpointError,
    TrainConfig,
    UNet,
    fit,
    load_model,
    predict_tiled,
    prepare_sample,
    save_model,
    weight_map,
)
from napari_unet.unet.data import IGNORE_INDEX, InputError, labels_to_target, normalize
from napari_unet.unet.record import Normalization

FAST = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------- helpers
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(in_channels: int = 1, n_classes: int = 2, seed: int = 0) -> UNet:
    """A depth-2, 4-channel U-Net (smallest input 44 px): milliseconds per call."""
    torch.manual_seed(seed)
    return UNet(in_channels, n_classes, depth=2, base_channels=4, dropout=0).eval()


def scene(h: int = 48, w: int = 48, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A uint8 image with a bright band and scribbles: 1 = background, 2 = band."""
    rng = np.random.default_rng(seed)
    image = rng.normal(60, 10, (h, w))
    image[h // 2 : h // 2 + 6] += 100
    labels = np.zeros((h, w), np.uint8)
    labels[4:7, 4 : w - 4] = 1
    labels[h // 2 + 1 : h // 2 + 4, 4 : w - 4] = 2
    return np.clip(image, 0, 255).astype(np.uint8), labels


def state(model: UNet) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_usable(model: UNet, before: dict[str, torch.Tensor] | None = None) -> None:
    """The model's weights are unchanged (if given) and finite, and it still predicts."""
    for k, v in model.state_dict().items():
        if before is not None:
            assert torch.equal(v, before[k]), f"weight {k} changed"
        if v.is_floating_point():
            assert torch.isfinite(v).all(), k
    assert not model.training
    pred = predict_tiled(model, scene()[0])
    assert pred.labels.shape == (48, 48) and np.isfinite(pred.probabilities).all()


def frozen(*arrays_: np.ndarray) -> list[np.ndarray]:
    """Copies to compare with afterwards (the core must never write into its inputs)."""
    return [np.array(a, copy=True) for a in arrays_]


def assert_same(arrays_: tuple[np.ndarray, ...], copies: list[np.ndarray]) -> None:
    for a, c in zip(arrays_, copies, strict=True):
        assert a.dtype == c.dtype
        np.testing.assert_array_equal(a, c)


# ---------------------------------------------------------------------------- annotations
def _labels_case(name: str) -> tuple[np.ndarray, str]:
    _, labels = scene()
    if name == "empty":
        return np.zeros_like(labels), "no annotations"
    if name == "fractional float":
        return labels.astype(np.float32) + 0.5, "whole numbers"
    if name == "NaN float":
        bad = labels.astype(np.float64)
        bad[0, 0] = np.nan
        return bad, "whole numbers"
    if name == "negative":
        return labels.astype(np.int16) - 1, "must not be negative"
    if name == "shape mismatch":
        return labels[:40], r"labels shape \(40, 48\) does not match"
    if name == "stack for a plane":
        return np.stack([labels, labels]), "does not match"
    if name == "transposed":
        return np.zeros((48, 40), np.uint8) + 1, "does not match"
    raise AssertionError(name)


LABEL_CASES = [
    "empty",
    "fractional float",
    "NaN float",
    "negative",
    "shape mismatch",
    "stack for a plane",
]


@pytest.mark.parametrize("case", LABEL_CASES)
def test_bad_annotations_refused_before_training(case: str) -> None:
    image, _ = scene()
    labels, message = _labels_case(case)
    copies = frozen(image, labels)
    with pytest.raises(InputError, match=message):
        prepare_sample(image, labels)
    assert_same((image, labels), copies)


def test_single_class_refused_and_model_untouched() -> None:
    image, labels = scene()
    labels = (labels > 0).astype(np.uint8)  # everything annotated is class 1
    sample = prepare_sample(image, labels)
    model = tiny()
    before = state(model)
    with pytest.raises(InputError, match="only one class"):
        fit(model, [sample], TrainConfig(steps=2, tile_size=16, batch_size=1))
    assert_usable(model, before)
    assert not model.record.training  # nothing recorded: no step was made


def test_bool_labels_are_one_class_not_a_crash() -> None:
    image, labels = scene()
    sample = prepare_sample(image, labels > 0)  # a mask drawn as bool: value 1 only
    with pytest.raises(InputError, match=r"only one class \(value 1\)"):
        fit(tiny(), [sample], TrainConfig(steps=1, tile_size=16))


def test_float_labels_of_whole_numbers_are_accepted() -> None:
    image, labels = scene()
    a = prepare_sample(image, labels)
    b = prepare_sample(image, labels.astype(np.float64))
    np.testing.assert_array_equal(a.target, b.target)


def test_unknown_label_mode_refused() -> None:
    image, labels = scene()
    with pytest.raises(InputError, match="label mode must be one of"):
        prepare_sample(image, labels, mode="dense")


def test_huge_scribble_values_refused_by_the_model() -> None:
    """Instance ids (here 2**40) read as class values would ask for 2**40 output channels."""
    image, labels = scene()
    sample = prepare_sample(image, labels.astype(np.uint64) * 2**40)
    model = tiny()
    before = state(model)
    with pytest.raises(InputError, match="but the model has only 2 classes"):
        fit(model, [sample], TrainConfig(steps=1, tile_size=16))
    assert_usable(model, before)


@pytest.mark.parametrize(
    "dtype, top", [(np.uint32, 2**32 - 1), (np.int64, 2**62), (np.uint64, 2**64 - 1)]
)
def test_huge_instance_ids_train_like_small_ones(dtype, top) -> None:
    image, labels = scene()
    cells = np.zeros(labels.shape, dtype)
    cells[20:26, 5:20] = top
    cells[20:26, 23:40] = top - 1  # two cells 3 px apart: the border term applies
    small = (cells == top) * 1 + (cells == top - 1) * 2
    big = prepare_sample(image, cells, mode="instances", use_weight_map=True)
    ref = prepare_sample(image, small, mode="instances", use_weight_map=True)
    np.testing.assert_array_equal(big.target, ref.target)
    np.testing.assert_allclose(big.weight, ref.weight, rtol=1e-6)
    assert big.weight.max() > 2  # the border term is there
    losses = fit(tiny(), [big], TrainConfig(steps=2, tile_size=16, batch_size=1))
    assert np.isfinite(losses).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"sigma": 0.0}, "sigma must be > 0"),
        ({"sigma": float("nan")}, "sigma must be > 0"),
        ({"w0": -1.0}, "w0 must be >= 0"),
        ({"w0": float("inf")}, "w0 must be >= 0"),
    ],
)
def test_bad_weight_map_settings_refused(kwargs, message) -> None:
    image, labels = scene()
    with pytest.raises(ValueError, match=message):
        prepare_sample(image, labels, mode="instances", use_weight_map=True, **kwargs)


# ---------------------------------------------------------------------------- images
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_pixels_refused_by_training_and_prediction(value) -> None:
    image, labels = scene()
    bad = image.astype(np.float32)
    bad[10, 10] = value
    copies = frozen(bad, labels)
    model = tiny()
    before = state(model)
    with pytest.raises(InputError, match="NaN or infinite"):
        prepare_sample(bad, labels)
    with pytest.raises(InputError, match="NaN or infinite"):
        predict_tiled(model, bad)
    assert_same((bad, labels), copies)
    assert_usable(model, before)


def test_constant_image_predicts_and_trains_finitely() -> None:
    flat = np.full((48, 48), 1234, np.uint16)
    out = normalize(flat[None].astype(np.float32))
    assert np.all(out == 0)  # shifted to 0, not divided by a zero range
    model = tiny()
    pred = predict_tiled(model, flat)
    np.testing.assert_allclose(pred.probabilities.sum(axis=0), 1, atol=1e-5)
    # a constant input gives the same prediction at every pixel far from the border
    centre = pred.probabilities[:, 12:-12, 12:-12]
    np.testing.assert_allclose(centre, centre[:, :1, :1].repeat(24, 1).repeat(24, 2), atol=1e-5)
    _, labels = scene()
    losses = fit(model, [prepare_sample(flat, labels)], TrainConfig(steps=2, tile_size=16))
    assert np.isfinite(losses).all()
    assert_usable(model)


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a.astype(np.uint16) * 257,  # the full uint16 range
        lambda a: a.astype(np.uint16) + 40000,  # a high offset (microscope baseline)
        lambda a: a.astype(np.float64) / 255.0,  # float in [0, 1]
        lambda a: a.astype(np.float64) * 1e6 - 3e7,  # large negative floats
        lambda a: a.astype(np.float32) * 1e-6,  # small float32 values
    ],
    ids=["uint16 full", "uint16 offset", "float64 0-1", "float64 big", "float32 tiny"],
)
def test_image_ranges_give_the_same_prediction(convert) -> None:
    """Percentile normalisation makes the result independent of dtype, scale and offset."""
    image, _ = scene()
    model = tiny()
    ref = predict_tiled(model, image)
    other = convert(image)
    out = predict_tiled(model, other)
    np.testing.assert_allclose(out.probabilities, ref.probabilities, atol=2e-4)
    assert (out.labels != ref.labels).mean() < 0.002


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a.astype(np.float64) * 1e300,
        lambda a: a.astype(np.float64) + 1e9,
        lambda a: a.astype(np.int64) - 2**40,
        lambda a: a.astype(np.float32) * 1e-30,
    ],
    ids=["float64 1e300", "float64 offset 1e9", "int64 offset 2**40", "float32 range 1e-28"],
)
def test_ranges_beyond_float32_precision_are_normalised(convert) -> None:
    image, _ = scene()
    model = tiny()
    ref = predict_tiled(model, image)
    out = predict_tiled(model, convert(image))
    np.testing.assert_allclose(out.probabilities, ref.probabilities, atol=2e-4)


@pytest.mark.parametrize("shape", [(1, 40), (40, 1), (1, 1), (3, 7), (10, 10)])
def test_images_smaller_than_the_smallest_tile_predict(shape) -> None:
    model = tiny()
    assert model.min_input_size > max(shape)
    image = np.random.default_rng(0).random(shape)
    pred = predict_tiled(model, image)
    assert pred.labels.shape == shape
    assert pred.probabilities.shape == (2, *shape)
    np.testing.assert_allclose(pred.probabilities.sum(axis=0), 1, atol=1e-5)


def test_one_pixel_high_image_trains() -> None:
    image = np.random.default_rng(0).random((1, 40))
    labels = np.array([[1] * 20 + [2] * 20], np.uint8)
    model = tiny()
    losses = fit(model, [prepare_sample(image, labels)], TrainConfig(steps=2, tile_size=16))
    assert np.isfinite(losses).all()
    assert_usable(model)


@pytest.mark.parametrize(
    "image, channel_axis, in_channels, message",
    [
        (np.zeros(7), None, 1, "at least 2D"),
        (np.zeros((0, 9)), None, 1, "empty spatial axis"),
        (np.zeros((9, 9), np.complex64), None, 1, "must be numeric"),
        (np.full((9, 9), "a"), None, 1, "must be numeric"),
        (np.empty((9, 9), object), None, 1, "must be numeric"),
        (np.zeros((20, 20, 3)), -1, 1, r"expects 1 channel\(s\), the image has 3"),
        (np.zeros((20, 20)), None, 3, r"expects 3 channel\(s\), the image has 1"),
        (np.zeros((20, 20, 4)), -1, 3, r"expects 3 channel\(s\), the image has 4"),
        (np.zeros((2, 20, 20)), 0, 1, r"expects 1 channel\(s\), the image has 2"),
        (np.zeros((3, 20, 20)), 1, 3, "cannot be one of the two spatial axes"),
        (np.zeros((20, 20)), 0, 1, "must be at least 3D"),
    ],
    ids=[
        "1D",
        "empty axis",
        "complex",
        "text",
        "object",
        "RGB to grey model",
        "grey to RGB model",
        "RGBA to RGB model",
        "2 channels to grey model",
        "channel axis is spatial",
        "channel axis on a 2D image",
    ],
)
def test_wrong_image_layout_refused(image, channel_axis, in_channels, message) -> None:
    model = tiny(in_channels=in_channels)
    before = state(model)
    copy = np.array(image, copy=True)
    with pytest.raises(InputError, match=message):
        predict_tiled(model, image, channel_axis=channel_axis)
    if image.ndim >= 2 and image.size and np.issubdtype(image.dtype, np.floating):
        labels = np.zeros(image.shape[:2] if channel_axis == -1 else image.shape[-2:], np.uint8)
        labels[0, 0], labels[-1, -1] = 1, 2
        with pytest.raises(InputError, match=message):
            prepare_sample(image, labels, in_channels=in_channels, channel_axis=channel_axis)
    np.testing.assert_array_equal(image, copy)
    if in_channels == 1:
        assert_usable(model, before)


# ---------------------------------------------------------------------------- training
@pytest.mark.parametrize(
    "cfg, message",
    [
        ({"learning_rate": float("nan")}, "learning rate"),
        ({"learning_rate": float("inf")}, "learning rate"),
        ({"learning_rate": 0.0}, "learning rate"),
        ({"steps": 0}, "steps must be >= 1"),
        ({"tile_size": 0}, "tile size must be >= 1"),
        ({"batch_size": -1}, "batch size"),
        ({"max_seconds": 0.0}, "max_seconds"),
        ({"optimizer": "lbfgs"}, "optimizer must be one of"),
        ({"schedule": "step"}, "schedule must be one of"),
    ],
)
def test_bad_training_settings_leave_the_model_alone(cfg, message) -> None:
    image, labels = scene()
    model = tiny()
    before = state(model)
    with pytest.raises(ValueError, match=message):
        fit(model, [prepare_sample(image, labels)], TrainConfig(**{"steps": 1, **cfg}))
    assert_usable(model, before)
    assert model.record.to_v1() == {}


@pytest.mark.parametrize("steps", [1, 3])
def test_weights_that_overflow_at_the_last_step_are_not_kept(steps) -> None:
    """The loss is finite, but the update makes the weights inf (SGD with an absurd
    learning rate): training raises and the model keeps finite weights, whether the
    overflow is at the last step (1 step) or is followed by a NaN loss (3 steps)."""
    from napari_unet.unet.training import TrainingDiverged

    image, labels = scene()
    model = tiny()
    before = state(model)
    cfg = TrainConfig(steps=steps, learning_rate=1e38, optimizer="sgd", momentum=0.0,
                      tile_size=8, batch_size=1, augment=False)  # fmt: skip
    phrase = "weights became NaN or infinite at step 1" if steps == 1 else "loss became nan"
    with pytest.raises(TrainingDiverged, match=phrase):
        fit(model, [prepare_sample(image, labels)], cfg)
    assert_usable(model, before)


def test_stopping_right_after_an_overflowing_update_keeps_finite_weights() -> None:
    """A consumer that stops at the step whose update overflowed (Cancel, Ctrl-C) gets
    the last good weights back, not inf."""
    from napari_unet import train

    image, labels = scene()
    model = tiny()
    before = state(model)
    cfg = TrainConfig(steps=50, learning_rate=1e38, optimizer="sgd", momentum=0.0,
                      tile_size=8, batch_size=1, augment=False)  # fmt: skip
    steps = train(model, [prepare_sample(image, labels)], cfg)
    assert next(steps).step == 1
    steps.close()
    assert_usable(model, before)
    assert all(run.steps_done == 0 for run in model.record.training)


def test_unknown_device_leaves_the_model_alone() -> None:
    image, labels = scene()
    model = tiny()
    before = state(model)
    with pytest.raises(ValueError, match="unknown device"):
        fit(model, [prepare_sample(image, labels)], TrainConfig(steps=1, device="tpu"))
    assert_usable(model, before)
    assert model.record.to_v1() == {}


def test_wrong_samples_refused() -> None:
    image, labels = scene()
    model = tiny(in_channels=3)
    before = state(model)
    with pytest.raises(InputError, match="no training images"):
        fit(model, [], TrainConfig(steps=1))
    with pytest.raises(InputError, match=r"expects 3 channel\(s\), image 'grey' has 1"):
        fit(model, [prepare_sample(image, labels, name="grey")], TrainConfig(steps=1))
    assert_usable_rgb = [torch.equal(v, before[k]) for k, v in model.state_dict().items()]
    assert all(assert_usable_rgb) and model.record.to_v1() == {}
    cells = np.zeros_like(labels)
    cells[20:26, 5:20] = 1
    mixed = [prepare_sample(image, labels), prepare_sample(image, cells, mode="instances")]
    grey = tiny()
    before = state(grey)
    with pytest.raises(InputError, match="mixing scribble and instance"):
        fit(grey, mixed, TrainConfig(steps=1, tile_size=16))
    assert_usable(grey, before)


# ---------------------------------------------------------------------------- model files
@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    model = tiny()
    model.record.normalization = Normalization("percentile", 1.0, 99.8)
    return save_model(tmp_path / "good.pt", model)


def _payload(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _make_bad_file(kind: str, good: Path, folder: Path) -> Path:
    """Write one kind of bad model file next to a good one; return its path."""
    data = good.read_bytes()
    path = folder / f"{kind.replace(' ', '_')}.pt"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random bytes":
        path.write_bytes(np.random.default_rng(1).bytes(4000))
    elif kind.startswith("truncated"):
        cut = {"truncated 10": 10, "truncated half": len(data) // 2, "truncated end": -1}[kind]
        path.write_bytes(data[:cut])
    elif kind == "text":
        path.write_text("format: napari-unet\nweights: none\n")
    elif kind == "plain zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("a.txt", "hello")
    elif kind == "bare state dict":
        torch.save(tiny().state_dict(), path)
    elif kind == "tensor":
        torch.save(torch.zeros(3), path)
    elif kind == "torchscript":
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), path)
    elif kind == "other architecture":
        payload = _payload(good)
        payload["state_dict"] = UNet(depth=3, base_channels=4).state_dict()
        torch.save(payload, path)
    elif kind == "unknown architecture":
        payload = _payload(good)
        config = json.loads(payload["config"])
        config["architecture"]["attention"] = True
        payload["config"] = json.dumps(config)
        torch.save(payload, path)
    elif kind == "invalid architecture":
        payload = _payload(good)
        config = json.loads(payload["config"])
        config["architecture"]["depth"] = 0
        payload["config"] = json.dumps(config)
        torch.save(payload, path)
    elif kind == "damaged config":
        payload = _payload(good)
        payload["config"] = payload["config"][:20]
        torch.save(payload, path)
    elif kind == "future version":
        payload = _payload(good)
        payload["format_version"] = 99
        torch.save(payload, path)
    elif kind == "NaN weights":
        payload = _payload(good)
        payload["state_dict"]["head.bias"][0] = float("nan")
        torch.save(payload, path)
    elif kind == "legacy format":
        torch.save(_payload(good), path, _use_new_zipfile_serialization=False)
    else:
        raise AssertionError(kind)
    return path


#: kind of bad model file -> a phrase of the message
BAD_MODEL_FILES = {
    "empty": "not a readable model file",
    "random bytes": "not a readable model file",
    "truncated 10": "not a readable model file",
    "truncated half": "not a readable model file",
    "truncated end": "not a readable model file",
    "text": "not a readable model file",
    "plain zip": "not a readable model file",
    "legacy format": "not a readable model file",
    "torchscript": "not a readable model file",
    "bare state dict": "not a napari-unet model file",
    "tensor": "not a napari-unet model file",
    "other architecture": "weights do not fit the architecture",
    "unknown architecture": "unknown or invalid architecture",
    "invalid architecture": "unknown or invalid architecture",
    "damaged config": "config is damaged",
    "future version": "version 99 is not supported",
    "NaN weights": "NaN or infinite values",
}


@pytest.mark.parametrize("kind", list(BAD_MODEL_FILES))
def test_bad_model_files_refused_and_left_alone(kind, model_file, tmp_path) -> None:
    path = _make_bad_file(kind, model_file, tmp_path)
    before = path.read_bytes(), path.stat().st_mtime_ns
    with pytest.raises(CheckpointError, match=BAD_MODEL_FILES[kind]) as err:
        load_model(path)
    assert path.name in str(err.value)  # the message names the file
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["good.pt", path.name])
    assert_usable(load_model(model_file))  # loading still works


def test_folder_or_missing_path_as_model(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="no such model file"):
        load_model(tmp_path)
    with pytest.raises(CheckpointError, match="no such model file"):
        load_model(tmp_path / "missing.pt")


class _Evil:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize(
    "how", ["torch zip", "inside state dict", "legacy torch", "plain pickle", "pickled model"]
)
def test_pickle_that_would_run_code_is_refused(how, model_file, tmp_path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    if how == "torch zip":
        torch.save({"format": "napari-unet", "payload": _Evil(marker)}, path)
    elif how == "inside state dict":
        payload = _payload(model_file)
        payload["state_dict"]["head.bias"] = _Evil(marker)
        torch.save(payload, path)
    elif how == "legacy torch":
        torch.save({"x": _Evil(marker)}, path, _use_new_zipfile_serialization=False)
    elif how == "plain pickle":
        path.write_bytes(pickle.dumps(_Evil(marker)))
    else:  # a whole pickled module: what torch.save(model) writes
        torch.save(tiny(), path)
    with pytest.raises(CheckpointError, match="refused|not a readable model file"):
        load_model(path)
    assert not marker.exists()


def test_bit_flip_inside_the_weights_is_detected(model_file, tmp_path) -> None:
    data = bytearray(model_file.read_bytes())
    with zipfile.ZipFile(model_file) as z:
        info = max(z.infolist(), key=lambda i: i.file_size)  # the largest weight tensor
    start = info.header_offset  # the local header: 30 bytes, name, extra field, data
    name_len = int.from_bytes(data[start + 26 : start + 28], "little")
    extra_len = int.from_bytes(data[start + 28 : start + 30], "little")
    data[start + 30 + name_len + extra_len + 8] ^= 0x40
    flipped = tmp_path / "flipped.pt"
    flipped.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged|corrupt"):
        load_model(flipped)


# ---------------------------------------------------------------------------- properties
@FAST
@given(
    arrays(
        st.sampled_from([np.uint8, np.uint16, np.int32, np.uint64]),
        st.tuples(st.integers(1, 10), st.integers(1, 10)),
        elements=st.integers(0, 200),
    ),
    st.sampled_from([0, 1, 2**31, 2**40]),
)
def test_instance_conversion_is_cells_vs_background_for_any_ids(labels, shift) -> None:
    ids = labels.astype(np.uint64) + np.uint64(shift) * (labels > 0)
    target = labels_to_target(ids, "instances")
    np.testing.assert_array_equal(target, (labels > 0).astype(np.int64))
    assert not (target == IGNORE_INDEX).any()  # instance mode annotates every pixel
    # the same values as floats give the same target (whole numbers are accepted)
    if shift < 2**24:
        np.testing.assert_array_equal(
            labels_to_target(ids.astype(np.float64), "instances"), target
        )


@FAST
@given(
    arrays(np.int16, st.tuples(st.integers(1, 8), st.integers(1, 8)), elements=st.integers(-3, 5))
)
def test_negative_anywhere_is_refused(labels) -> None:
    if labels.min() < 0:
        with pytest.raises(InputError, match="negative"):
            labels_to_target(labels)
    else:
        target = labels_to_target(labels)
        np.testing.assert_array_equal(target[labels > 0], labels[labels > 0] - 1)


_PROP_MODEL = tiny()


@FAST
@given(st.floats(1e-3, 1e4), st.floats(-1e3, 1e3), st.integers(0, 2**16))
def test_prediction_is_invariant_to_intensity_scale_and_offset(scale, offset, seed) -> None:
    """Any positive scale and an offset of up to 1000 times the range (float32 keeps ~7
    digits; wider inputs are normalised in float64: see the offset tests above)."""
    image = np.random.default_rng(seed).random((20, 24))
    ref = predict_tiled(_PROP_MODEL, image)
    out = predict_tiled(_PROP_MODEL, image * scale + offset * scale)
    np.testing.assert_allclose(out.probabilities, ref.probabilities, atol=1e-3)


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0, 26), st.integers(0, 26), st.integers(1, 5), st.integers(1, 5)),
        min_size=2,
        max_size=4,
    )
)
def test_weight_map_ignores_how_big_the_ids_are(boxes) -> None:
    small = np.zeros((32, 32), np.int64)
    for i, (y, x, h, w) in enumerate(boxes, start=1):
        small[y : y + h, x : x + w] = i
    big = np.where(small > 0, small.astype(np.uint64) + np.uint64(2**63), 0).astype(np.uint64)
    np.testing.assert_allclose(weight_map(big), weight_map(small), atol=1e-6)
