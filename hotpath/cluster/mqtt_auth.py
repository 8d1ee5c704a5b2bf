"""Who may speak on the broker: device credentials, the Mosquitto password file and the ACL file.

Plain logic (no network, no Ray): a registry of devices kept as JSON, Mosquitto's PBKDF2-SHA512 password
hashes (the ``$7$`` format ``mosquitto_passwd`` writes), and the two files the broker reads. The broker
control (:mod:`hotpath.cluster.mosquitto`) writes them and makes a running Mosquitto reload them (SIGHUP).

The rules the ACL encodes, for a topic prefix ``p`` (``voice.topic_prefix``)::

    device D        write p/wearable/D/audio     read p/wearable/D/tts, p/wearable/D/events
    edge user       read p/wearable/+/audio      write p/wearable/+/tts, p/wearable/+/events,
                    readwrite p/team/summon      (the only publisher of team/summon)
    simulator user  write p/wearable/+/audio     read p/wearable/+/tts, p/wearable/+/events
    anonymous       refused at CONNECT (``allow_anonymous false``)

The simulator user exists only when ``mqtt.simulator`` is on (local development, tests and benches: it
speaks as any watch, like ``hotpath voice say``); a site's broker runs without it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hotpath.errors import BadInput, ConfigError, NotFound

__all__ = [
    "Device",
    "DeviceRegistry",
    "ServiceUser",
    "hash_password",
    "verify_password",
    "new_password",
    "check_device_id",
    "render_passwd",
    "render_acl",
    "write_atomic",
]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ITERATIONS = 101  # what mosquitto_passwd 2.0 uses
SALT_BYTES = 12


def check_device_id(device_id: str, reserved: tuple[str, ...] = ()) -> str:
    """A device id is one topic level: letters, digits, ``_ . -`` (no ``/ + #``, no spaces)."""
    if not _ID.match(device_id or ""):
        raise BadInput(
            f"device id {device_id!r} is not allowed: use 1-64 letters, digits, '_', '.', '-' "
            "(it becomes one MQTT topic level)",
            field="device_id",
        )
    if device_id in reserved:
        raise BadInput(f"device id {device_id!r} is reserved for the edge's own MQTT users", field="device_id")
    return device_id


def new_password() -> str:
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """Mosquitto 2's ``$7$`` hash: PBKDF2-HMAC-SHA512, base64 salt and digest."""
    if not password:
        raise BadInput("an empty MQTT password is not allowed", field="password")
    salt = salt if salt is not None else os.urandom(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
    except ValueError:
        return False
    if kind != "7":
        return False
    got = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt), int(iterations))
    return hmac.compare_digest(got, base64.b64decode(digest))


@dataclass(frozen=True, slots=True)
class ServiceUser:
    """One of the edge's own MQTT users (``edge`` or ``simulator``), with its clear password."""

    role: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    hash: str
    added_at: float = 0.0
    location: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "added_at": self.added_at, "location": self.location}


@dataclass
class DeviceRegistry:
    """The provisioned watches, kept in one JSON file (hashes only: a clear password is shown once)."""

    path: Path
    devices: dict[str, Device] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> DeviceRegistry:
        if not path.exists():
            return cls(path)
        try:
            raw = json.loads(path.read_text())
            devices = {d["id"]: Device(**d) for d in raw.get("devices", [])}
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"device registry {path} is unreadable: {exc}",
                              hint="fix or remove it, then re-add the devices") from exc
        return cls(path, devices)

    def save(self) -> None:
        body = {"devices": [asdict(d) for d in sorted(self.devices.values(), key=lambda d: d.id)]}
        write_atomic(self.path, json.dumps(body, indent=1) + "\n")

    def add(self, device_id: str, password: str | None = None, *, location: str = "",
            reserved: tuple[str, ...] = (), replace: bool = False) -> str:
        """Register (or with ``replace`` re-key) a device; returns its clear password."""
        check_device_id(device_id, reserved)
        if device_id in self.devices and not replace:
            raise BadInput(f"device {device_id} is already provisioned",
                           hint="remove it first, or pass --rotate for a new password")
        password = password or new_password()
        old = self.devices.get(device_id)
        self.devices[device_id] = Device(device_id, hash_password(password), time.time(),
                                         location or (old.location if old else ""))
        return password

    def remove(self, device_id: str) -> Device:
        try:
            return self.devices.pop(device_id)
        except KeyError:
            raise NotFound(f"device {device_id} is not provisioned") from None


def _prefixes(prefix: str, extra_level: bool) -> list[str]:
    out = [prefix]
    if extra_level:
        out.append(prefix + "+/")  # isolated test runs put their own level in front (t<tag>/)
    return out


def _stable_salt(user: ServiceUser) -> bytes:
    return hashlib.sha256(f"{user.username}\0{user.password}".encode()).digest()[:SALT_BYTES]


def render_passwd(devices: dict[str, Device], users: list[ServiceUser]) -> str:
    # a salt derived from the user's own secret: the file stays the same from one render to the next
    lines = [f"{u.username}:{hash_password(u.password, salt=_stable_salt(u))}" for u in users]
    lines += [f"{d.id}:{d.hash}" for d in sorted(devices.values(), key=lambda d: d.id)]
    return "\n".join(lines) + "\n"


def render_acl(devices: dict[str, Device], users: list[ServiceUser], *, prefix: str = "",
               summon_topic: str = "team/summon", extra_level: bool = False,
               more_prefixes: tuple[str, ...] | list[str] = (), action_topics: tuple[str, ...] | list[str] = ()) -> str:
    """The ACL file. No rule before the first ``user`` line: anonymous clients get nothing.

    ``more_prefixes``: the topic prefixes of further tenants on this broker (``voice.tenants``);
    ``action_topics``: the topic filters the tenants' command contexts publish on (``lights/+/set``),
    published (and readable) by the edge under every prefix."""
    out = ["# generated by hotpath: do not edit (hotpath devices add|remove rewrites it)", ""]
    by_role = {u.role: u for u in users}
    every = [q for p in dict.fromkeys([prefix, *more_prefixes]) for q in _prefixes(p, extra_level)]
    if "edge" in by_role:
        out.append(f"user {by_role['edge'].username}")
        for p in every:
            out += [f"topic read {p}wearable/+/audio", f"topic write {p}wearable/+/tts",
                    f"topic write {p}wearable/+/events", f"topic readwrite {p}{summon_topic}"]
            out += [f"topic readwrite {p}{t}" for t in dict.fromkeys(action_topics) if t != summon_topic]
        out.append("")
    if "simulator" in by_role:
        out.append(f"user {by_role['simulator'].username}")
        for p in every:
            out += [f"topic write {p}wearable/+/audio", f"topic read {p}wearable/+/tts",
                    f"topic read {p}wearable/+/events"]
        out.append("")
    for d in sorted(devices.values(), key=lambda d: d.id):
        out += [f"user {d.id}", f"topic write {prefix}wearable/{d.id}/audio",
                f"topic read {prefix}wearable/{d.id}/tts", f"topic read {prefix}wearable/{d.id}/events", ""]
    return "\n".join(out)


def write_atomic(path: Path, text: str, mode: int = 0o600) -> bool:
    """Write ``text`` through a temporary file and rename; False when the file already held it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return True
