import numpy as np

from napari_unet import instances_from_prediction


def _disc(shape, centre, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= r**2


def test_touching_discs_are_split():
    mask = _disc((40, 60), (20, 20), 10) | _disc((40, 60), (20, 38), 10)
    split = instances_from_prediction(mask.astype(np.float32), split_touching=True)
    merged = instances_from_prediction(mask.astype(np.float32), split_touching=False)
    assert merged.max() == 1
    assert split.max() == 2
    assert split[20, 20] != split[20, 38]
    assert np.array_equal(split > 0, mask)


def test_small_objects_dropped_and_ids_unique_across_planes():
    prob = np.zeros((2, 20, 20), np.float32)
    prob[0, 2:8, 2:8] = 1
    prob[1, 10:16, 10:16] = 1
    prob[1, 0, 19] = 1  # a single pixel: dropped
    out = instances_from_prediction(prob, min_size=5)
    assert out[0].max() == 1 and out[1][out[1] > 0].min() == 2
    assert out[1, 0, 19] == 0
