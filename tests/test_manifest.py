"""The npe2 manifest, the packaged sample data, and a torch-free napari start-up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_unet import _sample_data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "stardist_nuclei"
MANIFEST = Path(_sample_data.__file__).with_name("napari.yaml")


def test_manifest_is_valid_and_names_what_others_use() -> None:
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "napari-unet-explorer"
    widgets = {w.display_name: w.command for w in manifest.contributions.widgets}
    assert "U-Net" in widgets
    samples = {s.key: s for s in manifest.contributions.sample_data}
    assert "nuclei" in samples
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert commands[widgets["U-Net"]] == "napari_unet.widgets.unet_widget:UNetWidget"
    assert commands[samples["nuclei"].command] == "napari_unet._sample_data:make_nuclei_sample"


def test_plugin_is_discovered_through_the_entry_point() -> None:
    npe2 = pytest.importorskip("npe2")
    pm = npe2.PluginManager.instance()
    pm.discover()
    assert pm.get_manifest("napari-unet-explorer").name == "napari-unet-explorer"


def test_start_up_imports_no_torch() -> None:
    """What napari imports at start-up and for the sample data (and the widget *module*)
    must not import torch: torch is imported when the widget is created."""
    code = (
        "import sys, json\n"
        "import napari_unet, napari_unet._sample_data\n"
        "import napari_unet.widgets.unet_widget\n"
        "napari_unet._sample_data.make_nuclei_sample()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_sample_layers() -> None:
    layers = _sample_data.make_nuclei_sample()
    names = [(meta["name"], kind) for _, meta, kind in layers]
    assert names == [("nuclei", "image"), ("scribbles", "labels"), ("nuclei instances", "labels")]
    image, scribbles, instances = (data for data, _, _ in layers)
    assert image.shape == scribbles.shape == instances.shape == (512, 512)
    assert image.dtype == np.uint16
    assert np.issubdtype(scribbles.dtype, np.integer)
    assert np.issubdtype(instances.dtype, np.integer)
    assert len(np.unique(instances)) > 100  # 125 nuclei + background


def test_scribbles_are_sparse_and_agree_with_the_instances() -> None:
    data = _sample_data.load_nuclei()
    scribbles, instances = data["scribbles"], data["instances"]
    assert set(np.unique(scribbles)) == {0, 1, 2}
    fraction = np.count_nonzero(scribbles) / scribbles.size
    assert 0.01 <= fraction <= 0.02
    # nucleus strokes lie strictly inside nuclei, background strokes away from every nucleus
    assert np.all(instances[scribbles == 2] > 0)
    inner = np.zeros(instances.shape, bool)
    for i, sl in enumerate(ndi.find_objects(instances), start=1):
        if sl is not None:
            inner[sl] |= ndi.binary_erosion(instances[sl] == i, iterations=3)
    assert np.all(inner[scribbles == 2])
    distance = ndi.distance_transform_edt(instances == 0)
    assert np.all(distance[scribbles == 1] > 5)
    # strokes, not speckles: few connected pieces for thousands of pixels
    for c in (1, 2):
        _, n = ndi.label(scribbles == c)
        assert np.count_nonzero(scribbles == c) / n > 15


def test_packaged_files_are_the_shared_data() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    tifffile = pytest.importorskip("tifffile")
    data = _sample_data.load_nuclei()
    np.testing.assert_array_equal(data["image"], tifffile.imread(SHARED / "image.tif"))
    np.testing.assert_array_equal(data["instances"], tifffile.imread(SHARED / "labels.tif"))
    folder = MANIFEST.with_name("sample_data")
    assert (folder / "LICENSE_stardist.txt").read_text() == (
        SHARED / "LICENSE_stardist.txt"
    ).read_text()


def test_scribbles_file_is_reproduced_by_the_script() -> None:
    """The shipped scribbles are exactly what scripts/make_scribbles.py derives."""
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_scribbles.py"
    if not script.is_file():
        pytest.skip("scripts/ not present (installed package)")
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_scribbles", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = _sample_data.load_nuclei()
    np.testing.assert_array_equal(module.make_scribbles(data["instances"]), data["scribbles"])
