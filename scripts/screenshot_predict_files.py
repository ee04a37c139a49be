"""Make the user guide's screenshots of *Predict files...*: the dialog filled in for a
folder of three crops of the nuclei sample, and napari with the labels it opened.

Run from the repository root under a virtual display::

    xvfb-run -a -s "-screen 0 1500x1000x24" python scripts/screenshot_predict_files.py
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from screenshot import close_notifications, wait_until_idle

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    images = ROOT / "docs" / "images"
    parser.add_argument("--dialog-out", type=Path, default=images / "predict_files.png")
    parser.add_argument("--out", type=Path, default=images / "predict_files_results.png")
    args = parser.parse_args()

    import warnings

    warnings.filterwarnings("ignore", message="napari support for the PyQt5")
    warnings.filterwarnings("ignore", message="System theme detection")
    import napari
    import tifffile
    import torch
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QApplication

    from napari_unet._sample_data import load_nuclei

    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp(prefix="napari-unet-files-"))
    folder = work / "my images"
    folder.mkdir()
    image = load_nuclei()["image"]
    for i in range(3):
        tifffile.imwrite(folder / f"field{i + 1}.tif", image[i * 150 : i * 150 + 200, :360])
    viewer = napari.Viewer(title="napari-unet")
    viewer.window._qt_window.resize(1500, 1000)
    dock, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    app = QApplication.instance()
    viewer.window._qt_window.resizeDocks([dock], [460], Qt.Horizontal)
    widget.make_model()  # the bundled nuclei model
    wait_until_idle(widget, app, 60)

    widget.files_button.native.click()
    dialog = widget.files_dialog
    dialog.folder.value = str(folder)
    dialog.out.value = str(work / "results")
    dialog.instances.value = True
    dialog.resize(620, dialog.sizeHint().height())
    for _ in range(10):
        app.processEvents()
        time.sleep(0.05)
    args.dialog_out.parent.mkdir(parents=True, exist_ok=True)
    dialog.grab().save(str(args.dialog_out))
    print(f"wrote {args.dialog_out}")
    dialog.accept()
    wait_until_idle(widget, app, 300)
    print(widget.status.value)
    viewer.add_image(tifffile.imread(folder / "field1.tif"), name="field1")
    viewer.layers.move(len(viewer.layers) - 1, 0)  # the image under the labels
    viewer.layers["field1_labels"].contour = 2
    viewer.reset_view()
    close_notifications(viewer, app)
    widget.scroll_area.ensureWidgetVisible(widget.files_button.native)
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    viewer.screenshot(str(args.out), canvas_only=False)
    print(f"wrote {args.out}")
    viewer.close()


if __name__ == "__main__":
    main()
