"""`hotpath status`: one view of services, apps, co-view job, devices and request rates (tables, --json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from hotpath.cluster.mosquitto import MosquittoService
from hotpath.commands.status import render


def test_render_shows_every_section() -> None:
    from rich.console import Console

    view = {
        "services": [{"name": "redis", "address": "127.0.0.1:1", "pid": 7, "health": "healthy", "rss_mib": 12.0,
                      "detail": ""}],
        "apps": [{"app": "coview", "up": True, "serve": "", "detail": {"running": True}},
                 {"app": "voice", "up": False, "serve": "", "detail": {}}],
        "coview": {"running": True, "lag": 4321, "checkpoints": 17, "checkpoint_age_s": 42.0},
        "devices": {"provisioned": [{"id": "w-17", "location": "dock 4", "added_at": 0, "active": True}],
                    "active": ["w-17", "w-99"], "unprovisioned_active": ["w-99"]},
        "request_rates": {"/v1/recs": 12.5},
        "source": "exporter",
    }
    con = Console(record=True, width=140)
    render(view, con)
    text = con.export_text()
    for want in ("services", "redis", "healthy", "apps (exporter)", "coview", "4321", "17", "42 s",
                 "devices (1 provisioned, 2 active)", "w-17", "dock 4", "w-99", "not in the registry",
                 "/v1/recs", "12.50"):
        assert want in text, want


@pytest.mark.services
@pytest.mark.ray
def test_status_json_against_the_running_services(settings) -> None:
    mq = MosquittoService(settings)
    if not mq.running():
        pytest.skip("the local Mosquitto is not running (hotpath services up)")
    dev = f"w-status-{uuid.uuid4().hex[:6]}"
    reg = mq.registry()
    reg.add(dev, location="bay 3")
    reg.save()
    try:
        proc = subprocess.run([sys.executable, "-m", "hotpath.cli", "status", "--json"], capture_output=True,
                              text=True, timeout=240, env=os.environ.copy())
        assert proc.returncode == 0, proc.stderr[-2000:]
        view = json.loads(proc.stdout)
        health = {s["name"]: s["health"] for s in view["services"]}
        assert health["mosquitto"] in ("healthy", "external") and health["ray"] in ("healthy", "external")
        assert {r["app"] for r in view["apps"]} >= {"voice", "coview", "recs", "cloud"}
        assert all(isinstance(r["up"], bool) for r in view["apps"])
        mine = next(d for d in view["devices"]["provisioned"] if d["id"] == dev)
        assert mine["location"] == "bay 3" and mine["active"] is False
        assert isinstance(view["request_rates"], dict) and view["source"] in ("exporter", "one round now")
    finally:
        reg = mq.registry()
        reg.devices.pop(dev, None)
        reg.save()
