"""The shard's sinks behind a bounded queue: Redis sorted sets, dimension-store rows, and order
events for the rollup store.

Every write sets absolute values (``zreplace`` of a key's whole top-K, an upsert of a whole
``category_co_view_relations`` row, a user's whole ``user:recent_cats`` set or ``ZADD`` of the
members that changed — never an increment), so writing the same batch twice, or an older batch
before a newer one of the same replay, leaves the same final contents: the sinks are idempotent. Orders are
appended keyed by their event-log position (``record_order_batch`` skips positions already
recorded), which makes them idempotent too.

Each of the two lanes (Redis; dimension rows, orders and checkpoint saves) holds at most
``queue_max`` batches; :meth:`SinkWriter.submit` blocks when one is full,
so a slow sink slows the shard down (backpressure) instead of growing memory. A failing write is
logged and retried with back-off; it never drops a batch. :meth:`flush` waits for every batch
submitted so far to be written (the checkpoint calls it before saving state).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hotpath.errors import HotpathError
from hotpath.coview.shard import OrderRow
from hotpath.stores.base import CategoryCoView, DimensionStore, HotCache

if TYPE_CHECKING:  # the DuckDB adapter is injected; only its type is named here
    from hotpath.stores.redis_fast import ZWriter
    from hotpath.stores.rollups import RollupStore

__all__ = ["SinkBatch", "SinkWriter", "coview_key", "recent_key"]

_SPREAD_CHUNK = 100
"""Dimension rows per write when they are spread over time (``dim_spread_s``)."""

log = logging.getLogger(__name__)


def coview_key(prefix: str, key: str) -> str:
    return f"{prefix}cat:co_view:{key}"


def recent_key(prefix: str, user: str) -> str:
    return f"{prefix}user:recent_cats:{user}"


@dataclass
class SinkBatch:
    """One unit of sink work. ``sent_ms``: produce time of the event the batch shows, for freshness."""

    coview: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    recent: dict[str, tuple[bool, dict[str, float | None]]] = field(default_factory=dict)
    """``user -> (whole, members)``: the user's set replaced by ``members``, or ``members`` set in it
    (``None``: removed)."""
    dims: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    orders: dict[int, list[OrderRow]] = field(default_factory=dict)
    """Order events per event-log partition (offset order), for the rollup store."""
    coview_sent_ms: int = 0
    recent_sent_ms: int = 0

    def empty(self) -> bool:
        return not (self.coview or self.recent or self.dims or self.orders)


class _Barrier:
    """A checkpoint's save, queued on both lanes: the hot lane marks it reached, the cold lane then
    runs it (so every write submitted before it, on either lane, has landed)."""

    __slots__ = ("fn", "hot_done")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.hot_done = threading.Event()


class SinkWriter:
    """Two writer threads, each draining a bounded queue of :class:`SinkBatch` parts into the stores.

    The *hot* lane writes Redis (``cat:co_view``, ``user:recent_cats``: the freshness path), the
    *cold* lane the dimension rows, the order events and the checkpoint saves (a snapshot of tens
    of MB fsync-ed to SQLite, thousands of Cassandra rows): a checkpoint never holds Redis writes
    up. A batch is split between them; each lane keeps its own order. A barrier
    (:meth:`submit_barrier`) runs on the cold lane once both lanes wrote everything submitted
    before it."""

    def __init__(
        self,
        cache: HotCache,
        dims: DimensionStore | None,
        *,
        rollups: RollupStore | None = None,
        order_source: str = "",
        prefix: str = "",
        recent_ttl_s: float = 3 * 86_400.0,
        queue_max: int = 8,
        dim_batch: int = 500,
        dim_spread_s: float = 0.0,
        wall_ms: Callable[[], float] = lambda: time.time() * 1000.0,
        samples: int = 20_000,
        zwriter: ZWriter | None = None,
    ) -> None:
        self.cache, self.dims = cache, dims
        # The sorted-set writes: a faster writer to the same server when the wiring passes one
        # (the shard actor passes hotpath.stores.redis_fast.zwriter_for(cache)), else the cache.
        self.zwriter = zwriter if zwriter is not None else cache
        self.rollups, self.order_source = rollups, order_source
        self.prefix, self.recent_ttl_s, self.dim_batch = prefix, recent_ttl_s, dim_batch
        self.dim_spread_s = dim_spread_s
        self._hurry = threading.Event()
        """Set while :meth:`flush` or :meth:`close` waits: spread dimension rows go at once."""
        self.wall_ms = wall_ms
        self._hot: queue.Queue[SinkBatch | _Barrier | None] = queue.Queue(maxsize=queue_max)
        self._cold: queue.Queue[SinkBatch | _Barrier | None] = queue.Queue(maxsize=queue_max)
        self.coview_lag_ms: deque[float] = deque(maxlen=samples)
        self.recent_lag_ms: deque[float] = deque(maxlen=samples)
        self.written = {"coview_keys": 0, "recent_keys": 0, "dim_rows": 0, "orders": 0, "batches": 0, "retries": 0,
                        "recent_whole": 0, "recent_members_set": 0}
        self.blocked_s = 0.0
        self.hot_write_ms: deque[float] = deque(maxlen=samples)
        """Wall time of each Redis (hot lane) batch write."""
        self._count_lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(q, hot), name=f"coview-sink-{name}", daemon=True)
            for q, hot, name in ((self._hot, True, "hot"), (self._cold, False, "cold"))
        ]
        for t in self._threads:
            t.start()

    def full(self) -> bool:
        """Whether :meth:`submit` or :meth:`submit_barrier` might block now."""
        return self._hot.full() or self._cold.full()

    def _put(self, q: queue.Queue, item: SinkBatch | _Barrier) -> None:
        t0 = time.monotonic()
        q.put(item)
        self.blocked_s += time.monotonic() - t0

    def submit(self, batch: SinkBatch) -> None:
        """Queue a batch; blocks while a lane's queue is full (backpressure)."""
        if batch.empty():
            return
        if batch.coview or batch.recent:
            self._put(self._hot, SinkBatch(coview=batch.coview, recent=batch.recent,
                                           coview_sent_ms=batch.coview_sent_ms, recent_sent_ms=batch.recent_sent_ms))
        if batch.dims or batch.orders:
            self._put(self._cold, SinkBatch(dims=batch.dims, orders=batch.orders))

    def submit_barrier(self, fn: Callable[[], None]) -> None:
        """Queue ``fn``: it runs (on the cold lane) once every batch submitted before it is written
        on both lanes (a checkpoint saves its state there: asynchronous barrier snapshotting).
        Blocks like :meth:`submit`. ``fn`` handles its own errors."""
        b = _Barrier(fn)
        self._put(self._hot, b)
        self._put(self._cold, b)

    def pending(self) -> int:
        return self._hot.qsize() + self._cold.qsize()

    def flush(self) -> None:
        """Wait until every submitted batch is written (spread dimension rows hurried)."""
        self._hurry.set()
        try:
            self._hot.join()
            self._cold.join()
        finally:
            self._hurry.clear()

    def close(self) -> None:
        self._hurry.set()
        self._hot.put(None)
        self._cold.put(None)
        for t in self._threads:
            t.join(timeout=30)
        if self.zwriter is not self.cache:
            self.zwriter.close()

    # ---------------------------------------------------------------- writer threads
    def _run(self, q: queue.Queue, hot: bool) -> None:
        while True:
            item = q.get()
            try:
                if item is None:
                    return
                if isinstance(item, _Barrier):
                    if hot:
                        item.hot_done.set()
                        continue
                    item.hot_done.wait()
                    try:
                        item.fn()
                    except Exception:  # the barrier reports its own failures; never kill the writer
                        log.exception("co-view sink barrier failed")
                    continue
                t0 = time.perf_counter()
                self._write_retrying(item)
                if hot:
                    self.hot_write_ms.append((time.perf_counter() - t0) * 1000.0)
            finally:
                q.task_done()

    def _write_retrying(self, batch: SinkBatch) -> None:
        delay = 0.05
        while True:
            try:
                self._write(batch)
                return
            except HotpathError as exc:
                with self._count_lock:
                    self.written["retries"] += 1
                log.warning("co-view sink write failed (%s); retrying in %.2fs", exc.one_line(), delay)
            except Exception:  # a bug or a foreign error: log it, keep the batch, go on
                with self._count_lock:
                    self.written["retries"] += 1
                log.exception("co-view sink write failed; retrying in %.2fs", delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _write_dims(self, rows: list[CategoryCoView]) -> None:
        """``rows`` in chunks: with ``dim_spread_s``, of ``_SPREAD_CHUNK`` rows, one every
        ``dim_spread_s / chunks`` (unless hurried), so the dimension store gets a trickle, not a
        burst. A retried batch writes them all again: upserts, idempotent."""
        step = self.dim_batch
        spread = self.dim_spread_s if len(rows) > _SPREAD_CHUNK else 0.0
        if spread > 0:
            step = min(step, _SPREAD_CHUNK)
        chunks = range(0, len(rows), step)
        t0 = time.monotonic()
        for n, i in enumerate(chunks):
            if spread > 0 and n and not self._hurry.is_set():
                self._hurry.wait(t0 + spread * n / len(chunks) - time.monotonic())
            self.dims.put_coview(rows[i : i + step])
        self.written["dim_rows"] += len(rows)

    def _write(self, batch: SinkBatch) -> None:
        p = self.prefix
        if batch.coview:
            raw = self.zwriter is not self.cache  # RespZWriter takes the ranked lists as they are
            self.zwriter.zreplace_many({coview_key(p, k): top if raw else dict(top) for k, top in batch.coview.items()})
            self.written["coview_keys"] += len(batch.coview)
            if batch.coview_sent_ms:
                self.coview_lag_ms.append(self.wall_ms() - batch.coview_sent_ms)
        if batch.recent:
            whole = {recent_key(p, u): m for u, (w, m) in batch.recent.items() if w}
            some = {recent_key(p, u): m for u, (w, m) in batch.recent.items() if not w}
            if self.zwriter is not self.cache:
                self.zwriter.zwrite_many(whole, some, ttl_s=self.recent_ttl_s)
            else:
                self.cache.zreplace_many(whole, ttl_s=self.recent_ttl_s)
                for key, members in some.items():
                    gone = [m for m, v in members.items() if v is None]
                    if gone:
                        self.cache.zrem(key, gone)
                    kept = {m: v for m, v in members.items() if v is not None}
                    if kept:
                        self.cache.zadd(key, kept, ttl_s=self.recent_ttl_s)
            self.written["recent_whole"] += len(whole)
            self.written["recent_members_set"] += sum(map(len, some.values()))  # removals included
            self.written["recent_keys"] += len(batch.recent)
            if batch.recent_sent_ms:
                self.recent_lag_ms.append(self.wall_ms() - batch.recent_sent_ms)
        if batch.dims and self.dims is not None:
            self._write_dims([CategoryCoView(f"{p}{k}", dict(top)) for k, top in batch.dims.items()])
        if batch.orders and self.rollups is not None:
            for part in sorted(batch.orders):
                self.written["orders"] += self.rollups.record_order_batch(self.order_source, part, batch.orders[part])
        with self._count_lock:  # both lanes count here
            self.written["batches"] += 1  # parts: a batch with both hot and cold writes counts twice
