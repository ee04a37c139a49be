"""A channel gallery: all channels of one level side by side, for visual debugging.

Visual debugging of channel activations one channel at a time (a napari slider) means
scrolling through up to 1024 channels; a gallery tiles one level's channels ``(C, h, w)``
into a single 2-D mosaic, row-major (channel ``c`` at grid row ``c // columns``, column
``c % columns``), so dead, saturated or duplicated channels show at a glance.

Contrast is set per channel: every channel is scaled on its own to [0, 1] by its own
(min, 99.5th percentile), as :func:`napari_unet.widgets.layers.robust_limits` does for a
layer, so a weak channel is still visible. Brightness therefore says nothing about how
strong a channel is compared with the others: compare channels with
:func:`channel_statistics` (mean per channel, and per annotated class), not by eye.

Geometry: a captured level (:class:`~napari_unet.unet.activations.LevelActivations`)
has pixel ``(i, j)`` at crop coordinates ``translate + (i, j) * scale``;
:func:`labels_on_level` samples an annotation there, so the statistics can be split by
class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

PERCENTILE = 99.5  # the high contrast limit of every channel, as robust_limits


# ---------------------------------------------------------------------------- the mosaic
@dataclass
class Mosaic:
    """One level's channels in a grid: ``image`` (float32, 2-D, values in [0, 1]).

    Cells of ``cell = (h, w)`` pixels are ``gap`` pixels apart (no gap around the
    border); gaps and unused cells hold 0.
    """

    image: np.ndarray
    columns: int
    rows: int
    cell: tuple[int, int]
    gap: int
    channels: int

    @property
    def pitch(self) -> tuple[int, int]:
        """Distance (rows, columns) between the top-left corners of neighbouring cells."""
        return self.cell[0] + self.gap, self.cell[1] + self.gap

    def channel_at(self, y: float, x: float) -> int | None:
        """The channel under data coordinates (y, x) of ``image`` (pixel centres at
        integers), or None in a gap, an unused cell or outside the image."""
        if not (math.isfinite(y) and math.isfinite(x)):
            return None
        i, j = math.floor(y + 0.5), math.floor(x + 0.5)
        height, width = self.image.shape
        if not (0 <= i < height and 0 <= j < width):
            return None
        row, dy = divmod(i, self.pitch[0])
        col, dx = divmod(j, self.pitch[1])
        if dy >= self.cell[0] or dx >= self.cell[1]:
            return None
        channel = row * self.columns + col
        return channel if channel < self.channels else None

    def origin(self, channel: int) -> tuple[int, int]:
        """Top-left pixel (row, column) of ``channel``'s cell in ``image``."""
        if not 0 <= channel < self.channels:
            raise IndexError(f"channel {channel} out of range: the mosaic has {self.channels}")
        row, col = divmod(channel, self.columns)
        return row * self.pitch[0], col * self.pitch[1]

    def label_positions(self) -> np.ndarray:
        """(C, 2) float positions (row, column) for channel-number labels: the top-left
        pixel of each cell (e.g. for a napari Points layer's text)."""
        return np.array([self.origin(c) for c in range(self.channels)], np.float64)


def default_columns(n_channels: int) -> int:
    """A near-square grid: ceil(sqrt(C)) columns (64 -> 8, 5 -> 3)."""
    return math.isqrt(n_channels - 1) + 1 if n_channels > 0 else 1


def scale_channel(channel: np.ndarray) -> np.ndarray:
    """One channel scaled to [0, 1] by its own (min, 99.5th percentile) of finite values
    (the max if the percentile equals the min); constant channels and non-finite values
    give 0."""
    finite = np.isfinite(channel)
    out = np.zeros(channel.shape, np.float32)
    if not finite.any():
        return out
    values = channel[finite].astype(np.float64)
    lo, hi = float(values.min()), float(np.percentile(values, PERCENTILE))
    if hi <= lo:
        hi = float(values.max())
    if hi <= lo:
        return out
    out[finite] = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    return out


def _check_mosaic_args(channels: np.ndarray, columns: int | None, gap: int) -> None:
    if channels.ndim != 3:
        raise ValueError(
            f"channels must be one level's 3-D (C, h, w) array; got {channels.ndim}-D "
            f"shape {channels.shape}"
        )
    if channels.shape[0] == 0:
        raise ValueError("channels has no channels (C == 0): nothing to show")
    if min(channels.shape[1:]) == 0:
        raise ValueError(f"channels have an empty plane: shape {channels.shape}")
    if columns is not None and int(columns) < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    if int(gap) < 0:
        raise ValueError(f"gap must be 0 or more pixels, got {gap}")


def channel_mosaic(channels: np.ndarray, columns: int | None = None, gap: int = 2) -> Mosaic:
    """Tile one level's channels (C, h, w) row-major into a :class:`Mosaic`.

    ``columns`` defaults to ceil(sqrt(C)). Each channel is contrast-scaled on its own to
    [0, 1] (see :func:`scale_channel`); non-finite input values are shown as 0, after
    scaling (they are left out of the limits). Gaps and unused cells hold 0.
    """
    channels = np.asarray(channels)
    _check_mosaic_args(channels, columns, gap)
    n, h, w = channels.shape
    cols = default_columns(n) if columns is None else int(columns)
    rows, gap = -(-n // cols), int(gap)
    image = np.zeros((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap), np.float32)
    mosaic = Mosaic(image, cols, rows, (h, w), gap, n)
    for c in range(n):
        y, x = mosaic.origin(c)
        image[y : y + h, x : x + w] = scale_channel(channels[c])
    return mosaic


# ------------------------------------------------------------- annotations on a level
def labels_on_level(
    labels: np.ndarray,
    level_shape: tuple[int, int],
    scale: float,
    translate: tuple[float, float],
    offset: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """The annotation at the centre of every level pixel, an int64 array of ``level_shape``.

    Level pixel (i, j) takes ``labels`` (the whole 2-D plane) at the nearest pixel of
    ``offset + translate + (i, j) * scale`` (halves round up); ``offset`` is where the
    inspected crop starts in the plane. Positions outside the plane give 0 (not annotated).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be one 2-D plane; got shape {labels.shape}")
    if len(level_shape) != 2 or min(level_shape) < 0:
        raise ValueError(f"level_shape must be (h, w); got {level_shape}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number, got {scale}")
    rows = _nearest(offset[0] + translate[0], scale, level_shape[0])
    cols = _nearest(offset[1] + translate[1], scale, level_shape[1])
    inside_r = (rows >= 0) & (rows < labels.shape[0])
    inside_c = (cols >= 0) & (cols < labels.shape[1])
    out = np.zeros(tuple(level_shape), np.int64)
    out[np.ix_(inside_r, inside_c)] = labels[np.ix_(rows[inside_r], cols[inside_c])]
    return out


def _nearest(start: float, scale: float, n: int) -> np.ndarray:
    """Nearest plane index of start + k * scale for k < n (halves up; the tiny tolerance
    keeps exact halves from flipping on floating-point noise)."""
    return np.floor(start + np.arange(n) * scale + 0.5 + 1e-9).astype(np.int64)


# --------------------------------------------------------------------- the statistics
@dataclass
class ChannelStatistics:
    """Mean of every channel, over the whole level and per annotated class.

    ``class_means[v]``: (C,) means over the level pixels annotated ``v`` (values > 0
    present in the labels only); ``counts[v]``: how many level pixels that is.
    """

    mean: np.ndarray
    class_means: dict[int, np.ndarray] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)

    def rows(self, class_names: dict[int, str] | None = None) -> tuple[list[str], list[list[str]]]:
        """Table headers and one row per channel, numbers to 3 significant digits:
        ``channel, mean, mean on <name>...`` (name from ``class_names``, else "class v")."""
        names = class_names or {}
        values = sorted(self.class_means)
        headers = ["channel", "mean"] + [f"mean on {names.get(v, f'class {v}')}" for v in values]
        table = [
            [str(c), _fmt(self.mean[c])] + [_fmt(self.class_means[v][c]) for v in values]
            for c in range(len(self.mean))
        ]
        return headers, table


def _fmt(value: float) -> str:
    return f"{float(value):.3g}"


def channel_statistics(
    channels: np.ndarray, level_labels: np.ndarray | None = None
) -> ChannelStatistics:
    """Per-channel means of ``channels`` (C, h, w), and per class of ``level_labels``
    ((h, w), e.g. from :func:`labels_on_level`; 0 = not annotated)."""
    channels = np.asarray(channels)
    if channels.ndim != 3:
        raise ValueError(f"channels must be (C, h, w); got shape {channels.shape}")
    mean = channels.mean(axis=(1, 2), dtype=np.float64)
    if level_labels is None:
        return ChannelStatistics(mean)
    level_labels = np.asarray(level_labels)
    if level_labels.shape != channels.shape[1:]:
        raise ValueError(
            f"level_labels has shape {level_labels.shape}; the level is {channels.shape[1:]}"
        )
    stats = ChannelStatistics(mean)
    for value in np.unique(level_labels):
        if value <= 0:
            continue
        mask = level_labels == value
        stats.class_means[int(value)] = channels[:, mask].mean(axis=1, dtype=np.float64)
        stats.counts[int(value)] = int(mask.sum())
    return stats
