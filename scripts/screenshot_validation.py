"""Make the user guide's screenshot of validation during training: the nuclei sample, the
scribbles of the left three quarters as training labels, the drawn nuclei of the right
quarter (as 1 = background, 2 = nucleus) as validation labels, a new U-Net trained with
the validation loss and IoU plotted live.

Run from the repository root under a virtual display::

    xvfb-run -a -s "-screen 0 1500x1100x24" python scripts/screenshot_validation.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from screenshot import close_notifications, wait_until_idle

ROOT = Path(__file__).resolve().parents[1]
SPLIT = 384  # columns from here on are held out for validation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "validation.png")
    parser.add_argument("--size", default="1500x1100", help="window size WxH")
    parser.add_argument("--dock-width", type=int, default=460, help="widget width (px)")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore", message="napari support for the PyQt5")
    warnings.filterwarnings("ignore", message="System theme detection")
    import napari
    import numpy as np
    import torch
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    from napari_unet._sample_data import load_nuclei

    torch.set_num_threads(2)
    sample = load_nuclei()
    viewer = napari.Viewer(title="napari-unet")
    width, height = (int(v) for v in args.size.split("x"))
    viewer.window._qt_window.resize(width, height)
    viewer.add_image(sample["image"], name="nuclei")
    training = sample["scribbles"].copy()
    training[:, SPLIT:] = 0
    held_out = np.zeros_like(training)
    held_out[:, SPLIT:] = np.where(sample["instances"][:, SPLIT:] > 0, 2, 1)
    viewer.add_labels(training, name="scribbles")
    viewer.add_labels(held_out, name="validation", opacity=0.3)
    dock, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    app = QApplication.instance()
    viewer.window._qt_window.resizeDocks([dock], [args.dock_width], Qt.Horizontal)

    widget.labels_layer.value = viewer.layers["scribbles"]
    widget.validation_labels.value = viewer.layers["validation"]
    widget.model_source.value = "New U-Net"
    widget.steps.value = args.steps
    widget.tile_size.value = 96
    widget.validate_every.value = 20
    torch.manual_seed(0)  # the new model's initial weights: the same screenshot every run
    t0 = time.perf_counter()
    widget.train()
    wait_until_idle(widget, app, 900)
    print(f"training ({time.perf_counter() - t0:.0f} s): {widget.status.value}")
    for layer in viewer.layers:
        layer.visible = layer.name in ("nuclei", "validation", "segmentation")
    viewer.reset_view()
    close_notifications(viewer, app)
    # the dock scrolled to the training section and its loss curve
    widget.scroll_area.ensureWidgetVisible(widget.switch_weights_button.native)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False)
    print(f"wrote {args.out}")
    viewer.close()


if __name__ == "__main__":
    main()
