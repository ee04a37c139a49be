"""TorchScript export: the U-Net as one file that runs without this package's Python code.

For tools that load TorchScript but cannot import Python (deepImageJ, Fiji/DJL, C++ via
libtorch, the bioimage.io ``torchscript`` weights format). The module is traced
(``torch.jit.trace``) in eval mode, so dropout is off and batch norm uses its running
statistics. The traced graph keeps the input size symbolic: any *valid* input size works,
not only the one used for tracing (checked at export on a second size).

What the file expects (also stored inside it, see :func:`read_torchscript_info`):

- input: float32 tensor (N, C, H, W), C = ``in_channels``, already normalised as the
  model was trained (``model.record.normalization``, e.g. percentiles 1 / 99.8 of each
  channel mapped to 0 / 1); normalisation is *not* part of the traced graph.
- H and W must each be a valid input size: ``min + n * 2**depth`` (n = 0, 1, ...), with
  ``min = model.min_input_size``. The eager model's size check is Python and is not part of
  the traced graph: other sizes either fail inside the concatenation or give misaligned
  output, so callers must pad or crop to a valid size.
- output: float32 (N, K, H - 2m, W - 2m), the logits a_k(x) before the softmax, where
  m = ``model.margin`` (0 for ``padding="same"``, which keeps H x W).
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ..io.checkpoint import CheckpointError
from ..io.outputs import refuse_foreign
from ..runtime.atomic import atomic_path
from ..unet.model import UNet
from ..unet.record import summary

#: Name of the JSON description stored inside the TorchScript file (``_extra_files``).
INFO_FILE = "napari_unet.json"


def torchscript_info(model: UNet) -> dict[str, Any]:
    """The JSON-able description stored with the traced module: sizes, channels, the
    model's record (``record``, as model files hold it) and its summary for people."""
    return {
        "format": "napari-unet-torchscript",
        "architecture": model.config(),
        "summary": summary(model, detail=True),
        "record": model.record.to_dict(),
        "input": "float32 (N, C, H, W), normalised as record['normalization'] says",
        "output": "float32 (N, K, H - 2*margin, W - 2*margin): logits a_k(x), pre-softmax",
        "margin": model.margin,
        "min_input_size": model.min_input_size,
        "size_step": model.size_multiple,
    }


def trace_model(model: UNet, example_size: int | None = None) -> torch.jit.ScriptModule:
    """Trace a CPU float32 eval-mode copy of ``model`` (the model itself is not changed).

    The trace is checked against the eager model on a second, larger valid size so that a
    graph that froze the input size is never returned.
    """
    net = copy.deepcopy(model).cpu().float().eval()
    net = net.to(memory_format=torch.contiguous_format)
    step = net.size_multiple
    size = net.min_input_size if example_size is None else net.valid_input_size(example_size)
    # a non-square example: a graph that mixed up H and W would fail the check below
    example = torch.zeros(1, net.in_channels, size, size + step)
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export, but TorchScript is the format
        # other tools read; the TracerWarnings are about shape arithmetic that we check.
        warnings.simplefilter("ignore")
        with torch.no_grad():
            traced = torch.jit.trace(net, example, check_trace=False)
    check = torch.randn(1, net.in_channels, size + 2 * step, size + step)
    with torch.no_grad():
        expected, got = net(check), traced(check)
    if expected.shape != got.shape or not torch.allclose(expected, got, rtol=1e-5, atol=1e-5):
        raise RuntimeError("the traced module does not reproduce the model on a second size")
    return traced


def export_torchscript(model: UNet, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``model`` as a TorchScript file (``torch.jit.load`` reads it, no Python needed).

    See the module docstring for the input size rule and the normalisation the caller must
    apply. The architecture, ``model.record`` and its summary are stored in the file as
    ``napari_unet.json`` (read back with :func:`read_torchscript_info`). Written atomically:
    an existing file is replaced only with ``overwrite=True`` and only once the new one is
    complete, and only when it is a TorchScript export of napari-unet (never a model file,
    an image or a file of another program: :class:`InputError`).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give a file name such as model.pt")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    refuse_foreign(path, "torchscript")
    try:
        info = json.dumps(torchscript_info(model))
    except TypeError as err:
        raise ValueError(f"the model's record must be JSON-serialisable: {err}") from err
    traced = trace_model(model)
    with atomic_path(path) as tmp:
        torch.jit.save(traced, tmp, _extra_files={INFO_FILE: info})
    return path


def read_torchscript_info(path: str | os.PathLike) -> dict[str, Any]:
    """The description stored by :func:`export_torchscript` (architecture, record, sizes).

    Loading a TorchScript file runs no pickled Python objects, but it does build the traced
    graph; a file that is not TorchScript raises :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such TorchScript file")
    extra = {INFO_FILE: ""}
    try:
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as err:  # noqa: BLE001 - any failure means: not a TorchScript file
        raise CheckpointError(f"{path.name}: not a readable TorchScript file: {err}") from err
    if not extra[INFO_FILE]:
        raise CheckpointError(f"{path.name}: TorchScript file without napari-unet information")
    try:
        return json.loads(extra[INFO_FILE])
    except ValueError as err:
        raise CheckpointError(f"{path.name}: damaged napari-unet information: {err}") from err
