"""Reading and writing images and label images: TIFF, PNG / JPEG, zarr and OME-Zarr.

- TIFF through tifffile, PNG / JPEG through imageio, zarr / OME-Zarr through zarr (read
  lazily as dask arrays: level 0 of an OME-Zarr multiscale image).
- Every failure a user can cause (missing file, unreadable or truncated file, unsupported
  format, labels that are not whole numbers) raises :class:`~napari_unet.unet.data.InputError`
  with one line naming the file.
- Writers never replace an existing file unless asked (``overwrite=True``) and write
  atomically (temporary name, then rename), so a failure leaves no half-written file.
- OME-Zarr output follows the OME-NGFF 0.4 layout (zarr format 2 group, ``multiscales``
  attribute, one level ``"0"``), written by hand: no ome-zarr package is needed.

This module imports no napari or Qt.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..runtime.atomic import atomic_path
from ..unet.data import InputError
from .outputs import SOFTWARE, ZARR_MARK, final_name, is_our_output, refuse_foreign
from .writable import check_writable

TIFF_SUFFIXES = (".tif", ".tiff")
PLAIN_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_SUFFIXES = TIFF_SUFFIXES + PLAIN_SUFFIXES
#: Compound suffixes removed as a whole to get a file's stem.
_MULTI_SUFFIXES = (".ome.zarr", ".ome.tiff", ".ome.tif")
_ZARR_MARKERS = (".zgroup", ".zarray", "zarr.json")
OME_NGFF_VERSION = "0.4"


# ---------------------------------------------------------------------------- paths
def is_zarr(path: str | os.PathLike) -> bool:
    """True for a zarr store on disk: a folder named ``*.zarr`` or holding zarr metadata."""
    p = Path(path)
    if not p.is_dir():
        return False
    return p.suffix.lower() == ".zarr" or any((p / m).exists() for m in _ZARR_MARKERS)


def stem(path: str | os.PathLike) -> str:
    """The file name without its (compound) suffix: ``a.ome.zarr`` -> ``a``, ``b.tif`` -> ``b``."""
    name = Path(path).name
    lower = name.lower()
    for suffix in _MULTI_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _natural_key(path: Path) -> list[Any]:
    """Sort key that puts ``2.png`` before ``10.png``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def _is_readable_kind(path: Path) -> bool:
    return is_zarr(path) or (path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES)


def expand_paths(
    specs: Iterable[str | os.PathLike],
    *,
    what: str = "image",
    skip_outputs: bool = False,
) -> list[Path]:
    """Files, folders and glob patterns -> the image files (and zarr stores) they name.

    A folder gives its image files and zarr stores (not recursive), in natural order; a
    pattern with ``*``, ``?`` or ``[`` gives its matches (``**`` recurses). With
    ``skip_outputs``, files napari-unet wrote (they carry its mark, see :mod:`.outputs`; a
    name such as ``x_labels.tif`` does not count) are left out of folders and patterns,
    never out of explicitly named files. A file named twice, by any path, is listed once.
    Raises :class:`InputError`
    for a path that does not exist, an unsupported file, or a folder / pattern with no image.
    """
    out: list[Path] = []
    for spec in specs:
        text = os.fspath(spec)
        path = Path(text).expanduser()
        if path.exists():
            if _is_readable_kind(path):
                out.append(path)
                continue
            if path.is_dir():
                found = [p for p in path.iterdir() if _is_readable_kind(p)]
            else:
                raise InputError(
                    f"{text}: unsupported {what} file type {path.suffix or '(none)'!r} "
                    f"(use {', '.join(IMAGE_SUFFIXES)} or a .zarr folder)"
                )
        elif any(c in text for c in "*?["):
            found = [Path(p) for p in glob.glob(os.path.expanduser(text), recursive=True)]
            found = [p for p in found if _is_readable_kind(p)]
        else:
            raise InputError(f"{text}: no such file or folder")
        if skip_outputs:
            found = [p for p in found if not is_our_output(p)]
        if not found:
            raise InputError(f"{text}: no {what} files found ({', '.join(IMAGE_SUFFIXES)}, .zarr)")
        out.extend(sorted(found, key=_natural_key))
    # one file named twice (``d/x.tif`` and ``d/sub/../x.tif``, or a folder and a file in
    # it) is read once, under the first name it was given
    unique: dict[Path, Path] = {}
    for p in out:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def pair_files(
    images: Sequence[Path],
    labels: Sequence[Path],
    *,
    key: Callable[[Path], str] = stem,
    allow_unused_labels: bool = False,
) -> list[tuple[Path, Path]]:
    """Pair image files with label files by name, never by order.

    A label file pairs with the image of the same stem (``images/7.png`` <->
    ``labels/7.tif``), or, when no label file has the image's stem, with the image's stem
    plus one suffix that every pair shares (``cell.tif`` <-> ``cell_mask.tif``). One image
    and one label file pair as given. Anything else raises :class:`InputError` naming the
    files without a partner: an image never trains on, or is scored against, another
    image's labels. ``key`` gives an image's name to match (its stem by default).
    """
    if not images:
        raise InputError("no image files given")
    if not labels:
        raise InputError("no label files given")
    if len(images) == 1 and len(labels) == 1:
        return [(images[0], labels[0])]
    by_stem: dict[str, Path] = {}
    for p in labels:
        if stem(p) in by_stem:
            raise InputError(f"two label files are named {stem(p)!r}: {by_stem[stem(p)]}, {p}")
        by_stem[stem(p)] = p
    names = [key(p) for p in images]
    suffix = _shared_suffix(names, by_stem)
    if suffix is None:
        missing = [n for n in names if n not in by_stem]
        raise InputError(
            f"cannot pair {len(images)} image file(s) with {len(labels)} label file(s) by "
            f"name: no label file named like {', '.join(missing[:3])}"
            f"{' ...' if len(missing) > 3 else ''} (name each label file as its image, "
            "e.g. 7.tif <-> 7.tif, or its image's name plus one suffix, 7_mask.tif)"
        )
    pairs = [(img, by_stem[n + suffix]) for img, n in zip(images, names, strict=True)]
    used = {lab for _, lab in pairs}
    unused = [p.name for p in labels if p not in used]
    if unused and not allow_unused_labels:
        raise InputError(
            f"label file(s) without an image: {', '.join(unused[:3])}"
            f"{' ...' if len(unused) > 3 else ''} (name each label file as its image)"
        )
    return pairs


def _shared_suffix(names: Sequence[str], labels: dict[str, Path]) -> str | None:
    """ "" when every name is a label stem, else the one suffix s with name + s a label stem
    for every name; None when there is none or several."""
    if len(set(names)) != len(names):
        return None
    if all(n in labels for n in names):
        return ""
    shared: set[str] | None = None
    for n in names:
        found = {ls[len(n) :] for ls in labels if ls.startswith(n) and ls != n}
        shared = found if shared is None else shared & found
    return next(iter(shared)) if shared and len(shared) == 1 else None


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= 120 else text[:117] + "..."


# ---------------------------------------------------------------------------- zarr images
@dataclass
class ZarrImage:
    """A zarr / OME-Zarr image opened lazily.

    array: a dask array of the full-resolution level. axes: OME axis names ("t", "c",
    "z", "y", "x") or None for a plain zarr array. scale: the level's pixel size per axis
    (None if unknown). ome: whether the store carried OME-NGFF multiscales metadata.
    """

    array: Any
    axes: list[str] | None = None
    scale: list[float] | None = None
    ome: bool = False
    units: dict[str, str] = field(default_factory=dict)

    @property
    def channel_axis(self) -> int | None:
        """Index of the OME channel axis ("c"), if the image has one."""
        if self.axes and "c" in self.axes:
            return self.axes.index("c")
        return None


def _ome_attrs(attrs: dict[str, Any]) -> dict[str, Any] | None:
    """The multiscales entry of OME-NGFF 0.4 (top level) or 0.5 (under "ome") attributes."""
    ome = attrs.get("ome", attrs)
    multiscales = ome.get("multiscales") if isinstance(ome, dict) else None
    if isinstance(multiscales, list) and multiscales and isinstance(multiscales[0], dict):
        return multiscales[0]
    return None


def open_zarr(path: str | os.PathLike) -> ZarrImage:
    """Open a zarr array, a zarr group with one array, or an OME-Zarr image, lazily.

    For OME-Zarr the first (full-resolution) dataset of the first multiscale is used.
    """
    import dask.array as da

    try:
        import zarr
    except ImportError as err:  # pragma: no cover - zarr is in the 'dask' extra
        raise InputError(
            "reading zarr needs the zarr package: pip install 'napari-unet-explorer[dask]'"
        ) from err
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such zarr store")
    try:
        node = zarr.open(str(path), mode="r")
    except Exception as err:  # noqa: BLE001 - any failure is an unreadable store
        raise InputError(f"{path}: not a readable zarr store ({_reason(err)})") from err
    ome = None
    if not hasattr(node, "shape"):  # a group
        ome = _ome_attrs(dict(node.attrs))
        if ome is None and "0" in node and not hasattr(node["0"], "shape"):
            # bioformats2raw layout: the image is the group "0"
            node = node["0"]
            ome = _ome_attrs(dict(node.attrs))
        if ome is not None:
            try:
                dataset = ome["datasets"][0]
                array = node[dataset["path"]]
            except (KeyError, IndexError, TypeError) as err:
                raise InputError(f"{path}: damaged OME-Zarr metadata ({_reason(err)})") from err
        else:
            names = sorted(node.array_keys())
            if len(names) != 1:
                raise InputError(
                    f"{path}: a zarr group with {len(names)} arrays and no OME-Zarr metadata; "
                    f"name the array, e.g. {path / (names[0] if names else '0')}"
                )
            array = node[names[0]]
    else:
        array = node
    try:
        darr = da.from_zarr(array)
    except Exception as err:  # noqa: BLE001
        raise InputError(f"{path}: cannot read the zarr array ({_reason(err)})") from err
    axes = scale = None
    units: dict[str, str] = {}
    if ome is not None:
        raw_axes = ome.get("axes")
        if isinstance(raw_axes, list) and len(raw_axes) == darr.ndim:
            axes = [str(a["name"] if isinstance(a, dict) else a) for a in raw_axes]
            units = {
                str(a["name"]): str(a["unit"])
                for a in raw_axes
                if isinstance(a, dict) and "unit" in a
            }
        for t in ome["datasets"][0].get("coordinateTransformations", []):
            if t.get("type") == "scale" and len(t.get("scale", [])) == darr.ndim:
                scale = [float(s) for s in t["scale"]]
    return ZarrImage(darr, axes, scale, ome is not None, units)


# ---------------------------------------------------------------------------- reading
class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _library_warnings(name: str) -> Iterator[list[str]]:
    """Collect what the library logs while a file is read, instead of printing it on
    stderr next to our one-line error (a damaged TIFF makes tifffile log several)."""
    logger = logging.getLogger(name)
    collect, propagate = _Collect(), logger.propagate
    logger.addHandler(collect)
    logger.propagate = False
    try:
        yield collect.messages
    finally:
        logger.removeHandler(collect)
        logger.propagate = propagate


def read_image(path: str | os.PathLike, *, lazy: bool = True) -> Any:
    """Read an image file as an array.

    TIFF (tifffile) and PNG / JPEG (imageio) give numpy arrays; a PNG / JPEG alpha channel
    is dropped and an RGB image whose three channels are equal becomes grey (H, W). zarr and
    OME-Zarr give a dask array (read lazily, chunk by chunk) unless ``lazy=False``.
    """
    path = Path(path)
    if is_zarr(path):
        darr = open_zarr(path).array
        return darr if lazy else np.asarray(darr)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image file (or a zarr store)")
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        import tifffile

        with _library_warnings("tifffile") as warned:
            try:
                with tifffile.TiffFile(path) as tif:
                    _one_image_per_file(tif, path)
                    image = np.asarray(tif.asarray())
                    image = _tiff_layout(image, _series_axes(tif), tif)[0]
            except InputError:
                raise
            except Exception as err:  # noqa: BLE001 - tifffile raises many types
                raise InputError(f"{path}: not a readable TIFF file ({_reason(err)})") from err
        if image.size == 0:  # e.g. a file cut right after its header
            reason = _reason(ValueError(warned[0])) if warned else "no image data"
            raise InputError(f"{path}: not a readable TIFF file ({reason}; truncated?)")
    elif suffix in PLAIN_SUFFIXES:
        image = _plain_colour(_read_plain(path, palette_indices=False))
    else:
        raise InputError(
            f"{path}: unsupported file type {suffix or '(none)'!r} "
            f"(use {', '.join(IMAGE_SUFFIXES)} or a .zarr folder)"
        )
    if image.ndim < 2 or min(image.shape) < 1:
        raise InputError(f"{path}: not an image (shape {image.shape})")
    return image


def _one_image_per_file(tif: Any, path: Path) -> None:
    """Refuse a TIFF whose pages form several images (pages of different sizes or types):
    reading only the first would silently drop the others."""
    series = [s for s in tif.series if not getattr(s, "is_thumbnail", False)]
    if len(series) > 1:
        shapes = ", ".join(str(tuple(s.shape)) for s in series[:4])
        raise InputError(
            f"{path}: holds {len(series)} images of different sizes or types ({shapes}"
            f"{', ...' if len(series) > 4 else ''}); napari-unet reads one image per file: "
            "save each image as its own file (e.g. Fiji's Image > Stacks > Stack to Images)"
        )


def tiff_axes(path: str | os.PathLike) -> str | None:
    """The axes a TIFF's metadata gives its image as :func:`read_image` returns it
    (tifffile's codes: ``"CYX"``, ``"ZYX"``, ``"YXS"`` for RGB samples; ``"Q"`` / ``"I"``
    for an axis it cannot name), else None."""
    path = Path(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                return None
            shape = tuple(tif.series[0].shape)
            return _tiff_layout(np.empty(shape, np.uint8), _series_axes(tif), tif)[1]
    except Exception:  # noqa: BLE001 - an unreadable file has no axes to tell
        return None


def _series_axes(tif: Any) -> str:
    return str(tif.series[0].axes) if tif.series else ""


def _tiff_layout(image: np.ndarray, axes: str, tif: Any) -> tuple[np.ndarray, str | None]:
    """A TIFF's array and axes as napari-unet reads them: axes of length 1 dropped (an
    (H, W, 1) image is a plane, not H planes one pixel wide), and planar RGB samples
    (S, H, W) moved last, as napari shows RGB, unless tifffile wrote them from a bare
    (3 | 4, H, W) array (its "shaped" description), which may as well be planes."""
    if len(axes) != image.ndim:
        return image, None
    keep = [i for i, n in enumerate(image.shape) if n > 1]
    while len(keep) < min(2, image.ndim):  # a 1 x 1 image stays 2D
        keep.insert(0, next(i for i in range(image.ndim) if i not in keep))
        keep.sort()
    image = image.reshape([image.shape[i] for i in keep])
    axes = "".join(axes[i] for i in keep)
    page = tif.pages[0] if tif.pages else None
    planar_rgb = (
        axes.startswith("S")
        and image.ndim == 3
        and image.shape[0] in (3, 4)
        and page is not None
        and page.photometric == 2  # RGB
        and not tif.is_shaped
    )
    if planar_rgb:
        image, axes = np.moveaxis(image, 0, -1), axes[1:] + "S"
    return image, axes


def _read_plain(path: Path, *, palette_indices: bool) -> np.ndarray:
    """A PNG / JPEG as an array: a palette image as its colours, or as its palette indices
    for a label image (``palette_indices``); CMYK converted to RGB (not read as RGBA)."""
    import imageio.v3 as iio
    from PIL import Image

    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode in ("P", "PA") and palette_indices:
                return np.asarray(img.convert("P") if mode == "PA" else img)
            if mode == "CMYK":
                return np.asarray(img.convert("RGB"))
        return np.asarray(iio.imread(path))
    except Exception as err:  # noqa: BLE001
        raise InputError(f"{path}: not a readable image file ({_reason(err)})") from err


def _plain_colour(image: np.ndarray) -> np.ndarray:
    """PNG / JPEG: drop alpha, and make an RGB image with R = G = B grey."""
    if image.ndim == 3 and image.shape[-1] in (2, 4):  # grey+alpha or RGBA
        image = image[..., :-1]
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.ndim == 3 and image.shape[-1] == 3:
        if np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(
            image[..., 0], image[..., 2]
        ):
            image = image[..., 0]
    return np.ascontiguousarray(image)


def is_colour(image: Any, path: str | os.PathLike) -> bool:
    """True for a colour PNG / JPEG (H, W, 3) as returned by :func:`read_image`."""
    return Path(path).suffix.lower() in PLAIN_SUFFIXES and image.ndim == 3 and image.shape[-1] == 3


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read a label image (class values or instance ids) as a non-negative integer array."""
    path = Path(path)
    if path.suffix.lower() in PLAIN_SUFFIXES and path.is_file():  # palette PNG: its indices
        image = _plain_colour(_read_plain(path, palette_indices=True))
    else:
        image = read_image(path, lazy=False)
    rgb_tiff = (tiff_axes(path) or "").endswith("S")
    if image.ndim == 3 and image.shape[-1] in (3, 4) and (is_colour(image, path) or rgb_tiff):
        raise InputError(
            f"{path}: a colour image cannot be a label image: labels need one value (a class "
            "or an object id) per pixel (save the label image itself, not a coloured "
            "rendering of it)"
        )
    if image.dtype == bool:
        image = image.astype(np.uint8)
    if not np.issubdtype(image.dtype, np.integer):
        if (
            np.issubdtype(image.dtype, np.floating)
            and np.isfinite(image).all()
            and np.array_equal(image, np.round(image))
        ):
            image = image.astype(np.int64)
        else:
            raise InputError(f"{path}: labels must hold whole numbers, got dtype {image.dtype}")
    if image.size and image.min() < 0:
        raise InputError(f"{path}: labels must not be negative")
    return image


# ---------------------------------------------------------------------------- writing
def check_output(
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
    kind: str | None = None,
) -> Path:
    """Refuse to write ``path`` if it is one of ``inputs`` (always), cannot be created
    (a file among its parents, an unwritable folder), or exists (unless ``overwrite``, and
    even then unless napari-unet wrote it as the same ``kind`` of output: see
    :func:`~.outputs.refuse_foreign`). Returns the path."""
    path = Path(path)
    target = path.resolve()
    for p in inputs:
        q = Path(p).resolve()
        if target == q or q in target.parents or target in q.parents:
            raise InputError(f"{path}: refusing to write over an input ({p})")
    if path.exists() and not overwrite:
        raise InputError(f"{path}: exists; pass --overwrite to replace it")
    if path.exists() and path.is_dir() and not is_zarr(path):
        raise InputError(f"{path}: is a folder; refusing to replace it")
    refuse_foreign(path, kind)
    check_writable(path)
    return path


def write_labels(path: str | os.PathLike, labels: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write a label image: TIFF (any integer type, zlib-compressed) or PNG (2D, <= 16 bit)."""
    path = check_output(path, overwrite=overwrite)
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise InputError(f"{path}: labels must be integers, got {labels.dtype}")
    if labels.min(initial=0) < 0:
        raise InputError(
            f"{path}: labels hold negative values ({labels.min()}); label images are 0 "
            "(background) or more, and a PNG would wrap them to large values"
        )
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        import tifffile

        with atomic_path(path, suffix=path.suffix) as tmp:
            tifffile.imwrite(tmp, labels, compression="zlib", software=SOFTWARE)
    elif suffix == ".png":
        if labels.ndim != 2:
            raise InputError(f"{path}: PNG holds one 2D plane; use .tif for shape {labels.shape}")
        if labels.max(initial=0) > 65535:
            raise InputError(f"{path}: label values above 65535 do not fit a PNG; use .tif")
        import imageio.v3 as iio
        from PIL.PngImagePlugin import PngInfo

        dtype = np.uint8 if labels.max(initial=0) < 256 else np.uint16
        mark = PngInfo()
        mark.add_text("Software", SOFTWARE)
        with atomic_path(path, suffix=path.suffix) as tmp:
            iio.imwrite(tmp, labels.astype(dtype), extension=".png", pnginfo=mark)
    else:
        raise InputError(f"{path}: write labels as .tif or .png")
    return path


def write_image(path: str | os.PathLike, image: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write an intensity image (e.g. probabilities, float32) as a compressed TIFF."""
    path = check_output(path, overwrite=overwrite)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise InputError(f"{path}: write images as .tif")
    import tifffile

    with atomic_path(path, suffix=path.suffix) as tmp:
        tifffile.imwrite(tmp, np.asarray(image), compression="zlib", software=SOFTWARE)
    return path


# ---------------------------------------------------------------------------- zarr output
_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}


def default_axes(ndim: int) -> list[str]:
    """OME axis names for an array of ``ndim`` dimensions without metadata: (t, z, y, x)."""
    names = ["t", "z", "y", "x"][-ndim:] if ndim <= 4 else [f"dim{i}" for i in range(ndim - 3)]
    if ndim > 4:
        names += ["z", "y", "x"]
    return names


def ome_multiscales(
    axes: Sequence[str],
    scale: Sequence[float] | None = None,
    name: str = "",
    units: dict[str, str] | None = None,
) -> dict[str, Any]:
    """OME-NGFF 0.4 ``multiscales`` attributes for a single-level image stored at ``"0"``."""
    axes_meta = []
    for a in axes:
        entry: dict[str, Any] = {"name": a}
        if a in _AXIS_TYPES:
            entry["type"] = _AXIS_TYPES[a]
        if units and a in units:
            entry["unit"] = units[a]
        axes_meta.append(entry)
    scale = [float(s) for s in scale] if scale is not None else [1.0] * len(axes)
    return {
        "multiscales": [
            {
                "version": OME_NGFF_VERSION,
                "name": name,
                "axes": axes_meta,
                "datasets": [
                    {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}
                ],
            }
        ]
    }


def remove_store(path: Path) -> None:
    """Delete an existing zarr store (only a zarr folder) or file before replacing it."""
    if path.is_dir():
        if not is_zarr(path):
            raise InputError(f"{path}: is a folder but not a zarr store; refusing to delete it")
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def create_zarr_array(
    path: str | os.PathLike,
    *,
    shape: Sequence[int],
    dtype: Any,
    chunks: Sequence[int],
    ome: bool = True,
    axes: Sequence[str] | None = None,
    scale: Sequence[float] | None = None,
    units: dict[str, str] | None = None,
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike] = (),
    attrs: dict[str, Any] | None = None,
) -> Any:
    """Create an empty zarr array to be filled chunk by chunk (e.g. by ``dask.array.store``).

    With ``ome`` the store is an OME-NGFF 0.4 image group (zarr format 2) whose level ``"0"``
    is returned; otherwise a plain zarr array at ``path``. Nothing is written until the
    chunks are stored. Refuses to replace inputs, and existing stores unless ``overwrite``.
    """
    import zarr

    path = check_output(path, overwrite=overwrite, inputs=inputs)
    if path.exists():
        remove_store(path)
    shape = tuple(int(s) for s in shape)
    chunks = tuple(int(c) for c in chunks)
    axes = list(axes) if axes is not None else default_axes(len(shape))
    if len(axes) != len(shape):
        raise ValueError(f"{len(axes)} axis names for a {len(shape)}D array")
    kwargs: dict[str, Any] = {"shape": shape, "chunks": chunks, "dtype": np.dtype(dtype)}
    zarr3 = int(zarr.__version__.split(".")[0]) >= 3
    if ome:
        group = (
            zarr.open_group(str(path), mode="w", zarr_format=2)
            if zarr3
            else zarr.open_group(str(path), mode="w")
        )
        group.attrs.update(ome_multiscales(axes, scale, stem(final_name(path)), units))
        group.attrs.update({ZARR_MARK: {}} | (attrs or {}))
        if zarr3:
            array = group.create_array("0", fill_value=0, **kwargs)
        else:  # pragma: no cover - zarr 2
            array = group.create_dataset("0", fill_value=0, **kwargs)
        return array
    if zarr3:
        array = zarr.create_array(str(path), zarr_format=2, fill_value=0, **kwargs)
    else:  # pragma: no cover - zarr 2
        array = zarr.open_array(str(path), mode="w", fill_value=0, **kwargs)
    array.attrs.update({ZARR_MARK: {}} | (attrs or {}))
    return array


# ---------------------------------------------------------------------------- napari reader
LayerData = tuple[Any, dict[str, Any], str]


def napari_get_reader(path: str | list[str]) -> Any:
    """npe2 reader hook: results written by ``napari-unet predict`` to zarr / OME-Zarr
    (``*_labels.zarr``, ``*_probabilities.ome.zarr``, ...) open lazily, labels as a Labels
    layer. Returns None for anything else (napari then tries its other readers)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(path)
    if not is_zarr(p) or not stem(p).endswith(("_labels", "_probabilities", "_instances")):
        return None
    return read_zarr_layers


def read_zarr_layers(path: str | list[str]) -> list[LayerData]:
    """napari layer data for a zarr / OME-Zarr result, backed by dask (nothing is loaded)."""
    if isinstance(path, list):
        path = path[0]
    image = open_zarr(path)
    name = stem(path)
    meta: dict[str, Any] = {"name": name}
    scale = image.scale
    if name.endswith("_probabilities"):
        # classes first: one image layer per class p_k(x), values in [0, 1]
        meta.update({"channel_axis": 0, "contrast_limits": [0.0, 1.0]})
        if scale:
            meta["scale"] = scale[1:]
        meta["name"] = [f"{name} {k + 1}" for k in range(image.array.shape[0])]
        return [(image.array, meta, "image")]
    if scale:
        meta["scale"] = scale
    return [(image.array, meta, "labels")]
