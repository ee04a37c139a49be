"""keep_freed_memory: large blocks reused without page faults inside, memory returned after."""

from __future__ import annotations

import resource
import threading

import numpy as np
import pytest
import torch

from napari_unet.runtime import allocator
from napari_unet.runtime.allocator import keep_freed_memory


def _huge_pages_always() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False


pytestmark = [
    pytest.mark.skipif(not allocator.available(), reason="needs Linux with glibc"),
    # with transparent huge pages always on, a fresh map takes few (2 MiB) page faults
    pytest.mark.skipif(_huge_pages_always(), reason="page faults are counted in 4 KiB pages"),
]

PAGES = 64 * 2**20 // resource.getpagesize()  # one 64 MiB feature map: above glibc's
# largest dynamic mmap threshold (32 MiB), like the top level of a base-32 tile
_IMAGE, _WEIGHT = torch.ones(1, 1, 1026, 1026), torch.ones(16, 1, 3, 3)


def faults_of_a_layer() -> int:
    """Minor page faults taken by one conv + ReLU writing a 64 MiB feature map."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    out = torch.relu(torch.nn.functional.conv2d(_IMAGE, _WEIGHT))
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert out.numel() * 4 == 64 * 2**20
    del out
    return faults


def steady_faults() -> int:
    """Faults of the last three of six layers, as in a tile loop after its first tiles."""
    return sum([faults_of_a_layer() for _ in range(6)][3:])


def test_inside_a_freed_block_is_reused_without_page_faults_and_after_it_is_returned():
    with keep_freed_memory():
        assert steady_faults() < PAGES // 2  # three layers, less than half a map's pages
    # after the block the memory went back to the system: every new map faults again
    assert faults_of_a_layer() > PAGES // 2


def test_nested_and_concurrent_uses_keep_memory_until_the_last_one_ends():
    entered, release = threading.Event(), threading.Event()

    def other_job() -> None:
        with keep_freed_memory():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=other_job)
    with keep_freed_memory():
        thread.start()
        assert entered.wait(10)
        with keep_freed_memory():
            faults_of_a_layer()
        # this thread's inner block ended, its outer one and the other job's have not
        assert steady_faults() < PAGES // 2
    assert steady_faults() < PAGES // 2  # the other job still runs
    release.set()
    thread.join(10)
    assert faults_of_a_layer() > PAGES // 2


def test_the_tile_loop_runs_inside_it(monkeypatch):
    from napari_unet import UNet, predict_tiled
    from napari_unet.unet import tiling

    calls = []
    real = tiling.keep_freed_memory

    def spy():
        calls.append(True)
        return real()

    monkeypatch.setattr(tiling, "keep_freed_memory", spy)
    predict_tiled(UNet(depth=1, base_channels=2), np.zeros((40, 40), np.float32), tile_size=20)
    assert calls


def test_a_child_forked_inside_a_block_starts_with_none_active():
    import os

    with keep_freed_memory():
        pid = os.fork()
        if pid == 0:  # the child: report and leave at once
            os._exit(0 if allocator._active == 0 else 1)
        _, status = os.waitpid(pid, 0)
        assert allocator._active == 1
    assert os.waitstatus_to_exitcode(status) == 0
