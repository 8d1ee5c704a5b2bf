"""Counters and bounds that keep one bad device from hurting the others."""

from __future__ import annotations

import re
import time
from collections import Counter

__all__ = ["Counters", "FloodGuard", "valid_device_id", "device_from_topic"]

_DEVICE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def valid_device_id(device_id: str) -> bool:
    return bool(_DEVICE.match(device_id))


def device_from_topic(topic: str, prefix: str = "") -> str | None:
    """``{prefix}wearable/{id}/audio`` -> id, or None when the topic or the id is malformed."""
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix):].split("/")
    if len(parts) != 3 or parts[0] != "wearable" or parts[2] != "audio" or not valid_device_id(parts[1]):
        return None
    return parts[1]


class Counters(Counter):
    """Named event counters (``bad_payload``, ``flood_dropped``, ``stt_failed``...)."""

    def snapshot(self) -> dict[str, int]:
        return dict(self)


class FloodGuard:
    """A token bucket in seconds of audio: a device may send ``rate`` x real time, ``burst_s`` ahead.

    A watch streams 1 s of audio per second; a flood (a stuck retry loop, a replay) is cut off here
    before it reaches the VAD, and only for that device.
    """

    def __init__(self, rate: float = 1.5, burst_s: float = 3.0, clock=time.monotonic) -> None:
        self.rate, self.burst = rate, burst_s
        self.clock = clock
        self.tokens = burst_s
        self.last = clock()

    def allow(self, audio_s: float) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if audio_s > self.tokens + 1e-9:
            return False
        self.tokens -= audio_s
        return True
