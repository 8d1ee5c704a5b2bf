"""The worker set-up hook binds Serve's wildcard gRPC servers to loopback."""

from __future__ import annotations

import pytest

from hotpath.cluster import process
from hotpath.cluster.ray_patches import _loopback, loopback_grpc_servers


@pytest.mark.parametrize(
    ("given", "bound"),
    [("[::]:0", "127.0.0.1:0"), ("0.0.0.0:4312", "127.0.0.1:4312"), ("127.0.0.1:77", "127.0.0.1:77"), ("10.1.2.3:5", "10.1.2.3:5")],
)
def test_wildcards_become_loopback(given: str, bound: str) -> None:
    assert _loopback(given) == bound


def test_hook_rebinds_a_real_grpc_server_and_is_idempotent() -> None:
    from concurrent.futures import ThreadPoolExecutor

    import grpc
    from ray._common import tls_utils

    loopback_grpc_servers()
    loopback_grpc_servers()
    server = grpc.server(ThreadPoolExecutor(max_workers=1))
    port = tls_utils.add_port_to_grpc_server(server, "[::]:0")
    server.start()
    try:
        assert port > 0
        mine = [lst for lst in process.listeners() or [] if lst.port == port]
        assert mine and all(lst.loopback for lst in mine), mine
    finally:
        server.stop(None)
