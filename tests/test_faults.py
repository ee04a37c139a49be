"""Faults: closing, cancelling and failing in the middle of long work, with nothing lost.

- Closing the napari viewer, or cancelling, while the widget trains or predicts ends the
  worker without exceptions and without leaked threads (``threading.enumerate()`` and
  Qt's ``QThreadPool.activeThreadCount()`` return to where they were), and the model is
  left usable (eval mode, finite weights, the steps it made recorded).
- A NaN loss in the widget stops training with a message and restores the last good
  weights; the widget then predicts.
- A failure while saving (widget, CLI outputs) leaves the previous file intact; an
  interrupted CLI training saves what it has.

The core-level versions (atomic save, NaN restore) are in test_checkpoint.py and
test_training.py; the catalogue of bad inputs and faults is docs/bad-inputs.md.
"""

from __future__ import annotations

import gc
import importlib.util
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from napari_unet import UNet, load_model, save_model
from napari_unet.cli import main
from napari_unet.unet.record import Normalization

NORM = {"method": "percentile", "low": 1.0, "high": 99.8}
SIDE = 64


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


def tiny_model() -> UNet:
    torch.manual_seed(0)
    model = UNet(1, 2, depth=2, base_channels=4, dropout=0).eval()
    model.record.normalization = Normalization.from_dict(NORM)
    return model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    return save_model(tmp_path_factory.mktemp("model") / "tiny.pt", tiny_model())


# ---------------------------------------------------------------------------- threads
def running_threads() -> tuple[int, set[threading.Thread]]:
    """(busy Qt pool threads, live Python threads other than Qt's dummy entries)."""
    from qtpy.QtCore import QThreadPool

    python = {t for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}
    return QThreadPool.globalInstance().activeThreadCount(), python


def back_to(qtbot, baseline, timeout: float = 10.0) -> tuple[int, list[str]]:
    """Wait until the threads are back to ``baseline``; return what is left over."""
    deadline = time.perf_counter() + timeout
    while True:
        pool, python = running_threads()
        extra = sorted(t.name for t in python - baseline[1])
        if (pool <= baseline[0] and not extra) or time.perf_counter() > deadline:
            return pool - baseline[0], extra
        qtbot.wait(50)


# ---------------------------------------------------------------------------- widget
needs_napari = pytest.mark.skipif(
    importlib.util.find_spec("napari") is None or importlib.util.find_spec("pytestqt") is None,
    reason="napari and pytest-qt are needed for the widget tests",
)


@pytest.fixture
def setup(make_napari_viewer, model_path):
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
    widget.tile_size.value = 16
    widget.batch_size.value = 1
    widget.augment.value = False
    return viewer, widget


def wait_idle(qtbot, widget, timeout: float = 60) -> None:
    qtbot.waitUntil(lambda: not widget.busy, timeout=int(timeout * 1000))


def slow_down(model, seconds: float = 0.05):
    """Make each forward pass of ``model`` take ``seconds`` longer (a forward hook, removed
    with the handle it returns): the worker then yields more slowly than the main thread
    handles its results and they do not queue up: napari's activity bar calls
    QApplication.processEvents() in setValue, so a backlog of results is handled nested,
    and under heavy load that nesting has reached Python's recursion limit)."""
    return model.register_forward_hook(lambda *_: time.sleep(seconds))


def add_stack(viewer, widget, planes: int = 400) -> None:
    """A long stack to predict plane by plane ("whole stack"): several seconds of work."""
    image = scene()[0]
    viewer.add_image(np.stack([np.roll(image, i, axis=1) for i in range(planes)]), name="stack")
    widget.image_layer.value = viewer.layers["stack"]
    widget.labels_layer.value = None
    widget.scope.value = "whole stack"


def assert_model_usable(model, trained: bool) -> None:
    from napari_unet import predict_tiled

    assert not model.training
    for k, v in model.state_dict().items():
        if v.is_floating_point():
            assert torch.isfinite(v).all(), k
    if trained:
        assert model.record.training[-1].steps_done >= 1
    assert predict_tiled(model, scene()[0]).labels.shape == (SIDE, SIDE)


def _close_mid_job(setup, qtbot, errors, job: str) -> dict:
    """Start a long job, close the viewer while it runs, and report what happened.

    Runs in its own frame so that no reference to the closed viewer outlives it."""
    viewer, widget = setup
    baseline = running_threads()
    if job == "train":
        widget.steps.value = 100_000
        widget.train()
        qtbot.waitUntil(lambda: len(widget.loss_plot.steps) >= 3, timeout=30_000)
    else:
        add_stack(viewer, widget, planes=100)
        hook = slow_down(widget.model)
        widget.predict()
        qtbot.waitUntil(lambda: widget.progress_bar.value >= 2, timeout=30_000)
    model = widget.model
    with qtbot.capture_exceptions() as exceptions:
        viewer.close()
        left_pool, left_threads = back_to(qtbot, baseline)
        qtbot.wait(200)  # let queued signals from the worker arrive
    if job != "train":
        hook.remove()
    report = {
        "exceptions": [f"{type(e).__name__}: {e}" for _, e, _ in exceptions],
        "pool threads left": left_pool,
        "python threads left": left_threads,
        "errors": errors(),
        "model": model,
    }
    return report


@needs_napari
def test_closing_the_viewer_mid_training(setup, qtbot, errors) -> None:
    report = _close_mid_job(setup, qtbot, errors, "train")
    gc.collect()
    assert report["exceptions"] == []
    assert report["pool threads left"] <= 0
    assert report["python threads left"] == []
    assert report["errors"] == []
    assert_model_usable(report["model"], trained=True)


@needs_napari
def test_closing_the_viewer_mid_prediction(setup, qtbot, errors) -> None:
    report = _close_mid_job(setup, qtbot, errors, "predict")
    gc.collect()
    assert report["exceptions"] == []
    assert report["pool threads left"] <= 0
    assert report["python threads left"] == []
    assert report["errors"] == []
    assert_model_usable(report["model"], trained=False)


@needs_napari
def test_cancel_mid_training_ends_every_thread(setup, qtbot, errors) -> None:
    viewer, widget = setup
    baseline = running_threads()
    widget.steps.value = 100_000
    widget.train()
    qtbot.waitUntil(lambda: len(widget.loss_plot.steps) >= 3, timeout=30_000)
    widget.cancel()
    wait_idle(qtbot, widget, timeout=10)
    assert back_to(qtbot, baseline) == (0, [])
    assert errors() == []
    assert "cancelled" in widget.status.value
    assert_model_usable(widget.model, trained=True)
    widget.predict()
    wait_idle(qtbot, widget)
    assert viewer.layers["segmentation"].data.shape == (SIDE, SIDE)


@needs_napari
def test_cancel_mid_prediction_ends_cleanly(setup, qtbot, errors) -> None:
    viewer, widget = setup
    baseline = running_threads()
    add_stack(viewer, widget, planes=100)
    hook = slow_down(widget.model)
    widget.predict()
    qtbot.waitUntil(lambda: widget.progress_bar.value >= 2, timeout=30_000)
    widget.cancel()
    wait_idle(qtbot, widget, timeout=10)
    hook.remove()
    done = widget.progress_bar.value
    assert 2 <= done < 100
    assert back_to(qtbot, baseline) == (0, [])
    assert errors() == []
    assert "cancelled" in widget.status.value
    # planes predicted before the cancel are kept, the others are still empty
    p = viewer.layers["p_k(x)"].data
    np.testing.assert_allclose(p[:, :done].sum(axis=0), 1, atol=1e-5)
    assert not p[:, -1].any()
    # and the widget works again
    widget.scope.value = "current plane"
    widget.predict()
    wait_idle(qtbot, widget)
    assert errors() == []


@needs_napari
def test_nan_loss_in_the_widget_restores_the_weights(setup, qtbot, errors, monkeypatch) -> None:
    """The loss becomes NaN at step 3 (as with a far too high learning rate): training
    stops with a message naming the fix, and the weights are those before training."""
    import napari_unet.unet.training as training

    viewer, widget = setup
    real_energy = training.energy
    calls = {"n": 0}

    def diverging(*args, **kwargs):
        calls["n"] += 1
        loss = real_energy(*args, **kwargs)
        return loss * float("nan") if calls["n"] >= 3 else loss

    monkeypatch.setattr(training, "energy", diverging)
    before = {k: v.detach().clone() for k, v in widget.model.state_dict().items()}
    user = {layer.name: np.array(layer.data, copy=True) for layer in viewer.layers}
    widget.steps.value = 50
    widget.train()
    wait_idle(qtbot, widget)
    messages = errors()
    assert len(messages) == 1, messages
    assert "the loss became nan at step 3" in messages[0]
    assert "restored" in messages[0] and "lower learning rate" in messages[0]
    assert "Traceback" not in messages[0]
    for k, v in widget.model.state_dict().items():
        assert torch.equal(v, before[k]), k  # snapshot of step 0: the weights before
    assert_model_usable(widget.model, trained=False)
    for name, data in user.items():
        np.testing.assert_array_equal(viewer.layers[name].data, data)
    assert widget.train_button.enabled and not widget.busy
    monkeypatch.setattr(training, "energy", real_energy)
    widget.predict()
    wait_idle(qtbot, widget)
    assert len(errors()) == 1
    widget.steps.value = 2
    widget.train()  # and training works again
    wait_idle(qtbot, widget)
    assert len(errors()) == 1
    assert widget.model.record.training[-1].steps_done == 2


@needs_napari
def test_failed_save_in_the_widget_keeps_the_previous_file(
    setup, qtbot, errors, tmp_path, monkeypatch
) -> None:
    viewer, widget = setup
    path = widget.save_model(tmp_path / "mine.pt")
    before = path.read_bytes(), path.stat().st_mtime_ns

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    assert widget.save_model(path) is None
    assert "could not save the model" in errors()[-1]
    assert "No space left on device" in errors()[-1]
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.pt"]  # no temporary file
    monkeypatch.undo()
    assert widget.save_model(path) == path  # works again
    assert load_model(path).config() == widget.model.config()


# ---------------------------------------------------------------------------- core
def test_nan_loss_message_names_the_weights_it_restored(monkeypatch) -> None:
    import napari_unet.unet.training as training
    from napari_unet import TrainConfig, fit, prepare_sample
    from napari_unet.unet.training import TrainingDiverged

    real_energy = training.energy
    calls = {"n": 0}

    def diverging(*args, **kwargs):
        calls["n"] += 1
        loss = real_energy(*args, **kwargs)
        return loss * float("nan") if calls["n"] >= 3 else loss

    monkeypatch.setattr(training, "energy", diverging)
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(TrainingDiverged) as err:
        fit(model, [prepare_sample(*scene())], TrainConfig(steps=20, tile_size=16))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k  # the snapshot of step 0 is what was restored
    assert "the weights of step 0 were restored" in str(err.value)
    assert not model.record.training  # no step of this run is left in the model


# ---------------------------------------------------------------------------- CLI
@pytest.fixture
def work(tmp_path, model_path) -> Path:
    image, labels = scene()
    tifffile.imwrite(tmp_path / "img.tif", image)
    tifffile.imwrite(tmp_path / "lab.tif", labels)
    (tmp_path / "model.pt").write_bytes(model_path.read_bytes())
    return tmp_path


def test_cli_interrupted_training_saves_the_steps_made(work, capsys, monkeypatch) -> None:
    import napari_unet.unet.training as training

    real_train = training.train

    def interrupted(*args, **kwargs):
        for progress in real_train(*args, **kwargs):
            yield progress
            if progress.step == 3:
                raise KeyboardInterrupt  # Ctrl+C between two steps

    monkeypatch.setattr(training, "train", interrupted)
    out = work / "new.pt"
    rc = main(["train", "--images", str(work / "img.tif"), "--labels", str(work / "lab.tif"),
               "--from", str(work / "model.pt"), "--out", str(out), "--steps", "50",
               "--tile-size", "16", "--batch-size", "1", "-q"])  # fmt: skip
    assert rc == 130
    model = load_model(out)
    assert model.record.training[-1].steps_done == 3
    assert_model_usable(model, trained=True)


def test_cli_training_stopped_by_sigterm_saves_the_steps_made(work, capsys, monkeypatch) -> None:
    """kill (SIGTERM), as a job scheduler sends at its time limit, saves like Ctrl+C."""
    import os
    import signal

    import napari_unet.unet.training as training

    real_train = training.train

    def terminated(*args, **kwargs):
        for progress in real_train(*args, **kwargs):
            yield progress
            if progress.step == 3:
                os.kill(os.getpid(), signal.SIGTERM)  # delivered between two steps

    monkeypatch.setattr(training, "train", terminated)
    before = signal.getsignal(signal.SIGTERM)
    out = work / "new.pt"
    rc = main(["train", "--images", str(work / "img.tif"), "--labels", str(work / "lab.tif"),
               "--from", str(work / "model.pt"), "--out", str(out), "--steps", "50",
               "--tile-size", "16", "--batch-size", "1", "-q"])  # fmt: skip
    assert rc == 130
    assert load_model(out).record.training[-1].steps_done == 3
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is restored


def test_cli_failed_write_keeps_the_previous_output(work, capsys, monkeypatch) -> None:
    args = ["predict", str(work / "img.tif"), "--model", str(work / "model.pt"),
            "--out", str(work / "out"), "-q", "--overwrite"]  # fmt: skip
    assert main(args) == 0
    target = work / "out" / "img_labels.tif"
    before = target.read_bytes(), target.stat().st_mtime_ns

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", disk_full)
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0], err
    assert (target.read_bytes(), target.stat().st_mtime_ns) == before
    assert sorted(p.name for p in (work / "out").iterdir()) == ["img_labels.tif"]
