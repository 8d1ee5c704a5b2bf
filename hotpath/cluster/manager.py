"""Profiles of local servers, and the ``up`` / ``down`` / ``status`` that act on them.

==========  =========================================
profile     services (started in this order)
==========  =========================================
embedded    redis, mosquitto, ray
full        redis, mosquitto, kafka, zookeeper, druid, cassandra, postgres, ray
==========  =========================================

``up`` is idempotent (a running, healthy service is reused; a healthy server that hotpath did not
start but answers on the port is reported as ``external`` and left alone), checks every service's
prerequisites before starting any, and serialises concurrent runs with a lock file in the runtime
folder. ``down`` stops every service hotpath started, whatever the profile, Ray first.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from hotpath.cluster.base import Service, ServiceStatus
from hotpath.cluster.cassandra import CassandraService
from hotpath.cluster.druid import DruidService
from hotpath.cluster.kafka import KafkaService
from hotpath.cluster.llama import LlamaService
from hotpath.cluster.mosquitto import MosquittoService
from hotpath.cluster.postgres import PostgresService
from hotpath.cluster.ray_head import RayService
from hotpath.cluster.redis_server import RedisService
from hotpath.cluster.zookeeper import ZooKeeperService
from hotpath.config import Settings
from hotpath.errors import ConfigError

__all__ = ["PROFILES", "ALL_SERVICES", "services_for", "up", "down", "status", "Outcome"]

ALL_SERVICES: tuple[type[Service], ...] = (
    RedisService,
    MosquittoService,
    KafkaService,
    ZooKeeperService,
    DruidService,
    CassandraService,
    PostgresService,
    LlamaService,
    RayService,
)
"""Every service ``down`` stops. The llama.cpp server is in no profile: the cloud app starts it."""
PROFILES: dict[str, tuple[type[Service], ...]] = {
    "embedded": (RedisService, MosquittoService, RayService),
    "full": (RedisService, MosquittoService, KafkaService, ZooKeeperService, DruidService, CassandraService,
             PostgresService, RayService),
}

Say = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}", hint=f"use one of: {', '.join(PROFILES)}")
    return profile


def services_for(settings: Settings, profile: str | None = None) -> list[Service]:
    """The services of ``profile`` (every known service when ``None``), in start order."""
    classes = ALL_SERVICES if profile is None else PROFILES[check_profile(profile)]
    return [cls(settings) for cls in classes]


@contextmanager
def _lock(settings: Settings, say: Say) -> Iterator[None]:
    path = settings.runtime_dir / "services" / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another `hotpath services` run on this runtime folder ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What ``up`` did with one service."""

    service: str
    outcome: str
    """``started``, ``running`` (reused) or ``external`` (answering, not started by hotpath)."""
    seconds: float


def up(settings: Settings, profile: str, say: Say = _quiet) -> list[Outcome]:
    """Start (or reuse) every service of ``profile``; raises ServiceError naming the one that fails."""
    services = services_for(settings, profile)
    with _lock(settings, say):
        for svc in services:  # every check before the first start
            svc.preflight()
            svc.check_startable()
        outcomes: list[Outcome] = []
        say(f"services ({profile} profile) under {settings.runtime_dir}:")
        for svc in services:
            say(f"  {svc.name:<10} starting on {svc.address} ...")
            t0 = time.monotonic()
            what = svc.start(say)
            dt = time.monotonic() - t0
            outcomes.append(Outcome(svc.name, what, dt))
            note = {"running": "already running", "external": "answering, not started by hotpath"}.get(what, what)
            say(f"  {svc.name:<10} {note} on {svc.address} ({dt:.1f}s)")
    return outcomes


def down(settings: Settings, profile: str | None = None, say: Say = _quiet) -> list[str]:
    """Stop every service hotpath started (only ``profile``'s when given), Ray first."""
    services = list(reversed(services_for(settings, profile)))
    stopped: list[str] = []
    with _lock(settings, say):
        from hotpath.cluster.worker_node import stop_all

        stopped += stop_all(settings, say)  # extra Ray nodes joined to the head go before it
        for svc in services:
            t0 = time.monotonic()
            if svc.stop():
                stopped.append(svc.name)
                say(f"  {svc.name:<10} stopped ({time.monotonic() - t0:.1f}s)")
    if not stopped:
        say("  nothing was running")
    return stopped


def status(settings: Settings, profile: str | None = None) -> list[ServiceStatus]:
    """A status row for each service (every known one when ``profile`` is ``None``)."""
    return [svc.status() for svc in services_for(settings, profile)]
