"""The recommendation product's Redis key names: now in :mod:`hotpath.recs.model` (``Keys``,
``ALL_CATEGORIES``); this name stays for the importers outside the recs package (the refresh jobs,
their tests and benchmarks), so they can move at their own pace."""

from hotpath.recs.model import ALL_CATEGORIES, Keys

__all__ = ["Keys", "ALL_CATEGORIES"]
