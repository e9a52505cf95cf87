"""Progress of a run: candidates n/N, the current stage and an ETA; quiet when asked (e.g. in CI).

In a terminal, :meth:`Progress.candidates` shows a `rich <https://rich.readthedocs.io>`_
progress bar (``validation 3/23 [ease] fitting ease  0:00:41 remaining``) that
the current stage updates in place; :meth:`Progress.info` lines scroll above it.
Elsewhere (a pipe, a log file) the same facts are plain lines, one per stage and
one per candidate with its ETA (the average time per finished candidate so far).
With ``quiet`` nothing is written.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TextIO

__all__ = ["Progress"]


class Progress:
    """Progress lines and bars on ``stream`` (stderr by default).

    Parameters
    ----------
    quiet : bool
        Write nothing.
    stream : text stream, optional
        Where to write; default ``sys.stderr``.
    live : bool, optional
        Draw a live bar; default: when ``stream`` is a terminal.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> progress = Progress(stream=out)
    >>> with progress.candidates("validation", 2) as start:
    ...     for name in ("pop", "ease"):
    ...         start(name)
    ...         with progress.step(f"[{name}] fitting"):
    ...             pass
    >>> print(out.getvalue().replace("\\n\\n", "\\n"))  # doctest: +ELLIPSIS
      validation 1/2: pop
      [pop] fitting ...
      [pop] fitting: done in 0.00s
      validation 2/2: ease (ETA ...)
      [ease] fitting ...
      [ease] fitting: done in 0.00s
    <BLANKLINE>
    """

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        is_tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.live = (is_tty if live is None else live) and not quiet
        self._bar: Any = None  # the rich Progress of the current candidates() loop
        self._task: Any = None

    def info(self, message: str) -> None:
        """One line; above the bar while a bar is drawn."""
        if self.quiet:
            return
        if self._bar is not None and self.live:
            self._bar.console.print(message, markup=False, highlight=False, soft_wrap=True)
        else:
            print(message, file=self.stream, flush=True)

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        """A stage of the current candidate: the bar's stage text, or a start and a done line."""
        start = time.perf_counter()
        if self._bar is not None and self.live:
            self._bar.update(self._task, stage=label)
            yield
            return
        self.info(f"  {label} ...")
        yield
        self.info(f"  {label}: done in {time.perf_counter() - start:.2f}s")

    @contextmanager
    def candidates(self, phase: str, total: int) -> Iterator[Callable[[str], None]]:
        """Count ``total`` candidates; call the yielded ``start(name)`` as each one begins."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        bar = RichProgress(
            TextColumn(f"{phase}"), MofNCompleteColumn(), BarColumn(bar_width=20), TimeElapsedColumn(),
            TextColumn("eta"), TimeRemainingColumn(), TextColumn("{task.fields[stage]}"),
            console=console, disable=not self.live, transient=True,
            speed_estimate_period=24 * 3600,  # a candidate can take minutes: keep every sample
        )
        task = bar.add_task(phase, total=total, stage="")
        self._bar, self._task = bar, task
        count = 0

        def start(name: str) -> None:
            nonlocal count
            if count:
                bar.advance(task)
            count += 1
            if self.live:
                bar.update(task, stage=f"{name}")
                return
            # rich's own estimate needs two samples inside its window; the plain line uses the
            # average so far (elapsed per finished candidate times those left)
            state = bar.tasks[0]
            eta = ""
            if state.completed and state.elapsed:
                left = state.elapsed / state.completed * (state.total - state.completed)
                eta = f" (ETA {timedelta(seconds=round(left))})"
            self.info(f"  {phase} {count}/{total}: {name}{eta}")

        try:
            with bar:
                yield start
                bar.advance(task)
        finally:
            self._bar = self._task = None
        if self.live and not self.quiet:
            elapsed = bar.tasks[0].finished_time or bar.tasks[0].elapsed or 0.0
            self.info(f"  {phase}: {total}/{total} candidates in {timedelta(seconds=round(elapsed))}")
