"""``hotpath bench walk recs|voice-chunk``: which ``hotpath/`` source files one request executes.

The "files walked" figure of the architecture notes (``docs/architecture.md``), measured instead of
counted by reading: the objects the running system uses are built in-process over the real servers
(no Ray), warmed, and then one unit of work runs under ``sys.setprofile`` on the thread that does
it; every Python function called (coroutine resumptions included) names its file. Imports, model
loads and warm-up run before the trace, so only the work itself counts.

* ``recs``: ``GET /v1/recs/related`` through the shared port's ASGI adapter (what ``make run``
  serves: :class:`~hotpath.deployments.recs.RecsIngress` over Redis and SQLite / DuckDB, a small
  generated catalog under its own key prefix, dropped afterwards). Two requests are traced: a
  repeat of a query already answered (every list a local copy: the steady state) and one for a
  master the replica has not served yet (its semantic list read from Redis, where the hot masters'
  are mirrored).
* ``voice-chunk``: one 32 ms chunk of audio pushed into the voice edge's session host
  (:class:`~hotpath.actors.voice_host.VoiceSessionHost`, the plain class the Ray actor wraps)
  after a first chunk opened the device's session, until its stream has processed it (VAD over
  its frames, the segmenter; no speech, so no STT call).

Background threads (the replica's refreshers) are not traced: they are not the request's walk.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Optional

__all__ = ["trace_files", "walk_recs", "walk_voice_chunk", "register"]


def _package_root() -> str:
    import hotpath

    return str(Path(hotpath.__file__).resolve().parent) + "/"


def trace_files(run: Callable[[], object]) -> dict[str, int]:
    """Run ``run()`` under ``sys.setprofile``: ``{path under hotpath/: Python calls}``."""
    root = _package_root()
    counts: Counter[str] = Counter()
    cache: dict[str, str | None] = {}

    def prof(frame, event, arg) -> None:  # noqa: ANN001
        if event != "call":
            return
        fn = frame.f_code.co_filename
        rel = cache.get(fn, "")
        if rel == "":
            p = str(Path(fn).resolve()) if fn and not fn.startswith("<") else ""
            rel = cache[fn] = "hotpath/" + p[len(root) :] if p.startswith(root) else None
        if rel is not None:
            counts[rel] += 1

    sys.setprofile(prof)
    try:
        run()
    finally:
        sys.setprofile(None)
    return dict(sorted(counts.items()))


def _walk(files: dict[str, int]) -> dict:
    return {"files": len(files), "calls": sum(files.values()), "by_file": files}


# ---------------------------------------------------------------------- recs
def walk_recs(settings, *, masters: int = 2000, say=print) -> dict:
    """Trace ``/v1/recs/related`` twice (a repeated query, a new master) through the shared port's adapter."""
    import logging
    import shutil

    from hotpath.deployments.recs import RecsIngress, _SharedPortApp
    from hotpath.recs.catalog import generate, master_uuid
    from hotpath.recs.loader import load_catalog
    from hotpath.recs.model import Keys
    from hotpath.recs.settings import CatalogSettings
    from hotpath.stores.factory import open_dimension_store, open_hot_cache
    from hotpath.stores.redis_fast import AsyncZReader, bulk_writer
    from hotpath.stores.rollups import DuckDbRollupStore

    logging.getLogger("hotpath").setLevel(logging.ERROR)
    d = settings.runtime_dir / "bench" / "walk"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    prefix = f"walk{int(time.time())}:"
    s = settings.model_copy(update={
        "recs": settings.recs.model_copy(update={"key_prefix": prefix, "promos_consumer": False}),
        "runtime_dir": d,
        "sqlite": settings.sqlite.model_copy(update={"path": d / "dim.sqlite"}),
        "duckdb": settings.duckdb.model_copy(update={"path": d / "rollups.duckdb"}),
        "profile": "embedded",
    })  # fmt: skip
    cat = generate(CatalogSettings(masters=masters, users=max(100, masters // 10)))
    cache = open_hot_cache(s)
    say(f"walk: loading {masters} masters into Redis at {s.redis.host}:{s.redis.port} (prefix {prefix})")
    store = open_dimension_store(s)
    roll = DuckDbRollupStore(s.in_runtime(s.duckdb.path))
    load_catalog(cat, s.recs, cache, bulk_writer(cache), store, roll)
    roll.close()
    store.close()
    ing = None
    loop = asyncio.new_event_loop()
    try:
        ing = RecsIngress.func_or_class(s, True, 0)
        app = _SharedPortApp(ing, AsyncZReader(ing.service.cache, s))
        route = s.recs.route_prefix + "/related"

        async def get(query: str) -> tuple[int, bytes]:
            sent: list[dict] = []

            async def receive() -> dict:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(msg: dict) -> None:
                sent.append(msg)

            scope = {"type": "http", "method": "GET", "path": route, "root_path": "", "query_string": query.encode(),
                     "headers": [(b"host", b"127.0.0.1")]}  # fmt: skip
            await app(scope, receive, send)
            return sent[0]["status"], sent[1]["body"]

        def one(query: str) -> Callable[[], None]:
            def run() -> None:
                status, body = loop.run_until_complete(get(query))
                if status != 200:
                    raise RuntimeError(f"{route}?{query} answered {status}: {body[:200]!r}")

            return run

        seen = f"user_id=u1&master_id={master_uuid(3)}&widget=pdp_related&k=20"
        # a master not served yet whose semantic list is mirrored in Redis (the hot ones are)
        keys = Keys(prefix)
        mid = next((master_uuid(i) for i in range(masters // 2, masters) if cache.ztop(keys.sem(master_uuid(i)), 1)),
                   master_uuid(masters - 1))  # fmt: skip
        new = f"user_id=u2&master_id={mid}&widget=pdp_related&k=20"
        for _ in range(3):  # warm: connections, compiled lists, lazy imports
            one(seen)()
        one(f"user_id=u3&master_id={master_uuid(5)}&widget=sponsored&k=20")()
        out = {
            "what": f"GET {route} (shared port adapter, in-process, real Redis + SQLite)",
            "steady": _walk(trace_files(one(seen))),
            "new_master": _walk(trace_files(one(new))),
        }
        loop.run_until_complete(app.reader.close())
        loop.run_until_complete(ing._areader.close())
        return out
    finally:
        if ing is not None:
            ing.service.close()
        loop.close()
        keys = list(cache.scan(prefix))
        for i in range(0, len(keys), 1000):
            cache.delete(*keys[i : i + 1000])
        cache.close()


# ---------------------------------------------------------------------- voice
def walk_voice_chunk(settings, say=print) -> dict:
    """Trace one non-speech audio chunk from the MQTT message to the processed frame: the ingress's
    plain logic (topic, payload, flood guard), then the session host (after a first chunk opened the
    session). In production a Ray call sits between the two (``actors/voice_ingress._HostSink``)."""
    from hotpath.actors.voice_host import VoiceSessionHost
    from hotpath.voice.audio import encode_framed
    from hotpath.voice.ingress import VoiceIngress

    say("walk: building a voice session host (VAD, intent model, TTS) in-process")
    host = VoiceSessionHost(settings.voice, settings.mqtt.host, settings.mqtt.port, 0)
    loop = asyncio.new_event_loop()
    device = "walk-watch-1"
    topic = f"{settings.voice.topic_prefix}wearable/{device}/audio"
    frame = 512 * 2  # one 32 ms VAD frame of PCM16
    quiet = bytes(frame)
    n = [0]
    pushed: list = []

    class _Sink:  # stands in for the Ray call to the device's session host
        def push(self, chunk) -> None:
            pushed.append(host.push(chunk))

    class _NoPublisher:
        async def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
            raise RuntimeError(f"the walk's chunk caused an error event on {topic}")

    ingress = VoiceIngress(settings.voice, publisher=_NoPublisher(), spawn=lambda _device: _Sink())

    async def push_and_wait() -> None:
        n[0] += 1
        if not ingress.on_message(topic, encode_framed(quiet, seq=n[0])):
            raise RuntimeError("the ingress refused the chunk")
        ok = await pushed.pop()
        if not ok:
            raise RuntimeError("the session host refused the chunk")
        session = host.sessions[device]
        for _ in range(1000):  # until the device's worker has taken it off the queue and processed it
            await asyncio.sleep(0)
            if session.queue.empty() and session.stream.samples_in >= n[0] * 512:
                break
        else:
            raise RuntimeError("the chunk was not processed")

    def run() -> None:
        loop.run_until_complete(push_and_wait())

    try:
        for _ in range(3):
            run()
        return {"what": "one 32 ms audio chunk (no speech): VoiceIngress.on_message, then VoiceSessionHost.push, until processed",
                "chunk": _walk(trace_files(run))}  # fmt: skip
    finally:
        try:
            loop.run_until_complete(asyncio.wait_for(host.close(), 10))
        except Exception:  # noqa: BLE001 - teardown of a benchmark object
            pass
        pending = asyncio.all_tasks(loop)  # the host's reaper / retry loops, the device's worker
        for t in pending:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()


def _print(name: str, res: dict) -> None:
    print(res["what"])
    for k, w in res.items():
        if k == "what":
            continue
        print(f"  {name} {k}: {w['files']} files, {w['calls']} Python calls")
        for f, c in w["by_file"].items():
            print(f"    {c:>6}  {f}")


def register(bench) -> None:
    """``hotpath bench walk``."""
    import typer

    @bench.command("walk")
    def bench_walk(
        what: str = typer.Argument(..., help="recs (one /v1/recs/related request) or voice-chunk (one audio chunk)"),
        masters: int = typer.Option(2000, min=100, max=100_000, help="recs: catalog size loaded for the walk"),
        as_json: bool = typer.Option(False, "--json"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """The hotpath/ source files one request or one audio chunk executes (traced, not read)."""
        from hotpath.config import load_settings
        from hotpath.errors import BadInput

        s = load_settings(config)
        say = lambda m: typer.echo(m, err=True)  # noqa: E731
        if what == "recs":
            res = walk_recs(s, masters=masters, say=say)
        elif what == "voice-chunk":
            res = walk_voice_chunk(s, say=say)
        else:
            raise BadInput(f"walk what? recs or voice-chunk, got {what!r}", field="what")
        if as_json:
            typer.echo(json.dumps(res))
        else:
            _print(what, res)
