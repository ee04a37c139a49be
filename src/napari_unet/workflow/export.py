"""Exporting a model for other tools, for every front-end: a bioimage.io package or a
TorchScript file, checked the way the Python API checks it
(:func:`~napari_unet.interchange.bioimageio.export_bioimageio`,
:func:`~napari_unet.interchange.torchscript.export_torchscript`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..unet.data import InputError

EXPORT_KINDS = ("bioimageio", "torchscript")


@dataclass(frozen=True)
class ExportRequest:
    """What to write: ``kind`` "bioimageio" (a .zip package, or a folder) or "torchscript"
    (a .pt file); the package's ``name``, ``description`` and ``authors`` (bioimage.io);
    ``overwrite`` replaces an earlier export of the same kind (never another file)."""

    kind: str
    path: Path
    name: str = ""
    description: str = ""
    authors: tuple[str, ...] = field(default_factory=tuple)
    overwrite: bool = False

    def validate(self) -> None:
        """The checks that need no model and no bioimageio.spec, before any work."""
        if self.kind not in EXPORT_KINDS:
            raise InputError(f"export as one of {EXPORT_KINDS}, got {self.kind!r}")
        path = Path(self.path)
        if not str(self.path).strip() or path == Path("."):
            raise InputError("choose the file to export to")
        if self.kind == "torchscript" and path.suffix.lower() != ".pt":
            raise InputError(f"{path}: a TorchScript export is a .pt file")
        if self.kind == "bioimageio":
            from ..interchange.bioimageio_package import NAME_PATTERN

            if not self.description.strip():
                raise InputError("the bioimage.io package needs a description")
            if not NAME_PATTERN.match(self.name):
                raise InputError(
                    "the package name needs 5-128 characters: letters, digits, spaces and "
                    "_+-() only"
                )


def export_model(model: Any, request: ExportRequest) -> Path:
    """Write ``model`` as ``request`` asks; refusals are :class:`InputError` with the API's
    message (a name the spec does not accept, an existing file, another program's file)."""
    request.validate()
    try:
        if request.kind == "torchscript":
            from ..interchange.torchscript import export_torchscript

            return export_torchscript(model, request.path, overwrite=request.overwrite)
        from ..interchange.bioimageio import export_bioimageio

        return export_bioimageio(
            model,
            request.path,
            name=request.name,
            description=request.description,
            authors=list(request.authors) or None,
            overwrite=request.overwrite,
        )
    except FileExistsError as err:
        if request.overwrite:  # not an earlier export: the API says what it is
            raise InputError(str(err)) from err
        raise InputError(
            f"{request.path} exists: choose another name, or ask to replace it (only an "
            "earlier export of this kind is ever replaced)"
        ) from err
    except (OSError, ValueError, ImportError) as err:  # a folder, not installed, ...
        raise InputError(str(err)) from err
