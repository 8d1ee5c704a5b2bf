"""``hotpath devices add|remove|list|export``: the watches allowed on the broker, each with its own login.

A device's clear password is printed once, by ``add`` (hash only on disk); the running broker re-reads
its password and ACL files at once (SIGHUP, no restart), so a removed device is cut off immediately.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]


def _service(config: Optional[Path]):  # noqa: ANN202
    from hotpath.cluster.mosquitto import MosquittoService
    from hotpath.config import load_settings
    from hotpath.errors import ConfigError

    s = load_settings(config)
    if not s.mqtt.auth:
        raise ConfigError("mqtt.auth is off: the broker admits anyone, device logins would not be checked",
                          hint="set mqtt.auth: true (the default)")
    return MosquittoService(s)


def register(root: typer.Typer, bench: typer.Typer) -> None:
    devices = typer.Typer(no_args_is_help=True, help="Watches allowed on the MQTT broker (per-device logins and ACL).")
    root.add_typer(devices, name="devices")
    config_opt = typer.Option(None, "--config", help="YAML settings file (else HOTPATH_CONFIG)")

    @devices.command("add")
    def add(
        device_id: str = typer.Argument(..., help="the watch's id (one topic level: wearable/{id}/audio)"),
        location: str = typer.Option("", "--location", help="where it is used (shown by list)"),
        password_stdin: bool = typer.Option(False, "--password-stdin", help="read the password from stdin"),
        rotate: bool = typer.Option(False, "--rotate", help="give an already provisioned device a new password"),
        as_json: bool = typer.Option(False, "--json"),
        config: Optional[Path] = config_opt,
    ) -> None:
        """Provision a device; prints its password once (store it on the watch)."""
        mq = _service(config)
        reg = mq.registry()
        given = sys.stdin.readline().strip() if password_stdin else None
        password = reg.add(device_id, given, location=location, reserved=mq.reserved_names(), replace=rotate)
        reg.save()
        reloaded = mq.apply_auth() and mq.running()
        if as_json:
            typer.echo(json.dumps({"device": device_id, "username": device_id, "password": password,
                                   "reloaded": reloaded}))
            return
        typer.echo(f"device {device_id}: username {device_id}, password {password}")
        typer.echo(f"  may publish {mq.settings.voice.topic_prefix}wearable/{device_id}/audio, "
                   f"read its own tts/events{'; broker reloaded' if reloaded else ''}")

    @devices.command("remove")
    def remove(device_id: str = typer.Argument(...), config: Optional[Path] = config_opt) -> None:
        """Revoke a device: its login and ACL go at once."""
        mq = _service(config)
        reg = mq.registry()
        reg.remove(device_id)
        reg.save()
        reloaded = mq.apply_auth() and mq.running()
        typer.echo(f"device {device_id} removed{'; broker reloaded' if reloaded else ''}")

    @devices.command("list")
    def list_(as_json: bool = typer.Option(False, "--json"), config: Optional[Path] = config_opt) -> None:
        """The provisioned devices."""
        import time

        mq = _service(config)
        rows = [d.as_dict() for d in sorted(mq.registry().devices.values(), key=lambda d: d.id)]
        if as_json:
            typer.echo(json.dumps(rows))
            return
        if not rows:
            typer.echo("no devices provisioned (hotpath devices add ID)")
            return
        for r in rows:
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["added_at"]))
            typer.echo(f"{r['id']:<24} added {when} UTC  {r['location']}")

    @devices.command("export")
    def export(out: Path = typer.Option(..., "--out", help="folder for passwd, acl, edge-password (a Secret's files)"),
               with_simulator: bool = typer.Option(False, "--with-simulator",
                                                   help="keep the simulator user (test sites only)"),
               config: Optional[Path] = config_opt) -> None:
        """Write the broker's password and ACL files and the edge's password, for the chart's MQTT Secret."""
        from hotpath.cluster.mqtt_auth import write_atomic

        mq = _service(config)
        passwd, acl = mq.render_auth(simulator=None if with_simulator else False)
        edge = next(u for u in mq.service_users() if u.role == "edge")
        for name, text in (("passwd", passwd), ("acl", acl), ("edge-password", edge.password)):
            write_atomic(out / name, text)
        typer.echo(f"wrote {out}/passwd, acl, edge-password (user {edge.username}): kubectl create secret generic "
                   f"voice-edge-mqtt --from-file={out}/passwd --from-file={out}/acl --from-file={out}/edge-password")
