"""The argument parser of the ``napari-unet`` command: its subcommands put together."""

from __future__ import annotations

import argparse

from .errors import PROG
from .options import HelpFormatter


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``napari-unet`` console script."""
    from .. import __version__
    from . import evaluate, export, gui, info, pixel, predict, train

    parser = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=HelpFormatter,
        description="Train, run and inspect paper-faithful U-Nets (Ronneberger et al. 2015) "
        "without a GUI, on single files, folders, OME-Zarr volumes and dask clusters.",
        epilog="Run `napari-unet <command> --help` for the options of a command.\n\n"
        "Examples:\n"
        "  napari-unet gui --sample\n"
        "  napari-unet train --images imgs/ --labels masks/ --mode dense --out model.pt\n"
        "  napari-unet predict imgs/ --model model.pt --out results/\n"
        "  napari-unet evaluate --predictions results/ --labels masks/\n"
        "  napari-unet pixel img.tif --at 43,464 --model model.pt --labels mask.tif\n"
        "  napari-unet export --model model.pt --torchscript model_ts.pt\n"
        "  napari-unet info model.pt",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (train, predict, evaluate, pixel, export, info, gui):
        command.add_parser(sub)
    return parser
