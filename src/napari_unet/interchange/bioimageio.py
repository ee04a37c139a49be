"""bioimage.io model packages: export a trained U-Net to the BioImage Model Zoo format.

A package (a zip file or a folder) holds ``rdf.yaml`` (model description, current format
0.5), the weights as a PyTorch state dict with the architecture, optionally the same
network as TorchScript, a test input/output pair, sample tensors, a cover image made from
the real prediction and a README with the training data and the paper's citation. Other
consumers (bioimageio.core, ilastik, deepImageJ) run it without napari; the package is
validated with ``bioimageio.spec`` before it is written. Importing packages lives in
:mod:`napari_unet.interchange.bioimageio_import`.

What the package says, in the paper's notation (Ronneberger et al. 2015):

- input ``image`` (batch, channel, y, x): the raw image; preprocessing ``scale_range``
  maps the low/high percentiles of each channel of each sample to 0/1, exactly the
  normalisation recorded in ``model.record.normalization``.
- output ``logits`` (batch, channel, y, x): the output feature channels a_k(x) before the
  softmax (``probabilities=True`` adds the spec's ``softmax`` postprocessing and names it
  ``probabilities``: p_k(x)). Channel k is class k + 1, or the k-th recorded label value
  of a model trained on dense labels (:func:`channel_meaning`).
- valid input sizes ``min + n * 2**depth``; with valid padding the output is smaller than
  the input by the model's margin on each side (``size.offset = -2 * margin``).

``bioimageio.spec`` is an optional dependency (``napari-unet-explorer[bioimageio]``); the
plugin works without it and these functions say what to install.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from ..runtime.atomic import atomic_path
from ..unet import network as model_module
from ..unet.data import DEFAULT_NORMALIZATION, InputError, as_channels_first
from ..unet.model import UNet
from ..unet.tiling import mirror_indices
from .bioimageio_import import import_bioimageio
from .bioimageio_package import (
    ARCHITECTURE_CALLABLE,
    ARCHITECTURE_ID,
    ARCHITECTURE_IMPORTS,
    FILE_ARCHITECTURE,
    FILE_COVER,
    FILE_README,
    FILE_SAMPLE_IN,
    FILE_SAMPLE_OUT,
    FILE_TEST_IN,
    FILE_TEST_OUT,
    FILE_TORCHSCRIPT,
    FILE_WEIGHTS,
    INPUT_ID,
    INSTALL_HINT,
    MAX_TEST_SIDE,
    NAME_PATTERN,
    PAPER_CITATION,
    PAPER_DOI,
    YAML_NAMES,
    BioimageioNotInstalled,
    PackageError,
    class_names,
    invalid_reason,
    preprocess,
    require_spec,
    run_model,
)

__all__ = [
    "INSTALL_HINT",
    "BioimageioNotInstalled",
    "PackageError",
    "describe",
    "export_bioimageio",
    "import_bioimageio",
]


def channel_meaning(model: UNet) -> str:
    """What output channel k stands for, as the package's description says it: class
    k + 1, or the annotation value a dense-label model records for it (0, 255, ...)."""
    values = model.record.classes.label_values
    if values is not None and len(values) == model.n_classes:
        shown = ", ".join(f"{k}: {v}" for k, v in enumerate(values))
        return f"channel k is label value ({shown})"
    return "channel k is class k+1"


# ---------------------------------------------------------------------------- sizes
def input_size_rule(model: UNet) -> tuple[int, int]:
    """(min, step) of the valid input sides ``min + n * step`` as the package states them.

    Valid padding: the model's own rule (step 2**depth). Same padding: multiples of
    2**depth that are larger than twice the halo (:func:`output_halo`), so a consumer that
    crops the halo keeps at least one pixel.
    """
    step = model.size_multiple
    if model.padding == "valid":
        return model.min_input_size, step
    halo = output_halo(model)
    return step * (2 * halo // step + 1), step


def output_halo(model: UNet) -> int:
    """Output pixels per side a consumer should discard when tiling ("same" padding only).

    The zero padding of "same" convolutions makes the outermost pixels of a tile differ from
    the untiled result; the valid-padding margin bounds how far that reaches. A valid model
    has no halo: its output is already cropped (stated as a negative size offset).
    """
    if model.padding == "valid":
        return 0
    return UNet(depth=model.depth, base_channels=1, padding="valid").margin


def _size_at_most(want: int, rule: tuple[int, int]) -> int:
    smallest, step = rule
    if want <= smallest:
        return smallest
    return smallest + step * ((want - smallest) // step)


# ---------------------------------------------------------------------------- test data
def default_test_image(model: UNet) -> tuple[np.ndarray, int | None]:
    """The bundled sample image when it fits the model, else a synthetic one: (image, axis)."""
    sample = Path(__file__).resolve().parents[1] / "sample_data" / "image.tif"
    if sample.is_file():
        with contextlib.suppress(Exception):
            import tifffile

            image = np.asarray(tifffile.imread(sample))
            for axis in (None, -1, 0):
                with contextlib.suppress(InputError, ValueError):
                    planes = as_channels_first(image, axis, model.in_channels)
                    if planes.ndim == 3:
                        return image, axis
    return synthetic_image(model.in_channels), (None if model.in_channels == 1 else 0)


def synthetic_image(channels: int = 1, size: int = MAX_TEST_SIDE, seed: int = 0) -> np.ndarray:
    """Bright blobs on a noisy background, uint16: (H, W), or (C, H, W) for C > 1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    image = np.zeros((size, size), np.float32)
    for cy, cx, r in rng.uniform((0, 0, 4), (size, size, 12), size=(max(size // 8, 4), 3)):
        image += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    image = 200 + 3000 * image + rng.normal(0, 60, image.shape)
    image = np.clip(image, 0, 65535).astype(np.uint16)
    return image if channels == 1 else np.stack([image] * channels)


def make_test_input(
    model: UNet, image: np.ndarray, channel_axis: int | None, rule: tuple[int, int]
) -> np.ndarray:
    """A square (1, C, S, S) float32 raw (unnormalised) test tensor of a valid side S.

    Cut from the centre of ``image``; mirrored where the image is smaller than the model's
    smallest valid input. At most ``MAX_TEST_SIDE`` pixels unless the model needs more.
    """
    planes = as_channels_first(np.asarray(image), channel_axis, model.in_channels)
    if planes.ndim != 3:
        extra = " with channels" if model.in_channels > 1 else ""
        raise InputError(f"the test image must be one 2D image{extra}, got {np.shape(image)}")
    if not np.isfinite(planes).all():
        raise InputError("the test image contains NaN or infinite pixels")
    _, h, w = planes.shape
    side = _size_at_most(min(h, w, max(MAX_TEST_SIDE, rule[0])), rule)
    rows = mirror_indices((h - side) // 2, (h - side) // 2 + side, h)
    cols = mirror_indices((w - side) // 2, (w - side) // 2 + side, w)
    return np.ascontiguousarray(planes[:, rows][:, :, cols], dtype=np.float32)[None]


# ---------------------------------------------------------------------------- export
def _normalization(model: UNet) -> dict[str, Any]:
    norm = dict(model.record.normalization_dict() or DEFAULT_NORMALIZATION)
    method = norm.get("method", "percentile")
    if method == "none":
        return {"method": "none"}
    if method != "percentile":
        raise ValueError(f"normalisation {method!r} cannot be described in a bioimage.io package")
    low, high = float(norm.get("low", 1.0)), float(norm.get("high", 99.8))
    if not (0 <= low < high <= 100 and high > 1):
        raise ValueError(f"percentiles {low}/{high} cannot be described (need 0 <= low < high)")
    return {"method": "percentile", "low": low, "high": high}


def _authors(authors: Sequence[str | Mapping[str, str]] | None) -> list[dict[str, str]]:
    if not authors:
        return [{"name": "unknown (exported with napari-unet-explorer)"}]
    out = []
    for a in authors:
        entry = {"name": a} if isinstance(a, str) else dict(a)
        unknown = set(entry) - {"name", "affiliation", "email", "orcid"}
        if unknown or not entry.get("name") or "/" in entry["name"]:
            raise InputError(
                f"an author is a name (no '/') or a dict with name, affiliation, email, "
                f"orcid; got {a!r}"
            )
        out.append({k: str(v) for k, v in entry.items()})
    return out


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse a target that exists (unless ``overwrite``) or that is not a package this
    program exported (a user's zip or folder is never replaced)."""
    if path.suffix.lower() == ".zip":
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a folder, not a zip file")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    elif path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file; give a folder or a name ending in .zip")
    elif path.is_dir() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"{path} is not empty; pass overwrite=True to replace it")
    if path.exists() and (path.is_file() or any(path.iterdir())) and not exported_here(path):
        raise FileExistsError(
            f"{path} is not a bioimage.io package exported by napari-unet; refusing to replace it"
        )


def exported_here(path: Path) -> bool:
    """True when ``path`` (a package folder or zip) holds an rdf.yaml with napari-unet's
    ``config.napari_unet`` section, as :func:`export_bioimageio` writes it."""
    import zipfile

    from .bioimageio_import import MAX_YAML_BYTES
    from .yaml_limits import safe_load_limited

    try:
        if path.is_dir():
            with open(path / YAML_NAMES[0], "rb") as f:
                text = f.read(MAX_YAML_BYTES + 1)
        else:
            with zipfile.ZipFile(path) as archive, archive.open(YAML_NAMES[0]) as f:
                text = f.read(MAX_YAML_BYTES + 1)
        if len(text) > MAX_YAML_BYTES:
            return False
        config = safe_load_limited(text).get("config")
        return isinstance(config, dict) and isinstance(config.get("napari_unet"), dict)
    except Exception:  # noqa: BLE001 - anything unreadable is not a package we wrote
        return False


def export_bioimageio(
    model: UNet,
    path: str | os.PathLike,
    *,
    name: str,
    description: str,
    authors: Sequence[str | Mapping[str, str]] | None = None,
    test_image: np.ndarray | None = None,
    channel_axis: int | None = None,
    training_data: str | None = None,
    license: str = "BSD-3-Clause",
    probabilities: bool = False,
    torchscript: bool = True,
    architecture: str = "file",
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a bioimage.io model package (a ``.zip`` file or a folder).

    name: 5-128 letters, digits, spaces and ``_+-()``; description: one paragraph.
    authors: names, or dicts with name/affiliation/email/orcid.
    test_image: one 2D image (with ``channel_axis`` for multi-channel models) to cut the
        test input from; default: the bundled sample image if it fits, else a synthetic one.
    training_data: what the model was trained on and under which licence (for the README);
        default: the image names recorded in ``model.record.training``.
    probabilities: output p_k(x) via the spec's softmax postprocessing (bioimageio.spec
        >= 0.5.9 consumers) instead of the logits a_k(x) that every consumer can run.
    torchscript: also ship TorchScript weights (for deepImageJ and other non-Python tools).
    architecture: ``"file"`` ships the U-Net source (``unet.py``) so consumers need only
        PyTorch; ``"library"`` refers to ``napari_unet.unet.model.UNet`` (needs this package).

    The description is validated with bioimageio.spec (offline) before anything is written;
    the target is replaced only with ``overwrite=True`` and only once the new package is
    complete. Raises :class:`BioimageioNotInstalled` without the ``bioimageio`` extra.
    """
    spec = require_spec()
    path = Path(path)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InputError(
            "the package name needs 5-128 characters: letters, digits, spaces and _+-() only"
        )
    if not isinstance(description, str) or not description.strip():
        raise InputError("the package needs a description")
    if len(description.strip()) > 1024:
        raise InputError("the description is limited to 1024 characters; put more in the README")
    if architecture not in ("file", "library"):
        raise ValueError(f"architecture must be 'file' or 'library', got {architecture!r}")
    _check_target(path, overwrite)
    author_list = _authors(authors)
    net = copy.deepcopy(model).cpu().float().eval()
    net = net.to(memory_format=torch.contiguous_format)
    norm = _normalization(net)
    rule = input_size_rule(net)
    if test_image is None:
        test_image, channel_axis = default_test_image(net)
    test_input = make_test_input(net, test_image, channel_axis, rule)
    test_output = run_model(net, preprocess(test_input, norm), probabilities)

    from .bioimageio_docs import write_cover, write_readme

    with tempfile.TemporaryDirectory(prefix="napari-unet-bioimageio-") as tmp:
        stage = Path(tmp) / "stage"
        stage.mkdir()
        _write_files(net, stage, test_input, test_output, torchscript, architecture)
        write_cover(stage / FILE_COVER, net, test_input, test_output, probabilities)
        write_readme(
            stage / FILE_README,
            net,
            name=name,
            description=description,
            normalization=norm,
            rule=rule,
            probabilities=probabilities,
            training_data=training_data,
            license=license,
            architecture=architecture,
        )
        content = describe(
            net,
            name=name,
            description=description,
            authors=author_list,
            normalization=norm,
            license=license,
            probabilities=probabilities,
            torchscript=torchscript,
            architecture=architecture,
            spec_version=spec.ModelDescr.implemented_format_version,
            tolerance=reproducibility_tolerance(test_output),
        )
        descr = _build(spec, content, stage)
        return _save(spec, descr, path, Path(tmp))


def _write_files(
    net: UNet,
    stage: Path,
    test_input: np.ndarray,
    test_output: np.ndarray,
    torchscript: bool,
    architecture: str,
) -> None:
    import tifffile

    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, stage / FILE_WEIGHTS)
    if architecture == "file":
        source = inspect.getsource(model_module)
        if re.search(r"^\s*(from\s+\.|import\s+napari_unet)", source, re.MULTILINE):
            raise RuntimeError(
                "napari_unet/unet/network.py imports package code: use architecture='library'"
            )
        (stage / FILE_ARCHITECTURE).write_text(source, encoding="utf-8")
    if torchscript:
        from .torchscript import trace_model

        torch.jit.save(trace_model(net), str(stage / FILE_TORCHSCRIPT))
    np.save(stage / FILE_TEST_IN, test_input)
    np.save(stage / FILE_TEST_OUT, test_output)
    tifffile.imwrite(stage / FILE_SAMPLE_IN, np.squeeze(test_input, 0))
    tifffile.imwrite(stage / FILE_SAMPLE_OUT, np.squeeze(test_output, 0))


def describe(
    net: UNet,
    *,
    name: str,
    description: str,
    authors: list[dict[str, str]],
    normalization: Mapping[str, Any],
    license: str,
    probabilities: bool,
    torchscript: bool,
    architecture: str,
    spec_version: str,
    tolerance: Mapping[str, float],
) -> dict[str, Any]:
    """The package's description (rdf.yaml content) as plain data."""
    from .. import __version__

    smallest, step = input_size_rule(net)
    out_id = "probabilities" if probabilities else "logits"
    channel_names = (
        ["grey"] if net.in_channels == 1 else [f"channel {c + 1}" for c in range(net.in_channels)]
    )
    pre: list[dict[str, Any]] = []
    if normalization["method"] == "percentile":
        pre.append(
            {
                "id": "scale_range",
                "kwargs": {
                    "axes": ["y", "x"],
                    "min_percentile": normalization["low"],
                    "max_percentile": normalization["high"],
                },
            }
        )
    halo = output_halo(net)
    out_axes: list[dict[str, Any]] = [
        {"type": "batch"},
        {"type": "channel", "channel_names": class_names(net)},
    ]
    for axis in ("y", "x"):
        ax: dict[str, Any] = {
            "type": "space",
            "id": axis,
            "size": {"tensor_id": INPUT_ID, "axis_id": axis, "offset": -2 * net.margin},
        }
        if halo:
            ax["halo"] = halo
        out_axes.append(ax)
    arch: dict[str, Any] = {"callable": ARCHITECTURE_CALLABLE, "kwargs": net.config()}
    if architecture == "file":
        arch["source"] = FILE_ARCHITECTURE
    else:
        arch["import_from"] = ARCHITECTURE_IMPORTS[0]
    torch_version = torch.__version__.split("+")[0]
    weights: dict[str, Any] = {
        "pytorch_state_dict": {
            "source": FILE_WEIGHTS,
            "architecture": arch,
            "pytorch_version": torch_version,
        }
    }
    if torchscript:
        weights["torchscript"] = {
            "source": FILE_TORCHSCRIPT,
            "pytorch_version": torch_version,
            "parent": "pytorch_state_dict",
            "comment": "torch.jit.trace of the state-dict model in eval mode",
        }
    norm_text = (
        f"percentiles {normalization['low']}/{normalization['high']} of each channel -> 0/1"
        if normalization["method"] == "percentile"
        else "none"
    )
    label_mode = net.record.classes.label_mode or "scribbles"
    return {
        "format_version": spec_version,
        "type": "model",
        "name": name,
        "description": description.strip(),
        "authors": authors,
        "cite": [{"text": PAPER_CITATION, "doi": PAPER_DOI}],
        "license": license,
        "documentation": {"source": FILE_README},
        "covers": [{"source": FILE_COVER}],
        "tags": [
            "unet",
            "unet2d",
            "2d",
            "pytorch",
            "segmentation",
            "instance-segmentation" if label_mode == "instances" else "semantic-segmentation",
            "napari",
            "napari-unet",
        ],
        "inputs": [
            {
                "id": INPUT_ID,
                "description": f"raw image; normalisation: {norm_text}"[:128],
                "axes": [
                    {"type": "batch"},
                    {"type": "channel", "channel_names": channel_names},
                    *(
                        {"type": "space", "id": a, "size": {"min": smallest, "step": step}}
                        for a in ("y", "x")
                    ),
                ],
                "test_tensor": {"source": FILE_TEST_IN},
                "sample_tensor": {"source": FILE_SAMPLE_IN},
                "data": {"type": "float32"},
                "preprocessing": pre,
            }
        ],
        "outputs": [
            {
                "id": out_id,
                "description": (
                    "p_k(x), softmax over channels of a_k(x); " + channel_meaning(net)
                    if probabilities
                    else "a_k(x): output feature channels before softmax; " + channel_meaning(net)
                ),
                "axes": out_axes,
                "test_tensor": {"source": FILE_TEST_OUT},
                "sample_tensor": {"source": FILE_SAMPLE_OUT},
                "data": {"type": "float32"},
                "postprocessing": [{"id": "softmax", "kwargs": {"axis": "channel"}}]
                if probabilities
                else [],
            }
        ],
        "weights": weights,
        "config": {
            "bioimageio": {
                "architecture_type": "U-Net",
                "architecture_description": (
                    f"U-Net (Ronneberger et al. 2015), depth {net.depth}, {net.base_channels} "
                    f"channels at the top, {net.padding} convolutions"
                    + (", batch norm" if net.batch_norm else "")
                ),
                "model_parameter_count": int(sum(p.numel() for p in net.parameters())),
                "reproducibility_tolerance": [tolerance],
            },
            "napari_unet": {
                "architecture": ARCHITECTURE_ID,
                "version": __version__,
                "margin": net.margin,
                "record": _yaml_safe(net.record.to_dict()),
            },
        },
    }


def reproducibility_tolerance(test_output: np.ndarray) -> dict[str, float]:
    """How closely consumers must reproduce the test output: rtol 1e-3, atol <= 1e-3.

    bioimageio.spec requires the absolute tolerance to be at most 1% of the test output's
    largest value, so it shrinks for small outputs; a test output with no positive value
    cannot be validated at all (logits that are negative everywhere): export probabilities.
    """
    top = float(np.max(test_output))
    if top < 0:
        raise ValueError(
            "every value of the test output (logits) is negative, which bioimageio.spec "
            "cannot validate; export with probabilities=True or use another test image"
        )
    return {
        "relative_tolerance": 1e-3,
        "absolute_tolerance": min(1e-3, 0.01 * top),
        "mismatched_elements_per_million": 100,
    }


def _yaml_safe(value: Any) -> Any:
    """A JSON-able record with NaN/inf (not valid in the spec's YAML) replaced by None."""
    if isinstance(value, Mapping):
        return {str(k): _yaml_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_yaml_safe(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _build(spec: ModuleType, content: dict[str, Any], stage: Path) -> Any:
    """Validate the description against the files in ``stage`` (offline, hashes filled in)."""
    with spec.ValidationContext(root=stage, perform_io_checks=True, log_warnings=False):
        descr = spec.build_description(content)
    if isinstance(descr, spec.InvalidDescr):
        # everything but the user's name, authors, license and texts is generated here
        raise InputError(f"the package description is invalid: {invalid_reason(descr)}")
    return descr


def _save(spec: ModuleType, descr: Any, path: Path, tmp: Path) -> Path:
    """Write the package next to ``path`` under a temporary name, check it, move it in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".zip":
        with atomic_path(path, suffix=".part") as part:
            with spec.ValidationContext(perform_io_checks=True, log_warnings=False):
                spec.save_bioimageio_package(descr, output_path=Path(part))
        return path
    part = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    old = None
    try:
        spec.save_bioimageio_package_as_folder(descr, output_path=part)
        with spec.ValidationContext(perform_io_checks=True, log_warnings=False):
            check = spec.load_description(part, perform_io_checks=True)
        if isinstance(check, spec.InvalidDescr):
            raise RuntimeError(f"the written package is invalid: {invalid_reason(check)}")
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
        os.replace(part, path)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path
