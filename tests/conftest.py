"""Shared test fixtures: where the real data lives, and small helpers.

Two sources of real data:

- the nuclei sample bundled with the package (``napari_unet._sample_data.load_nuclei``:
  the stardist DSB 2018 image, its 125 instance labels and the shipped scribbles), always
  there, so every test that needs only this image runs in a bare clone;
- ``../shared/data`` (ISBI 2012, DSB 2018), beside the clone; tests that need it skip,
  with the path in the reason, when it is absent (:func:`shared_data`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_data(*parts: str) -> Path:
    """A path under ../shared/data, skipping the test with a reason if it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found at {path} (tests expect ../shared/data)")
    return path


def bundled_nuclei() -> dict[str, np.ndarray]:
    """The bundled nuclei sample: ``image`` (512, 512) uint16, ``instances`` (512, 512)
    uint16 ids, ``scribbles`` (512, 512) uint8 (1 = background, 2 = nucleus)."""
    from napari_unet._sample_data import load_nuclei

    return load_nuclei()


def load_isbi(index: int) -> tuple[np.ndarray, np.ndarray]:
    """ISBI 2012 slice ``index`` and its scribble-convention labels: 1 = membrane, 2 = cell."""
    import imageio.v3 as iio

    folder = shared_data("isbi2012_membrane")
    image = iio.imread(folder / "images" / f"{index}.png")
    gt = iio.imread(folder / "labels" / f"{index}.png")
    return image, np.where(gt > 127, 2, 1).astype(np.uint8)


# ---------------------------------------------------------------------------- widget tests
def _notifications(severity: str):
    """The messages of the notifications of ``severity`` shown from now on."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    start = len(notification_manager.records)
    level = NotificationSeverity(severity)

    def new() -> list[str]:
        return [
            str(n.message) for n in notification_manager.records[start:] if n.severity == level
        ]

    return new


@pytest.fixture
def errors():
    """The messages of the error notifications shown since the test started."""
    return _notifications("error")


@pytest.fixture
def infos():
    """The messages of the information notifications shown since the test started."""
    return _notifications("info")


def snapshot(viewer) -> list[tuple[str, str, np.ndarray]]:
    """Name, type and a copy of the data of every layer, to check nothing changed."""
    return [
        (layer.name, type(layer).__name__, np.array(layer.data, copy=True))
        for layer in viewer.layers
    ]


def assert_unchanged(viewer, before) -> None:
    after = snapshot(viewer)
    assert [(n, t) for n, t, _ in after] == [(n, t) for n, t, _ in before]
    for (_, _, a), (_, _, b) in zip(after, before, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tests (2 shared cores; tiny U-Nets are as fast on
    one): ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
