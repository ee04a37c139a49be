"""One set of argument checks for the Python API, the workflow and the CLI
(unet/arguments.py): a wrong type or range is refused by name, before numpy or torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_unet import UNet, predict_tiled
from napari_unet.cli import main
from napari_unet.unet.errors import InputError
from napari_unet.unet.training import TrainConfig
from napari_unet.workflow import InstanceOptions, PredictOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: values that are not a whole number >= 1, of every kind a caller passes by mistake
NOT_POSITIVE_WHOLE = st.one_of(
    st.integers(max_value=0),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.booleans(),
    st.just(np.float64(64.0)),
    st.lists(st.integers(1, 4), max_size=2),
)


def tiny() -> UNet:
    torch.manual_seed(0)
    return UNet(1, 2, depth=2, base_channels=4, dropout=0).eval()


@settings(max_examples=40, deadline=None)
@given(value=NOT_POSITIVE_WHOLE, name=st.sampled_from(["tile_size", "batch_size"]))
def test_api_and_workflow_refuse_the_same_sizes(value, name) -> None:
    label = name.replace("_", " ")
    image = np.zeros((20, 20), np.float32)
    with pytest.raises(InputError, match=label):
        predict_tiled(tiny(), image, **{name: value})
    with pytest.raises(InputError, match=label):
        PredictOptions(**{name: value}).validate()
    with pytest.raises(InputError, match=label):
        TrainConfig(**{name: value}).validate()


@pytest.mark.parametrize("value", ["0", "-3", "1.5", "x"])
@pytest.mark.parametrize("option", ["--tile-size", "--batch-size"])
def test_cli_refuses_what_the_api_refuses(tmp_path, capsys, option, value) -> None:
    rc = main(["predict", str(tmp_path / "x.tif"), "--pretrained", "nuclei", "--out",
               str(tmp_path / "out"), option, value])  # fmt: skip
    assert rc == 2 and option in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "kwargs, phrase",
    [
        ({"precision": "fp64"}, "precision must be one of fp32, bf16, fp16"),
        ({"test_time_augmentation": "yes"}, "test_time_augmentation must be True or False"),
        ({"normalize_input": 1}, "normalize_input must be True or False"),
    ],
)
def test_predict_tiled_refuses_wrong_settings(kwargs, phrase) -> None:
    with pytest.raises(InputError, match=phrase):
        predict_tiled(tiny(), np.zeros((20, 20), np.float32), **kwargs)


@pytest.mark.parametrize(
    "kwargs, phrase",
    [
        ({"steps": 2.5}, "steps must be a whole number"),
        ({"steps": True}, "steps must be a whole number"),
        ({"learning_rate": "1e-3"}, "learning rate must be a positive number"),
        ({"seed": -1}, "seed must be >= 0"),
        ({"momentum": 1.0}, "momentum must lie in"),
        ({"augment": "no"}, "augment must be True or False"),
        ({"weight_decay": float("nan")}, "weight decay must be a finite number"),
        ({"max_seconds": -1.0}, "max_seconds"),
        ({"device": 0}, "device must be a name"),
    ],
)
def test_training_settings_refused_by_name(kwargs, phrase) -> None:
    with pytest.raises(InputError, match=phrase):
        TrainConfig(**kwargs).validate()


@pytest.mark.parametrize(
    "kwargs, phrase",
    [
        ({"object_class": 0}, "object class must be >= 1"),
        ({"min_size": -1}, "smallest object size must be >= 0"),
        ({"min_size": 2.5}, "smallest object size must be a whole number"),
        ({"threshold": float("nan")}, "threshold must be a finite number"),
        ({"seed_threshold": "0.8"}, "seed threshold must be a finite number"),
    ],
)
def test_instance_settings_refused_by_name(kwargs, phrase) -> None:
    with pytest.raises(InputError, match=phrase):
        InstanceOptions(**kwargs).validate()


def test_a_model_with_non_finite_weights_does_not_predict() -> None:
    model = tiny()
    with torch.no_grad():
        next(model.parameters())[0, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN or infinite"):
        predict_tiled(model, np.zeros((20, 20), np.float32))


@pytest.mark.parametrize(
    "names, phrase",
    [
        (["cell", "cell"], "given twice: cell"),
        (["", "cell"], "non-empty text"),
        ([" ", "x"], "non-empty"),
    ],
)
def test_class_names_are_distinct_and_named(names, phrase) -> None:
    from napari_unet.workflow import interpret_labels
    from napari_unet.workflow.models import fit_model

    model = tiny()
    record = model.record.to_json()
    plan = interpret_labels(np.array([0, 1, 2]), "scribbles", what="the layer")
    with pytest.raises(InputError, match=phrase):
        fit_model(model, plan, class_names=names)
    assert model.record.to_json() == record


@pytest.mark.parametrize(
    "call, phrase",
    [
        (lambda: predict_tiled(None, np.zeros((20, 20), np.float32)), "needs a napari-unet UNet"),
        (lambda: TRAIN(tiny(), "samples", {"steps": 1}), "config must be a TrainConfig"),
        (lambda: TRAIN(tiny(), [1, 2], TrainConfig(steps=1)), "samples must come from"),
        (lambda: SAVE("/tmp/never-written.pt", None), "save_model needs a napari-unet UNet"),
    ],
)
def test_wrong_objects_are_named(call, phrase) -> None:
    with pytest.raises(TypeError, match=phrase):
        call()


def TRAIN(model, samples, config):
    from napari_unet import fit

    return fit(model, samples, config)


def SAVE(path, model):
    from napari_unet import save_model

    return save_model(path, model)


@pytest.mark.parametrize(
    "kwargs, phrase",
    [({"w0": "10"}, "w0 must be a number"), ({"sigma": [1, 2]}, "sigma must be a number")],
)
def test_weight_map_settings_must_be_numbers(kwargs, phrase) -> None:
    from napari_unet import weight_map

    labels = np.zeros((10, 10), np.int32)
    labels[2:4, 2:4] = 1
    with pytest.raises(ValueError, match=phrase):
        weight_map(labels, **kwargs)


@pytest.mark.parametrize(
    "kwargs, phrase",
    [
        ({"depth": 50}, "depth must be a whole number from 1 to 8"),
        ({"base_channels": 1024, "depth": 8}, "parameters, more than the"),
        ({"n_classes": "2"}, "n_classes must be a whole number"),
    ],
)
def test_unet_sizes_are_bounded_before_allocation(kwargs, phrase) -> None:
    with pytest.raises(ValueError, match=phrase):
        UNet(1, **{"n_classes": 2, **kwargs})
