"""The co-view job across two Ray nodes on this machine: the head and an extra raylet joined to it
(:class:`hotpath.cluster.worker_node.RayWorkerNode`, loopback only). With
``streaming.placement=spread`` one shard runs on the head and one on the second node; a
failure-free run gives the reference contents. Then the same stream again, and mid-stream the
whole second node is killed with SIGKILL (its raylet, agents and every worker process at once):
the job must recover from its last committed checkpoint onto the surviving node, and the final
Redis and Cassandra contents must equal the failure-free run's (the equality check of
``test_streaming_e2e.py``'s shard-kill test). The times to recover are printed (``-s``)."""

from __future__ import annotations

import shutil
import time
import uuid

import pytest

from hotpath.cluster.worker_node import RayWorkerNode
from hotpath.config import Settings
from hotpath.graphs.coview_app import start_coview_job

from .test_streaming_e2e import contents, job_settings, stream, wait_caught_up  # noqa: F401 (stream: a fixture)

pytestmark = [pytest.mark.services, pytest.mark.ray, pytest.mark.slow, pytest.mark.timeout(420)]


@pytest.fixture(scope="module")
def node_b(settings: Settings, ray_session):
    """A second Ray node for this module (stopped, by PID, at its end); yields (node, its node id)."""
    node = RayWorkerNode(settings, name=f"t{uuid.uuid4().hex[:6]}", resources={"coview_test_node": 1})
    node.start()
    try:
        deadline = time.monotonic() + 60
        while True:
            found = [n for n in ray_session.nodes() if n.get("Alive") and n.get("NodeName") == f"hotpath-node-{node.node_name}"]
            if found:
                break
            assert time.monotonic() < deadline, "the second node did not register with the head"
            time.sleep(0.5)
        yield node, found[0]["NodeID"]
    finally:
        node.stop()
        shutil.rmtree(node.dir, ignore_errors=True)


def _spread(settings: Settings, tmp_path, topic: str, **streaming) -> Settings:
    return job_settings(settings, tmp_path, topic, uuid.uuid4().hex[:8], placement="spread", **streaming)


def _placed(handle, head_id: str, b_id: str) -> None:
    nodes = handle.shard_nodes()
    assert sorted(n["node_id"] for n in nodes) == sorted([head_id, b_id]), (
        f"one shard should run on the head, one on the second node: {nodes} (other Ray nodes alive?)"
    )


@pytest.fixture(scope="module")
def two_node_clean_run(settings: Settings, stream, node_b, ray_session, tmp_path_factory):  # noqa: F811
    node, b_id = node_b
    head_id = ray_session.get_runtime_context().get_node_id()
    s = _spread(settings, tmp_path_factory.mktemp("clean2"), stream.topic)
    t0 = time.monotonic()
    handle = start_coview_job(s)
    try:
        _placed(handle, head_id, b_id)
        wait_caught_up(handle, stream.ends)
        final = handle.stop()
    except BaseException:
        handle.stop()
        raise
    elapsed = time.monotonic() - t0
    assert final["recoveries"] == 0
    total = sum(stream.ends.values())
    print(f"\ntwo nodes, failure-free: {total:,} records in {elapsed:.1f}s (job start included)")
    cats = sorted({e.cat for e in stream.gen.events})
    redis, dims = contents(s, cats)
    assert redis and dims
    return redis, dims


def test_killing_a_whole_node_mid_stream_recovers_onto_the_survivor_with_equal_contents(
    settings: Settings, stream, node_b, two_node_clean_run, ray_session, tmp_path  # noqa: F811
) -> None:
    redis0, dims0 = two_node_clean_run
    node, b_id = node_b
    head_id = ray_session.get_runtime_context().get_node_id()
    # small steps and frequent checkpoints: still mid-stream, with checkpoints committed, at the kill
    s = _spread(settings, tmp_path, stream.topic, max_records_per_step=60, checkpoint_interval_s=0.1)
    total = sum(stream.ends.values())
    handle = start_coview_job(s)
    killed_at = None
    done_at_kill = 0
    caught_up_again = None
    deadline = time.monotonic() + 300
    try:
        _placed(handle, head_id, b_id)
        while True:
            st = handle.status()
            assert not st.get("error"), st
            done = sum(st["offsets"].values())
            if killed_at is None and done >= 0.4 * total and st["committed"] is not None:
                pids = node.kill()
                killed_at, done_at_kill = time.time(), done
                assert pids, "the second node had no process to kill"
            elif (
                killed_at is not None and caught_up_again is None and st["last_restored_at"] is not None
                and done >= done_at_kill
            ):  # fmt: skip
                caught_up_again = time.time()
            if done >= total and all(st["offsets"].get(p, 0) >= e for p, e in stream.ends.items()):
                break
            assert time.monotonic() < deadline, f"job did not catch up: {st}"
            time.sleep(0.02)
        assert killed_at is not None, f"the stream ended before the node was killed: {st}"
        after = handle.shard_nodes()
        final = handle.stop()
    except BaseException:
        handle.stop()
        raise
    assert node.processes() == [], "a process of the killed node survived"
    assert final["recoveries"] >= 1 and final["committed"] is not None
    assert [n["node_id"] for n in after] == [head_id, head_id], f"every shard should now run on the head: {after}"
    detected = final["last_failure_at"] - killed_at
    restored = final["last_restored_at"] - killed_at
    print(
        f"\nnode kill at {done_at_kill:,}/{total:,} records: failure seen after {detected:.1f}s, every shard "
        f"restored after {restored:.1f}s, back at the kill's offsets after {caught_up_again - killed_at:.1f}s "
        f"({final['recoveries']} recoveries)"
    )
    cats = sorted({e.cat for e in stream.gen.events})
    redis1, dims1 = contents(s, cats)
    assert redis1 == redis0
    assert dims1 == dims0
