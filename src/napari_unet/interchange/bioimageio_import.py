"""Import a bioimage.io model package whose network is a U-Net this project builds.

A package (zip file, folder, or its ``rdf.yaml`` / ``bioimageio.yaml``) is read from disk
only: nothing is downloaded, no file in it is executed, weights are read with
``torch.load(weights_only=True)``. It is accepted when

- it describes a model (any format version ``bioimageio.spec`` can convert to 0.5),
- its ``pytorch_state_dict`` architecture is ``napari_unet.unet.model.UNet`` (library form),
  or the ``UNet`` of a package napari-unet exported (file form, marked in its config; the
  bundled source is *not* run: the network is built from this package's own code),
- its kwargs are ``UNet`` arguments and the weights fit that network strictly,
- input and output are (batch, channel, y, x) with the model's channel counts, the
  preprocessing is none or ``scale_range`` per sample and channel over (y, x), and the
  postprocessing is none or ``softmax`` over the channels,
- its own test input gives its test output (within the package's tolerance).

Anything else raises :class:`~napari_unet.interchange.bioimageio.PackageError` saying why.

Hostile packages are refused before they cost time or memory: the description is parsed
first by :func:`~.yaml_limits.safe_load_limited` (at most :data:`MAX_YAML_BYTES`, no
alias bomb, no deep nesting) and only then handed to ``bioimageio.spec``; the U-Net's
arguments are held to a model file's bounds (:meth:`Architecture.from_dict`: depth, base
channels, parameter count) before anything is built; the weights file may not declare
more bytes than float32 weights of that architecture need (plus a margin) and must be a
zip as ``torch.save`` writes it (uncompressed members), and the test tensors may not
declare more than :data:`MAX_TEST_TENSOR_BYTES`, all checked before a byte is read.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import os
import pickle
import posixpath
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io.checkpoint import CheckpointError, check_archive
from ..unet.model import UNet
from ..unet.record import Architecture, BioimageioInfo, ModelRecord, RecordError, to_plain
from .bioimageio_package import (
    ARCHITECTURE_CALLABLE,
    ARCHITECTURE_ID,
    ARCHITECTURE_IMPORTS,
    YAML_NAMES,
    PackageError,
    invalid_reason,
    preprocess,
    require_spec,
    run_model,
)
from .yaml_limits import YamlLimitError, safe_load_limited

#: Largest single file read from a package, and largest total unpacked size of a zip.
MAX_FILE_BYTES = 2 * 1024**3
MAX_ZIP_BYTES = 8 * 1024**3
MAX_ZIP_MEMBERS = 10_000
#: Largest rdf.yaml / bioimageio.yaml (they are a few KB; a megabyte parses in < 0.5 s).
MAX_YAML_BYTES = 1024**2
#: Largest test input / output .npy file.
MAX_TEST_TENSOR_BYTES = 64 * 1024**2
#: What the weights file may declare beyond 4 bytes per parameter: a fraction, and bytes
#: (batch-norm statistics, the archive's pickle and headers).
WEIGHTS_MARGIN, WEIGHTS_SLACK_BYTES = 0.10, 1024**2
#: The description names bioimageio.spec looks for in a zip (``name`` or ``*.name``).
_SPEC_YAML_NAMES = ("rdf.yaml", "bioimageio.yaml", "model.yaml")
#: Arguments of UNet and the YAML types a package may give them.
_ARG_TYPES: dict[str, tuple[type, ...]] = {
    "in_channels": (int,),
    "n_classes": (int,),
    "depth": (int,),
    "base_channels": (int,),
    "padding": (str,),
    "batch_norm": (bool,),
    "dropout": (float, int),
}


class _Package:
    """Read-only, path-safe access to the files of a package (zip or folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        if path.is_dir():
            self.root = path
        elif path.is_file() and path.name.lower().endswith((".yaml", ".yml")):
            self.root = path.parent
        elif path.is_file() and zipfile.is_zipfile(path):
            self.root = path
            self.zip = zipfile.ZipFile(path)
            self._check_zip()
        elif path.is_file():
            raise PackageError(f"{path.name}: not a bioimage.io package (a .zip file or a folder)")
        else:
            raise PackageError(f"{path}: no such package")

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    def _check_zip(self) -> None:
        assert self.zip is not None
        infos = self.zip.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise PackageError(f"{self.path.name}: {len(infos)} files in the zip; refused")
        total = 0
        for info in infos:
            if _unsafe(info.filename):
                raise PackageError(
                    f"{self.path.name}: refused: the zip holds a file outside the package "
                    f"({info.filename!r}, a path-traversal 'zip slip')"
                )
            total += info.file_size
        if total > MAX_ZIP_BYTES:
            raise PackageError(f"{self.path.name}: unpacks to {total / 1e9:.1f} GB; refused")

    def yaml_name(self) -> str:
        """The description's file name (checked to be of a sane size)."""
        if self.path.is_file() and self.zip is None:
            name = self.path.name
        else:
            names = self.zip.namelist() if self.zip is not None else os.listdir(self.root)
            found = [n for n in YAML_NAMES if n in names]
            found += [n for n in names if n.endswith(".bioimageio.yaml") and "/" not in n]
            if not found:
                raise PackageError(
                    f"{self.path.name}: no rdf.yaml or bioimageio.yaml: not a bioimage.io package"
                )
            name = found[0]
        size = (
            self.zip.getinfo(name).file_size
            if self.zip is not None
            else (self.root / name).stat().st_size
        )
        if size > MAX_YAML_BYTES:
            raise PackageError(
                f"{self.path.name}: {name} is {size:,} bytes, more than the "
                f"{MAX_YAML_BYTES:,} a description may have; refused"
            )
        return name

    def descriptions(self, yaml_name: str) -> list[str]:
        """Every file of the package ``bioimageio.spec`` could read as its description: in a
        zip any member named like one (the spec chooses among them itself), else
        ``yaml_name``."""
        if self.zip is None:
            return [yaml_name]
        names = [
            n
            for n in self.zip.namelist()
            if any(posixpath.basename(n) == y or n.endswith("." + y) for y in _SPEC_YAML_NAMES)
        ]
        return [yaml_name] + [n for n in names if n != yaml_name]

    def size(self, name: str, what: str) -> int:
        """The size package file ``name`` declares (the zip's directory, or the file on
        disk), without reading it."""
        self._check_name(name, what)
        name = posixpath.normpath(name)
        try:
            if self.zip is not None:
                return self.zip.getinfo(name).file_size
            return self._file(name, what).stat().st_size
        except (KeyError, FileNotFoundError) as err:
            raise PackageError(f"{self.path.name}: the {what} ({name}) is missing") from err
        except OSError as err:
            raise PackageError(
                f"{self.path.name}: cannot read the {what} ({name}): {err}"
            ) from err

    def _check_name(self, name: str, what: str) -> None:
        if "://" in name:
            raise PackageError(
                f"{self.path.name}: the {what} is a URL ({name}); napari-unet only imports "
                "packages that contain their files (nothing is downloaded)"
            )
        if _unsafe(name):
            raise PackageError(f"{self.path.name}: the {what} points outside the package: {name}")

    def _file(self, name: str, what: str) -> Path:
        file = (self.root / name).resolve()
        if not file.is_relative_to(self.root.resolve()):
            raise PackageError(f"{self.path.name}: the {what} points outside the package")
        return file

    def read(self, name: str, what: str, limit: int = MAX_FILE_BYTES) -> bytes:
        """The bytes of package file ``name`` (relative, inside the package), at most
        ``limit`` of them."""
        self._check_name(name, what)
        name = posixpath.normpath(name)
        try:
            if self.zip is not None:
                with self.zip.open(name) as f:
                    return _read_limited(f, what, self.path.name, limit)
            with open(self._file(name, what), "rb") as f:
                return _read_limited(f, what, self.path.name, limit)
        except (KeyError, FileNotFoundError) as err:
            raise PackageError(f"{self.path.name}: the {what} ({name}) is missing") from err
        except (OSError, zipfile.BadZipFile, EOFError) as err:
            raise PackageError(
                f"{self.path.name}: cannot read the {what} ({name}): {err}"
            ) from err


def _unsafe(name: str) -> bool:
    posix = name.replace("\\", "/")
    return (
        posix.startswith("/") or (len(posix) > 1 and posix[1] == ":") or ".." in posix.split("/")
    )


def _read_limited(f: Any, what: str, package: str, limit: int = MAX_FILE_BYTES) -> bytes:
    data = f.read(limit + 1)
    if len(data) > limit:
        raise PackageError(f"{package}: the {what} is larger than {limit:,} bytes; refused")
    return data


@contextlib.contextmanager
def _open(path: Path) -> Iterator[_Package]:
    pkg = _Package(path)
    try:
        yield pkg
    finally:
        pkg.close()


def _source_name(source: Any) -> str:
    """A file reference of the description as the relative path written in the YAML."""
    text = str(source)
    if "://" in text:
        return text
    return text.replace("\\", "/")


def _check_yaml(pkg: _Package, yaml_name: str) -> None:
    """Parse every description the spec could read with the limited safe loader first: a
    YAML bomb is refused in milliseconds instead of expanding inside bioimageio.spec."""
    for member in pkg.descriptions(yaml_name):
        what = f"description {member}"
        if pkg.size(member, what) > MAX_YAML_BYTES:
            raise PackageError(
                f"{pkg.path.name}: {member} is {pkg.size(member, what):,} bytes, more than "
                f"the {MAX_YAML_BYTES:,} a description may have; refused"
            )
        text = pkg.read(member, what, limit=MAX_YAML_BYTES)
        try:
            safe_load_limited(text, what=member)
        except YamlLimitError as err:
            raise PackageError(f"{pkg.path.name}: {err}") from err


def _load_description(pkg: _Package) -> Any:
    spec = require_spec()
    name = pkg.path.name
    yaml_name = pkg.yaml_name()
    _check_yaml(pkg, yaml_name)
    source = pkg.path if pkg.zip is not None else pkg.root / yaml_name
    try:
        with spec.ValidationContext(perform_io_checks=False, log_warnings=False):
            descr = spec.load_description(source, perform_io_checks=False, format_version="latest")
    except Exception as err:  # noqa: BLE001 - any parse failure is a bad package
        raise PackageError(f"{name}: cannot read {yaml_name}: {err}") from err
    if isinstance(descr, spec.InvalidDescr):
        raise PackageError(f"{name}: not a valid bioimage.io description: {invalid_reason(descr)}")
    if getattr(descr, "type", None) != "model":
        raise PackageError(f"{name}: describes a {getattr(descr, 'type', '?')}, not a model")
    return descr


def _architecture(descr: Any, name: str) -> dict[str, Any]:
    """The UNet kwargs if the package's network is a napari-unet U-Net, else refuse."""
    weights = descr.weights
    entry = getattr(weights, "pytorch_state_dict", None)
    if entry is None:
        present = [k for k, v in weights if v is not None]
        raise PackageError(
            f"{name}: no PyTorch state-dict weights (it has: {', '.join(present) or 'none'}); "
            "napari-unet imports pytorch_state_dict weights of its own U-Net"
        )
    arch = entry.architecture
    callable_name = str(arch.callable)
    import_from = getattr(arch, "import_from", None)
    if import_from is not None:
        ours = str(import_from) in ARCHITECTURE_IMPORTS and callable_name == ARCHITECTURE_CALLABLE
        where = f"from module {import_from}"
    else:
        marker = _config(descr).get("architecture")
        ours = callable_name == ARCHITECTURE_CALLABLE and marker == ARCHITECTURE_ID
        where = f"from file {_source_name(arch.source)}"
    if not ours:
        raise PackageError(
            f"{name}: architecture {callable_name} {where} is not a napari-unet U-Net "
            f"(napari-unet imports {ARCHITECTURE_ID} only)"
        )
    kwargs = dict(arch.kwargs)
    accepted = set(inspect.signature(UNet).parameters)
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise PackageError(f"{name}: the U-Net does not take the argument(s) {unknown}")
    for key, value in kwargs.items():
        types = _ARG_TYPES.get(key)
        if types and (
            not isinstance(value, types) or (bool not in types and isinstance(value, bool))
        ):
            raise PackageError(f"{name}: U-Net argument {key}={value!r} has the wrong type")
    return kwargs


def _bounded(kwargs: dict[str, Any], name: str) -> Architecture:
    """The package's U-Net arguments held to a model file's bounds (depth, base channels,
    parameter count), before anything is allocated."""
    try:
        return Architecture.from_dict(kwargs, where=name, name="architecture kwargs")
    except RecordError as err:
        raise PackageError(str(err)) from err


def _check_weights_size(pkg: _Package, entry: Any, arch: Architecture) -> None:
    """Refuse a weights file declaring more bytes than float32 weights of ``arch`` need
    (plus :data:`WEIGHTS_MARGIN` and :data:`WEIGHTS_SLACK_BYTES`), before reading it: a
    zip bomb in the package never gets unpacked."""
    source = _source_name(entry.source)
    declared = pkg.size(source, "weights file")
    need = arch.parameter_count() * 4
    allowed = int(need * (1 + WEIGHTS_MARGIN)) + WEIGHTS_SLACK_BYTES
    if declared > allowed:
        raise PackageError(
            f"{pkg.path.name}: the weights file {source} declares {declared:,} bytes, more "
            f"than the {allowed:,} float32 weights of this U-Net ({arch.parameter_count():,} "
            "parameters) can take (a zip bomb?); refused"
        )


def _config(descr: Any) -> dict[str, Any]:
    config = getattr(descr, "config", None)
    value = None
    with contextlib.suppress(Exception):
        value = config["napari_unet"]
    if value is None:
        value = getattr(config, "napari_unet", None)
    return dict(value) if isinstance(value, dict) else {}


def _axes_ok(tensor: Any, channels: int) -> bool:
    axes = [(str(a.type), str(a.id)) for a in tensor.axes]
    if [t for t, _ in axes] != ["batch", "channel", "space", "space"]:
        return False
    if [i for _, i in axes[2:]] != ["y", "x"]:
        return False
    return tensor.axes[1].size == channels


def _normalization(tensor: Any, in_channels: int, name: str) -> dict[str, Any]:
    steps = [p for p in tensor.preprocessing if str(p.id) != "ensure_dtype"]
    if not steps:
        return {"method": "none"}
    first = steps[0]
    if len(steps) == 1 and str(first.id) == "scale_range":
        kw = first.kwargs
        axes = {str(a) for a in (kw.axes or ())}
        allowed = [{"x", "y"}] + ([{"x", "y", "channel"}] if in_channels == 1 else [])
        ref = getattr(kw, "reference_tensor", None)
        if axes in allowed and (ref is None or str(ref) == str(tensor.id)):
            return {
                "method": "percentile",
                "low": float(kw.min_percentile),
                "high": float(kw.max_percentile),
            }
    ops = ", ".join(str(p.id) for p in steps)
    raise PackageError(
        f"{name}: preprocessing [{ops}] is not supported (napari-unet normalises with "
        "scale_range per image and channel over y, x, or not at all)"
    )


def _softmax(tensor: Any, name: str) -> bool:
    ops = [p for p in tensor.postprocessing if str(p.id) != "ensure_dtype"]
    if not ops:
        return False
    if len(ops) == 1 and str(ops[0].id) == "softmax" and str(ops[0].kwargs.axis) == "channel":
        return True
    raise PackageError(
        f"{name}: postprocessing [{', '.join(str(p.id) for p in ops)}] is not supported "
        "(only softmax over the channels)"
    )


def _load_weights(pkg: _Package, entry: Any, net: UNet) -> None:
    name = pkg.path.name
    source = _source_name(entry.source)
    data = pkg.read(source, "weights file")
    expected = getattr(entry, "sha256", None)
    if expected is not None and hashlib.sha256(data).hexdigest() != str(expected):
        raise PackageError(f"{name}: the weights file {source} is corrupt (SHA-256 mismatch)")
    if zipfile.is_zipfile(io.BytesIO(data)):  # torch's format since 1.6 (else legacy pickle)
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                check_archive(
                    archive, len(data), f"{name}: {source}", "not PyTorch weights as torch.save "
                    "writes them"
                )  # fmt: skip
        except CheckpointError as err:
            raise PackageError(str(err)) from err
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
            raise PackageError(f"{name}: {source} is not readable PyTorch weights: {err}") from err
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise PackageError(
            f"{name}: refused to load {source}: it holds Python objects other than weights "
            "(it could run code)"
        ) from err
    except Exception as err:  # noqa: BLE001 - truncated / corrupt / not torch
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise PackageError(f"{name}: {source} is not readable PyTorch weights: {first}") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PackageError(f"{name}: {source} is not a state dict (name -> tensor)")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise PackageError(
            f"{name}: the weights do not fit the U-Net the package describes: "
            f"{str(err).splitlines()[0]}"
        ) from err
    if not all(
        torch.isfinite(t).all() for t in net.state_dict().values() if t.is_floating_point()
    ):
        raise PackageError(f"{name}: the weights contain NaN or infinite values")


def _load_array(pkg: _Package, entry: Any, what: str) -> np.ndarray:
    source = _source_name(entry.source)
    declared = pkg.size(source, what)
    if declared > MAX_TEST_TENSOR_BYTES:
        raise PackageError(
            f"{pkg.path.name}: the {what} {source} declares {declared:,} bytes, more than the "
            f"{MAX_TEST_TENSOR_BYTES:,} a test tensor may have (a zip bomb?); refused"
        )
    data = pkg.read(source, what, limit=MAX_TEST_TENSOR_BYTES)
    expected = getattr(entry, "sha256", None)
    if expected is not None and hashlib.sha256(data).hexdigest() != str(expected):
        raise PackageError(f"{pkg.path.name}: the {what} {source} is corrupt (SHA-256 mismatch)")
    try:
        _check_npy_header(data)
        return np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - any failure: not a plain .npy array
        raise PackageError(
            f"{pkg.path.name}: the {what} {source} is not a .npy array: {err}"
        ) from err


def _check_npy_header(data: bytes) -> None:
    """The array a .npy header declares must be the data that follows it (no allocation
    of a declared shape the file does not hold)."""
    f = io.BytesIO(data)
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    if dtype.hasobject:
        raise ValueError("it holds Python objects")
    count = int(np.prod(shape, dtype=object)) if shape else 1
    if count * dtype.itemsize != len(data) - f.tell():
        raise ValueError(
            f"its header declares a {shape} {dtype} array, {count * dtype.itemsize:,} bytes; "
            f"the file holds {len(data) - f.tell():,}"
        )


def _tolerance(descr: Any, output_id: str) -> tuple[float, float, float]:
    """(relative, absolute, mismatched elements per million) the package allows."""
    config = getattr(getattr(descr, "config", None), "bioimageio", None)
    for tol in getattr(config, "reproducibility_tolerance", ()) or ():
        formats = list(getattr(tol, "weights_formats", ()) or ())
        ids = getattr(tol, "output_ids", ()) or ()
        ids = [str(i) for i in ids] if not isinstance(ids, str) else [ids]
        if formats and "pytorch_state_dict" not in formats:
            continue
        if ids and output_id not in ids and "any_continuous_output" not in ids:
            continue
        return (
            float(tol.relative_tolerance),
            float(tol.absolute_tolerance),
            float(tol.mismatched_elements_per_million),
        )
    return 1e-3, 1e-3, 100.0


def check_test_pair(
    pkg: _Package, descr: Any, net: UNet, normalization: dict[str, Any], softmax: bool
) -> float | None:
    """Run the package's test input through ``net``; refuse if its test output differs.

    Returns the largest absolute difference (None if the package has no test pair).
    """
    name = pkg.path.name
    inp, out = descr.inputs[0], descr.outputs[0]
    if inp.test_tensor is None or out.test_tensor is None:
        return None
    x = _load_array(pkg, inp.test_tensor, "test input")
    expected = _load_array(pkg, out.test_tensor, "test output")
    if x.ndim != 4 or x.shape[:2] != (1, net.in_channels) or not np.issubdtype(x.dtype, np.number):
        raise PackageError(f"{name}: the test input has shape {x.shape}, expected (1, C, y, x)")
    if not all(net.is_valid_input_size(s) for s in x.shape[2:]):
        raise PackageError(
            f"{name}: the test input size {x.shape[2:]} is not valid for this U-Net"
        )
    got = run_model(net, preprocess(x, normalization), softmax)
    if got.shape != expected.shape:
        raise PackageError(
            f"{name}: the test output has shape {expected.shape}; the U-Net gives {got.shape}"
        )
    rtol, atol, ppm = _tolerance(descr, str(out.id))
    diff = np.abs(got.astype(np.float64) - expected)
    bad = int(np.count_nonzero(~(diff <= atol + rtol * np.abs(expected))))
    if bad > ppm * 1e-6 * expected.size:
        raise PackageError(
            f"{name}: the package's test output does not reproduce with these weights "
            f"({bad} of {expected.size} values differ, largest difference {diff.max():.3g})"
        )
    return float(diff.max())


def _record(descr: Any, net: UNet, normalization: dict[str, Any], name: str) -> ModelRecord:
    """The record a package napari-unet exported carries (``record``, or the format 1
    ``metadata`` of older exports), validated, with the package's own normalisation and
    output channel names."""
    config = _config(descr)
    try:
        if config.get("record") is not None:
            record = ModelRecord.from_dict(to_plain(config["record"]), where=name)
            if record.architecture != net.record.architecture:
                raise PackageError(
                    f"{name}: the napari-unet record describes another U-Net than the "
                    "package's architecture"
                )
        else:
            metadata = to_plain(config.get("metadata") or {})
            record = ModelRecord.from_v1(metadata, net.record.architecture, where=name)
        record.set_v1("normalization", normalization, where=name)
        record.set_v1("class_names", [str(c) for c in descr.outputs[0].axes[1].channel_names],
                      where=name)  # fmt: skip
    except RecordError as err:
        raise PackageError(str(err)) from err
    return record


def import_bioimageio(
    path: str | os.PathLike, *, check_test_outputs: bool = True, device: str = "cpu"
) -> UNet:
    """Load the U-Net of a bioimage.io package (zip file, folder, or its rdf.yaml).

    The package's preprocessing becomes ``model.record.normalization``, its output
    channel names the class names; a package napari-unet exported also restores the rest of
    its record (label mode, training history), validated as a model file's. With
    ``check_test_outputs`` the package's own test input must reproduce its test output.
    Raises
    :class:`~napari_unet.interchange.bioimageio.PackageError` (a :class:`CheckpointError`) with the
    reason for anything else, and :class:`~.bioimageio.BioimageioNotInstalled`
    without the ``bioimageio`` extra.
    """
    path = Path(path)
    require_spec()
    with _open(path) as pkg:
        name = path.name
        descr = _load_description(pkg)
        kwargs = _architecture(descr, name)
        arch = _bounded(kwargs, name)
        if len(descr.inputs) != 1 or len(descr.outputs) != 1:
            raise PackageError(f"{name}: a U-Net has one input and one output tensor")
        _check_weights_size(pkg, descr.weights.pytorch_state_dict, arch)
        try:
            net = UNet(**kwargs)
        except (TypeError, ValueError) as err:
            raise PackageError(f"{name}: invalid U-Net arguments {kwargs}: {err}") from err
        inp, out = descr.inputs[0], descr.outputs[0]
        if not _axes_ok(inp, net.in_channels) or not _axes_ok(out, net.n_classes):
            raise PackageError(
                f"{name}: tensors must be (batch, channel, y, x) with {net.in_channels} input "
                f"and {net.n_classes} output channels"
            )
        normalization = _normalization(inp, net.in_channels, name)
        softmax = _softmax(out, name)
        _load_weights(pkg, descr.weights.pytorch_state_dict, net)
        net.eval()
        if check_test_outputs:
            check_test_pair(pkg, descr, net, normalization, softmax)
        net.record = _record(descr, net, normalization, name)
        net.record.source = f"bioimageio:{name}"
        net.record.bioimageio = BioimageioInfo(
            name=str(descr.name),
            license=str(descr.license) if descr.license is not None else None,
            output="probabilities" if softmax else "logits",
        )
    return net.to(device)
