"""A one-line progress display for long jobs: items/s, secondary rates, ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """Counts work done and redraws one status line on stderr.

    On a terminal the line is redrawn in place at most every `interval` seconds;
    otherwise (logs, CI) a new line is printed every `log_interval` seconds.
    """

    def __init__(
        self,
        title: str,
        total: int,
        *,
        unit: str = "segments",
        extra_unit: str | None = "frames",
        stream: TextIO | None = None,
        interval: float = 0.5,
        log_interval: float = 10.0,
    ):
        self.title, self.total, self.unit, self.extra_unit = title, total, unit, extra_unit
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.extra = 0
        self._start = time.perf_counter()
        self._last_draw = 0.0
        self._drawn: tuple[int, int] | None = None  # (done, extra) of the last line drawn
        self._interactive = self.stream.isatty()
        self._interval = interval if self._interactive else log_interval

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._start

    def update(self, done: int = 1, extra: int = 0) -> None:
        self.done += done
        self.extra += extra
        now = time.perf_counter()
        if now - self._last_draw >= self._interval:
            self._last_draw = now
            self._draw(final=False)

    def line(self) -> str:
        elapsed = max(self.elapsed, 1e-9)
        rate = self.done / elapsed
        remaining = (self.total - self.done) / rate if rate > 0 else float("inf")
        eta = format_duration(remaining) if remaining != float("inf") else "?"
        percent = 100 * self.done / self.total if self.total else 100.0
        extra = f"{self.extra / elapsed:.0f} {self.extra_unit}/s, " if self.extra_unit else ""
        return (
            f"{self.title}: {self.done}/{self.total} {self.unit} ({percent:.1f}%), "
            f"{rate:.1f} {self.unit}/s, {extra}"
            f"elapsed {format_duration(elapsed)}, ETA {eta}"
        )

    def _draw(self, *, final: bool) -> None:
        end = "\n" if final or not self._interactive else ""
        prefix = "\r\x1b[K" if self._interactive else ""
        self._drawn = (self.done, self.extra)
        self.stream.write(prefix + self.line() + end)
        self.stream.flush()

    def close(self) -> None:
        if not self._interactive and self._drawn == (self.done, self.extra):
            return  # a log already holds this line: printing it again says nothing new
        self._draw(final=True)
