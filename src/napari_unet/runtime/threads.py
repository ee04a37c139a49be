"""torch's intra-op threads when the work runs in a background thread (the widget's jobs).

torch's CPU build uses OpenMP (libgomp), and every thread that runs a parallel op gets its
own team of OpenMP threads, which live as long as that thread. Once the main thread has
run one parallel op (loading a model is enough), its idle team still counts, so a worker's
team makes more OpenMP threads than cores and libgomp stops spinning between ops: training
in the worker ran at 0.45x the speed of the main thread on 2 cores
(docs/benchmarks.md, "Training in the widget"). The widget therefore keeps the main thread's
torch work to one thread (no team) and gives the worker thread the machine's cores.
"""

from __future__ import annotations

_WORKER_THREADS: int | None = None


def keep_main_thread_single() -> None:
    """Run the calling (main) thread's torch ops on one thread, so it never starts an
    OpenMP team that competes with the worker's. Remembers the previous count, which the
    worker threads get (:func:`use_worker_threads`). Idempotent."""
    global _WORKER_THREADS
    import torch

    if _WORKER_THREADS is None:
        _WORKER_THREADS = max(torch.get_num_threads(), 1)
    torch.set_num_threads(1)
    # torch sizes a thread's team at its first parallel op from the count last set in any
    # thread: take that first op now, before a worker sets its own count
    torch.ones(1 << 17).sum()


def use_worker_threads() -> int:
    """In a worker thread: give its torch ops the count the main thread had before
    :func:`keep_main_thread_single` (set per thread); without it, torch's own count."""
    import torch

    if _WORKER_THREADS is not None and torch.get_num_threads() != _WORKER_THREADS:
        torch.set_num_threads(_WORKER_THREADS)
    return torch.get_num_threads()
