"""The paced load `hotpath bench coview --recs-target` runs beside the co-view job: wrk at a set
rate against a real (local) HTTP server, not as fast as it can."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from bench.recs import PacedLoad


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits = 0

    def do_GET(self) -> None:  # noqa: N802
        type(self).hits += 1
        body = b'{"items":[]}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


def test_the_load_holds_its_rate_and_counts_what_the_server_saw() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        load = PacedLoad(base, ["/related?k=1", "/related?k=2"], seconds=4, rate=100, connections=8)
        _Ok.hits = 0  # the probes' requests are not the measured run's
        r = load.finish()
    finally:
        server.shutdown()
    assert r["errors"] == 0 and r["rate_target"] == 100
    assert 60 <= r["rps"] <= 140, r  # paced: nowhere near what an unpaced wrk reaches on this server
    assert abs(r["requests"] - _Ok.hits) <= 8  # wrk's count is what arrived (one in flight per connection)
