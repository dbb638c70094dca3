"""Workers of the main window: the jobs it runs, their shared progress bar and cancel button."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from medae.gui.workers import Job, format_eta


class JobsMixin:
    """What ``MainWindow`` does with its workers.

    Expects ``jobs`` (a list), ``progress``, ``progress_label`` and ``cancel_button`` widgets, a status bar
    and ``report_error``, all set up by the window.
    """

    @property
    def busy(self) -> bool:
        """True while any worker runs."""
        return any(j.running for j in self.jobs)

    def run_job(
        self,
        name: str,
        fn: Callable[..., Any],
        on_done: Callable[[Any], None],
        doing: str,
        on_failed: Callable[[BaseException], None] | None = None,
    ) -> Job:
        """Runs ``fn(progress=, cancel=)`` in a worker thread; errors become dialogs (after ``on_failed``)."""
        job = Job(name, fn, self)
        job.doing = doing
        job.progress.connect(lambda *_args: self._on_job_progress(job))
        # A job that ends after the window was closed (cancelled by the closing itself) shows nothing: a box
        # opened then would keep the process alive with no window.
        job.succeeded.connect(lambda result: self._closing or self._guard(on_done, result, doing))
        if on_failed is not None:
            job.failed.connect(lambda exc: self._closing or on_failed(exc))
        job.failed.connect(lambda exc: self._closing or self.report_error(exc, doing))
        job.finished.connect(lambda: self._job_done(job))
        self.jobs.append(job)
        self.statusBar().clearMessage()  # an earlier job's last words ("Cancelled ...") are not about this one
        self.progress_label.setText(f"{_sentence(doing)}...")
        self.progress.setValue(0)
        self._show_progress(True)
        return job.start()

    def _guard(self, fn: Callable[[Any], None], result: Any, doing: str) -> None:
        try:
            fn(result)
        except Exception as exc:  # a failing result handler must not leave the window half-updated silently
            self.report_error(exc, doing)

    def _on_job_progress(self, job: Job) -> None:
        # One bar for all jobs: it follows the newest, the one Cancel stops.
        running = [j for j in self.jobs if j.running]
        if running and running[-1] is job:
            self._show_job_progress(job)

    def _show_job_progress(self, job: Job) -> None:
        self.progress.setValue(int(job.fraction * 1000))
        if job.cancel_event.is_set():
            # Its time left is for work that will not be done, and its stage is over: say it is stopping.
            self.progress_label.setText(f"{_sentence(job.doing)}: stopping...")
            return
        eta = format_eta(job.seconds_left())
        message = job.message or f"{_sentence(job.doing)}..."
        # Say which job the bar (and Cancel) is about, unless its own message says it already.
        if sum(j.running for j in self.jobs) > 1 and job.doing.lower() not in message.lower():
            message = f"{_sentence(job.doing)}: {message}"
        self.progress_label.setText(" - ".join(t for t in (message, eta) if t))

    def _job_done(self, job: Job) -> None:
        if job in self.jobs:
            self.jobs.remove(job)
        job.deleteLater()
        running = [j for j in self.jobs if j.running]
        if not running:
            self._show_progress(False)
        else:  # the bar goes back to a job still running, not the last words of the one that ended
            self._show_job_progress(running[-1])

    def _cancel_named(self, *names: str) -> None:
        for job in self.jobs:
            if job.name in names:
                job.cancel()

    def _show_progress(self, visible: bool) -> None:
        for w in (self.progress_label, self.progress, self.cancel_button):
            w.setVisible(visible)

    def cancel_jobs(self) -> None:
        """Asks the newest running job to stop, the one the progress bar shows (Cancel again stops the next).

        So stopping a slow scan load does not also end a folder run started before it.
        """
        live = [j for j in self.jobs if j.running and not j.cancel_event.is_set()]
        if live:
            live[-1].cancel()
            # At once: the stage and time left of a job asked to stop would stay until its next report.
            self._show_job_progress(live[-1])

    def cancel_all_jobs(self) -> None:
        """Asks every running job to stop (closing the window)."""
        for job in self.jobs:
            job.cancel()


def _sentence(doing: str) -> str:
    """``doing`` as the start of a sentence: its first letter raised, file names kept as they are."""
    return doing[:1].upper() + doing[1:]
