"""Process helpers: pid files, session stop, port checks, log tails (no servers needed)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from hotpath.cluster import process


def test_pid_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "x.pid"
    rec = process.PidRecord(os.getpid(), process.start_time(os.getpid()), os.getsid(0))
    process.write_pid(path, rec)
    assert path.read_text().splitlines()[0] == str(os.getpid())  # plain PID first, for other tools
    assert process.read_pid(path) == rec
    path.write_text("1234\n")
    assert process.read_pid(path) == process.PidRecord(1234, None, None)
    path.write_text("garbage\n")
    assert process.read_pid(path) is None
    assert process.read_pid(tmp_path / "missing.pid") is None


def test_recycled_pid_is_not_trusted() -> None:
    started = process.start_time(os.getpid())
    assert started is not None
    assert process.is_alive(os.getpid(), started)
    stale = process.PidRecord(os.getpid(), started + 1, os.getpid())
    assert not stale.alive()
    assert stale.processes() == []  # never signal a PID that was reused by someone else


def test_stop_by_pid_takes_the_whole_session(tmp_path: Path) -> None:
    proc = process.spawn(["sh", "-c", "sleep 300 & sleep 300 & wait"], log=tmp_path / "s.log")
    rec = process.PidRecord(proc.pid, process.start_time(proc.pid), proc.pid)
    deadline = time.monotonic() + 5
    while len(rec.processes()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    members = rec.processes()
    assert len(members) == 3 and proc.pid in members
    process.terminate(members, grace_s=5, refresh=rec.processes)
    proc.wait(timeout=5)
    assert not any(process.is_alive(p) for p in members)


def test_terminate_escalates_to_sigkill(tmp_path: Path) -> None:
    proc = process.spawn(["sh", "-c", "trap '' TERM; printf 'rea%s\\n' dy; sleep 300 & wait"], log=tmp_path / "t.log")
    deadline = time.monotonic() + 5
    while "ready\n" not in (tmp_path / "t.log").read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    t0 = time.monotonic()
    killed = process.terminate([proc.pid], grace_s=0.5)
    assert killed == [proc.pid]
    assert time.monotonic() - t0 < 5
    proc.wait(timeout=5)
    assert not process.is_alive(proc.pid)
    for pid in process.session_members(proc.pid):  # the orphaned sleep: clean up
        os.kill(pid, 9)


def test_port_free_sees_a_listener() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.listen()
        assert not process.port_free("127.0.0.1", port)
        assert process.port_open("127.0.0.1", port)
        found = process.listeners()
        if found is None:
            pytest.skip("`ss` (iproute2) is not installed")
        mine = [lst for lst in found if lst.port == port]
        assert mine and mine[0].loopback and os.getpid() in mine[0].pids
    assert process.port_free("127.0.0.1", port)


def test_listener_loopback_classification() -> None:
    mk = lambda a: process.Listener(a, 1, (), "")  # noqa: E731
    assert mk("127.0.0.1").loopback and mk("[::ffff:127.0.0.1]").loopback and mk("[::1]").loopback
    assert not mk("0.0.0.0").loopback and not mk("*").loopback and not mk("[::]").loopback
    assert not mk("10.0.0.5").loopback


def test_log_tail_and_last_error(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("==== start\nline 1\nERROR bad thing happened\n\tat x.y(Z.java:1)\nline 4\n")
    assert process.tail(log, 2) == "\tat x.y(Z.java:1)\nline 4"
    assert process.last_error(log) == "ERROR bad thing happened"
    assert process.tail(tmp_path / "none.log") == ""
