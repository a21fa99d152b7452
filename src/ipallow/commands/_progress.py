"""A small progress line on stderr, for commands whose work can take more than a second.

Shown only when stderr is a terminal (never in pipes, logs, cron mail or
``--json`` runs) and only once the work has lasted ``delay`` seconds, so quick
runs print nothing.  Drawing happens in a daemon thread a few times a second;
the worker only stores a number (``update``), so the hot loop pays nothing.
When nothing is drawn, no thread is started at all.

    with Progress("filtering", total=os.path.getsize(path), unit="B") as bar:
        for block in blocks:
            ...
            bar.update(bytes_done)

Not a command: ``register`` is a no-op because ``ipallow.cli`` registers every
module of this package.
"""

from __future__ import annotations

import _thread
import os
import sys
import time

TYPE_CHECKING = False           # typing is 2 ms of a start-up; only type checkers read this
if TYPE_CHECKING:
    import threading
    from typing import IO

from ipallow.commands._format import BYTES, COUNT, human

__all__ = ["Progress", "enabled_for"]


def register(subparsers) -> None:  # noqa: ARG001 - see the module docstring
    """Nothing: this module is a helper, not a command."""


def enabled_for(stream: IO[str]) -> bool:
    """Whether a progress line may be drawn on ``stream`` (a terminal, not TERM=dumb)."""
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):    # closed or not a real file
        return False


# The progress lines open now, outermost first.  Only the innermost one draws: compile's
# 'compiling FILE' waits while the loader's 'loading FILE' is up instead of taking turns
# with it on the one terminal line.  One lock for all of them: they share that line.
_OPEN: list["Progress"] = []
# threading (0.6 ms of a start-up) is imported only when a line is drawn; its Lock is this one.
_SCREEN = _thread.allocate_lock()


def _default_delay() -> float:
    """1 second, or ``$IPALLOW_PROGRESS_DELAY`` (seconds; 0 shows the line at once)."""
    try:
        delay = float(os.environ.get("IPALLOW_PROGRESS_DELAY", "1"))
    except ValueError:
        return 1.0
    return delay if delay >= 0 else 1.0


class Progress:
    """A throttled one-line progress display on a terminal.

    Arguments:
        label: what is being done ("loading list", "filtering").
        total: the amount of work (bytes, items), or None for a bare timer.
        unit: "B" for bytes (shown as KiB/MiB), anything else is a count suffix.
        stream: where to draw (default stderr).
        delay: seconds of work before anything is drawn (default 1, or
            ``$IPALLOW_PROGRESS_DELAY``); 0 draws at once.
        enabled: force on/off; default: only when ``stream`` is a terminal.
    """

    WIDTH = 24
    INTERVAL = 0.2

    def __init__(self, label: str, total: float | None = None, *, unit: str = "",
                 stream: IO[str] | None = None, delay: float | None = None,
                 enabled: bool | None = None) -> None:
        self.label = label
        self.total = total
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.delay = _default_delay() if delay is None else delay
        self.enabled = enabled_for(self.stream) if enabled is None else enabled
        self.done = 0.0
        self._start = time.monotonic()
        self._stop: threading.Event | None = None       # both made when drawing starts
        self._thread: threading.Thread | None = None
        self._drawn = False

    def __enter__(self) -> "Progress":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self._start = time.monotonic()
        if self.enabled and self._thread is None:
            import threading
            self._stop = threading.Event()
            with _SCREEN:
                _OPEN.append(self)
            if self.delay <= 0:
                self._draw()        # at once, before the work starts
            self._thread = threading.Thread(target=self._run, name="ipallow-progress", daemon=True)
            self._thread.start()

    def update(self, done: float) -> None:
        """Record the amount of work done so far (absolute)."""
        self.done = done

    def _run(self) -> None:
        if self._stop.wait(self.delay):
            return
        while True:
            self._draw()
            if self._stop.wait(self.INTERVAL):
                return

    def line(self) -> str:
        """The text of the progress line for the current state."""
        elapsed = max(time.monotonic() - self._start, 1e-9)
        done = self.done
        units = BYTES if self.unit == "B" else COUNT
        rate = f"{human(done / elapsed, units)}{'' if self.unit == 'B' else ' '}/s"
        if self.total:
            fraction = min(done / self.total, 1.0)
            filled = int(fraction * self.WIDTH)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            left = (elapsed / fraction - elapsed) if fraction > 0 else 0.0
            return (f"{self.label} [{bar}] {fraction * 100:5.1f}%  "
                    f"{human(done, units)}  {rate}  {elapsed:.0f}s, ~{left:.0f}s left")
        if done:
            return f"{self.label}: {human(done, units)}  {rate}  {elapsed:.0f}s"
        return f"{self.label}... {elapsed:.0f}s"

    def _draw(self) -> None:
        with _SCREEN:
            if _OPEN and _OPEN[-1] is not self:
                return              # an inner line is up; this one resumes when it closes
            try:
                self.stream.write("\r\x1b[K" + self.line())
                self.stream.flush()
                self._drawn = True
            except (OSError, ValueError):
                self._stop.set()

    def message(self, text: str) -> None:
        """Print a diagnostic line on the stream without garbling the progress line."""
        with _SCREEN:
            for shown in _OPEN:
                if shown._drawn and shown.stream is self.stream:
                    self.stream.write("\r\x1b[K")
                    shown._drawn = False
            if self._drawn:
                self.stream.write("\r\x1b[K")
                self._drawn = False
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        """Stop drawing and erase the line (so the next message starts clean)."""
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with _SCREEN:
            if self in _OPEN:
                _OPEN.remove(self)
            if self._drawn:
                try:
                    self.stream.write("\r\x1b[K")
                    self.stream.flush()
                except (OSError, ValueError):
                    pass
                self._drawn = False
