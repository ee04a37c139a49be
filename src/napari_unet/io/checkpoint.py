"""Save and load models safely: weights plus a JSON-able config, written atomically.

A model file is a ``torch.save`` of a plain dict::

    {"format": "napari-unet", "format_version": 1,
     "config": "<JSON text: architecture, metadata>", "state_dict": {name: tensor}}

Loading uses ``torch.load(weights_only=True)``, which refuses to unpickle anything but
tensors and plain containers, so a file from a stranger cannot run code.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..runtime.atomic import atomic_path
from ..unet.model import UNet

FORMAT = "napari-unet"
FORMAT_VERSION = 1
SUFFIX = ".pt"


class CheckpointError(ValueError):
    """A model file that cannot be loaded: corrupt, foreign, hostile or incompatible."""


def save_model(path: str | os.PathLike, model: UNet, overwrite: bool = True) -> Path:
    """Write ``model`` (architecture, weights, ``model.metadata``) to ``path`` atomically.

    The file is written to a temporary name in the same folder and renamed over ``path``
    only when complete, so a failure never leaves a half-written or destroyed file.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a model file")
    try:
        config_text = json.dumps({"architecture": model.config(), "metadata": model.metadata})
    except TypeError as err:
        raise ValueError(f"model.metadata must be JSON-serialisable: {err}") from err
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config_text,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a model file without building the model: {config, state_dict}."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path.name}: not a readable model file (not a PyTorch archive; truncated, "
            "corrupt or another kind of file?)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()  # the CRC-32 of every member
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise CheckpointError(
            f"{path.name}: not a readable model file (truncated or corrupt?): {err}"
        ) from err
    if damaged is not None:
        raise CheckpointError(
            f"{path.name}: damaged model file: the checksum of {damaged} does not match "
            "(a corrupted copy or download?)"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path.name}: refused to load: the file holds Python objects other than "
            "weights (it could run code); only napari-unet model files are accepted"
        ) from err
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as err:
        raise CheckpointError(
            f"{path.name}: not a readable model file (truncated or corrupt?): "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from err
    except Exception as err:  # noqa: BLE001 - any other failure is a bad file, say so
        raise CheckpointError(f"{path.name}: cannot be read as a model file: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path.name}: not a napari-unet model file (a bare state dict or another "
            "tool's checkpoint?)"
        )
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path.name}: model file version {payload.get('format_version')!r} is not "
            f"supported (this version reads {FORMAT_VERSION})"
        )
    try:
        config = json.loads(payload["config"])
        arch = dict(config["architecture"])
        metadata = dict(config.get("metadata") or {})
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path.name}: the model's config is damaged: {err}") from err
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path.name}: the weights are missing or damaged")
    return {"architecture": arch, "metadata": metadata, "state_dict": state}


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> UNet:
    """Load a model saved by :func:`save_model`; raises :class:`CheckpointError` on a bad file."""
    ckpt = read_checkpoint(path)
    name = Path(path).name
    try:
        model = UNet(**ckpt["architecture"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{name}: unknown or invalid architecture: {err}") from err
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        raise CheckpointError(
            f"{name}: the weights do not fit the architecture in the file: "
            f"{str(err).splitlines()[0]}"
        ) from err
    for t in model.state_dict().values():
        if t.is_floating_point() and not torch.isfinite(t).all():
            raise CheckpointError(f"{name}: the weights contain NaN or infinite values")
    model.metadata = ckpt["metadata"]
    model.eval()
    return model.to(device)
