"""The one description of a model for people (widget, CLI, packages)."""

from __future__ import annotations

import json
from typing import Any

from .fields import _is_number
from .model_record import ModelRecord
from .recipes import DEFAULT_HIGH, DEFAULT_LOW
from .training_runs import TrainingRun


# ---------------------------------------------------------------- the summary
def _as_record(model_or_record: Any) -> ModelRecord:
    rec = getattr(model_or_record, "record", model_or_record)
    if not isinstance(rec, ModelRecord):
        raise TypeError(f"expected a UNet or a ModelRecord, got {type(model_or_record).__name__}")
    return rec


def _run_text(run: TrainingRun) -> str:
    cfg = run.config or {}
    settings = ", ".join(
        s
        for s in (
            cfg.get("optimizer"),
            f"lr {cfg['learning_rate']:g}" if _is_number(cfg.get("learning_rate")) else None,
            f"batch {cfg.get('batch_size', '?')} x {cfg.get('tile_size', '?')} px"
            if "batch_size" in cfg or "tile_size" in cfg
            else None,
            run.precision_used,
        )
        if s
    )
    parts = [f"{run.date or '?'}: {run.steps} steps" + (f" ({settings})" if settings else "")]
    if run.images is not None:
        parts.append(f"{len(run.images)} image(s)")
    if run.annotated_pixels is not None:
        parts.append(f"{run.annotated_pixels} annotated px")
    if run.batch_norm_recomputed:
        parts.append(f"batch norm recomputed on {run.batch_norm_recomputed} batches")
    if run.final_loss is not None:
        parts.append(f"final loss {run.final_loss:.4f}")
    parts += [
        _validation_text(value) or f"{key} {json.dumps(value, default=repr)}"
        if key == "validation"
        else f"{key} {json.dumps(value, default=repr)}"
        for key, value in run.extra.items()
    ]
    text = ", ".join(parts)
    return text + (f"; {run.description}" if run.description else "")


def _validation_text(value: Any) -> str | None:
    """'validated on 1 image(s) every 25 steps: best object F1 0.938 at step 150, weights
    of step 150' (None when the entry is not one napari-unet wrote)."""
    if not isinstance(value, dict) or not isinstance(value.get("scores"), list):
        return None
    scores = [s for s in value["scores"] if isinstance(s, dict) and "step" in s]
    images = value.get("images") if isinstance(value.get("images"), list) else []
    text = f"validated on {len(images)} image(s) every {value.get('every', '?')} steps"
    best = next((s for s in scores if s.get("step") == value.get("best_step")), None)
    if best is not None:
        metric = "object F1" if _is_number(best.get("object_f1")) else "IoU"
        score = best.get("object_f1") if metric == "object F1" else best.get("iou")
        if _is_number(score):
            text += f": best {metric} {score:.3f} at step {best['step']}"
    if value.get("stopped_early"):
        text += ", stopped early"
    if value.get("weights_from_step") is not None:
        text += f", weights of step {value['weights_from_step']}"
    return text


def summary(model_or_record: Any, *, detail: bool = False) -> str:
    """What a model is, for people: the one description the widget, ``napari-unet info``,
    the bioimage.io README, the TorchScript file and :func:`~napari_unet.pretrained.
    model_summary` show.

    Short (two or three lines): ``name: architecture -> classes``, ``source: ...; trained
    ...; mode``, and what a bundled model was originally trained on. ``detail=True``: one
    labelled line per field (normalisation, weight map, every training run, extras too).
    """
    rec = _as_record(model_or_record)
    a, c = rec.architecture, rec.classes
    k = a.n_classes
    if c.names is not None and c.label_values is not None:
        labels = ", ".join(f"{v} = {n}" for v, n in zip(c.label_values, c.names, strict=False))
    elif c.names is not None:
        labels = ", ".join(c.names)
    elif c.label_values is not None:
        labels = "label values " + ", ".join(map(str, c.label_values))
    else:
        labels = ""
    arch = (
        f"U-Net depth {a.depth}, base {a.base_channels}, {a.padding} padding"
        + (", batch norm" if a.batch_norm else "")
        + (f", dropout {a.dropout:g}" if a.dropout else "")
        + f"; {a.in_channels} input channel(s) -> {k} classes"
        + (f" ({labels})" if labels else "")
    )
    if rec.training:
        last = rec.training[-1].final_loss
        trained = f"trained {rec.steps_trained()} steps in {len(rec.training)} run(s)"
        trained += f", last loss {last:.3g}" if last is not None else ""
        images = sorted({i for run in rec.training for i in run.images or []})
        if images and not rec.trained_on:
            trained += " on " + ", ".join(images[:3]) + (", ..." if len(images) > 3 else "")
    else:
        trained = "untrained"
    source = rec.source or "new"
    if not detail:
        lines = [f"{rec.name}: {arch}" if rec.name else arch]
        lines.append(f"source: {source}; {trained}" + (f"; {c.mode} mode" if c.mode else ""))
        if rec.trained_on:
            lines.append(f"originally trained on {rec.trained_on}")
        return "\n".join(lines)
    norm = (
        rec.normalization.describe()
        if rec.normalization
        else f"not recorded (the default: percentiles {DEFAULT_LOW:g} / {DEFAULT_HIGH:g})"
    )
    mode = c.mode or "not recorded"
    if c.label_values is not None:
        mode += " (class channel k is written as the label value shown above)"
    pairs: list[tuple[str, str | None]] = [
        ("name", rec.name),
        ("architecture", arch),
        ("description", rec.description),
        ("source", source),
        ("preset", rec.preset),
        ("trained on", rec.trained_on),
        ("training", trained.removeprefix("trained ")),
        ("label mode", mode),
        ("normalisation", norm),
        ("weight map", rec.weight_map.describe() if rec.weight_map else None),
        ("label offset", f"{rec.label_offset} px (dy, dx)" if rec.label_offset else None),
        (
            "pred. shift",
            f"{rec.prediction_shift} px (dy, dx)" if rec.prediction_shift else None,
        ),
        (
            "bioimage.io",
            f"{rec.bioimageio.name}, licence {rec.bioimageio.license or '?'}, "
            f"output {rec.bioimageio.output}"
            if rec.bioimageio
            else None,
        ),
    ]
    pairs += [(f"run {i}", _run_text(run)) for i, run in enumerate(rec.training, 1)]
    pairs += [(key, json.dumps(value, default=repr)) for key, value in rec.extra.items()]
    return "\n".join(f"{label + ':':<16}{text}" for label, text in pairs if text is not None)
