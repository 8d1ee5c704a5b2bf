"""The Amplitude HTTP V2 client against a local server that answers as Amplitude documents:
200 with events_ingested, 400 naming invalid events (or a missing api_key), 413 past the size limit,
429 while throttling; and an unreachable server (events stay in the disk queue)."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hotpath.ab.events import Exposure, Outcome
from hotpath.ab.export import to_amplitude
from hotpath.ab.settings import AmplitudeSettings
from hotpath.clients.amplitude import AmplitudeClient, AmplitudeError, AmplitudeQueueFull
from hotpath.errors import ConfigError

KEY = "test-key"


class FakeAmplitude:
    """``POST /2/httpapi``: Amplitude's status codes and bodies; ingested events deduplicated by insert_id."""

    def __init__(self, max_events: int = 2000, throttle_first: int = 0) -> None:
        self.max_events = max_events
        self.throttle_left = throttle_first
        self.ingested: dict[str, dict] = {}
        self.requests: list[int] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status, out = fake.answer(self.path, body)
                data = json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/2/httpapi"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path: str, raw: bytes) -> tuple[int, dict]:
        try:
            req = json.loads(raw)
        except ValueError:
            return 400, {"code": 400, "error": "Invalid JSON request body"}
        events = req.get("events") or []
        self.requests.append(len(events))
        if path != "/2/httpapi":
            return 404, {"code": 404}
        if req.get("api_key") != KEY:
            return 400, {"code": 400, "error": "Invalid API key: " + str(req.get("api_key")), "missing_field": None}
        if len(events) > self.max_events or len(raw) > 1_000_000:
            return 413, {"code": 413, "error": "Payload too large"}
        if self.throttle_left > 0:
            self.throttle_left -= 1
            users = {e["user_id"]: 31 for e in events[:3]}
            return 429, {"code": 429, "error": "Too many requests for some devices and users", "eps_threshold": 30,
                         "throttled_users": users, "throttled_events": list(range(min(3, len(events))))}  # fmt: skip
        invalid = [i for i, e in enumerate(events) if not isinstance(e.get("time"), int) or e["time"] < 0]
        missing = [i for i, e in enumerate(events) if not e.get("event_type")]
        if invalid or missing:
            body = {"code": 400, "error": "Request missing required field" if missing else "Invalid field values on some events"}
            if invalid:
                body["events_with_invalid_fields"] = {"time": invalid}
            if missing:
                body["events_with_missing_fields"] = {"event_type": missing}
            return 400, body
        for e in events:
            self.ingested.setdefault(e["insert_id"], e)
        return 200, {"code": 200, "events_ingested": len(events), "payload_size_bytes": len(raw), "server_upload_time": int(time.time() * 1000)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    f = FakeAmplitude(max_events=120)
    yield f
    f.close()


def client(url: str, tmp_path, **kw) -> AmplitudeClient:
    s = AmplitudeSettings(url=url, batch_events=kw.pop("batch_events", 500), max_attempts=kw.pop("max_attempts", 4),
                          backoff_s=0.01, timeout_s=2.0, **kw)  # fmt: skip
    return AmplitudeClient(s, KEY, tmp_path / "queue", sleep=lambda s: None)


def events(n: int, start: int = 0) -> list[dict]:
    evs = []
    for i in range(start, start + n):
        if i % 2:
            evs.append(Exposure(f"u{i}", 1_764_547_200_000 + i, "homepage", "exp", "treatment", f"x{i}"))
        else:
            evs.append(Outcome("order" if i % 4 == 0 else "click", f"u{i - 1}", 1_764_547_200_000 + i + 1, revenue=9.5, id=f"o{i}"))
    return to_amplitude(evs)


def test_the_event_shape_names_experiment_and_variant() -> None:
    evs = to_amplitude([Exposure("u1", 10, "homepage", "exp", "t", "x1"), Outcome("order", "u1", 20, revenue=12.0, id="o1"),
                        Outcome("click", "u2", 30, widget="homepage", id="c1")])  # fmt: skip
    assert evs[0] == {"event_type": "recs_exposure", "user_id": "u1", "time": 10, "insert_id": "x1",
                      "event_properties": {"experiment": "exp", "variant": "t", "widget": "homepage"}}  # fmt: skip
    assert evs[1]["revenue"] == 12.0 and evs[1]["event_properties"] == {"experiment": "exp", "variant": "t", "experiments": ["exp:t"]}
    assert evs[2]["event_properties"] == {"widget": "homepage"}  # never exposed: no experiment


def test_batches_are_split_on_413_and_everything_arrives_once(fake, tmp_path) -> None:
    c = client(fake.url, tmp_path)
    sent = events(1000)
    c.enqueue(sent)
    rep = c.drain()
    assert rep.sent == 1000 and rep.rejected == 0 and rep.left_in_queue == 0 and rep.stopped is None
    assert rep.splits > 0 and rep.statuses[413] > 0 and max(n for n in fake.requests if n <= 120) <= 120
    assert set(fake.ingested) == {e["insert_id"] for e in sent}
    assert fake.ingested["x1"]["event_properties"]["variant"] == "treatment"
    assert not list((tmp_path / "queue").glob("seg-*"))


def test_429_is_retried_with_backoff(tmp_path) -> None:
    f = FakeAmplitude(throttle_first=3)
    waits = []
    s = AmplitudeSettings(url=f.url, batch_events=100, max_attempts=5, backoff_s=0.5, max_backoff_s=1.5)
    c = AmplitudeClient(s, KEY, tmp_path / "q", sleep=waits.append)
    c.enqueue(events(50))
    rep = c.drain()
    f.close()
    assert rep.sent == 50 and rep.statuses[429] == 3 and rep.retries == 3
    assert len(waits) == 3 and waits[0] < waits[2] <= 1.5 * 1.5  # doubling, capped, jittered


def test_400_moves_the_named_events_aside_and_sends_the_rest(fake, tmp_path) -> None:
    c = client(fake.url, tmp_path)
    evs = events(100)
    evs[7]["time"] = -5
    evs[42]["time"] = "yesterday"
    c.enqueue(evs)
    rep = c.drain()
    assert rep.sent == 98 and rep.rejected == 2 and rep.statuses[400] == 1
    rejected = [json.loads(line) for line in (tmp_path / "queue" / "rejected.jsonl").read_text().splitlines()]
    assert [r["event"]["insert_id"] for r in rejected] == [evs[7]["insert_id"], evs[42]["insert_id"]]
    assert "Invalid field values" in rejected[0]["error"]


def test_a_bad_api_key_stops_with_an_error_and_keeps_the_queue(fake, tmp_path) -> None:
    s = AmplitudeSettings(url=fake.url, batch_events=100)
    c = AmplitudeClient(s, "wrong", tmp_path / "q", sleep=lambda s: None)
    c.enqueue(events(10))
    with pytest.raises(AmplitudeError, match="Invalid API key"):
        c.drain()
    assert c.queued_events() == 10
    with pytest.raises(ConfigError) as err:
        AmplitudeClient(s, "", tmp_path / "q")
    assert "AMPLITUDE_API_KEY" in err.value.one_line()


def test_nothing_is_lost_while_amplitude_is_unreachable(tmp_path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens here
    url = f"http://127.0.0.1:{port}/2/httpapi"
    c = client(url, tmp_path, batch_events=100, max_attempts=2)
    first = events(250)
    c.enqueue(first)
    rep = c.drain()
    assert rep.sent == 0 and "unreachable" in rep.stopped and rep.left_in_queue == 250
    later = events(100, start=250)
    c.enqueue(later)
    c.close()
    f = FakeAmplitude()
    c2 = client(f.url, tmp_path, batch_events=100)  # a new process, the same queue
    assert c2.queued_events() == 350
    rep = c2.drain()
    f.close()
    assert rep.sent == 350 and rep.left_in_queue == 0
    assert set(f.ingested) == {e["insert_id"] for e in first + later}


def test_the_queue_is_bounded(tmp_path) -> None:
    c = client("http://127.0.0.1:9/2/httpapi", tmp_path, queue_max_bytes=20_000)
    c.enqueue(events(50))
    with pytest.raises(AmplitudeQueueFull, match="limit"):
        c.enqueue(events(200, start=50))
    assert c.queued_events() == 50
