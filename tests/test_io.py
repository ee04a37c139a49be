"""Reading and writing image / label files: TIFF, PNG, zarr, OME-Zarr."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_unet.io.images import (
    check_output,
    create_zarr_array,
    expand_paths,
    is_colour,
    open_zarr,
    pair_files,
    read_image,
    read_labels,
    stem,
    tiff_axes,
    write_image,
    write_labels,
)
from napari_unet.io.outputs import is_our_output
from napari_unet.unet.data import InputError

zarr = pytest.importorskip("zarr")


def test_stem_handles_compound_suffixes():
    assert stem("a/b.ome.zarr") == "b"
    assert stem("x.ome.tif") == "x"
    assert stem("7.png") == "7"
    assert stem("vol.zarr") == "vol"


def test_expand_paths_folders_globs_and_zarr(tmp_path):
    for name in ("10.png", "2.png", "1.tif", "2_labels.tif", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "vol.zarr").mkdir()
    (tmp_path / "sub").mkdir()
    found = expand_paths([tmp_path])
    assert [p.name for p in found] == ["1.tif", "2.png", "2_labels.tif", "10.png", "vol.zarr"]
    assert [p.name for p in expand_paths([str(tmp_path / "*.png")])] == ["2.png", "10.png"]
    named = expand_paths([tmp_path / "2_labels.tif", tmp_path / "2_labels.tif"])
    assert [p.name for p in named] == ["2_labels.tif"]  # duplicates are dropped
    roundabout = expand_paths([tmp_path / "1.tif", tmp_path / "sub" / ".." / "1.tif", tmp_path])
    assert roundabout[0] == tmp_path / "1.tif"  # by any path: the first name given is kept
    assert sorted(p.name for p in roundabout) == sorted(p.name for p in found)
    with pytest.raises(InputError, match="missing.tif: no such file or folder"):
        expand_paths([tmp_path / "missing.tif"])
    with pytest.raises(InputError, match="unsupported image file type '.txt'"):
        expand_paths([tmp_path / "notes.txt"])
    with pytest.raises(InputError, match="no image files found"):
        expand_paths([str(tmp_path / "*.jpg")])
    with pytest.raises(InputError, match="no image files found"):
        expand_paths([tmp_path / "sub"])


def test_outputs_are_skipped_by_their_mark_not_their_name(tmp_path):
    """A user's x_labels.tif is an input; what napari-unet wrote is left out of folders."""
    labels = np.zeros((8, 8), np.uint8)
    tifffile.imwrite(tmp_path / "x.tif", labels)
    tifffile.imwrite(tmp_path / "x_labels.tif", labels)  # the user's, named like an output
    write_labels(tmp_path / "ours.tif", labels)  # any name: the mark counts
    write_labels(tmp_path / "ours.png", labels)
    create_zarr_array(tmp_path / "ours.zarr", shape=(8, 8), dtype="uint8", chunks=(8, 8))
    for name in ("ours.tif", "ours.png", "ours.zarr"):
        assert is_our_output(tmp_path / name), name
    assert not is_our_output(tmp_path / "x_labels.tif")
    found = expand_paths([tmp_path], skip_outputs=True)
    assert [p.name for p in found] == ["x.tif", "x_labels.tif"]
    named = expand_paths([tmp_path / "ours.tif"], skip_outputs=True)
    assert [p.name for p in named] == ["ours.tif"]  # a file named explicitly is never skipped
    # --overwrite replaces only what napari-unet wrote
    check_output(tmp_path / "ours.tif", overwrite=True)
    with pytest.raises(InputError, match="not written by napari-unet: not replaced"):
        check_output(tmp_path / "x_labels.tif", overwrite=True)


@pytest.mark.parametrize("parent_is", ["a file", "a file two levels up"])
def test_outputs_under_a_file_are_refused_before_any_work(tmp_path, parent_is):
    (tmp_path / "afile.txt").write_text("x")
    target = tmp_path / "afile.txt" / "m.pt"
    if parent_is == "a file two levels up":
        target = tmp_path / "afile.txt" / "sub" / "m.pt"
    with pytest.raises(InputError, match="afile.txt is a file, not a folder"):
        check_output(target)


def test_pair_files_by_name_never_by_order(tmp_path):
    images = [tmp_path / "a.png", tmp_path / "b.png"]
    labels = [tmp_path / "lab" / "b.tif", tmp_path / "lab" / "a.tif"]
    assert pair_files(images, labels) == [(images[0], labels[1]), (images[1], labels[0])]
    masks = [tmp_path / "b_mask.tif", tmp_path / "a_mask.tif"]  # one shared suffix
    assert pair_files(images, masks) == [(images[0], masks[1]), (images[1], masks[0])]
    other = [tmp_path / "x_mask.tif", tmp_path / "y_mask.tif"]
    with pytest.raises(InputError, match="cannot pair 2 image file\\(s\\) with 2 label"):
        pair_files(images, other)
    with pytest.raises(InputError, match="no label file named like b"):
        pair_files(images, labels[1:] + [tmp_path / "c.tif"])
    with pytest.raises(InputError, match="without an image: c.tif"):
        pair_files(images, [*labels, tmp_path / "c.tif"])
    assert pair_files(images, [*labels, tmp_path / "c.tif"], allow_unused_labels=True)
    # one image and one label file pair as given, whatever their names
    assert pair_files(images[:1], other[:1]) == [(images[0], other[0])]


def test_read_tiff_png_and_colour_handling(tmp_path):
    grey = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40)
    tifffile.imwrite(tmp_path / "g.tif", grey)
    np.testing.assert_array_equal(read_image(tmp_path / "g.tif"), grey)

    g8 = (grey % 256).astype(np.uint8)
    rgba = np.stack([g8, g8, g8, np.full_like(g8, 255)], axis=-1)
    iio.imwrite(tmp_path / "grey_rgba.png", rgba)
    out = read_image(tmp_path / "grey_rgba.png")
    np.testing.assert_array_equal(out, g8)  # alpha dropped, R = G = B -> grey
    assert not is_colour(out, tmp_path / "grey_rgba.png")

    colour = np.stack([g8, 255 - g8, g8 // 2], axis=-1)
    iio.imwrite(tmp_path / "c.png", colour)
    out = read_image(tmp_path / "c.png")
    np.testing.assert_array_equal(out, colour)
    assert is_colour(out, tmp_path / "c.png")


def test_unreadable_files_name_the_file(tmp_path):
    (tmp_path / "bad.tif").write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(InputError, match=r"bad\.tif: not a readable TIFF file"):
        read_image(tmp_path / "bad.tif")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match=r"bad\.png: not a readable image file"):
        read_image(tmp_path / "bad.png")
    with pytest.raises(InputError, match="no such file"):
        read_image(tmp_path / "none.tif")
    (tmp_path / "x.bmp").write_bytes(b"")
    with pytest.raises(InputError, match="unsupported file type"):
        read_image(tmp_path / "x.bmp")


def test_read_labels_checks_values(tmp_path):
    tifffile.imwrite(tmp_path / "f.tif", np.array([[0.0, 2.0], [1.0, 3.0]], np.float32))
    labels = read_labels(tmp_path / "f.tif")
    assert np.issubdtype(labels.dtype, np.integer) and labels.tolist() == [[0, 2], [1, 3]]
    tifffile.imwrite(tmp_path / "h.tif", np.array([[0.5, 1.0]], np.float32))
    with pytest.raises(InputError, match="whole numbers"):
        read_labels(tmp_path / "h.tif")
    tifffile.imwrite(tmp_path / "n.tif", np.array([[-1, 1]], np.int16))
    with pytest.raises(InputError, match="negative"):
        read_labels(tmp_path / "n.tif")
    iio.imwrite(tmp_path / "c.png", np.random.default_rng(0).integers(0, 255, (8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="colour image cannot be a label image"):
        read_labels(tmp_path / "c.png")


def test_layouts_that_were_misread_are_read_as_the_file_means(tmp_path):
    """(H, W, 1) and (1, H, W) TIFFs are planes; a planar RGB TIFF of another program is
    RGB (H, W, 3); a CMYK JPEG is converted to RGB; a palette PNG is its colours as an
    image and its indices as labels; an RGB TIFF is refused as labels."""
    from PIL import Image

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 255, (24, 32), np.uint8)
    rgb = np.stack([grey, 255 - grey, grey // 2], axis=-1)
    tifffile.imwrite(tmp_path / "hw1.tif", grey[..., None])
    tifffile.imwrite(tmp_path / "1hw.tif", grey[None])
    assert np.array_equal(read_image(tmp_path / "hw1.tif"), grey)
    assert np.array_equal(read_image(tmp_path / "1hw.tif"), grey)
    assert tiff_axes(tmp_path / "hw1.tif") == "YX"
    # planar RGB as other programs write it: no tifffile "shape" description
    planar = np.moveaxis(rgb, -1, 0)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb",
                     planarconfig="separate", metadata=None)  # fmt: skip
    assert np.array_equal(read_image(tmp_path / "planar.tif"), rgb)
    assert tiff_axes(tmp_path / "planar.tif") == "YXS"
    # a bare (3, H, W) array saved by tifffile may be 3 planes: kept as written
    tifffile.imwrite(tmp_path / "stack.tif", planar)
    assert read_image(tmp_path / "stack.tif").shape == (3, 24, 32)
    with pytest.raises(InputError, match="colour image cannot be a label image"):
        read_labels(tmp_path / "planar.tif")
    tifffile.imwrite(tmp_path / "rgb.tif", rgb)
    with pytest.raises(InputError, match="colour image cannot be a label image"):
        read_labels(tmp_path / "rgb.tif")
    # CMYK: PIL's conversion, not the four channels read as RGBA (alpha dropped = K lost)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=100)
    expected = np.asarray(Image.open(tmp_path / "cmyk.jpg").convert("RGB"))
    got = read_image(tmp_path / "cmyk.jpg")
    assert got.shape == (24, 32, 3) and np.array_equal(got, expected)
    assert np.abs(got.astype(int) - rgb).mean() < 20  # close to the colours saved
    # a palette PNG: index 1 drawn red, 2 green
    indices = np.zeros((24, 32), np.uint8)
    indices[2:10, 2:10], indices[12:20, 12:30] = 1, 2
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0])
    palette.save(tmp_path / "pal.png")
    assert np.array_equal(read_labels(tmp_path / "pal.png"), indices)
    colours = read_image(tmp_path / "pal.png")
    assert colours.shape == (24, 32, 3) and colours[3, 3].tolist() == [255, 0, 0]


def test_channels_last_read_as_planes_is_refused():
    """A (H, W, 3) array with no channel axis would be H planes 3 pixels wide."""
    from napari_unet.unet.data import as_channels_first

    with pytest.raises(InputError, match="last axis holds 3 values per pixel, like channels"):
        as_channels_first(np.zeros((64, 80, 3)), None, 1)
    assert as_channels_first(np.zeros((64, 80, 3)), -1, 3).shape == (3, 64, 80)
    assert as_channels_first(np.zeros((3, 64, 80)), None, 1).shape == (3, 1, 64, 80)
    assert as_channels_first(np.zeros((64, 3)), None, 1).shape == (1, 64, 3)  # a 2D image
    for axis in (3, 5, -4):
        with pytest.raises(InputError, match=f"channel axis {axis} does not exist"):
            as_channels_first(np.zeros((3, 64, 80)), axis, 3)
    with pytest.raises(InputError, match="channel axis must be a whole number"):
        as_channels_first(np.zeros((3, 64, 80)), 0.5, 3)


def test_write_labels_round_trip_and_refusals(tmp_path):
    labels = np.random.default_rng(0).integers(0, 300, (20, 30)).astype(np.uint16)
    path = write_labels(tmp_path / "l.tif", labels)
    np.testing.assert_array_equal(tifffile.imread(path), labels)
    png = write_labels(tmp_path / "l.png", labels)
    back = iio.imread(png)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, labels)
    small = write_labels(tmp_path / "s.png", (labels % 3).astype(np.int64))
    assert iio.imread(small).dtype == np.uint8

    with pytest.raises(InputError, match="exists; pass --overwrite"):
        write_labels(tmp_path / "l.tif", labels * 0)
    np.testing.assert_array_equal(tifffile.imread(path), labels)  # untouched
    write_labels(tmp_path / "l.tif", labels * 0, overwrite=True)
    assert tifffile.imread(path).max() == 0
    with pytest.raises(InputError, match="PNG holds one 2D plane"):
        write_labels(tmp_path / "stack.png", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(InputError, match="integers"):
        write_labels(tmp_path / "f.tif", np.zeros((4, 4), np.float32))
    for suffix in (".png", ".tif"):  # a PNG would wrap -1 to 255 or 65535
        with pytest.raises(InputError, match="negative values"):
            write_labels(tmp_path / f"neg{suffix}", np.array([[0, -1], [2, 3]], np.int16))
        assert not (tmp_path / f"neg{suffix}").exists()
    probs = np.random.default_rng(1).random((2, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(tifffile.imread(write_image(tmp_path / "p.tif", probs)), probs)
    # no temporary files are left behind
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_check_output_refuses_inputs(tmp_path):
    src = tmp_path / "in.zarr"
    src.mkdir()
    with pytest.raises(InputError, match="refusing to write over an input"):
        check_output(src, overwrite=True, inputs=[src])
    with pytest.raises(InputError, match="refusing to write over an input"):
        check_output(src / "labels", overwrite=True, inputs=[src])
    (tmp_path / "folder").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path / "folder", overwrite=True)
    assert check_output(tmp_path / "new.tif") == tmp_path / "new.tif"


def _ome(path, arrays, axes, scales, v05=False):
    fmt = 3 if v05 else 2
    group = zarr.open_group(str(path), mode="w", zarr_format=fmt)
    ms = {
        "axes": [{"name": a, "type": "space"} for a in axes],
        "datasets": [
            {"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": s}]}
            for i, s in enumerate(scales)
        ],
    }
    if v05:
        group.attrs["ome"] = {"version": "0.5", "multiscales": [ms]}
    else:
        group.attrs["multiscales"] = [{"version": "0.4", **ms}]
    for i, a in enumerate(arrays):
        z = group.create_array(str(i), shape=a.shape, chunks=(16, 16), dtype=a.dtype)
        z[...] = a
    return group


@pytest.mark.parametrize("v05", [False, True])
def test_open_ome_zarr_reads_level_0_lazily(tmp_path, v05):
    import dask.array as da

    full = np.arange(40 * 50, dtype=np.uint16).reshape(40, 50)
    _ome(tmp_path / "i.ome.zarr", [full, full[::2, ::2]], "yx", [[0.5, 0.5], [1.0, 1.0]], v05)
    img = open_zarr(tmp_path / "i.ome.zarr")
    assert isinstance(img.array, da.Array) and img.array.chunks[0][0] == 16
    assert img.ome and img.axes == ["y", "x"] and img.scale == [0.5, 0.5]
    np.testing.assert_array_equal(img.array.compute(), full)
    np.testing.assert_array_equal(read_image(tmp_path / "i.ome.zarr", lazy=False), full)


def test_open_plain_and_bioformats2raw_zarr(tmp_path):
    a = np.ones((20, 20), np.uint8)
    z = zarr.create_array(str(tmp_path / "a.zarr"), shape=a.shape, dtype=a.dtype)
    z[...] = a
    plain = open_zarr(tmp_path / "a.zarr")
    assert not plain.ome and plain.axes is None and plain.array.shape == (20, 20)
    root = zarr.open_group(str(tmp_path / "b2r.zarr"), mode="w", zarr_format=2)
    root.attrs["bioformats2raw.layout"] = 3
    _ome(tmp_path / "b2r.zarr" / "0", [a], "yx", [[1.0, 1.0]])
    assert open_zarr(tmp_path / "b2r.zarr").array.shape == (20, 20)
    g = zarr.open_group(str(tmp_path / "many.zarr"), mode="w")
    g.create_array("x", shape=(2, 2), dtype="u1")
    g.create_array("y", shape=(2, 2), dtype="u1")
    with pytest.raises(InputError, match="2 arrays and no OME-Zarr metadata"):
        open_zarr(tmp_path / "many.zarr")
    (tmp_path / "junk.zarr").mkdir()
    (tmp_path / "junk.zarr" / ".zarray").write_text("{not json")
    with pytest.raises(InputError, match="junk.zarr: not a readable zarr store"):
        open_zarr(tmp_path / "junk.zarr")


def test_create_zarr_array_writes_ome_ngff_04(tmp_path):
    out = tmp_path / "o.ome.zarr"
    arr = create_zarr_array(
        out, shape=(3, 40, 50), dtype=np.uint8, chunks=(1, 16, 16), axes=["z", "y", "x"],
        scale=[2.0, 0.5, 0.5], units={"y": "micrometer"},
    )  # fmt: skip
    arr[0, :16, :16] = 7
    attrs = json.loads((out / ".zattrs").read_text())
    ms = attrs["multiscales"][0]
    assert ms["version"] == "0.4" and ms["datasets"][0]["path"] == "0"
    assert [a["name"] for a in ms["axes"]] == ["z", "y", "x"]
    assert ms["axes"][1] == {"name": "y", "type": "space", "unit": "micrometer"}
    assert ms["datasets"][0]["coordinateTransformations"] == [
        {"type": "scale", "scale": [2.0, 0.5, 0.5]}
    ]
    back = open_zarr(out)
    assert back.array.chunks[1][0] == 16 and int(back.array[0, 0, 0]) == 7
    with pytest.raises(InputError, match="exists"):
        create_zarr_array(out, shape=(2, 2), dtype=np.uint8, chunks=(2, 2))
    create_zarr_array(out, shape=(2, 2), dtype=np.uint8, chunks=(2, 2), overwrite=True)
    assert open_zarr(out).array.shape == (2, 2)


def test_napari_reader_opens_results_lazily(tmp_path):
    import dask.array as da

    from napari_unet.io.images import napari_get_reader

    labels = create_zarr_array(
        tmp_path / "a_labels.ome.zarr", shape=(40, 50), dtype=np.uint8, chunks=(16, 16),
        axes=["y", "x"], scale=[0.5, 0.25],
    )  # fmt: skip
    labels[:8, :8] = 2
    create_zarr_array(
        tmp_path / "a_probabilities.ome.zarr", shape=(2, 40, 50), dtype=np.float32,
        chunks=(2, 16, 16), axes=["c", "y", "x"], scale=[1.0, 0.5, 0.25],
    )  # fmt: skip
    reader = napari_get_reader(str(tmp_path / "a_labels.ome.zarr"))
    data, meta, kind = reader(str(tmp_path / "a_labels.ome.zarr"))[0]
    assert kind == "labels" and isinstance(data, da.Array)
    assert meta == {"name": "a_labels", "scale": [0.5, 0.25]}
    assert int(data[0, 0]) == 2
    reader = napari_get_reader([str(tmp_path / "a_probabilities.ome.zarr")])
    data, meta, kind = reader(str(tmp_path / "a_probabilities.ome.zarr"))[0]
    assert kind == "image" and meta["channel_axis"] == 0 and meta["scale"] == [0.5, 0.25]
    assert meta["name"] == ["a_probabilities 1", "a_probabilities 2"]
    # anything else is left to napari's other readers
    tifffile.imwrite(tmp_path / "x.tif", np.zeros((4, 4), np.uint8))
    assert napari_get_reader(str(tmp_path / "x.tif")) is None
    create_zarr_array(tmp_path / "raw.zarr", shape=(4, 4), dtype=np.uint8, chunks=(4, 4))
    assert napari_get_reader(str(tmp_path / "raw.zarr")) is None


STEMS = st.text("abc12_", min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    image_stems=st.lists(STEMS, min_size=1, max_size=5, unique=True),
    label_stems=st.lists(STEMS, min_size=1, max_size=6, unique=True),
)
def test_pairing_is_by_name_or_refused(tmp_path_factory, image_stems, label_stems):
    """For any names: either every image is paired with the label file named as it (plus
    one suffix shared by all pairs), each label file once, or the pairing is refused."""
    images = [Path("img") / f"{s}.tif" for s in image_stems]
    labels = [Path("lab") / f"{s}.png" for s in label_stems]
    try:
        pairs = pair_files(images, labels)
    except InputError:
        return
    if len(images) == len(labels) == 1:
        assert pairs == [(images[0], labels[0])]
        return
    assert [img for img, _ in pairs] == images
    assert len({lab for _, lab in pairs}) == len(pairs) == len(labels)
    suffixes = {stem(lab)[len(stem(img)) :] for img, lab in pairs}
    assert len(suffixes) == 1
    assert all(stem(lab) == stem(img) + suffixes.pop() for img, lab in pairs[:1])
    assert all(stem(lab).startswith(stem(img)) for img, lab in pairs)


@settings(max_examples=50, deadline=None)
@given(
    stems=st.lists(st.text("abcxyz", min_size=1, max_size=5), min_size=2, max_size=6, unique=True),
    suffix=st.sampled_from(["", "_mask", "_gt", "-labels"]),
    seed=st.integers(0, 100),
)
def test_pairing_finds_every_pair_whatever_the_order(stems, suffix, seed):
    images = [Path(f"{s}.tif") for s in stems]
    labels = [Path("lab") / f"{s}{suffix}.tif" for s in stems]
    np.random.default_rng(seed).shuffle(labels)
    try:
        pairs = pair_files(images, labels)
    except InputError:  # only when one name is another's prefix plus the suffix
        assert suffix and any(a != b and (b + suffix).startswith(a) for a in stems for b in stems)
        return
    assert all(stem(lab) == stem(img) + suffix for img, lab in pairs)
