"""``hotpath events produce`` and ``hotpath coview replay|run|status`` (``hotpath bench coview``: :mod:`bench.coview`)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Optional

import typer

__all__ = ["register"]


def _settings(config: Optional[Path], profile: Optional[str] = None, **streaming):
    from hotpath.config import load_settings

    overrides = {}
    if profile:
        overrides["profile"] = profile
    s = load_settings(config, **overrides)
    upd = {k: v for k, v in streaming.items() if v is not None}
    if upd:
        from hotpath.config import Settings
        from hotpath.coview.settings import StreamingSettings
        from hotpath.errors import ConfigError

        try:
            st = StreamingSettings.model_validate({**s.streaming.model_dump(), **upd})
        except Exception as exc:
            raise ConfigError(f"invalid streaming options: {exc}") from exc
        s = Settings.model_validate({**s.model_dump(), "streaming": st.model_dump()})
    return s


def _file_events(path: Path):
    """Events from a JSON-lines file (one event object a line; keyed by its ``user``)."""
    from hotpath.errors import BadInput, NotFound

    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        raise NotFound(f"event file {path} does not exist") from None
    except OSError as exc:
        raise BadInput(f"cannot read event file {path}: {exc}") from None
    with fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            key = None
            try:
                obj = json.loads(line)
                if isinstance(obj, dict) and isinstance(obj.get("user"), str):
                    key = obj["user"].encode()
            except ValueError:
                pass  # a poisoned line is produced as it is: the job dead-letters it
            yield key, line


def register(root: typer.Typer, bench: typer.Typer) -> None:
    events = typer.Typer(no_args_is_help=True, help="The event log: produce view events.")
    coview = typer.Typer(no_args_is_help=True, help="Category co-views: the streaming job and the offline replay.")
    root.add_typer(events, name="events")
    root.add_typer(coview, name="coview")

    @events.command("produce")
    def produce_cmd(
        file: Optional[Path] = typer.Option(None, "--file", "-f", help="JSON-lines events to replay (else generated)"),
        rate: float = typer.Option(0.0, help="Events per second (0: as fast as possible)"),
        sessions: int = typer.Option(5000, help="Generated sessions (about 6 views each)"),
        users: Optional[int] = typer.Option(None, help="Distinct generated users (default: one per session)"),
        span_s: float = typer.Option(7200.0, "--span-s", help="Event-time span of the generated sessions"),
        start_ms: Optional[int] = typer.Option(None, "--start-ms", help="Event time of the first session (default: now - span)"),
        seed: int = typer.Option(7),
        topic: Optional[str] = typer.Option(None, help="Topic (default: streaming.topic)"),
        watermark: bool = typer.Option(True, help="End with a watermark past the last event on every partition"),
        profile: Optional[str] = typer.Option(None, "--profile", "-p", help="embedded (file log) or full (Kafka)"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Append generated (or file) view events to the event log at a given rate."""
        from hotpath.coview.generator import generate
        from hotpath.coview.job import produce_events, punctuate
        from hotpath.streams.factory import open_event_log

        s = _settings(config, profile, topic=topic)
        if file is not None:
            records = _file_events(file)
            last_ts = None
        else:
            start = start_ms if start_ms is not None else int(time.time() * 1000 - span_s * 1000)
            gen = generate(sessions=sessions, users=users, start_ms=start, span_ms=int(span_s * 1000), seed=seed)
            records = gen.events
            last_ts = max((e.ts for e in gen.events), default=start)

        async def go() -> dict:
            log = open_event_log(s)
            try:
                t0 = time.perf_counter()
                n = await produce_events(log, s.streaming.topic, records, rate=rate or None,
                                         partitions=s.streaming.partitions)
                if watermark and last_ts is not None:
                    await punctuate(log, s.streaming.topic, last_ts + 24 * 3_600_000)
                dt = time.perf_counter() - t0
                return {"topic": s.streaming.topic, "events": n, "seconds": round(dt, 2),
                        "events_per_s": round(n / dt) if dt else None, "profile": s.profile}
            finally:
                await log.close()

        typer.echo(json.dumps(asyncio.run(go())))

    @coview.command("replay")
    def replay_cmd(
        file: Path = typer.Argument(..., help="CSV with a header row"),
        session_col: str = typer.Option(..., "--session-col", help="Column grouping views (user or session id)"),
        key_col: str = typer.Option(..., "--key-col", help="Column with the key (category, item id, ...)"),
        time_col: str = typer.Option(..., "--time-col", help="Event time: seconds since the epoch, or ISO-8601"),
        out: Path = typer.Option(..., "--out", "-o", help="Output JSON: {key: [[related_key, score], ...]}"),
        time_unit: str = typer.Option("auto", help="auto | s | ms | iso"),
        window: str = typer.Option("sliding", help="sliding | session"),
        window_s: float = typer.Option(900.0, "--window-s", help="Sliding window size"),
        slide_s: float = typer.Option(300.0, "--slide-s", help="Slide, also the decay period"),
        gap_s: float = typer.Option(1800.0, "--gap-s", help="Session gap"),
        decay: float = typer.Option(0.95, help="Score factor per decay period"),
        top_k: int = typer.Option(20, "--top-k", help="Related keys kept per key"),
        max_keys: int = typer.Option(50, "--max-keys", help="Distinct keys one window contributes"),
    ) -> None:
        """Run a CSV of events through the co-view operator offline, as fast as it can."""
        from hotpath.coview.replay import replay_csv
        from hotpath.coview.windows import WindowSpec
        from hotpath.errors import BadInput

        if time_unit not in ("auto", "s", "ms", "iso"):
            raise BadInput(f"--time-unit must be auto, s, ms or iso, not {time_unit!r}", field="time_unit")
        if window not in ("sliding", "session"):
            raise BadInput(f"--window must be sliding or session, not {window!r}", field="window")
        if not 0 < decay <= 1:
            raise BadInput(f"--decay must lie in (0, 1], not {decay}", field="decay")
        if top_k < 1 or max_keys < 2:
            raise BadInput("--top-k must be >= 1 and --max-keys >= 2", field="top_k")
        try:
            spec = WindowSpec(kind=window, size_ms=int(window_s * 1000), slide_ms=int(slide_s * 1000),
                              gap_ms=int(gap_s * 1000), max_keys=max_keys)  # fmt: skip
        except ValueError as exc:
            raise BadInput(f"bad window options: {exc}", field="window") from None
        res = replay_csv(file, session_col=session_col, key_col=key_col, time_col=time_col, spec=spec, decay=decay,
                         top_k=top_k, time_unit=time_unit)  # type: ignore[arg-type]
        try:
            out.write_text(res.to_json())
        except OSError as exc:
            raise BadInput(f"cannot write {out}: {exc}", field="out") from None
        typer.echo(json.dumps({"out": str(out), "events": res.events, "keys": len(res.related),
                               "windows": res.windows, "seconds": round(res.seconds, 3),
                               "events_per_s": round(res.events_per_s)}))

    @coview.command("run")
    def run_cmd(
        profile: Optional[str] = typer.Option(None, "--profile", "-p"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Start (or attach to) the streaming job on the local Ray cluster."""
        from hotpath.graphs.coview_app import start_coview_job

        h = start_coview_job(_settings(config, profile))
        typer.echo(json.dumps({**h.describe(), "status": h.status()}))

    @coview.command("stop")
    def stop_cmd(
        profile: Optional[str] = typer.Option(None, "--profile", "-p"),
        config: Optional[Path] = typer.Option(None, "--config"),
    ) -> None:
        """Stop the streaming job after a final checkpoint."""
        from hotpath.graphs.coview_app import start_coview_job

        typer.echo(json.dumps(start_coview_job(_settings(config, profile)).stop()))
