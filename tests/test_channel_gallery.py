"""The channel gallery: mosaic layout, per-channel contrast, labels on a level, statistics."""

import numpy as np
import pytest

from napari_unet.unet.channel_gallery import (
    ChannelStatistics,
    channel_mosaic,
    channel_statistics,
    default_columns,
    labels_on_level,
)


def expected_scaling(channel: np.ndarray) -> np.ndarray:
    """(min, 99.5th percentile) -> [0, 1], computed independently of the module."""
    lo, hi = channel.min(), np.percentile(channel, 99.5)
    return np.clip((channel - lo) / (hi - lo), 0, 1)


@pytest.fixture
def five():
    return np.random.default_rng(0).normal(size=(5, 3, 4)).astype(np.float32)


def test_mosaic_layout_and_cells(five):
    m = channel_mosaic(five, columns=3, gap=1)
    assert m.image.shape == (2 * 3 + 1, 3 * 4 + 2) and m.image.dtype == np.float32
    assert (m.columns, m.rows, m.cell, m.gap, m.channels) == (3, 2, (3, 4), 1, 5)
    origins = [(0, 0), (0, 5), (0, 10), (4, 0), (4, 5)]
    for c, (y, x) in enumerate(origins):
        assert m.origin(c) == (y, x)
        np.testing.assert_allclose(m.image[y : y + 3, x : x + 4], expected_scaling(five[c]),
                                   rtol=1e-5, atol=1e-6)  # fmt: skip
    assert (m.image[4:7, 10:14] == 0).all()  # unused cell
    assert (m.image[3, :] == 0).all()  # gap between rows
    assert (m.image[:, [4, 9]] == 0).all()  # gaps between columns
    assert m.image.min() >= 0 and m.image.max() <= 1
    np.testing.assert_array_equal(m.label_positions(), np.array(origins, float))


@pytest.mark.parametrize(
    ("y", "x", "channel"),
    [
        (1, 1, 0),
        (0, 0, 0),
        (-0.4, -0.4, 0),  # still pixel (0, 0)
        (2.49, 3.49, 0),
        (1.4, 6.4, 1),
        (2, 13, 2),
        (4, 0, 3),
        (6, 8, 4),
        (3, 2, None),  # gap row
        (2.5, 0, None),  # rounds into the gap row
        (1, 4, None),  # gap column
        (1, 9, None),
        (5, 11, None),  # unused cell
        (-1, 0, None),
        (0, 14, None),
        (7, 0, None),
        (float("nan"), 0, None),
    ],
)
def test_channel_at(five, y, x, channel):
    assert channel_mosaic(five, columns=3, gap=1).channel_at(y, x) == channel


def test_default_columns_near_square():
    assert default_columns(64) == 8 and default_columns(5) == 3 and default_columns(1) == 1
    assert channel_mosaic(np.ones((64, 2, 2))).columns == 8
    m = channel_mosaic(np.ones((5, 2, 2)))
    assert (m.columns, m.rows, m.gap) == (3, 2, 2)


def test_constant_channel_is_zero(five):
    five[2] = 7.0
    m = channel_mosaic(five, columns=3, gap=1)
    assert (m.image[0:3, 10:14] == 0).all()
    assert m.image[0:3, 0:4].max() == pytest.approx(1)


def test_contrast_is_per_channel(five):
    louder = five.copy()
    louder[1] *= 1000
    a, b = channel_mosaic(five, 3, 1).image, channel_mosaic(louder, 3, 1).image
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_non_finite_values_are_zero_and_left_out_of_the_limits(five):
    bad = five.copy()
    bad[0, 0, 0], bad[0, 1, 1] = np.nan, np.inf
    cell = channel_mosaic(bad, 3, 1).image[0:3, 0:4]
    assert cell[0, 0] == 0 and cell[1, 1] == 0
    finite = np.isfinite(bad[0])
    lo, hi = bad[0][finite].min(), np.percentile(bad[0][finite], 99.5)
    expected = np.clip((bad[0][finite] - lo) / (hi - lo), 0, 1)
    np.testing.assert_allclose(cell[finite], expected, rtol=1e-5, atol=1e-6)
    assert (channel_mosaic(np.full((1, 2, 2), np.nan)).image == 0).all()


@pytest.mark.parametrize(
    ("channels", "kwargs", "match"),
    [
        (np.ones((3, 4)), {}, "3-D"),
        (np.ones((1, 3, 4, 5)), {}, "4-D"),
        (np.ones((0, 3, 4)), {}, "C == 0"),
        (np.ones((2, 0, 4)), {}, "empty"),
        (np.ones((2, 3, 4)), {"columns": 0}, "columns"),
        (np.ones((2, 3, 4)), {"gap": -1}, "gap"),
    ],
)
def test_bad_mosaic_input(channels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        channel_mosaic(channels, **kwargs)


def test_origin_out_of_range(five):
    with pytest.raises(IndexError, match="out of range"):
        channel_mosaic(five).origin(5)


def test_labels_on_level_hand_example():
    labels = np.arange(36).reshape(6, 6) + 1  # labels[r, c] = 6 r + c + 1
    # rows 1 + 0.5 + 2 i = 1.5, 3.5, 5.5 -> 2, 4, 6 (outside); cols 0.5, 2.5, 4.5 -> 1, 3, 5
    out = labels_on_level(labels, (3, 3), 2.0, (0.5, 0.5), offset=(1, 0))
    np.testing.assert_array_equal(out, [[14, 16, 18], [26, 28, 30], [0, 0, 0]])
    assert out.dtype == np.int64
    # negative positions: rows -2 + 0.5 + 2 i = -1.5, 0.5 -> -1 (outside), 1
    out = labels_on_level(labels, (2, 2), 2.0, (0.5, 0.5), offset=(-2, 0))
    np.testing.assert_array_equal(out, [[0, 0], [8, 10]])


def test_labels_on_level_identity_and_bad_input():
    labels = np.random.default_rng(0).integers(0, 3, (5, 7))
    np.testing.assert_array_equal(labels_on_level(labels, (5, 7), 1.0, (0.0, 0.0)), labels)
    with pytest.raises(ValueError, match="2-D"):
        labels_on_level(labels[None], (5, 7), 1.0, (0.0, 0.0))
    with pytest.raises(ValueError, match="scale"):
        labels_on_level(labels, (5, 7), 0.0, (0.0, 0.0))


def test_channel_statistics_against_masks():
    rng = np.random.default_rng(1)
    channels = rng.normal(size=(3, 4, 5))
    labels = np.zeros((4, 5), int)
    labels[0, :3], labels[2:, 1] = 1, 3
    stats = channel_statistics(channels, labels)
    np.testing.assert_allclose(stats.mean, [channels[c].mean() for c in range(3)])
    assert sorted(stats.class_means) == [1, 3] and stats.counts == {1: 3, 3: 2}
    for value in (1, 3):
        mask = labels == value
        expected = [channels[c][mask].sum() / mask.sum() for c in range(3)]
        np.testing.assert_allclose(stats.class_means[value], expected)
    plain = channel_statistics(channels)
    assert plain.class_means == {} and plain.counts == {}
    with pytest.raises(ValueError, match="shape"):
        channel_statistics(channels, labels[:3])
    with pytest.raises(ValueError, match="C, h, w"):
        channel_statistics(channels[0])


def test_rows_formatting():
    stats = ChannelStatistics(
        mean=np.array([1.23456, 1234.5, -0.000123456]),
        class_means={2: np.array([0.5, 2.0, 1 / 3]), 1: np.array([10.0, 0.0, 99.99])},
        counts={1: 4, 2: 7},
    )
    headers, rows = stats.rows({2: "nucleus"})
    assert headers == ["channel", "mean", "mean on class 1", "mean on nucleus"]
    assert rows == [
        ["0", "1.23", "10", "0.5"],
        ["1", "1.23e+03", "0", "2"],
        ["2", "-0.000123", "100", "0.333"],
    ]
    assert ChannelStatistics(np.array([0.1])).rows() == (["channel", "mean"], [["0", "0.1"]])


def test_gallery_of_captured_levels():
    import torch

    from napari_unet import UNet
    from napari_unet.unet.activations import capture_activations

    torch.manual_seed(0)
    model = UNet(depth=2, base_channels=4).eval()
    image = np.random.default_rng(0).random((64, 64)).astype(np.float32)
    acts = capture_activations(model, image)
    for a in acts.values():
        m = channel_mosaic(a.channels)
        n = a.channels.shape[0]
        assert m.channels == n and m.columns * m.rows >= n
        assert [m.channel_at(*m.origin(c)) for c in range(n)] == list(range(n))
    head = acts["head"]
    labels = np.random.default_rng(1).integers(0, 3, (64, 64))
    on_head = labels_on_level(labels, head.channels.shape[1:], head.scale, head.translate)
    np.testing.assert_array_equal(on_head[:64, :64], labels)
    assert (on_head[64:] == 0).all() and (on_head[:, 64:] == 0).all()
    stats = channel_statistics(head.channels, on_head)
    assert set(stats.class_means) <= {1, 2} and len(stats.mean) == head.channels.shape[0]
