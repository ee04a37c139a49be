"""The ``napari-unet`` command line: train, predict, evaluate, info, gui.

Every subcommand documents its options (``napari-unet <command> --help``). Failures print one
line, ``napari-unet: error: <reason>``, to stderr and exit with status 1 (2 for a wrong
command line, 130 when interrupted). Outputs never replace an input, and never replace an
existing file unless ``--overwrite`` is given. Heavy modules (torch, dask, napari) are
imported inside the subcommands, so ``napari-unet --help`` is fast.

One module per subcommand (``train``, ``predict``, ``evaluate``, ``info``, ``gui``), each with
``add_parser(sub)`` and ``cmd_<name>(args)``; ``parser`` holds the shared options, ``errors``
the exit statuses, ``progress`` the text progress bar, ``models`` the model a command names.
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import PROG, run_command, usage_status
from .info import describe_model
from .models import model_input
from .parser import build_parser
from .predict import OUTPUT_SUFFIXES
from .progress import ProgressBar, format_seconds

__all__ = [
    "OUTPUT_SUFFIXES",
    "PROG",
    "ProgressBar",
    "build_parser",
    "describe_model",
    "format_seconds",
    "main",
    "model_input",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-unet`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (status 2)
        return usage_status(exc)
    return run_command(args)
