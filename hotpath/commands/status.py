"""``hotpath status``: one terminal view of services, apps, job lag, checkpoint age, devices, request rates."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import typer

__all__ = ["register", "render"]


def render(view: dict[str, Any], console=None) -> None:  # noqa: ANN001
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    t = Table(title="services", title_justify="left")
    for col in ("service", "address", "pid", "health", "rss MiB", "detail"):
        t.add_column(col)
    for s in view["services"]:
        style = {"healthy": "green", "stopped": "dim", "external": "yellow"}.get(s["health"], "red")
        t.add_row(s["name"], s["address"], str(s["pid"] or "-"), f"[{style}]{s['health']}[/]",
                  f"{s['rss_mib']:.0f}" if s.get("rss_mib") is not None else "-", s.get("detail") or "")
    con.print(t)

    a = Table(title=f"apps ({view['source']})", title_justify="left")
    for col in ("app", "up", "serve", "detail"):
        a.add_column(col)
    for r in view["apps"]:
        d = r.get("detail") or {}
        brief = ", ".join(f"{k}={v}" for k, v in d.items() if not isinstance(v, (dict, list)))
        a.add_row(r["app"], "[green]yes[/]" if r["up"] else "[red]no[/]", r.get("serve") or "-", brief[:80])
    if not view["apps"]:
        a.add_row("-", "-", "-", "Ray is not running (hotpath up)")
    con.print(a)

    c = view.get("coview")
    j = Table(title="co-view job", title_justify="left")
    for col in ("running", "consumer lag", "checkpoints", "checkpoint age"):
        j.add_column(col)
    if c:
        age = c.get("checkpoint_age_s")
        j.add_row(str(c.get("running")), str(c.get("lag", "-")), str(int(c.get("checkpoints") or 0)),
                  f"{age:.0f} s" if age is not None else "-")
    else:
        j.add_row("-", "-", "-", "-")
    con.print(j)

    dv = view["devices"]
    d = Table(title=f"devices ({len(dv['provisioned'])} provisioned, {len(dv['active'])} active)", title_justify="left")
    for col in ("device", "location", "active", "added"):
        d.add_column(col)
    for r in dv["provisioned"]:
        d.add_row(r["id"], r.get("location") or "", "yes" if r.get("active") else "",
                  time.strftime("%Y-%m-%d", time.gmtime(r["added_at"])))
    for dev in dv.get("unprovisioned_active", []):
        d.add_row(dev, "", "yes", "[yellow]not in the registry[/]")
    con.print(d)

    q = Table(title="requests per second (Serve routes)", title_justify="left")
    q.add_column("route")
    q.add_column("req/s", justify="right")
    for route, rate in sorted(view["request_rates"].items()):
        q.add_row(route, f"{rate:.2f}")
    if not view["request_rates"]:
        q.add_row("-", "-")
    con.print(q)


def register(root: typer.Typer, bench: typer.Typer) -> None:
    @root.command("status")
    def status(
        as_json: bool = typer.Option(False, "--json", help="the same view as JSON"),
        config: Optional[Path] = typer.Option(None, "--config", help="YAML settings file (else HOTPATH_CONFIG)"),
    ) -> None:
        """Services, apps, co-view lag and checkpoint age, devices and request rates in one view."""
        from hotpath.commands.overview import gather
        from hotpath.config import load_settings

        view = gather(load_settings(config))
        if as_json:
            typer.echo(json.dumps(view, indent=2, default=str))
        else:
            render(view)
