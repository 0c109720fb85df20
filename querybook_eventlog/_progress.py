"""A progress bar on stderr for the command line: drawn only when stderr is a
terminal, and only once the work has taken more than a second (a quick run
prints nothing)."""

from __future__ import annotations

import sys
import time

SHOW_AFTER_S = 1.0
WIDTH = 30


class Progress:
    def __init__(self, label: str, total: int, stream=None):
        self.label = label
        self.total = max(int(total), 1)
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.enabled = self.stream.isatty()
        except (AttributeError, ValueError):
            self.enabled = False
        self.started = time.monotonic()
        self.drawn = False

    def update(self, done: int, note: str = "", total: int = 0) -> None:
        if total:
            self.total = total
        if not self.enabled or time.monotonic() - self.started < SHOW_AFTER_S:
            return
        fraction = min(max(done / self.total, 0.0), 1.0)
        filled = int(fraction * WIDTH)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (WIDTH - filled)}] "
                          f"{fraction * 100:3.0f}% {note}\x1b[K")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Activity:
    """For one blocking step with no count (starting a server): the label and
    the seconds so far, redrawn by a thread of its own, under the same rules."""

    REDRAW_S = 0.25

    def __init__(self, label: str, stream=None):
        import threading

        self.progress = Progress(label, 1, stream)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, name="qbel-progress", daemon=True)

    def _run(self) -> None:
        while not self.done.wait(self.REDRAW_S):
            if not self.progress.enabled or time.monotonic() - self.progress.started < SHOW_AFTER_S:
                continue
            self.progress.stream.write(f"\r{self.progress.label} "
                                       f"{time.monotonic() - self.progress.started:.0f} s\x1b[K")
            self.progress.stream.flush()
            self.progress.drawn = True

    def __enter__(self) -> "Activity":
        if self.progress.enabled:
            self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()
        self.progress.close()
