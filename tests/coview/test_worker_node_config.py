"""The extra Ray node's command line and ports, without starting it (the start, the kill and the
recovery are in test_multinode.py)."""

from __future__ import annotations

import pytest

from hotpath.cluster.ray_head import RayService
from hotpath.cluster.worker_node import RayWorkerNode, worker_nodes
from hotpath.config import Settings
from hotpath.errors import ConfigError


def _settings(tmp_path) -> Settings:
    return Settings.model_validate({"runtime_dir": tmp_path})


def test_the_node_joins_the_head_on_loopback_on_ports_of_its_own(tmp_path) -> None:
    s = _settings(tmp_path)
    node = RayWorkerNode(s, name="b", resources={"coview": 1}, num_cpus=1)
    argv = node.command()
    assert f"--address={s.ray.address}" in argv and "--node-ip-address=127.0.0.1" in argv
    assert '--resources={"coview":1}' in argv and "--num-cpus=1" in argv and "--node-name=hotpath-node-b" in argv
    head = RayService(s)
    head_ports = set(head.ports().values()) | set(range(head.worker_ports[0], head.worker_ports[1] + 1))
    lo, hi = node.worker_port_range
    mine = set(node.ports().values()) | set(range(lo, hi + 1))
    assert not mine & head_ports
    second = RayWorkerNode(s, name="c", slot=1)
    lo2, hi2 = second.worker_port_range
    assert not (set(second.ports().values()) | set(range(lo2, hi2 + 1))) & mine
    assert node.env()["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"  # children keep loopback addresses
    assert worker_nodes(s) == []  # nothing started from this runtime dir


@pytest.mark.parametrize("kw", [{"name": "Bad Name"}, {"resources": {"coview": 0}}, {"worker_ports": 0}])
def test_bad_node_options_are_named(tmp_path, kw) -> None:
    with pytest.raises(ConfigError):
        RayWorkerNode(_settings(tmp_path), **kw)
