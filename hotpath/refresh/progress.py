"""Progress accounting of a long job: rows done / total, rate, ETA, as one log line."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Progress", "PROGRESS_TAG"]

PROGRESS_TAG = "[progress]"
"""Every progress line starts with this; ``hotpath jobs status`` shows the latest one from the logs."""


class Progress:
    def __init__(
        self,
        stage: str,
        total: int,
        say: Callable[[str], None],
        *,
        every_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stage = stage
        self.total = int(total)
        self.done = 0
        self._say = say
        self._every = every_s
        self._clock = clock
        self._t0 = clock()
        self._last = float("-inf")

    @property
    def elapsed_s(self) -> float:
        return max(self._clock() - self._t0, 0.0)

    @property
    def rate(self) -> float:
        """Rows per second since the stage started."""
        e = self.elapsed_s
        return self.done / e if e > 0 else 0.0

    def line(self) -> str:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        rate = self.rate
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = f"eta {left:.0f}s" if left == left else "eta ?"
        return (f"{PROGRESS_TAG} {self.stage}: {self.done}/{self.total} ({pct:.1f}%) "
                f"{rate:.1f} rows/s, {self.elapsed_s:.1f}s elapsed, {eta}")  # fmt: skip

    def advance(self, n: int) -> None:
        self.done += int(n)
        now = self._clock()
        if now - self._last >= self._every or self.done >= self.total:
            self._last = now
            self._say(self.line())

    def finish(self) -> None:
        if self.done < self.total:
            self._say(self.line() + " (stopped early)")
