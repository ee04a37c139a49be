"""Give napari's canvas room beside the dock widget when the widget docks.

napari opens an 853-pixel-wide window on its first run; with the layer controls on the left
and this widget on the right, the canvas would be a strip. Whether napari-unet is started by
``napari-unet gui`` or docked from napari's Plugins menu, the widget calls
:func:`fit_window` once, when it is first shown.
"""

from __future__ import annotations

from typing import Any

MIN_WINDOW = (1400, 900)  # logical pixels: room for the canvas beside the dock widget
MIN_CANVAS_WIDTH = 480  # a saved window is widened until the canvas has at least this


def fit_window(viewer: Any, window: Any = None) -> None:
    """Grow napari's window within the screen it is on, frame included, then fit the images
    to the canvas. On a first run (no saved window size) the window grows to MIN_WINDOW;
    a saved window grows only as much as the canvas needs to be MIN_CANVAS_WIDTH wide.
    A maximised or full-screen window is left as it is. ``window``: napari's QMainWindow
    (by default the viewer's; a plugin widget, which gets a proxy of the viewer, passes
    its own top-level window)."""
    from napari.settings import get_settings
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    window = window if window is not None else viewer.window._qt_window
    app = get_settings().application
    saved = app.save_window_geometry and app.window_size is not None
    screen = window.screen() or QApplication.primaryScreen()
    if not (window.isMaximized() or window.isFullScreen() or screen is None):
        inner = window.geometry()
        if saved:
            canvas = window.centralWidget().width()  # napari's canvas and sliders
            wanted = (inner.width() + max(0, MIN_CANVAS_WIDTH - canvas), inner.height())
        else:
            wanted = MIN_WINDOW
        _resize_on_screen(window, screen.availableGeometry(), wanted)
    # after the window manager has applied the new size; the timer dies with the window
    timer = QTimer(window)
    timer.setSingleShot(True)
    timer.timeout.connect(viewer.reset_view)
    timer.start(250)


def _resize_on_screen(window: Any, room: Any, wanted: tuple[int, int]) -> None:
    """Grow (never shrink) ``window`` towards ``wanted``, keeping its frame on ``room``."""
    frame, inner = window.frameGeometry(), window.geometry()
    extra_w, extra_h = frame.width() - inner.width(), frame.height() - inner.height()
    width = max(inner.width(), min(wanted[0], room.width() - extra_w))
    height = max(inner.height(), min(wanted[1], room.height() - extra_h))
    if (width, height) == (inner.width(), inner.height()):
        return
    left = min(max(frame.left(), room.left()), room.right() + 1 - width - extra_w)
    top = min(max(frame.top(), room.top()), room.bottom() + 1 - height - extra_h)
    window.resize(width, height)
    window.move(max(left, room.left()), max(top, room.top()))
