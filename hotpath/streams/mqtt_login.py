"""Who hotpath's own MQTT clients log in as: ``aiomqtt.Client(host, port, **client_login())``.

The edge's user comes from the settings (``mqtt.username`` / ``mqtt.password``: a Secret on a site);
left unset, from the credentials the local broker generated in ``<runtime_dir>/<mqtt.auth_dir>/clients.json``
(``hotpath services up`` writes it, mode 0600). The ``simulator`` role (a test watch that may speak as
any device) only ever comes from that local file. With ``mqtt.auth`` off, or nothing found, the client
connects without a login (and a broker that checks logins refuses it).

Inside Ray actors the settings are read from the worker's environment (``HOTPATH_*``, the same the
head was started with), so an actor needs no extra constructor argument for its login.
"""

from __future__ import annotations

import json
from pathlib import Path

from hotpath.config import Settings, load_settings

__all__ = ["client_login", "credentials_path", "ROLES"]

ROLES = ("edge", "simulator")


def credentials_path(settings: Settings) -> Path:
    return settings.in_runtime(settings.mqtt.auth_dir) / "clients.json"


def _generated(settings: Settings) -> dict[str, dict[str, str]]:
    try:
        return json.loads(credentials_path(settings).read_text())
    except (OSError, ValueError):
        return {}


def client_login(role: str = "edge", settings: Settings | None = None) -> dict[str, str]:
    """``username``/``password`` keyword arguments for ``aiomqtt.Client`` (empty: connect anonymously)."""
    s = settings if settings is not None else load_settings()
    m = s.mqtt
    if role == "edge" and m.username:
        return {"username": m.username, "password": m.password.get_secret_value() if m.password else ""}
    found = _generated(s).get(role)
    if found and found.get("username"):
        return {"username": found["username"], "password": found.get("password", "")}
    if role == "simulator":  # no simulator user here: try as the edge (a site's own test tool)
        return client_login("edge", s)
    return {}
