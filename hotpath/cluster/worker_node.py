"""An extra Ray worker node joined to the local head (``ray start --address=<head>``), by PID.

On a site each Ray node is its own machine (see ``ray_cluster.yaml``). This starts one more raylet
*on this machine*, a node of its own (its own node id, resources, object store and worker
processes) on ports of its own, so that placement across nodes and the loss of a whole node can be
tried and tested without a second machine::

    hotpath services node up --name b --resources '{"coview": 1}'
    hotpath services node status
    hotpath services node down --name b          # `hotpath services down` stops every node too

Like the head (:mod:`hotpath.cluster.ray_head`), ``ray start`` runs as a session leader: the
raylet, its agents and every worker process it starts share that session, which the pid file
(``<runtime_dir>/services/ray-node-<name>/ray-node-<name>.pid``) records with the raylet's PID.
``stop`` signals that session only; :meth:`RayWorkerNode.kill` SIGKILLs all of it at once (a node
lost: what the node-kill test does). Starting is idempotent: a node already running is reused.

Its address is ``127.0.0.1``, like the head's. Another loopback address (``--ip 127.0.0.2``) works
for Ray, but Ray 2.60's raylet and agents then listen on every interface (0.0.0.0 / ::: they keep
to loopback only for a node whose address is exactly 127.0.0.1), so such a node is stopped after
start by the loopback check below. Drivers on this machine still attach to the head's raylet
(Ray prefers the head among nodes of one address).

Ports (all on the node's own address), from ``port_base`` (default ``settings.ray.port + 210``,
the first port after the head's worker range), for node number ``slot`` (0, 1, ...):
``base + slot*70 + 0..5`` node manager, object manager, dashboard agent HTTP and gRPC, runtime-env
agent, metrics export; ``+10 .. +10+worker_ports-1`` its workers (60 by default).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping

from hotpath.cluster import process
from hotpath.cluster.base import Service
from hotpath.cluster.ray_head import _WORKER_OFFSET, RAY_ENV, WORKER_PORTS, check_healthz, ray_session_processes, run_ray_start
from hotpath.config import Settings
from hotpath.errors import ConfigError, ServiceError

__all__ = ["RayWorkerNode", "worker_nodes", "stop_all", "NODE_PORT_SPAN"]

NODE_PORT_SPAN = 70
"""Ports one extra node takes (6 fixed, then its workers from +10)."""
# `ray start` with two things changed in its own process only: it may join the head although this
# machine runs Ray as a one-machine cluster (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, which keeps every
# address on loopback and which `ray start --address` otherwise refuses), and it keeps the head's
# loopback address as given (joining as a cluster member, Ray would replace 127.0.0.1 in --address
# with the machine's outward address, where the head does not listen). The raylet, its agents and
# workers get the address as `ray start` passes it on, and the environment's setting stays 0.
_RAY_START = [
    sys.executable, "-c",
    "import sys, ray._private.ray_constants as c, ray._private.services as s; c.ENABLE_RAY_CLUSTER = True; "
    "s.resolve_ip_for_localhost = lambda host: host; "
    "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; main()",
]
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")
_PORTS = (
    "node_manager_port",
    "object_manager_port",
    "dashboard_agent_listen_port",
    "dashboard_agent_grpc_port",
    "runtime_env_agent_port",
    "metrics_export_port",
)


class RayWorkerNode(Service):
    """One extra raylet joined to the head at ``settings.ray.address`` (see the module docstring)."""

    env_key = "RAY"
    start_timeout_s = 120.0
    stop_grace_s = 3.0
    probe_timeout_s = 5.0

    def __init__(
        self,
        settings: Settings,
        *,
        name: str = "b",
        ip: str = "127.0.0.1",
        resources: Mapping[str, float] | None = None,
        num_cpus: int | None = None,
        slot: int = 0,
        port_base: int | None = None,
        worker_ports: int = 60,
        object_store_mb: int = 256,
    ) -> None:
        if not _NAME.match(name):
            raise ConfigError(f"worker node name {name!r}: use 1-31 of a-z, 0-9, '-', '_'")
        if not 1 <= worker_ports <= NODE_PORT_SPAN - 10:
            raise ConfigError(f"worker_ports={worker_ports}: between 1 and {NODE_PORT_SPAN - 10}")
        self.name = f"ray-node-{name}"
        self.node_name = name
        super().__init__(settings)
        self.ip = ip
        self.resources = dict(resources or {})
        for key, val in self.resources.items():
            if not isinstance(val, (int, float)) or val <= 0:
                raise ConfigError(f"worker node resource {key!r}: a positive number, not {val!r}")
        self.num_cpus = num_cpus
        base = port_base if port_base is not None else settings.ray.port + _WORKER_OFFSET + WORKER_PORTS
        self.base = base + slot * NODE_PORT_SPAN
        self.worker_port_count = worker_ports
        self.object_store_mb = object_store_mb
        self.meta_path = self.dir / "node.json"

    # ------------------------------------------------------------------ Service
    @property
    def host(self) -> str:
        return self.ip

    def ports(self) -> dict[str, int]:
        out = {key: self.base + i for i, key in enumerate(_PORTS)}
        return {"port": out.pop("node_manager_port"), **out}

    @property
    def worker_port_range(self) -> tuple[int, int]:
        first = self.base + 10
        return first, first + self.worker_port_count - 1

    def env(self) -> dict[str, str]:
        return dict(RAY_ENV)

    def command(self) -> list[str]:
        p = self.ports()
        lo, hi = self.worker_port_range
        argv = [
            *_RAY_START, "start",
            f"--address={self.settings.ray.address}",
            f"--node-ip-address={self.ip}",
            f"--node-name=hotpath-node-{self.node_name}",
            f"--node-manager-port={p['port']}",
            f"--object-manager-port={p['object_manager_port']}",
            f"--dashboard-agent-listen-port={p['dashboard_agent_listen_port']}",
            f"--dashboard-agent-grpc-port={p['dashboard_agent_grpc_port']}",
            f"--runtime-env-agent-port={p['runtime_env_agent_port']}",
            f"--metrics-export-port={p['metrics_export_port']}",
            f"--min-worker-port={lo}",
            f"--max-worker-port={hi}",
            f"--object-store-memory={self.object_store_mb * 1024 * 1024}",
            "--disable-usage-stats",
            "--log-style=record",
            "--log-color=false",
        ]  # fmt: skip
        if self.resources:
            argv.append(f"--resources={json.dumps(self.resources, separators=(',', ':'))}")
        if self.num_cpus is not None:
            argv.append(f"--num-cpus={self.num_cpus}")
        return argv

    def preflight(self) -> None:
        if not process.port_open(self.settings.ray.host, self.settings.ray.port):
            raise ServiceError(
                f"{self.name}: no Ray head answers on {self.settings.ray.address}",
                hint="start it first: hotpath services up",
            )

    def launch(self) -> None:
        """``ray start`` (it returns once the raylet runs); record the raylet's PID and the session."""
        self.preflight()
        raylet, sid = run_ray_start(self, lambda line: "/raylet" in line.split(" ")[0])
        process.write_pid(self.pid_path, process.PidRecord(raylet, process.start_time(raylet), sid))
        self.meta_path.write_text(json.dumps({
            "name": self.node_name, "ip": self.ip, "resources": self.resources, "num_cpus": self.num_cpus,
            "base": self.base, "worker_ports": self.worker_port_count, "object_store_mb": self.object_store_mb,
        }))  # fmt: skip
        self._proc = None

    def processes(self) -> list[int]:
        return ray_session_processes(self.record(), self.ip)  # the raylet died: its workers and agents too

    def stop(self) -> bool:
        """Stop the node's session by PID; it is then no longer listed (:func:`worker_nodes`)."""
        pids = self.processes()
        if pids:
            process.terminate(pids, grace_s=self.stop_grace_s, refresh=self.processes)
        self.pid_path.unlink(missing_ok=True)
        self.meta_path.unlink(missing_ok=True)
        return bool(pids)

    def kill(self) -> list[int]:
        """SIGKILL the raylet and every process of its session at once (the node is lost, nothing
        is shut down cleanly); returns the PIDs signalled. The pid file stays (``stop`` cleans up)."""
        import os
        import signal

        pids = self.processes()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        return pids

    def probe(self) -> None:
        """The raylet's health endpoint on its dashboard agent (what Ray's Kubernetes probes use)."""
        url = f"http://{self.ip}:{self.ports()['dashboard_agent_listen_port']}/api/local_raylet_healthz"
        check_healthz(url, self.probe_timeout_s)

    def after_ready(self, say) -> None:  # noqa: ANN001
        found = process.listeners()
        if not found:
            return
        ours = set(self.processes())
        exposed = [lst for lst in found if ours.intersection(lst.pids) and not lst.loopback]
        if exposed:
            where = ", ".join(f"{lst.address}:{lst.port} ({lst.process})" for lst in exposed)
            self.stop()
            raise self.fail(f"listens on a non-loopback address: {where}; stopped it", show_log=False)

    @property
    def address(self) -> str:
        return f"{self.ip} (raylet :{self.ports()['port']}, joined to {self.settings.ray.address})"


def worker_nodes(settings: Settings) -> list[RayWorkerNode]:
    """The extra nodes started from this runtime dir and not stopped since (running, or lost), as
    they were started."""
    out = []
    for meta in sorted((settings.runtime_dir / "services").glob("ray-node-*/node.json")):
        try:
            m = json.loads(meta.read_text())
            out.append(RayWorkerNode(
                settings, name=m["name"], ip=m["ip"], resources=m.get("resources"), num_cpus=m.get("num_cpus"),
                port_base=int(m["base"]), worker_ports=int(m["worker_ports"]), object_store_mb=int(m["object_store_mb"]),
            ))  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError, ConfigError) as exc:
            print(f"  ray-node: ignoring {meta}: {exc}", file=sys.stderr)
    return out


def stop_all(settings: Settings, say=lambda msg: None) -> list[str]:  # noqa: ANN001
    """Stop every extra node of this runtime dir (before the head goes); returns their names."""
    stopped = []
    for node in worker_nodes(settings):
        if node.stop():
            stopped.append(node.name)
            say(f"  {node.name:<10} stopped")
    return stopped

