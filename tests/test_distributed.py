"""Chunked dask prediction equals the in-memory overlap-tile prediction, also on a cluster."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")

from napari_unet import UNet, predict_tiled  # noqa: E402
from napari_unet.io.distributed import (  # noqa: E402
    compute,
    normalization_stats,
    predict_dask,
    predict_zarr,
)
from napari_unet.io.images import open_zarr  # noqa: E402
from napari_unet.unet.data import InputError  # noqa: E402


def _model(depth: int = 3, padding: str = "valid", in_channels: int = 1, k: int = 3) -> UNet:
    torch.manual_seed(depth)
    model = UNet(
        in_channels=in_channels,
        n_classes=k,
        depth=depth,
        base_channels=4,
        padding=padding,
        batch_norm=True,
    )
    for m in model.modules():  # non-trivial batch-norm statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_()
            m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture(scope="module")
def model() -> UNet:
    return _model()


@pytest.fixture
def image() -> np.ndarray:
    # odd sizes, not multiples of the chunk or of 2**depth
    return (np.random.default_rng(0).random((150, 170)) * 4000).astype(np.uint16)


def _zarr(path, array, chunks):
    z = zarr.create_array(str(path), shape=array.shape, chunks=chunks, dtype=array.dtype)
    z[...] = array
    return da.from_zarr(str(path))


def test_multichunk_zarr_equals_in_memory(tmp_path, model, image):
    darr = _zarr(tmp_path / "in.zarr", image, (64, 64))
    pred = predict_dask(model, darr, tile_size=48)
    assert pred.logits.numblocks == (1, 3, 3)  # really several chunks on both axes
    seen = []
    threads = torch.get_num_threads()
    logits, labels, probs = compute(
        pred.logits, pred.labels, pred.probabilities, progress=lambda d, t: seen.append((d, t))
    )
    ref = predict_tiled(model, image)  # default tiles, per-image percentile normalisation
    np.testing.assert_allclose(logits, ref.logits, atol=1e-4)
    np.testing.assert_array_equal(labels, ref.labels)
    assert labels.dtype == ref.labels.dtype
    np.testing.assert_allclose(probs, ref.probabilities, atol=1e-5)
    assert seen[-1] == (9, 9)
    assert torch.get_num_threads() == threads  # one torch thread per dask thread, then restored


def test_nothing_is_read_before_compute_and_each_task_reads_a_window(model, image):
    calls = []

    def source(block, block_info=None):
        if block.size:  # dask calls it once on an empty block to learn the output type
            calls.append(block.shape)
        return block

    darr = da.from_array(image, chunks=(40, 40)).map_blocks(source, dtype=image.dtype)
    stats = np.array([[0.0, 4000.0]])
    pred = predict_dask(model, darr, stats=stats, chunk_size=40)
    assert calls == []  # the graph is lazy
    ref = predict_tiled(model, image.astype(np.float32) / 4000.0, normalize_input=False)
    np.testing.assert_allclose(compute(pred.logits)[0], ref.logits, atol=1e-4)
    graph = dict(pred.logits.__dask_graph__())
    n_inputs = [
        sum(len(row) for row in task[2])
        for key, task in graph.items()
        if isinstance(key, tuple) and str(key[0]).startswith("unet-logits-")
    ]
    # a chunk's window is the chunk plus the halo (44 px for depth 3): at most 5x5 chunks
    assert len(n_inputs) == 4 * 5 and max(n_inputs) <= 25 and min(n_inputs) >= 4


@pytest.mark.parametrize(
    ("padding", "depth", "tile"), [("valid", 2, None), ("same", 2, 24), ("same", 3, 40)]
)
def test_stack_with_channels_equals_in_memory(padding, depth, tile):
    model = _model(depth, padding, in_channels=2, k=2)
    stack = (np.random.default_rng(1).random((2, 61, 75, 2)) * 255).astype(np.uint8)
    pred = predict_dask(model, stack, channel_axis=-1, chunk_size=24, tile_size=tile)
    ref = predict_tiled(model, stack, channel_axis=-1, tile_size=tile)
    logits, labels = compute(pred.logits, pred.labels)
    assert logits.shape == ref.logits.shape == (2, 2, 61, 75)
    np.testing.assert_allclose(logits, ref.logits, atol=1e-4)
    np.testing.assert_array_equal(labels, ref.labels)


def test_global_stats_equal_numpy_percentiles(model):
    stack = (np.random.default_rng(2).random((3, 40, 50)) * 1000).astype(np.float32)
    stats = normalization_stats(da.from_array(stack[:, None]), None, per_plane=False)
    lo, hi = np.percentile(stack.astype(np.float64), [1.0, 99.8])
    np.testing.assert_allclose(stats, [[lo, hi]])
    per_plane = normalization_stats(da.from_array(stack[:, None]), None)
    assert per_plane.shape == (3, 1, 2)
    np.testing.assert_allclose(per_plane[1, 0], np.percentile(stack[1], [1.0, 99.8]))
    # a subsample of ~1000 pixels per plane (stride 2) keeps the estimate close
    sub = normalization_stats(da.from_array(stack[:, None]), None, max_samples=3000)
    assert np.abs(sub - per_plane).max() < 0.02 * 1000
    pred = predict_dask(model, stack, stats="global", chunk_size=32)
    ref = predict_tiled(
        model, ((stack - lo) / (hi - lo)).astype(np.float32), normalize_input=False
    )
    np.testing.assert_allclose(compute(pred.logits)[0], ref.logits, atol=1e-4)


def test_bad_input_is_refused(model):
    with pytest.raises(InputError, match="channel"):
        predict_dask(model, np.zeros((30, 30, 3)), channel_axis=-1)
    bad = np.zeros((40, 40), np.float32)
    bad[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        predict_dask(model, bad)
    with pytest.raises(InputError, match="NaN"):  # found while computing
        compute(predict_dask(model, bad, stats=np.array([[0.0, 1.0]])).labels)


def test_predict_zarr_writes_ome_zarr_lazily_readable(tmp_path, model, image):
    src = tmp_path / "big.ome.zarr"
    group = zarr.open_group(str(src), mode="w", zarr_format=2)
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"},
            ],
            "datasets": [
                {
                    "path": "0",
                    "coordinateTransformations": [{"type": "scale", "scale": [0.5, 0.25]}],
                }
            ],
        }
    ]
    arr = group.create_array("0", shape=image.shape, chunks=(64, 64), dtype=image.dtype)
    arr[...] = image
    out, probs = tmp_path / "out" / "big_labels.ome.zarr", tmp_path / "out" / "big_probs.ome.zarr"
    written = predict_zarr(model, src, out, probabilities_path=probs, chunk_size=64)
    assert written == [out, probs]
    ref = predict_tiled(model, image)

    res = open_zarr(out)
    assert res.ome and res.axes == ["y", "x"] and res.scale == [0.5, 0.25]
    assert res.units == {"y": "micrometer", "x": "micrometer"}
    assert res.array.chunks == ((64, 64, 22), (64, 64, 42))  # lazy, chunk by chunk
    np.testing.assert_array_equal(res.array.compute(), ref.labels)
    attrs = json.loads((out / ".zattrs").read_text())
    assert attrs["multiscales"][0]["version"] == "0.4"
    p = open_zarr(probs)
    assert p.axes == ["c", "y", "x"] and p.scale == [1.0, 0.5, 0.25]
    np.testing.assert_allclose(p.array.compute(), ref.probabilities, atol=1e-5)

    # never over an input; an existing output only with overwrite
    with pytest.raises(InputError, match="input"):
        predict_zarr(model, src, src / "labels", overwrite=True)
    with pytest.raises(InputError, match="exists"):
        predict_zarr(model, src, out)
    predict_zarr(model, src, out, overwrite=True, chunk_size=96)
    assert open_zarr(out).array.chunks[0][0] == 96

    # a failure while computing leaves no half-written store behind
    bad = tmp_path / "bad.zarr"
    z = zarr.create_array(str(bad), shape=(40, 40), chunks=(16, 16), dtype="f4")
    z[...] = np.nan
    with pytest.raises(InputError, match="NaN"):
        predict_zarr(model, bad, tmp_path / "bad_labels.zarr", stats=np.array([[0.0, 1.0]]))
    assert not (tmp_path / "bad_labels.zarr").exists()


def test_napari_reads_the_result_lazily(tmp_path, model, image):
    napari_io = pytest.importorskip("napari_builtins.io")
    src = tmp_path / "plain.zarr"
    _zarr(src, image, (64, 64))
    out = tmp_path / "plain_labels.zarr"
    predict_zarr(model, src, out, ome=False)
    reader = napari_io.napari_get_reader(str(out))
    assert reader is not None
    data = reader(str(out))[0][0]
    assert isinstance(data, da.Array)  # not loaded into memory
    np.testing.assert_array_equal(data.compute(), predict_tiled(model, image).labels)


@pytest.mark.slow
def test_local_cluster_with_two_workers(tmp_path, model, image):
    distributed = pytest.importorskip("distributed")
    darr = _zarr(tmp_path / "in.zarr", image, (64, 64))
    ref = predict_tiled(model, image)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        pred = predict_dask(model, darr, chunk_size=64)
        model_keys = [k for k in pred.logits.dask if str(k).startswith("UNet-")]
        assert len(model_keys) == 1  # one node for the model, shared by every chunk task
        who_has = client.who_has()  # all data held by the workers
        assert len(who_has[model_keys[0]]) == 2  # broadcast once to each worker
        (labels,) = compute(pred.labels)
        out = tmp_path / "cluster_labels.ome.zarr"
        predict_zarr(model, tmp_path / "in.zarr", out, chunk_size=64, client=client)
    np.testing.assert_array_equal(labels, ref.labels)
    np.testing.assert_array_equal(open_zarr(out).array.compute(), ref.labels)
