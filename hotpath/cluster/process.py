"""Linux process and port helpers for the local servers: pid files, sessions, ports, log tails.

Every server is spawned as the leader of its own session (``setsid``), so the session id equals
the spawned PID, and every process the server forks (Redis' BGSAVE child, Ray's raylet, workers,
agents) stays in that session. Stopping a service means: SIGTERM every live member of its session,
wait, SIGKILL what is left. A PID is only trusted together with its start time (clock ticks since
boot, as ``/proc/PID/stat`` has it, so pid files written before stay valid), so a recycled PID is
never signalled. Processes and listening sockets are read through psutil.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

__all__ = [
    "PidRecord",
    "read_pid",
    "write_pid",
    "start_time",
    "is_alive",
    "session_members",
    "terminate",
    "spawn",
    "port_free",
    "port_open",
    "Listener",
    "listeners",
    "tail",
    "last_error",
    "rss_kib",
]


# --------------------------------------------------------------------------- processes (psutil)
_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except (psutil.Error, ValueError):
        return None


def _ticks(proc: psutil.Process) -> int:
    """Start time in clock ticks since boot (psutil derives create_time from exactly these)."""
    return round((proc.create_time() - psutil.boot_time()) * _TICKS)


def start_time(pid: int) -> int | None:
    """The process' start time in clock ticks since boot, ``None`` when it does not exist."""
    proc = _process(pid)
    if proc is None:
        return None
    try:
        return _ticks(proc)
    except psutil.Error:
        return None


def is_alive(pid: int, started: int | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and, if given, started at ``started``."""
    proc = _process(pid)
    if proc is None:
        return False
    try:
        if proc.status() in _GONE:
            return False
        return started is None or _ticks(proc) == started
    except psutil.Error:
        return False


def _session_of(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def session_members(sid: int) -> list[int]:
    """Live processes whose session id is ``sid`` (the leader included when still alive)."""
    out: list[int] = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] not in _GONE and os.getsid(proc.pid) == sid:
                out.append(proc.pid)
        except (OSError, psutil.Error):
            continue
    return sorted(out)


def rss_kib(pids: Iterable[int]) -> int:
    """Sum of the resident set sizes of ``pids`` in KiB (shared pages counted once per process)."""
    total = 0
    for pid in pids:
        proc = _process(pid)
        if proc is None:
            continue
        try:
            total += proc.memory_info().rss // 1024
        except psutil.Error:
            continue
    return total


# --------------------------------------------------------------------------- pid files
@dataclass(frozen=True, slots=True)
class PidRecord:
    """What a pid file holds: the main PID, its start time and the session to stop with it."""

    pid: int
    started: int | None
    sid: int | None = None

    def alive(self) -> bool:
        return is_alive(self.pid, self.started)

    def processes(self) -> list[int]:
        """Every live process that belongs to this service (main PID and its session)."""
        pids: set[int] = set()
        if self.alive():
            pids.add(self.pid)
        if self.sid is not None and self.sid > 1 and self._session_trusted():
            pids.update(session_members(self.sid))
        pids.discard(os.getpid())
        return sorted(pids)

    def _session_trusted(self) -> bool:
        # A session id is a PID too and may be recycled once the whole session ended; trust it when
        # the main process is still in it, or when its leader is the process we started.
        if self.alive() and _session_of(self.pid) == self.sid:
            return True
        return self.sid == self.pid and is_alive(self.pid, self.started)


def write_pid(path: Path, record: PidRecord) -> None:
    """Write the pid file: the PID alone on the first line (for other tools), then JSON details."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{record.pid}\n{json.dumps(asdict(record))}\n")
    tmp.replace(path)


def read_pid(path: Path) -> PidRecord | None:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None
    try:
        if len(lines) > 1:
            data = json.loads(lines[1])
            return PidRecord(int(data["pid"]), data.get("started"), data.get("sid"))
        return PidRecord(int(lines[0]), None, None)
    except (ValueError, KeyError, IndexError, TypeError):
        return None


# --------------------------------------------------------------------------- signals
def _signal_all(pids: Sequence[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            pass


def terminate(pids: Sequence[int], *, grace_s: float = 10.0, refresh=None) -> list[int]:
    """SIGTERM ``pids``, wait up to ``grace_s`` for them to exit, then SIGKILL the rest.

    ``refresh`` (optional) returns the current member list (e.g. a session that may still be
    forking) and is polled while waiting. Returns the PIDs that had to be killed.
    """
    starts = {pid: start_time(pid) for pid in pids}
    _signal_all(list(starts), signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while True:
        if refresh is not None:
            for pid in refresh():
                if pid not in starts:
                    starts[pid] = start_time(pid)
                    _signal_all([pid], signal.SIGTERM)
        left = [pid for pid, st in starts.items() if is_alive(pid, st)]
        if not left:
            return []
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    _signal_all(left, signal.SIGKILL)
    kill_deadline = time.monotonic() + 5.0
    while time.monotonic() < kill_deadline and any(is_alive(p, starts[p]) for p in left):
        time.sleep(0.05)
    return left


# --------------------------------------------------------------------------- spawning
def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen:
    """Start ``argv`` in the background as a new session leader, stdout+stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(log, "ab") as out:
        out.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n".encode())
        out.flush()
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=str(cwd) if cwd else None,
            env=full_env,
            start_new_session=True,
            close_fds=True,
        )


# --------------------------------------------------------------------------- ports
def port_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (a bind test, like the server's own)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """True when a TCP connect to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class Listener:
    """A listening TCP socket and the processes that own it."""

    address: str
    port: int
    pids: tuple[int, ...]
    process: str

    @property
    def loopback(self) -> bool:
        a = self.address.strip("[]")
        if a.startswith("::ffff:"):
            a = a[len("::ffff:") :]
        return a.startswith("127.") or a == "::1" or a == "localhost"


def listeners() -> list[Listener] | None:
    """Every listening TCP socket with its owning PIDs, or ``None`` when they cannot be read."""
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return None
    owners: dict[tuple[str, int], set[int]] = {}
    for c in conns:
        if c.status != psutil.CONN_LISTEN or not c.laddr:
            continue
        pids = owners.setdefault((c.laddr.ip, c.laddr.port), set())
        if c.pid:
            pids.add(c.pid)
    result: list[Listener] = []
    for (addr, port), pids in owners.items():
        name = ""
        for pid in sorted(pids):
            proc = _process(pid)
            if proc is not None:
                try:
                    name = proc.name()
                    break
                except psutil.Error:
                    continue
        result.append(Listener(addr, port, tuple(sorted(pids)), name))
    return result


# --------------------------------------------------------------------------- logs
def tail(path: Path, lines: int = 5, *, max_bytes: int = 64_000) -> str:
    """The last non-empty ``lines`` lines of a log file ('' when it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    kept = [ln.rstrip() for ln in data.splitlines() if ln.strip() and not ln.startswith("==== ")]
    return "\n".join(kept[-lines:])


_ERROR_MARKS = ("ERROR", "FATAL", "Exception", "Error:", "error:", "Traceback", "Caused by")


def last_error(path: Path, *, scan_lines: int = 400) -> str:
    """The last line of the log that looks like an error (``''`` when none in the last lines)."""
    for line in reversed(tail(path, scan_lines).splitlines()):
        if any(mark in line for mark in _ERROR_MARKS) and not line.lstrip().startswith("at "):
            return line.strip()
    return ""
