"""A progress line on a terminal's stderr for work that runs over about a second: import of
thousands, stage of 10k, refinery runs, sync. Nothing on a pipe, nothing for quick work, and
the line is wiped when the command ends, so what the command prints stays as it was.

A thread redraws it (ten times a second) because the slowest steps are single calls (one
transaction writing 10,000 files) that cannot report from inside."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO

from gitconvoy import progress

DELAY = 1.0  # seconds before anything is drawn: quick work never flickers
DELAY_VARIABLE = "CONVOY_PROGRESS_DELAY"  # another delay (the tests draw at once with 0)
WIDTH = 20  # characters of the bar
SPIN = "|/-\\"


class Activity:
    """The sink `progress.note` feeds, and the thread that draws it."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self.stream, self.label = stream, label
        self.started = time.monotonic()
        try:
            self.delay = float(os.environ.get(DELAY_VARIABLE, DELAY))
        except ValueError:
            self.delay = DELAY
        self.what: tuple[str, int | None, int | None] = ("", None, None)
        self.drawn = False
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def __call__(self, what: str, done: int | None, total: int | None) -> None:
        with self.lock:
            new_step = what != self.what[0]
            self.what = (what, done, total)
            due = new_step and time.monotonic() - self.started >= self.delay
        if due:  # a new step shows at once (a count that moves waits for the next tick)
            self._draw()

    def line(self, width: int) -> str:
        what, done, total = self.what
        elapsed = int(time.monotonic() - self.started)
        if done is not None and total:
            filled = min(WIDTH, WIDTH * done // total)
            meter = f"[{'#' * filled}{'-' * (WIDTH - filled)}] {done}/{total} "
        else:
            meter = f"{SPIN[int(time.monotonic() * 8) % 4]} "
        text = f"{self.label}: {meter}{what} ({elapsed} s)" if what else \
            f"{self.label}: {meter}({elapsed} s)"
        return text[:max(width - 1, 10)]

    def _run(self) -> None:
        if self.stop.wait(self.delay):
            return
        while not self.stop.is_set():
            self._draw()
            self.stop.wait(0.1)

    def _draw(self) -> None:
        try:
            width = os.get_terminal_size(self.stream.fileno()).columns or 80
        except (OSError, ValueError):
            width = 80
        with self.lock:
            text = self.line(width)
            self.stream.write(f"\r\x1b[K{text}")
            self.stream.flush()
            self.drawn = True

    def wipe(self) -> None:
        """Take the line away so a printed line starts clean (the next tick redraws it)."""
        with self.lock:
            if self.drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self.drawn = False

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=1)
        self.wipe()


_current: Activity | None = None


def start(label: str) -> None:
    """Listen to progress notes for the command `label`, on a terminal's stderr only."""
    global _current
    stream = sys.stderr
    isatty = getattr(stream, "isatty", None)
    if _current is not None or not (isatty and isatty()) or os.environ.get("TERM") == "dumb":
        return
    _current = Activity(stream, label)
    progress.listen(_current)


def finish() -> None:
    """Wipe the line (before the command's last words on stderr)."""
    global _current
    if _current is not None:
        progress.listen(None)
        _current.close()
        _current = None


def wipe() -> None:
    """Before a line is printed: no bar in front of it."""
    if _current is not None:
        _current.wipe()
