"""The Druid :class:`~hotpath.stores.rollups.RollupStore` of the full profile.

Writes go to Kafka, reads come from Druid SQL:

    record_orders / record_order_columns  -> JSON orders on ``druid.topic`` (the Kafka EventLog: batches)
    record_order_batch                    -> the same, in one Kafka *transaction* per batch together
                                             with a marker ``{source}:{partition} -> next offset`` on
                                             the compacted ``druid.offsets_topic``: a replayed batch
                                             skips the offsets the last committed marker covers
    Kafka indexing supervisor (Druid)     -> rollup per (cat, master) and 5-minute bucket of units,
                                             revenue and the line count (exactly once: Druid commits
                                             Kafka offsets with its segments; read_committed)
    top_sellers / top_sellers_all         -> ``POST /druid/v2/sql`` on the broker (httpx, keep-alive)

Writes are visible to reads once Druid has ingested them (seconds; ``hotpath bench druid`` measures
it). A store reads its own writes: the first read after a write waits (up to ``druid.read_your_writes_s``)
until the ingestion task's Kafka offsets are past what this store produced, so a loader that writes and
then reads (``hotpath catalog load``) sees its orders; other readers are eventually consistent. ``since_ms`` is rounded down to its 5-minute
bucket (rows are stored per bucket). ``since_ms=None`` means everything Druid holds, which the late-data
policy of the supervisor spec bounds to about the trailing day (``docs/services.md``).

Metrics (prometheus-client, default registry, also :attr:`DruidRollups.stats`):
``hotpath_druid_query_seconds`` (histogram, label ``query``), ``hotpath_druid_query_errors_total``.
"""

from __future__ import annotations

from typing import NoReturn

import asyncio
import json
import threading
import time
from collections.abc import Iterable, Sequence

import httpx
import numpy as np
from prometheus_client import Counter, Histogram

from hotpath.config import Settings
from hotpath.errors import BadInput, ServiceUnavailable, StoreError
from hotpath.stores.rollup_base import ALL, OrderEvent, RollupStore

__all__ = ["DruidRollups", "BUCKET_MS", "QUERY_SECONDS"]

BUCKET_MS = 5 * 60 * 1000
QUERY_SECONDS = Histogram(
    "hotpath_druid_query_seconds",
    "Druid SQL query latency seen by the rollup store",
    ["query"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
)
QUERY_ERRORS = Counter("hotpath_druid_query_errors_total", "Druid SQL queries that failed", ["query"])


_UNREACHABLE = ("ChannelException", "Faulty channel", "Connection refused", "ConnectException", "ServiceUnavailable",
                # an indexer that restarted without the task the broker still routes to (recovery)
                "Could not find segment walker")
"""A 500 with one of these in it: a data server the broker still routes to is down (transient)."""


class _Loop:
    """One asyncio loop in a daemon thread, for the aiokafka producers of a sync store."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="druid-rollups-kafka", daemon=True)
        self.thread.start()

    def run(self, coro, timeout_s: float = 60.0):  # noqa: ANN001, ANN201
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def close(self) -> None:
        async def drain() -> None:
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        try:
            self.run(drain(), 10)
        except Exception:  # noqa: BLE001 - closing
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


class DruidRollups(RollupStore):
    """Orders to Kafka for Druid's supervisor to roll up; top sellers from Druid SQL."""

    def __init__(self, settings: Settings, *, topic: str | None = None, datasource: str | None = None) -> None:
        d = settings.druid
        self.settings = settings
        self.topic = topic or d.topic
        self.datasource = datasource or d.datasource
        self.offsets_topic = d.offsets_topic
        self.timeout_s = d.query_timeout_s
        self.top_query = d.top_query
        self._http = httpx.Client(timeout=self.timeout_s, limits=httpx.Limits(max_keepalive_connections=8))
        self._lock = threading.Lock()
        self._loop: _Loop | None = None
        self._producer = None
        self._log = None  # KafkaEventLog for the plain orders, made on the loop thread
        self._txn: dict[tuple[str, int], object] = {}
        self._next: dict[tuple[str, int], int] = {}
        self.stats = {"queries": 0, "query_errors": 0, "produced": 0, "waits": 0}
        self.read_your_writes_s = d.read_your_writes_s
        self._pending: dict[int, int] = {}  # partition -> highest offset this store wrote, not yet seen ingested
        self.refresher = None
        self._refresher_cache = None

    def attach_refresher(self, refresher, cache=None) -> None:  # noqa: ANN001
        """Own a running :class:`~hotpath.stores.bestsellers_refresh.BestsellerRefresher` (and its
        cache): :meth:`close` stops it."""
        self.refresher, self._refresher_cache = refresher, cache

    # ------------------------------------------------------------------ SQL
    def sql(self, query: str, parameters: Sequence[tuple[str, object]] = (), *, name: str = "sql") -> list[list]:
        """Rows (arrays) of a Druid SQL query; an unknown datasource (nothing ingested yet) gives []."""
        body = {
            "query": query,
            "resultFormat": "array",
            "parameters": [{"type": t, "value": v} for t, v in parameters],
            "context": {"timeout": int(self.timeout_s * 1000)},
        }
        r = self._post(self.settings.druid.sql_url, body, name)
        if r.status_code == 200:
            return r.json()
        if r.status_code == 400 and ("not found" in r.text and self.datasource in r.text):
            return []  # no row ingested yet: the datasource does not exist
        self._fail(r, name, "Druid SQL failed")

    def _where(self, cat_id: str | None, since_ms: int | None) -> tuple[str, list[tuple[str, object]]]:
        where, params = [], []
        if cat_id is not None and cat_id != ALL:
            where.append("cat = ?")
            params.append(("VARCHAR", cat_id))
        if since_ms is not None:
            where.append("__time >= MILLIS_TO_TIMESTAMP(?)")
            params.append(("BIGINT", int(since_ms) // BUCKET_MS * BUCKET_MS))
        return (" WHERE " + " AND ".join(where) if where else ""), params

    def wait_ingested(self, timeout_s: float | None = None) -> bool:
        """Wait until Druid's ingestion task has read past every order this store wrote (its current
        Kafka offsets, from the supervisor's status); False when ``timeout_s`` passed first."""
        if not self._pending:
            return True
        timeout_s = self.read_your_writes_s if timeout_s is None else timeout_s
        url = f"{self.settings.druid.overlord_url}/druid/indexer/v1/supervisor/{self.datasource}/status"
        deadline = time.monotonic() + timeout_s
        self.stats["waits"] += 1
        while True:
            try:
                r = self._http.get(url)
                payload = r.json().get("payload", {}) if r.status_code == 200 else {}
            except (httpx.HTTPError, ValueError):
                payload = {}
            current: dict[int, int] = {}
            for task in [*payload.get("activeTasks", []), *payload.get("publishingTasks", [])]:
                for part, off in (task.get("currentOffsets") or {}).items():
                    current[int(part)] = max(current.get(int(part), -1), int(off))
            if all(current.get(p, -1) > off for p, off in self._pending.items()):
                self._pending.clear()
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)

    def top_sellers(self, cat_id: str, n: int, *, since_ms: int | None = None) -> list[tuple[str, float]]:
        n = _check_n(n)
        self.wait_ingested()
        if self.top_query == "native":
            return self._top_native(cat_id, n, since_ms)
        where, params = self._where(cat_id, since_ms)
        rows = self.sql(
            f'SELECT master, SUM(units) AS s FROM "{self.datasource}"{where}'
            f" GROUP BY master ORDER BY s DESC, master ASC LIMIT {n}",
            params,
            name="top_sellers",
        )
        return [(m, float(s)) for m, s in rows if s]

    def native(self, query: dict, *, name: str = "native") -> list[dict]:
        """Rows of a native Druid query (JSON over HTTP to the broker)."""
        url = self.settings.druid.sql_url.removesuffix("/sql")
        r = self._post(url, {**query, "context": {"timeout": int(self.timeout_s * 1000)}}, name)
        if r.status_code == 200:
            return r.json()
        self._fail(r, name, "Druid query failed")

    def _post(self, url: str, body: dict, name: str) -> httpx.Response:
        """One timed query to the broker; an unreachable broker is :class:`ServiceUnavailable`."""
        t0 = time.perf_counter()
        try:
            return self._http.post(url, json=body)
        except httpx.HTTPError as exc:
            QUERY_ERRORS.labels(name).inc()
            self.stats["query_errors"] += 1
            raise ServiceUnavailable(f"Druid broker {url}: {type(exc).__name__}: {exc}") from exc
        finally:
            QUERY_SECONDS.labels(name).observe(time.perf_counter() - t0)
            self.stats["queries"] += 1

    def _fail(self, r: httpx.Response, name: str, what: str) -> NoReturn:
        """A failed answer, counted: transient (busy, recovering) as ServiceUnavailable, else StoreError."""
        QUERY_ERRORS.labels(name).inc()
        self.stats["query_errors"] += 1
        if r.status_code in (502, 503, 504) or (r.status_code == 500 and any(w in r.text for w in _UNREACHABLE)):
            raise ServiceUnavailable(f"Druid broker answered HTTP {r.status_code}: {r.text[:200]}")
        raise StoreError(f"{what} (HTTP {r.status_code}): {r.text[:300]}")

    def _top_native(self, cat_id: str, n: int, since_ms: int | None) -> list[tuple[str, float]]:
        start = "1970-01-01" if since_ms is None else _iso(int(since_ms) // BUCKET_MS * BUCKET_MS)
        query: dict = {
            "queryType": "groupBy",
            "dataSource": self.datasource,
            "intervals": [f"{start}/2200-01-01"],
            "granularity": "all",
            "dimensions": ["master"],
            "aggregations": [{"type": "longSum", "name": "s", "fieldName": "units"}],
            "limitSpec": {
                "type": "default",
                "limit": n,
                "columns": [
                    {"dimension": "s", "direction": "descending", "dimensionOrder": "numeric"},
                    {"dimension": "master", "direction": "ascending", "dimensionOrder": "lexicographic"},
                ],
            },
        }
        if cat_id != ALL:
            query["filter"] = {"type": "equals", "column": "cat", "matchValueType": "STRING", "matchValue": cat_id}
        rows = self.native(query, name="top_sellers")
        return [(r["event"]["master"], float(r["event"]["s"])) for r in rows if r["event"]["s"]]

    def top_sellers_all(self, n: int, *, since_ms: int | None = None) -> dict[str, list[tuple[str, float]]]:
        n = _check_n(n)
        self.wait_ingested()
        where, params = self._where(None, since_ms)
        rows = self.sql(
            f'SELECT cat, master, SUM(units) AS s FROM "{self.datasource}"{where} GROUP BY cat, master',
            params,
            name="top_sellers_all",
        )
        by_cat: dict[str, list[tuple[str, float]]] = {}
        total: dict[str, float] = {}
        for cat, m, s in rows:
            if not s:
                continue
            by_cat.setdefault(cat, []).append((m, float(s)))
            total[m] = total.get(m, 0.0) + float(s)
        out = {cat: sorted(v, key=_best_first)[:n] for cat, v in by_cat.items()}
        out[ALL] = sorted(total.items(), key=_best_first)[:n]
        return out

    def top_sellers_windows(
        self, cat_id: str, n: int, *, now_ms: int | None = None
    ) -> dict[str, list[tuple[str, float]]]:
        """The current 5-minute window's and the trailing day's top sellers of a category."""
        now_ms = int(time.time() * 1000) if now_ms is None else int(now_ms)
        return {
            "window": self.top_sellers(cat_id, n, since_ms=now_ms // BUCKET_MS * BUCKET_MS),
            "day": self.top_sellers(cat_id, n, since_ms=now_ms - 86_400_000),
        }

    def units(self) -> int:
        """Every unit Druid has ingested into the datasource (tests, benchmarks)."""
        self.wait_ingested()
        rows = self.sql(f'SELECT SUM(units), SUM("count") FROM "{self.datasource}"', name="units")
        return int(rows[0][0] or 0) if rows else 0

    # ------------------------------------------------------------------ writes (Kafka)
    def ensure_schema(self) -> None:
        """Create the orders and offsets topics if missing (the supervisor is applied by ``services up``)."""
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError

        async def create() -> None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka.bootstrap)
            await admin.start()
            try:
                have = set(await admin.list_topics())
                new = []
                if self.topic not in have:
                    new.append(NewTopic(self.topic, self.settings.druid.topic_partitions, 1))
                if self.offsets_topic not in have:
                    new.append(NewTopic(self.offsets_topic, 1, 1, topic_configs={"cleanup.policy": "compact"}))
                if new:
                    try:
                        await admin.create_topics(new)
                    except TopicAlreadyExistsError:
                        pass
            finally:
                await admin.close()

        self._run(create())

    def _run(self, coro, timeout_s: float = 120.0):  # noqa: ANN001, ANN201
        from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

        with self._lock:
            if self._loop is None:
                self._loop = _Loop()
            loop = self._loop
        try:
            return loop.run(coro, timeout_s)
        except (KafkaConnectionError, KafkaTimeoutError, TimeoutError) as exc:
            raise ServiceUnavailable(f"Kafka {self.settings.kafka.bootstrap}: {type(exc).__name__}: {exc}") from exc
        except KafkaError as exc:
            raise StoreError(f"Kafka: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _message(master: str, cat: str, qty: int, ts_ms: int, revenue: float = 0.0) -> bytes:
        return json.dumps({"ts": int(ts_ms), "cat": cat, "master": master, "qty": int(qty), "revenue": revenue}).encode()

    def _note_written(self, metas) -> None:  # noqa: ANN001 - aiokafka RecordMetadata
        for md in metas:
            if md is not None and md.offset >= 0 and md.offset > self._pending.get(md.partition, -1):
                self._pending[md.partition] = md.offset

    def record_orders(self, orders: Iterable[OrderEvent]) -> int:
        msgs = [(o.master_id.encode(), self._message(o.master_id, o.cat_id, o.qty, o.ts_ms)) for o in orders]
        return self._produce(msgs)

    def record_order_columns(self, master_ids, cat_ids, qty, ts_ms) -> int:
        qty, ts_ms = np.asarray(qty, dtype=np.int64), np.asarray(ts_ms, dtype=np.int64)
        msgs = [
            (str(m).encode(), self._message(str(m), str(c), int(q), int(t)))
            for m, c, q, t in zip(master_ids, cat_ids, qty.tolist(), ts_ms.tolist(), strict=True)
        ]
        return self._produce(msgs)

    def _produce(self, msgs: list[tuple[bytes, bytes]]) -> int:
        """Plain orders through the project's Kafka event log (whole record batches, acks=all,
        idempotent; partition by key as every EventLog does)."""
        if not msgs:
            return 0
        from hotpath.streams.base import EventIn

        async def go() -> int:
            if self._log is None:
                from hotpath.streams.kafka_log import KafkaEventLog

                self._log = KafkaEventLog(self.settings)
            placed = await self._log.append(self.topic, [EventIn(v, k) for k, v in msgs])
            for part, off in placed:
                if off > self._pending.get(part, -1):
                    self._pending[part] = off
            return len(placed)

        n = self._run(go())
        self.stats["produced"] += n
        return n

    async def _txn_producer(self, source: str, partition: int):  # noqa: ANN202
        key = (source, partition)
        if key not in self._txn:
            from aiokafka import AIOKafkaProducer

            p = AIOKafkaProducer(
                bootstrap_servers=self.settings.kafka.bootstrap,
                transactional_id=f"hotpath-rollups:{self.topic}:{source}:{partition}",
                enable_idempotence=True,
                acks="all",
            )
            await p.start()
            self._txn[key] = p
        return self._txn[key]

    async def _read_marker(self, source: str, partition: int) -> int:
        """The next offset of the last committed marker for ``source:partition`` (0: none)."""
        from aiokafka import AIOKafkaConsumer, TopicPartition

        tp = TopicPartition(self.offsets_topic, 0)
        c = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka.bootstrap, enable_auto_commit=False, isolation_level="read_committed"
        )
        await c.start()
        try:
            c.assign([tp])
            end = (await c.end_offsets([tp]))[tp]
            c.seek(tp, (await c.beginning_offsets([tp]))[tp])
            want = f"{source}:{partition}".encode()
            found = 0
            while end and await c.position(tp) < end:
                got = await c.getmany(tp, timeout_ms=1000, max_records=10_000)
                for rec in got.get(tp, []):
                    if rec.key == want and rec.value is not None:
                        found = int(rec.value)
            return found
        finally:
            await c.stop()

    def record_order_batch(self, source, partition, rows) -> int:
        if not rows:
            return 0
        offs = [int(r[0]) for r in rows]
        if any(b <= a for a, b in zip(offs, offs[1:], strict=False)):
            raise BadInput("order rows must come in ascending offset order", field="rows")
        key = (str(source), int(partition))

        async def go() -> int:
            producer = await self._txn_producer(*key)
            if key not in self._next:
                self._next[key] = await self._read_marker(*key)
            done = self._next[key]
            fresh = [r for r in rows if int(r[0]) >= done]
            if not fresh:
                return 0
            try:
                async with producer.transaction():
                    sent = [
                        await producer.send(self.topic, key=str(r[1]).encode(), value=self._message(r[1], r[2], r[3], r[4]))
                        for r in fresh
                    ]
                    await producer.send(
                        self.offsets_topic, key=f"{key[0]}:{key[1]}".encode(), value=str(int(fresh[-1][0]) + 1).encode()
                    )
            except BaseException:
                self._next.pop(key, None)  # re-read the marker next time (fenced or aborted)
                self._txn.pop(key, None)
                await producer.stop()
                raise
            self._note_written([f.result() for f in sent])
            self._next[key] = int(fresh[-1][0]) + 1
            return len(fresh)

        n = self._run(go())
        self.stats["produced"] += n
        return n

    def recorded_offset(self, source: str, partition: int) -> int:
        key = (str(source), int(partition))
        if key in self._next:
            return self._next[key]
        return self._run(self._read_marker(*key))

    # ------------------------------------------------------------------ life cycle
    def close(self) -> None:
        if self.refresher is not None:
            self.refresher.stop()
            self.refresher = None
        if self._refresher_cache is not None:
            self._refresher_cache.close()
            self._refresher_cache = None
        loop = self._loop
        if loop is not None:
            producers = [p for p in (self._producer, *self._txn.values()) if p is not None]
            log = self._log

            async def stop_all() -> None:
                if log is not None:
                    try:
                        await log.close()
                    except Exception:  # noqa: BLE001 - closing: nothing to report
                        pass
                for p in producers:
                    try:
                        await p.stop()
                    except Exception:  # noqa: BLE001 - closing: nothing to report
                        pass

            try:
                loop.run(stop_all(), 30)
            except Exception:  # noqa: BLE001
                pass
            loop.close()
            self._loop, self._producer, self._log = None, None, None
            self._txn.clear()
        self._http.close()


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def _best_first(item: tuple[str, float]) -> tuple[float, str]:
    return (-item[1], item[0])


def _check_n(n: int) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > 10_000:
        raise BadInput(f"n must be an integer in 1..10000, got {n!r}", field="n")
    return n
