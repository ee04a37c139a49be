"""Run the widget's jobs (:mod:`.workers`) one at a time in a napari thread worker.

The runner owns what every job needs: the cancel event, and getting the job's events,
result and errors back to the main thread (as plain callbacks). It opens no napari
activity bar: the widget has its own progress bar and Cancel, and the activity indicator
repaints the window continuously, which under software OpenGL took ~15 % of a core from
the training (docs/benchmarks.md, "Training in the widget").
"""

from __future__ import annotations

import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from .workers import JobFailed, guarded


class JobRunner:
    """One job at a time; ``busy`` while it runs.

    ``on_event(event)``: each event a generator job yields; ``on_result(value)``: what the
    job returns; ``on_error(exc)``: an exception the job raised (the original one for a
    :class:`JobFailed`); ``on_aborted()``: the worker was quit from outside;
    ``on_finished()``: always, last.
    """

    def __init__(
        self,
        on_event: Callable[[Any], None],
        on_result: Callable[[Any], None],
        on_error: Callable[[BaseException], None],
        on_aborted: Callable[[], None],
        on_finished: Callable[[], None],
    ) -> None:
        self.on_event = on_event
        self.on_result = on_result
        self.on_error = on_error
        self.on_aborted = on_aborted
        self.on_finished = on_finished
        #: set by :meth:`cancel`; jobs check it between steps (or planes)
        self.cancel_event = threading.Event()
        self._worker: Any = None
        self._detached = False  # the widget is gone: call none of the callbacks
        self._pending: deque[tuple[Callable[..., None], tuple[Any, ...]]] = deque()
        self._delivering = False
        from qtpy.QtWidgets import QApplication

        app = QApplication.instance()
        if app is not None:
            # quitting napari waits for the workers: let a job waiting in hand_over go
            app.aboutToQuit.connect(self.cancel_event.set)

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def start(self, job: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``job(*args, **kwargs)`` in a thread worker."""
        from napari.qt.threading import create_worker

        self.cancel_event.clear()
        job = guarded(job)
        worker = create_worker(job, *args, _ignore_errors=True, **kwargs)
        try:  # we report errors ourselves (with a message meant for the user)
            worker.errored.disconnect(worker._relay_error)
        except (AttributeError, TypeError, RuntimeError):
            pass
        if hasattr(worker, "yielded"):
            worker.yielded.connect(lambda event: self.deliver(self._event, event))
        if hasattr(worker, "aborted"):
            worker.aborted.connect(lambda: self.deliver(self._aborted))
        worker.returned.connect(lambda value: self.deliver(self._result, value))
        worker.errored.connect(lambda exc: self.deliver(self._errored, exc))
        worker.finished.connect(lambda: self.deliver(self._finished))
        self._worker = worker
        worker.start()

    def cancel(self) -> bool:
        """Ask the running job to stop (False if none runs)."""
        if self._worker is None:
            return False
        self.cancel_event.set()
        return True

    def detach(self, *_: Any) -> None:
        """The widget was deleted (its viewer closed): stop the job at its next step and
        call none of the widget's callbacks again; the job still cleans up."""
        self._detached = True
        self.cancel_event.set()

    def deliver(self, handler: Callable[..., None], *args: Any) -> None:
        """Call ``handler(*args)`` for a worker signal, one at a time and in order.

        A handler that runs ``processEvents()`` (napari's activity bar did, when it
        advanced) delivers the worker's next queued signals *inside* the handler of the
        current one; unguarded, a fast job nests handlers until Python's recursion limit.
        Signals arriving while a handler runs are queued and handled by the outer call,
        after the current one.
        """
        self._pending.append((handler, args))
        if self._delivering:
            return
        self._delivering = True
        failures: list[BaseException] = []
        try:
            while self._pending:
                next_handler, next_args = self._pending.popleft()
                try:
                    next_handler(*next_args)
                except BaseException as err:  # noqa: BLE001 - the rest must still be delivered
                    failures.append(err)
        finally:
            self._delivering = False
        for err in failures[1:]:  # all are reported; the first is raised to Qt
            traceback.print_exception(err)
        if failures:
            raise failures[0]

    def _event(self, event: Any) -> None:
        if not self._detached:
            self.on_event(event)

    def _result(self, value: Any) -> None:
        if not self._detached:
            self.on_result(value)

    def _aborted(self) -> None:
        if not self._detached:
            self.on_aborted()

    def _errored(self, exc: BaseException) -> None:
        if isinstance(exc, JobFailed) and exc.__cause__ is not None:
            exc = exc.__cause__
        if not self._detached:
            self.on_error(exc)

    def _finished(self) -> None:
        worker, self._worker = self._worker, None
        try:
            gen = getattr(worker, "_gen", None)
            if gen is not None:
                gen.close()  # after an abort: run the job's cleanup
        finally:  # whatever the cleanup did, the widget must not stay busy
            if not self._detached:
                self.on_finished()
