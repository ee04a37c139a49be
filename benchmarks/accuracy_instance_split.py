"""How the default split of touching nuclei compares with connected components, at scales.

    python benchmarks/accuracy_instance_split.py            # needs ../shared/data

The bundled ``nuclei`` model predicts the 48 held-out DSB 2018 images once; its nucleus
probability is then resampled (linear) so the nuclei are 0.5x, 1x, 2x and 4x their size,
and the ground truth with it (nearest). Instances from p > 0.5 by:

- ``split (default)``: :func:`napari_unet.instances_from_prediction` as it is;
- ``connected components``: no split;
- ``earlier split``: the previous default, a watershed of -distance from local maxima at
  least 3 px apart (``peak_local_max``), kept here as the peer it replaced.

The split's two settings (solidity 0.9, h = 0.2 x radius) were chosen on every other image
(by id, "choosing half") and are reported on the rest ("checking half"). ``gt foreground``
rows take the true foreground instead of the prediction, so touching nuclei merge and only
the split separates them. Metric: object F1 at IoU 0.5, summed over the images. Writes the
section between ``<!-- accuracy:instance-split start/end -->`` of docs/accuracy.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _speedlib as sl  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dsb2018_nuclei"
ZOOMS = (0.5, 1.0, 2.0, 4.0)


def earlier_split(mask: np.ndarray, min_size: int) -> np.ndarray:
    from skimage.feature import peak_local_max
    from skimage.segmentation import watershed

    distance = ndi.distance_transform_edt(mask)
    components, _ = ndi.label(mask)
    peaks = peak_local_max(distance, min_distance=3, labels=components, exclude_border=False)
    markers = np.zeros(mask.shape, np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    return drop_small(watershed(-distance, markers, mask=mask), min_size)


def drop_small(labels: np.ndarray, min_size: int) -> np.ndarray:
    sizes = np.bincount(labels.ravel())
    small = sizes < min_size
    small[0] = False
    labels[small[labels]] = 0
    return labels


def methods():
    from napari_unet import instances_from_prediction

    return {
        "split (default)": lambda m, ms: instances_from_prediction(
            m.astype(np.float32), 0.5, True, ms
        ),
        "connected components": lambda m, ms: drop_small(ndi.label(m)[0], ms),
        "earlier split": earlier_split,
    }


def predictions() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import torch

    from napari_unet import predict_tiled
    from napari_unet.pretrained import dsb_split, load_pretrained, read_dsb_pair

    torch.set_num_threads(2)
    model = load_pretrained("nuclei")
    out = {}
    for row in dsb_split(DATA)["test"]:
        image, gt = read_dsb_pair(DATA, row["image_id"])
        pred = predict_tiled(model, image, tile_size=256, return_logits=False)
        out[row["image_id"]] = (pred.probabilities[1].astype(np.float32), gt)
    return out


def f1(method, pairs, zoom: float, source: str) -> float:
    from napari_unet.metrics import object_scores

    tp = fp = fn = 0
    for p, gt in pairs:
        if zoom != 1.0:
            p, gt = ndi.zoom(p, zoom, order=1), ndi.zoom(gt, zoom, order=0)
        mask = gt > 0 if source == "gt" else p > 0.5
        s = object_scores(method(mask, max(1, round(10 * zoom * zoom))), gt, 0.5)
        tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
    return 2 * tp / max(2 * tp + fp + fn, 1)


def main() -> None:
    if not (DATA / "manifest.csv").is_file():
        sys.exit(f"data not found: {DATA}")
    t0 = time.perf_counter()
    cache = predictions()
    ids = sorted(cache)
    halves = {"choosing half": ids[0::2], "checking half": ids[1::2]}
    header = ["images", "foreground", "nuclei at", *methods()]
    rows = []
    for half, chosen in halves.items():
        pairs = [cache[i] for i in chosen]
        for source in ("prediction", "gt"):
            for zoom in ZOOMS:
                scores = [f1(m, pairs, zoom, source) for m in methods().values()]
                label = "model" if source == "prediction" else "gt foreground"
                rows.append([f"{half} ({len(chosen)})", label, f"{zoom:g}x"] + scores)
                print(rows[-1], flush=True)
    body = "\n".join(
        [
            "Object F1 at IoU 0.5 of the bundled model's instances on the 48 held-out DSB "
            "images, resampled so the nuclei are 0.5x-4x their size. "
            "`benchmarks/accuracy_instance_split.py`.",
            "",
            sl.machine_line(sl.machine_info()) + f" {time.perf_counter() - t0:.0f} s.",
            "",
            sl.table(header, [[*r[:3], *(f"{v:.3f}" for v in r[3:])] for r in rows]),
        ]
    )
    doc = sl.write_section("instance-split", body, ROOT / "docs" / "accuracy.md", "accuracy:")
    print(f"wrote {doc}")


if __name__ == "__main__":
    main()
