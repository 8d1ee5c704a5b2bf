"""The :class:`Service` base: one local server started in the background and stopped by its PID.

A service lives in ``<runtime_dir>/services/<name>/``: its generated config, ``data/``,
``<name>.log`` and ``<name>.pid``. The life cycle, the same for every server:

    preflight()   cheap checks before anything starts (java present, ...)
    start()       reuse a healthy one, else: port checks, prepare(), spawn, wait for probe()
    probe()       one real readiness check (PING, MQTT CONNACK, metadata, CQL); raises when not ready
    stop()        SIGTERM the service's PID and its session, wait, SIGKILL, remove the pid file
    status()      a :class:`ServiceStatus` row

Failures raise :class:`~hotpath.errors.ServiceError` whose message names the service and what went
wrong and whose hint points at the log (or the setting to change).
"""

from __future__ import annotations

import abc
import asyncio
import concurrent.futures
import subprocess
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import ClassVar

from hotpath.cluster import process
from hotpath.config import Settings
from hotpath.errors import HotpathError, ServiceError

__all__ = ["Health", "ServiceStatus", "Service", "NotReady", "run_sync"]


def run_sync(coro):  # noqa: ANN001, ANN201
    """Run a coroutine to completion from sync code, even when the caller's thread has a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class Health(str, Enum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"  # our process runs but does not answer
    STOPPED = "stopped"
    EXTERNAL = "external"  # a healthy server we did not start answers on the port (left alone)
    BLOCKED = "port-taken"  # something else holds the port


class NotReady(HotpathError):
    """Raised by :meth:`Service.probe` while the server does not answer yet (internal)."""


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """One row of ``hotpath services status``."""

    name: str
    address: str
    pid: int | None
    health: Health
    detail: str = ""
    log: str = ""
    rss_mib: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "address": self.address,
            "pid": self.pid,
            "health": self.health.value,
            "detail": self.detail,
            "log": self.log,
            "rss_mib": self.rss_mib,
        }


class Service(abc.ABC):
    """A local server; subclasses say how to configure, launch and probe it."""

    name: ClassVar[str]
    env_key: ClassVar[str]
    """The settings section, for hints: ``HOTPATH_<ENV_KEY>__PORT``."""
    start_timeout_s: ClassVar[float] = 30.0
    stop_grace_s: ClassVar[float] = 10.0
    probe_timeout_s: ClassVar[float] = 2.0

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.runtime_dir / "services" / self.name
        self.data_dir = self.dir / "data"
        self.log_path = self.dir / f"{self.name}.log"
        self.pid_path = self.dir / f"{self.name}.pid"
        self._proc: subprocess.Popen | None = None

    # ------------------------------------------------------------------ what subclasses define
    @property
    @abc.abstractmethod
    def host(self) -> str: ...

    @abc.abstractmethod
    def ports(self) -> dict[str, int]:
        """Every TCP port the server listens on, by setting name (``port`` first)."""

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the server in the foreground."""

    @abc.abstractmethod
    def probe(self) -> None:
        """One real readiness check; raise :class:`NotReady` (or any exception) when not ready."""

    def preflight(self) -> None:
        """Cheap checks that must pass before any service starts (raise ServiceError)."""

    def prepare(self, say=lambda msg: None) -> None:  # noqa: ANN001 - a progress callback
        """Write config files, create directories, fetch what is missing (idempotent)."""

    def env(self) -> dict[str, str]:
        return {}

    def after_ready(self, say) -> None:  # noqa: ANN001 - a progress callback
        """Run once the server answers (e.g. apply a schema)."""

    # ------------------------------------------------------------------ derived
    @property
    def address(self) -> str:
        return f"{self.host}:{self.ports()['port']}"

    def record(self) -> process.PidRecord | None:
        return process.read_pid(self.pid_path)

    def processes(self) -> list[int]:
        rec = self.record()
        return rec.processes() if rec else []

    def running(self) -> bool:
        rec = self.record()
        return bool(rec and rec.alive())

    def healthy(self) -> bool:
        try:
            self.probe()
        except Exception:
            return False
        return True

    def _healthy_with_retry(self) -> bool:
        """``healthy()``, asked twice half a second apart (a busy 2-core box can miss one probe)."""
        if self.healthy():
            return True
        time.sleep(0.5)
        return self.healthy()

    def fail(self, what: str, *, hint: str | None = None, show_log: bool = True) -> ServiceError:
        """A ServiceError naming this service, with the log's last line and path in the hint."""
        parts = [f"{self.name}: {what}"]
        if show_log:
            err = process.last_error(self.log_path)
            if err:
                parts.append(f"log says: {err[:300]}")
            else:
                last = process.tail(self.log_path, 2).replace("\n", " | ")
                if last:
                    parts.append(f"log ends: {last[-300:]}")
        return ServiceError("; ".join(parts), hint=hint or f"see {self.log_path}")

    def _port_hint(self, key: str) -> str:
        return f"stop what holds it, or set HOTPATH_{self.env_key}__{key.upper()} to a free port"

    def check_ports(self) -> None:
        for key, port in self.ports().items():
            if not process.port_free(self.host, port):
                holder = self._holder(port)
                raise ServiceError(
                    f"{self.name}: port {self.host}:{port} ({key}) is already taken{holder}",
                    hint=self._port_hint(key),
                )

    @staticmethod
    def _holder(port: int) -> str:
        found = process.listeners() or []
        for lst in found:
            if lst.port == port and lst.process:
                pid = f" pid {lst.pids[0]}" if lst.pids else ""
                return f" by {lst.process}{pid}"
        return " by another process"

    def check_startable(self) -> None:
        """Before any service starts: raise when this one is not running and its ports are taken
        by something that is not a healthy server of this kind."""
        if self.running():
            return
        if not process.port_free(self.host, self.ports()["port"]) and self.healthy():
            return
        self.check_ports()

    # ------------------------------------------------------------------ life cycle
    def start(self, say=lambda msg: None) -> str:  # noqa: ANN001
        """Make the service run and answer; returns ``started``, ``running`` or ``external``."""
        if self.running():
            self._wait_ready(self.start_timeout_s, spawned=False)
            self.after_ready(say)
            return "running"
        if self.pid_path.exists():
            self.stop()  # stale: clean the pid file and any left-over session members
        if not process.port_free(self.host, self.ports()["port"]) and self.healthy():
            return "external"
        self.check_ports()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare(say)
        self.launch()
        try:
            self._wait_ready(self.start_timeout_s, spawned=True)
        except ServiceError:
            self.stop()
            raise
        self.after_ready(say)
        return "started"

    def launch(self) -> None:
        """Spawn :meth:`command` in the background and write the pid file."""
        try:
            self._proc = process.spawn(self.command(), log=self.log_path, env=self.env(), cwd=self.dir)
        except OSError as exc:
            raise self.fail(f"could not be launched: {exc}", show_log=False) from exc
        pid = self._proc.pid
        process.write_pid(self.pid_path, process.PidRecord(pid, process.start_time(pid), pid))

    def _exited(self) -> int | None:
        """The exit code when the spawned process died, else ``None``."""
        if self._proc is not None:
            return self._proc.poll()
        rec = self.record()
        return None if rec and rec.alive() else -1

    def _wait_ready(self, timeout_s: float, *, spawned: bool) -> bool:
        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while True:
            code = self._exited()
            if code is not None and spawned:
                raise self.fail(f"exited right after start (exit code {code})")
            if code is not None:
                raise self.fail("its process died while waiting for it to answer")
            try:
                self.probe()
                return True
            except Exception as exc:  # noqa: BLE001 - any probe failure means "not yet"
                last = exc
            if time.monotonic() >= deadline:
                why = f": {last}" if last else ""
                raise self.fail(f"not ready after {timeout_s:.0f}s on {self.address}{why}")
            time.sleep(0.25 if spawned else 0.5)

    def stop(self) -> bool:
        """Stop the service by its PID (and its session); True when something was stopped."""
        rec = self.record()
        pids = rec.processes() if rec else []
        if pids:
            refresh = (lambda: rec.processes()) if rec else None
            process.terminate(pids, grace_s=self.stop_grace_s, refresh=refresh)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
            self._proc = None
        self.pid_path.unlink(missing_ok=True)
        return bool(pids)

    def status(self) -> ServiceStatus:
        rec = self.record()
        log = str(self.log_path)
        if rec and rec.alive():
            pids = rec.processes()
            rss = round(process.rss_kib(pids) / 1024, 1)
            if self._healthy_with_retry():
                return ServiceStatus(self.name, self.address, rec.pid, Health.HEALTHY, "", log, rss)
            return ServiceStatus(self.name, self.address, rec.pid, Health.UNHEALTHY, "not answering", log, rss)
        if not process.port_free(self.host, self.ports()["port"]):
            if self.healthy():
                return ServiceStatus(self.name, self.address, None, Health.EXTERNAL, "not started by hotpath", log)
            return ServiceStatus(self.name, self.address, None, Health.BLOCKED, "port held by another process", log)
        return ServiceStatus(self.name, self.address, None, Health.STOPPED, "", log)

    # ------------------------------------------------------------------ helpers for subclasses
    def write_if_changed(self, path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
