"""ray_cluster.yaml is a valid on-prem (local provider) cluster-launcher config, bound to node IPs."""

from __future__ import annotations

import os

import yaml

from hotpath.config import repo_root


def test_ray_cluster_yaml_passes_rays_own_validation() -> None:
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    from ray.autoscaler._private.util import prepare_config, validate_config

    raw = yaml.safe_load((repo_root() / "ray_cluster.yaml").read_text())
    validate_config(raw)
    cfg = prepare_config(raw)
    validate_config(cfg)
    provider = cfg["provider"]
    assert provider["type"] == "local" and provider["head_ip"] and provider["worker_ips"]
    assert cfg["max_workers"] == len(provider["worker_ips"])
    assert any("pip install" in c and "~/hotpath" in c for c in cfg["setup_commands"])
    head = " ".join(cfg["head_start_ray_commands"])
    worker = " ".join(cfg["worker_start_ray_commands"])
    assert f"--node-ip-address={provider['head_ip']}" in head and "--dashboard-host=127.0.0.1" in head
    assert "--node-ip-address=$NODE_IP" in worker and "--address=$RAY_HEAD_IP:" in worker
    assert "0.0.0.0" not in head + worker
