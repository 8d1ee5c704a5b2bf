"""``hotpath events produce`` into the embedded event log, and the CLI's one-line errors."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

from hotpath.config import Settings
from hotpath.coview.events import parse_event
from hotpath.streams.embedded_log import EmbeddedEventLog


def run_cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HOTPATH_RUNTIME_DIR": str(tmp_path), "HOTPATH_PROFILE": "embedded"}
    return subprocess.run([sys.executable, "-m", "hotpath.cli", *args], capture_output=True, text=True, timeout=120,
                          env=env)  # fmt: skip


async def read_all(log, topic: str) -> list:
    out = []
    for p in range(await log.partitions(topic)):
        out.extend(await log.read(topic, p, 0, max_records=100_000))
    return out


def test_events_produce_generated_at_a_rate_into_the_embedded_log(tmp_path) -> None:
    r = run_cli(tmp_path, "events", "produce", "--sessions", "200", "--rate", "2000", "--topic", "cli-views")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    n = summary["events"]
    assert n > 500 and summary["seconds"] >= n / 2000 * 0.8  # paced, not as fast as possible
    log = EmbeddedEventLog(Settings(runtime_dir=tmp_path))
    recs = asyncio.run(read_all(log, "cli-views"))
    events = [parse_event(r.value) for r in recs]
    views = [e for e in events if e.type == "view"]
    assert len(views) == n
    assert sum(e.type == "watermark" for e in events) == 4  # one per partition
    assert all(r.key == e.user.encode() for r, e in zip(recs, events) if e.type == "view")


def test_events_produce_from_a_file_keeps_poison_for_the_dead_letter_topic(tmp_path) -> None:
    f = tmp_path / "events.jsonl"
    f.write_text('{"user":"u1","cat":"a","ts":1767225600000}\n{not json\n\n{"user":"u2","cat":"b","ts":1767225601000}\n')
    r = run_cli(tmp_path, "events", "produce", "--file", str(f), "--topic", "file-views")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["events"] == 3
    r = run_cli(tmp_path, "events", "produce", "--file", str(tmp_path / "missing.jsonl"))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "does not exist" in r.stderr
