"""The recommendation HTTP face: one Serve deployment doing the whole hot path in-process.

``GET {prefix}/related``, ``GET {prefix}/bestsellers``, ``GET {prefix}/metrics`` (Prometheus text),
``GET {prefix}/healthz``. Bad parameters answer 422 ``{"error", "parameter"}``; a store that is down
answers 503. Handle hops cost milliseconds here, so nothing is delegated to other deployments.

The handler is ``async``: the one Redis read every request makes (the user's history) is awaited on
an asyncio client, then the service runs inline on local copies (~1 ms of CPU; a thread hop per
request would cost more on 2 cores than it saves). Local-copy misses read Redis synchronously.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time

import orjson

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from hotpath.config import Settings
from hotpath.errors import BadInput, HotpathError, ServiceUnavailable

__all__ = ["RecsIngress", "build_service"]

log = logging.getLogger(__name__)
_JSON = "application/json"


def build_service(settings: Settings, *, local: bool = True):
    """The service object over the stores of the settings' profile (imported lazily: no Ray needed)."""
    from hotpath.recs.service import RecsService
    from hotpath.stores.factory import open_dimension_store, open_hot_cache
    from hotpath.stores.redis_fast import hgetall_many_reader, ztop_many_reader
    from hotpath.stores.rollups import open_rollup_store

    cache = open_hot_cache(settings)
    return RecsService(
        settings.recs,
        cache,
        open_dimension_store(settings),
        open_rollup_store(settings, read_only=True),
        local=local,
        ztop_many=ztop_many_reader(cache),
        # the baseline keeps redis-py's pipeline: the straightforward shape it stands for
        hgetall_many=hgetall_many_reader(cache) if local else None,
    )


_GC_FREEZE_EVERY_S = 5.0
_gc_freezer: threading.Thread | None = None


def _start_gc_freezer() -> None:
    """Move long-lived objects out of the collector's sight every few seconds (``gc.freeze``).

    Serve freezes what the constructor built; what the replica keeps afterwards (local copies
    loaded on first use: ~100 tuples per semantic list, master rows re-read in the background)
    piles up in the oldest generation, whose collections then scan hundreds of thousands of
    objects: 50-200 ms pauses of the event loop, measured in the microbench, which is the p99.
    Frozen objects are still freed by reference counting; only a reference cycle that outlives two
    young collections and is frozen before it becomes garbage is never reclaimed (rare here)."""
    global _gc_freezer
    if _gc_freezer is not None:
        return

    def run() -> None:
        while True:
            time.sleep(_GC_FREEZE_EVERY_S)
            gc.freeze()

    _gc_freezer = threading.Thread(target=run, name="recs-gc-freeze", daemon=True)
    _gc_freezer.start()


def _json(status: int, body: dict) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON)


def _ok(body: bytes) -> Response:
    return Response(body, media_type=_JSON)


@serve.deployment(name="RecsIngress")
class RecsIngress:
    def __init__(self, settings: Settings, local: bool = True) -> None:
        from hotpath.recs.model import parse_bestsellers, parse_related
        from hotpath.recs.service import NO_HISTORY

        from hotpath.stores.redis_fast import AsyncZReader

        self.settings = settings
        self.service = build_service(settings, local=local)
        self._areader = AsyncZReader(self.service.cache, settings)
        if local:
            try:
                log.info("recs replica warmed: %s", self.service.warm(masters=settings.recs.warm_masters))
            except HotpathError as exc:  # a cold replica still serves
                log.warning("recs warm-up failed: %s", exc.one_line())
        self._no_history = NO_HISTORY
        self._parse_related = parse_related
        self._parse_bestsellers = parse_bestsellers
        if local:
            _start_gc_freezer()
            # The replica's background threads (row / list refreshers, Ray's metrics pusher) hold the
            # GIL for up to the switch interval whenever the event loop lets go of it (every epoll,
            # every send): at CPython's default 5 ms a request can wait that long several times
            # over. 0.5 ms bounds each wait at a tenth of that.
            sys.setswitchinterval(0.0005)

    def choose(self, request: Request, query):
        """The one place a request's settings or variant is chosen (an experiment's bucketing and
        exposure hook in here): returns the query to serve, today the parsed one as it is."""
        return query

    async def __call__(self, request: Request) -> Response:
        path = request.url.path.rstrip("/")
        params = dict(request.query_params)
        s = self.settings.recs
        try:
            if path.endswith("/related"):
                q = self.choose(request, self._parse_related(params, s))
                res = self.service.related(q, await self._history(q.user_id))
                return _ok(res.to_bytes())
            if path.endswith("/bestsellers"):
                b = self.choose(request, self._parse_bestsellers(params, s))
                res = self.service.bestsellers(b, await self._history(b.user_id))
                return _ok(res.to_bytes())
            if path.endswith("/metrics"):
                return Response(self.service.metrics.exposition(), media_type="text/plain; version=0.0.4")
            if path.endswith("/healthz"):
                return _json(200, {"ok": True, "cache_up": self.service.gate.up, "hit_rates": self.service.metrics.hit_rates()})
            return _json(404, {"error": f"no such endpoint: {path}"})
        except BadInput as exc:
            return _json(422, {"error": exc.message, "parameter": exc.field})
        except ServiceUnavailable as exc:
            log.warning("recs backend unavailable: %s", exc.one_line())
            return _json(503, {"error": exc.one_line()})
        except HotpathError as exc:
            log.exception("recs request failed")
            return _json(500, {"error": exc.one_line()})

    async def _history(self, user_id: str | None):
        """The user's two zsets, read without blocking the loop (the one per-request Redis read);
        ``NO_HISTORY`` while Redis is down (the gate refuses at once, or the read fails)."""
        if user_id is None:
            return None
        gate = self.service.gate
        if not gate.allow():
            return self._no_history
        keys, n = self.service.user_keys(user_id)
        try:
            out = await self._areader.ztop_many(keys, n)
        except ServiceUnavailable:
            gate.failed()
            return self._no_history
        gate.succeeded()
        return out

    def stats(self) -> dict:
        m = self.service.metrics
        return {
            "hit_rates": m.hit_rates(),
            "stale_masters": sorted(self.service.stale_masters_seen()),
            "invalidation_lag_count": m.count("recs_invalidation_lag_seconds_count"),
        }

    def __del__(self) -> None:  # pragma: no cover - replica shutdown
        try:
            self.service.close()
        except Exception:
            pass
