"""Real servers: the shared services (`make test` starts them) and an isolated embedded set.

The isolated set (Redis, Mosquitto, Ray, then Kafka alone) runs in its own runtime folder on
shifted ports, so starting and stopping it never disturbs the shared services other suites use.
Cassandra is only ever checked on the shared instance (its start is slow).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from hotpath.cluster import manager, process
from hotpath.cluster.base import Health
from hotpath.cluster.kafka import KafkaService
from hotpath.cluster.ray_head import RayService
from hotpath.config import Settings

from .conftest import Isolated, make_isolated, stop_isolated

pytestmark = pytest.mark.services

OK = (Health.HEALTHY, Health.EXTERNAL)


# --------------------------------------------------------------------------- shared services
def test_shared_full_profile_is_healthy_and_up_is_idempotent(settings: Settings) -> None:
    manager.up(settings, "full")  # no-op when `make test` started them already
    t0 = time.monotonic()
    again = manager.up(settings, "full")
    elapsed = time.monotonic() - t0
    assert [o.service for o in again] == ["redis", "mosquitto", "kafka", "zookeeper", "druid", "cassandra", "postgres", "ray"]
    assert all(o.outcome in ("running", "external") for o in again), again
    assert elapsed < 30, f"a second up took {elapsed:.1f}s"
    rows = {st.name: st for st in manager.status(settings, "full")}
    assert all(rows[n].health in OK for n in rows), rows


def test_shared_ray_listens_on_loopback_only(settings: Settings) -> None:
    ray = RayService(settings)
    if ray.status().health is not Health.HEALTHY:
        pytest.skip("the shared Ray head was not started by hotpath (external)")
    listening = ray.listening()
    if process.listeners() is None:
        pytest.skip("`ss` (iproute2) is not installed")
    assert {settings.ray.port, settings.ray.dashboard_port} <= {lst.port for lst in listening}
    assert not [lst for lst in listening if not lst.loopback], listening
    assert ray.exposed() == []


def test_shared_cassandra_has_the_schema(settings: Settings) -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster([settings.cassandra.host], port=settings.cassandra.port, protocol_version=5)
    try:
        session = cluster.connect()
        rows = session.execute(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", [settings.cassandra.keyspace]
        )
        tables = {r.table_name for r in rows}
    finally:
        cluster.shutdown()
    assert {"master_semantic_relations", "category_co_view_relations", "master_to_pids"} <= tables


# --------------------------------------------------------------------------- an isolated set
@pytest.fixture(scope="module")
def iso(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Isolated]:
    """Embedded profile on shifted ports, started through the CLI once for this module."""
    isolated = make_isolated(tmp_path_factory.mktemp("cluster") / "runtime")
    try:
        t0 = time.monotonic()
        out = isolated.hotpath("services", "up")  # HOTPATH_PROFILE=embedded in its env
        isolated.up_seconds = time.monotonic() - t0
        isolated.up_output = out.stdout
        assert out.returncode == 0, out.stdout + out.stderr
        yield isolated
    finally:
        stop_isolated(isolated)


def _status(iso: Isolated) -> dict[str, dict]:
    out = iso.hotpath("services", "status", "--json")
    assert out.returncode == 0, out.stderr
    return {row["name"]: row for row in json.loads(out.stdout)}


def test_isolated_up_reports_healthy(iso: Isolated) -> None:
    for name in ("redis", "mosquitto", "ray"):
        assert f"{name:<10} started on" in iso.up_output
    rows = _status(iso)
    for name in ("redis", "mosquitto", "ray"):
        assert rows[name]["health"] == "healthy", rows[name]
        assert rows[name]["pid"] and process.is_alive(rows[name]["pid"])
        assert rows[name]["address"].startswith("127.0.0.1:")
    assert rows["kafka"]["health"] == rows["cassandra"]["health"] == "stopped"


def test_isolated_second_up_reuses_everything_and_says_where(iso: Isolated) -> None:
    before = {n: r["pid"] for n, r in _status(iso).items()}
    out = iso.hotpath("up", "--profile", "embedded")  # what `make run` calls
    assert out.returncode == 0, out.stderr
    for name in ("redis", "mosquitto", "ray"):
        assert f"{name:<10} already running" in out.stdout
    after = {n: r["pid"] for n, r in _status(iso).items()}
    # every server that ran keeps its process (the llama.cpp server is started by the cloud app itself)
    assert {n: after[n] for n, pid in before.items() if pid is not None} == {n: p for n, p in before.items() if p is not None}
    s = iso.settings
    assert f"redis      127.0.0.1:{s.redis.port}" in out.stdout
    assert f"dashboard http://127.0.0.1:{s.ray.dashboard_port}" in out.stdout
    assert f'ray.init(address="127.0.0.1:{s.ray.port}")' in out.stdout


def test_isolated_up_related_example_changes_as_coviews_stream_in(iso: Isolated) -> None:
    """`hotpath up` (the second-up test above ran it) prints a related example for a master of the
    leaf the demo feed trends; within a couple of minutes that answer holds best sellers of the
    feed's trend partner under the co_view signal: categories the catalog never planted as
    co-viewed with it, so they can only come from the streamed co-views."""
    import re
    import urllib.request

    from hotpath.coview.catalog_feed import CatalogFeed
    from hotpath.recs.catalog import generate

    out = iso.hotpath("up", "--profile", "embedded")
    assert out.returncode == 0, out.stderr
    urls = re.findall(r"http://127\.0\.0\.1:\d+\S*/related\?user_id=u1&master_id=\S+", out.stdout)
    assert urls, out.stdout
    assert "co-view demo" in out.stdout
    feed = CatalogFeed(generate(iso.settings.recs.catalog))
    leaf = feed.leaves[0]
    streamed = {feed.catalog.cat_ids[feed.partner(leaf, p)] for p in range(10)}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    seen: list[dict] = []
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        with opener.open(urls[0], timeout=10) as resp:  # the example exactly as printed
            items = json.loads(resp.read())["items"]
        seen = [i for i in items if "co_view" in i["signals"] and i["category"] in streamed]
        if seen:
            break
        time.sleep(3)
    assert seen, f"no item of a streamed partner category {sorted(streamed)} in {items}"
    best = re.findall(r"http://127\.0\.0\.1:\d+\S*/bestsellers\?category_id=\S+", out.stdout)
    assert best and f"category_id={feed.catalog.cat_ids[leaf]}&" in best[0], out.stdout
    with opener.open(best[0], timeout=10) as resp:
        cats = [i["category"] for i in json.loads(resp.read())["items"]]
    assert any(c in streamed for c in cats[:3]), cats


# Ray Serve 2.60 starts each replica's inter-deployment gRPC server on "[::]:0" (hard-coded);
# hotpath drivers install a worker set-up hook (hotpath/cluster/ray_patches.py) that binds it to
# loopback. `hotpath up` (run by the iso fixture's second-up test) deploys the Serve apps, so their
# replicas are among the listeners checked here.
def test_isolated_ray_binds_loopback_only(iso: Isolated) -> None:
    ray = RayService(iso.settings)
    listening = ray.listening()
    assert iso.settings.ray.port in {lst.port for lst in listening}
    assert all(lst.loopback for lst in listening), [lst for lst in listening if not lst.loopback]


def test_isolated_kafka_starts_answers_and_stops(iso: Isolated) -> None:
    kafka = KafkaService(iso.settings)
    kafka.preflight()
    assert kafka.start() == "started"
    try:
        assert kafka.status().health is Health.HEALTHY
        pids = kafka.processes()
        assert pids
    finally:
        kafka.stop()
    assert not any(process.is_alive(p) for p in pids)
    assert process.port_free("127.0.0.1", iso.settings.kafka.port)
    assert kafka.status().health is Health.STOPPED


def test_isolated_down_leaves_no_process(iso: Isolated) -> None:
    svcs = manager.services_for(iso.settings)
    pids = {svc.name: svc.processes() for svc in svcs}
    assert pids["redis"] and pids["mosquitto"] and len(pids["ray"]) > 3  # gcs, raylet, dashboard, ...
    out = iso.hotpath("services", "down")
    assert out.returncode == 0, out.stderr
    alive = {n: [p for p in ps if process.is_alive(p)] for n, ps in pids.items()}
    assert not any(alive.values()), alive
    for svc in svcs:
        assert not svc.pid_path.exists()
        for port in svc.ports().values():
            assert process.port_free("127.0.0.1", port), f"{svc.name}: port {port} still taken"
    rows = _status(iso)
    assert {r["health"] for r in rows.values()} == {"stopped"}
    again = iso.hotpath("services", "down")
    assert again.returncode == 0 and "nothing was running" in again.stdout
