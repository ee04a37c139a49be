"""The bundled nuclei model: it loads, says what it is, and segments held-out nuclei."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from napari_unet.pretrained import (
    dsb_split,
    list_pretrained,
    load_pretrained,
    model_card,
    model_summary,
    read_dsb_pair,
)

DSB = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018_nuclei"
needs_dsb = pytest.mark.skipif(
    not (DSB / "manifest.csv").is_file(), reason=f"DSB 2018 data not found at {DSB}"
)


def test_nuclei_model_is_bundled_with_metadata():
    assert "nuclei" in list_pretrained()
    model = load_pretrained("nuclei")
    record = model.record
    assert record.name == "nuclei"
    assert record.classes.names == ["background", "nucleus"]
    assert record.classes.label_mode == "instances"
    assert record.source == "bundled:nuclei"
    assert "Data Science Bowl" in record.trained_on
    assert record.normalization.method == "percentile"
    assert model.in_channels == 1 and model.n_classes == 2
    assert record.training and record.training[-1].steps_done > 0
    card = model_card("nuclei")
    assert "CC0" in card and "F1" in card
    # a few MB at most, no download at run time
    folder = Path(__file__).resolve().parents[1] / "src" / "napari_unet" / "pretrained"
    size = (folder / "nuclei.pt").stat().st_size
    assert size < 8e6


def test_model_summary_says_what_and_trained_on():
    text = model_summary(load_pretrained("nuclei"))
    assert text.startswith("nuclei: U-Net depth 3")
    assert "background, nucleus" in text and "Data Science Bowl" in text


def test_unknown_pretrained_name_is_a_clear_error():
    with pytest.raises(ValueError, match="no bundled model"):
        load_pretrained("no-such-model")


@needs_dsb
def test_split_is_fixed_and_disjoint_from_training():
    split = dsb_split(DSB)
    train_ids = {r["image_id"] for r in split["train"]}
    test_ids = {r["image_id"] for r in split["test"]}
    assert train_ids and test_ids and not train_ids & test_ids
    assert {r["modality"] for r in split["test"]} == {"fluorescence", "brightfield_gray"}
    # the model's recorded training images (id prefixes) hold no held-out image
    seen = set(load_pretrained("nuclei").record.training[-1].images)
    assert seen and not {i[: len(next(iter(seen)))] for i in test_ids} & seen


def _f1_on(model, pairs):
    from napari_unet import instances_from_prediction, predict_tiled
    from napari_unet.metrics import object_scores

    tp = fp = fn = 0
    for image, gt in pairs:
        prob = predict_tiled(model, image, tile_size=256, return_logits=False).probabilities[1]
        inst = instances_from_prediction(prob, 0.5, split_touching=False, min_size=10)
        s = object_scores(inst, gt, 0.5)
        tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
    return 2 * tp / max(2 * tp + fp + fn, 1)


@needs_dsb
def test_bundled_model_segments_held_out_nuclei():
    """On two small held-out fluorescence images the bundled model finds the nuclei
    (object F1 at IoU 0.5; 0.75 when written); a random-weight net of the same shape does
    not (0.0)."""
    import torch

    from napari_unet import UNet

    rows = [
        r
        for r in dsb_split(DSB)["test"]
        if r["modality"] == "fluorescence" and r["height"] == r["width"] == "256"
    ][:2]
    pairs = [read_dsb_pair(DSB, r["image_id"]) for r in rows]
    model = load_pretrained("nuclei")
    torch.manual_seed(0)
    chance = UNet(**model.config())
    chance.record = copy.deepcopy(model.record)
    chance.eval()
    with torch.inference_mode():
        f1 = _f1_on(model, pairs)
        f1_chance = _f1_on(chance, pairs)
    assert f1_chance < 0.3
    assert f1 >= 0.6, f"object F1 {f1:.3f} on held-out images"
    assert np.isfinite(f1)
