"""Pretrained models bundled inside the package (no download at run time).

Each model is ``pretrained/<name>.pt`` (a :func:`napari_unet.save_model` file) with a model
card ``pretrained/<name>.md`` that says what it was trained on and how well it does.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .checkpoint import load_model
from .model import UNet


def _folder() -> Path:
    return Path(str(resources.files("napari_unet") / "pretrained"))


def list_pretrained() -> list[str]:
    """Names of the bundled models (empty if none is bundled)."""
    return sorted(p.stem for p in _folder().glob("*.pt"))


def pretrained_path(name: str) -> Path:
    path = _folder() / f"{name}.pt"
    if not path.is_file():
        raise ValueError(f"no bundled model named {name!r}; bundled: {list_pretrained()}")
    return path


def model_card(name: str) -> str:
    """The model card (Markdown) of a bundled model, or '' if it has none."""
    card = _folder() / f"{name}.md"
    return card.read_text(encoding="utf-8") if card.is_file() else ""


def load_pretrained(name: str, device: str = "cpu") -> UNet:
    """Load a bundled model by name (see :func:`list_pretrained`)."""
    model = load_model(pretrained_path(name), device=device)
    model.metadata.setdefault("source", f"bundled:{name}")
    return model
