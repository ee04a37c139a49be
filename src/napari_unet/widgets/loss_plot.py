"""A small live plot of the training loss, drawn with QPainter (no plotting library)."""

from __future__ import annotations

import math
from typing import Any

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

#: colours of the curves: training loss per step, its running mean, validation loss,
#: validation score (IoU / object F1, on the right-hand axis 0..1)
RAW, MEAN = QColor(66, 165, 245, 110), QColor(255, 167, 38)
VAL_LOSS, VAL_SCORE = QColor(102, 187, 106), QColor(206, 147, 216)


class LossPlot(QWidget):
    """The energy E per step (thin line) and its running mean (thick line), log-scaled;
    with validation, the validation loss (green, same axis) and IoU or object F1 (violet,
    right-hand axis from 0 to 1), the best step marked by a dashed line.

    ``add(step, loss)`` appends a point and schedules a repaint (cheap: call it every step);
    ``add_validation(score)`` a :class:`~napari_unet.unet.validation.ValidationScore`.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smooth: list[float] = []
        self.total = 0
        self.validation: list[Any] = []  # ValidationScore, in order
        self.best_step: int | None = None
        self.setMinimumHeight(130)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setToolTip(
            "Training loss E (mean -w(x) log p_l(x)(x) over annotated pixels); with "
            "validation labels, the validation loss (green) and IoU or object F1 (violet, "
            "0 to 1), the best step dashed"
        )

    def clear(self, total: int = 0) -> None:
        self.steps, self.losses, self.smooth = [], [], []
        self.validation, self.best_step = [], None
        self.total = total
        self.update()

    def add_validation(self, score: Any) -> None:
        if not math.isfinite(score.loss):
            return
        self.validation.append(score)
        best = max(self.validation, key=lambda s: (s.score, -s.loss))
        self.best_step = best.step
        self.update()

    def add(self, step: int, loss: float) -> None:
        if not math.isfinite(loss):
            return
        self.steps.append(step)
        self.losses.append(loss)
        prev = self.smooth[-1] if self.smooth else loss
        self.smooth.append(0.9 * prev + 0.1 * loss)
        self.update()

    # --------------------------------------------------------------------- drawing
    def paintEvent(self, event: object) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        pal = self.palette()
        fg = pal.color(pal.WindowText)
        p.fillRect(self.rect(), pal.color(pal.Base))
        font = QFont(self.font())
        font.setPointSizeF(max(7.0, font.pointSizeF() * 0.85))
        p.setFont(font)
        fm = p.fontMetrics()
        left, right, top, bottom = fm.horizontalAdvance("0.0000") + 10, 8, 8, fm.height() + 6
        plot = QRectF(left, top, self.width() - left - right, self.height() - top - bottom)
        grid = QColor(fg)
        grid.setAlpha(50)
        p.setPen(QPen(grid, 1))
        p.drawRect(plot)
        if not self.losses:
            p.setPen(fg)
            p.drawText(plot, Qt.AlignCenter, "loss curve: press Train")
            p.end()
            return
        val_losses = [v.loss for v in self.validation]
        lo = max(min(self.losses + val_losses), 1e-6)
        hi = max(max(self.losses + val_losses), lo * 1.01)
        log_lo, log_hi = math.log10(lo), math.log10(hi)
        n_total = max(self.total, self.steps[-1], 2)

        def to_xy(step: int, loss: float) -> QPointF:
            x = plot.left() + plot.width() * (step - 1) / max(n_total - 1, 1)
            v = (math.log10(max(loss, lo)) - log_lo) / max(log_hi - log_lo, 1e-12)
            return QPointF(x, plot.bottom() - plot.height() * v)

        # horizontal grid lines with their loss values
        for frac in (0.0, 0.5, 1.0):
            value = 10 ** (log_lo + frac * (log_hi - log_lo))
            y = plot.bottom() - plot.height() * frac
            p.setPen(QPen(grid, 1, Qt.DotLine))
            p.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
            p.setPen(fg)
            p.drawText(
                QRectF(0, y - fm.height() / 2, left - 4, fm.height()),
                Qt.AlignRight | Qt.AlignVCenter,
                f"{value:.3g}",
            )
        for values, colour, width in ((self.losses, RAW, 1.0), (self.smooth, MEAN, 2.0)):
            path = QPainterPath(to_xy(self.steps[0], values[0]))
            stride = max(1, len(values) // 2000)  # keep painting cheap on long runs
            for s, v in zip(self.steps[::stride], values[::stride], strict=True):
                path.lineTo(to_xy(s, v))
            path.lineTo(to_xy(self.steps[-1], values[-1]))
            p.setPen(QPen(colour, width))
            p.drawPath(path)
        footer = QRectF(plot.left(), plot.bottom() + 2, plot.width(), fm.height())
        p.setPen(fg)
        p.drawText(footer, Qt.AlignLeft, f"step {self.steps[-1]} / {n_total}")
        if self.validation:
            self._paint_validation(p, plot, to_xy, n_total)
            last = self.validation[-1]
            text = f"val {last.metric} {last.score:.3f}, loss {last.loss:.3f}"
            p.setPen(VAL_SCORE)
        else:
            text = f"loss {self.losses[-1]:.3f} (mean {self.smooth[-1]:.3f}), log scale"
        p.drawText(footer, Qt.AlignRight, text)
        p.end()

    def _paint_validation(self, p: QPainter, plot: QRectF, to_xy: Any, n_total: int) -> None:
        """Validation loss (on the loss axis), the score on 0..1, the best step dashed."""

        def score_xy(step: int, score: float) -> QPointF:
            x = plot.left() + plot.width() * (step - 1) / max(n_total - 1, 1)
            return QPointF(x, plot.bottom() - plot.height() * min(max(score, 0.0), 1.0))

        if self.best_step is not None:
            x = to_xy(self.best_step, self.validation[0].loss).x()
            p.setPen(QPen(VAL_SCORE, 1, Qt.DashLine))
            p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        scored = [v for v in self.validation if v.score >= 0]  # not minus a loss
        for points, colour in (
            ([to_xy(v.step, v.loss) for v in self.validation], VAL_LOSS),
            ([score_xy(v.step, v.score) for v in scored], VAL_SCORE),
        ):
            if not points:
                continue
            p.setPen(QPen(colour, 2.0))
            path = QPainterPath(points[0])
            for point in points[1:]:
                path.lineTo(point)
            p.drawPath(path)
            p.setBrush(colour)
            for point in points:
                p.drawEllipse(point, 2.5, 2.5)
            p.setBrush(Qt.NoBrush)
        p.setPen(VAL_SCORE)  # the score axis, inside the plot's right edge
        height = p.fontMetrics().height()
        for value, top in ((1.0, plot.top() + 1), (0.0, plot.bottom() - height - 1)):
            p.drawText(QRectF(plot.right() - 30, top, 28, height), Qt.AlignRight, f"{value:g}")
