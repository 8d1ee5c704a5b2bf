"""When the refresh runs: the daily run at a fixed UTC time, micro-batches every 1-4 h in between.

``hotpath jobs schedule --cron`` prints the equivalent crontab lines (the production choice: cron
survives reboots and needs no resident process); without ``--cron`` the command runs
:func:`next_run` in a small foreground loop (development and demos).
"""

from __future__ import annotations

import math
import shlex
from datetime import UTC, datetime, timedelta

from hotpath.errors import BadInput

__all__ = ["next_run", "cron_lines"]


def _daily_time(daily_at: str) -> tuple[int, int]:
    try:
        hh, mm = (int(x) for x in daily_at.split(":"))
    except ValueError as exc:
        raise BadInput(f"invalid daily time {daily_at!r} (HH:MM, UTC)", field="daily_at") from exc
    if not (0 <= hh < 24 and 0 <= mm < 60):
        raise BadInput(f"invalid daily time {daily_at!r} (HH:MM, UTC)", field="daily_at")
    return hh, mm


def next_run(now: float, daily_at: str, every_s: float) -> tuple[float, str]:
    """(epoch seconds, "daily" | "micro") of the next run strictly after ``now``.

    Micro-batches fall on the grid ``daily + k * every_s`` within the day; the daily slot wins
    where both coincide.
    """
    if every_s <= 0:
        raise BadInput("the micro-batch interval must be positive", field="every")
    hh, mm = _daily_time(daily_at)
    t = datetime.fromtimestamp(now, UTC)
    daily = t.replace(hour=hh, minute=mm, second=0, microsecond=0)
    if daily.timestamp() > now:
        daily_prev = daily - timedelta(days=1)
    else:
        daily_prev, daily = daily, daily + timedelta(days=1)
    k = math.floor((now - daily_prev.timestamp()) / every_s) + 1
    micro = daily_prev.timestamp() + k * every_s
    if micro >= daily.timestamp() - 1e-6:
        return daily.timestamp(), "daily"
    return micro, "micro"


def cron_lines(daily_at: str, every_s: float, command: list[str]) -> list[str]:
    """Crontab lines (UTC) for the daily run and the micro-batches (whole hours, 1-4 h)."""
    hh, mm = _daily_time(daily_at)
    hours = every_s / 3600.0
    if hours != int(hours) or not 1 <= hours <= 4:
        raise BadInput(f"cron needs a whole-hour micro-batch interval of 1-4 h, got {every_s:.0f}s", field="every")
    step = int(hours)
    micro_hours = sorted({(hh + k * step) % 24 for k in range(1, 24 // step + 1)} - {hh})
    base = shlex.join(command)
    return [
        "CRON_TZ=UTC",
        f"{mm} {hh} * * * {base} --wait",
        f"{mm} {','.join(map(str, micro_hours))} * * * {base} --micro-batch --wait",
    ]
