"""What ``hotpath status`` shows: services, apps, the co-view job's lag and checkpoint age, devices and
request rates, gathered into one plain dict (``--json`` prints it; the command renders it as tables).

The app figures come from the metrics exporter's last round when it runs (``hotpath up`` starts it) and
from one round run here otherwise; nothing is started or changed.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hotpath.config import Settings

__all__ = ["gather"]


def _services(settings: Settings) -> list[dict[str, Any]]:
    from hotpath.cluster import manager

    return [st.as_dict() for st in manager.status(settings)]


def _devices(settings: Settings, active: list[str]) -> dict[str, Any]:
    from hotpath.cluster.mosquitto import MosquittoService

    try:
        reg = MosquittoService(settings).registry()
        provisioned = [d.as_dict() for d in sorted(reg.devices.values(), key=lambda d: d.id)]
    except Exception as exc:  # noqa: BLE001 - an unreadable registry is shown, not raised
        return {"provisioned": [], "active": active, "error": str(exc)}
    known = {d["id"] for d in provisioned}
    for d in provisioned:
        d["active"] = d["id"] in active
    return {"provisioned": provisioned, "active": active, "unprovisioned_active": sorted(set(active) - known)}


def _apps(settings: Settings, ray_ok: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if not ray_ok:
        return [], {}
    from hotpath.actors.metrics_exporter import EXPORTER_ACTOR, MetricsExporter
    from hotpath.cluster.connect import connect_ray

    ray = connect_ray(settings)
    snap: dict[str, Any] = {}
    source = "exporter"
    try:
        snap = ray.get(ray.get_actor(EXPORTER_ACTOR).snapshot.remote(), timeout=10) or {}
    except Exception:  # noqa: BLE001 - not running: one round here
        snap = {}
    if not snap or time.time() - snap.get("at", 0) > 60:
        source = "one round now"
        from hotpath.graphs.metrics_app import exporter_actors

        snap = asyncio.run(MetricsExporter(settings, actors=exporter_actors(settings)).poll())
    serve_apps: dict[str, str] = {}
    try:
        from ray import serve

        for name, app in serve.status().applications.items():
            serve_apps[name] = str(getattr(app.status, "value", app.status))
    except Exception:  # noqa: BLE001 - Serve not started
        pass
    rows = []
    for app, up in sorted((snap.get("up") or {}).items()):
        rows.append({"app": app, "up": bool(up), "serve": serve_apps.get(app, ""),
                     "detail": snap.get("apps", {}).get(app, {})})
    for name, st in sorted(serve_apps.items()):
        if name not in {r["app"] for r in rows}:
            rows.append({"app": name, "up": st == "RUNNING", "serve": st, "detail": {}})
    snap["source"] = source
    return rows, snap


def gather(settings: Settings) -> dict[str, Any]:
    services = _services(settings)
    ray_ok = any(s["name"] == "ray" and s["health"] in ("healthy", "external") for s in services)
    apps, snap = _apps(settings, ray_ok)
    voice = (snap.get("apps") or {}).get("voice") or {}
    active = voice.get("active_devices") or []
    coview = (snap.get("apps") or {}).get("coview")
    return {
        "at": time.time(),
        "runtime_dir": str(settings.runtime_dir),
        "services": services,
        "apps": apps,
        "coview": coview,
        "devices": _devices(settings, list(active)),
        "request_rates": snap.get("request_rates") or {},
        "source": snap.get("source", "ray not running"),
    }
