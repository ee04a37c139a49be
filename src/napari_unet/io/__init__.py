"""Files: images (TIFF, PNG, JPEG, zarr, OME-Zarr), model files (:mod:`.checkpoint`) and
chunked prediction of large arrays with dask (:mod:`.distributed`).

The image functions are re-exported here (``from napari_unet.io import read_image``).
"""

from .images import (
    check_output,
    create_zarr_array,
    expand_paths,
    napari_get_reader,
    open_zarr,
    pair_files,
    read_image,
    read_labels,
    write_image,
    write_labels,
)

__all__ = [
    "check_output",
    "create_zarr_array",
    "expand_paths",
    "napari_get_reader",
    "open_zarr",
    "pair_files",
    "read_image",
    "read_labels",
    "write_image",
    "write_labels",
]
