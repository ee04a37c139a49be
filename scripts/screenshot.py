"""Make the user guide's screenshots: napari with the sample data, the U-Net widget docked,
after a short training run of a new tiny U-Net and a prediction; then the activations.

Run from the repository root under a virtual display (napari's canvas needs OpenGL, so use
xvfb-run rather than QT_QPA_PLATFORM=offscreen)::

    xvfb-run -a python scripts/screenshot.py [--steps 150] [--out docs/images/widget.png]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wait_until_idle(widget, app, timeout: float) -> None:
    end = time.monotonic() + timeout
    while widget.busy:
        if time.monotonic() > end:
            widget.cancel()
        app.processEvents()
        time.sleep(0.02)


def close_notifications(viewer, app) -> None:
    """Close the notification pop-ups ("model ready", ...)."""
    from napari._qt.dialogs.qt_notification import NapariQtNotification

    found = viewer.window._qt_window.findChildren(NapariQtNotification)
    found += [w for w in app.topLevelWidgets() if isinstance(w, NapariQtNotification)]
    for w in found:
        w.close()
        w.deleteLater()
    for _ in range(10):
        app.processEvents()
        time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="training steps")
    parser.add_argument(
        "--source",
        default="New U-Net",
        help='model source to train: "New U-Net" (a tiny one, as the user guide shows) or '
        '"Pretrained: nuclei" (the widget\'s default, fine-tuned)',
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "widget.png")
    parser.add_argument(
        "--activations-out",
        type=Path,
        default=ROOT / "docs" / "images" / "activations.png",
        help="second screenshot: the activation inspector",
    )
    parser.add_argument("--size", default="1500x1150", help="window size WxH")
    parser.add_argument("--dock-width", type=int, default=450, help="widget width (px)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for training")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore", message="napari support for the PyQt5")
    warnings.filterwarnings("ignore", message="System theme detection")
    import napari
    import torch
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    torch.set_num_threads(2)
    viewer = napari.Viewer(title="napari-unet")
    width, height = (int(v) for v in args.size.split("x"))
    viewer.window._qt_window.resize(width, height)
    viewer.open_sample("napari-unet-explorer", "nuclei")
    dock, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    app = QApplication.instance()
    viewer.window._qt_window.resizeDocks([dock], [args.dock_width], Qt.Horizontal)

    widget.model_source.value = args.source
    widget.steps.value = args.steps
    widget.tile_size.value = 96
    widget.train()
    wait_until_idle(widget, app, args.timeout)
    print(f"training: {widget.status.value}")
    widget.predict()
    wait_until_idle(widget, app, 300)
    # the view: the image, the segmentation as outlines, the nucleus probability on top
    for layer in viewer.layers:
        layer.visible = layer.name in ("nuclei", "scribbles", "p_k(x)", "segmentation")
    viewer.layers["segmentation"].contour = 2
    viewer.layers["p_k(x)"].opacity = 0.7
    viewer.layers.selection.active = viewer.layers["p_k(x)"]
    viewer.reset_view()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    close_notifications(viewer, app)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False)
    print(f"wrote {args.out}")

    if args.activations_out is not None:
        # the inspector: the 16 channels of encoder level 1 over the image
        widget.level.value = "encoder.1"
        widget.show_activations()
        wait_until_idle(widget, app, 300)
        for layer in viewer.layers:
            layer.visible = layer.name in ("nuclei", "activations: encoder.1")
        act = viewer.layers["activations: encoder.1"]
        viewer.layers.selection.active = act
        # show the channel that varies most over the image
        strongest = int(act.data.reshape(act.data.shape[0], -1).std(axis=1).argmax())
        viewer.dims.set_current_step(0, strongest)
        viewer.reset_view()
        close_notifications(viewer, app)
        viewer.screenshot(str(args.activations_out), canvas_only=False)
        print(f"wrote {args.activations_out} ({widget.status.value})")
    viewer.close()


if __name__ == "__main__":
    main()
