"""Predict files or a folder from the widget (section 4, "Predict files..."): a dialog for
the inputs, the output folder and what to write; the workflow's batch prediction
(:mod:`napari_unet.workflow.batch`, what ``napari-unet predict`` runs) in a thread worker
with progress and Cancel; the label outputs opened lazily as layers."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from magicgui.widgets import CheckBox, ComboBox, FileEdit
from qtpy.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QWidget

from ..unet.data import InputError
from ..workflow import InstanceOptions, PredictOptions
from ..workflow.batch import BatchPlan, BatchRequest
from .form import TextLabel


class PredictFilesDialog(QDialog):
    """Files or a folder to predict, the output folder, the outputs; OK checks them all
    (:func:`~napari_unet.workflow.batch.plan_batch`) and stays open on a refusal."""

    def __init__(self, parent: QWidget | None, model: Any, device: str = "auto") -> None:
        super().__init__(parent)
        self.setWindowTitle("Predict files")
        self.model, self.device = model, device
        self.files = FileEdit(mode="rm", filter="Images (*.tif *.tiff *.png *.jpg *.jpeg)")
        self.folder = FileEdit(mode="d")
        self.out = FileEdit(mode="d")
        self.label_format = ComboBox(choices=["tif", "png"], value="tif")
        self.probabilities = CheckBox(value=False)
        self.instances = CheckBox(value=False)
        self.entropy = CheckBox(value=False)
        for box, text in (  # set on the Qt widget: magicgui shows "_" as a space
            (self.probabilities, "p_k(x) (<stem>_probabilities.tif)"),
            (self.instances, "instances of the object class (<stem>_instances.tif)"),
            (self.entropy, "H(x) (<stem>_entropy.tif)"),
        ):
            box.native.setText(text)
        self.overwrite = CheckBox(value=False, text="replace earlier outputs of napari-unet")
        self.open_results = CheckBox(value=True, text="open the labels in napari")
        self.problem = TextLabel()
        self.problem.setStyleSheet("color: #e57373")
        self.plan: BatchPlan | None = None
        form = QFormLayout(self)
        for label, widget in (
            ("files", self.files),
            ("or a folder", self.folder),
            ("output folder", self.out),
            ("labels as", self.label_format),
            ("also write", self.probabilities),
            ("", self.instances),
            ("", self.entropy),
            ("", self.overwrite),
            ("", self.open_results),
        ):
            form.addRow(label, widget.native)
        tips = {
            self.files: "Image files to predict (TIFF, PNG, JPEG)",
            self.folder: "Or every image (and zarr store) in this folder; used if set",
            self.out: "Where <stem>_labels.tif and the other outputs go; never over an input",
            self.overwrite: "Replace outputs of an earlier run (only files napari-unet wrote)",
        }
        for widget, tip in tips.items():
            widget.tooltip = tip
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        form.addRow(self.problem)
        form.addRow(buttons)

    def request(self) -> BatchRequest:
        """What the dialog asks for (checked by :meth:`accept`)."""
        folder = str(self.folder.value).strip()
        files = self.files.value if isinstance(self.files.value, (list, tuple)) else []
        inputs = [Path(folder)] if folder not in ("", ".") else [Path(f) for f in files]
        if not inputs:
            raise InputError("choose the files to predict, or a folder")
        out = str(self.out.value).strip()
        if out in ("", "."):
            raise InputError("choose the output folder")
        return BatchRequest(
            inputs=inputs,
            out=Path(out),
            overwrite=bool(self.overwrite.value),
            label_format=self.label_format.value,
            probabilities=bool(self.probabilities.value),
            entropy=bool(self.entropy.value),
            instances=InstanceOptions() if self.instances.value else None,
            options=PredictOptions(device=self.device),
        )

    def accept(self) -> None:
        from ..workflow.batch import plan_batch
        from .inputs import user_errors

        try:
            self.plan = plan_batch(self.model, self.request())
        except (*user_errors(), ValueError) as err:
            self.problem.value = str(err)
            return
        self.problem.value = ""
        super().accept()


# ---------------------------------------------------------------------------- the job
@dataclass
class FilesProgress:
    """Input ``number`` of ``inputs`` (``name``), ``done`` of ``total`` tiles."""

    number: int
    inputs: int
    name: str
    done: int
    total: int


@dataclass
class FilesWritten:
    paths: list[Path]
    inputs: int
    seconds: float
    open_results: bool = True


def predict_files_job(
    model: Any, plan: BatchPlan, cancel: threading.Event, *, report_seconds: float = 0.25
) -> Generator[Any, None, FilesWritten]:
    """Run :func:`~napari_unet.workflow.batch.predict_batch` in a helper thread and yield
    its progress (every ``report_seconds`` at most); Cancel (``cancel``) stops it between
    tiles and nothing is written (:class:`~napari_unet.workflow.batch.BatchCancelled`)."""
    from ..runtime.threads import use_worker_threads
    from ..workflow.batch import predict_batch

    t0 = time.perf_counter()
    events: queue.Queue = queue.Queue()
    outcome: dict[str, Any] = {}
    last = [0.0]

    def progress(i: int, n: int, path: Path, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= report_seconds or done == total:
            last[0] = now
            events.put(FilesProgress(i, n, path.name, done, total))

    def run() -> None:
        use_worker_threads()
        try:
            outcome["paths"] = predict_batch(
                model, plan, progress=progress, cancelled=cancel.is_set
            )
        except BaseException as err:  # noqa: BLE001 - handed to the job's thread
            outcome["error"] = err
        finally:
            events.put(None)

    helper = threading.Thread(target=run, name="unet-predict-files", daemon=True)
    helper.start()
    while (event := events.get()) is not None:
        yield event
    helper.join()
    if "error" in outcome:
        raise outcome["error"]
    return FilesWritten(outcome["paths"], len(plan.files), time.perf_counter() - t0)


# ---------------------------------------------------------------------------- results
def open_results(viewer: Any, paths: list[Path]) -> list[Any]:
    """Add the label outputs among ``paths`` as Labels layers read lazily (a zarr output
    chunk by chunk, a TIFF or PNG when napari first draws it); only the first is shown."""
    from ..io.images import is_zarr

    layers = []
    for path in paths:
        stem = path.name.split(".")[0]
        if not stem.endswith(("_labels", "_instances")):
            continue
        data = lazy_labels(path) if not is_zarr(path) else lazy_zarr(path)
        layer = viewer.add_labels(data, name=stem, visible=not layers)
        layer.metadata["path"] = str(path)
        layers.append(layer)
    return layers


def lazy_zarr(path: Path) -> Any:
    from ..io.images import open_zarr

    return open_zarr(path).array


def lazy_labels(path: Path) -> Any:
    """A one-chunk dask array that reads the file when it is first computed."""
    import dask
    import dask.array as da

    from ..io.images import read_labels

    shape, dtype = label_header(path)
    return da.from_delayed(dask.delayed(read_labels)(path), shape=shape, dtype=dtype)


def label_header(path: Path) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype of a label file from its header (no pixels read)."""
    import numpy as np

    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            return tuple(series.shape), np.dtype(series.dtype)
    import imageio.v3 as iio

    props = iio.improps(path)
    return tuple(props.shape), np.dtype(props.dtype)
