"""How much a mouse move costs with the pixel inspector on, against napari's own status
update for the same move (the peer: what napari already does on every move).

The nuclei sample, the bundled model, predicted with the sample's instance labels; then
N mouse positions along a path over the image. For each: our callback
(``LookInside.on_mouse_move``: the pixel's report from the last prediction, the text set
in the dock) and napari's ``viewer.update_status_from_cursor()`` (the layer values under
the cursor in the status bar), each followed by the repaint it causes
(``processEvents``). Writes the medians and the 95th percentiles to
``benchmarks/results/speed_pixel_inspector.json`` and the section between
``<!-- speed:pixel-inspector start/end -->`` of docs/benchmarks.md. Run under Xvfb::

    xvfb-run -a python benchmarks/speed_pixel_inspector.py [--moves 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _speedlib as sl  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OURS, PEER = "inspector (report + dock text)", "napari status bar (peer)"


def timed(app, call) -> float:
    t0 = time.perf_counter()
    call()
    app.processEvents()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=300)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "speed_pixel_inspector.json"
    )
    args = parser.parse_args()

    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer()
    app = QApplication.instance()
    viewer.window._qt_window.resize(1400, 900)
    viewer.open_sample("napari-unet-explorer", "nuclei")
    _, widget = viewer.window.add_plugin_dock_widget("napari-unet-explorer", "U-Net")
    widget.labels_layer.value = viewer.layers["nuclei instances"]
    widget.make_model_button.native.click()
    widget.predict_button.native.click()
    while widget.busy:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):
        app.processEvents()
    rng = np.random.default_rng(0)
    path = rng.uniform(0, 511, (args.moves, 2))
    ours, napari_own = [], []
    for y, x in path:
        event = SimpleNamespace(position=(float(y), float(x)))
        viewer.cursor.position = (float(y), float(x))
        ours.append(timed(app, lambda e=event: widget.look_inside.on_mouse_move(viewer, e)))
        napari_own.append(timed(app, viewer.update_status_from_cursor))

    def summary(values: list[float]) -> dict[str, float]:
        ms = np.array(values) * 1000
        return {"median_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95))}

    result = {
        "machine": sl.machine_info(),
        "moves": args.moves,
        OURS: summary(ours),
        PEER: summary(napari_own),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {sl.write_section('pixel-inspector', report(result))}")


def report(result: dict[str, Any]) -> str:
    rows = [
        (name, f"{result[name]['median_ms']:.1f}", f"{result[name]['p95_ms']:.1f}")
        for name in (OURS, PEER)
    ]
    return "\n".join(
        [
            "## The pixel inspector per mouse move (`benchmarks/speed_pixel_inspector.py`)",
            "",
            f"{result['moves']} mouse positions over the nuclei sample after a prediction "
            "with the bundled model, in a real napari window under Xvfb; each call is timed "
            "with the repaint it causes. The inspector reads the last prediction (no "
            "forward pass); the peer is napari's own status-bar update for the same move.",
            "",
            sl.machine_line(result["machine"]),
            "",
            sl.table(("per mouse move", "median (ms)", "95th percentile (ms)"), rows),
        ]
    )


if __name__ == "__main__":
    main()
