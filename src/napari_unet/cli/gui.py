"""``napari-unet gui``: open napari with the U-Net dock widget."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_common, new_command


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(
        sub,
        "gui",
        help="open napari with the U-Net widget",
        description="Open napari with the U-Net dock widget, optionally with the nuclei "
        "sample (image, scribbles, instances) and/or your images.",
    )
    p.add_argument("images", nargs="*", metavar="IMAGE", help="images to open in napari")
    p.add_argument("--sample", action="store_true", help="open the nuclei sample data")
    add_common(p, cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    from ..unet.data import InputError

    for image in args.images:
        if not Path(image).exists():
            raise FileNotFoundError(f"{image}: no such file or folder")
    try:
        import napari
    except ImportError as err:
        raise InputError("the GUI needs napari: pip install 'napari-unet-explorer[gui]'") from err
    viewer = napari.Viewer()
    if args.sample:
        viewer.open_sample("napari-unet-explorer", "nuclei")
    for image in args.images:
        viewer.open(image)
    viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    fit_window(viewer)
    napari.run()
    return 0


MIN_WINDOW = (1400, 900)  # logical pixels: room for the canvas beside the dock widget


def fit_window(viewer) -> None:
    """On napari's first run (no saved window size), grow its window to MIN_WINDOW within
    the screen it is on, frame included, so the canvas is more than a strip beside the
    dock; then fit the images to the canvas. A saved, maximised or full-screen window is
    left as it is."""
    from napari.settings import get_settings
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    window = viewer.window._qt_window
    app = get_settings().application
    saved = app.save_window_geometry and app.window_size is not None
    screen = window.screen() or QApplication.primaryScreen()
    if not (saved or window.isMaximized() or window.isFullScreen() or screen is None):
        room = screen.availableGeometry()
        frame, inner = window.frameGeometry(), window.geometry()
        extra_w, extra_h = frame.width() - inner.width(), frame.height() - inner.height()
        width = max(inner.width(), min(MIN_WINDOW[0], room.width() - extra_w))
        height = max(inner.height(), min(MIN_WINDOW[1], room.height() - extra_h))
        if (width, height) != (inner.width(), inner.height()):
            # keep the whole frame on the screen
            left = min(max(frame.left(), room.left()), room.right() + 1 - width - extra_w)
            top = min(max(frame.top(), room.top()), room.bottom() + 1 - height - extra_h)
            window.resize(width, height)
            window.move(max(left, room.left()), max(top, room.top()))
    # after the window manager has applied the new size; the timer dies with the window
    timer = QTimer(window)
    timer.setSingleShot(True)
    timer.timeout.connect(viewer.reset_view)
    timer.start(250)
