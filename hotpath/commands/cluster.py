"""``hotpath services up|down|status`` and the root ``hotpath up|down`` (what ``make run`` calls)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from hotpath.config import Settings, load_settings

__all__ = ["register"]

_PROFILE_HELP = "embedded (Redis, Mosquitto, Ray) or full (+ Kafka, Cassandra); default: settings.profile"
_CONFIG_HELP = "YAML settings file (else HOTPATH_CONFIG)"


def _settings(config: Optional[Path]) -> Settings:
    return load_settings(config)


def _echo(msg: str) -> None:
    typer.echo(msg)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*map(str, r)).rstrip() for r in [header, *rows])


def _status_table(settings: Settings) -> str:
    from hotpath.cluster import manager

    rows = []
    for st in manager.status(settings):
        rows.append(
            [
                st.name,
                st.address,
                str(st.pid) if st.pid else "-",
                st.health.value,
                f"{st.rss_mib:.0f}" if st.rss_mib is not None else "-",
                st.detail or st.log,
            ]
        )
    return _table(rows, ["service", "address", "pid", "health", "rss_mib", "detail / log"])


def _where(settings: Settings, endpoints: list) -> str:  # noqa: ANN001
    from hotpath.cluster import manager
    from hotpath.cluster.base import Health
    from hotpath.cluster.ray_head import RayService

    lines = ["", "what runs where (all on loopback):"]
    for st in manager.status(settings):
        if st.health in (Health.HEALTHY, Health.EXTERNAL):
            note = "" if st.health is Health.HEALTHY else "  (not started by hotpath)"
            lines.append(f"  {st.name:<10} {st.address}{note}")
    ray = RayService(settings)
    lines.append(f"  {'ray':<10} dashboard {ray.dashboard_url}   driver: ray.init(address=\"{settings.ray.address}\")")
    for ep in endpoints:
        lines.append(f"  {ep.app:<10} {ep.what} {ep.where}")
    if not endpoints:
        lines.append("  apps       none registered yet (hotpath/cluster/apps.py: APP_STARTERS)")
    lines.append(f"  runtime    {settings.runtime_dir}  (logs: services/<name>/<name>.log)")
    lines.append("stop everything with: hotpath down")
    return "\n".join(lines)


def register(root: typer.Typer, bench: typer.Typer) -> None:
    services = typer.Typer(no_args_is_help=True, help="The local servers (Redis, Mosquitto, Kafka, Cassandra) and Ray head.")
    root.add_typer(services, name="services")

    @services.command("up")
    def services_up(
        profile: Optional[str] = typer.Option(None, "--profile", "-p", help=_PROFILE_HELP),
        config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP),
    ) -> None:
        """Start the profile's services (reusing running ones) and wait until each answers."""
        from hotpath.cluster import manager

        settings = _settings(config)
        manager.up(settings, profile or settings.profile, say=_echo)

    @services.command("down")
    def services_down(
        profile: Optional[str] = typer.Option(None, "--profile", "-p", help="only this profile's services; default: all"),
        config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP),
    ) -> None:
        """Stop the services hotpath started (each by its PID); leaves no process behind."""
        from hotpath.cluster import manager

        manager.down(_settings(config), profile, say=_echo)

    from hotpath.commands.nodes import register_node_commands

    register_node_commands(services)

    @services.command("status")
    def services_status(
        as_json: bool = typer.Option(False, "--json", help="one JSON object per service, in a list"),
        config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP),
    ) -> None:
        """Each service: address, PID, health (and resident memory)."""
        from hotpath.cluster import manager

        settings = _settings(config)
        if as_json:
            typer.echo(json.dumps([st.as_dict() for st in manager.status(settings)], indent=2))
        else:
            typer.echo(_status_table(settings))

    @root.command("up")
    def up(
        profile: Optional[str] = typer.Option(None, "--profile", "-p", help=_PROFILE_HELP),
        config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP),
    ) -> None:
        """Start the services, local Ray and the hotpath apps; print what runs where."""
        from hotpath.cluster import apps, manager

        settings = _settings(config)
        prof = profile or settings.profile
        manager.up(settings, prof, say=_echo)
        endpoints = apps.start_apps(settings, prof, _echo)
        typer.echo(_where(settings, endpoints))

    @root.command("down")
    def down(config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP)) -> None:
        """Stop everything `hotpath up` started."""
        from hotpath.cluster import manager

        manager.down(_settings(config), None, say=_echo)
