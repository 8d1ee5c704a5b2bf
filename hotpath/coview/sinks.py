"""The shard's sinks behind a bounded queue: Redis sorted sets, dimension-store rows, and order
events for the rollup store.

Every write is a full replacement (``zreplace`` of a key's whole top-K, an upsert of a whole
``category_co_view_relations`` row), so writing the same batch twice, or an older batch before a
newer one of the same replay, leaves the same final contents: the sinks are idempotent. Orders are
appended keyed by their event-log position (``record_order_batch`` skips positions already
recorded), which makes them idempotent too.

The queue holds at most ``queue_max`` batches; :meth:`SinkWriter.submit` blocks when it is full,
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

from hotpath.errors import HotpathError
from hotpath.coview.redis_writer import zwriter_for
from hotpath.coview.shard import OrderRow
from hotpath.stores.base import CategoryCoView, DimensionStore, HotCache
from hotpath.stores.rollups import RollupStore

__all__ = ["SinkBatch", "SinkWriter", "coview_key", "recent_key"]

log = logging.getLogger(__name__)


def coview_key(prefix: str, key: str) -> str:
    return f"{prefix}cat:co_view:{key}"


def recent_key(prefix: str, user: str) -> str:
    return f"{prefix}user:recent_cats:{user}"


@dataclass
class SinkBatch:
    """One unit of sink work. ``sent_ms``: produce time of the event the batch shows, for freshness."""

    coview: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    recent: dict[str, dict[str, float]] = field(default_factory=dict)
    dims: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    orders: dict[int, list[OrderRow]] = field(default_factory=dict)
    """Order events per event-log partition (offset order), for the rollup store."""
    coview_sent_ms: int = 0
    recent_sent_ms: int = 0

    def empty(self) -> bool:
        return not (self.coview or self.recent or self.dims or self.orders)


class SinkWriter:
    """A writer thread draining a bounded queue of :class:`SinkBatch` into the stores."""

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
        wall_ms: Callable[[], float] = lambda: time.time() * 1000.0,
        samples: int = 20_000,
    ) -> None:
        self.cache, self.dims = cache, dims
        self.zwriter = zwriter_for(cache)
        self.rollups, self.order_source = rollups, order_source
        self.prefix, self.recent_ttl_s, self.dim_batch = prefix, recent_ttl_s, dim_batch
        self.wall_ms = wall_ms
        self._q: queue.Queue[SinkBatch | Callable[[], None] | None] = queue.Queue(maxsize=queue_max)
        self.coview_lag_ms: deque[float] = deque(maxlen=samples)
        self.recent_lag_ms: deque[float] = deque(maxlen=samples)
        self.written = {"coview_keys": 0, "recent_keys": 0, "dim_rows": 0, "orders": 0, "batches": 0, "retries": 0}
        self.blocked_s = 0.0
        self._thread = threading.Thread(target=self._run, name="coview-sink", daemon=True)
        self._thread.start()

    def submit(self, batch: SinkBatch) -> None:
        """Queue a batch; blocks while the queue is full (backpressure)."""
        if batch.empty():
            return
        t0 = time.monotonic()
        self._q.put(batch)
        self.blocked_s += time.monotonic() - t0

    def submit_barrier(self, fn: Callable[[], None]) -> None:
        """Queue ``fn``: the writer thread runs it once every batch submitted before it is written
        (a checkpoint saves its state there: asynchronous barrier snapshotting). Blocks like
        :meth:`submit`. ``fn`` handles its own errors."""
        t0 = time.monotonic()
        self._q.put(fn)
        self.blocked_s += time.monotonic() - t0

    def pending(self) -> int:
        return self._q.qsize()

    def flush(self) -> None:
        """Wait until every submitted batch is written."""
        self._q.join()

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=30)
        if self.zwriter is not self.cache:
            self.zwriter.close()

    # ---------------------------------------------------------------- writer thread
    def _run(self) -> None:
        while True:
            batch = self._q.get()
            try:
                if batch is None:
                    return
                if callable(batch):
                    try:
                        batch()
                    except Exception:  # the barrier reports its own failures; never kill the writer
                        log.exception("co-view sink barrier failed")
                    continue
                self._write_retrying(batch)
            finally:
                self._q.task_done()

    def _write_retrying(self, batch: SinkBatch) -> None:
        delay = 0.05
        while True:
            try:
                self._write(batch)
                return
            except HotpathError as exc:
                self.written["retries"] += 1
                log.warning("co-view sink write failed (%s); retrying in %.2fs", exc.one_line(), delay)
            except Exception:  # a bug or a foreign error: log it, keep the batch, go on
                self.written["retries"] += 1
                log.exception("co-view sink write failed; retrying in %.2fs", delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _write(self, batch: SinkBatch) -> None:
        p = self.prefix
        if batch.coview:
            raw = self.zwriter is not self.cache  # RespZWriter takes the ranked lists as they are
            self.zwriter.zreplace_many({coview_key(p, k): top if raw else dict(top) for k, top in batch.coview.items()})
            self.written["coview_keys"] += len(batch.coview)
            if batch.coview_sent_ms:
                self.coview_lag_ms.append(self.wall_ms() - batch.coview_sent_ms)
        if batch.recent:
            self.zwriter.zreplace_many(
                {recent_key(p, u): w for u, w in batch.recent.items()}, ttl_s=self.recent_ttl_s
            )
            self.written["recent_keys"] += len(batch.recent)
            if batch.recent_sent_ms:
                self.recent_lag_ms.append(self.wall_ms() - batch.recent_sent_ms)
        if batch.dims and self.dims is not None:
            rows = [CategoryCoView(f"{p}{k}", dict(top)) for k, top in batch.dims.items()]
            for i in range(0, len(rows), self.dim_batch):
                self.dims.put_coview(rows[i : i + self.dim_batch])
            self.written["dim_rows"] += len(rows)
        if batch.orders and self.rollups is not None:
            for part in sorted(batch.orders):
                self.written["orders"] += self.rollups.record_order_batch(self.order_source, part, batch.orders[part])
        self.written["batches"] += 1
