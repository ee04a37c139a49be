"""Make the README's pixel-inspector screenshot (and the user guide's channel gallery and
Export dialog) and print the numbers it shows.

napari with the nuclei sample, the bundled model, the sample's instance labels as the
annotation (so w(x) has its border term); Predict, then the mouse on the background pixel
with the largest border term (between two touching nuclei), a click to pin it (its
receptive field) and the gradient map. Then the channel gallery of ``encoder.1``. Run
from the repository root::

    xvfb-run -a -s "-screen 0 1500x1000x24" python scripts/screenshot_inspector.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from screenshot import close_notifications  # noqa: E402 - the user guide's screenshots

ROOT = Path(__file__).resolve().parents[1]


def settle(app, seconds: float = 0.5) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def wait_idle(widget, app) -> None:
    while widget.busy:
        app.processEvents()
        time.sleep(0.02)


def between_nuclei(widget) -> tuple[int, int]:
    """The background pixel with the largest border term of w(x)."""
    terms = widget.pixel_section.terms[()]
    border = np.where(terms.target == 0, terms.border, 0)
    return tuple(int(v) for v in np.unravel_index(np.argmax(border), border.shape))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "inspector.png")
    parser.add_argument(
        "--gallery-out", type=Path, default=ROOT / "docs" / "images" / "gallery.png"
    )
    parser.add_argument("--export-out", type=Path, default=ROOT / "docs" / "images" / "export.png")
    parser.add_argument("--size", default="1500x1000", help="window size WxH")
    args = parser.parse_args()

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_unet.widgets.view import camera

    viewer = napari.Viewer()
    app = QApplication.instance()
    width, height = (int(v) for v in args.size.split("x"))
    viewer.window._qt_window.resize(width, height)
    viewer.open_sample("napari-unet-explorer", "nuclei")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    widget.labels_layer.value = viewer.layers["nuclei instances"]
    viewer.layers["nuclei instances"].visible = False
    viewer.layers["scribbles"].visible = False
    widget.make_model_button.native.click()
    widget.predict_button.native.click()
    wait_idle(widget, app)
    pixel = between_nuclei(widget)
    viewer.layers.selection.active = viewer.layers["nuclei"]
    cam = camera(viewer)
    cam.center, cam.zoom = pixel, 3.0
    settle(app)
    widget.look_inside.pin((), pixel)
    widget.gradient_button.native.click()
    wait_idle(widget, app)
    viewer.layers["|da_k(x)/dinput|"].visible = False  # its own screenshot would be clearer
    widget.look_inside.show_pixel((), pixel)
    close_notifications(viewer, app)
    bar = widget.scroll_area.verticalScrollBar()
    bar.setValue(bar.maximum())  # section 5, the inspector, at the bottom of the dock
    close_notifications(viewer, app)
    settle(app, 1.0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.window._qt_window.grab().save(str(args.out))
    print(f"pixel {pixel}; screenshot {args.out}")
    print(widget.pixel_text.text())
    print(widget.field_info.value)

    widget.annotate_hint.value = False
    for name in ("receptive field", "p_k(x)", "segmentation", "instances"):
        viewer.layers[name].visible = False
    widget.level.value = "encoder.1"
    widget.gallery_button.native.click()
    wait_idle(widget, app)
    viewer.layers.selection.active = viewer.layers["nuclei"]
    widget.look_inside.click(gallery_cell_centre(viewer, 3))  # as a click on cell 3
    viewer.reset_view()
    widget.scroll_area.ensureWidgetVisible(widget.channel_table)
    close_notifications(viewer, app)
    settle(app, 1.0)
    viewer.window._qt_window.grab().save(str(args.gallery_out))
    print(f"gallery screenshot {args.gallery_out}: {widget.status.value}")

    widget.export_button.native.click()  # the Export dialog, filled in as a user would
    dialog = widget.export_dialog
    dialog.path.value = "/home/me/models/nuclei-unet.zip"
    dialog.package_name.value = "Nuclei U-Net (napari-unet)"
    dialog.description.value = "Background / nucleus U-Net for fluorescence nuclei."
    dialog.authors.value = "Jane Doe, Max Mustermann"
    dialog.resize(560, dialog.sizeHint().height())
    settle(app, 0.5)
    dialog.grab().save(str(args.export_out))
    dialog.reject()
    print(f"export dialog screenshot {args.export_out}")


def gallery_cell_centre(viewer, channel: int):
    """The world position of the middle of a gallery cell."""
    layer = next(la for la in viewer.layers if la.name.startswith("gallery: "))
    mosaic = layer.metadata["mosaic"]
    oy, ox = mosaic.origin(channel)
    return layer.data_to_world((oy + mosaic.cell[0] / 2, ox + mosaic.cell[1] / 2))


if __name__ == "__main__":
    main()
