"""``hotpath deploy validate|serve-config``: the Kubernetes packaging, checked offline.

``validate`` lints and renders the Helm chart(s) under ``deploy/helm`` and runs kubeconform over them and
``deploy/cloud`` + ``deploy/argocd``, against Kubernetes' and KubeRay's schemas (helm, kubeconform and the
schemas are built once and cached under ``<runtime_dir>``). Exit code 1 when anything fails.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]


def register(root: typer.Typer, bench: typer.Typer) -> None:
    deploy = typer.Typer(no_args_is_help=True, help="Kubernetes packaging: the edge Helm chart and the cloud manifests.")
    root.add_typer(deploy, name="deploy")

    @deploy.command("validate")
    def validate(
        deploy_dir: Optional[Path] = typer.Option(None, "--dir", help="the deploy/ folder to check (default: the repo's)"),
        as_json: bool = typer.Option(False, "--json"),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML settings file (else HOTPATH_CONFIG)"),
    ) -> None:
        """helm lint + helm template + kubeconform (Kubernetes 1.33 and KubeRay v1.5.0 schemas), offline."""
        from hotpath.cluster.kube_check import validate as run
        from hotpath.config import load_settings, repo_root

        s = load_settings(config)
        say = (lambda m: None) if as_json else (lambda m: typer.echo(f"  {m}"))
        report = run(repo_root(), s.runtime_dir, say, deploy_dir=deploy_dir)
        if as_json:
            typer.echo(json.dumps({"ok": report.ok, "resources": report.resources, "checks": report.checks,
                                   "failures": report.failures}, indent=2))
        else:
            for line in report.checks:
                typer.echo(line)
            for line in report.failures:
                typer.echo(f"FAIL {line}", err=True)
            typer.echo(f"{'ok' if report.ok else 'FAILED'}: {report.resources} resources valid, "
                       f"{len(report.failures)} failures")
        if not report.ok:
            raise typer.Exit(1)

    @deploy.command("serve-config")
    def serve_config(write: bool = typer.Option(False, "--write", help="rewrite deploy/cloud/rayservice.yaml")) -> None:
        """The cloud RayService from `serve build` of the hotpath apps (stdout, or --write)."""
        from hotpath.cluster.rayservice import render
        from hotpath.config import repo_root

        text = render()
        if write:
            path = repo_root() / "deploy" / "cloud" / "rayservice.yaml"
            path.write_text(text)
            typer.echo(f"wrote {path}")
        else:
            typer.echo(text, nl=False)
