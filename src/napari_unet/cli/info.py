"""``napari-unet info``: what a model file (or bundled model) holds, or the bundled models."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .options import add_common, new_command


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(
        sub,
        "info",
        help="what a model file (or bundled model) holds",
        description="Describe a model: architecture and size arithmetic (context, valid tile "
        "sizes), classes, normalisation and training history. Without MODEL, list the "
        "bundled models.",
    )
    p.add_argument("model", nargs="?", metavar="MODEL", help="a model file or bundled name")
    p.add_argument("--json", action="store_true", help="print the description as JSON")
    add_common(p, cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from ..pretrained import list_pretrained, model_card

    if not args.model:
        names = list_pretrained()
        if args.json:
            print(json.dumps({"bundled": names}))
        elif names:
            print("bundled models (use with --pretrained NAME, or `napari-unet info NAME`):")
            for name in names:
                card = model_card(name).strip().splitlines()
                first = next((ln.strip("# ").strip() for ln in card if ln.strip()), "")
                print(f"  {name:<20} {first}")
        else:
            print("no bundled models in this installation")
        return 0
    path = Path(args.model)
    if path.exists():
        from ..io.checkpoint import load_model

        model = load_model(path)
    elif args.model in list_pretrained():
        from ..pretrained import load_pretrained, pretrained_path

        model = load_pretrained(args.model)
        path = pretrained_path(args.model)
    else:
        raise FileNotFoundError(
            f"{args.model}: no such model file or bundled model "
            f"(bundled: {', '.join(list_pretrained()) or 'none'})"
        )
    desc = describe_model(model, path)
    if args.json:
        print(json.dumps(desc, indent=2, default=str))
        return 0
    _print_description(desc)
    return 0


def describe_model(model: Any, path: Path | None = None) -> dict[str, Any]:
    """A JSON-able description of a model: architecture, size arithmetic, classes, history,
    its record (``model.record``) and the summary for people."""
    from ..unet.record import summary
    from ..unet.tiling import tile_geometry

    record = model.record
    n_params = sum(p.numel() for p in model.parameters())
    tile_in, tile_out, halo, step = tile_geometry(model, None)
    desc: dict[str, Any] = {
        "file": str(path) if path else None,
        "file_size_bytes": path.stat().st_size if path and path.is_file() else None,
        "architecture": model.config(),
        "parameters": int(n_params),
        "size": {
            "context_per_side_px": int(model.margin),
            "size_multiple": int(model.size_multiple),
            "min_input_px": int(model.min_input_size),
            "min_output_px": int(model.output_size(model.min_input_size)),
            "default_tile": {"input": tile_in, "output": tile_out, "halo": halo, "step": step},
        },
        "classes": record.classes.names,
        "label_values": record.classes.label_values,
        "label_mode": record.classes.label_mode,
        "normalization": record.normalization_dict(),
        "training": [run.to_v1() for run in record.training],
        "record": record.to_dict(),
        "summary": summary(record, detail=True),
    }
    if model.padding == "valid":
        n = model.valid_input_size(572)
        desc["size"]["example"] = {"input": n, "output": model.output_size(n)}
    return desc


def _print_description(d: dict[str, Any]) -> None:
    """:func:`describe_model`'s description for people: the model's summary (record) and
    the size arithmetic of its architecture."""
    a, s = d["architecture"], d["size"]
    size = f" ({d['file_size_bytes'] / 1e6:.1f} MB)" if d.get("file_size_bytes") else ""
    print(f"model:          {d['file']}{size}")
    print(d["summary"])
    print(f"parameters:     {d['parameters']:,} ({d['parameters'] * 4 / 1e6:.1f} MB as float32)")
    t = s["default_tile"]
    if a["padding"] == "valid":
        context = f"context {s['context_per_side_px']} px per side (output = input - 2 x context)"
    else:
        context = f"zero-padded convolutions; tiles overlap by {t['halo']} px per side"
    print(
        f"size:           {context}; tiles on a {s['size_multiple']} px grid; smallest input "
        f"{s['min_input_px']} px -> output {s['min_output_px']} px"
    )
    if "example" in s:
        e = s["example"]
        print(f"                input tile {e['input']} px -> output tile {e['output']} px")
    print(
        f"                default prediction tile: input {t['input']} -> output {t['output']} "
        f"px, step {t['step']}"
    )
