"""`hotpath deploy validate`: the chart and manifests pass offline, and broken ones fail.

helm and kubeconform are built once with ``go install`` and cached under ``<runtime_dir>/bin`` (the first
run of this module on a bare machine takes a few minutes for helm; later runs reuse the binaries).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from hotpath.cluster import kube_check
from hotpath.config import load_settings, repo_root

REPO = repo_root()
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(settings) -> Path:
    kube_check.ensure_tools(settings.runtime_dir, REPO, print)
    return settings.runtime_dir


def test_crd_conversion_handles_int_or_string_and_strict_objects(tmp_path: Path) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "spec": {"group": "ray.io", "names": {"kind": "RayThing"}, "versions": [{"name": "v1", "schema": {
            "openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}}}}}]},
    }
    (path,) = kube_check.crd_to_schemas(yaml.safe_dump(crd), tmp_path)
    schema = json.loads(path.read_text())
    assert path.name == "raything_v1.json"
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False and "additionalProperties" not in spec["properties"]["free"]
    assert spec["properties"]["port"]["oneOf"] == [{"type": "string"}, {"type": "integer"}]
    assert schema["properties"]["apiVersion"]["enum"] == ["ray.io/v1"]


def test_repo_chart_and_cloud_manifests_validate(cache: Path) -> None:
    report = kube_check.validate(REPO, cache)
    assert report.ok, report.failures
    assert report.resources >= 20
    kinds = " ".join(report.checks)
    assert "helm lint voice-edge: ok" in kinds and "rayservice.yaml: 1 valid" in kinds


def _copy_deploy(tmp_path: Path) -> Path:
    out = tmp_path / "deploy"
    shutil.copytree(REPO / "deploy", out)
    return out


def test_broken_manifests_fail_with_the_file_and_problem_named(cache: Path, tmp_path: Path) -> None:
    deploy = _copy_deploy(tmp_path)
    rs = deploy / "cloud" / "rayservice.yaml"
    rs.write_text(rs.read_text().replace("groupName: cpu", "groupName: cpu\n      maxReplica: 3", 1))
    tenant = deploy / "cloud" / "tenants" / "tenant-demo.yaml"
    tenant.write_text(tenant.read_text().replace("policyTypes: [Ingress, Egress]", "policyTypes: Ingress", 1))
    tpl = deploy / "helm" / "voice-edge" / "templates" / "mosquitto.yaml"
    tpl.write_text(tpl.read_text().replace("replicas: 1", "replicas: one", 1))
    report = kube_check.validate(REPO, cache, deploy_dir=deploy)
    assert not report.ok
    text = "\n".join(report.failures)
    assert "rayservice.yaml: RayService/hotpath-cloud" in text and "maxReplica" in text
    assert "NetworkPolicy/deny-all" in text
    assert "StatefulSet/site-voice-edge-mqtt" in text and "replicas" in text


def test_values_outside_the_schema_fail_helm_lint(cache: Path, tmp_path: Path) -> None:
    deploy = _copy_deploy(tmp_path)
    values = deploy / "helm" / "voice-edge" / "values.yaml"
    values.write_text(values.read_text().replace("  id: demo", "  id: Not A DNS Label", 1))
    report = kube_check.validate(REPO, cache, deploy_dir=deploy)
    assert not report.ok and any("helm lint" in f for f in report.failures), report.failures


def test_chart_site_config_is_valid_hotpath_settings(cache: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(cache / "bin" / "helm"), "template", "site", str(REPO / "deploy" / "helm" / "voice-edge"),
         "--set", "tenant.id=acme", "--set", "tenant.deviceLocations.w-17=dock 4"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    site = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-site"))
    cfg = tmp_path / "site.yaml"
    cfg.write_text(site["data"]["site.yaml"])
    s = load_settings(cfg)
    assert s.voice.tenant_id == "acme" and s.voice.device_locations == {"w-17": "dock 4"}
    assert s.mqtt.simulator is False and s.mqtt.host == "site-voice-edge-mqtt"


def test_rayservice_is_what_serve_build_makes_of_the_apps() -> None:
    from hotpath.cluster.rayservice import render

    committed = (REPO / "deploy" / "cloud" / "rayservice.yaml").read_text()
    assert render() == committed, "regenerate with: hotpath deploy serve-config --write"
    cfg = yaml.safe_load(yaml.safe_load(committed.split("\n", 2)[2])["spec"]["serveConfigV2"])
    deps = {d["name"]: d for app in cfg["applications"] for d in app["deployments"]}
    assert deps["RecsIngress"]["autoscaling_config"]["target_ongoing_requests"] > 0
    assert "num_replicas" not in deps["RecsIngress"]
