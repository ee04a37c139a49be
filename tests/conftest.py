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
