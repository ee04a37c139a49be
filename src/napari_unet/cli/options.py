"""The option groups that several commands share, defined once, and the help formatter.

Each subcommand module (train, predict, evaluate, info, gui) builds its parser from these
in ``add_parser(sub)``; :mod:`.parser` puts the subcommands together.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from collections.abc import Callable

DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (a usage error, exit status 2, otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def max_threads() -> int:
    """The most threads or worker processes one option may ask for: 4 per CPU core (at
    least 16). More than cores only slows the work down; 100000 would exhaust the
    machine before anything is computed."""
    return max(16, 4 * (os.cpu_count() or 1))


def thread_count(text: str) -> int:
    """An argparse type: a number of threads or processes, from 1 to :func:`max_threads`."""
    value = positive_int(text)
    if value > max_threads():
        raise argparse.ArgumentTypeError(
            f"{value} is more than {max_threads()} (4 per CPU core of this machine, which has "
            f"{os.cpu_count() or 1}); more threads than cores only slow it down"
        )
    return value


class HelpFormatter(argparse.HelpFormatter):
    """Wrap description paragraphs (keeping indented lines as they are) and show each
    option's default when it has one."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for para in text.split("\n\n"):
            lines = para.split("\n")
            if any(line.startswith("  ") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(
                    textwrap.fill(
                        " ".join(lines), width, initial_indent=indent, subsequent_indent=indent
                    )
                )
        return "\n\n".join(paragraphs)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and default not in (None, False, "", argparse.SUPPRESS)
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


def new_command(
    sub: argparse._SubParsersAction, name: str, *, help: str, description: str
) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``; finish it with :func:`add_common`."""
    return sub.add_parser(name, formatter_class=HelpFormatter, help=help, description=description)


def add_common(p: argparse.ArgumentParser, func: Callable[[argparse.Namespace], int]) -> None:
    """The options of every command (--quiet, --debug), last; ``func`` runs the command."""
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or status lines")
    p.add_argument(
        "--debug", action="store_true", help="show the full traceback when something fails"
    )
    p.set_defaults(func=func)


def add_paths(p: argparse.ArgumentParser, flag: str, help: str, required: bool = False) -> None:
    """An option taking one or more files, folders or glob patterns."""
    p.add_argument(flag, nargs="+", required=required, metavar="PATH", help=help)


def add_model_source(p: argparse.ArgumentParser, required: bool = True) -> None:
    """--model FILE or --pretrained NAME (one of them)."""
    g = p.add_mutually_exclusive_group(required=required)
    g.add_argument("--model", metavar="MODEL.pt", help="a model file saved by napari-unet")
    g.add_argument(
        "--pretrained", metavar="NAME", help="a model bundled with the package (see `info`)"
    )


def add_overwrite(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=help)


def add_channel_axis(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--channel-axis", type=int, default=None, metavar="AXIS", help=help)


def add_device(p: argparse.ArgumentParser, help: str = DEVICE_HELP) -> None:
    p.add_argument("--device", default="auto", help=help)
    p.add_argument(
        "--threads",
        type=thread_count,
        default=None,
        metavar="N",
        help="CPU threads of this command (default: one per core): torch's threads, and "
        "for zarr inputs the chunks predicted at a time. On a machine that other jobs "
        "share, fewer threads than cores can be several times faster. Dask workers "
        "(--workers, --scheduler) are not affected",
    )


def add_inference(p: argparse.ArgumentParser) -> None:
    """How a model is run on images: channels, tiles, device and precision."""
    add_channel_axis(
        p,
        "axis of the colour/channel dimension of the images (e.g. -1); by default RGB "
        "PNG/JPEG/TIFF images and the 'c' axis of OME-Zarr are recognised, and a colour "
        "image given to a 1-channel model is converted to grey (mean of R, G, B)",
    )
    p.add_argument(
        "--tile-size",
        type=positive_int,
        default=None,
        metavar="PX",
        help="output tile side in pixels (rounded up to a valid size); memory grows with "
        "it; default depends on the model width",
    )
    p.add_argument("--batch-size", type=positive_int, default=1, help="tiles per forward pass")
    add_device(p, f"{DEVICE_HELP} (auto = best available)")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="arithmetic for inference: bf16 on recent CPUs/GPUs, fp16 on GPUs only",
    )
    p.add_argument(
        "--tta",
        action="store_true",
        help="test-time augmentation: average a_k(x) over the 8 flips/quarter turns of each "
        "image, as the paper does (8x the time; in-memory images only)",
    )


def add_cluster(p: argparse.ArgumentParser) -> None:
    """Where dask chunks run: a running scheduler, or a local cluster of N workers."""
    cl = p.add_mutually_exclusive_group()
    cl.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="address of a running dask scheduler (e.g. tcp://host:8786) to run chunks on",
    )
    cl.add_argument(
        "--workers",
        type=thread_count,
        default=None,
        metavar="N",
        help="start a local dask cluster with N worker processes for the chunks",
    )
    p.add_argument(
        "--threads-per-worker",
        type=thread_count,
        default=1,
        help="threads of each --workers process",
    )
