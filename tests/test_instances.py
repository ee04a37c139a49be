import numpy as np
import pytest

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


def test_probability_seeds_keep_cells_apart_across_a_weak_border():
    """Two cells (p = 0.95) share a border whose p (0.6) is above the threshold: as
    connected components they merge; seeded by p > 0.9 and flooded over 1 - p they stay
    two, each keeping its side of the border. A seedless faint blob stays one object."""
    p = np.full((20, 30), 0.05, np.float32)
    p[3:17, 3:13] = 0.95
    p[3:17, 14:24] = 0.95
    p[3:17, 13] = 0.6  # weak border, above the 0.5 threshold
    p[8:11, 26:29] = 0.7  # faint object: foreground, but no seed
    merged = instances_from_prediction(p, split_touching=False, min_size=1)
    assert merged.max() == 2  # the two cells are one component, plus the faint blob
    split = instances_from_prediction(p, seed_threshold=0.9, min_size=1)
    assert split.max() == 3
    left, right, blob = split[10, 5], split[10, 20], split[9, 27]
    assert len({left, right, blob}) == 3 and 0 not in (left, right, blob)
    assert np.all(split[3:17, 3:13] == left) and np.all(split[3:17, 14:24] == right)
    assert set(np.unique(split[3:17, 13])) <= {left, right}
    np.testing.assert_array_equal(split > 0, p > 0.5)  # nothing gained or lost


def test_seed_threshold_must_lie_above_the_threshold():
    p = np.zeros((8, 8), np.float32)
    for bad in (0.5, 0.3, 1.0):
        with pytest.raises(ValueError, match="seed threshold"):
            instances_from_prediction(p, threshold=0.5, seed_threshold=bad)


def _stadium(shape, centre, half_length, r):
    """A capsule: a rectangle with half-disc ends (convex, its distance ridge a flat line)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    dx = np.clip(np.abs(xx - centre[1]) - half_length, 0, None)
    return dx**2 + (yy - centre[0]) ** 2 <= r**2


@pytest.mark.parametrize("scale", [1, 4])
def test_an_elongated_nucleus_stays_whole_and_touching_ones_split_at_every_size(scale):
    """A convex capsule has a flat distance ridge (many local maxima): it must stay one
    object. Two and three touching discs make waists (two: solidity 2 pi / (pi + 4) =
    0.88 < 0.9): one object each. Both at 1x and 4x the size: the split criteria are
    relative to the objects."""
    s = scale
    capsule = _stadium((40 * s, 80 * s), (20 * s, 40 * s), 20 * s, 8 * s)
    out = instances_from_prediction(capsule.astype(np.float32), min_size=1)
    assert out.max() == 1 and np.array_equal(out > 0, capsule)
    shape = (40 * s, 110 * s)
    centres = [(20 * s, (20 + 20 * i) * s) for i in range(3)]  # discs that touch
    two = _disc(shape, centres[0], 10 * s) | _disc(shape, centres[1], 10 * s)
    three = two | _disc(shape, centres[2], 10 * s)
    for mask, n in ((two, 2), (three, 3)):
        out = instances_from_prediction(mask.astype(np.float32), min_size=1)
        assert out.max() == n
        assert len({int(out[c]) for c in centres[:n]}) == n  # one id per disc centre
        assert np.array_equal(out > 0, mask)


def test_a_small_touching_pair_is_split_with_the_one_pixel_floor():
    """Radii of 3 px: h = 0.2 x 3 < 1 px, so h is 1 px; the pair still splits."""
    mask = _disc((12, 20), (6, 6), 3) | _disc((12, 20), (6, 11), 3)
    out = instances_from_prediction(mask.astype(np.float32), min_size=1)
    assert out.max() == 2 and out[6, 6] != out[6, 11]
