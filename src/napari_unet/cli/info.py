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
    """A JSON-able description of a model: architecture, size arithmetic, classes, history."""
    from ..unet.tiling import tile_geometry

    cfg = model.config()
    n_params = sum(p.numel() for p in model.parameters())
    tile_in, tile_out, halo, step = tile_geometry(model, None)
    meta = dict(model.metadata)
    desc: dict[str, Any] = {
        "file": str(path) if path else None,
        "file_size_bytes": path.stat().st_size if path and path.is_file() else None,
        "architecture": cfg,
        "parameters": int(n_params),
        "size": {
            "context_per_side_px": int(model.margin),
            "size_multiple": int(model.size_multiple),
            "min_input_px": int(model.min_input_size),
            "min_output_px": int(model.output_size(model.min_input_size)),
            "default_tile": {"input": tile_in, "output": tile_out, "halo": halo, "step": step},
        },
        "classes": meta.pop("class_names", None),
        "label_values": meta.pop("label_values", None),
        "label_mode": meta.pop("label_mode", None),
        "normalization": meta.pop("normalization", None),
        "training": meta.pop("training", []),
        "other_metadata": meta,
    }
    if model.padding == "valid":
        n = model.valid_input_size(572)
        desc["size"]["example"] = {"input": n, "output": model.output_size(n)}
    return desc


def _print_description(d: dict[str, Any]) -> None:
    """:func:`describe_model`'s description for people."""
    a, s = d["architecture"], d["size"]
    size = f" ({d['file_size_bytes'] / 1e6:.1f} MB)" if d.get("file_size_bytes") else ""
    print(f"model:          {d['file']}{size}")
    print(
        f"architecture:   U-Net, depth {a['depth']} (2x2 max-pools), {a['base_channels']} "
        f"channels at the top (x2 per level), {a['padding']} convolutions, "
        f"batch norm {'on' if a['batch_norm'] else 'off'}, dropout {a['dropout']}"
    )
    print(f"                {a['in_channels']} input channel(s) -> {a['n_classes']} classes")
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
    classes = d.get("classes") or []
    values = d.get("label_values") or list(range(1, len(classes) + 1))
    if classes:
        pairs = ", ".join(f"{v} = {n}" for v, n in zip(values, classes, strict=False))
        print(f"classes:        {pairs} (label value = class)")
    mode = d.get("label_mode") or "unknown"
    if d.get("label_values") is not None:
        mode = "dense (class k is written as label value k above)"
    print(f"label mode:     {mode}")
    print(f"normalisation:  {json.dumps(d.get('normalization'))}")
    history = d.get("training") or []
    if not history:
        print("training:       none recorded")
    for i, run in enumerate(history, 1):
        cfg = run.get("config", {})
        loss = run.get("final_loss")
        print(
            f"training {i}:     {run.get('date', '?')}: {run.get('steps_done')} steps "
            f"({cfg.get('optimizer')}, lr {cfg.get('learning_rate')}, batch "
            f"{cfg.get('batch_size')} x {cfg.get('tile_size')} px), "
            f"{len(run.get('images', []))} image(s), {run.get('annotated_pixels')} annotated px"
            + (f", final loss {loss:.4f}" if isinstance(loss, int | float) else "")
        )
        if run.get("description"):
            print(f"                {run['description']}")
    for key, value in (d.get("other_metadata") or {}).items():
        print(f"{key + ':':<16}{value}")
