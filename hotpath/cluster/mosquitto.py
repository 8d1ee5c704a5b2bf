"""Mosquitto 2 (the Debian package) on ``settings.mqtt.port``, bound to loopback.

Readiness is a real MQTT 3.1.1 CONNECT, logged in as the edge's user, answered by a CONNACK with
return code 0 (a raw socket: no MQTT client library is needed for that).

Who may speak: anonymous clients are refused, every watch logs in with its own credentials and may
publish only its own audio (:mod:`hotpath.cluster.mqtt_auth` renders the password and ACL files from
the device registry); ``hotpath devices add|remove`` rewrites them and the running broker re-reads
them on SIGHUP, without a restart. An optional second listener speaks TLS (``mqtt.tls_port``).
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import shutil
import socket
from pathlib import Path

from hotpath.cluster.base import NotReady, Service
from hotpath.cluster.mqtt_auth import (
    DeviceRegistry,
    ServiceUser,
    new_password,
    render_acl,
    render_passwd,
    write_atomic,
)
from hotpath.errors import ServiceError
from hotpath.streams.mqtt_login import client_login, credentials_path

__all__ = ["MosquittoService", "mqtt_connect"]


def _binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if Path(p).exists()), None
    )


def _utf8(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


CONNACK_REASONS = {1: "protocol version refused", 2: "client id refused", 3: "server unavailable",
                   4: "bad user name or password", 5: "not authorized"}


def mqtt_connect(host: str, port: int, timeout_s: float = 2.0, client_id: str = "",
                 username: str | None = None, password: str | None = None) -> None:
    """CONNECT (clean session, with a login when given) and expect CONNACK 0, then DISCONNECT;
    raise NotReady otherwise."""
    cid = client_id or f"hotpath-probe-{os.getpid()}"
    flags = 0x02 | (0x80 if username else 0) | (0x40 if username and password else 0)
    var = _utf8("MQTT") + bytes([4, flags]) + (30).to_bytes(2, "big")  # level 4, keepalive 30 s
    body = var + _utf8(cid) + (_utf8(username) if username else b"") + (
        _utf8(password) if username and password else b"")
    packet = bytes([0x10]) + _remaining_length(len(body)) + body
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as s:
            s.settimeout(timeout_s)
            s.sendall(packet)
            ack = b""
            while len(ack) < 4:
                chunk = s.recv(4 - len(ack))
                if not chunk:
                    break
                ack += chunk
            if len(ack) < 4 or ack[0] != 0x20 or ack[1] != 0x02:
                raise NotReady(f"no CONNACK (got {ack!r})")
            if ack[3] != 0:
                why = CONNACK_REASONS.get(ack[3], "refused")
                raise NotReady(f"CONNACK refused the connection (code {ack[3]}: {why})")
            s.sendall(b"\xe0\x00")
    except OSError as exc:
        raise NotReady(f"MQTT connect failed: {exc}") from exc


class MosquittoService(Service):
    name = "mosquitto"
    env_key = "MQTT"
    start_timeout_s = 15.0

    @property
    def host(self) -> str:
        return self.settings.mqtt.host

    @property
    def conf_path(self) -> Path:
        return self.dir / "mosquitto.conf"

    # ------------------------------------------------------------------ who may speak
    @property
    def auth_dir(self) -> Path:
        return self.settings.in_runtime(self.settings.mqtt.auth_dir)

    @property
    def registry_path(self) -> Path:
        return self.auth_dir / "devices.json"

    @property
    def passwd_path(self) -> Path:
        return self.auth_dir / "passwd"

    @property
    def acl_path(self) -> Path:
        return self.auth_dir / "acl"

    def service_users(self) -> list[ServiceUser]:
        """The edge's own users (and the simulator's), generated once into clients.json (0600)."""
        m = self.settings.mqtt
        path = credentials_path(self.settings)
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        wanted = {"edge": m.username or m.edge_user}
        if m.simulator:
            wanted["simulator"] = m.simulator_user
        users, changed = [], False
        for role, name in wanted.items():
            have = known.get(role) or {}
            password = have.get("password") if have.get("username") == name else None
            if role == "edge" and m.username and m.password:
                password = m.password.get_secret_value()
            if not password:
                password = new_password()
            if have != {"username": name, "password": password}:
                known[role], changed = {"username": name, "password": password}, True
            users.append(ServiceUser(role, name, password))
        for role in [r for r in known if r not in wanted]:
            del known[role]
            changed = True
        if changed:
            write_atomic(path, json.dumps(known, indent=1) + "\n")
        return users

    def registry(self) -> DeviceRegistry:
        return DeviceRegistry.load(self.registry_path)

    def reserved_names(self) -> tuple[str, ...]:
        m = self.settings.mqtt
        return tuple(n for n in (m.username, m.edge_user, m.simulator_user) if n)

    def render_auth(self, *, simulator: bool | None = None) -> tuple[str, str]:
        """The password file and the ACL file, rendered from the registry and the service users."""
        users = self.service_users()
        if simulator is False:
            users = [u for u in users if u.role != "simulator"]
        devices = self.registry().devices
        v = self.settings.voice
        from hotpath.voice.context_compile import tenant_action_topics

        more, topics = tenant_action_topics(v)
        acl = render_acl(devices, users, prefix=v.topic_prefix, summon_topic=v.actions.summon_topic,
                         extra_level=any(u.role == "simulator" for u in users), more_prefixes=more,
                         action_topics=topics)
        return render_passwd(devices, users), acl

    def write_auth(self) -> bool:
        """Write the password and ACL files from the registry; True when either changed."""
        passwd, acl = self.render_auth()
        a = write_atomic(self.passwd_path, passwd)
        b = write_atomic(self.acl_path, acl)
        return a or b

    def reload(self) -> bool:
        """Make the running broker re-read its config, password and ACL files (SIGHUP, no restart)."""
        rec = self.record()
        if not (rec and rec.alive()):
            return False
        os.kill(rec.pid, signal.SIGHUP)
        return True

    def apply_auth(self) -> bool:
        """Rewrite the files and reload a running broker when they changed (``hotpath devices``)."""
        changed = self.write_auth()
        if changed:
            self.reload()
        return changed

    def conf_text(self) -> str:
        m = self.settings.mqtt
        lines = [
            "# generated by hotpath: do not edit (rewritten on `hotpath services up`)",
            # run as whoever starts it (as root, mosquitto would switch to user 'mosquitto',
            # who cannot write the runtime folder)
            f"user {getpass.getuser()}",
            "per_listener_settings false",
        ]
        if m.auth:
            lines += ["allow_anonymous false", f"password_file {self.passwd_path}", f"acl_file {self.acl_path}"]
        else:
            lines += ["allow_anonymous true"]
        lines += [f"listener {m.port} {self.host}"]
        if m.tls_port is not None:
            lines += [f"listener {m.tls_port} {m.tls_host}", f"certfile {m.tls_certfile}", f"keyfile {m.tls_keyfile}",
                      "tls_version tlsv1.2"]
            if m.tls_cafile:
                lines += [f"cafile {m.tls_cafile}", "require_certificate true"]
        lines += [
            "persistence true",
            f"persistence_location {self.data_dir}/",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages false",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
            "",
        ]
        return "\n".join(lines)

    def ports(self) -> dict[str, int]:
        out = {"port": self.settings.mqtt.port}
        if self.settings.mqtt.tls_port is not None:
            out["tls_port"] = self.settings.mqtt.tls_port
        return out

    def preflight(self) -> None:
        if _binary() is None:
            raise ServiceError("mosquitto: the mosquitto binary was not found", hint="apt-get install mosquitto")

    def prepare(self, say=lambda msg: None) -> None:  # noqa: ANN001
        if self.settings.mqtt.auth:
            self.write_auth()
        self.write_if_changed(self.conf_path, self.conf_text())

    def after_ready(self, say) -> None:  # noqa: ANN001
        """A broker that was already running takes the current config and ACL without a restart."""
        changed = self.write_auth() if self.settings.mqtt.auth else False
        text = self.conf_text()
        if not self.conf_path.exists() or self.conf_path.read_text() != text:
            self.write_if_changed(self.conf_path, text)
            changed = True
        if changed and self.reload():
            say("mosquitto: reloaded its config, password and ACL files")
            self._wait_ready(self.start_timeout_s, spawned=False)

    def command(self) -> list[str]:
        return [_binary() or "mosquitto", "-c", str(self.conf_path)]

    def probe(self) -> None:
        login = client_login("edge", self.settings) if self.settings.mqtt.auth else {}
        mqtt_connect(self.host, self.settings.mqtt.port, self.probe_timeout_s, **login)
