"""What a bioimage.io package shows people: the cover image and the README.

The cover is made from the package's own test pair (the real prediction of the exported
weights): the input next to the prediction, 2:1 as the model zoo asks. The README says
what the model is, what it expects, what it was trained on (and under which licence), how
to check it, and which paper to cite.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..unet.model import UNet
from ..unet.record import summary

#: Class colours of the cover (class k + 1 gets PALETTE[k % len]).
PALETTE = np.array(
    [
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (255, 225, 25),
        (145, 30, 180),
        (70, 240, 240),
        (245, 130, 48),
        (240, 50, 230),
        (210, 245, 60),
        (250, 190, 212),
    ],
    np.float32,
)
COVER_HEIGHT = 256  # the cover is at least this tall (integer upscaling, nearest neighbour)


def _display(planes: np.ndarray) -> np.ndarray:
    """(C, H, W) raw -> (H, W, 3) uint8: percentiles 1 / 99.8 of each channel -> 0 / 255."""
    lo = np.percentile(planes, 1.0, axis=(1, 2), keepdims=True)
    hi = np.percentile(planes, 99.8, axis=(1, 2), keepdims=True)
    scaled = np.clip((planes - lo) / np.maximum(hi - lo, 1e-12), 0, 1)
    if scaled.shape[0] == 1:
        rgb = np.repeat(scaled, 3, axis=0)
    else:
        rgb = np.zeros((3, *scaled.shape[1:]), scaled.dtype)
        rgb[: min(3, scaled.shape[0])] = scaled[:3]
    return (255 * rgb.transpose(1, 2, 0)).round().astype(np.uint8)


def prediction_rgb(output: np.ndarray, probabilities: bool) -> np.ndarray:
    """(K, H, W) logits or probabilities -> (H, W, 3) uint8: class colours mixed by p_k(x)."""
    out = np.asarray(output, np.float64)
    if not probabilities:
        e = np.exp(out - out.max(axis=0, keepdims=True))
        out = e / e.sum(axis=0, keepdims=True)
    colours = PALETTE[np.arange(out.shape[0]) % len(PALETTE)]
    rgb = np.tensordot(out, colours, axes=(0, 0))
    return np.clip(rgb, 0, 255).round().astype(np.uint8)


def cover_image(
    test_input: np.ndarray, test_output: np.ndarray, probabilities: bool
) -> np.ndarray:
    """Input | prediction, side by side, 2:1 (width:height), uint8 RGB.

    The input panel is the centre of the test input that the output covers (the output of
    a valid-padding U-Net is smaller than its input by the margin on each side).
    """
    inp, out = test_input[0], test_output[0]
    h, w = out.shape[-2:]
    top, left = (inp.shape[-2] - h) // 2, (inp.shape[-1] - w) // 2
    left_panel = _display(inp[:, top : top + h, left : left + w])
    right_panel = prediction_rgb(out, probabilities)
    side = min(h, w)  # square panels make the cover exactly 2:1
    panels = [p[:side, :side] for p in (left_panel, right_panel)]
    cover = np.concatenate(panels, axis=1)
    factor = max(1, math.ceil(COVER_HEIGHT / side))
    return np.repeat(np.repeat(cover, factor, axis=0), factor, axis=1)


def write_cover(
    path: Path, net: UNet, test_input: np.ndarray, test_output: np.ndarray, probabilities: bool
) -> None:
    import imageio.v3 as iio

    iio.imwrite(path, cover_image(test_input, test_output, probabilities))


def _training_text(net: UNet, training_data: str | None) -> str:
    if training_data:
        return training_data.strip()
    images = sorted({str(i) for run in net.record.training for i in run.images or []})
    source = net.record.source or ""
    lines = []
    if source:
        lines.append(f"Started from: `{source}`.")
    if source.startswith("bundled:"):
        from ..pretrained import model_card

        card = ""
        with contextlib.suppress(Exception):
            card = model_card(source.removeprefix("bundled:")).strip()
        if card:
            lines.append("\nModel card of the pretrained model it started from:\n")
            lines.append("\n".join("> " + line for line in card.splitlines()))
    if images:
        lines.append(
            "Images used for training (names as recorded in napari): " + ", ".join(images)
        )
    if not lines:
        lines.append("No training record was stored with this model.")
    lines.append(
        "\nThe licence of the training data was not recorded. Whoever shares this package "
        "must state it here and make sure it allows sharing a model trained on it."
    )
    return "\n".join(lines)


def readme_text(
    net: UNet,
    *,
    name: str,
    description: str,
    normalization: Mapping[str, Any],
    rule: tuple[int, int],
    probabilities: bool,
    training_data: str | None,
    license: str,
    architecture: str,
) -> str:
    from .bioimageio_package import PAPER_CITATION, PAPER_DOI, class_names

    classes = class_names(net)
    if normalization["method"] == "percentile":
        norm = (
            f"`scale_range`: the {normalization['low']} and {normalization['high']} percentiles "
            "of each channel of each image are mapped to 0 and 1 (not clipped)."
        )
    else:
        norm = "none: the raw values go into the network (cast to float32)."
    out_size = (
        "the same size as the input"
        if net.padding == "same"
        else f"smaller than the input by {net.margin} pixels on each side (valid convolutions)"
    )
    output = (
        "p_k(x), the softmax over the channel axis (postprocessing `softmax`)"
        if probabilities
        else "a_k(x), the output feature channels *before* the softmax (logits); "
        "p_k(x) = exp(a_k(x)) / sum_k' exp(a_k'(x)); the segmentation is argmax_k"
    )
    values = net.record.classes.values(net.n_classes)
    class_lines = "\n".join(
        f"  - channel {k}: {c} (label value {v})"
        for k, (c, v) in enumerate(zip(classes, values, strict=True))
    )
    arch_text = (
        "`unet.py` in this package (needs only PyTorch)"
        if architecture == "file"
        else "`napari_unet.unet.model.UNet` (needs `pip install napari-unet-explorer`)"
    )
    return f"""# {name}

{description.strip()}

Exported with napari-unet-explorer, a napari plugin that trains and fine-tunes the U-Net of
Ronneberger et al. (2015) on a few annotated strokes.

## Model

```text
{summary(net, detail=True)}
```

- Architecture: the paper's U-Net, (3x3 convolution, ReLU) x 2 per level, 2x2
  max-poolings, channels doubling per level; dropout (if any) at the end of the
  contracting path, off at inference.
- Code: {arch_text}, `UNet(**kwargs)` with the kwargs in `rdf.yaml`.
- Parameters: {sum(p.numel() for p in net.parameters()):,}.

## Input and output

- Input `image`: (batch, channel, y, x), {net.in_channels} channel(s), float32. Valid sizes of y
  and x: {rule[0]} + n * {rule[1]} (n = 0, 1, 2, ...).
- Preprocessing: {norm}
- Output: (batch, channel, y, x), {out_size}: {output}.
- Classes:
{class_lines}

## Training data

{_training_text(net, training_data)}

## Training

Loss: the paper's energy E = - sum_x w(x) log p_l(x)(x) (pixel-wise softmax and weighted
cross-entropy, equation 1), averaged over annotated pixels; unannotated pixels contribute
nothing. The training runs, their settings and final losses are listed under "Model"
above.

## Validation

The package holds a test pair: `test_input.npy` (raw) and `test_output.npy`, the output of
these weights after the preprocessing above. `bioimageio test` (bioimageio.core) or
`napari_unet.import_bioimageio` reproduce it (tolerance 1e-3). The model was trained
interactively; check its output on your own images with a few annotated ones before using
the results quantitatively (pixel error and, for cells, the Rand error against your ground
truth).

The cover shows the test input next to the predicted classes (colours mixed by p_k(x)).

## How to use

- napari: napari-unet-explorer imports this package (zip or folder); or in Python
  `napari_unet.interchange.bioimageio.import_bioimageio("package.zip")`.
- bioimageio.core, ilastik, deepImageJ: load the package as any bioimage.io model
  (deepImageJ uses the TorchScript weights).

## Citation

{PAPER_CITATION} https://doi.org/{PAPER_DOI}

## License

The model (weights and code) is shared under {license}. The training data keep their own
licence, stated under "Training data" above.
"""


def write_readme(path: Path, net: UNet, **kwargs: Any) -> None:
    path.write_text(readme_text(net, **kwargs), encoding="utf-8")
