"""Settings of the recommendation product: weights, limits, per-widget rerank rules (as data).

Everything the serving path decides by is here, so a merchandiser's change is a config change
(``HOTPATH_RECS__...`` or the YAML file), never a code fork.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

__all__ = ["WidgetRule", "RecsSettings", "CatalogSettings", "DEFAULT_WIDGETS"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WidgetRule(_Frozen):
    """How one widget reranks its candidates (see :func:`hotpath.recs.ranking.rerank`).

    ``final = base * mult + add`` where ``mult = boost^boost_power * (flash_sale_mult if flash sale)``
    and ``add = ad_bid_weight * ad_bid + (flash_sale_add if flash sale)``.
    """

    drop_out_of_stock: bool = True
    boost_power: float = Field(1.0, ge=0.0, le=4.0)
    """Exponent on the promo ``boost`` multiplier (0 ignores boosts)."""
    ad_bid_weight: float = Field(0.0, ge=0.0)
    """Additive weight per unit of ``ad_bid``: sponsored slots weigh bids more."""
    flash_sale_mult: float = Field(1.0, ge=0.0)
    flash_sale_add: float = Field(0.0, ge=0.0)
    min_rating: float = Field(0.0, ge=0.0, le=5.0)
    """Drop items whose best pid is rated below this (0 keeps all, unrated included)."""


DEFAULT_WIDGETS: dict[str, WidgetRule] = {
    "pdp_related": WidgetRule(),
    "sponsored": WidgetRule(ad_bid_weight=0.5, flash_sale_mult=1.2),
    "homepage": WidgetRule(flash_sale_mult=1.5, flash_sale_add=0.05),
    "bestsellers": WidgetRule(flash_sale_mult=1.2),
}


class CatalogSettings(_Frozen):
    """Defaults of ``hotpath catalog generate`` (small enough for tests and the demo)."""

    masters: int = Field(20_000, ge=10, le=5_000_000)
    users: int = Field(2_000, ge=1, le=10_000_000)
    departments: int = Field(12, ge=1, le=200)
    subcats_per_department: int = Field(8, ge=1, le=100)
    leaves_per_subcat: int = Field(12, ge=1, le=100)
    max_pids_per_master: int = Field(20, ge=1, le=20)
    stale_fraction: float = Field(0.05, ge=0.0, le=1.0)
    seed: int = 7


class RecsSettings(_Frozen):
    semantic_weight: float = 0.6
    coview_weight: float = 0.4

    # candidate gathering
    recent_views_n: int = Field(10, ge=0, le=200)
    """How many of the user's most recent views seed the related list."""
    recent_view_weight: float = Field(0.8, ge=0.0, le=1.0)
    """Seed weight of the most recently viewed master (the requested master weighs 1.0)."""
    recent_view_decay: float = Field(0.8, gt=0.0, le=1.0)
    """Each older view weighs this much of the one after it (interest decays with recency)."""
    recent_cats_n: int = Field(5, ge=0, le=50)
    recent_cat_weight: float = Field(0.5, ge=0.0, le=1.0)
    semantic_n: int = Field(100, ge=1, le=1000)
    coview_n: int = Field(20, ge=0, le=100)
    coview_expand_weight: float = Field(0.7, ge=0.0, le=1.0)
    """Weight of a co-viewed category relative to the category it was expanded from."""
    expanded_cats_max: int = Field(8, ge=0, le=200)
    """Keep the heaviest co-viewed categories only (each brings its best-seller list)."""
    bestsellers_per_cat: int = Field(30, ge=1, le=500)
    candidates_max: int = Field(1000, ge=10, le=100_000)
    """Prune merged candidates to this many (the design's top-1000 heap)."""

    # responses
    default_k: int = Field(20, ge=1)
    max_k: int = Field(100, ge=1, le=1000)
    default_widget: str = "pdp_related"
    widgets: dict[str, WidgetRule] = Field(default_factory=lambda: dict(DEFAULT_WIDGETS))

    # freshness
    stale_after_days: float = Field(90.0, gt=0)
    semantic_ttl_s: int = Field(24 * 3600, ge=1)
    """TTL of the Redis mirror ``master:sem:{mid}`` (hot masters only)."""
    bestsellers_ttl_s: int = Field(300, ge=1)
    """TTL of ``cat:bestsellers:{cat}`` written back after a rollup-store fallback."""
    user_recent_ttl_s: int = Field(7 * 24 * 3600, ge=1)
    local_ttl_s: float = Field(10.0, ge=0.0)
    """Replica-local copies of the co-view and best-seller sorted sets live this long (streaming data)."""
    local_semantic_ttl_s: float = Field(300.0, ge=0.0)
    """Replica-local copies of ``master:sem`` (a daily batch; ``master:{mid}`` invalidations drop them)."""
    local_master_ttl_s: float = Field(300.0, ge=0.0)
    """Replica-local master/pid attribute rows are re-read at least this often, in case an invalidation
    was lost (pub/sub delivers changes in milliseconds; this is the safety net). Each re-read costs
    ~0.2 ms of the replica's CPU (12 hashes), so 20,000 hot rows on a 60 s TTL cost ~10% of a core."""
    warm_masters: int = Field(100_000, ge=0)
    """A replica loads up to this many master rows (best-sellers first) before taking traffic."""
    invalidation_channel: str = "recs:invalidate"
    key_prefix: str = ""
    """Prefix of every Redis key the recs product uses (tests use their own)."""

    # volatile signals (promos, stock, ad bids, prices): see hotpath.recs.promos
    promos_topic: str = "promos"
    promos_dlq_topic: str = "promos.dlq"
    promos_partitions: int = Field(4, ge=1, le=256)
    promos_consumer: bool = True
    """Each ingress replica consumes the promos topic into Redis (idempotent: per-pid offset order)."""
    admin_token: SecretStr | None = None
    """Bearer token of ``PUT {route_prefix}/promos/{pid}``; unset (the default) turns the endpoint off."""

    # serving
    max_ongoing_requests: int = Field(256, ge=1)
    replicas: int = Field(1, ge=1)
    http_port: int | None = Field(None, ge=1, le=65535)
    """The port ``make run``'s replicas all serve on themselves (``SO_REUSEPORT``); None:
    ``serve.http_port + 12000``. See :mod:`hotpath.graphs.recs_app`."""
    route_prefix: str = "/v1/recs"
    app_name: str = "recs"

    catalog: CatalogSettings = CatalogSettings()

    @model_validator(mode="after")
    def _consistent(self) -> "RecsSettings":
        if self.default_widget not in self.widgets:
            raise ValueError(f"default_widget {self.default_widget!r} is not one of widgets")
        if "bestsellers" not in self.widgets:
            raise ValueError("widgets must define 'bestsellers' (the best-seller endpoint's rule)")
        if self.default_k > self.max_k:
            raise ValueError("default_k must not exceed max_k")
        return self
