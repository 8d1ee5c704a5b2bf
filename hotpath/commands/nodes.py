"""``hotpath services node up|down|status``: extra Ray worker nodes joined to the local head
(:mod:`hotpath.cluster.worker_node`; registered by :mod:`hotpath.commands.cluster`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register_node_commands"]

_CONFIG_HELP = "YAML settings file (else HOTPATH_CONFIG)"


def _resources(text: Optional[str]) -> dict[str, float]:
    from hotpath.errors import BadInput

    if not text:
        return {}
    try:
        val = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"--resources: not JSON ({exc}); e.g. '{{\"coview\": 1}}'") from None
    if not isinstance(val, dict) or not all(isinstance(k, str) and isinstance(v, (int, float)) for k, v in val.items()):
        raise BadInput("--resources: a JSON object of resource name -> number, e.g. '{\"coview\": 1}'")
    return val


def register_node_commands(services: typer.Typer) -> None:
    node = typer.Typer(no_args_is_help=True, help="Extra Ray worker nodes on this machine, joined to the local head.")
    services.add_typer(node, name="node")

    @node.command("up")
    def node_up(
        name: str = typer.Option("b", help="node name (its runtime folder: services/ray-node-NAME)"),
        resources: Optional[str] = typer.Option(None, help="Ray custom resources as JSON, e.g. '{\"coview\": 1}'"),
        num_cpus: Optional[int] = typer.Option(None, "--num-cpus", help="CPUs the node offers (default: the machine's)"),
        slot: int = typer.Option(0, help="port block: node ports from HOTPATH_RAY__PORT+210+70*SLOT"),
        config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP),
    ) -> None:
        """Start (or keep) one extra raylet joined to the head; idempotent."""
        from hotpath.cluster.worker_node import RayWorkerNode
        from hotpath.config import load_settings

        n = RayWorkerNode(load_settings(config), name=name, resources=_resources(resources), num_cpus=num_cpus, slot=slot)
        outcome = n.start(typer.echo)
        typer.echo(f"  {n.name:<10} {outcome} on {n.address}")

    @node.command("down")
    def node_down(
        name: Optional[str] = typer.Option(None, help="only this node (default: every extra node)"),
        config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP),
    ) -> None:
        """Stop extra nodes by PID (their raylet, agents and workers)."""
        from hotpath.cluster.worker_node import stop_all, worker_nodes
        from hotpath.config import load_settings

        s = load_settings(config)
        if name is None:
            stopped = stop_all(s, typer.echo)
        else:
            stopped = [n.name for n in worker_nodes(s) if n.node_name == name and n.stop()]
        if not stopped:
            typer.echo("  no extra node was running")

    @node.command("status")
    def node_status(config: Optional[Path] = typer.Option(None, "--config", help=_CONFIG_HELP)) -> None:
        """Each extra node: address, PID, health."""
        from hotpath.cluster.worker_node import worker_nodes
        from hotpath.config import load_settings

        nodes = worker_nodes(load_settings(config))
        if not nodes:
            typer.echo("  no extra node was started from this runtime folder")
        for n in nodes:
            st = n.status()
            typer.echo(f"  {n.name:<10} {st.health.value:<10} pid {st.pid or '-'}  {n.address}  resources {n.resources}")
