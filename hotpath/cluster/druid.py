"""Local Apache Druid (full profile): the nano single-server layout, written by hotpath.

No launcher config ships in any Maven artifact, so the config is generated here under
``<runtime_dir>/services/druid/conf``: ``_common/common.runtime.properties`` and one
``<role>/runtime.properties`` per process. Four JVMs, all on 127.0.0.1, each with its own pid file:

===========  ===========================  =====================================================
role         port (setting)               does
===========  ===========================  =====================================================
coordinator  coordinator_port (18081)     coordinator + overlord; runs the Derby metadata server
broker       broker_port (18082)          SQL (``POST /druid/v2/sql``): the readiness probe
historical   historical_port (18083)      serves handed-off segments (local deep storage)
indexer      indexer_port (18091)         runs the Kafka ingestion tasks in its own JVM
===========  ===========================  =====================================================

(Derby listens on ``derby_port`` (18084).) No router: clients talk to the broker directly.

Readiness is one SQL query, ``SELECT server_type FROM sys.servers``, that must list every role
(after each role's own ``GET /status/health`` said ``true``).
After that the Kafka topic is created and the supervisor spec ``services/druid/orders-supervisor.json``
is applied (``skipRestartIfUnmodified``: a second ``up`` changes nothing). ``start`` is idempotent and
restarts only the roles that died (the crash test kills the indexer). ``stop`` SIGTERMs every role at
once and SIGKILLs what is left after ``stop_grace_s`` (the indexer was seen ignoring SIGTERM for
20 s; killing it loses nothing: Kafka offsets are committed with the segments, exactly once).
Supervisors are never terminated on stop (with Kafka gone that call hangs).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx

from hotpath.cluster import java, process
from hotpath.cluster.base import NotReady, Service, run_sync
from hotpath.config import Settings, repo_root
from hotpath.errors import ServiceError

__all__ = ["DruidService", "ROLES", "SUPERVISOR_SPEC", "supervisor_spec", "apply_supervisor", "roll_stale_tasks"]

ROLES = ("coordinator", "historical", "indexer", "broker")
SUPERVISOR_SPEC = repo_root() / "services" / "druid" / "orders-supervisor.json"
_SERVER_TYPES = {"coordinator", "historical", "indexer", "broker"}

_JAVA17_OPENS = [
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
]


def supervisor_spec(settings: Settings) -> dict:
    """The supervisor spec of the repo with its ``${...}`` filled from the settings."""
    d = settings.druid
    values = {
        "datasource": d.datasource,
        "topic": d.topic,
        "bootstrap": settings.kafka.bootstrap,
        "task_duration": d.task_duration,
        "late_message_rejection": d.late_message_rejection,
        "early_message_rejection": d.early_message_rejection,
    }
    text = SUPERVISOR_SPEC.read_text()
    for key, value in values.items():
        text = text.replace("${" + key + "}", value)
    spec = json.loads(text)
    spec.pop("_comment", None)
    return spec


def apply_supervisor(settings: Settings, spec: dict | None = None, *, timeout_s: float = 90.0) -> str:
    """POST the supervisor spec (idempotent); retried while the overlord is not leading yet."""
    spec = spec or supervisor_spec(settings)
    url = f"{settings.druid.overlord_url}/druid/indexer/v1/supervisor?skipRestartIfUnmodified=true"
    deadline = time.monotonic() + timeout_s
    last = ""
    while True:
        try:
            r = httpx.post(url, json=spec, timeout=10.0)
            if r.status_code == 200:
                return r.json().get("id", "")
            last = f"HTTP {r.status_code}: {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise ServiceError(f"druid: the supervisor spec was not accepted: {last}", hint=f"see {SUPERVISOR_SPEC}")
        time.sleep(1.0)


def _iso_seconds(duration: str) -> float:
    """Seconds of an ISO-8601 period such as ``PT1H``, ``PT30M``, ``PT3600S``, ``P1D``."""
    m = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", duration.strip().upper())
    if not m or not any(m.groups()):
        raise ServiceError(f"druid: not an ISO-8601 period: {duration!r}", hint="e.g. PT1H")
    d, h, mi, sec = (float(g) if g else 0.0 for g in m.groups())
    return d * 86_400 + h * 3_600 + mi * 60 + sec


def roll_stale_tasks(settings: Settings, say=lambda msg: None, *, timeout_s: float = 120.0) -> int:  # noqa: ANN001
    """Roll over ingestion tasks that outlived their ``task_duration``; returns how many there were.

    A task takes orders only between the times the supervisor gave it when it was created (its start
    less ``late_message_rejection``, its end plus ``early_message_rejection``). A task restored after
    the services were down for longer than that keeps those times, so every new order would be
    thrown away until the supervisor rolls it over, up to ``task_duration`` later. Suspending and
    resuming the supervisor makes the old task publish what it holds and starts a new one from the
    committed offsets (Druid's exactly-once handover): nothing is lost or counted twice."""
    d = settings.druid
    base = f"{d.overlord_url}/druid/indexer/v1"
    try:
        r = httpx.get(f"{base}/tasks", params={"state": "running", "datasource": d.datasource}, timeout=10.0)
        r.raise_for_status()
        tasks = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ServiceError(f"druid: cannot list the running ingestion tasks: {exc}") from exc
    limit = _iso_seconds(d.task_duration)
    now = time.time()

    def created(t: dict) -> float:
        from datetime import datetime

        return datetime.fromisoformat(t["createdTime"].replace("Z", "+00:00")).timestamp()

    kafka = [t for t in tasks if t.get("type", "").startswith("index_kafka")]
    stale = [t for t in kafka if now - created(t) > limit]
    if not stale or len(stale) < len(kafka):  # none, or a fresh task already reads (the old one publishes)
        return 0
    say(f"  druid: {len(stale)} ingestion task(s) older than {d.task_duration} (restored after a restart): rolling over")
    sup = f"{base}/supervisor/{d.datasource}"
    try:
        httpx.post(f"{sup}/suspend", timeout=10.0).raise_for_status()
        httpx.post(f"{sup}/resume", timeout=10.0).raise_for_status()
    except httpx.HTTPError as exc:
        raise ServiceError(f"druid: rolling over the ingestion tasks failed: {exc}") from exc
    old = {t["id"] for t in stale}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            running = httpx.get(f"{base}/tasks", params={"state": "running", "datasource": d.datasource}, timeout=10.0).json()
        except (httpx.HTTPError, ValueError):
            running = []
        if any(t.get("id") not in old and t.get("type", "").startswith("index_kafka") for t in running):
            return len(stale)
        time.sleep(1.0)
    raise ServiceError(f"druid: no new ingestion task within {timeout_s:.0f} s after the rollover",
                       hint="see the overlord's log (coordinator.log)")


class DruidService(Service):
    name = "druid"
    env_key = "DRUID"
    start_timeout_s = 420.0  # ~30 s on a quiet 2-core box; minutes when it is shared (docs/services.md)
    stop_grace_s = 10.0
    probe_timeout_s = 3.0

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.conf_dir = self.dir / "conf"
        self.log_path = self.dir / "coordinator.log"  # each role logs to <role>.log beside it
        self._procs: dict[str, object] = {}

    # ------------------------------------------------------------------ layout
    @property
    def host(self) -> str:
        return self.settings.druid.host

    def ports(self) -> dict[str, int]:
        d = self.settings.druid
        return {
            "port": d.broker_port,  # the SQL endpoint (the base class's "port")
            "coordinator_port": d.coordinator_port,
            "historical_port": d.historical_port,
            "indexer_port": d.indexer_port,
            "derby_port": d.derby_port,
        }

    @property
    def address(self) -> str:
        return f"{self.host}:{self.settings.druid.broker_port}"

    def role_port(self, role: str) -> int:
        return self.ports()["port" if role == "broker" else f"{role}_port"]

    def _port_hint(self, key: str) -> str:
        return super()._port_hint("broker_port" if key == "port" else key)

    def role_pid_path(self, role: str) -> Path:
        return self.dir / f"{role}.pid"

    def role_log(self, role: str) -> Path:
        return self.dir / f"{role}.log"

    def role_record(self, role: str) -> process.PidRecord | None:
        return process.read_pid(self.role_pid_path(role))

    def role_alive(self, role: str) -> bool:
        rec = self.role_record(role)
        return bool(rec and rec.alive())

    def role_pid(self, role: str) -> int | None:
        rec = self.role_record(role)
        return rec.pid if rec and rec.alive() else None

    # the base class looks at one pid file: the coordinator's stands for the service
    def record(self) -> process.PidRecord | None:
        for role in ROLES:
            rec = self.role_record(role)
            if rec and rec.alive():
                return rec
        return None

    def processes(self) -> list[int]:
        pids: set[int] = set()
        for role in ROLES:
            rec = self.role_record(role)
            if rec:
                pids.update(rec.processes())
        return sorted(pids)

    def running(self) -> bool:
        return all(self.role_alive(r) for r in ROLES)

    # ------------------------------------------------------------------ config
    def preflight(self) -> None:
        self._java = java.check_java(17)
        if not SUPERVISOR_SPEC.exists():
            raise ServiceError(f"druid: the supervisor spec {SUPERVISOR_SPEC} is missing")

    def common_properties(self) -> dict[str, str]:
        d, z = self.settings.druid, self.settings.zookeeper
        var = self.data_dir
        return {
            "druid.host": d.host,
            "druid.bindOnHost": "true",
            "druid.extensions.directory": str(self.conf_dir / "extensions"),
            "druid.extensions.hadoopDependenciesDir": str(self.conf_dir / "hadoop-dependencies"),
            "druid.extensions.loadList": "[]",
            "druid.extensions.searchCurrentClassloader": "true",
            "druid.startup.logging.logProperties": "false",
            "druid.zk.service.host": z.connect,
            "druid.zk.paths.base": "/druid",
            "druid.metadata.storage.type": "derby",
            "druid.metadata.storage.connector.connectURI": (
                f"jdbc:derby://{d.host}:{d.derby_port}/{var / 'metadata.db'};create=true"
            ),
            "druid.metadata.storage.connector.host": d.host,
            "druid.metadata.storage.connector.port": str(d.derby_port),
            "druid.storage.type": "local",
            "druid.storage.storageDirectory": str(var / "segments"),
            "druid.indexer.logs.type": "file",
            "druid.indexer.logs.directory": str(var / "indexing-logs"),
            "druid.selectors.indexing.serviceName": "druid/overlord",
            "druid.selectors.coordinator.serviceName": "druid/coordinator",
            "druid.monitoring.monitors": "[]",
            "druid.emitter": "noop",
            "druid.indexing.doubleStorage": "double",
            "druid.sql.enable": "true",
            "druid.sql.planner.useGroupingSetForExactDistinct": "true",
            "druid.lookup.enableLookupSyncOnStartup": "false",
            "druid.indexer.task.defaultHadoopCoordinates": "[]",
            "druid.server.http.numThreads": "8",
            "druid.global.http.numConnections": "4",
            "druid.javascript.enabled": "false",
        }

    def role_properties(self, role: str) -> dict[str, str]:
        var = self.data_dir
        props = {"druid.service": f"druid/{role}", "druid.plaintextPort": str(self.role_port(role))}
        query_buffers = {
            "druid.processing.buffer.sizeBytes": "16MiB",
            "druid.processing.numMergeBuffers": "1",
            "druid.processing.numThreads": "1",
            "druid.processing.tmpDir": str(var / "processing"),
        }
        if role == "coordinator":
            props |= {
                "druid.coordinator.startDelay": "PT5S",
                "druid.coordinator.period": "PT5S",
                "druid.coordinator.period.indexingPeriod": "PT60S",
                "druid.manager.segments.pollDuration": "PT5S",
                "druid.coordinator.asOverlord.enabled": "true",
                "druid.coordinator.asOverlord.overlordService": "druid/overlord",
                "druid.indexer.queue.startDelay": "PT1S",
                "druid.indexer.storage.type": "metadata",
                "druid.indexer.runner.type": "httpRemote",
            }
        elif role == "broker":
            props |= query_buffers | {
                "druid.broker.http.numConnections": "8",
                "druid.broker.http.maxQueuedBytes": "5MiB",
                "druid.broker.cache.useCache": "false",
                "druid.broker.cache.populateCache": "false",
                "druid.sql.avatica.enable": "false",
            }
        elif role == "historical":
            props |= query_buffers | {
                "druid.segmentCache.locations": json.dumps([{"path": str(var / "segment-cache"), "maxSize": "2GiB"}]),
                "druid.historical.cache.useCache": "false",
                "druid.historical.cache.populateCache": "false",
            }
        elif role == "indexer":
            props |= query_buffers | {
                "druid.worker.capacity": "2",
                "druid.indexer.task.baseTaskDir": str(var / "task"),
                # false: a crashed indexer's tasks are not resumed from their own persisted rows (a
                # SIGKILLed task restored that way counted a record twice here); the supervisor starts
                # fresh tasks from the offsets published with the segments: Druid's exactly-once path.
                "druid.indexer.task.restoreTasksOnRestart": "false",
                "druid.worker.globalIngestionHeapLimitBytes": str(96 * 1024 * 1024),
            }
        return props

    def prepare(self, say=lambda msg: None) -> None:  # noqa: ANN001
        java.ensure_jars(self.settings, "druid", say=say)
        for sub in ("extensions", "hadoop-dependencies"):
            (self.conf_dir / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("segments", "indexing-logs", "task", "segment-cache", "processing", "tmp"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        self.write_if_changed(self.conf_dir / "_common" / "common.runtime.properties", _props(self.common_properties()))
        self.write_if_changed(self.conf_dir / "_common" / "log4j2.xml", _LOG4J2)
        for role in ROLES:
            self.write_if_changed(self.conf_dir / role / "runtime.properties", _props(self.role_properties(role)))
            self.write_if_changed(self.conf_dir / role / "jvm.config", "\n".join(self.jvm_options(role)) + "\n")

    def jvm_options(self, role: str) -> list[str]:
        d = self.settings.druid
        heap = d.indexer_heap_mb if role == "indexer" else d.heap_mb
        return [
            "-server",
            f"-Xms{min(heap, 128)}m",
            f"-Xmx{heap}m",
            "-XX:MaxDirectMemorySize=128m",
            "-XX:+UseSerialGC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Xss512k",
            "-Duser.timezone=UTC",
            "-Dfile.encoding=UTF-8",
            "-Djava.net.preferIPv4Stack=true",
            f"-Djava.io.tmpdir={self.data_dir / 'tmp'}",
            "-Djava.util.logging.manager=org.apache.logging.log4j.jul.LogManager",
            f"-Dlog4j.configurationFile={self.conf_dir / '_common' / 'log4j2.xml'}",
            f"-Dderby.stream.error.file={self.dir / 'derby.log'}",
            *_JAVA17_OPENS,
        ]

    def role_command(self, role: str) -> list[str]:
        java_bin = getattr(self, "_java", None) or java.find_java()
        jvm = [line for line in (self.conf_dir / role / "jvm.config").read_text().splitlines() if line.strip()]
        cp = f"{self.conf_dir / '_common'}:{self.conf_dir / role}:{java.jar_dir(self.settings, 'druid')}/*"
        return [java_bin, *jvm, "-cp", cp, "org.apache.druid.cli.Main", "server", role]

    def command(self) -> list[str]:  # the base class's single command: the broker's
        return self.role_command("broker")

    # ------------------------------------------------------------------ life cycle
    def launch_role(self, role: str) -> None:
        log = self.role_log(role)
        try:
            proc = process.spawn(self.role_command(role), log=log, cwd=self.dir)
        except OSError as exc:
            raise self.fail(f"{role} could not be launched: {exc}", show_log=False) from exc
        self._procs[role] = proc
        process.write_pid(self.role_pid_path(role), process.PidRecord(proc.pid, process.start_time(proc.pid), proc.pid))

    def start(self, say=lambda msg: None) -> str:  # noqa: ANN001
        """Start the roles that are not running (all of them on a cold start), wait for the SQL
        probe, apply the supervisor. ``running``: every role was up already."""
        alive = [r for r in ROLES if self.role_alive(r)]
        if len(alive) == len(ROLES):
            self._wait_ready(self.start_timeout_s, spawned=False)
            self.after_ready(say)
            return "running"
        if not alive:
            self.stop()  # stale pid files
            if not process.port_free(self.host, self.settings.druid.broker_port) and self.healthy():
                return "external"
        missing = [r for r in ROLES if r not in alive]
        for role in missing:
            port = self.role_port(role)
            if alive:  # a role that just died (killed) may hold its port a few more seconds
                free_by = time.monotonic() + 20
                while not process.port_free(self.host, port) and time.monotonic() < free_by:
                    time.sleep(0.25)
            if not process.port_free(self.host, port):
                raise ServiceError(
                    f"druid: port {self.host}:{port} ({role}_port) is already taken{self._holder(port)}",
                    hint=self._port_hint(f"{role}_port"),
                )
        if "coordinator" in missing and not process.port_free(self.host, self.settings.druid.derby_port):
            port = self.settings.druid.derby_port
            raise ServiceError(
                f"druid: port {self.host}:{port} (derby_port) is already taken{self._holder(port)}",
                hint=self._port_hint("derby_port"),
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare(say)
        if alive:
            say(f"  druid      restarting {', '.join(missing)} (the other roles are running)")
        for role in missing:
            self.launch_role(role)
        try:
            self._wait_ready(self.start_timeout_s, spawned=True)
        except ServiceError:
            if not alive:
                self.stop()
            raise
        self.after_ready(say)
        return "started"

    def _exited(self) -> int | None:
        for role in ROLES:
            proc = self._procs.get(role)
            code = proc.poll() if proc is not None else (None if self.role_alive(role) else -1)
            if code is not None:
                self.log_path = self.role_log(role)  # the failure message quotes that role's log
                return code
        return None

    def check_startable(self) -> None:
        if any(self.role_alive(r) for r in ROLES):
            return
        if not process.port_free(self.host, self.settings.druid.broker_port) and self.healthy():
            return
        self.check_ports()

    def stop_role(self, role: str, *, grace_s: float | None = None) -> bool:
        rec = self.role_record(role)
        pids = rec.processes() if rec else []
        if pids:
            process.terminate(pids, grace_s=self.stop_grace_s if grace_s is None else grace_s)
        self._procs.pop(role, None)
        self.role_pid_path(role).unlink(missing_ok=True)
        return bool(pids)

    def stop(self) -> bool:
        """SIGTERM every role at once, SIGKILL what is left after ``stop_grace_s``."""
        pids: list[int] = []
        for role in ROLES:
            rec = self.role_record(role)
            if rec:
                pids.extend(rec.processes())
        if pids:
            process.terminate(sorted(set(pids)), grace_s=self.stop_grace_s)
        for role in ROLES:
            self._procs.pop(role, None)
            self.role_pid_path(role).unlink(missing_ok=True)
        self.pid_path.unlink(missing_ok=True)
        return bool(pids)

    def status(self):  # noqa: ANN201
        """One row for the four JVMs: RSS of them all, the roles that are down in ``detail``."""
        from dataclasses import replace

        st = super().status()
        if st.pid is None:
            return st
        rss = round(process.rss_kib(self.processes()) / 1024, 1)
        down = [r for r in ROLES if not self.role_alive(r)]
        detail = (st.detail + "; " if st.detail else "") + f"not running: {', '.join(down)}" if down else st.detail
        return replace(st, rss_mib=rss, detail=detail)

    # ------------------------------------------------------------------ readiness
    def sql(self, query: str, *, timeout_s: float | None = None) -> list[dict]:
        r = httpx.post(
            self.settings.druid.sql_url,
            json={"query": query, "resultFormat": "object"},
            timeout=timeout_s or self.probe_timeout_s,
        )
        if r.status_code != 200:
            raise NotReady(f"SQL answered HTTP {r.status_code}: {r.text[:200]}")
        return r.json()

    def probe(self) -> None:
        for role in ROLES:  # each process answers itself (a restarted one too, not just its old entry)
            url = f"http://{self.host}:{self.role_port(role)}/status/health"
            try:
                ok = httpx.get(url, timeout=self.probe_timeout_s).text.strip() == "true"
            except httpx.HTTPError as exc:
                raise NotReady(f"{role} does not answer {url}: {type(exc).__name__}") from exc
            if not ok:
                raise NotReady(f"{role} is not healthy yet")
        try:
            rows = self.sql("SELECT server_type FROM sys.servers")
        except httpx.HTTPError as exc:
            raise NotReady(f"no SQL answer: {type(exc).__name__}: {exc}") from exc
        seen = {row.get("server_type") for row in rows}
        if not _SERVER_TYPES <= seen:
            raise NotReady(f"roles not discovered yet: {', '.join(sorted(_SERVER_TYPES - seen))}")

    def after_ready(self, say) -> None:  # noqa: ANN001
        d = self.settings.druid
        from hotpath.streams.kafka_log import KafkaEventLog

        async def topics() -> None:
            log = KafkaEventLog(self.settings)
            try:
                await log.create_topic(d.topic, d.topic_partitions)
            finally:
                await log.close()

        try:
            run_sync(topics())
        except Exception as exc:  # noqa: BLE001 - Kafka down: say so, the supervisor waits for it
            raise ServiceError(f"druid: cannot create Kafka topic {d.topic}: {exc}", hint="is Kafka up?") from exc
        apply_supervisor(self.settings)
        roll_stale_tasks(self.settings, say)


def _props(props: dict[str, str]) -> str:
    return "# generated by hotpath: do not edit (rewritten on `hotpath services up`)\n" + "".join(
        f"{k}={v}\n" for k, v in props.items()
    )


_LOG4J2 = """\
<?xml version="1.0" encoding="UTF-8" ?>
<!-- generated by hotpath -->
<Configuration status="WARN">
  <Appenders>
    <Console name="Console" target="SYSTEM_OUT">
      <PatternLayout pattern="%d{ISO8601} %p [%t] %c - %m%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="Console"/></Root>
    <Logger name="org.apache.druid.jetty.RequestLog" additivity="false" level="warn">
      <AppenderRef ref="Console"/>
    </Logger>
    <Logger name="org.apache.zookeeper" level="warn" additivity="false"><AppenderRef ref="Console"/></Logger>
    <Logger name="org.apache.curator" level="warn" additivity="false"><AppenderRef ref="Console"/></Logger>
    <Logger name="org.apache.kafka" level="warn" additivity="false"><AppenderRef ref="Console"/></Logger>
  </Loggers>
</Configuration>
"""
