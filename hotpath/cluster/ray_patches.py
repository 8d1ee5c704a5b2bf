"""Worker set-up for the loopback-only local cluster.

Ray Serve 2.60 starts every replica's inter-deployment gRPC server on ``[::]:0`` (hard-coded in
``ray/serve/_private/replica.py``), i.e. on every interface, whatever the node's address. The local
cluster must listen on loopback only, so each worker of a hotpath driver's job runs
:func:`loopback_grpc_servers` first (Ray's ``worker_process_setup_hook``), which binds such
servers to 127.0.0.1 instead. Peers reach a replica through its node address, which is 127.0.0.1
here, so nothing else changes.
"""

from __future__ import annotations

import sys

__all__ = ["loopback_grpc_servers", "HOOK"]

HOOK = "hotpath.cluster.ray_patches.loopback_grpc_servers"


def _loopback(address: str) -> str:
    if address.startswith("[::]:") or address.startswith("0.0.0.0:"):
        return "127.0.0.1:" + address.rsplit(":", 1)[1]
    return address


def loopback_grpc_servers() -> None:
    from ray._common import tls_utils

    original = tls_utils.add_port_to_grpc_server
    if getattr(original, "_hotpath_loopback", False):
        return

    def add_port_to_grpc_server(server, address):  # type: ignore[no-untyped-def]
        return original(server, _loopback(address))

    add_port_to_grpc_server._hotpath_loopback = True  # type: ignore[attr-defined]
    tls_utils.add_port_to_grpc_server = add_port_to_grpc_server
    replica = sys.modules.get("ray.serve._private.replica")
    if replica is not None:  # imported before the hook ran: patch its own binding of the name
        replica.add_port_to_grpc_server = add_port_to_grpc_server
