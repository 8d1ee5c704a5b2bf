"""Service control without servers: generated configs bind loopback, clear one-line failures."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from hotpath.cluster import java, manager
from hotpath.cluster.apps import AppStarter, Endpoint, start_apps
from hotpath.cluster.base import Health
from hotpath.cluster.cassandra import CassandraService
from hotpath.cluster.kafka import KafkaService
from hotpath.cluster.mosquitto import MosquittoService
from hotpath.cluster.ray_head import RayService
from hotpath.cluster.redis_server import RedisService
from hotpath.config import load_settings
from hotpath.errors import ConfigError, ServiceError

from .conftest import Isolated, run_cli


def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_unknown_profile_is_one_clear_line() -> None:
    out = run_cli("services", "up", "--profile", "nope")
    assert out.returncode == 2
    line = _one_line(out.stderr)
    assert "unknown profile 'nope'" in line and "embedded" in line and "full" in line
    with pytest.raises(ConfigError):
        manager.services_for(load_settings(), "nope")


def test_profiles() -> None:
    s = load_settings()
    assert [x.name for x in manager.services_for(s, "embedded")] == ["redis", "mosquitto", "ray"]
    assert [x.name for x in manager.services_for(s, "full")] == ["redis", "mosquitto", "kafka", "zookeeper", "druid", "cassandra", "postgres", "ray"]


def test_default_ports_never_overlap() -> None:
    """Every port of every service, Ray's derived ports and worker range included, is distinct."""
    s = load_settings()
    seen: dict[int, str] = {}
    for svc in manager.services_for(s):
        for key, port in svc.ports().items():
            assert port not in seen, f"{svc.name}.{key} and {seen.get(port)} share port {port}"
            seen[port] = f"{svc.name}.{key}"
    for key, port in (("serve.http_port", s.serve.http_port), ("serve.grpc_port", s.serve.grpc_port)):
        assert port not in seen, f"{key} collides with {seen.get(port)}"
        seen[port] = key
    lo, hi = RayService(s).worker_ports
    clash = [name for port, name in seen.items() if lo <= port <= hi]
    assert not clash, f"Ray worker ports {lo}-{hi} overlap {clash}"


def test_generated_configs_bind_loopback(isolated: Isolated) -> None:
    s = isolated.settings
    redis = RedisService(s)
    redis.prepare()
    conf = redis.conf_path.read_text()
    assert "bind 127.0.0.1\n" in conf and f"port {s.redis.port}\n" in conf and str(redis.data_dir) in conf
    # one snapshot rule, at most every 15 min (not Redis' default of one a minute under load)
    assert [ln for ln in conf.splitlines() if ln.startswith("save ")] == ["save 900 1"]

    mq = MosquittoService(s)
    mq.prepare()
    conf = mq.conf_path.read_text()
    assert f"listener {s.mqtt.port} 127.0.0.1\n" in conf and "allow_anonymous false\n" in conf
    assert f"acl_file {mq.acl_path}\n" in conf and mq.passwd_path.stat().st_mode & 0o077 == 0
    assert f"persistence_location {mq.data_dir}/" in conf

    props = KafkaService(s).properties()
    assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{s.kafka.port},CONTROLLER://127.0.0.1:{s.kafka.controller_port}"
    assert props["process.roles"] == "broker,controller"
    assert props["log.dirs"].startswith(str(s.runtime_dir))

    cas = CassandraService(s)
    cfg = yaml.safe_load(cas._yaml())
    assert cfg["listen_address"] == cfg["rpc_address"] == "127.0.0.1"
    assert cfg["native_transport_port"] == s.cassandra.port and cfg["storage_port"] == s.cassandra.storage_port
    assert all(str(s.runtime_dir) in d for d in [*cfg["data_file_directories"], cfg["commitlog_directory"]])
    argv = cas.command()
    assert f"-Dcassandra.jmx.local.port={s.cassandra.jmx_port}" in argv
    assert "java.base/sun.nio.ch=ALL-UNNAMED" in argv and argv[-1] == "org.apache.cassandra.service.CassandraDaemon"

    ray = RayService(s)
    argv = ray.command()
    for flag in ("--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1", f"--port={s.ray.port}"):
        assert flag in argv
    assert_ray_sockets_fit(ray)


def assert_ray_sockets_fit(ray: RayService) -> None:
    # The longest unix socket Ray 2.60 makes under its temp dir (a 7-digit pid), with room for a
    # longer dashboard module name: it must stay within the kernel's 107 bytes, or the dashboard dies.
    longest = f"{ray.temp_dir}/session_2026-11-26_12-08-52_545562_4194304/sockets/dash_MetricsHead"
    assert len(longest) + 8 <= 107, longest


@pytest.mark.parametrize("where", ["/check/work/main", "/w", "/home/someone/src/hotpath-checkout"])
def test_ray_temp_dir_keeps_sockets_under_the_limit(where: str) -> None:
    from hotpath.config import Settings

    for runtime in (f"{where}/.hotpath", "/tmp/pytest-of-root/pytest-12/cluster0/runtime"):
        ray = RayService(Settings(runtime_dir=runtime))
        assert_ray_sockets_fit(ray)
        if len(f"{runtime}/services/ray/tmp") <= 31:
            assert ray.temp_dir == Path(runtime) / "services" / "ray" / "tmp"  # kept beside its logs when short


def test_missing_java_is_one_line_and_starts_nothing(isolated: Isolated, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ServiceError) as err:
        java.find_java()
    assert "openjdk-17-jre-headless" in err.value.one_line()

    env = {**isolated.env, "PATH": "/nonexistent"}
    out = run_cli("services", "up", "--profile", "full", env=env)
    assert out.returncode == 2
    line = _one_line(out.stderr)
    assert "java not found" in line and "apt-get install openjdk-17-jre-headless" in line
    assert not list(isolated.settings.runtime_dir.glob("services/*/*.pid"))  # checked before any start


def test_port_taken_is_one_line_naming_port_and_env_var(isolated: Isolated) -> None:
    port = isolated.settings.redis.port
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        out = isolated.hotpath("services", "up", "--profile", "embedded")
        assert out.returncode == 2
        line = _one_line(out.stderr)
        assert f"port 127.0.0.1:{port}" in line and "already taken" in line
        assert "HOTPATH_REDIS__PORT" in line
        assert not list(isolated.settings.runtime_dir.glob("services/*/*.pid"))  # nothing was started
        st = RedisService(isolated.settings).status()
        assert st.health is Health.BLOCKED


class _DyingRedis(RedisService):
    start_timeout_s = 10.0

    def command(self) -> list[str]:
        return ["sh", "-c", "echo 'starting'; echo 'FATAL CONFIG FILE ERROR: boom at line 3'; echo bye; exit 3"]


def test_service_dying_after_start_names_it_and_its_log(isolated: Isolated) -> None:
    svc = _DyingRedis(isolated.settings)
    with pytest.raises(ServiceError) as err:
        svc.start()
    line = err.value.one_line()
    assert line.startswith("redis: exited right after start (exit code 3)")
    assert "boom at line 3" in line
    assert str(svc.log_path) in line
    assert not svc.pid_path.exists()


def test_app_starters_extension_point() -> None:
    s = load_settings()
    seen: list[str] = []

    def ok(settings, say):  # noqa: ANN001, ANN202
        say("hi")
        return [Endpoint("demo", "HTTP", "http://127.0.0.1:1/x")]

    def broken(settings, say):  # noqa: ANN001, ANN202
        raise RuntimeError("kaput")

    eps = start_apps(s, "embedded", seen.append, [AppStarter("demo", ok), AppStarter("off", broken, ("full",))])
    assert eps == [Endpoint("demo", "HTTP", "http://127.0.0.1:1/x")] and "hi" in seen
    with pytest.raises(ServiceError, match="app broken failed to start: RuntimeError: kaput"):
        start_apps(s, "full", seen.append, [AppStarter("broken", broken)])
    with pytest.raises(ServiceError, match="cannot load"):
        start_apps(s, "full", seen.append, [AppStarter("missing", "hotpath.no_such_module:start")])


class _HangingRay(RayService):
    """A `ray start` that never returns, then one that exits 1 after writing Ray-like logs."""

    start_timeout_s = 1.0
    launch_tries = 2
    calls = 0

    def command(self) -> list[str]:
        type(self).calls += 1
        logs = self.temp_dir / "session_latest" / "logs"
        if self.calls == 1:
            return ["sh", "-c", "echo 'Local node IP: 127.0.0.1'; sleep 60"]
        return ["sh", "-c", f"mkdir -p {logs}; echo 'gcs: bind failed: boom' > {logs}/gcs_server.out; exit 1"]


def test_ray_start_that_hangs_is_ended_and_tried_again(isolated: Isolated, capsys) -> None:  # noqa: ANN001
    import time

    svc = _HangingRay(isolated.settings)
    t0 = time.monotonic()
    with pytest.raises(ServiceError) as err:
        svc.launch()
    assert time.monotonic() - t0 < 20
    assert _HangingRay.calls == 2  # retried once after the hang
    assert "did not return within 1s" in capsys.readouterr().err  # the first attempt, reported
    line = err.value.one_line()
    assert "`ray start` failed (exit code 1)" in line and "gcs_server.out: gcs: bind failed: boom" in line
    assert svc.log_path.read_text().count("==== ") == 2
    assert not _processes_running("Local node IP: 127.0.0.1'; sleep 60")  # the hung start was ended


def _processes_running(fragment: str) -> list[int]:
    from pathlib import Path

    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if fragment in cmd:
                found.append(int(proc.name))
    return found
