"""Checkpoint files: one SQLite file per shard, one for the job's commit record.

A shard saves ``(checkpoint id, offsets, state)`` in one transaction, so state and the offsets it
reflects can never disagree; it keeps the two newest checkpoints. The job commits a checkpoint id
only after every shard saved it; recovery restores every shard to the committed id (a shard may
hold a newer, uncommitted one: it is ignored and later overwritten).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from hotpath.errors import ConfigError, StoreError

__all__ = ["ShardCheckpoints", "JobCommits", "checkpoint_dir"]


def checkpoint_dir(runtime_dir: Path, job_id: str) -> Path:
    return runtime_dir / "coview" / job_id


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open checkpoint file {path}: {exc}") from exc
    return conn


class ShardCheckpoints:
    """Snapshots of one shard: ``save(cid, offsets, blob)`` / ``load(cid)``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = _connect(path)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS snapshot (cid INTEGER PRIMARY KEY, offsets TEXT NOT NULL,"
            " state BLOB NOT NULL, saved_at REAL NOT NULL)"
        )

    def save(self, cid: int, offsets: dict[int, int], state: bytes) -> None:
        try:
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute(
                    "INSERT OR REPLACE INTO snapshot (cid, offsets, state, saved_at) VALUES (?, ?, ?, ?)",
                    (cid, json.dumps({str(p): o for p, o in offsets.items()}), state, time.time()),
                )
                self._conn.execute("DELETE FROM snapshot WHERE cid < ?", (cid - 1,))
        except sqlite3.Error as exc:
            raise StoreError(f"cannot save checkpoint {cid} to {self.path}: {exc}") from exc

    def load(self, cid: int) -> tuple[dict[int, int], bytes]:
        row = self._conn.execute("SELECT offsets, state FROM snapshot WHERE cid = ?", (cid,)).fetchone()
        if row is None:
            raise StoreError(f"checkpoint {cid} is missing from {self.path}")
        return {int(p): o for p, o in json.loads(row[0]).items()}, row[1]

    def close(self) -> None:
        self._conn.close()


class JobCommits:
    """The job's commit record: the last checkpoint every shard saved, and the job's shape."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = _connect(path)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS commit_record (id INTEGER PRIMARY KEY CHECK (id = 1), cid INTEGER NOT NULL,"
            " shards INTEGER NOT NULL, partitions INTEGER NOT NULL, topic TEXT NOT NULL, saved_at REAL NOT NULL)"
        )

    def committed(self, *, shards: int, partitions: int, topic: str) -> int | None:
        row = self._conn.execute("SELECT cid, shards, partitions, topic FROM commit_record WHERE id = 1").fetchone()
        if row is None:
            return None
        cid, s, p, t = row
        if (s, p, t) != (shards, partitions, topic):
            raise ConfigError(
                f"checkpoints in {self.path.parent} were taken with {s} shards over {p} partitions of {t!r},"
                f" not {shards} over {partitions} of {topic!r}",
                hint="use another streaming.job_id, or delete that folder to start over",
            )
        return int(cid)

    def commit(self, cid: int, *, shards: int, partitions: int, topic: str) -> None:
        try:
            with self._conn:
                self._conn.execute(
                    "INSERT OR REPLACE INTO commit_record (id, cid, shards, partitions, topic, saved_at)"
                    " VALUES (1, ?, ?, ?, ?, ?)",
                    (cid, shards, partitions, topic, time.time()),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot commit checkpoint {cid} in {self.path}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()
