"""Shared test fixtures: where the real data lives, and small helpers."""

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


def load_isbi(index: int) -> tuple[np.ndarray, np.ndarray]:
    """ISBI 2012 slice ``index`` and its scribble-convention labels: 1 = membrane, 2 = cell."""
    import imageio.v3 as iio

    folder = shared_data("isbi2012_membrane")
    image = iio.imread(folder / "images" / f"{index}.png")
    gt = iio.imread(folder / "labels" / f"{index}.png")
    return image, np.where(gt > 127, 2, 1).astype(np.uint8)


# ---------------------------------------------------------------------------- widget tests
@pytest.fixture
def errors():
    """The messages of the error notifications shown since the test started."""
    from napari.utils.notifications import NotificationSeverity, notification_manager

    start = len(notification_manager.records)

    def new() -> list[str]:
        return [
            str(n.message)
            for n in notification_manager.records[start:]
            if n.severity == NotificationSeverity.ERROR
        ]

    return new


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
