"""torch's threads in the widget's worker threads and its main thread
(napari_unet.runtime.threads): set per thread, so the main thread runs no OpenMP team."""

from __future__ import annotations

import threading

import torch

from napari_unet.runtime import threads


def _in_thread(fn):
    seen: dict = {}
    t = threading.Thread(target=lambda: seen.update(value=fn(), torch=torch.get_num_threads()))
    t.start()
    t.join()
    return seen


def test_the_main_thread_keeps_one_thread_and_workers_get_the_count_it_had(monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_WORKER_THREADS", None)
    try:
        torch.set_num_threads(3)
        threads.keep_main_thread_single()
        assert torch.get_num_threads() == 1
        assert _in_thread(threads.use_worker_threads) == {"value": 3, "torch": 3}
        assert torch.get_num_threads() == 1  # the worker's count is its own
        # a second widget keeps the count of the first, not the main thread's 1
        threads.keep_main_thread_single()
        assert _in_thread(threads.use_worker_threads)["torch"] == 3
    finally:
        torch.set_num_threads(before)


def test_without_a_widget_a_worker_keeps_torchs_own_count(monkeypatch):
    monkeypatch.setattr(threads, "_WORKER_THREADS", None)
    own = _in_thread(torch.get_num_threads)["value"]
    assert _in_thread(threads.use_worker_threads) == {"value": own, "torch": own}
