"""The recommendation HTTP face: one Serve deployment doing the whole hot path in-process.

``GET {prefix}/related``, ``GET {prefix}/bestsellers``, ``GET {prefix}/metrics`` (Prometheus text),
``GET {prefix}/healthz``, ``PUT {prefix}/promos/{pid}`` (bearer token; appends to the promos topic).
Bad parameters answer 422 ``{"error", "parameter"}``. With Redis down, answers come from the
replica's local copies and the stores, marked ``"degraded": true``; 503 only when nothing can answer.
The replica also consumes the promos topic into Redis (:func:`run_promos`, on its own thread). Handle
hops cost milliseconds here, so nothing is delegated to other deployments.

With ``http_port`` (what ``make run`` deploys) every replica also serves HTTP itself on that one port
(``SO_REUSEPORT``: the kernel spreads connections over the replicas), through a bare ASGI adapter
on uvicorn: half the CPU per request of Serve's own per-request path (see :class:`_SharedPortApp`).
Serve's direct-ingress port (or proxy) answers the same, more slowly.

The handler is ``async``: the one Redis read every request makes (the user's history) is awaited on
an asyncio client, then the service runs inline on local copies (~1 ms of CPU; a thread hop per
request would cost more on 2 cores than it saves). Local-copy misses read Redis synchronously.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl

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


def _json(status: int, body: dict) -> tuple[int, bytes, str]:
    return status, orjson.dumps(body), _JSON


def _params(query: bytes) -> dict[str, str]:
    """The query string as a dict (the last of repeated names wins, as Starlette's ``dict(query_params)``)."""
    return dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True)) if query else {}


@serve.deployment(name="RecsIngress")
class RecsIngress:
    def __init__(self, settings: Settings, local: bool = True, http_port: int = 0) -> None:
        from hotpath.recs.model import parse_bestsellers, parse_related
        from hotpath.recs.service import NO_HISTORY

        from hotpath.stores.redis_fast import AsyncZReader

        self.settings = settings
        self.service = build_service(settings, local=local)
        from hotpath.ab.hook import AbHook
        from hotpath.streams.factory import open_event_log

        self.ab = AbHook.from_settings(settings, open_event_log)  # A/B experiments (no-op without a file)
        self._no_experiments = self.ab.experiments is None  # then the hook is not called at all
        self._areader = AsyncZReader(self.service.cache, settings)
        if local:
            try:
                log.info("recs replica warmed: %s", self.service.warm(masters=settings.recs.warm_masters))
            except HotpathError as exc:  # a cold replica still serves
                log.warning("recs warm-up failed: %s", exc.one_line())
        self._no_history = NO_HISTORY
        self._log = None  # the event log, opened on the first PUT of a promo
        if local and settings.recs.promos_consumer:
            _start_promos_thread(settings)
        self._parse_related = parse_related
        self._parse_bestsellers = parse_bestsellers
        if local:
            _start_gc_freezer()
            # The replica's background threads (row / list refreshers, Ray's metrics pusher) hold the
            # GIL for up to the switch interval whenever the event loop lets go of it (every epoll,
            # every send): at CPython's default 5 ms a request can wait that long several times
            # over. 0.5 ms bounds each wait at a tenth of that.
            sys.setswitchinterval(0.0005)
        self.http_port = 0
        if http_port:
            self.http_port = _start_shared_port_server(self, settings.serve.host, http_port)

    def choose(self, request: Callable[[], Request], query):
        """The one place a request's settings or variant is chosen (an experiment's bucketing and
        exposure hook in here): returns the query to serve, today the parsed one as it is.
        ``request()`` gives the Starlette request (headers, cookies) when a choice needs it."""
        return query

    async def __call__(self, request: Request) -> Response:
        """Serve's entry (its direct-ingress port or proxy): the same answers as the shared port."""
        scope = request.scope
        status, body, ctype = await self.handle(scope["method"], scope["path"], scope["query_string"], lambda: request)
        return Response(body, status_code=status, media_type=ctype)

    async def handle(self, method: str, path: str, query: bytes, request: Callable[[], Request],
                     reader=None) -> tuple[int, bytes, str]:  # fmt: skip
        """One request: ``(status, body, content type)``. ``query`` is the raw query string;
        ``request`` builds the Starlette request (headers, body) for the rare paths that need them;
        ``reader``: the :class:`AsyncZReader` of the calling event loop (default: Serve's)."""
        path = path.rstrip("/")
        s = self.settings.recs
        try:
            if path.endswith("/related"):
                q = self.choose(request, self._parse_related(_params(query), s))
                hist = await self._history(q.user_id, reader)
                if self._no_experiments:
                    return 200, self.service.related(q, hist).to_bytes(), _JSON
                a = self.ab.assign(q.user_id, q.widget, hist)
                res = self.service.related(q, hist, settings=a.settings)
                self.ab.served(res, q.user_id, q.widget, a)
                return 200, res.to_bytes(), _JSON
            if path.endswith("/bestsellers"):
                b = self.choose(request, self._parse_bestsellers(_params(query), s))
                hist = await self._history(b.user_id, reader)
                if self._no_experiments:
                    return 200, self.service.bestsellers(b, hist).to_bytes(), _JSON
                a = self.ab.assign(b.user_id, b.widget, hist)
                res = self.service.bestsellers(b, hist, settings=a.settings)
                self.ab.served(res, b.user_id, b.widget, a)
                return 200, res.to_bytes(), _JSON
            if method == "PUT" and "/promos/" in path:
                return await self._put_promo(request(), path.rpartition("/promos/")[2])
            if path.endswith("/metrics"):
                return 200, self.service.metrics.exposition(), "text/plain; version=0.0.4"
            if path.endswith("/healthz"):
                return _json(200, {"ok": True, "cache_up": self.service.gate.up, "pid": os.getpid(),
                                   "hit_rates": self.service.metrics.hit_rates()})  # fmt: skip
            return _json(404, {"error": f"no such endpoint: {path}"})
        except BadInput as exc:
            return _json(422, {"error": exc.message, "parameter": exc.field})
        except ServiceUnavailable as exc:
            log.warning("recs backend unavailable: %s", exc.one_line())
            return _json(503, {"error": exc.one_line()})
        except HotpathError as exc:
            log.exception("recs request failed")
            return _json(500, {"error": exc.one_line()})

    async def _put_promo(self, request: Request, pid: str) -> tuple[int, bytes, str]:
        """``PUT {prefix}/promos/{pid}`` with ``Authorization: Bearer <recs.admin_token>`` and a JSON body
        of :class:`~hotpath.recs.promos.PromoEvent` fields (``pid`` from the path): appended to the
        promos topic (202), so a manual change takes the same ordered path as every other event."""
        import hmac

        from hotpath.recs.promos import parse_promo
        from hotpath.streams.base import EventIn

        token = self.settings.recs.admin_token
        if token is None:
            return _json(403, {"error": "the promos admin endpoint is off (set recs.admin_token)"})
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token.get_secret_value()}".encode()):
            return _json(401, {"error": "missing or wrong bearer token"})
        try:
            body = orjson.loads(await request.body() or b"{}")
        except orjson.JSONDecodeError as exc:
            raise BadInput(f"body is not JSON: {exc}", field="body") from None
        if not isinstance(body, dict):
            raise BadInput("body must be a JSON object", field="body")
        if body.setdefault("pid", pid) != pid:
            raise BadInput("the body's pid differs from the path's", field="pid")
        body.setdefault("ts", time.time())
        value = orjson.dumps(body)
        ev = parse_promo(value, key=pid.encode())
        if self._log is None:
            from hotpath.streams.factory import open_event_log

            self._log = open_event_log(self.settings)
            await self._log.create_topic(self.settings.recs.promos_topic, self.settings.recs.promos_partitions)
        [(part, off)] = await self._log.append(self.settings.recs.promos_topic, [EventIn(value, ev.pid.encode())])
        return _json(202, {"pid": ev.pid, "topic": self.settings.recs.promos_topic, "partition": part, "offset": off})

    async def _history(self, user_id: str | None, reader=None):
        """The user's two zsets, read without blocking the loop (the one per-request Redis read);
        ``NO_HISTORY`` while Redis is down (the gate refuses at once, or the read fails)."""
        if user_id is None:
            return None
        gate = self.service.gate
        if not gate.allow():
            return self._no_history
        keys, n = self.service.user_keys(user_id)
        try:
            out = await (reader or self._areader).ztop_many(keys, n)
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
            "fallbacks": {f"{x.labels['endpoint']}:{x.labels['reason']}": x.value for f in m.fallbacks.collect()
                          for x in f.samples if x.name.endswith("_total")},  # degraded answers (metrics exporter)
        }

    def __del__(self) -> None:  # pragma: no cover - replica shutdown
        server = getattr(self, "_http_server", None)
        if server is not None:  # stop taking connections on the shared port (the other replicas do)
            server.should_exit = True
        try:
            self.ab.close()
            self.service.close()
        except Exception:
            pass


# ---------------------------------------------------------------------- the shared port
class _SharedPortApp:
    """The replica's own HTTP face: a bare ASGI callable over :meth:`RecsIngress.handle`, served by
    uvicorn (httptools) on its own thread and event loop, on a port every replica of the app binds
    with ``SO_REUSEPORT`` (the kernel spreads connections over them): one URL, N replicas.

    Serve's per-request layers (its middlewares, request wrapper, metrics per request, Starlette's
    request and response objects) cost ~0.3 ms of CPU a request here, as much as the service
    itself; what remains is uvicorn's protocol and this adapter."""

    def __init__(self, ingress: "RecsIngress", reader) -> None:
        self.ingress, self.reader = ingress, reader

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        status, body, ctype = await self.ingress.handle(
            scope["method"], scope["path"], scope["query_string"], lambda: Request(scope, receive), self.reader
        )
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", ctype.encode()), (b"content-length", b"%d" % len(body))]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def _start_shared_port_server(ingress: "RecsIngress", host: str, port: int) -> int:
    """Bind ``host:port`` with ``SO_REUSEPORT`` and serve :class:`_SharedPortApp` there from a daemon
    thread (uvloop when installed); returns the port. A port another program holds is one clear error."""
    import asyncio
    import socket

    import uvicorn

    from hotpath.stores.redis_fast import AsyncZReader

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ServiceUnavailable(f"recs: cannot serve on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    app = _SharedPortApp(ingress, AsyncZReader(ingress.service.cache, ingress.settings))
    server = uvicorn.Server(uvicorn.Config(app, http="httptools", loop="none", lifespan="off", access_log=False,
                                           log_config=None, timeout_keep_alive=75, backlog=2048, proxy_headers=False,
                                           server_header=False))  # fmt: skip

    def run() -> None:
        try:
            import uvloop

            loop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
            loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        except Exception:  # pragma: no cover - logged, the replica's Serve port still answers
            log.exception("recs: the shared-port server on %s:%d stopped", host, port)

    threading.Thread(target=run, name="recs-http", daemon=True).start()
    ingress._http_server = server
    return port


# ---------------------------------------------------------------------- the promos topic -> Redis
async def run_promos(settings: Settings, *, from_start: bool = False, stop: threading.Event | None = None,
                     idle_exit_s: float | None = None, say=lambda msg: None) -> dict:  # fmt: skip
    """Consume the promos topic into Redis (:class:`~hotpath.recs.promos.PromoApplier`), bad records to
    the DLQ topic, the next offset of each partition checkpointed in Redis after each batch.

    ``from_start``: replay from offset 0 (after Redis lost its data; old events are skipped by the
    per-pid offsets Redis still holds, so nothing old comes back). Redis or the log down: the batch
    is retried with backoff from the same offset, so nothing is lost. ``idle_exit_s``: return once
    every partition has been caught up for that long (tests, ``--once``)."""
    import asyncio

    from hotpath.recs.model import Keys
    from hotpath.recs.promos import PromoApplier, dlq_value
    from hotpath.streams.base import EventIn
    from hotpath.stores.factory import open_hot_cache
    from hotpath.streams.factory import open_event_log

    s = settings.recs
    keys = Keys(s.key_prefix)
    cache = open_hot_cache(settings)
    log_ = open_event_log(settings)
    applier = PromoApplier(s, cache)
    totals = {"applied": 0, "skipped_old": 0, "bad": 0}
    try:
        await log_.create_topic(s.promos_topic, s.promos_partitions)
        await log_.create_topic(s.promos_dlq_topic, 1)
        parts = await log_.partitions(s.promos_topic)
        nxt: dict[int, int] = {}
        backoff = 0.1
        idle_since = time.monotonic()
        while stop is None or not stop.is_set():
            try:
                got_any = False
                for p in range(parts):
                    if p not in nxt:
                        v = None if from_start else cache.get(keys.promos_next(s.promos_topic, p))
                        nxt[p] = int(v) if v else 0
                    recs = await log_.read(s.promos_topic, p, nxt[p], max_records=500)
                    if not recs:
                        continue
                    got_any = True
                    rep = applier.apply(recs)
                    if rep.bad:
                        await log_.append(s.promos_dlq_topic, [EventIn(dlq_value(r, why), r.key) for r, why in rep.bad])
                        for r, why in rep.bad:
                            log.warning("promos: bad record %s/%d@%d to %s: %s", r.topic, r.partition, r.offset,
                                        s.promos_dlq_topic, why)  # fmt: skip
                    nxt[p] = recs[-1].offset + 1
                    cache.set(keys.promos_next(s.promos_topic, p), str(nxt[p]))
                    totals["applied"] += rep.applied
                    totals["skipped_old"] += rep.skipped_old
                    totals["bad"] += len(rep.bad)
                    say(f"promos: partition {p} at {nxt[p]}: {totals}")
                    idle_since = time.monotonic()
                backoff = 0.1
                if not got_any:  # idle: one pass every 250 ms (the log is polled, cheaply, not waited on)
                    await asyncio.sleep(_PROMOS_IDLE_S)
            except (ServiceUnavailable, HotpathError) as exc:
                log.warning("promos consumer: %s; retrying in %.1f s", exc.one_line(), backoff)
                nxt.clear()  # re-read the checkpoints: nothing is skipped
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                break
    finally:
        await log_.close()
        cache.close()
    return totals


_PROMOS_IDLE_S = 0.25
"""Pause of the promos consumer between two passes that found nothing new (bounds a change's delay)."""


def _start_promos_thread(settings: Settings) -> threading.Thread:
    """The replica's promos consumer, on a thread with its own event loop (off the serving loop)."""
    import asyncio

    def run() -> None:
        while True:
            try:
                asyncio.run(run_promos(settings))
            except Exception:  # a control loop logs a failing step and goes on
                log.exception("promos consumer failed; restarting in 2 s")
                time.sleep(2.0)

    t = threading.Thread(target=run, name="recs-promos-consumer", daemon=True)
    t.start()
    return t
