"""Offline validation of the Kubernetes packaging: ``helm lint`` + ``helm template`` + kubeconform.

Nothing is fetched at check time. The tools and schemas are built once and cached:

    <cache>/bin/helm, <cache>/bin/kubeconform     ``go install`` of pinned versions (helm ~100 s once)
    <cache>/schemas/k8s-v<K8S>/                   built-in kinds from PyPI ``kubernetes-validate``, its
                                                  ``$ref``s made relative and ``$id`` dropped
    <cache>/schemas/kuberay-v<KUBERAY>/           KubeRay's CRDs (RayCluster, RayJob, RayService) from
                                                  the Go module ``ray-operator``, turned into JSON schema
    deploy/schemas/                               the few CRDs the repo keeps by hand (Argo CD Application)

:func:`validate` returns a :class:`Report`; every failure is a line naming the file and the problem.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import yaml

from hotpath.errors import ConfigError, ServiceError

__all__ = [
    "HELM_VERSION",
    "KUBECONFORM_VERSION",
    "KUBERAY_VERSION",
    "K8S_VERSION",
    "Tools",
    "Report",
    "ensure_tools",
    "crd_to_schemas",
    "validate",
    "validate_manifests",
]

HELM_VERSION = "v3.22.0"
KUBECONFORM_VERSION = "v0.8.0"
KUBERAY_VERSION = "v1.5.0"
K8S_VERSION = "1.33.0"
_GO_PKGS = {
    "helm": f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}",
    "kubeconform": f"github.com/yannh/kubeconform/cmd/kubeconform@{KUBECONFORM_VERSION}",
}
_KUBERAY_MOD = f"github.com/ray-project/kuberay/ray-operator@{KUBERAY_VERSION}"
Say = Callable[[str], None]


@dataclass(frozen=True)
class Tools:
    helm: Path
    kubeconform: Path
    schema_dirs: tuple[Path, ...]


@dataclass
class Report:
    checks: list[str] = field(default_factory=list)
    """What ran, one line each (``helm lint deploy/helm/voice-edge: ok``)."""
    failures: list[str] = field(default_factory=list)
    resources: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if not go:
        raise ServiceError("the Go toolchain is needed once to build helm and kubeconform",
                           hint="install Go >= 1.24 (https://go.dev/dl), then run the check again")
    return go


def _run(argv: list[str], *, timeout: float, env: dict[str, str] | None = None,
         cwd: Path | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, input=stdin,
                          env={**os.environ, **(env or {})})


def _go_install(name: str, bin_dir: Path, say: Say) -> Path:
    target = bin_dir / name
    if target.exists():
        return target
    bin_dir.mkdir(parents=True, exist_ok=True)
    say(f"building {name} {_GO_PKGS[name].split('@')[1]} with go install (once; cached in {bin_dir})")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:  # outside any go.mod
        proc = _run([_go(), "install", _GO_PKGS[name]], timeout=1800, cwd=Path(tmp),
                    env={"GOBIN": str(bin_dir), "GOFLAGS": "-buildvcs=false"})
    if proc.returncode != 0 or not target.exists():
        raise ServiceError(f"go install {_GO_PKGS[name]} failed: {proc.stderr.strip()[-400:]}")
    say(f"built {name} in {time.monotonic() - t0:.0f}s")
    return target


# ---------------------------------------------------------------------------- schemas
def _int_or_string(node: object) -> object:
    """OpenAPI v3 (Kubernetes flavour) to JSON schema: int-or-string, strict objects."""
    if isinstance(node, list):
        return [_int_or_string(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _int_or_string(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.pop("anyOf", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if out.get("format") == "int-or-string":
        out.pop("format")
    if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False  # strict, like kubeconform's own converter
    return out


def crd_to_schemas(crd_text: str, out_dir: Path) -> list[Path]:
    """One JSON schema per served version of a CRD, named ``{kind}_{version}.json`` (lowercase kind)."""
    written = []
    for doc in yaml.safe_load_all(crd_text):
        if not doc or doc.get("kind") != "CustomResourceDefinition":
            continue
        spec = doc["spec"]
        kind, group = spec["names"]["kind"], spec["group"]
        for ver in spec.get("versions", []):
            schema = (ver.get("schema") or {}).get("openAPIV3Schema")
            if not schema:
                continue
            schema = _int_or_string(schema)
            props = schema.setdefault("properties", {})
            props["apiVersion"] = {"type": "string", "enum": [f"{group}/{ver['name']}"]}
            props["kind"] = {"type": "string", "enum": [kind]}
            props["metadata"] = {"type": "object"}
            schema["$schema"] = "http://json-schema.org/draft-07/schema#"
            path = out_dir / f"{kind.lower()}_{ver['name']}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(schema))
            written.append(path)
    return written


def _kuberay_schemas(cache: Path, say: Say) -> Path:
    out = cache / "schemas" / f"kuberay-{KUBERAY_VERSION}"
    if (out / ".done").exists():
        return out
    say(f"fetching KubeRay {KUBERAY_VERSION} CRDs (go mod download, once)")
    with tempfile.TemporaryDirectory() as tmp:
        proc = _run([_go(), "mod", "download", "-json", _KUBERAY_MOD], timeout=900, cwd=Path(tmp))
    if proc.returncode != 0:
        raise ServiceError(f"go mod download {_KUBERAY_MOD} failed: {(proc.stderr or proc.stdout).strip()[-400:]}")
    mod_dir = Path(json.loads(proc.stdout)["Dir"])
    bases = sorted((mod_dir / "config" / "crd" / "bases").glob("*.yaml"))
    if not bases:
        raise ServiceError(f"no CRDs under {mod_dir}/config/crd/bases")
    if out.exists():
        shutil.rmtree(out)
    for f in bases:
        crd_to_schemas(f.read_text(), out)
    (out / ".done").write_text(_KUBERAY_MOD + "\n")
    return out


def _builtin_schemas(cache: Path, say: Say) -> Path:
    out = cache / "schemas" / f"k8s-v{K8S_VERSION}"
    if (out / ".done").exists():
        return out
    try:
        import kubernetes_validate
    except ImportError as exc:
        raise ConfigError("the PyPI package kubernetes-validate is needed for the built-in kinds' schemas",
                          hint="pip install kubernetes-validate==1.37.0 (in the test extra)") from exc
    src = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"
    if not src.is_dir():
        raise ConfigError(f"kubernetes-validate has no schemas for Kubernetes {K8S_VERSION} ({src})")
    say(f"preparing Kubernetes {K8S_VERSION} schemas from kubernetes-validate (once)")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for f in src.glob("*.json"):
        text = f.read_text().replace('"/api/_definitions.json#', '"_definitions.json#')
        doc = json.loads(text)
        doc.pop("$id", None)
        (tmp / f.name).write_text(json.dumps(doc))
    (tmp / ".done").write_text(f"kubernetes-validate v{K8S_VERSION}\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def ensure_tools(cache: Path, repo: Path, say: Say = lambda m: None) -> Tools:
    """Build or find helm + kubeconform and the schema folders (idempotent; cached under ``cache``)."""
    helm = _go_install("helm", cache / "bin", say)
    kubeconform = _go_install("kubeconform", cache / "bin", say)
    dirs = [_builtin_schemas(cache, say), _kuberay_schemas(cache, say)]
    if (repo / "deploy" / "schemas").is_dir():
        dirs.append(repo / "deploy" / "schemas")
    return Tools(helm, kubeconform, tuple(dirs))


# ---------------------------------------------------------------------------- checks
def _locations(tools: Tools) -> list[str]:
    args = []
    for d in tools.schema_dirs:
        tmpl = "{{ .ResourceKind }}{{ .KindSuffix }}.json" if d.name.startswith("k8s-") else \
            "{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"
        args += ["-schema-location", f"{d}/{tmpl}"]
    return args


def validate_manifests(tools: Tools, text: str, source: str, report: Report) -> None:
    """kubeconform (strict, offline) over a multi-document YAML stream."""
    proc = _run([str(tools.kubeconform), "-strict", "-summary", "-output", "json", *_locations(tools), "-"],
                timeout=300, stdin=text)
    try:
        out = json.loads(proc.stdout or "{}")
    except ValueError:
        report.failures.append(f"{source}: kubeconform: {(proc.stderr or proc.stdout).strip()[-400:]}")
        return
    summary = out.get("summary", {})
    report.resources += int(summary.get("valid", 0))
    for res in out.get("resources", []):
        if res.get("status") in ("statusInvalid", "statusError"):
            what = f"{res.get('kind', '?')}/{res.get('name', '?')}"
            report.failures.append(f"{source}: {what}: {res.get('msg', '').strip()}")
    if proc.returncode != 0 and not report.failures:
        report.failures.append(f"{source}: kubeconform exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    if not summary.get("valid") and not report.failures:
        report.failures.append(f"{source}: no resources found")
    report.checks.append(f"kubeconform {source}: {summary.get('valid', 0)} valid, "
                         f"{summary.get('invalid', 0) + summary.get('errors', 0)} failing")


def _chart(tools: Tools, chart: Path, value_sets: Iterable[tuple[str, list[str]]], report: Report) -> None:
    lint = _run([str(tools.helm), "lint", "--strict", str(chart)], timeout=300)
    status = "ok" if lint.returncode == 0 else "FAILED"
    report.checks.append(f"helm lint {chart.name}: {status}")
    if lint.returncode != 0:
        lines = [ln for ln in (lint.stdout + lint.stderr).splitlines() if "[ERROR]" in ln or "Error" in ln]
        report.failures.append(f"helm lint {chart}: {' | '.join(lines)[-600:] or lint.stdout[-600:]}")
    for label, sets in value_sets:
        argv = [str(tools.helm), "template", "site", str(chart), "--namespace", "voice-edge"]
        for s in sets:
            argv += ["--set", s]
        proc = _run(argv, timeout=300)
        if proc.returncode != 0:
            report.failures.append(f"helm template {chart.name} ({label}): {proc.stderr.strip()[-600:]}")
            continue
        validate_manifests(tools, proc.stdout, f"{chart.name} ({label})", report)


CHART_VALUE_SETS = (
    ("defaults", []),
    ("GPU STT, TLS", ["stt.gpu.enabled=true", "mqtt.tls.enabled=true", "mqtt.tls.secretName=site-mqtt-tls"]),
    ("chart-made Secrets", ["mqtt.auth.passwd=u:h", "mqtt.auth.acl=user u", "mqtt.auth.edgePassword=p",
                            "cloud.apiKey.value=k", "cloud.endpoint=https://cloud.example.com/v1/query"]),
)


def validate(repo: Path, cache: Path, say: Say = lambda m: None, *, deploy_dir: Path | None = None) -> Report:
    """Lint and render every chart under ``deploy/helm``, validate them and ``deploy/cloud`` offline."""
    deploy = deploy_dir or repo / "deploy"
    tools = ensure_tools(cache, repo, say)
    if deploy_dir is not None and (deploy_dir / "schemas").is_dir() and deploy_dir / "schemas" not in tools.schema_dirs:
        tools = Tools(tools.helm, tools.kubeconform, (*tools.schema_dirs[:2], deploy_dir / "schemas"))
    report = Report()
    charts = sorted(p.parent for p in (deploy / "helm").glob("*/Chart.yaml"))
    if not charts:
        report.failures.append(f"no Helm chart under {deploy / 'helm'}")
    for chart in charts:
        say(f"checking chart {chart.name}")
        _chart(tools, chart, CHART_VALUE_SETS, report)
    cloud = sorted((deploy / "cloud").glob("**/*.yaml")) + sorted((deploy / "argocd").glob("*.yaml"))
    for f in cloud:
        say(f"checking {f.relative_to(deploy)}")
        validate_manifests(tools, f.read_text(), str(f.relative_to(deploy)), report)
    return report
