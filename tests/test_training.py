import numpy as np
import pytest
import torch

from napari_unet import TrainConfig, UNet, fit, predict_tiled, prepare_sample, train
from napari_unet.unet.data import InputError
from napari_unet.unet.record import Normalization
from napari_unet.unet.training import TrainingDiverged

from .conftest import load_isbi


def _tiny(**kw):
    torch.manual_seed(0)
    return UNet(depth=2, base_channels=4, dropout=0, **kw)


def _toy_sample(mode="scribbles"):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(48, 48)).astype(np.float32)
    labels = np.zeros((48, 48), np.uint8)
    labels[5:10, 5:40] = 1
    labels[30:35, 5:40] = 2
    image[30:35, 5:40] += 3
    return prepare_sample(image, labels, mode=mode)


def test_short_isbi_training_beats_majority_class():
    """Two ISBI slices, a short run: the loss falls and a third slice beats the majority."""
    torch.manual_seed(0)
    samples = [prepare_sample(*load_isbi(i), name=str(i)) for i in (0, 1)]
    model = UNet(depth=3, base_channels=8, batch_norm=True, dropout=0)
    config = TrainConfig(steps=80, batch_size=2, tile_size=96, learning_rate=3e-3, seed=0)
    losses = fit(model, samples, config)
    assert len(losses) == 80
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    image, truth = load_isbi(2)
    accuracy = (predict_tiled(model, image).labels == truth).mean()
    majority = max((truth == 1).mean(), (truth == 2).mean())
    assert accuracy > majority + 0.03, (accuracy, majority)


def test_progress_events_and_stopping_between_steps():
    model = _tiny()
    gen = train(model, [_toy_sample()], TrainConfig(steps=50, tile_size=16, batch_size=1))
    events = [next(gen) for _ in range(3)]
    assert [e.step for e in events] == [1, 2, 3]
    assert all(e.steps == 50 and np.isfinite(e.loss) and e.elapsed > 0 for e in events)
    assert events[-1].steps_per_second > 0 and events[-1].eta > 0
    gen.close()  # stop between two steps
    assert not model.training  # left usable, in eval mode
    assert model.record.training[-1].steps_done == 3
    pred = predict_tiled(model, np.zeros((20, 20), np.float32))
    assert pred.labels.shape == (20, 20)


def test_seeded_runs_are_reproducible():
    results = []
    for _ in range(2):
        model = _tiny()
        losses = fit(model, [_toy_sample()], TrainConfig(steps=5, tile_size=16, seed=3))
        results.append((losses, model.head.weight.detach().clone()))
    assert results[0][0] == results[1][0]
    assert torch.equal(results[0][1], results[1][1])


def test_sgd_paper_optimizer_and_instances_with_weight_map():
    labels = np.zeros((40, 40), np.uint16)
    labels[5:15, 5:15] = 1
    labels[5:15, 17:27] = 7  # two touching-ish cells, 2 px apart
    image = (labels > 0).astype(np.float32) + np.random.default_rng(0).normal(0, 0.1, (40, 40))
    sample = prepare_sample(image, labels, mode="instances", use_weight_map=True)
    assert sample.weight.max() > 5  # the border term between the two cells
    model = _tiny()
    cfg = TrainConfig(steps=4, optimizer="sgd", learning_rate=1e-3, tile_size=16)
    losses = fit(model, [sample], cfg)
    assert len(losses) == 4 and all(np.isfinite(losses))


def test_fine_tuning_with_new_head():
    model = _tiny()
    fit(model, [_toy_sample()], TrainConfig(steps=2, tile_size=16))
    body = model.encoder[0][0].weight.detach().clone()
    labels = np.zeros((48, 48), np.uint8)
    labels[2:6, :] = 1
    labels[20:24, :] = 2
    labels[40:44, :] = 3
    sample = prepare_sample(np.random.default_rng(1).random((48, 48)), labels)
    with pytest.raises(InputError, match="only 2 classes"):
        fit(model, [sample], TrainConfig(steps=1, tile_size=16))
    model.replace_head(3)
    fit(model, [sample], TrainConfig(steps=2, tile_size=16))
    assert model.n_classes == 3
    assert not torch.equal(model.encoder[0][0].weight, body)  # fine-tuned, not frozen


def test_nan_loss_restores_last_good_weights():
    model = _tiny()
    sample = _toy_sample()
    good = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = TrainConfig(steps=5, tile_size=16, learning_rate=1e30, optimizer="sgd")
    with pytest.raises(TrainingDiverged, match="restored"):
        fit(model, [sample], cfg)
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            assert torch.isfinite(v).all(), k
    # the restored weights are a snapshot taken before the divergence
    assert any(torch.equal(good[k], v) for k, v in model.state_dict().items())


def test_single_class_and_empty_annotations_refused():
    image = np.random.default_rng(0).random((32, 32))
    labels = np.zeros((32, 32), np.uint8)
    with pytest.raises(InputError, match="no annotations"):
        prepare_sample(image, labels)
    labels[3:6, 3:20] = 1
    with pytest.raises(InputError, match="only one class"):
        fit(_tiny(), [prepare_sample(image, labels)], TrainConfig(steps=1))


@pytest.mark.parametrize(
    "cfg", [{"steps": 0}, {"learning_rate": -1}, {"optimizer": "lbfgs"}, {"batch_size": 0}]
)
def test_bad_config_refused(cfg):
    with pytest.raises(InputError):
        fit(_tiny(), [_toy_sample()], TrainConfig(**cfg))


def test_training_records_what_prediction_needs():
    model = _tiny()
    fit(model, [_toy_sample()], TrainConfig(steps=1, tile_size=16))
    classes = model.record.classes
    assert classes.label_mode == "scribbles"
    assert model.record.normalization == Normalization("percentile", 1.0, 99.8)
    assert classes.names == ["class 1", "class 2"]
    inst = _tiny()
    fit(inst, [_toy_sample("instances")], TrainConfig(steps=1, tile_size=16))
    assert inst.record.classes.names == ["background", "cell"]


def test_normalisation_mismatch_with_pretrained_model_refused():
    model = _tiny()
    model.record.normalization = Normalization("none", None, None)
    with pytest.raises(InputError, match="normalises images"):
        fit(model, [_toy_sample()], TrainConfig(steps=1, tile_size=16))


def test_time_budget_stops_training_and_drives_the_schedule():
    model = _tiny()
    events = list(
        train(model, [_toy_sample()], TrainConfig(steps=10**6, tile_size=16, max_seconds=1.0))
    )
    assert 1 <= len(events) < 10**6
    assert events[-1].elapsed >= 1.0 and events[-1].step == events[-1].steps
    # cosine over time: the learning rate has decayed towards 5% by the end
    assert events[-1].learning_rate < 0.3 * TrainConfig().learning_rate


def test_cosine_schedule_by_steps():
    events = list(train(_tiny(), [_toy_sample()], TrainConfig(steps=4, tile_size=16)))
    lr0 = TrainConfig().learning_rate
    expected = [lr0 * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * s / 4))) for s in range(4)]
    np.testing.assert_allclose([e.learning_rate for e in events], expected, rtol=1e-6)


def test_bf16_mixed_precision_training_runs_and_fp16_needs_cuda():
    losses = fit(_tiny(), [_toy_sample()], TrainConfig(steps=3, tile_size=16, precision="bf16"))
    assert len(losses) == 3 and all(np.isfinite(losses))
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA"):
            fit(_tiny(), [_toy_sample()], TrainConfig(steps=1, tile_size=16, precision="fp16"))
