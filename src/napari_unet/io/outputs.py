"""What this program wrote, and writing a run's outputs all together or not at all.

- **A mark in every output.** Each image, label image and zarr store napari-unet writes
  carries a mark: the TIFF ``Software`` tag, a PNG text chunk ``Software``, the zarr
  attribute ``napari_unet``. :func:`is_our_output` reads it (the header only, never the
  pixels). Outputs are recognised by that mark, not by their names: a user's
  ``x_labels.tif`` is an input, and an existing file is replaced (``--overwrite``) only
  when napari-unet wrote it.
- **Where a run will write is checked first**: :func:`~.writable.check_writable` before
  any work.
- **A batch writes nothing when it fails**: :class:`OutputBatch` stages every output under
  a hidden name beside its target and renames them all only once every input succeeded.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from pathlib import Path

from ..unet.errors import InputError

#: The ``Software`` tag of TIFF and PNG outputs.
SOFTWARE = "napari-unet"
#: The zarr attribute that marks a store as a napari-unet output.
ZARR_MARK = "napari_unet"
#: Staged outputs are named ``.napari-unet-part-<random>-<name>`` until committed.
STAGING_PREFIX = ".napari-unet-part-"


def final_name(path: str | os.PathLike) -> str:
    """The name an output will have once committed (its staging prefix removed)."""
    name = Path(path).name
    if name.startswith(STAGING_PREFIX):
        return name[len(STAGING_PREFIX) :].split("-", 1)[-1]
    return name


#: What each kind of output is called in messages.
KIND_NAMES = {
    "image": "image or label image",
    "model": "model file",
    "torchscript": "TorchScript export",
    "json": "JSON report",
}


def output_kind(path: str | os.PathLike) -> str | None:
    """What napari-unet wrote at ``path``: ``"image"`` (a marked TIFF, PNG or zarr store),
    ``"model"`` (a model file), ``"torchscript"`` (an export), ``"json"`` (a report), or
    None when napari-unet did not write it. Reads headers only; unreadable files are not
    ours."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if path.is_dir():
            return "image" if _zarr_marked(path) else None
        if suffix in (".tif", ".tiff"):
            import tifffile

            with tifffile.TiffFile(path) as tif:
                marked = bool(tif.pages) and tif.pages[0].software == SOFTWARE
            return "image" if marked else None
        if suffix == ".png":
            from PIL import Image

            with Image.open(path) as img:
                return "image" if img.info.get("Software") == SOFTWARE else None
        if suffix == ".pt":
            return _model_kind(path)
        if suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            marked = isinstance(data, dict) and data.get("written_by") == SOFTWARE
            return "json" if marked else None
    except Exception:  # noqa: BLE001 - a file we cannot read is not one we wrote
        return None
    return None


def _model_kind(path: Path) -> str | None:
    import zipfile

    with zipfile.ZipFile(path) as archive:  # TorchScript: our description among its extras
        if any(n.endswith("/extra/napari_unet.json") for n in archive.namelist()):
            return "torchscript"
    from .checkpoint import read_checkpoint

    read_checkpoint(path)
    return "model"


def is_our_output(path: str | os.PathLike) -> bool:
    """True when napari-unet wrote ``path`` (see :func:`output_kind`)."""
    return output_kind(path) is not None


def expected_kind(path: str | os.PathLike) -> str:
    """The kind of output a path's suffix names (``.pt`` model, ``.json`` report, else an
    image)."""
    suffix = Path(path).suffix.lower()
    return {".pt": "model", ".json": "json"}.get(suffix, "image")


def _zarr_marked(path: Path) -> bool:
    for name in (".zattrs", "zarr.json"):
        attrs_file = path / name
        if attrs_file.is_file():
            data = json.loads(attrs_file.read_text(encoding="utf-8"))
            attrs = data.get("attributes", data) if name == "zarr.json" else data
            if isinstance(attrs, dict) and ZARR_MARK in attrs:
                return True
    return False


def refuse_foreign(path: str | os.PathLike, kind: str | None = None) -> None:
    """Refuse to replace an existing ``path`` that napari-unet did not write, or wrote as
    another kind of output than ``kind`` (default: the kind its suffix names): a report
    never replaces a model, a model never replaces a prediction."""
    if not Path(path).exists():
        return
    found = output_kind(path)
    if found is None:
        raise InputError(
            f"{path}: exists and was not written by napari-unet: not replaced (move it, or "
            "choose another output)"
        )
    kind = kind or expected_kind(path)
    if found != kind:
        raise InputError(
            f"{path}: exists and is a napari-unet {KIND_NAMES[found]}, not a "
            f"{KIND_NAMES[kind]}: not replaced (choose another output)"
        )


class OutputBatch:
    """The outputs of one run, committed together: nothing is written if the run fails.

    ``stage(target)`` gives the hidden name to write ``target`` under (a file or a zarr
    folder, in the target's folder); ``commit()`` renames every staged output to its
    target; ``discard()`` removes them. As a context manager it discards on an error.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def stage(self, target: str | os.PathLike) -> Path:
        target = Path(target)
        staged = target.parent / f"{STAGING_PREFIX}{secrets.token_hex(4)}-{target.name}"
        self._staged.append((staged, target))
        return staged

    def commit(self) -> list[Path]:
        """Move every staged output to its target (replacing earlier outputs)."""
        written = []
        for staged, target in self._staged:
            if not staged.exists():
                continue
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(staged, target)
            written.append(target)
        self._staged = []
        return written

    def discard(self) -> None:
        for staged, _ in self._staged:
            with contextlib.suppress(OSError):
                if staged.is_dir():
                    shutil.rmtree(staged)
                elif staged.exists():
                    staged.unlink()
        self._staged = []

    def __enter__(self) -> OutputBatch:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self.discard()
