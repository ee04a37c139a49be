"""The model's record (unet/record.py): typed, validated, versioned, and the one summary."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_unet import CheckpointError, UNet, load_model, save_model
from napari_unet.io.checkpoint import read_checkpoint
from napari_unet.unet import network
from napari_unet.unet.presets import PRESETS, preset_config
from napari_unet.unet.record import (
    LABEL_VALUE_MAX,
    MAX_BASE_CHANNELS,
    MAX_DEPTH,
    Architecture,
    ModelRecord,
    Normalization,
    RecordError,
    TrainingRun,
    WeightMapRecipe,
    summary,
)

ROOT = Path(__file__).resolve().parents[1]
NUCLEI = ROOT / "src" / "napari_unet" / "pretrained" / "nuclei.pt"
FIXTURES = ROOT / "tests" / "fixtures"
V1_FILES = [NUCLEI, FIXTURES / "v1_instances.pt", FIXTURES / "v1_dense_cli.pt"]
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _raw(path: Path) -> dict:
    """The file's payload and its JSON config, read independently of the code under test."""
    payload = torch.load(path, map_location="cpu", weights_only=True)
    return payload | {"config": json.loads(payload["config"])}


def _tiny() -> UNet:
    torch.manual_seed(0)
    return UNet(depth=2, base_channels=4, dropout=0.0).eval()


def _write_v1(path: Path, arch: dict, metadata: dict, state: dict | None = None) -> Path:
    state = state if state is not None else _raw(FIXTURES / "v1_instances.pt")["state_dict"]
    config = json.dumps({"architecture": arch, "metadata": metadata})
    payload = {"format": "napari-unet", "format_version": 1, "config": config}
    torch.save(payload | {"state_dict": state}, path)
    return path


@pytest.fixture
def built(monkeypatch):
    """The devices of every U-Net constructed (``meta``: shape checks, no memory)."""
    devices: list[str] = []
    original = network.UNet.__init__

    def counting(self, *args, **kwargs):
        devices.append(torch.empty(0).device.type)
        original(self, *args, **kwargs)

    monkeypatch.setattr(network.UNet, "__init__", counting)
    return devices


# ---------------------------------------------------------------- format 1 files load
@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.name)
def test_format_1_files_give_the_record_their_metadata_holds(path):
    raw = _raw(path)
    assert raw["format_version"] == 1
    arch, meta = raw["config"]["architecture"], raw["config"]["metadata"]
    model = load_model(path)
    rec = model.record
    assert rec.architecture.to_dict() == arch == model.config()
    assert rec.classes.names == meta["class_names"]
    assert rec.classes.label_values == meta.get("label_values")
    assert rec.classes.label_mode == meta["label_mode"]
    assert rec.normalization == Normalization(**meta["normalization"])
    assert rec.normalization_dict() == meta["normalization"]
    if "weight_map" in meta:
        assert rec.weight_map == WeightMapRecipe(**meta["weight_map"])
    else:
        assert rec.weight_map is None
    assert len(rec.training) == len(meta["training"])
    for run, expected in zip(rec.training, meta["training"], strict=True):
        assert run.config == expected["config"]
        assert run.steps_done == expected["steps_done"]
        assert run.precision_used == expected["precision_used"]
        assert run.batch_norm_recomputed == expected.get("batch_norm_recomputed")
        assert run.final_loss == expected["final_loss"]
        assert run.images == expected["images"]
        assert run.annotated_pixels == expected["annotated_pixels"]
        assert run.date == expected["date"]
        assert run.description == expected["description"]
    for key in ("source", "name", "description", "trained_on"):
        assert getattr(rec, key) == meta.get(key)
    assert rec.extra == {}
    assert rec.to_v1() == meta  # nothing lost, nothing added


def test_the_fixtures_hold_what_they_are_for():
    dense = load_model(FIXTURES / "v1_dense_cli.pt").record
    assert dense.classes.label_values == [0, 255] and dense.classes.mode == "dense"
    assert dense.source == "fine-tuned from base.pt"
    inst = load_model(FIXTURES / "v1_instances.pt").record
    assert inst.weight_map == WeightMapRecipe(10.0, 5.0, False)
    nuclei = load_model(NUCLEI).record
    assert nuclei.training[0].extra == {"training_seconds": 96.3}  # a key runs record today


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: p.name)
def test_v1_to_v2_to_v2_keeps_every_field(path, tmp_path):
    first = load_model(path)
    v2 = save_model(tmp_path / "v2.pt", first)
    raw = _raw(v2)
    assert raw["format_version"] == 2 and raw["config"]["record_version"] == 2
    second = load_model(v2)
    assert second.record == first.record
    assert ModelRecord.from_dict(raw["config"]) == first.record
    again = load_model(save_model(tmp_path / "again.pt", second))
    assert again.record == first.record
    assert again.record.to_v1() == _raw(path)["config"]["metadata"]
    for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_extra_and_rare_fields_survive_the_round_trip(tmp_path):
    model = _tiny()
    arch = model.config()
    metadata = {
        "class_names": ["bg", "cell"],
        "label_mode": "instances",
        "class_colors": [[0.0, 0.0, 0.0], [1.0, 0.5, 0.25, 1.0]],
        "normalization": {"method": "none"},
        "preset": "tiny",
        "label_offset": [0.5, -0.25],
        "bioimageio": {"name": "pkg", "license": "CC-BY-4.0", "output": "probabilities"},
        "training": [
            {"steps_done": 5, "images": ["isbi 0"], "config": {"optimizer": "adam"}, "gpu": "x"}
        ],
        "my_note": {"nested": [1, 2, {"a": None}]},
        "lab": "somewhere",
    }
    path = _write_v1(tmp_path / "v1.pt", arch, metadata, model.state_dict())
    first = load_model(path).record
    assert first.extra == {"my_note": {"nested": [1, 2, {"a": None}]}, "lab": "somewhere"}
    assert first.training[0].extra == {"gpu": "x"}
    assert first.classes.colors == [[0.0, 0.0, 0.0], [1.0, 0.5, 0.25, 1.0]]
    assert first.label_offset == (0.5, -0.25) and first.preset == "tiny"
    assert first.bioimageio.output == "probabilities"
    second = load_model(save_model(tmp_path / "v2.pt", load_model(path))).record
    assert second == first
    assert second.to_v1() == metadata
    assert ModelRecord.from_json(second.to_json()) == second


# ---------------------------------------------------------------- bad fields are refused
#: (v1 metadata key, bad value, the message says)
BAD_METADATA = [
    ("class_names", "ab", "class_names must be a list of 2 strings, got the string 'ab'"),
    ("class_names", ["only one"], "class_names must be a list of 2 strings"),
    ("class_names", ["a", 3], "class_names must be a list of 2 strings"),
    ("label_values", [-1, 255], "label_values must be a list of 2 distinct whole numbers"),
    ("label_values", [255, 255], "label_values must be a list of 2 distinct"),
    ("label_values", [0, 2**64], "label_values must be a list of 2 distinct"),
    ("label_values", [0.0, 255], "label_values must be a list of 2 distinct"),
    ("label_values", [True, 255], "label_values must be a list of 2 distinct"),
    ("label_values", "0,255", "label_values must be a list of 2 distinct"),
    ("label_mode", "sparse", "label_mode must be one of 'scribbles', 'instances', 'dense'"),
    ("class_colors", [[2, 0, 0], [0, 0, 0]], "class_colors must be a list of 2 colours"),
    ("normalization", "percentile", "normalization must be an object"),
    ("normalization", {"method": "zscore"}, "normalization.method must be one of"),
    ("normalization", {"method": "percentile", "low": "1", "high": 99.8},
     "normalization.low must be a number from 0 to 100 (a percentile), got the string '1'"),
    ("normalization", {"method": "percentile", "low": 1, "high": 101}, "normalization.high"),
    ("normalization", {"method": "percentile", "low": 50, "high": 10},
     "normalization must have 0 <= low < high <= 100, got low 50, high 10"),
    ("normalization", {"method": "percentile", "low": float("nan"), "high": 99},
     "normalization.low must be"),
    ("normalization", {"method": "percentile", "lo": 1}, "unknown field(s) 'lo'"),
    ("weight_map", {"w0": float("inf"), "sigma": 5, "class_balance": False},
     "weight_map.w0 must be a finite number >= 0"),
    ("weight_map", {"w0": 10, "sigma": 0, "class_balance": False}, "weight_map.sigma must be"),
    ("weight_map", {"w0": 10, "sigma": 5, "class_balance": "yes"},
     "weight_map.class_balance must be true or false"),
    ("training", {"steps_done": 3}, "training must be a list of training runs"),
    ("training", [{"steps_done": -1}], "training[0].steps_done must be a whole number"),
    ("training", [{"steps_done": 2.5}], "training[0].steps_done must be a whole number"),
    ("training", [{"final_loss": float("inf")}], "training[0].final_loss must be a finite"),
    ("training", [{"images": "a.tif"}], "training[0].images must be a list of strings"),
    ("training", [{}, {"config": {"learning_rate": float("nan")}}],
     "training[1].config.learning_rate must be a finite number"),
    ("training", ["run"], "training[0] must be an object"),
    ("source", 3, "source must be a string, got 3"),
    ("trained_on", ["x"], "trained_on must be a string"),
    ("label_offset", [0.5], "label_offset must be a list of two finite numbers"),
    ("prediction_shift", ["0", 1], "prediction_shift must be a list of two finite numbers"),
    ("bioimageio", {"name": "x", "output": "maybe"}, "bioimageio.output must be one of"),
]  # fmt: skip

#: (architecture key, bad value, the message says)
BAD_ARCHITECTURE = [
    ("base_channels", 4096, f"architecture.base_channels must be a whole number from 1 to "
                            f"{MAX_BASE_CHANNELS}, got 4096"),
    ("base_channels", 0, "architecture.base_channels must be a whole number"),
    ("depth", MAX_DEPTH + 1, "architecture.depth must be a whole number from 1 to 8"),
    ("depth", "4", "architecture.depth must be a whole number"),
    ("in_channels", 65, "architecture.in_channels must be a whole number from 1 to 64"),
    ("n_classes", 257, "architecture.n_classes must be a whole number from 1 to 256"),
    ("n_classes", 2.0, "architecture.n_classes must be a whole number"),
    ("padding", "full", "architecture.padding must be one of 'valid', 'same'"),
    ("batch_norm", 1, "architecture.batch_norm must be true or false"),
    ("dropout", 1.0, "architecture.dropout must be a number in [0, 1)"),
    ("dropout", float("nan"), "architecture.dropout must be a number in [0, 1)"),
    ("attention", True, "architecture has unknown field(s) 'attention'"),
]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "phrase"), BAD_METADATA, ids=lambda v: str(v)[:30])
def test_bad_metadata_field_is_refused_naming_field_and_file(key, value, phrase, tmp_path, built):
    raw = _raw(FIXTURES / "v1_instances.pt")
    metadata = raw["config"]["metadata"] | {key: value}
    path = _write_v1(tmp_path / "bad.pt", raw["config"]["architecture"], metadata)
    with pytest.raises(CheckpointError) as err:
        load_model(path)
    assert str(err.value).startswith("bad.pt: ")
    assert phrase in str(err.value)
    assert built == []  # refused before any network was built


@pytest.mark.parametrize(("key", "value", "phrase"), BAD_ARCHITECTURE, ids=lambda v: str(v)[:30])
def test_bad_architecture_is_refused_before_allocation(key, value, phrase, tmp_path, built):
    raw = _raw(FIXTURES / "v1_instances.pt")
    arch = raw["config"]["architecture"] | {key: value}
    path = _write_v1(tmp_path / "bad.pt", arch, raw["config"]["metadata"])
    with pytest.raises(CheckpointError, match="unknown or invalid architecture") as err:
        read_checkpoint(path)
    assert str(err.value).startswith("bad.pt: ") and phrase in str(err.value)
    assert built == []


def test_too_many_parameters_is_refused_before_allocation(tmp_path, built):
    raw = _raw(FIXTURES / "v1_instances.pt")
    arch = raw["config"]["architecture"] | {"depth": 8, "base_channels": 1024}
    path = _write_v1(tmp_path / "huge.pt", arch, raw["config"]["metadata"])
    with pytest.raises(CheckpointError, match="parameters, more than the 268,435,456 allowed"):
        load_model(path)
    assert built == []


def test_weights_of_another_size_are_refused_without_allocating(tmp_path, built):
    """A small file declaring a large (but allowed) network: 56 M parameters, 225 MB if
    built; the weights' shapes are checked on the meta device first."""
    raw = _raw(FIXTURES / "v1_instances.pt")
    arch = raw["config"]["architecture"] | {"depth": 1, "base_channels": 1024}
    assert Architecture.from_dict(arch).parameter_count() > 50_000_000
    path = _write_v1(tmp_path / "big.pt", arch, raw["config"]["metadata"])
    assert path.stat().st_size < 1e6
    with pytest.raises(CheckpointError, match="big.pt: the weights do not fit the architecture"):
        load_model(path)
    assert built == ["meta"]


def test_bad_field_of_a_format_2_file_is_refused(tmp_path, built):
    path = save_model(tmp_path / "good.pt", _tiny())
    payload = torch.load(path, weights_only=True)
    record = json.loads(payload["config"])
    cases = [
        (("classes", "names"), "ab", "classes.names must be a list of 2 strings"),
        (("classes", "label_values"), [-1, 255], "classes.label_values must be a list of 2"),
        (("architecture", "base_channels"), 4096, "architecture.base_channels"),
        (("record_version",), 3, "record version 3 is not supported"),
        (("surprise",), 1, "record has unknown field(s) 'surprise'"),
    ]
    for keys, value, phrase in cases:
        bad = json.loads(json.dumps(record))
        target = bad
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
        torch.save(payload | {"config": json.dumps(bad)}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match="bad.pt: ") as err:
            load_model(tmp_path / "bad.pt")
        assert phrase in str(err.value), (keys, str(err.value))
    assert built == [torch.empty(0).device.type]  # only _tiny() itself


# ---------------------------------------------------------------- properties
_NOT_A_LIST_OF_2_STRINGS = st.one_of(
    st.text(max_size=4),
    st.integers(),
    st.none().map(lambda _: {"a": 1}),
    st.lists(st.text(max_size=3), max_size=5).filter(lambda v: len(v) != 2),
    st.lists(st.one_of(st.integers(), st.floats(), st.booleans()), min_size=2, max_size=2),
)
_BAD_LABEL_VALUES = st.one_of(
    st.tuples(st.integers(max_value=-1), st.integers(0, 255)).map(list),
    st.tuples(st.integers(0, 9), st.integers(LABEL_VALUE_MAX + 1, 2**80)).map(list),
    st.integers(0, 2**16).map(lambda v: [v, v]),
    st.tuples(st.floats(0, 255), st.integers(0, 255)).map(list),
    st.lists(st.integers(0, 255), unique=True, max_size=4).filter(lambda v: len(v) != 2),
    st.text(max_size=5),
)
_NOT_A_PERCENTILE = st.one_of(
    st.floats().filter(lambda v: not (math.isfinite(v) and 0 <= v <= 100)),
    st.integers().filter(lambda v: not 0 <= v <= 100),
    st.text(max_size=5),
    st.booleans(),
    st.none(),
)
_BAD_SIZE = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=MAX_BASE_CHANNELS + 1),
    st.floats(),
    st.text(max_size=4),
    st.booleans(),
)
#: field -> (how to put a bad value into (architecture, metadata), what the message names)
BAD_VALUES = {
    "class_names": (_NOT_A_LIST_OF_2_STRINGS, lambda a, m, v: m.update(class_names=v)),
    "label_values": (_BAD_LABEL_VALUES, lambda a, m, v: m.update(label_values=v)),
    "normalization.low": (
        _NOT_A_PERCENTILE,
        lambda a, m, v: m.update(normalization={"method": "percentile", "low": v, "high": 99.8}),
    ),
    "normalization.high": (
        _NOT_A_PERCENTILE,
        lambda a, m, v: m.update(normalization={"method": "percentile", "low": 1, "high": v}),
    ),
    "architecture.base_channels": (_BAD_SIZE, lambda a, m, v: a.update(base_channels=v)),
    "architecture.depth": (
        st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_DEPTH + 1), st.text()),
        lambda a, m, v: a.update(depth=v),
    ),
    "training[0].steps_done": (
        st.one_of(st.integers(max_value=-1), st.floats(), st.text(max_size=3)),
        lambda a, m, v: m.update(training=[{"steps_done": v}]),
    ),
    "weight_map.sigma": (
        st.one_of(st.floats(max_value=0), st.just(float("inf")), st.just(float("nan"))),
        lambda a, m, v: m.update(weight_map={"w0": 10, "sigma": v, "class_balance": False}),
    ),
}


@FAST
@given(st.sampled_from(sorted(BAD_VALUES)), st.data())
def test_any_bad_value_never_builds_a_model_and_names_the_field(name, data):
    strategy, put = BAD_VALUES[name]
    value = data.draw(strategy, label=name)
    raw = _raw(FIXTURES / "v1_instances.pt")
    arch, meta = dict(raw["config"]["architecture"]), dict(raw["config"]["metadata"])
    put(arch, meta, value)
    built: list[str] = []
    original = network.UNet.__init__

    def counting(self, *args, **kwargs):
        built.append("built")
        original(self, *args, **kwargs)

    with tempfile.TemporaryDirectory() as folder:
        path = _write_v1(Path(folder) / "hostile.pt", arch, meta)
        network.UNet.__init__ = counting
        try:
            with pytest.raises(CheckpointError) as err:
                load_model(path)
        finally:
            network.UNet.__init__ = original
    assert str(err.value).startswith("hostile.pt: ")
    field_name = name if "low" not in name and "high" not in name else "normalization"
    assert field_name in str(err.value)
    assert built == []


_ARCHITECTURES = st.builds(
    Architecture,
    in_channels=st.integers(1, 4),
    n_classes=st.integers(1, 5),
    depth=st.integers(1, 3),
    base_channels=st.integers(1, 6),
    padding=st.sampled_from(["valid", "same"]),
    batch_norm=st.booleans(),
    dropout=st.sampled_from([0.0, 0.5]),
)


@FAST
@given(_ARCHITECTURES)
def test_parameter_count_is_the_networks(arch):
    net = network.UNet(**arch.to_dict())
    assert arch.parameter_count() == sum(p.numel() for p in net.parameters())


@FAST
@given(
    _ARCHITECTURES,
    st.lists(st.text(max_size=8), min_size=5, max_size=5, unique=True),
    st.lists(st.integers(0, LABEL_VALUE_MAX), min_size=5, max_size=5, unique=True),
    st.tuples(st.floats(0, 50), st.floats(50.5, 100)),
    st.lists(
        st.builds(
            TrainingRun,
            steps_done=st.integers(0, 10**6),
            final_loss=st.floats(allow_nan=False, allow_infinity=False),
            images=st.lists(st.text(max_size=5), max_size=3),
        ),
        max_size=3,
    ),
    st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
)
def test_any_valid_record_round_trips_through_json(arch, names, values, lohi, runs, extra):
    k = arch.n_classes
    rec = ModelRecord(architecture=arch, training=runs, extra=extra, source="new")
    rec.classes.names, rec.classes.label_values = names[:k], values[:k]
    rec.normalization = Normalization("percentile", *lohi)
    assert ModelRecord.from_json(rec.to_json()) == rec
    assert ModelRecord.from_v1(rec.to_v1(), arch) == rec


def test_the_bounds_fit_the_presets_and_the_bundled_model():
    for name in PRESETS:
        for k in (1, 2, 256):
            arch = preset_config(name, in_channels=3, n_classes=k)
            assert Architecture.from_dict(arch).to_dict() == arch
    Architecture.from_dict(_raw(NUCLEI)["config"]["architecture"])
    # UNet's defaults (the paper's network) are Architecture's defaults
    assert Architecture().to_dict() == network.UNet().config()


# ---------------------------------------------------------------- the model holds it
def test_the_record_follows_the_model():
    model = _tiny()
    rec = model.record
    assert rec.architecture.to_dict() == model.config()
    rec.classes.names, rec.classes.label_values = ["a", "b"], [0, 255]
    rec.classes.label_mode = "instances"
    model.replace_head(3)
    assert model.record is rec and rec.architecture.n_classes == 3
    assert rec.classes.names is None and rec.classes.label_values is None
    assert rec.classes.label_mode == "instances"
    with pytest.raises(ValueError, match="another network"):
        model.record = ModelRecord(architecture=Architecture(depth=3))
    with pytest.raises(RecordError, match="classes.names must be a list of 3 strings"):
        model.record = ModelRecord(
            architecture=model.record.architecture, classes=type(rec.classes)(names=["x"])
        )


def test_a_bad_record_is_not_saved(tmp_path):
    model = _tiny()
    model.record.classes.names = ["only one"]
    with pytest.raises(RecordError, match="m.pt: classes.names must be a list of 2 strings"):
        save_model(tmp_path / "m.pt", model)
    assert not (tmp_path / "m.pt").exists()


def test_training_records_a_typed_run():
    from napari_unet import TrainConfig, fit, prepare_sample

    model = _tiny()
    image = torch.rand(48, 48).numpy()
    labels = (image > 0.5).astype("uint8") + 1
    fit(model, [prepare_sample(image, labels, name="img")], TrainConfig(steps=2, tile_size=8))
    run = model.record.last_run
    assert isinstance(run, TrainingRun) and run.steps_done == 2 and run.images == ["img"]
    assert run.config["steps"] == 2 and math.isfinite(run.final_loss)
    assert model.record.classes.names == ["class 1", "class 2"]
    assert model.record.classes.label_mode == "scribbles"
    assert model.record.normalization == Normalization()
    assert model.record.steps_trained() == 2


# ---------------------------------------------------------------- deprecated view
@pytest.mark.filterwarnings("ignore:UNet.metadata is deprecated:DeprecationWarning")
def test_the_metadata_view_writes_through_to_the_record():
    """The dict operations scripts written for 0.1 use on ``model.metadata``."""
    model = _tiny()
    meta = model.metadata
    assert meta.get("normalization") is None and meta == {} and "training" not in meta
    meta["source"] = "new tiny U-Net"
    meta.setdefault("source", "file x.pt")
    assert model.record.source == "new tiny U-Net"
    meta["label_values"] = [0, 255]
    meta["class_names"] = ["membrane", "cell"]
    assert model.record.classes.names == ["membrane", "cell"]
    assert model.record.classes.label_values == [0, 255]
    assert meta.pop("label_values", None) == [0, 255] and model.record.classes.label_values is None
    assert meta.pop("label_values", None) is None
    meta["weight_map"] = {"w0": 10.0, "sigma": 5.0, "class_balance": True}
    assert model.record.weight_map == WeightMapRecipe(10.0, 5.0, True)
    meta["normalization"] = {"method": "none"}
    assert meta.get("normalization") == {"method": "none"}
    assert model.record.normalization == Normalization("none", None, None)
    assert (meta.get("training") or [{}])[-1] == {}
    meta.setdefault("training", []).append({"steps_done": 3, "images": ["a"]})
    last = (meta.get("training") or [{}])[-1]
    assert last["steps_done"] == 3 and last.get("batch_norm_recomputed") is None
    last["images"] = ["a", "b"]
    last["training_seconds"] = 1.5
    assert model.record.training[-1].images == ["a", "b"]
    assert model.record.training[-1].extra == {"training_seconds": 1.5}
    meta.update({"name": "mine", "my_key": [1]})
    assert model.record.name == "mine" and model.record.extra == {"my_key": [1]}
    assert dict(meta)["class_names"] == ["membrane", "cell"]
    with pytest.raises(RecordError, match="class_names must be a list of 2 strings"):
        meta["class_names"] = "ab"
    with pytest.raises(RecordError, match="training\\[0\\].steps_done"):
        meta["training"] = [{"steps_done": -1}]
    copy = _tiny()
    copy.metadata = dict(meta)
    assert copy.record == model.record and copy.metadata == meta


def test_the_metadata_view_is_deprecated():
    model = _tiny()
    with pytest.warns(DeprecationWarning, match="use the typed UNet.record"):
        model.metadata.get("source")
    with pytest.warns(DeprecationWarning, match="use the typed UNet.record"):
        model.metadata = {"source": "x"}
    assert model.record.source == "x"


# ---------------------------------------------------------------- one summary
def test_one_summary_for_every_place_a_model_is_described(capsys):
    from napari_unet.cli import main
    from napari_unet.pretrained import load_pretrained, model_summary
    from napari_unet.widgets.options import describe_model

    model = load_pretrained("nuclei")
    short = summary(model)
    assert short == summary(model.record) == model_summary(model) == describe_model(model)
    assert short.startswith("nuclei: U-Net depth 3, base 16, same padding, batch norm")
    assert "source: bundled:nuclei; trained 1000 steps in 1 run(s)" in short
    assert main(["info", "nuclei"]) == 0
    assert summary(model, detail=True) in capsys.readouterr().out
    dense = summary(load_model(FIXTURES / "v1_dense_cli.pt"))
    assert "2 classes (0 = membrane, 255 = cell)" in dense and "dense mode" in dense
    assert summary(_tiny()).splitlines()[1] == "source: new; untrained"


def test_class_names_must_differ() -> None:
    from napari_unet.unet.record import Classes

    with pytest.raises(RecordError, match="classes.names must be 2 different strings"):
        Classes.from_dict({"names": ["cell", "cell"]}, 2)
