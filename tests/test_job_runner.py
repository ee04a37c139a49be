"""The widget's job runner delivers worker signals one at a time, in order."""

from __future__ import annotations

import pytest

from napari_unet.widgets.runner import JobRunner


def _runner(log: list) -> JobRunner:
    return JobRunner(
        on_event=lambda e: log.append(("event", e)),
        on_result=lambda v: log.append(("result", v)),
        on_error=lambda e: log.append(("error", e)),
        on_aborted=lambda: log.append(("aborted",)),
        on_finished=lambda: log.append(("finished",)),
    )


def test_signals_arriving_inside_a_handler_wait_their_turn():
    """napari's progress bar processes Qt events while a handler runs: the next signals
    must not nest (a fast job used to reach Python's recursion limit)."""
    log: list = []
    depth = {"now": 0, "max": 0}
    runner = _runner(log)

    def on_event(event: int) -> None:
        depth["now"] += 1
        depth["max"] = max(depth["max"], depth["now"])
        log.append(("event", event))
        if event < 2000:  # far beyond the recursion limit if it nested
            runner.deliver(runner._event, event + 1)  # what processEvents() would do
            if event == 1:
                runner.deliver(runner._finished)
        depth["now"] -= 1

    runner.on_event = on_event
    runner.deliver(runner._event, 1)
    assert depth["max"] == 1
    events = [e[1] for e in log if e[0] == "event"]
    assert events == list(range(1, 2001))
    # the finish signal queued during event 1 comes after event 2, as it was sent
    assert log.index(("finished",)) == 2


def test_a_failing_handler_does_not_block_the_signals_queued_behind_it():
    log: list = []
    runner = _runner(log)

    def on_event(event: int) -> None:
        if event == 1:
            runner.deliver(runner._finished)
            raise RuntimeError("boom")

    runner.on_event = on_event
    with pytest.raises(RuntimeError, match="boom"):
        runner.deliver(runner._event, 1)
    assert log == [("finished",)] and not runner._delivering


def test_finished_is_reported_even_when_the_cleanup_fails():
    log: list = []
    runner = _runner(log)

    class BrokenJob:
        def close(self) -> None:
            raise RuntimeError("cleanup")

    class Worker:
        _gen = BrokenJob()

    runner._worker = Worker()
    with pytest.raises(RuntimeError, match="cleanup"):
        runner.deliver(runner._finished)
    assert log == [("finished",)] and not runner.busy
