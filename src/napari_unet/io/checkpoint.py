"""Save and load models safely: weights plus a JSON-able config, written atomically.

A model file is a ``torch.save`` of a plain dict::

    {"format": "napari-unet", "format_version": 2,
     "config": "<JSON text: the model's record>", "state_dict": {name: tensor}}

The record (:class:`~napari_unet.unet.record.ModelRecord`, ``"record_version": 2``) holds
the architecture, classes, normalisation, training runs and where the model came from.
Files of format version 1 (``"config": {"architecture": ..., "metadata": ...}``) are
read too, their metadata converted by :meth:`ModelRecord.from_v1`.

Loading uses ``torch.load(weights_only=True)``, which refuses to unpickle anything but
tensors and plain containers, so a file from a stranger cannot run code. Before anything
is decompressed, the zip's directory must be one ``torch.save`` writes (every member
stored uncompressed, the members' sizes adding up to no more than the file): a zip bomb is
refused without reading it. Every field of
the record is validated, the architecture against size bounds before anything is
allocated, and the weights' names and shapes against the architecture before the network
is built.
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
from ..unet.errors import InputError
from ..unet.model import UNet, weights_finite
from ..unet.record import ModelRecord, RecordError
from .writable import check_writable

FORMAT = "napari-unet"
FORMAT_VERSION = 2
#: the format versions :func:`read_checkpoint` reads (1: metadata dict, 2: the record)
READ_VERSIONS = (1, 2)
SUFFIX = ".pt"
#: slack allowed between the members' declared sizes and the size of the archive's file
ARCHIVE_SLACK_BYTES = 1 << 20


class CheckpointError(ValueError):
    """A model file that cannot be loaded: corrupt, foreign, hostile or incompatible."""


def save_model(path: str | os.PathLike, model: UNet, overwrite: bool = True) -> Path:
    """Write ``model`` (weights and ``model.record``, architecture included) to ``path``
    atomically.

    The record is validated as :func:`load_model` will read it (a ValueError naming the
    field otherwise). The file is written to a temporary name in the same folder and
    renamed over ``path`` only when complete, so a failure never leaves a half-written or
    destroyed file. An existing file is replaced only when it is a napari-unet model file
    (never an image, a report or a file of another program: :class:`InputError`).
    """
    if not isinstance(model, UNet):
        raise TypeError(f"save_model needs a napari-unet UNet, got {type(model).__name__}")
    path = _model_path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a model file")
    _refuse_replacing_other_files(path)
    check_writable(path)  # a file among its parents, an unwritable folder: before any work
    try:
        config_text = model.record.to_json()
    except (TypeError, ValueError) as err:
        raise ValueError(f"the model's record must be JSON-serialisable: {err}") from err
    ModelRecord.from_json(config_text, where=path.name)  # what loading it will check
    if not weights_finite(model):
        raise ValueError(
            "the model's weights contain NaN or infinite values (a diverged training?): not saved"
        )
    state = model.state_dict()
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config_text,
        "state_dict": {k: v.detach().cpu().clone() for k, v in state.items()},
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)
        f.flush()
        os.fsync(f.fileno())
    return path


def _refuse_replacing_other_files(path: Path) -> None:
    """An existing file is replaced only when it is a napari-unet model file (the same rule
    as :func:`~.outputs.refuse_foreign`, which reads model files with this module)."""
    if not path.exists():
        return
    try:
        read_checkpoint(path)
    except CheckpointError:
        raise InputError(
            f"{path}: exists and is not a napari-unet model file: not replaced (move it, or "
            "choose another output)"
        ) from None


def check_archive(
    archive: zipfile.ZipFile, size: int, name: str, what: str = "not a napari-unet model file"
) -> None:
    """Refuse a PyTorch zip archive that ``torch.save`` could not have written, from its
    directory alone (nothing is decompressed): a compressed member (``torch.save`` stores
    every member uncompressed, so a deflated one is a zip bomb's way to declare gigabytes in
    a few kilobytes; ``torch.jit.save`` deflates its code, and a TorchScript archive is
    refused as such), a stored member whose sizes disagree, or members declaring more bytes
    than the ``size`` bytes of the file (overlapping members).

    Raises :class:`CheckpointError` ``"<name>: <what>: ..."``.
    """
    total = 0
    infos = archive.infolist()
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            if _is_torchscript(infos):  # torch.jit.save deflates the code it holds
                raise CheckpointError(
                    f"{name}: not a readable model file: a TorchScript archive "
                    "(torch.jit.save), not weights saved by napari-unet; nothing in it was read"
                )
            raise CheckpointError(
                f"{name}: {what}: compressed member {info.filename} ({info.compress_size:,} "
                f"bytes declaring {info.file_size:,} unpacked; torch stores every member "
                "uncompressed: a zip bomb?)"
            )
        if info.file_size != info.compress_size:
            raise CheckpointError(
                f"{name}: {what}: member {info.filename} is stored uncompressed but declares "
                f"{info.file_size:,} bytes unpacked from {info.compress_size:,} (a zip bomb?)"
            )
        total += info.file_size
    if total > size + ARCHIVE_SLACK_BYTES:
        raise CheckpointError(
            f"{name}: {what}: its members declare {total:,} bytes, more than the file's "
            f"{size:,} (overlapping members: a zip bomb?)"
        )


def _is_torchscript(infos: list[zipfile.ZipInfo]) -> bool:
    """Whether the archive's names are those of ``torch.jit.save`` (``<name>/code/...``
    and ``<name>/constants.pkl``)."""
    names = {info.filename.partition("/")[2] for info in infos}
    return "constants.pkl" in names and any(n.startswith("code/") for n in names)


def _model_path(path: Any) -> Path:
    if not isinstance(path, str | os.PathLike):
        raise CheckpointError(f"a model file's path is needed, got {type(path).__name__}")
    return Path(path)


def _read_record(payload: dict[str, Any], name: str) -> ModelRecord:
    """The validated record of a payload of format 1 or 2."""
    try:
        config = json.loads(payload["config"])
        if not isinstance(config, dict):
            raise TypeError(f"the config is a {type(config).__name__}, not an object")
        if payload["format_version"] == 1:
            arch, metadata = config["architecture"], config.get("metadata") or {}
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{name}: the model's config is damaged: {err}") from err
    try:
        if payload["format_version"] == 1:
            return ModelRecord.from_v1(metadata, arch, where=name)
        return ModelRecord.from_dict(config, where=name)
    except RecordError as err:
        raise CheckpointError(str(err)) from err


def _check_weights(record: ModelRecord, state: dict[str, torch.Tensor], name: str) -> None:
    """The names and shapes of the weights must be those of the architecture (checked on a
    network built on the meta device: no memory is allocated)."""
    with torch.device("meta"):
        expected = UNet(**record.architecture.to_dict()).state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} {tuple(state[k].shape)} instead of {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
    if unexpected:
        problems.append(
            f"unexpected {', '.join(unexpected[:3])}" + (" ..." if len(unexpected) > 3 else "")
        )
    if wrong:
        problems.append(f"shapes {', '.join(wrong[:3])}" + (" ..." if len(wrong) > 3 else ""))
    if problems:
        raise CheckpointError(
            f"{name}: the weights do not fit the architecture in the file: {'; '.join(problems)}"
        )


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read and validate a model file without building the model.

    Returns ``{"record": ModelRecord, "architecture": dict, "state_dict": {name: tensor},
    "format_version": int}``. The record is validated field by field and the weights'
    names and shapes against its architecture; raises :class:`CheckpointError` naming the
    file and the field.
    """
    path = _model_path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(
            f"{path.name}: not a readable model file (not a PyTorch archive; truncated, "
            "corrupt or another kind of file?)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            check_archive(archive, path.stat().st_size, path.name)  # before any decompression
            damaged = archive.testzip()  # the CRC-32 of every member
    except CheckpointError:
        raise
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
    version = payload.get("format_version")
    if isinstance(version, bool) or version not in READ_VERSIONS:
        raise CheckpointError(
            f"{path.name}: model file version {version!r} is not supported (this version "
            f"reads {', '.join(map(str, READ_VERSIONS))})"
        )
    record = _read_record(payload, path.name)
    state = payload.get("state_dict")
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{path.name}: the weights are missing or damaged")
    _check_weights(record, state, path.name)
    return {
        "record": record,
        "architecture": record.architecture.to_dict(),
        "state_dict": state,
        "format_version": version,
    }


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> UNet:
    """Load a model saved by :func:`save_model` (format 2) or an earlier version (format
    1); raises :class:`CheckpointError` on a bad file."""
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
    if not weights_finite(model):
        raise CheckpointError(f"{name}: the weights contain NaN or infinite values")
    model.record = ckpt["record"]
    model.eval()
    return model.to(device)
