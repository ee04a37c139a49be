"""The jobs hand their results to the main thread and wait; the widget writes them one
layer per turn of the event loop (napari takes ~150 ms to add a layer under software
OpenGL: several at once froze the window, and torch's threads slowed it down further)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from .conftest import bundled_nuclei

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

CROP = (slice(40, 168), slice(200, 328))


@pytest.fixture(scope="module")
def tiny_model():
    from napari_unet.workflow import ModelChoice, open_model

    return open_model(ModelChoice.new("tiny"), 1, 2)


def planes(n: int) -> list[np.ndarray]:
    image = bundled_nuclei()["image"][CROP].astype(np.float32)
    return [np.roll(image, 7 * i, axis=0) for i in range(n)]


def start_predicting(model, n: int, wait_for_gui: bool, cancel: threading.Event):
    from napari_unet.widgets.workers import predict_job

    data = planes(n)
    indices = [(i,) for i in range(n)]
    return predict_job(
        model,
        indices,
        lambda idx: data[idx[0]][None],
        None,
        None,
        "cpu",
        cancel,
        wait_for_gui=wait_for_gui,
    )


def timed_next(gen) -> tuple[object, float]:
    t0 = time.perf_counter()
    try:
        value = next(gen)
    except StopIteration as stop:
        value = stop.value
    return value, time.perf_counter() - t0


def test_prediction_waits_until_the_gui_has_written_the_first_plane(tiny_model) -> None:
    """The first plane creates the result layers: the job waits for them; later planes
    only update the layers and are predicted while the widget writes."""
    from napari_unet.widgets.workers import JobDone, PlaneResult

    gen = start_predicting(tiny_model, 3, True, threading.Event())
    first, _ = timed_next(gen)
    assert isinstance(first, PlaneResult) and not first.applied.is_set()
    threading.Timer(0.4, first.applied.set).start()  # the GUI writes it 0.4 s later
    second, waited = timed_next(gen)
    assert isinstance(second, PlaneResult) and second.index == (1,)
    assert waited >= 0.4
    third, _ = timed_next(gen)  # nobody sets second.applied: no wait
    assert isinstance(third, PlaneResult) and third.index == (2,)
    done, _ = timed_next(gen)
    assert isinstance(done, JobDone) and done.steps == 3


def test_cancel_releases_a_job_waiting_for_the_gui(tiny_model) -> None:
    from napari_unet.widgets.workers import JobDone

    cancel = threading.Event()
    gen = start_predicting(tiny_model, 2, True, cancel)
    timed_next(gen)  # the GUI never answers
    threading.Timer(0.2, cancel.set).start()
    done, waited = timed_next(gen)
    assert isinstance(done, JobDone) and done.cancelled and 0.2 <= waited < 2.0


def test_without_a_gui_the_job_does_not_wait(tiny_model) -> None:
    from napari_unet.widgets.workers import JobDone

    gen = start_predicting(tiny_model, 2, False, threading.Event())
    timed_next(gen)
    timed_next(gen)
    done, waited = timed_next(gen)  # nobody sets .applied
    assert isinstance(done, JobDone) and done.steps == 2 and waited < 0.2


def test_results_are_written_one_new_layer_per_event_loop_turn(make_napari_viewer, qtbot) -> None:
    """A 0 ms Qt timer counts the turns of the event loop; each result layer napari adds
    must arrive in a turn of its own, and the job ends only after the last one."""
    from qtpy.QtCore import QTimer

    viewer = make_napari_viewer()
    nuclei = bundled_nuclei()
    viewer.add_image(nuclei["image"][CROP], name="crop")
    viewer.add_labels(nuclei["scribbles"][CROP], name="crop scribbles")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    widget.image_layer.value = viewer.layers["crop"]
    widget.labels_layer.value = viewer.layers["crop scribbles"]
    widget.model_source.value = "New U-Net"
    widget.make_model_button.native.click()
    turn = [0]
    counter = QTimer()
    counter.timeout.connect(lambda: turn.__setitem__(0, turn[0] + 1))
    counter.start(0)
    added: list[tuple[str, int]] = []
    viewer.layers.events.inserted.connect(lambda e: added.append((e.value.name, turn[0])))
    widget.predict_button.native.click()
    qtbot.waitUntil(lambda: not widget.jobs.busy, timeout=60_000)
    # the job has ended; the widget stays busy until its last layer is written
    qtbot.waitUntil(lambda: not widget.busy, timeout=10_000)
    assert widget.predict_button.enabled
    counter.stop()
    names = [name for name, _ in added]
    assert names == [
        *("a_k(x)", "p_k(x)", "segmentation", "H(x)", "w(x)", "loss(x)", "annotate next")
    ]
    turns = [t for _, t in added]
    assert len(set(turns)) == len(turns), added
    # the job finished after the last write: every layer holds the prediction
    p = viewer.layers["p_k(x)"].data
    assert p.shape == (2, 128, 128)
    np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-5)
