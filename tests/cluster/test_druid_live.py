"""Druid of the full profile, live: idempotent start, SQL readiness, and an indexer crash mid-stream.

Needs `hotpath services up --profile full` (ZooKeeper, Druid, Kafka).
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import httpx
import pytest

from hotpath.cluster.druid import ROLES, DruidService, _iso_seconds, apply_supervisor, roll_stale_tasks
from hotpath.cluster.zookeeper import ZooKeeperService
from hotpath.config import Settings
from hotpath.errors import ServiceError, ServiceUnavailable
from hotpath.stores.druid_rollups import DruidRollups
from hotpath.stores.rollups import OrderEvent

pytestmark = pytest.mark.services


def _supervisor(settings: Settings) -> dict:
    r = httpx.get(f"{settings.druid.overlord_url}/druid/indexer/v1/supervisor/{settings.druid.datasource}/status")
    r.raise_for_status()
    return r.json()["payload"]


def test_services_answer_and_a_second_start_changes_nothing(settings: Settings) -> None:
    zk, druid = ZooKeeperService(settings), DruidService(settings)
    zk.probe()
    druid.probe()  # every role listed by `SELECT server_type FROM sys.servers`
    assert druid.running() and all(druid.role_pid(r) for r in ROLES)
    before = {t["id"] for t in _supervisor(settings)["activeTasks"]}
    assert druid.start() == "running"
    apply_supervisor(settings)  # unchanged spec: no restart of the ingestion task
    time.sleep(1.0)
    assert {t["id"] for t in _supervisor(settings)["activeTasks"]} == before
    st = druid.status()
    assert st.health.value == "healthy" and st.rss_mib and st.rss_mib < 2500


@pytest.mark.slow
def test_indexer_killed_mid_stream_loses_and_doubles_nothing(settings: Settings) -> None:
    uniq = uuid.uuid4().hex[:10]
    druid = DruidService(settings)
    store = DruidRollups(settings)
    store.ensure_schema()
    cat, n_orders = f"crash-{uniq}", 300
    now = int(time.time() * 1000)
    produced: list[int] = []

    def stream() -> None:
        for i in range(n_orders):
            store.record_orders([OrderEvent(f"m-{uniq}-{i % 7}", cat, 1 + i % 3, now + i)])
            produced.append(1 + i % 3)
            time.sleep(0.02)

    writer = threading.Thread(target=stream)
    writer.start()
    try:
        deadline = time.monotonic() + 60
        while _units(store, cat) <= 0:  # the task is ingesting this stream
            assert time.monotonic() < deadline, "Druid never saw the stream before the crash"
            time.sleep(0.2)
        pid = druid.role_pid("indexer")
        assert pid
        os.kill(pid, signal.SIGKILL)  # mid-stream: rows in the task's memory, offsets not committed
        writer.join()
        gone = time.monotonic() + 15
        while druid.role_alive("indexer") and time.monotonic() < gone:  # the kernel tears it down
            time.sleep(0.1)
        assert not druid.role_alive("indexer")
        assert druid.start() == "started"  # restarts the indexer only
        want = sum(produced)
        got, seen = _settled_units(store, cat, want, 420)
        assert got == want, f"after the crash Druid counts {got} units, {want} were ordered (reads: {seen[-8:]})"
        time.sleep(5.0)  # nothing more arrives: no replay counted twice
        rows = store.sql(
            f'SELECT SUM(units), SUM("count") FROM "{settings.druid.datasource}" WHERE cat = ?', [("VARCHAR", cat)]
        )
        assert rows == [[want, n_orders]]
    finally:
        writer.join()
        store.close()


def _settled_units(store: DruidRollups, cat: str, want: int, timeout_s: float) -> tuple[int, list[int]]:
    """Druid's units of ``cat`` once settled: every unit is in and three reads over ~6 s agree (a
    replacement task's hand-off from its realtime rows to published segments can flicker for a
    moment); else the last read at ``timeout_s``. Returns it and the reads."""
    deadline, got, seen = time.monotonic() + timeout_s, -1, []
    while time.monotonic() < deadline:
        got = _units(store, cat)
        seen.append(got)
        if got >= want and len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3]:
            break
        time.sleep(3.0 if got >= want else 1.0)
    return got, seen


def _running_tasks(settings: Settings) -> set[str]:
    r = httpx.get(f"{settings.druid.overlord_url}/druid/indexer/v1/tasks",
                  params={"state": "running", "datasource": settings.druid.datasource})
    r.raise_for_status()
    return {t["id"] for t in r.json() if t.get("type", "").startswith("index_kafka")}


def _units(store: DruidRollups, cat: str) -> int:
    try:
        return int(sum(q for _, q in store.top_sellers(cat, 10)))
    except ServiceUnavailable:  # the broker still routes to the killed task for a while, or times out
        return -1


@pytest.mark.slow
def test_a_task_past_its_duration_is_rolled_over_and_loses_nothing(settings: Settings) -> None:
    """A task restored after a long stop would throw new orders away: `services up` rolls it over.
    Here the limit is 1 s, so the running task counts as stale; orders before and after the roll
    are each counted once."""
    uniq = uuid.uuid4().hex[:10]
    store = DruidRollups(settings)
    store.ensure_schema()
    cat, now = f"roll-{uniq}", int(time.time() * 1000)
    try:
        store.record_orders([OrderEvent(f"m-{uniq}-{i % 5}", cat, 2, now + i) for i in range(40)])
        short = settings.model_copy(update={"druid": settings.druid.model_copy(update={"task_duration": "PT1S"})})
        before = _running_tasks(settings)
        assert roll_stale_tasks(short) >= 1
        assert _running_tasks(settings) - before  # a new task reads
        assert roll_stale_tasks(settings) == 0  # under the real PT1H limit the new one is young
        store.record_orders([OrderEvent(f"m-{uniq}-{i % 5}", cat, 1, now + 100 + i) for i in range(30)])
        want = 40 * 2 + 30
        got, seen = _settled_units(store, cat, want, 300)
        assert got == want, f"after the roll-over Druid counts {got} units, {want} were ordered (reads: {seen[-8:]})"
    finally:
        store.close()


def test_iso_periods() -> None:
    assert _iso_seconds("PT1H") == _iso_seconds("PT3600S") == _iso_seconds("pt60m") == 3600
    assert _iso_seconds("P1DT30M") == 86_400 + 1_800
    with pytest.raises(ServiceError, match="ISO-8601"):
        _iso_seconds("1 hour")
