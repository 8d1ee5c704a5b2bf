"""The local Ray head (``ray start --head``), every port on loopback and fixed.

Ray opens many ports; left alone it picks defaults that collide with a second cluster (10001,
52365, ...) or a worker-port range (10002-19999) that overlaps the other services' ports. Here
they are all derived from ``settings.ray.port`` (P):

=====================  ==========  ===========================
GCS (the address)      P           ``settings.ray.port``
dashboard              -           ``settings.ray.dashboard_port``
node manager           P+1
object manager         P+2
Ray client server      P+3
dashboard agent HTTP   P+4
dashboard agent gRPC   P+5
runtime-env agent      P+6
metrics export         P+7
autoscaler metrics     P+8         (env AUTOSCALER_METRIC_PORT; Ray's default 44217)
dashboard metrics      P+9         (env DASHBOARD_METRIC_PORT; Ray's default 44227)
workers                P+10 .. P+10+WORKER_PORTS-1
=====================  ==========  ===========================

``ray start`` exits once the head runs; it is started as a session leader, so the GCS, raylet,
dashboard, agents and every worker share its session id, which the pid file records with the GCS
server's PID. ``stop`` signals that session only (never ``ray stop``, which would stop every Ray
on the machine). After start, every socket the session listens on is checked to be loopback.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from hotpath.cluster import process
from hotpath.cluster.base import NotReady, Service
from hotpath.errors import ServiceError

__all__ = ["RayService", "WORKER_PORTS", "RAY_ENV"]

WORKER_PORTS = 200
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray starts workers at niceness 15 by default; here they serve latency-critical requests on a
    # small box shared with the JVMs of Kafka and Cassandra, so they run at normal priority.
    "RAY_worker_niceness": "0",
    # Ray turns token auth on by itself once ~/.ray/auth_token exists (any private `ray.init()`
    # writes one), and drivers started without it are then refused. The local cluster listens on
    # loopback only (checked after start), so its mode is set explicitly, the same for head and drivers.
    "RAY_AUTH_MODE": "disabled",
}
_OFFSETS = {
    "node_manager_port": 1,
    "object_manager_port": 2,
    "ray_client_server_port": 3,
    "dashboard_agent_listen_port": 4,
    "dashboard_agent_grpc_port": 5,
    "runtime_env_agent_port": 6,
    "metrics_export_port": 7,
}
# Ports Ray only takes from the environment of `ray start`.
_ENV_OFFSETS = {
    "AUTOSCALER_METRIC_PORT": 8,
    "DASHBOARD_METRIC_PORT": 9,
}
_WORKER_OFFSET = 10
_STARTUP_LOGS = ("gcs_server.out", "raylet.out", "dashboard.log", "dashboard.err", "monitor.log")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


def check_healthz(url: str, timeout_s: float) -> None:
    """One of Ray's health endpoints (what its Kubernetes probes use): NotReady unless it says success."""
    try:
        with _NO_PROXY.open(url, timeout=timeout_s) as resp:
            body = resp.read(200).decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as exc:
        raise NotReady(f"{url}: {exc}") from exc
    if "success" not in body:
        raise NotReady(f"{url} answered {body[:100]!r}")
# Unix socket paths under the temp dir must stay within 107 bytes. The longest Ray 2.60 makes is
# {temp}/session_2026-11-26_12-08-52_545562_{pid}/sockets/dash_MetricsHead: 35 + up to 7 (pid) + 25
# bytes after the temp dir and its slash, a few more for longer dashboard module names. A temp dir
# over _MAX_TEMP_LEN moves to /tmp/hotpath-ray-{digest} (27 bytes). (At 44, a checkout at
# /check/work/main with a 5-digit pid made the dashboard's MetricsHead socket 109 bytes: the
# dashboard died and `ray start` waited for it until its own timeout.)
_SOCKET_MAX = 107
_LONGEST_SOCKET_TAIL = len("/session_2026-11-26_12-08-52_545562_1234567/sockets/dash_MetricsHead") + 8
_MAX_TEMP_LEN = _SOCKET_MAX - _LONGEST_SOCKET_TAIL


def _ray_binary() -> str:
    local = Path(sys.executable).parent / "ray"
    return str(local) if local.exists() else (shutil.which("ray") or "ray")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def run_ray_start(svc: Service, is_main: Callable[[str], bool], why: Callable[[], str] = lambda: "") -> tuple[int, int]:
    """Run ``svc``'s ``ray start`` command and wait for it to return; the PID of the session's main
    process (the first whose command line ``is_main`` accepts) and the session id. When it does not
    return in time, fails or leaves no such process, its session is stopped and ``svc.fail`` raised,
    with ``why()`` appended (e.g. the tails of Ray's own logs)."""
    try:
        proc = process.spawn(svc.command(), log=svc.log_path, env=svc.env(), cwd=svc.dir)
    except OSError as exc:
        raise svc.fail(f"could not run `ray start`: {exc}", show_log=False) from exc
    sid = proc.pid
    try:
        rc = proc.wait(timeout=svc.start_timeout_s)
    except subprocess.TimeoutExpired:
        tail = why()
        process.terminate(process.session_members(sid), grace_s=2)
        raise svc.fail(f"`ray start` did not return within {svc.start_timeout_s:.0f}s{tail}") from None
    main = next((p for p in process.session_members(sid) if is_main(_cmdline(p))), None)
    if rc != 0 or main is None:
        tail = why()
        process.terminate(process.session_members(sid), grace_s=2)
        raise svc.fail(f"`ray start` failed (exit code {rc}){tail}")
    return main, sid


def ray_session_processes(rec: process.PidRecord | None, mark: str) -> list[int]:
    """The processes of a Ray session's pid record; when its main process (GCS or raylet) died,
    also what is left of its session, recognised by ``mark`` in the command line or Ray's process
    titles, so that stopping it leaves nothing behind."""
    if rec is None:
        return []
    pids = set(rec.processes())
    if rec.sid and not rec.alive():
        for pid in process.session_members(rec.sid):
            line = _cmdline(pid)
            if mark in line or line.startswith("ray::") or "/site-packages/ray/" in line:
                pids.add(pid)
    return sorted(pids)


class RayService(Service):
    name = "ray"
    env_key = "RAY"
    # `ray start` waits up to RAY_DASHBOARD_STARTUP_TIMEOUT_S for the dashboard; a fresh virtualenv
    # without bytecode (PYTHONDONTWRITEBYTECODE) on a busy 2-core box can take a while to import it.
    start_timeout_s = 150.0
    dashboard_timeout_s = 120
    launch_tries = 2
    stop_grace_s = 4.0  # the GCS server ignores SIGTERM for a long while; the rest is SIGKILLed
    probe_timeout_s = 5.0

    @property
    def host(self) -> str:
        return self.settings.ray.host

    def ports(self) -> dict[str, int]:
        r = self.settings.ray
        return {
            "port": r.port,
            "dashboard_port": r.dashboard_port,
            **{key: r.port + off for key, off in _OFFSETS.items()},
            **{key.lower(): r.port + off for key, off in _ENV_OFFSETS.items()},
        }

    @property
    def worker_ports(self) -> tuple[int, int]:
        first = self.settings.ray.port + _WORKER_OFFSET
        return first, first + WORKER_PORTS - 1

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.host}:{self.settings.ray.dashboard_port}"

    @property
    def temp_dir(self) -> Path:
        wanted = self.dir / "tmp"
        if len(str(wanted)) <= _MAX_TEMP_LEN:
            return wanted
        digest = hashlib.sha1(str(self.settings.runtime_dir).encode()).hexdigest()[:10]
        return Path("/tmp") / f"hotpath-ray-{digest}"

    def _port_hint(self, key: str) -> str:
        if key in ("port", "dashboard_port"):
            return super()._port_hint(key)
        return (
            f"Ray uses ports HOTPATH_RAY__PORT+1..+9 and +10..+{_WORKER_OFFSET + WORKER_PORTS - 1}; "
            "stop what holds it, or set HOTPATH_RAY__PORT to move them all"
        )

    def env(self) -> dict[str, str]:
        port = self.settings.ray.port
        return {
            **RAY_ENV,
            "RAY_DASHBOARD_STARTUP_TIMEOUT_S": str(self.dashboard_timeout_s),
            **{key: str(port + off) for key, off in _ENV_OFFSETS.items()},
        }

    def command(self) -> list[str]:
        r = self.settings.ray
        lo, hi = self.worker_ports
        argv = [
            _ray_binary(), "start", "--head",
            f"--node-ip-address={r.host}",
            f"--port={r.port}",
            f"--dashboard-host={r.host}",
            f"--dashboard-port={r.dashboard_port}",
            f"--object-store-memory={r.object_store_memory_mb * 1024 * 1024}",
            f"--temp-dir={self.temp_dir}",
            f"--min-worker-port={lo}",
            f"--max-worker-port={hi}",
            "--disable-usage-stats",
            "--log-style=record",
            "--log-color=false",
        ]  # fmt: skip
        argv += [f"--{key.replace('_', '-')}={r.port + off}" for key, off in _OFFSETS.items()]
        if r.num_cpus is not None:
            argv.append(f"--num-cpus={r.num_cpus}")
        return argv

    # ------------------------------------------------------------------ life cycle
    def launch(self) -> None:
        """Run ``ray start`` (it returns once the head runs) and record the GCS PID and session.

        A start that hangs or fails is stopped, its session's processes ended, and tried once more:
        Ray's start-up races (GCS, raylet and dashboard come up in parallel) are rare but real on a
        loaded 2-core machine, and one lost race should not fail ``make test``.
        """
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, self.launch_tries + 1):
            try:
                self._launch_once()
                return
            except ServiceError as exc:
                if attempt == self.launch_tries:
                    raise
                print(f"  ray: start attempt {attempt} failed ({exc}); trying again", file=sys.stderr)

    def _launch_once(self) -> None:
        gcs, sid = run_ray_start(self, lambda line: "gcs_server" in line, self._session_log_tails)
        process.write_pid(self.pid_path, process.PidRecord(gcs, process.start_time(gcs), sid))
        self._proc = None

    def _session_log_tails(self) -> str:
        """The last line of each of Ray's own start-up logs in the newest session (for errors)."""
        logs = self.temp_dir / "session_latest" / "logs"
        found = []
        for name in _STARTUP_LOGS:
            last = process.tail(logs / name, 1).strip()
            if last:
                found.append(f"{name}: {last[-200:]}")
        return ("; Ray's logs: " + " | ".join(found)) if found else ""

    def processes(self) -> list[int]:
        return ray_session_processes(self.record(), str(self.temp_dir))  # the cluster's temp dir

    def stop(self) -> bool:
        pids = self.processes()
        if pids:
            process.terminate(pids, grace_s=self.stop_grace_s, refresh=self.processes)
        self.pid_path.unlink(missing_ok=True)
        return bool(pids)

    def probe(self) -> None:
        """The health endpoints Ray's own Kubernetes probes use: GCS (via the dashboard), raylet."""
        r = self.settings.ray
        for url in (
            f"http://{r.host}:{r.dashboard_port}/api/gcs_healthz",
            f"http://{r.host}:{r.port + _OFFSETS['dashboard_agent_listen_port']}/api/local_raylet_healthz",
        ):
            check_healthz(url, self.probe_timeout_s)

    def after_ready(self, say) -> None:  # noqa: ANN001
        exposed = self.exposed()
        if exposed:
            where = ", ".join(f"{lst.address}:{lst.port} ({lst.process})" for lst in exposed)
            self.stop()
            raise self.fail(
                f"listens on a non-loopback address: {where}; stopped it",
                hint="report this: every Ray port must bind 127.0.0.1",
                show_log=False,
            )

    def exposed(self) -> list[process.Listener]:
        """Listening sockets of this cluster's processes that are not on loopback."""
        found = process.listeners()
        if found is None:
            return []
        ours = set(self.processes())
        return [lst for lst in found if ours.intersection(lst.pids) and not lst.loopback]

    def listening(self) -> list[process.Listener]:
        """Every listening socket of this cluster's processes (for reports and tests)."""
        ours = set(self.processes())
        return [lst for lst in (process.listeners() or []) if ours.intersection(lst.pids)]
