"""Requests, candidates and answers of the recommendation endpoints, and their validation.

Parsing lives here so the HTTP face stays thin: :func:`parse_related` / :func:`parse_bestsellers`
turn query parameters into a typed query or raise :class:`~hotpath.errors.BadInput` naming the
parameter (the HTTP layer maps it to 422).

**Keys** (:class:`Keys`): Redis key names of the recommendation product, in one place.

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

import re
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

import orjson

from hotpath.errors import BadInput
from hotpath.recs.settings import RecsSettings

__all__ = ["Keys", "ALL_CATEGORIES", "RelatedQuery", "BestsellersQuery", "PidAttrs", "Candidate", "Item", "RecsResult", "parse_related", "parse_bestsellers", "SIGNALS"]


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


SIGNALS = ("semantic", "best_seller", "co_view", "user_interest", "promo")
"""Every signal an item can name as a reason it is in the list."""

_USER_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CAT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True, slots=True)
class RelatedQuery:
    user_id: str | None
    master_id: str | None
    """Canonical lower-case UUID text."""
    widget: str
    k: int


@dataclass(frozen=True, slots=True)
class BestsellersQuery:
    category_id: str | None
    user_id: str | None
    k: int
    widget: str = "bestsellers"


@dataclass(frozen=True, slots=True)
class PidAttrs:
    """One seller pid's serving attributes. Missing attributes are ``None`` (never an error)."""

    pid: str
    price: float | None = None
    rating: float | None = None
    boost: float = 1.0
    out_of_stock: bool = False
    ad_bid: float = 0.0
    flash_sale: bool = False


@dataclass(slots=True)
class Candidate:
    """A master gathered for a list, with the signal scores that brought it."""

    master_id: str
    semantic: float = 0.0
    best_seller: float = 0.0
    co_view: float = 0.0
    user_interest: float = 0.0
    base: float = 0.0


@dataclass(frozen=True, slots=True)
class Item:
    master_id: str
    pid: str | None
    category: str | None
    score: float
    signals: tuple[str, ...]
    scores: dict[str, float]
    price: float | None = None
    rating: float | None = None
    title: str | None = None
    """What a front end renders (when the catalog has it): ``title``, ``image_url``, ``url``."""
    image_url: str | None = None
    url: str | None = None

    def to_json(self) -> dict:
        d = {
            "master_id": self.master_id,
            "pid": self.pid,
            "category": self.category,
            "score": self.score,
            "signals": list(self.signals),
            "scores": self.scores,
            "price": self.price,
            "rating": self.rating,
        }
        for f in ("title", "image_url", "url"):  # only those the catalog has
            v = getattr(self, f)
            if v is not None:
                d[f] = v
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Item":
        g = d.get
        return cls(d["master_id"], d["pid"], d["category"], d["score"], tuple(d["signals"]), d["scores"], d["price"],
                   d["rating"], g("title"), g("image_url"), g("url"))  # fmt: skip


class RecsResult:
    """An answer: its items, the fallbacks that gave it, the stale masters it served.

    The service builds the items' JSON form directly (``item_dicts``: what :meth:`Item.to_json`
    gives) and makes :class:`Item` objects only when ``items`` is read; ``to_json`` / ``to_bytes``
    (the HTTP path) never build them.
    """

    __slots__ = ("_items", "_dicts", "fallbacks", "stale_masters", "widget", "meta", "degraded")

    def __init__(
        self,
        items: list[Item] | None = None,
        fallbacks: tuple[str, ...] = (),
        stale_masters: tuple[str, ...] = (),
        widget: str = "",
        meta: dict | None = None,
        *,
        item_dicts: list[dict] | None = None,
        degraded: bool = False,
    ) -> None:
        self._items = items
        self._dicts = item_dicts
        self.fallbacks = fallbacks
        """Why a fallback answer was given (``unknown_master``, ``no_history``, ...); empty when none."""
        self.stale_masters = stale_masters
        self.widget = widget
        self.meta = meta if meta is not None else {}
        self.degraded = degraded
        """Answered while the hot cache was down: from local copies and the stores, possibly stale."""

    @property
    def items(self) -> list[Item]:
        if self._items is None:
            self._items = [Item.from_json(d) for d in self._dicts or ()]
        return self._items

    def to_json(self) -> dict:
        return {
            "items": self._dicts if self._dicts is not None else [i.to_json() for i in self._items or ()],
            "widget": self.widget,
            "fallbacks": list(self.fallbacks),
            "stale_masters": list(self.stale_masters),
            "degraded": self.degraded,
            **({"meta": self.meta} if self.meta else {}),
        }

    def to_bytes(self) -> bytes:
        """The JSON body (orjson: same values as ``json.dumps(to_json())``, a fraction of the CPU)."""
        return orjson.dumps(self.to_json())

    def __repr__(self) -> str:
        return f"RecsResult(items={self.items!r}, fallbacks={self.fallbacks!r}, stale_masters={self.stale_masters!r}, widget={self.widget!r})"


# --------------------------------------------------------------------------- validation
def _one(params: Mapping[str, str], name: str) -> str | None:
    v = params.get(name)
    if v is None:
        return None
    v = v.strip()
    return v or None


def _parse_k(params: Mapping[str, str], settings: RecsSettings) -> int:
    raw = _one(params, "k")
    if raw is None:
        return settings.default_k
    try:
        k = int(raw)
    except ValueError:
        raise BadInput(f"k must be an integer, got {raw[:32]!r}", field="k") from None
    if not 1 <= k <= settings.max_k:
        raise BadInput(f"k must be between 1 and {settings.max_k}, got {k}", field="k")
    return k


def _parse_user(params: Mapping[str, str]) -> str | None:
    raw = _one(params, "user_id")
    if raw is not None and not _USER_RE.match(raw):
        raise BadInput("user_id must be 1-64 characters of [A-Za-z0-9_.:-]", field="user_id")
    return raw


def parse_master_id(raw: str | None, name: str = "master_id") -> str | None:
    if raw is None:
        return None
    try:
        return str(UUID(raw))
    except ValueError:
        raise BadInput(f"{name} must be a UUID, got {raw[:40]!r}", field=name) from None


def _check_known(params: Mapping[str, str], known: tuple[str, ...]) -> None:
    for name in params:
        if name not in known:
            raise BadInput(f"unknown parameter {name[:40]!r} (expected one of {', '.join(known)})", field=name[:40])


def parse_related(params: Mapping[str, str], settings: RecsSettings) -> RelatedQuery:
    _check_known(params, ("user_id", "master_id", "widget", "k"))
    user = _parse_user(params)
    master = parse_master_id(_one(params, "master_id"))
    widget = _one(params, "widget") or settings.default_widget
    if widget not in settings.widgets:
        raise BadInput(
            f"widget must be one of {', '.join(sorted(settings.widgets))}, got {widget[:40]!r}", field="widget"
        )
    return RelatedQuery(user_id=user, master_id=master, widget=widget, k=_parse_k(params, settings))


def parse_bestsellers(params: Mapping[str, str], settings: RecsSettings) -> BestsellersQuery:
    _check_known(params, ("category_id", "user_id", "k"))
    user = _parse_user(params)
    cat = _one(params, "category_id")
    if cat is not None and not _CAT_RE.match(cat):
        raise BadInput("category_id must be 1-64 characters of [A-Za-z0-9_.-]", field="category_id")
    return BestsellersQuery(category_id=cat, user_id=user, k=_parse_k(params, settings))
