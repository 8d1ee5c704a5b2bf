"""The cloud's KubeRay ``RayService``: its ``serveConfigV2`` is what ``serve build`` writes for the hotpath
apps, with the per-deployment autoscaling below laid over it.

``hotpath deploy serve-config --write`` regenerates ``deploy/cloud/rayservice.yaml``; a test checks that
the committed file is what the generator makes from the code as it is, so a deployment renamed or added
in code cannot silently drift from the manifest.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from hotpath.errors import ServiceError

__all__ = ["CloudApp", "CLOUD_APPS", "serve_build", "serve_config", "rayservice", "render"]

RAY_VERSION = "2.60.0"
IMAGE = "ghcr.io/hotpath/hotpath:0.1.0"
MIG_RESOURCE = "nvidia.com/mig-1g.10gb"


@dataclass(frozen=True)
class CloudApp:
    name: str
    import_path: str
    route_prefix: str
    autoscaling: dict[str, dict] = field(default_factory=dict)
    """deployment name -> Serve ``autoscaling_config`` (min/max replicas, target ongoing requests)."""


CLOUD_APPS: tuple[CloudApp, ...] = (
    CloudApp("recs", "hotpath.graphs.recs_app:app", "/v1/recs",
             {"RecsIngress": {"min_replicas": 2, "max_replicas": 16, "target_ongoing_requests": 32,
                              "upscale_delay_s": 10, "downscale_delay_s": 300}}),
    CloudApp("cloud", "hotpath.graphs.cloud_app:app", "/v1",
             {"CloudIngress": {"min_replicas": 1, "max_replicas": 8, "target_ongoing_requests": 16}}),
)


def serve_build(import_paths: list[str], *, timeout_s: float = 300) -> dict:
    """Run ``serve build`` (Ray's own CLI) and return the config it writes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "serve.yaml"
        argv = [sys.executable, "-m", "ray.serve.scripts", "build", *import_paths, "-o", str(out)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0 or not out.exists():
            argv[1:3] = []
            proc = subprocess.run([str(Path(sys.executable).with_name("serve")), "build", *import_paths,
                                   "-o", str(out)], capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0 or not out.exists():
            raise ServiceError(f"serve build failed: {proc.stderr.strip()[-500:]}")
        return yaml.safe_load(out.read_text())


def serve_config(apps: tuple[CloudApp, ...] = CLOUD_APPS, built: dict | None = None) -> dict:
    """``serve build``'s output with the apps named, routed and autoscaled as declared above."""
    cfg = built if built is not None else serve_build([a.import_path for a in apps])
    by_path = {a.import_path: a for a in apps}
    for app in cfg["applications"]:
        want = by_path[app["import_path"]]
        app["name"], app["route_prefix"] = want.name, want.route_prefix
        for dep in app.get("deployments", []):
            auto = want.autoscaling.get(dep["name"])
            if auto:
                dep.pop("num_replicas", None)
                dep["autoscaling_config"] = dict(auto)
    cfg["logging_config"]["enable_access_log"] = False
    return cfg


def _container(name: str, resources: dict, ports: list[dict] | None = None) -> dict:
    c = {"name": name, "image": IMAGE, "resources": resources,
         "env": [{"name": "RAY_USAGE_STATS_ENABLED", "value": "0"}]}
    if ports:
        c["ports"] = ports
    return c


def rayservice(cfg: dict, *, namespace: str = "hotpath-cloud") -> dict:
    cpu_worker = {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"memory": "12Gi"}}
    mig_worker = {"requests": {"cpu": "2", "memory": "16Gi", MIG_RESOURCE: "1"},
                  "limits": {"memory": "24Gi", MIG_RESOURCE: "1"}}
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "hotpath-cloud", "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": "hotpath-cloud"}},
        "spec": {
            "serveConfigV2": yaml.safe_dump(cfg, sort_keys=False),
            "rayClusterConfig": {
                "rayVersion": RAY_VERSION,
                "enableInTreeAutoscaling": True,
                "autoscalerOptions": {"upscalingMode": "Default", "idleTimeoutSeconds": 120},
                "headGroupSpec": {
                    "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0",
                                       "metrics-export-port": "8080"},
                    "template": {"metadata": {"annotations": {"prometheus.io/scrape": "true",
                                                              "prometheus.io/port": "8080"}},
                                 "spec": {"containers": [_container(
                                     "ray-head", {"requests": {"cpu": "2", "memory": "8Gi"},
                                                  "limits": {"memory": "8Gi"}},
                                     [{"name": "gcs", "containerPort": 6379},
                                      {"name": "dashboard", "containerPort": 8265},
                                      {"name": "serve", "containerPort": 8000},
                                      {"name": "metrics", "containerPort": 8080}])]}},
                },
                "workerGroupSpecs": [
                    {"groupName": "cpu", "replicas": 2, "minReplicas": 2, "maxReplicas": 16,
                     "rayStartParams": {"metrics-export-port": "8080"},
                     "template": {"spec": {"containers": [_container("ray-worker", cpu_worker)]}}},
                    {"groupName": "gpu-mig-1g", "replicas": 0, "minReplicas": 0, "maxReplicas": 7,
                     "rayStartParams": {"num-gpus": "1", "metrics-export-port": "8080",
                                        "resources": '"{\\"mig-1g.10gb\\": 1}"'},
                     "template": {"spec": {
                         "nodeSelector": {"nvidia.com/mig.config": "all-1g.10gb"},
                         "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                         "containers": [_container("ray-worker", mig_worker)]}}},
                ],
            },
        },
    }


HEADER = """\
# Generated by `hotpath deploy serve-config --write` from `serve build` of the hotpath apps
# (hotpath/cluster/rayservice.py: CLOUD_APPS holds names, routes and autoscaling). Do not edit by hand.
"""


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(built: dict | None = None) -> str:
    return HEADER + yaml.dump(rayservice(serve_config(built=built)), Dumper=_Dumper, sort_keys=False, width=110)
