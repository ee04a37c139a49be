"""``napari-unet export``: a model as a bioimage.io package or a TorchScript file, as the
widget's Export button writes it (:func:`napari_unet.workflow.export_model`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import add_common, add_model_source, new_command


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(
        sub,
        "export",
        help="write a model as a bioimage.io package or a TorchScript file",
        description="Export a model for other tools: a bioimage.io package (.zip, validated "
        "with bioimageio.spec; for bioimage.io, deepImageJ, ilastik) or a TorchScript file "
        "(.pt, runs without Python). An existing file is replaced only with --overwrite "
        "and only when it is an earlier export of the same kind.",
    )
    add_model_source(p)
    kind = p.add_mutually_exclusive_group(required=True)
    kind.add_argument("--bioimageio", metavar="OUT.zip", help="write a bioimage.io package")
    kind.add_argument("--torchscript", metavar="OUT.pt", help="write a TorchScript file")
    p.add_argument("--name", default="", help="bioimage.io: the package's name (5-128 chars)")
    p.add_argument("--description", default="", help="bioimage.io: one paragraph")
    p.add_argument("--authors", nargs="+", default=(), metavar="NAME", help="bioimage.io")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier export")
    add_common(p, cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    from ..workflow import ExportRequest, export_model
    from .models import load_model_arg
    from .progress import status

    kind = "bioimageio" if args.bioimageio else "torchscript"
    request = ExportRequest(
        kind,
        Path(args.bioimageio or args.torchscript),
        name=args.name,
        description=args.description,
        authors=tuple(args.authors),
        overwrite=args.overwrite,
    )
    request.validate()  # before the model is read
    written = export_model(load_model_arg(args), request)
    status(f"wrote {written}", args)
    return 0
