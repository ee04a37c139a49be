"""Whether a file can be created where a run will write it, known before the run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..unet.errors import InputError


def check_writable(path: str | os.PathLike) -> None:
    """Refuse, before any work, a ``path`` that cannot be created: a file among its
    parents, or a parent folder this user cannot write to."""
    path = Path(path)
    parent = path.parent.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{path}: cannot be written: {parent} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".napari-unet-probe-", dir=parent)
    except OSError as err:
        raise InputError(
            f"{path}: cannot be written: {parent} is not writable ({err.strerror})"
        ) from None
    os.close(fd)
    os.unlink(probe)
