"""napari_unet.workflow.models: where a model comes from, its head and its classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_unet import UNet, load_model, save_model
from napari_unet.unet.data import InputError
from napari_unet.unet.presets import PRESETS, build_model
from napari_unet.unet.record import Classes, TrainingRun
from napari_unet.workflow import (
    LabelPlan,
    ModelChoice,
    classes_for_training,
    fit_model,
    label_values_table,
    object_channel,
    open_model,
    steps_trained,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(n_classes: int = 2, in_channels: int = 1) -> UNet:
    """A tiny-preset U-Net with no source recorded (as build_model gives it)."""
    torch.manual_seed(0)
    return build_model("tiny", in_channels, n_classes)


def state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------- open_model
@pytest.mark.parametrize(("in_channels", "n_classes"), [(1, 2), (3, 4), (2, 1)])
def test_open_new_tiny_model(in_channels, n_classes) -> None:
    model = open_model(ModelChoice.new("tiny"), in_channels=in_channels, n_classes=n_classes)
    assert isinstance(model, UNet)
    assert (model.in_channels, model.n_classes) == (in_channels, n_classes)
    assert model.record.source == "new tiny U-Net"
    assert model.record.preset == "tiny"
    config = model.config()
    for key, value in PRESETS["tiny"].items():
        assert config[key] == value
    assert config["padding"] == "valid"
    # the head really has n_classes outputs and in_channels inputs reach the first conv
    assert model.head.out_channels == n_classes
    x = torch.zeros(1, in_channels, model.min_input_size, model.min_input_size)
    with torch.no_grad():
        assert model.eval()(x).shape[:2] == (1, n_classes)


def test_open_new_default_preset_and_padding() -> None:
    from napari_unet.unet.presets import DEFAULT_PRESET

    choice = ModelChoice.new()
    assert choice.kind == "new" and choice.preset == DEFAULT_PRESET
    model = open_model(ModelChoice.new("tiny", padding="same"))
    assert model.config()["padding"] == "same"
    assert model.record.source == "new tiny U-Net"


def test_open_file_without_source_records_the_file_name(tmp_path) -> None:
    saved = tiny(3)
    assert saved.record.source is None
    path = save_model(tmp_path / "x.pt", saved)
    model = open_model(ModelChoice.file(path))
    assert model.record.source == "file x.pt"
    assert model.n_classes == 3
    expected = state(saved)
    loaded = model.state_dict()
    assert expected.keys() == loaded.keys()
    assert all(torch.equal(expected[k], loaded[k]) for k in expected)
    # a str path works as well as a Path
    assert open_model(ModelChoice.file(str(path))).record.source == "file x.pt"


def test_open_file_keeps_a_recorded_source(tmp_path) -> None:
    saved = tiny()
    saved.record.source = "fine-tuned from a.pt"
    path = save_model(tmp_path / "b.pt", saved)
    assert open_model(ModelChoice.file(path)).record.source == "fine-tuned from a.pt"


def test_open_file_refusals(tmp_path) -> None:
    missing = tmp_path / "missing.pt"
    with pytest.raises(InputError) as err:
        open_model(ModelChoice.file(missing))
    assert type(err.value) is InputError
    assert str(missing) in str(err.value) and "no such model file" in str(err.value)
    with pytest.raises(InputError, match="no such model file"):
        open_model(ModelChoice.file(tmp_path))  # a folder is not a model file
    for nothing in (None, ""):
        with pytest.raises(InputError, match="choose a model file"):
            open_model(ModelChoice.file(nothing))
    with pytest.raises(InputError, match="unknown model source 'zoo'"):
        open_model(ModelChoice("zoo"))


# ---------------------------------------------------------------------------- classes
@pytest.mark.parametrize(
    ("model_k", "plan", "k"),
    [
        (2, LabelPlan("scribbles", 2), 2),
        (4, LabelPlan("scribbles", 2), 4),  # a model keeps a larger K for scribbles
        (2, LabelPlan("scribbles", 5), 5),
        (1, LabelPlan("instances", 2), 2),
        (3, LabelPlan("instances", 2), 2),  # instances are always background / cell
        (2, LabelPlan("dense", 3, (0, 128, 255)), 3),
        (5, LabelPlan("dense", 2, (0, 255)), 2),  # dense: exactly its values
    ],
)
def test_classes_for_training(model_k, plan, k) -> None:
    assert classes_for_training(model_k, plan) == k


# ---------------------------------------------------------------------------- fit_model
def test_fit_model_replaces_the_head_when_k_changes() -> None:
    model = tiny(2)
    before = state(model)
    notices = fit_model(model, LabelPlan("scribbles", 3))
    assert model.n_classes == 3
    assert model.head.weight.shape[0] == 3 and model.head.bias.shape == (3,)
    assert len(notices) == 1
    assert "2 classes" in notices[0] and "need 3" in notices[0]
    assert "new, untrained output layer" in notices[0]
    after = state(model)
    assert before.keys() == after.keys()
    assert not torch.equal(before["head.weight"][:2], after["head.weight"][:2])
    body = [k for k in before if not k.startswith("head.")]
    assert "encoder.0.0.weight" in body and len(body) > 10
    for k in body:
        assert torch.equal(before[k], after[k]), k
    assert model.record.architecture.n_classes == 3


def test_fit_model_replaces_the_head_with_the_same_shape_for_instances() -> None:
    model = tiny(4)
    before = state(model)
    notices = fit_model(model, LabelPlan("instances", 2))
    assert model.n_classes == 2 and len(notices) == 1
    assert "4 classes" in notices[0] and "need 2" in notices[0]
    assert torch.equal(before["encoder.0.0.weight"], model.state_dict()["encoder.0.0.weight"])


def test_fit_model_keeps_the_head_when_k_fits() -> None:
    model = tiny(4)
    model.record.classes = Classes(names=["a", "b", "c", "d"])
    before = state(model)
    assert fit_model(model, LabelPlan("scribbles", 2)) == []  # K = 4 kept
    assert model.n_classes == 4
    after = state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.record.classes.names == ["a", "b", "c", "d"]
    assert model.record.classes.label_values is None


def test_fit_model_records_dense_values_and_names() -> None:
    model = tiny(2)
    model.record.classes = Classes(names=["x", "y"])
    assert fit_model(model, LabelPlan("dense", 2, (0, 255))) == []
    assert model.record.classes.label_values == [0, 255]
    assert model.record.classes.names == ["value 0", "value 255"]
    assert model.record.classes.mode == "dense"
    model.record.validate()  # what saving it will check

    three = tiny(2)
    fit_model(three, LabelPlan("dense", 3, (0, 128, 255)))
    assert three.n_classes == 3
    assert three.record.classes.label_values == [0, 128, 255]
    assert three.record.classes.names == ["value 0", "value 128", "value 255"]


def test_fit_model_dense_with_class_names() -> None:
    model = tiny(2)
    fit_model(model, LabelPlan("dense", 2, (0, 255)), ["background", "nucleus"])
    assert model.record.classes.names == ["background", "nucleus"]
    assert model.record.classes.label_values == [0, 255]


@pytest.mark.parametrize(
    ("plan", "names", "phrase"),
    [
        (LabelPlan("dense", 2, (0, 255)), ["a", "b", "c"], "3 class names for 2 classes"),
        (LabelPlan("instances", 2), ["cell"], "1 class names for 2 classes"),
        (LabelPlan("scribbles", 3), ["a", "b"], "2 class names for 3 classes"),
    ],
)
def test_fit_model_refuses_class_names_of_the_wrong_length(plan, names, phrase) -> None:
    with pytest.raises(InputError) as err:
        fit_model(tiny(2), plan, names)
    assert phrase in str(err.value)
    assert all(n in str(err.value) for n in names)


def test_a_refused_fit_model_leaves_the_model_as_it_was() -> None:
    model = tiny(3)
    model.record.classes = Classes(names=["a", "b", "c"], label_mode="scribbles")
    before = state(model)
    with pytest.raises(InputError, match="3 class names for 2 classes"):
        fit_model(model, LabelPlan("dense", 2, (0, 255)), ["a", "b", "c"])
    assert model.n_classes == 3
    assert model.record.classes.names == ["a", "b", "c"]
    after = state(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_dense_model_fitted_to_scribbles_drops_its_values() -> None:
    model = tiny(2)
    fit_model(model, LabelPlan("dense", 2, (0, 255)))
    fit_model(model, LabelPlan("scribbles", 2))
    assert model.record.classes.label_values is None
    assert label_values_table(model) is None


def test_fit_model_scribbles_names_given() -> None:
    model = tiny(2)
    assert fit_model(model, LabelPlan("scribbles", 2), ["membrane", "cell"]) == []
    assert model.record.classes.names == ["membrane", "cell"]


# ---------------------------------------------------------------------------- object_channel
def test_object_channel_explicit_one_based_class() -> None:
    model = tiny(3)
    assert [object_channel(model, c) for c in (1, 2, 3)] == [0, 1, 2]
    for bad in (0, 4, -1):
        with pytest.raises(InputError, match="between 1 and 3"):
            object_channel(model, bad)


def test_object_channel_of_an_instance_trained_model() -> None:
    model = tiny(2)
    model.record.classes = Classes(names=["bg", "fg"], label_mode="instances")
    assert object_channel(model) == 1


def test_object_channel_of_background_object_names() -> None:
    model = tiny(2)
    model.record.classes = Classes(names=["background", "nucleus"], label_mode="scribbles")
    assert object_channel(model) == 1


@pytest.mark.parametrize(
    ("k", "classes"),
    [
        (2, Classes()),
        (2, Classes(names=["nucleus", "background"])),  # background is not first
        (2, Classes(names=["membrane", "cell"], label_mode="scribbles")),
        (3, Classes(names=["background", "a", "b"])),
        (2, Classes(label_values=[0, 255], label_mode="dense")),
        (1, Classes(label_mode="instances")),  # one class: nothing to split from
    ],
)
def test_object_channel_none_otherwise(k, classes) -> None:
    model = tiny(k)
    model.record.classes = classes
    assert object_channel(model) is None


def test_object_channel_explicit_wins_over_the_record() -> None:
    model = tiny(2)
    model.record.classes = Classes(names=["background", "nucleus"])
    assert object_channel(model, 1) == 0


# ---------------------------------------------------------------------------- label values
@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        ([0, 255], np.uint8),
        ([3, 7], np.uint8),
        ([0, 256], np.uint16),
        ([0, 65535], np.uint16),
        ([0, 65536], np.int64),
    ],
)
def test_label_values_table_dtype(values, dtype) -> None:
    model = tiny(2)
    model.record.classes = Classes(label_values=values)
    table = label_values_table(model)
    assert table.dtype == dtype
    np.testing.assert_array_equal(table, values)


def test_label_values_table_none_without_values_or_of_the_wrong_length() -> None:
    model = tiny(2)
    assert label_values_table(model) is None
    model.record.classes = Classes(label_values=[0, 128, 255])  # 3 values, K = 2
    assert label_values_table(model) is None


def test_label_values_survive_saving(tmp_path) -> None:
    model = tiny(2)
    fit_model(model, LabelPlan("dense", 2, (0, 1000)))
    loaded = load_model(save_model(tmp_path / "dense.pt", model))
    table = label_values_table(loaded)
    assert table.dtype == np.uint16 and table.tolist() == [0, 1000]


# ---------------------------------------------------------------------------- steps
def test_steps_trained_sums_the_runs(tmp_path) -> None:
    model = tiny(2)
    assert steps_trained(model) == 0
    model.record.training = [
        TrainingRun(steps_done=5),
        TrainingRun(),  # steps not recorded: 0
        TrainingRun(steps_done=7),
        TrainingRun(steps_done=0),
    ]
    assert steps_trained(model) == 12
    loaded = load_model(save_model(tmp_path / "runs.pt", model))
    assert steps_trained(loaded) == 12


def test_rename_classes_changes_the_record_only() -> None:
    import pytest as _pytest

    from napari_unet.unet.data import InputError
    from napari_unet.workflow import ModelChoice, open_model, parse_class_names, rename_classes

    assert parse_class_names(" background ,nucleus ") == ["background", "nucleus"]
    assert parse_class_names("") is None and parse_class_names("  ") is None
    model = open_model(ModelChoice.new("tiny"), 1, 2)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    rename_classes(model, ["gap", "cell"])
    assert model.record.classes.names == ["gap", "cell"]
    assert all((v == weights[k]).all() for k, v in model.state_dict().items())
    for names, phrase in ((["a"], "1 class names for the model's 2"), (["a", "a"], "twice")):
        with _pytest.raises(InputError, match=phrase):
            rename_classes(model, names)
        assert model.record.classes.names == ["gap", "cell"]
