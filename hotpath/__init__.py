"""hotpath: one Ray runtime serving real-time recommendations and wearable voice commands."""

import os as _os

# Ray reads these once, when it is first imported, and whichever hotpath module imports it first
# must find them set: without the first, Ray swaps 127.0.0.1 for the machine's external address and
# drivers cannot reach the loopback-only head; the auth mode must match the head's
# (hotpath/cluster/ray_head.py). Defaults only: an explicit environment wins.
for _key, _value in (
    ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0"),
    ("RAY_USAGE_STATS_ENABLED", "0"),
    ("RAY_AUTH_MODE", "disabled"),
):
    _os.environ.setdefault(_key, _value)

__version__ = "0.1.0"
