"""A small live plot of the training loss, drawn with QPainter (no plotting library)."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QFont, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget


class LossPlot(QWidget):
    """The energy E per step (thin line) and its running mean (thick line), log-scaled.

    ``add(step, loss)`` appends a point and schedules a repaint (cheap: call it every step).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.smooth: list[float] = []
        self.total = 0
        self.setMinimumHeight(130)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setToolTip("Training loss E (mean -w(x) log p_l(x)(x) over annotated pixels)")

    def clear(self, total: int = 0) -> None:
        self.steps, self.losses, self.smooth = [], [], []
        self.total = total
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
        lo = max(min(self.losses), 1e-6)
        hi = max(max(self.losses), lo * 1.01)
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
        raw = QColor(66, 165, 245, 110)
        mean = QColor(255, 167, 38)
        for values, colour, width in ((self.losses, raw, 1.0), (self.smooth, mean, 2.0)):
            path = QPainterPath(to_xy(self.steps[0], values[0]))
            stride = max(1, len(values) // 2000)  # keep painting cheap on long runs
            for s, v in zip(self.steps[::stride], values[::stride], strict=True):
                path.lineTo(to_xy(s, v))
            path.lineTo(to_xy(self.steps[-1], values[-1]))
            p.setPen(QPen(colour, width))
            p.drawPath(path)
        p.setPen(fg)
        p.drawText(
            QRectF(plot.left(), plot.bottom() + 2, plot.width(), fm.height()),
            Qt.AlignLeft,
            f"step {self.steps[-1]} / {n_total}",
        )
        p.drawText(
            QRectF(plot.left(), plot.bottom() + 2, plot.width(), fm.height()),
            Qt.AlignRight,
            f"loss {self.losses[-1]:.3f} (mean {self.smooth[-1]:.3f}), log scale",
        )
        p.end()
