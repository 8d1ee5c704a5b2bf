"""Redis key names of the recommendation product, in one place.

=============================  ======================================================  =========
key                            holds                                                    type
=============================  ======================================================  =========
master:sem:{mid}               related master -> similarity (daily batch, TTL 24 h)    zset
master:meta:{mid}              cat, title, inference_ts (epoch s)                      hash
master:pids:{mid}              pid -> metadata JSON                                    hash
pid:attr:{pid}                 price, rating, master                                   hash
promo:{pid}                    boost, out_of_stock, ad_bid, flash_sale                 hash
cat:co_view:{cat}              co-viewed category -> score (top 20)                    zset
cat:bestsellers:{cat}          master -> sales (``_all`` for the whole catalog)        zset
user:recent_views:{uid}        master -> view time (epoch s)                           zset
user:recent_cats:{uid}         category -> decaying interest                           zset
recs:refresh_queue             stale master -> time queued (read by the refresh job)   zset
recs:changes                   ``pid:{pid}`` / ``master:{mid}`` -> time changed         zset
recs:consumer:{topic}:{p}      the promos consumer's next offset of partition p         string
=============================  ======================================================  =========

A change to a pid's attributes or promo is announced on the invalidation channel as
``pid:{pid}`` (or ``master:{mid}``), which replicas apply to their local copies; ``cat:{cat}``
drops a category's local co-view / best-seller copies (re-read on next use). Writers of volatile
signals also record each change in ``recs:changes`` (pruned to the last hour), which a replica
re-reads when its subscription comes back after a loss (messages published meanwhile are gone).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Keys", "ALL_CATEGORIES"]

ALL_CATEGORIES = "_all"
"""Pseudo-category of the catalog-wide best-seller list."""


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = ""

    def sem(self, mid: str) -> str:
        return f"{self.prefix}master:sem:{mid}"

    def meta(self, mid: str) -> str:
        return f"{self.prefix}master:meta:{mid}"

    def pids(self, mid: str) -> str:
        return f"{self.prefix}master:pids:{mid}"

    def attr(self, pid: str) -> str:
        return f"{self.prefix}pid:attr:{pid}"

    def promo(self, pid: str) -> str:
        return f"{self.prefix}promo:{pid}"

    def coview(self, cat: str) -> str:
        return f"{self.prefix}cat:co_view:{cat}"

    def bestsellers(self, cat: str) -> str:
        return f"{self.prefix}cat:bestsellers:{cat}"

    def recent_views(self, uid: str) -> str:
        return f"{self.prefix}user:recent_views:{uid}"

    def recent_cats(self, uid: str) -> str:
        return f"{self.prefix}user:recent_cats:{uid}"

    @property
    def refresh_queue(self) -> str:
        return f"{self.prefix}recs:refresh_queue"

    def promos_next(self, topic: str, partition: int) -> str:
        """The promos consumer's checkpoint: the next offset of a partition to apply."""
        return f"{self.prefix}recs:consumer:{topic}:{partition}"

    @property
    def changes(self) -> str:
        return f"{self.prefix}recs:changes"

    def channel(self, name: str) -> str:
        return f"{self.prefix}{name}"
