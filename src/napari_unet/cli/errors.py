"""How a failing command ends: one line on stderr and an exit status.

``1`` for an error, ``2`` for a wrong command line (argparse's usage error), ``130`` when
interrupted. ``--debug`` (or the ``NAPARI_UNET_DEBUG`` environment variable) shows the full
traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

PROG = "napari-unet"
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def one_line(err: BaseException) -> str:
    """The message of ``err`` on one line; unexpected error types also name their type."""
    text = " ".join(str(err).split()) if str(err).strip() else ""
    known = isinstance(err, ValueError | OSError)
    if not known or not text:
        text = f"{type(err).__name__}: {text}" if text else type(err).__name__
        text += " (run with --debug for details)"
    return text


def file_error(path: Path, err: Exception) -> Exception:
    """Prefix an error message with the file it is about (once)."""
    from ..workflow.batch import about

    return about(path, err)


def usage_status(exc: SystemExit) -> int:
    """The exit status of argparse's ``SystemExit`` (--help, --version or a usage error)."""
    return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's CPU threads for one command (--threads), restored afterwards: ``main()``
    may be called from a Python program that has its own setting."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_command(args: argparse.Namespace) -> int:
    """Run the subcommand ``args.func``; every failure becomes one line and a status."""
    try:
        with _torch_threads(getattr(args, "threads", None)):
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (e.g. `napari-unet info nuclei | head`): not an error;
        # point stdout at /dev/null so the interpreter's final flush stays quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as err:
        if getattr(args, "debug", False) or os.environ.get("NAPARI_UNET_DEBUG"):
            raise
        print(f"{PROG}: error: {one_line(err)}", file=sys.stderr)
        return EXIT_ERROR
