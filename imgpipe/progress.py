"""Progress display for long stages: a live bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def _ignore(n: int = 1) -> None:
    """Progress that nobody watches."""


class ProgressReporter:
    """Reports stage progress to stderr; ``quiet`` silences everything but errors."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.console = Console(file=self.stream, stderr=stream is None)

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(message, highlight=False, markup=False)

    @contextmanager
    def _bar(self, name: str, total: int | None) -> Iterator[Callable[[int], None]]:
        """A live bar that ends full: ``n/n`` for counted stages, ``done`` for the others."""
        counted = total is not None
        columns = (
            TextColumn(f"[bold]{name:<8}"),
            BarColumn(),
            MofNCompleteColumn() if counted else TextColumn("{task.fields[state]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task(name, total=total, state="running")

            def advance(n: int = 1) -> None:
                bar.advance(task, n)

            yield advance
            if not counted:  # drawn finished only when it finished: an exception skips this
                bar.update(task, total=1, completed=1, state="done")

    @contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        """A context for one stage; the yielded callable advances it by n items."""
        start = time.perf_counter()
        if self.quiet:
            yield _ignore
            return
        if self.console.is_terminal:
            with self._bar(name, total) as advance_bar:
                yield advance_bar
            return
        done = [0]
        step = max(1, (total or 0) // 10)

        def advance(n: int = 1) -> None:
            done[0] += n
            if done[0] % step == 0 or (total is not None and done[0] == total):
                of = f"/{total}" if total is not None else ""
                self.info(f"{name}: {done[0]}{of}")

        self.info(f"{name}: started")
        yield advance
        self.info(f"{name}: done in {time.perf_counter() - start:.1f}s")
