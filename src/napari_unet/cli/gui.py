"""``napari-unet gui``: open napari with the U-Net dock widget."""

from __future__ import annotations

import argparse
from pathlib import Path

from .parser import add_common, new_command


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
    from ..data import InputError

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
    """Grow the window to at least MIN_WINDOW where the screen has room (napari's
    first-run window leaves the canvas a narrow strip beside the dock; a larger window is
    kept), then fit the images to the canvas once the window is laid out."""
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    screen = QApplication.primaryScreen()
    if screen is not None:
        room = screen.availableGeometry()
        _, _, width, height = viewer.window.geometry()
        wanted = (
            max(width, min(MIN_WINDOW[0], room.width())),
            max(height, min(MIN_WINDOW[1], room.height())),
        )
        if wanted != (width, height):
            viewer.window.resize(*wanted)
    QTimer.singleShot(0, viewer.reset_view)
