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
    # the widget fits the window to itself when it docks (widgets/window_fit.py)
    viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    napari.run()
    return 0
