"""H(x), the normalised entropy of p_k(x), and the "annotate next" window, against
hand-worked values and brute force; the CLI's --entropy and the workflow's segment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_unet.unet.data import InputError
from napari_unet.unet.uncertainty import hint_window_size, normalized_entropy, where_to_annotate


def test_entropy_by_hand() -> None:
    p = np.zeros((2, 1, 4))
    p[:, 0, 0] = (0.5, 0.5)  # as unsure as two classes get
    p[:, 0, 1] = (1.0, 0.0)  # certain
    p[:, 0, 2] = (0.25, 0.75)
    p[:, 0, 3] = (0.0, 1.0)
    h = normalized_entropy(p)
    expected = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) / math.log(2)
    np.testing.assert_allclose(h[0], [1.0, 0.0, expected, 0.0], atol=1e-6)
    assert h.dtype == np.float32


def test_entropy_of_three_classes_is_divided_by_log_3() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet((1, 1, 1), size=(4, 5)).transpose(2, 0, 1)
    expected = -(p * np.log(p)).sum(axis=0) / math.log(3)
    np.testing.assert_allclose(normalized_entropy(p), expected, atol=1e-6)
    np.testing.assert_allclose(normalized_entropy(np.full((3, 2, 2), 1 / 3)), 1.0, atol=1e-6)
    assert not normalized_entropy(np.ones((1, 3, 3))).any()  # one class: no doubt


def brute_force_best(h: np.ndarray, region, window: int) -> float:
    y0, y1, x0, x1 = region
    view = np.lib.stride_tricks.sliding_window_view(h[y0:y1, x0:x1], (window, window))
    return float(view.mean(axis=(-1, -2)).max())


def test_the_hint_is_the_window_of_highest_mean_entropy() -> None:
    rng = np.random.default_rng(3)
    h = rng.uniform(0, 0.2, (60, 80))
    h[30:40, 50:62] = 0.9  # an unsure blob
    box = where_to_annotate(h, window=10)
    assert box[1] - box[0] == 10 and box[3] - box[2] == 10
    assert 30 <= box[0] and box[1] <= 40 and 50 <= box[2] and box[3] <= 62
    region = (0, 30, 0, 40)  # the blob is out of view: the best window in view instead
    y0, y1, x0, x1 = where_to_annotate(h, region, window=8)
    assert 0 <= y0 and y1 <= 30 and 0 <= x0 and x1 <= 40
    assert h[y0:y1, x0:x1].mean() == pytest.approx(brute_force_best(h, region, 8))


def test_the_window_never_exceeds_the_region() -> None:
    h = np.ones((20, 30))
    assert where_to_annotate(h, (5, 12, 0, 30), window=50) == (5, 12, 0, 30)
    assert hint_window_size((400, 800)) == 100
    assert hint_window_size((40, 800)) == 16
    assert hint_window_size((8, 800)) == 8


@pytest.mark.parametrize(
    "args",
    [(np.ones((2, 3, 3)), None), (np.ones((5, 5)), (5, 9, 0, 5)), (np.ones((5, 5)), (2, 2, 0, 5))],
)
def test_bad_planes_and_regions_are_refused(args) -> None:
    with pytest.raises(InputError):
        where_to_annotate(*args)


def test_segment_and_the_cli_give_the_entropy_of_p(tmp_path) -> None:
    import tifffile

    from napari_unet.cli import main
    from napari_unet.workflow import ModelChoice, open_model, segment

    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1, (40, 48)).astype(np.float32)
    model = open_model(ModelChoice.new("tiny"), 1, 3)
    seg = segment(model, image, None, probabilities=True, entropy=True)
    p = seg.probabilities.astype(np.float64)
    expected = -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=0) / math.log(3)
    np.testing.assert_allclose(seg.entropy, expected, atol=1e-5)

    tifffile.imwrite(tmp_path / "img.tif", image)
    from napari_unet.io.checkpoint import save_model

    save_model(tmp_path / "m.pt", model)
    out = tmp_path / "out"
    args = ["predict", str(tmp_path / "img.tif"), "--model", str(tmp_path / "m.pt")]
    assert main([*args, "--out", str(out), "--entropy"]) == 0
    np.testing.assert_allclose(tifffile.imread(out / "img_entropy.tif"), seg.entropy, atol=1e-6)


def test_entropy_of_a_zarr_input_is_refused_before_any_work(tmp_path, capsys) -> None:
    from napari_unet.cli import main
    from napari_unet.io.checkpoint import save_model
    from napari_unet.io.images import create_zarr_array
    from napari_unet.workflow import ModelChoice, open_model

    create_zarr_array(tmp_path / "big.zarr", shape=(32, 32), dtype="uint8", chunks=(16, 16))
    save_model(tmp_path / "m.pt", open_model(ModelChoice.new("tiny"), 1, 2))
    out = tmp_path / "out"
    argv = ["predict", tmp_path / "big.zarr", "--model", tmp_path / "m.pt", "--out", out]
    assert main([str(a) for a in [*argv, "--entropy"]]) == 1
    assert "--entropy is not available for zarr inputs" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
